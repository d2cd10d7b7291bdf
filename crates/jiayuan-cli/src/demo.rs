//! `jiayuan demo`: a fresh SQLite database with Luohu's streets, estates, firms, residents and
//! dogs, served on the configured address.
//!
//! The registry is seeded through the import path, from the ledger files kept in
//! `config/demo/` (embedded in the binary, so `jiayuan demo` works from any directory): the
//! seeder is the import's first user. The files are the rendering of
//! `jiayuan_test_support::fixtures::demo_registry()`; a test of this module keeps the two equal
//! (`JIAYUAN_REGENERATE_DEMO=1 cargo test -p jiayuan-cli --lib demo` rewrites them).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;

use jiayuan_domain::{AccountScope, AgencyUnit, Date, EstateId, HouseId, PersonId, Place, RecordId, Role};
use jiayuan_host::engine::{Caller, CreateRequest, Engine, TransitionRequest};
use jiayuan_host::ledger::{self, ImportKind, ImportOptions, ImportReport, sheet_of};
use jiayuan_host::runtime::{self, Options};
use jiayuan_host::settings::Settings;
use jiayuan_ledger::Reader;
use jiayuan_store::Store;
use jiayuan_test_support::fixtures::{self, DemoRegistry};

/// The demo registry's ledger files, in the order they are imported: kind, file name under
/// `config/demo/`, contents (CSV, UTF-8 with BOM, Chinese headers of [`sheet_of`]).
pub const DEMO_FILES: [(ImportKind, &str, &[u8]); 8] = [
    (ImportKind::Divisions, "divisions.csv", include_bytes!("../../../config/demo/divisions.csv")),
    (ImportKind::Firms, "firms.csv", include_bytes!("../../../config/demo/firms.csv")),
    (ImportKind::Estates, "estates.csv", include_bytes!("../../../config/demo/estates.csv")),
    (ImportKind::Assignments, "assignments.csv", include_bytes!("../../../config/demo/assignments.csv")),
    (ImportKind::Buildings, "buildings.csv", include_bytes!("../../../config/demo/buildings.csv")),
    (ImportKind::Houses, "houses.csv", include_bytes!("../../../config/demo/houses.csv")),
    (ImportKind::Persons, "persons.csv", include_bytes!("../../../config/demo/persons.csv")),
    (ImportKind::Leases, "leases.csv", include_bytes!("../../../config/demo/leases.csv")),
];

/// The account name the demo's imports are made (and audited) as.
const DEMO_IMPORTER: &str = "system:demo";

const DOGS: &str = "dog-licensing";

/// Options of `jiayuan demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The demo database file; it is deleted and created afresh unless --keep is given.
    #[arg(long, default_value = "data/demo.sqlite")]
    database: PathBuf,
    /// Reuse an existing demo database instead of starting afresh.
    #[arg(long)]
    keep: bool,
    /// Seed the database and exit without serving.
    #[arg(long)]
    no_serve: bool,
}

/// What seeding created.
#[derive(Debug, Default)]
pub struct Seeded {
    /// Estates.
    pub estates: usize,
    /// Firms.
    pub firms: usize,
    /// Houses.
    pub houses: usize,
    /// Residents.
    pub persons: usize,
    /// Dogs registered.
    pub dogs: usize,
    /// Licences approved.
    pub licences: usize,
    /// Registrations refused on purpose (a banned breed).
    pub refused: usize,
    /// The first dog registered.
    pub first_dog: Option<RecordId>,
    /// The first estate.
    pub first_estate: Option<EstateId>,
    /// Fixture ids → store ids.
    pub ids: IdMap,
}

