//! `jiayuan demo`: a fresh SQLite database with Luohu's streets, estates, firms, residents and
//! dogs, served on the configured address.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;

use jiayuan_domain::{BuildingId, Date, EstateId, FirmId, HouseId, PersonId, RecordId, Role};
use jiayuan_host::engine::{Caller, CreateRequest, Engine, Reach, TransitionRequest};
use jiayuan_host::runtime::{self, Options};
use jiayuan_host::settings::Settings;
use jiayuan_store::{NewAssignment, NewBuilding, NewEstate, NewFirm, NewHouse, NewPerson, Store};
use jiayuan_test_support::fixtures::{self, DemoRegistry};

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

/// Seeds the demo registry, then (with `dogs`) registers dogs through the record engine, so every
/// plugin rule runs on the demo data exactly as on real input.
pub async fn seed(engine: &Engine, dogs: bool) -> anyhow::Result<Seeded> {
    let store = engine.store();
    let reg = fixtures::demo_registry();
    let mut out = Seeded::default();
    let ids = seed_registry(store, &reg, &mut out).await?;
    engine.forget_places();
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

async fn seed_registry(store: &Store, reg: &DemoRegistry, out: &mut Seeded) -> anyhow::Result<IdMap> {
    let mut ids = IdMap::default();
    for d in &reg.divisions {
        store.upsert_division(d).await.with_context(|| format!("division {}", d.code))?;
    }
    for e in &reg.estates {
        let id = store
            .insert_estate(&NewEstate {
                name: e.name.clone(),
                community: e.community.clone(),
                address: e.address.clone(),
                management: e.management,
                onboarding: e.onboarding,
                households: e.households,
            })
            .await
            .with_context(|| format!("estate {}", e.name))?;
        ids.estates.insert(e.id, id);
        out.first_estate.get_or_insert(id);
    }
    let mut firms: HashMap<FirmId, FirmId> = HashMap::new();
    for f in &reg.firms {
        let id = store
            .insert_firm(&NewFirm {
                name: f.name.clone(),
                credit_code: f.credit_code.clone(),
                credit_code_override: f.credit_code_override.clone(),
                kind: f.kind,
                legal_representative: f.legal_representative.clone(),
                contact_phone: f.contact_phone.clone(),
            })
            .await
            .with_context(|| format!("firm {}", f.name))?;
        firms.insert(f.id, id);
    }
    for a in &reg.assignments {
        let (Some(firm), Some(estate)) = (firms.get(&a.firm_id), ids.estates.get(&a.estate_id)) else { continue };
        store
            .insert_assignment(&NewAssignment {
                firm_id: *firm,
                estate_id: *estate,
                from: a.from,
                to: a.to,
                contract_ref: a.contract_ref.clone(),
            })
            .await
            .context("service assignment")?;
    }
    let mut buildings: HashMap<BuildingId, BuildingId> = HashMap::new();
    for b in &reg.buildings {
        let id = store
            .insert_building(&NewBuilding {
                estate_id: b.estate_id.and_then(|e| ids.estates.get(&e).copied()),
                name: b.name.clone(),
                floors: b.floors,
                height_m: b.height_m,
            })
            .await
            .context("building")?;
        buildings.insert(b.id, id);
    }
    for h in &reg.houses {
        let Some(building) = buildings.get(&h.building_id) else { continue };
        let id = store
            .insert_house(&NewHouse { building_id: *building, room: h.room.clone(), area_m2: h.area_m2, use_: h.use_ })
            .await
            .context("house")?;
        ids.houses.insert(h.id, id);
    }
    for p in &reg.persons {
        let id = store
            .insert_person(&NewPerson {
                name: p.name.clone(),
                doc: p.doc.clone(),
                sex: p.sex,
                birth_date: p.birth_date,
                hukou: p.hukou,
                phone: p.phone.clone(),
                house_id: p.house_id.and_then(|h| ids.houses.get(&h).copied()),
            })
            .await
            .context("person")?;
        ids.persons.insert(p.id, id);
    }
    out.estates = reg.estates.len();
    out.firms = reg.firms.len();
    out.houses = reg.houses.len();
    out.persons = reg.persons.len();
    Ok(ids)
}

const BREEDS: [&str; 6] = ["中华田园犬", "柯基犬", "泰迪犬", "金毛寻回犬", "柴犬", "比熊犬"];
const COLOURS: [&str; 4] = ["黄", "白", "黑", "棕"];
const NAMES: [&str; 8] = ["旺财", "豆豆", "球球", "小白", "来福", "多多", "阿黄", "毛毛"];

async fn seed_dogs(engine: &Engine, reg: &DemoRegistry, ids: &IdMap, out: &mut Seeded) -> anyhow::Result<()> {
    let staff =
        Caller { role: Some(Role::FirmStaff), name: "demo:firm-staff".into(), reach: Reach::District, items: None };
    let agency =
        Caller { role: Some(Role::AgencyOfficer), name: "demo:chengguan".into(), reach: Reach::District, items: None };
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
                CreateRequest {
                    plugin: DOGS.into(),
                    kind: "dog".into(),
                    estate_id: estate,
                    parent_id: None,
                    data: json!({
                        "name": NAMES[i % NAMES.len()],
                        "breed": BREEDS[i % BREEDS.len()],
                        "sex": if i.is_multiple_of(2) { "male" } else { "female" },
                        "colour": COLOURS[i % COLOURS.len()],
                        "sterilised": i.is_multiple_of(3),
                        "chip_no": fixtures::microchip_no(n),
                        "owner_id": owner_id.0,
                        "house_id": house_id.0,
                    }),
                },
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
            .create(
                &staff,
                CreateRequest {
                    plugin: DOGS.into(),
                    kind: "licence".into(),
                    estate_id: estate,
                    parent_id: Some(dog.id),
                    data: json!({}),
                },
            )
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
                CreateRequest {
                    plugin: DOGS.into(),
                    kind: "dog".into(),
                    estate_id: estate,
                    parent_id: None,
                    data: json!({"name": "虎子", "breed": "西藏獒犬", "sex": "male", "colour": "黑",
                                 "sterilised": false, "chip_no": "156999999999999",
                                 "owner_id": owner.0, "house_id": house.0}),
                },
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
            CreateRequest {
                plugin: DOGS.into(),
                kind: "vaccination".into(),
                estate_id: estate,
                parent_id: Some(dog),
                data: json!({"vaccinated_on": on, "clinic": "罗湖区动物防疫站", "batch": format!("RB{}", on.year()), "next_due": next_due}),
            },
        )
        .await
        .context("recording a demo vaccination")?;
    Ok(())
}

async fn fire(engine: &Engine, caller: &Caller, id: RecordId, transition: &str) -> anyhow::Result<()> {
    engine
        .transition(
            caller,
            TransitionRequest {
                plugin: DOGS.into(),
                id,
                transition: transition.into(),
                input: json!({}),
                expected_version: None,
            },
        )
        .await
        .with_context(|| format!("firing `{transition}` on demo record {id}"))?;
    Ok(())
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
        (Role::AgencyOfficer, "agency", "城管执法人员（演示）", AccountScope::Division(street), items),
        (Role::Auditor, "auditor", "审计员（演示）", AccountScope::District, None),
    ];
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