/// `jiayuan demo`: (re)creates the demo database, seeds it, creates one account per role (printing
/// their tokens and the demo password) and, unless `--no-serve`, serves it until Ctrl-C. Session
/// cookies are not marked `Secure` here, since the demo speaks plain HTTP on loopback.
pub async fn run(mut settings: Settings, args: DemoArgs) -> anyhow::Result<()> {
    if !args.keep {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = args.database.clone().into_os_string();
            p.push(suffix);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("removing the old demo database {}", p.to_string_lossy()));
                }
            }
        }
    }
    if let Some(dir) = args.database.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    settings.database.url = format!("sqlite://{}?mode=rwc", args.database.display());
    // The demo serves plain HTTP on loopback: a `Secure` session cookie would never be sent back
    // over it, so the `curl -c` login example printed below could not use its session. For the
    // demo only; `serve` keeps `auth.cookie_secure` as configured.
    settings.auth.cookie_secure = false;
    let host = runtime::start(settings, Options::default()).await.context("starting the host")?;
    let loaded = host.engine.plugins().handle(DOGS).is_some();
    if !loaded {
        eprintln!(
            "warning: the dog-licensing plugin is not loaded from {} — run `cargo xtask plugins build` \
             (or `cargo xtask demo`, which does it for you); seeding the registry only",
            host.settings.plugins.dir.display()
        );
    }
    let seeded = if args.keep && !host.engine.store().estates().await?.is_empty() {
        println!("reusing {}", args.database.display());
        Seeded::default()
    } else {
        seed(&host.engine, loaded).await.context("seeding the demo data")?
    };
    if seeded.estates > 0 {
        println!(
            "seeded {}: {} estates, {} firms, {} houses, {} residents, {} dogs ({} licences; {} refused registrations on purpose)",
            args.database.display(),
            seeded.estates,
            seeded.firms,
            seeded.houses,
            seeded.persons,
            seeded.dogs,
            seeded.licences,
            seeded.refused,
        );
    }
    let first = match seeded.first_estate {
        Some(e) => e,
        None => {
            host.engine.store().estates().await?.first().map(|e| e.id).context("the demo database has no estate")?
        }
    };
    let auth_config = host.settings.auth.clone();
    let demo_accounts = accounts(&host.engine, &auth_config, first).await.context("creating the demo accounts")?;
    println!("\ndemo accounts (password `{DEMO_PASSWORD}` for all; tokens are valid until the database is recreated):");
    for a in &demo_accounts {
        println!("  {:<17} {:<10} {:<28} {}", a.role.as_str(), a.login, a.scope, a.token);
    }
    if args.no_serve {
        return Ok(());
    }
    let admin = demo_accounts.iter().find(|a| a.role == Role::DistrictAdmin).map_or("", |a| a.token.as_str());
    let staff = demo_accounts.iter().find(|a| a.role == Role::FirmStaff).map_or("", |a| a.token.as_str());
    let estate = first.0;
    let dog = seeded.first_dog.map_or(1, |d| d.0);
    let today = host.engine.clock().now().shanghai_date();
    let own_firm = host.engine.store().firm_serving(first, today).await?;
    let mut other = None;
    for e in host.engine.store().estates().await? {
        if host.engine.store().firm_serving(e.id, today).await? != own_firm {
            other = Some(e.id.0);
            break;
        }
    }
    let other = other.unwrap_or(estate);
    let banner = format!(
        "\nJiayuan demo listening on http://{{addr}}\n\
         Try (tokens from the list above):\n  \
         ADMIN={admin}\n  \
         STAFF={staff}\n  \
         curl -s http://{{addr}}/api/health\n  \
         curl -s -H \"authorization: Bearer $ADMIN\" http://{{addr}}/api/plugins\n  \
         curl -s -H \"authorization: Bearer $STAFF\" 'http://{{addr}}/api/items/dog-licensing/records?kind=dog&limit=5'\n  \
         curl -s -H \"authorization: Bearer $STAFF\" http://{{addr}}/api/items/dog-licensing/records/{dog}/history\n  \
         curl -s -H \"authorization: Bearer $ADMIN\" http://{{addr}}/api/alerts\n  \
         curl -s -H \"authorization: Bearer $ADMIN\" 'http://{{addr}}/api/items/dog-licensing/kpis?estate_id={estate}&from=2026-01-01&to=2026-12-31'\n  \
         # firm staff see their own firm's estates only: another firm's estate is 404, not 403\n  \
         curl -s -H \"authorization: Bearer $STAFF\" http://{{addr}}/api/registry/estates/{other}\n  \
         # personal fields are masked; the clear view needs a reason and is audited\n  \
         curl -s -X POST -H \"authorization: Bearer $ADMIN\" -H 'content-type: application/json' \\\n    \
         http://{{addr}}/api/items/dog-licensing/records/{dog}/unmask -d '{{\"reason\":\"case_handling\"}}'\n  \
         # switch dog licensing off for estate {estate} (district admin only; existing records stay readable):\n  \
         curl -s -X PUT -H \"authorization: Bearer $ADMIN\" -H 'content-type: application/json' \\\n    \
         http://{{addr}}/api/enablement/dog-licensing -d '{{\"scope\":\"estate\",\"code\":\"{estate}\",\"enabled\":false,\"reason\":\"演示\"}}'\n  \
         # browser login (session cookie):\n  \
         curl -s -c /tmp/jiayuan.cookies -H 'content-type: application/json' http://{{addr}}/api/auth/login \\\n    \
         -d '{{\"login\":\"staff\",\"password\":\"{DEMO_PASSWORD}\"}}'\n  \
         curl -s -b /tmp/jiayuan.cookies http://{{addr}}/api/auth/me\n\
         The audit log: curl -s -H \"authorization: Bearer $ADMIN\" http://{{addr}}/api/audit/verify\n\
         Press Ctrl-C to stop."
    );
    crate::run_host(host, Some(banner)).await
}

/// Seeds the demo registry by importing [`DEMO_FILES`] in order as a district administrator,
/// then (with `dogs`) registers dogs through the record engine, so every import and plugin rule
/// runs on the demo data exactly as on real input. Any refused row fails the seeding.
pub async fn seed(engine: &Engine, dogs: bool) -> anyhow::Result<Seeded> {
    let reg = fixtures::demo_registry();
    let mut out = Seeded::default();
    let caller = Caller::account(DEMO_IMPORTER, Role::DistrictAdmin, &AccountScope::District, None);
    for (kind, name, bytes) in DEMO_FILES {
        let report = import_file(engine, &caller, kind, name, bytes).await?;
        let rows = usize::try_from(report.rows).unwrap_or(usize::MAX);
        match kind {
            ImportKind::Estates => out.estates = rows,
            ImportKind::Firms => out.firms = rows,
            ImportKind::Houses => out.houses = rows,
            ImportKind::Persons => out.persons = rows,
            _ => {}
        }
    }
    engine.forget_places();
    let ids = id_map(engine.store(), &reg).await?;
    out.first_estate = reg.estates.first().and_then(|e| ids.estates.get(&e.id).copied());
    if dogs {
        seed_dogs(engine, &reg, &ids, &mut out).await?;
    }
    out.ids = ids;
    Ok(out)
}

/// Fixture ids → store ids.
#[derive(Debug, Default)]
pub struct IdMap {
    /// Estates.
    pub estates: HashMap<EstateId, EstateId>,
    /// Houses.
    pub houses: HashMap<HouseId, HouseId>,
    /// Persons.
    pub persons: HashMap<PersonId, PersonId>,
}

/// Imports one demo file; a report with any refused row (or not committed) is an error listing
/// its problems.
async fn import_file(
    engine: &Engine,
    caller: &Caller,
    kind: ImportKind,
    name: &str,
    bytes: &[u8],
) -> anyhow::Result<ImportReport> {
    let reader = Reader::from_bytes(bytes.to_vec(), name, sheet_of(kind))
        .with_context(|| format!("reading the demo file config/demo/{name}"))?;
    let report = ledger::import(engine.registry(), caller, kind, reader, ImportOptions::default(), &|_| {})
        .await
        .with_context(|| format!("importing the demo file config/demo/{name}"))?;
    if report.refused > 0 || !report.committed {
        let problems: Vec<String> = report
            .problems
            .iter()
            .map(|p| format!("  row {} {}: {} ({})", p.row, p.column.as_deref().unwrap_or("-"), p.reason_en, p.rule))
            .collect();
        anyhow::bail!(
            "the demo file config/demo/{name} was not imported cleanly: {} of {} rows refused, committed: {}\n{}",
            report.refused,
            report.rows,
            report.committed,
            problems.join("\n")
        );
    }
    Ok(report)
}

/// Finds the store ids of the fixture's estates, houses and persons by their natural keys
/// (estate code; building name and room; identity document).
async fn id_map(store: &Store, reg: &DemoRegistry) -> anyhow::Result<IdMap> {
    let mut ids = IdMap::default();
    let by_code: HashMap<String, EstateId> =
        store.estates().await?.into_iter().map(|e| (e.code.as_str().to_owned(), e.id)).collect();
    for e in &reg.estates {
        let id =
            by_code.get(e.code.as_str()).copied().with_context(|| format!("demo estate {} not imported", e.code))?;
        ids.estates.insert(e.id, id);
        let buildings: HashMap<_, _> =
            store.buildings_of_estate(id).await?.into_iter().map(|b| (b.id, b.name)).collect();
        for h in store.houses_of_estate(id).await? {
            let Some(building) = buildings.get(&h.building_id) else { continue };
            let fixture = reg.houses.iter().find(|f| {
                f.estate_id == Some(e.id)
                    && f.room == h.room
                    && reg.buildings.iter().any(|b| b.id == f.building_id && &b.name == building)
            });
            if let Some(f) = fixture {
                ids.houses.insert(f.id, h.id);
            }
        }
    }
    let mut by_doc = HashMap::new();
    let mut after = PersonId(0);
    loop {
        let page = store.persons_page(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        by_doc.extend(page.into_iter().map(|p| ((p.doc.kind, p.doc.number), p.id)));
    }
    for p in &reg.persons {
        let id = by_doc
            .get(&(p.doc.kind, p.doc.number.clone()))
            .copied()
            .with_context(|| format!("demo person {} not imported", p.id))?;
        ids.persons.insert(p.id, id);
    }
    Ok(ids)
}

const BREEDS: [&str; 6] = ["中华田园犬", "柯基犬", "泰迪犬", "金毛寻回犬", "柴犬", "比熊犬"];
const COLOURS: [&str; 4] = ["黄", "白", "黑", "棕"];
const NAMES: [&str; 8] = ["旺财", "豆豆", "球球", "小白", "来福", "多多", "阿黄", "毛毛"];

async fn seed_dogs(engine: &Engine, reg: &DemoRegistry, ids: &IdMap, out: &mut Seeded) -> anyhow::Result<()> {
    let staff = Caller::account("demo:firm-staff", Role::FirmStaff, &AccountScope::District, None);
    let police = police_unit(engine).await?;
    let agency = Caller::account("demo:police", Role::AgencyOfficer, &AccountScope::District, None).in_unit(&police);
    let today = engine.clock().now().shanghai_date();
    let mut n = 0_u64;
    for house in &reg.houses {
        let Some(estate) = house.estate_id.and_then(|e| ids.estates.get(&e).copied()) else { continue };
        let Some(house_id) = ids.houses.get(&house.id).copied() else { continue };
        // An adult of the household owns the dog; about one household in three keeps one.
        let Some(owner) = reg
            .persons
            .iter()
            .filter(|p| p.house_id == Some(house.id))
            .find(|p| p.birth_date.is_some_and(|b| b.age_on(today) >= 18))
        else {
            continue;
        };
        n += 1;
        if !fixtures::mix(n).is_multiple_of(3) {
            continue;
        }
        let Some(owner_id) = ids.persons.get(&owner.id).copied() else { continue };
        let i = (fixtures::mix(n ^ 0xD06) % 48) as usize;
        let dog = engine
            .create(
                &staff,
                CreateRequest::new(
                    DOGS,
                    "dog",
                    Place::Estate(estate),
                    json!({
                        "name": NAMES[i % NAMES.len()],
                        "breed": BREEDS[i % BREEDS.len()],
                        "sex": if i.is_multiple_of(2) { "male" } else { "female" },
                        "colour": COLOURS[i % COLOURS.len()],
                        "sterilised": i.is_multiple_of(3),
                        "chip_no": fixtures::microchip_no(n),
                        "owner_id": owner_id.0,
                        "house_id": house_id.0,
                    }),
                ),
            )
            .await
            .with_context(|| format!("registering a demo dog for house {house_id}"))?;
        out.dogs += 1;
        out.first_dog.get_or_insert(dog.id);
        // Vaccinated some months ago; next due within the year, so some licences come due soon.
        let vaccinated = today.add_days(-((i as i32 * 7) % 330) - 20);
        let next_due = vaccinated.add_years(1);
        vaccinate(engine, &staff, estate, dog.id, vaccinated, next_due).await?;
        if i % 4 == 3 {
            continue; // some dogs have no licence yet
        }
        let licence = engine
            .create(&staff, CreateRequest::new(DOGS, "licence", Place::Estate(estate), json!({})).child_of(dog.id))
            .await
            .context("applying for a demo licence")?;
        fire(engine, &staff, licence.id, "submit").await?;
        if i % 4 != 2 {
            fire(engine, &agency, licence.id, "approve").await?;
            out.licences += 1;
        }
    }
    // Two refusals on purpose, so alerts and the refusal path have something to show.
    if let (Some(estate), Some(house), Some(owner)) =
        (out.first_estate, ids.houses.values().min().copied(), ids.persons.values().min().copied())
    {
        let banned = engine
            .create(
                &staff,
                CreateRequest::new(
                    DOGS,
                    "dog",
                    Place::Estate(estate),
                    json!({"name": "虎子", "breed": "西藏獒犬", "sex": "male", "colour": "黑",
                           "sterilised": false, "chip_no": "156999999999999",
                           "owner_id": owner.0, "house_id": house.0}),
                ),
            )
            .await;
        if banned.is_err() {
            out.refused += 1;
        }
    }
    Ok(())
}

async fn vaccinate(
    engine: &Engine,
    staff: &Caller,
    estate: EstateId,
    dog: RecordId,
    on: Date,
    next_due: Date,
) -> anyhow::Result<()> {
    engine
        .create(
            staff,
            CreateRequest::new(
                DOGS,
                "vaccination",
                Place::Estate(estate),
                json!({"vaccinated_on": on, "clinic": "罗湖区动物防疫站", "batch": format!("RB{}", on.year()), "next_due": next_due}),
            )
            .child_of(dog),
        )
        .await
        .context("recording a demo vaccination")?;
    Ok(())
}

async fn fire(engine: &Engine, caller: &Caller, id: RecordId, transition: &str) -> anyhow::Result<()> {
    engine
        .transition(caller, TransitionRequest::new(DOGS, id, transition, json!({})))
        .await
        .with_context(|| format!("firing `{transition}` on demo record {id}"))?;
    Ok(())
}

/// The demo's police station (派出所), which approves dog licences: found, or created once.
async fn police_unit(engine: &Engine) -> anyhow::Result<AgencyUnit> {
    let registry = engine.registry();
    if let Some(unit) = registry.agency_units().await?.into_iter().find(|u| u.kind == "police") {
        return Ok(unit);
    }
    let district =
        jiayuan_domain::DivisionCode::parse(jiayuan_domain::LUOHU_DISTRICT_CODE).context("the Luohu district code")?;
    Ok(registry
        .create_agency_unit(&Caller::system("demo"), "police", "罗湖公安分局黄贝派出所（演示）", &district)
        .await?)
}

/// The password of every demo account (demo databases only; never use it elsewhere).
pub const DEMO_PASSWORD: &str = "jiayuan-demo-2026";

/// One demo account per role, with its API token.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    /// The role.
    pub role: Role,
    /// Login name.
    pub login: String,
    /// Its scope, as `jiayuan users` spells it.
    pub scope: String,
    /// An API token issued for it (shown once).
    pub token: String,
}

/// Creates (or, in a kept database, reuses) one account per role around the estate `estate` (its street, its community, the firm
/// serving it; firm staff and the agency officer are assigned every loaded item), each with the password
/// [`DEMO_PASSWORD`] and an API token. The estate must be seeded.
pub async fn accounts(
    engine: &Engine,
    config: &jiayuan_server::AuthSettings,
    estate: EstateId,
) -> anyhow::Result<Vec<DemoAccount>> {
    use jiayuan_domain::AccountScope;
    use jiayuan_server::accounts::{self, AccountDraft};
    let store = engine.store();
    let e = store.estate(estate).await?.with_context(|| format!("demo estate {estate} is not seeded"))?;
    let now = engine.clock().now();
    let firm = store
        .firm_serving(estate, now.shanghai_date())
        .await?
        .with_context(|| format!("no firm serves demo estate {estate}"))?;
    let street = e.street().with_context(|| format!("demo estate {estate} has no street"))?;
    let known: Vec<String> = engine.plugins().handles().map(|h| h.id().to_owned()).collect();
    let items = Some(known.clone());
    let plan = [
        (Role::DistrictAdmin, "admin", "区管理员（演示）", AccountScope::District, None),
        (Role::StreetOfficer, "street", "街道工作人员（演示）", AccountScope::Division(street.clone()), None),
        (Role::CommunityWorker, "community", "社区工作者（演示）", AccountScope::Division(e.community.clone()), None),
        (Role::FirmManager, "manager", "物业项目经理（演示）", AccountScope::Firm(firm), None),
        (Role::FirmStaff, "staff", "物业员工（演示）", AccountScope::Firm(firm), items.clone()),
        (Role::AgencyOfficer, "agency", "派出所民警（演示）", AccountScope::Division(street), items),
        (Role::Auditor, "auditor", "审计员（演示）", AccountScope::District, None),
    ];
    let police = police_unit(engine).await?;
    let mut out = Vec::with_capacity(plan.len());
    for (role, login, display_name, scope, items) in plan {
        if items.is_some() && known.is_empty() {
            eprintln!("note: no `{login}` demo account: its role works on assigned service items, and none is loaded");
            continue;
        }
        let draft = AccountDraft {
            login: login.to_owned(),
            display_name: display_name.to_owned(),
            role,
            scope: scope.clone(),
            items,
            password: Some(DEMO_PASSWORD.to_owned()),
            agency_unit: (role == Role::AgencyOfficer).then_some(police.id),
        };
        // A kept demo database already has its accounts: issue fresh tokens only.
        let account = match store.account_by_login(login).await? {
            Some(existing) => existing,
            None => accounts::create_account(store, config, draft, &known, "system:demo", now)
                .await
                .with_context(|| format!("creating demo account `{login}`"))?,
        };
        let token = accounts::issue_token(store, account.id, "demo", None, "system:demo", now)
            .await
            .with_context(|| format!("issuing a token for demo account `{login}`"))?;
        out.push(DemoAccount { role, login: login.to_owned(), scope: scope.to_string(), token: token.token });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! The committed `config/demo/*.csv` are exactly the rendering of the demo fixture.

    use std::path::Path;

    use jiayuan_ledger::{CellKind, CsvExport, Provenance, Value};

    use super::*;

    const REGENERATE: &str = "JIAYUAN_REGENERATE_DEMO";

    /// `choice_of` a domain enum by its serde name.
    macro_rules! choice {
        ($kind:expr, $key:expr, $v:expr) => {
            choice_of($kind, $key, serde_json::to_value($v))
        };
    }

    /// The machine value of a choice column, as the sheet spells it (`Value::Choice` needs the
    /// sheet's `'static` text).
    fn choice_of(kind: ImportKind, key: &str, v: serde_json::Result<serde_json::Value>) -> Value {
        let text = v.expect("serialises");
        let text = text.as_str().expect("a unit variant");
        let column = sheet_of(kind).columns.iter().find(|c| c.key == key).expect("known column");
        let CellKind::Choice(options) = column.kind else { panic!("{key} is not a choice") };
        Value::Choice(options.iter().find(|o| o.value == text).unwrap_or_else(|| panic!("{key}: {text}")).value)
    }

    /// One row of `kind` from `(key, value)` pairs; other columns stay empty.
    fn row(kind: ImportKind, cells: Vec<(&str, Option<Value>)>) -> Vec<Option<Value>> {
        let sheet = sheet_of(kind);
        let mut out = vec![None; sheet.columns.len()];
        for (key, v) in cells {
            let i = sheet.index_of(key).unwrap_or_else(|| panic!("{} has no column {key}", sheet.name_en));
            out[i] = v;
        }
        out
    }

    fn csv(kind: ImportKind, rows: Vec<Vec<Option<Value>>>) -> Vec<u8> {
        let provenance = Provenance {
            exporter: "jiayuan-test-support demo_registry()".into(),
            at: "2026-01-01T00:00:00+08:00".into(),
            scope: "罗湖区演示数据（虚构）".into(),
            purpose: format!("jiayuan demo seed; regenerate with {REGENERATE}=1 cargo test -p jiayuan-cli --lib demo"),
        };
        let mut export = CsvExport::new(Vec::new(), sheet_of(kind), &provenance).expect("csv").unmasked();
        for r in rows {
            export.push_row(&r).expect("row");
        }
        export.finish().expect("finish")
    }

    fn text(s: &str) -> Option<Value> {
        Some(Value::Text(s.to_owned()))
    }

    /// The demo registry rendered as the files of [`DEMO_FILES`], by file name.
    fn render(reg: &DemoRegistry) -> Vec<(&'static str, Vec<u8>)> {
        use ImportKind as K;
        let estate_code = |id: Option<EstateId>| {
            let e = reg.estates.iter().find(|e| Some(e.id) == id).expect("fixture estate");
            e.code.as_str().to_owned()
        };
        let place = |house: HouseId| {
            let h = reg.houses.iter().find(|h| h.id == house).expect("fixture house");
            let b = reg.buildings.iter().find(|b| b.id == h.building_id).expect("fixture building");
            (estate_code(h.estate_id), b.name.clone(), h.room.clone())
        };
        let divisions = reg
            .divisions
            .iter()
            .map(|d| {
                row(
                    K::Divisions,
                    vec![
                        ("code", text(d.code.as_str())),
                        ("name_zh", text(&d.name_zh)),
                        ("valid_from", Some(d.valid_from.into())),
                        ("valid_to", d.valid_to.map(Value::from)),
                    ],
                )
            })
            .collect();
        let firms = reg
            .firms
            .iter()
            .map(|f| {
                row(
                    K::Firms,
                    vec![
                        ("credit_code", text(&f.credit_code)),
                        ("name", text(&f.name)),
                        ("kind", Some(choice!(K::Firms, "kind", f.kind))),
                        ("legal_representative", f.legal_representative.as_deref().and_then(text)),
                        ("contact_phone", f.contact_phone.as_deref().and_then(text)),
                        ("credit_code_override", f.credit_code_override.as_deref().and_then(text)),
                    ],
                )
            })
            .collect();
        let estates = reg
            .estates
            .iter()
            .map(|e| {
                row(
                    K::Estates,
                    vec![
                        ("code", text(e.code.as_str())),
                        ("name", text(&e.name)),
                        ("kind", Some(choice!(K::Estates, "kind", e.kind))),
                        ("community", text(e.community.as_str())),
                        ("address", text(&e.address)),
                        ("management", Some(choice!(K::Estates, "management", e.management))),
                        ("onboarding", e.onboarding.map(|o| choice!(K::Estates, "onboarding", o))),
                        ("households", Some(Value::Integer(i64::from(e.households)))),
                    ],
                )
            })
            .collect();
        let assignments = reg
            .assignments
            .iter()
            .map(|a| {
                let firm = reg.firms.iter().find(|f| f.id == a.firm_id).expect("fixture firm");
                row(
                    K::Assignments,
                    vec![
                        ("estate_code", text(&estate_code(Some(a.estate_id)))),
                        ("firm_credit_code", text(&firm.credit_code)),
                        ("from", Some(a.from.into())),
                        ("to", a.to.map(Value::from)),
                        ("contract_ref", a.contract_ref.as_deref().and_then(text)),
                    ],
                )
            })
            .collect();
        let buildings = reg
            .buildings
            .iter()
            .map(|b| {
                row(
                    K::Buildings,
                    vec![
                        ("estate_code", text(&estate_code(b.estate_id))),
                        ("name", text(&b.name)),
                        ("floors", Some(Value::Integer(i64::from(b.floors)))),
                        ("height_m", Some(Value::Decimal(f64::from(b.height_m)))),
                        ("elevator", Some(Value::Bool(b.elevator))),
                    ],
                )
            })
            .collect();
        let houses = reg
            .houses
            .iter()
            .map(|h| {
                let (estate, building, room) = place(h.id);
                row(
                    K::Houses,
                    vec![
                        ("estate_code", text(&estate)),
                        ("building", text(&building)),
                        ("room", text(&room)),
                        ("area_m2", Some(Value::Decimal(f64::from(h.area_m2)))),
                        ("use", Some(choice!(K::Houses, "use", h.use_))),
                        ("address_code", h.address_code.as_ref().and_then(|a| text(a.as_str()))),
                    ],
                )
            })
            .collect();
        let persons = reg
            .persons
            .iter()
            .map(|p| {
                let mut cells = vec![
                    ("name", text(&p.name)),
                    ("doc_kind", Some(choice!(K::Persons, "doc_kind", p.doc.kind))),
                    ("doc_number", text(&p.doc.number)),
                    ("sex", p.sex.map(|s| choice!(K::Persons, "sex", s))),
                    ("birth_date", p.birth_date.map(Value::from)),
                    ("hukou", Some(choice!(K::Persons, "hukou", p.hukou))),
                    ("phone", p.phone.as_deref().and_then(text)),
                ];
                if let Some(o) = reg.occupancies.iter().find(|o| o.person_id == p.id) {
                    let (estate, building, room) = place(o.house_id);
                    cells.extend([
                        ("estate_code", text(&estate)),
                        ("building", text(&building)),
                        ("room", text(&room)),
                        ("relation", Some(choice!(K::Persons, "relation", o.relation))),
                        ("moved_in", Some(o.from.into())),
                        ("moved_out", o.to.map(Value::from)),
                        ("primary", Some(Value::Bool(o.primary))),
                    ]);
                }
                row(K::Persons, cells)
            })
            .collect();
        let leases = reg
            .leases
            .iter()
            .map(|l| {
                let (estate, building, room) = place(l.house_id);
                let landlord = reg.persons.iter().find(|p| p.id == l.landlord_id).expect("fixture landlord");
                row(
                    K::Leases,
                    vec![
                        ("estate_code", text(&estate)),
                        ("building", text(&building)),
                        ("room", text(&room)),
                        ("landlord_doc_kind", Some(choice!(K::Leases, "landlord_doc_kind", landlord.doc.kind))),
                        ("landlord_doc_number", text(&landlord.doc.number)),
                        ("from", Some(l.from.into())),
                        ("to", l.to.map(Value::from)),
                        ("contract_ref", l.contract_ref.as_deref().and_then(text)),
                    ],
                )
            })
            .collect();
        let mut by_kind: HashMap<ImportKind, Vec<Vec<Option<Value>>>> = HashMap::from([
            (K::Divisions, divisions),
            (K::Firms, firms),
            (K::Estates, estates),
            (K::Assignments, assignments),
            (K::Buildings, buildings),
            (K::Houses, houses),
            (K::Persons, persons),
            (K::Leases, leases),
        ]);
        DEMO_FILES
            .iter()
            .map(|(kind, name, _)| (*name, csv(*kind, by_kind.remove(kind).expect("every kind rendered"))))
            .collect()
    }

    #[test]
    fn the_committed_demo_files_are_the_rendered_fixture() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/demo");
        let rendered = render(&fixtures::demo_registry());
        if std::env::var(REGENERATE).is_ok_and(|v| v == "1") {
            for (name, bytes) in &rendered {
                std::fs::write(dir.join(name), bytes).expect("write demo file");
            }
            return;
        }
        for ((name, bytes), (_, _, embedded)) in rendered.iter().zip(DEMO_FILES) {
            let on_disk = std::fs::read(dir.join(name)).expect("read demo file");
            assert!(
                on_disk == *bytes && embedded == bytes.as_slice(),
                "config/demo/{name} differs from the rendering of fixtures::demo_registry(): \
                 run `{REGENERATE}=1 cargo test -p jiayuan-cli --lib demo` and commit the files \
                 (then rebuild, since the demo embeds them)"
            );
        }
    }
}
