//! The contract's second edition in the store (migration 8): records at places (estates and grid
//! cells) with creator, assignee and two times, moves, the inbox, the reference index, and the
//! agency registry. Every story runs on SQLite (group commit, and statement by statement) and,
//! when `JIAYUAN_TEST_PG_URL` is set, on PostgreSQL (a fresh schema per run, dropped afterwards).

use std::future::Future;

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::MigratorTrait;

use jiayuan_domain::{
    AccountScope, AgencyKind, AgencyUnit, Division, EstateId, EstateKind, GridCell, GridKind, ManagementStatus, Place,
    RecordId, Role, Timestamp,
};

use super::{TEST_DB, code, day, estate_code};
use crate::migration::Migrator;
use crate::*;

/// The grid cell the stories put records at.
const CELL: &str = "440303004001001";
/// A grid code that is not in the registry.
const NO_CELL: &str = "440303004001999";

/// Runs `story` on a fresh, unmigrated store: SQLite with group commit, SQLite statement by
/// statement, and PostgreSQL when `JIAYUAN_TEST_PG_URL` is set.
async fn on_every_backend<F, Fut>(name: &str, story: F)
where
    F: Fn(Store) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    for grouped in [true, false] {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join(TEST_DB).display());
        let store = Store::connect(&DatabaseSettings::with_insecure_test_keys(url)).await.expect("connect");
        story(if grouped { store.clone() } else { store.without_group_commit() }).await;
        store.close().await.expect("close");
    }
    let Ok(base) = std::env::var("JIAYUAN_TEST_PG_URL") else {
        eprintln!("JIAYUAN_TEST_PG_URL is not set: skipping the PostgreSQL run of `{name}`");
        return;
    };
    let schema = format!("jy_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(base.as_str()).await.expect("connect to the test database");
    admin.execute_unprepared(&format!("CREATE SCHEMA {schema}")).await.expect("create schema");
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options[search_path]={schema}");
    let outcome = tokio::spawn(async move {
        let store = Store::connect(&DatabaseSettings::with_insecure_test_keys(url)).await.expect("connect");
        assert_eq!(store.backend(), Backend::Postgres);
        story(store.clone()).await;
        store.close().await.expect("close");
    })
    .await;
    admin.execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE")).await.expect("drop schema");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The district, a street and a community; two estates and a grid cell in the community.
async fn seed(store: &Store) -> (EstateId, EstateId) {
    for (c, name) in [("440303000000", "罗湖区"), ("440303004000", "翠竹街道"), ("440303004001", "翠竹社区")]
    {
        let c = code(c);
        store
            .upsert_division(&Division {
                level: c.level(),
                parent: c.parent(),
                code: c,
                name_zh: name.into(),
                valid_from: day(2005, 1, 1),
                valid_to: None,
            })
            .await
            .expect("division");
    }
    let mut txn = store.registry_txn().await.expect("registry txn");
    let mut estates = Vec::new();
    for (c, name) in [("LH-CZ-001", "翠竹苑"), ("LH-CZ-002", "翠竹花园")] {
        let estate = txn
            .upsert_estate(&NewEstate {
                code: estate_code(c),
                kind: EstateKind::Estate,
                name: name.into(),
                community: code("440303004001"),
                address: "翠竹路".into(),
                management: ManagementStatus::PropertyManaged,
                onboarding: None,
                households: 10,
            })
            .await
            .expect("estate")
            .id();
        estates.push(estate);
    }
    txn.commit().await.expect("commit estates");
    store
        .insert_grid_cell(&GridCell {
            code: CELL.into(),
            kind: GridKind::Basic,
            community: code("440303004001"),
            name: "翠竹一网格".into(),
            estate_id: None,
            valid_from: day(2024, 1, 1),
            valid_to: None,
        })
        .await
        .expect("grid cell");
    (estates[0], estates[1])
}

fn refers(kind: RefKind, id: &str, field: &str) -> RecordRef {
    RecordRef { kind, id: id.into(), field: field.into() }
}

fn create(plugin: &str, kind: &str, place: Place, state: &str, refs: Vec<RecordRef>, at: i64) -> NewRecord {
    NewRecord {
        plugin: plugin.into(),
        kind: kind.into(),
        place,
        parent: None,
        state: state.into(),
        data_json: format!(r#"{{"at":{at}}}"#),
        keys: Vec::new(),
        refs,
        at: Timestamp(at),
        occurred_at: Timestamp(at),
        backdated_reason: None,
        actor: "creator".into(),
    }
}

fn edit(plugin: &str, id: RecordId, expected: i64, state: &str, refs: Vec<RecordRef>, at: i64) -> RecordUpdate {
    RecordUpdate {
        plugin: plugin.into(),
        id,
        expected_version: expected,
        action: "edit".into(),
        new_state: state.into(),
        data_json: format!(r#"{{"at":{at}}}"#),
        keys: Vec::new(),
        refs,
        move_to: None,
        assignee: None,
        at: Timestamp(at),
        occurred_at: Timestamp(at),
        backdated_reason: None,
        actor: "colleague".into(),
    }
}

fn alert_at(estate: Option<EstateId>, grid_cell: Option<&str>, dedupe: &str) -> NewAlert {
    NewAlert {
        plugin: "p".into(),
        record: None,
        estate_id: estate,
        grid_cell: grid_cell.map(str::to_owned),
        rule: "overdue".into(),
        dedupe_key: dedupe.into(),
        severity: "warning".into(),
        message_zh: "已逾期".into(),
        message_en: "overdue".into(),
        due_at: None,
        at: Timestamp(50),
    }
}

async fn one(store: &Store, create: NewRecord) -> RecordId {
    store.write(WriteBatch { creates: vec![create], ..WriteBatch::default() }).await.expect("create").created[0]
}

async fn apply(store: &Store, update: RecordUpdate) {
    store.write(WriteBatch { updates: vec![update], ..WriteBatch::default() }).await.expect("update");
}

fn ids(records: &[StoredRecord]) -> Vec<RecordId> {
    records.iter().map(|r| r.id).collect()
}

fn estates(list: &[EstateId]) -> Option<PlaceSet> {
    Some(PlaceSet { estates: list.to_vec(), grid_cells: Vec::new() })
}

fn cells(list: &[&str]) -> Option<PlaceSet> {
    Some(PlaceSet { estates: Vec::new(), grid_cells: list.iter().map(|c| (*c).to_owned()).collect() })
}

async fn places_story(store: Store) {
    store.migrate().await.expect("migrate");
    let (e1, e2) = seed(&store).await;
    let cell = Place::GridCell(CELL.into());

    // --- Creates at estates and at a grid cell; the grid-cell record round-trips, back-dated.
    let a = one(
        &store,
        create(
            "p",
            "case",
            Place::Estate(e1),
            "open",
            vec![refers(RefKind::Person, "1", "owner"), refers(RefKind::House, "5", "address")],
            100,
        ),
    )
    .await;
    let b = one(&store, create("p", "case", Place::Estate(e2), "waiting", Vec::new(), 110)).await;
    let shop = one(
        &store,
        NewRecord {
            occurred_at: Timestamp(90),
            backdated_reason: Some("reported late".into()),
            ..create("p", "shop", cell.clone(), "open", vec![refers(RefKind::Firm, "9", "operator")], 120)
        },
    )
    .await;
    let c = one(&store, create("other", "case", Place::Estate(e1), "waiting", Vec::new(), 130)).await;
    let stored = store.record("p", shop).await.expect("read").expect("exists");
    assert_eq!(
        (stored.place.clone(), stored.estate_id(), stored.created_by.as_str(), stored.assignee.clone()),
        (cell.clone(), None, "creator", None)
    );
    assert_eq!((stored.created_at, stored.occurred_at), (Timestamp(120), Timestamp(90)));
    let history = store.events("p", shop).await.expect("events");
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].place.clone(), history[0].at, history[0].occurred_at, history[0].backdated_reason.as_deref()),
        (Some(cell.clone()), Timestamp(120), Timestamp(90), Some("reported late"))
    );
    assert_eq!(store.record("p", a).await.expect("read").expect("exists").estate_id(), Some(e1));
    let unknown = store
        .write(WriteBatch {
            creates: vec![create("p", "shop", Place::GridCell(NO_CELL.into()), "open", Vec::new(), 140)],
            ..WriteBatch::default()
        })
        .await;
    assert!(matches!(unknown, Err(StoreError::MissingReference { .. })), "{unknown:?}");

    // --- Places: estates OR grid cells; an empty set matches nothing.
    let p = |places: Option<PlaceSet>| RecordFilter { plugin: "p".into(), places, ..RecordFilter::default() };
    assert_eq!(ids(&store.records(&p(estates(&[e1]))).await.expect("records")), vec![a]);
    assert_eq!(ids(&store.records(&p(cells(&[CELL]))).await.expect("records")), vec![shop]);
    let both = Some(PlaceSet { estates: vec![e1], grid_cells: vec![CELL.into()] });
    assert_eq!(ids(&store.records(&p(both.clone())).await.expect("records")), vec![a, shop]);
    assert_eq!(store.count_records(&p(both.clone())).await.expect("count"), 2);
    assert!(store.records(&p(Some(PlaceSet::default()))).await.expect("records").is_empty());
    assert_eq!(store.count_records(&p(Some(PlaceSet::default()))).await.expect("count"), 0);
    assert_eq!(ids(&store.records(&p(None)).await.expect("records")), vec![a, b, shop]);

    store
        .write(WriteBatch {
            alerts: vec![
                alert_at(Some(e1), None, "at-e1"),
                alert_at(None, Some(CELL), "at-cell"),
                alert_at(None, None, "nowhere"),
            ],
            ..WriteBatch::default()
        })
        .await
        .expect("alerts");
    let alerts = |places: Option<PlaceSet>| {
        let store = store.clone();
        async move {
            let found = store.alerts(&AlertFilter { places, ..AlertFilter::default() }).await.expect("alerts");
            found.into_iter().map(|a| (a.estate_id, a.grid_cell)).collect::<Vec<_>>()
        }
    };
    assert_eq!(alerts(cells(&[CELL])).await, vec![(None, Some(CELL.to_owned()))]);
    assert_eq!(alerts(both.clone()).await, vec![(Some(e1), None), (None, Some(CELL.to_owned()))]);
    assert_eq!(alerts(None).await.len(), 3);
    assert!(alerts(Some(PlaceSet::default())).await.is_empty());

    // --- Assignee through an update; the inbox: assigned to me OR waiting on my audience.
    apply(
        &store,
        RecordUpdate {
            assignee: Some(Some("alice".into())),
            ..edit("p", a, 1, "open", vec![refers(RefKind::Person, "1", "owner")], 200)
        },
    )
    .await;
    let stored = store.record("p", a).await.expect("read").expect("exists");
    assert_eq!((stored.assignee.as_deref(), stored.created_by.as_str(), stored.version), (Some("alice"), "creator", 2));
    let alices = RecordFilter { assignee: Some("alice".into()), ..p(None) };
    assert_eq!(ids(&store.records(&alices).await.expect("records")), vec![a]);
    let waiting = |plugin: &str| (plugin.to_owned(), "case".to_owned(), "waiting".to_owned());
    let inbox = InboxFilter { assignee: "alice".into(), waiting: vec![waiting("p")], ..InboxFilter::default() };
    assert_eq!(ids(&store.inbox(&inbox).await.expect("inbox")), vec![b, a], "by last change");
    let wider = InboxFilter { waiting: vec![waiting("p"), waiting("other")], ..inbox.clone() };
    assert_eq!(ids(&store.inbox(&wider).await.expect("inbox")), vec![b, c, a]);
    let only_p = InboxFilter { plugins: Some(vec!["p".into()]), ..wider.clone() };
    assert_eq!(ids(&store.inbox(&only_p).await.expect("inbox")), vec![b, a]);
    let in_e1 = InboxFilter { places: estates(&[e1]), ..wider.clone() };
    assert_eq!(ids(&store.inbox(&in_e1).await.expect("inbox")), vec![c, a]);
    let limited = InboxFilter { limit: 1, ..wider.clone() };
    assert_eq!(ids(&store.inbox(&limited).await.expect("inbox")), vec![b]);
    assert!(store.inbox(&InboxFilter { plugins: Some(vec![]), ..wider.clone() }).await.expect("inbox").is_empty());
    assert!(store.inbox(&InboxFilter { places: Some(PlaceSet::default()), ..wider }).await.expect("inbox").is_empty());

    // --- A move: the record's place changes, its history keeps where it was.
    apply(&store, RecordUpdate { move_to: Some(cell.clone()), ..edit("p", b, 1, "waiting", Vec::new(), 300) }).await;
    let moved = store.record("p", b).await.expect("read").expect("exists");
    assert_eq!((moved.place.clone(), moved.estate_id()), (cell.clone(), None));
    let places: Vec<Option<Place>> = store.events("p", b).await.expect("events").into_iter().map(|e| e.place).collect();
    assert_eq!(places, vec![Some(Place::Estate(e2)), Some(cell.clone())]);
    assert_eq!(ids(&store.records(&p(cells(&[CELL]))).await.expect("records")), vec![b, shop]);
    assert!(store.records(&p(estates(&[e2]))).await.expect("records").is_empty());
    let nowhere = store
        .write(WriteBatch {
            updates: vec![RecordUpdate {
                move_to: Some(Place::GridCell(NO_CELL.into())),
                ..edit("p", b, 2, "waiting", Vec::new(), 310)
            }],
            ..WriteBatch::default()
        })
        .await;
    assert!(matches!(nowhere, Err(StoreError::MissingReference { .. })), "{nowhere:?}");

    // --- Clearing the assignee (Some(None)); `None` leaves it as it is.
    apply(
        &store,
        RecordUpdate {
            assignee: Some(None),
            ..edit("p", a, 2, "open", vec![refers(RefKind::Person, "1", "owner")], 400)
        },
    )
    .await;
    assert_eq!(store.record("p", a).await.expect("read").expect("exists").assignee, None);
    assert_eq!(ids(&store.inbox(&inbox).await.expect("inbox")), vec![b]);

    // --- The reference index: first and last version, and whether the current one still refers.
    let house = store.records_referring(RefKind::House, "5").await.expect("referring");
    let expected =
        |record_id: RecordId, field: &str, first_version: i64, last_version: i64, current: bool| ReferringRecord {
            plugin: "p".into(),
            record_id,
            kind: "case".into(),
            field: field.into(),
            first_version,
            last_version,
            current,
        };
    assert_eq!(house, vec![expected(a, "address", 1, 1, false)]);
    let person = store.records_referring(RefKind::Person, "1").await.expect("referring");
    assert_eq!(person, vec![expected(a, "owner", 1, 3, true)]);
    assert!(store.records_referring(RefKind::Person, "5").await.expect("referring").is_empty());
    let firm = store.records_referring(RefKind::Firm, "9").await.expect("referring");
    assert_eq!(
        firm.iter().map(|r| (r.record_id, r.kind.as_str(), r.current)).collect::<Vec<_>>(),
        vec![(shop, "shop", true)]
    );

    // --- The backfill: records without references, written once and idempotently.
    let bare = store.record_ids_without_refs("p", None, 0).await.expect("without refs");
    assert_eq!(ids(&bare), vec![b]);
    assert!(store.record_ids_without_refs("p", Some(b), 10).await.expect("without refs").is_empty());
    let keeper = [refers(RefKind::Person, "7", "keeper"), refers(RefKind::Person, "7", "keeper")];
    for _ in 0..2 {
        store.write_refs("p", b, 2, &keeper).await.expect("write refs");
    }
    assert_eq!(
        store.records_referring(RefKind::Person, "7").await.expect("referring"),
        vec![expected(b, "keeper", 2, 2, true)]
    );
    assert!(store.record_ids_without_refs("p", None, 0).await.expect("without refs").is_empty());
    let foreign = store.write_refs("other", b, 2, &keeper).await;
    assert!(matches!(foreign, Err(StoreError::NotFound { what: "record", .. })), "{foreign:?}");
}

#[tokio::test]
async fn records_live_at_places_with_assignees_moves_inbox_and_references() {
    on_every_backend("places", places_story).await;
}

async fn agency_story(store: Store) {
    store.migrate().await.expect("migrate");
    seed(&store).await;
    let at = Timestamp(1_000);

    // --- Kinds: seeded, added, renamed; a malformed code is refused by field and rule.
    let kinds = store.agency_kinds().await.expect("kinds");
    assert_eq!(kinds.len(), jiayuan_domain::DEFAULT_AGENCY_KINDS.len());
    assert!(kinds.iter().any(|k| k.code == "police" && k.name_zh == "派出所"));
    let vet =
        AgencyKind { code: "veterinary".into(), name_zh: "动物防疫站".into(), name_en: "Animal health".into() };
    store.upsert_agency_kind(&vet, "admin", at).await.expect("add kind");
    let police = AgencyKind { code: "police".into(), name_zh: "派出所".into(), name_en: "Police".into() };
    store.upsert_agency_kind(&police, "admin", at).await.expect("rename kind");
    let kinds = store.agency_kinds().await.expect("kinds");
    assert_eq!(kinds.len(), jiayuan_domain::DEFAULT_AGENCY_KINDS.len() + 1);
    assert!(kinds.contains(&vet) && kinds.contains(&police));
    let bad = store.upsert_agency_kind(&AgencyKind { code: "Police!".into(), ..police.clone() }, "admin", at).await;
    assert!(matches!(bad, Err(StoreError::Rule { field: "code", rule: "agency_kind_code" })), "{bad:?}");

    // --- Units: created, read back; duplicate, unknown kind and unknown division refused.
    let street = code("440303004000");
    let unit = store.create_agency_unit("police", "翠竹派出所", &street, "admin", at).await.expect("unit");
    let expected =
        AgencyUnit { id: unit, kind: "police".into(), name: "翠竹派出所".into(), jurisdiction: street.clone() };
    assert_eq!(store.agency_unit(unit).await.expect("unit"), Some(expected.clone()));
    assert_eq!(store.agency_units().await.expect("units"), vec![expected]);
    assert_eq!(store.agency_unit(jiayuan_domain::AgencyUnitId(unit.0 + 100)).await.expect("unit"), None);
    let twin = store.create_agency_unit("police", "翠竹派出所", &street, "admin", at).await;
    assert!(matches!(twin, Err(StoreError::Rule { field: "name", rule: "agency_unit_exists" })), "{twin:?}");
    let spies = store.create_agency_unit("spies", "某处", &street, "admin", at).await;
    assert!(matches!(spies, Err(StoreError::Rule { field: "kind", rule: "unknown_agency_kind" })), "{spies:?}");
    let nowhere = store.create_agency_unit("police", "某所", &code("440303999000"), "admin", at).await;
    assert!(
        matches!(nowhere, Err(StoreError::Rule { field: "jurisdiction", rule: "unknown_division" })),
        "{nowhere:?}"
    );
    for refused in [&twin, &spies, &nowhere] {
        let text = refused.as_ref().map(|_| ()).expect_err("refused").to_string();
        assert!(!text.contains("翠竹派出所") && !text.contains("spies") && !text.contains("440303999000"), "{text}");
    }
    let other = store.create_agency_unit("judicial", "翠竹司法所", &street, "admin", at).await.expect("unit");

    // --- An agency officer's account belongs to a unit.
    let officer = NewAccount {
        login: "police.zhang".into(),
        display_name: "张警官".into(),
        role: Role::AgencyOfficer,
        scope: AccountScope::Division(street.clone()),
        items: Some(vec!["dog-licensing".into()]),
        password_hash: None,
        agency_unit: Some(unit),
    };
    let id = store.insert_account(&officer, "admin", at).await.expect("officer");
    assert_eq!(store.account(id).await.expect("account").expect("exists").agency_unit, Some(unit));
    let moved = AccountChange { agency_unit: Some(Some(other)), ..AccountChange::default() };
    assert_eq!(store.update_account(id, &moved, "admin", at).await.expect("update").agency_unit, Some(other));
    let cleared = AccountChange { agency_unit: Some(None), ..AccountChange::default() };
    store.update_account(id, &cleared, "admin", at).await.expect("update");
    assert_eq!(store.account(id).await.expect("account").expect("exists").agency_unit, None);
    let ghost = jiayuan_domain::AgencyUnitId(other.0 + 100);
    let refused = store
        .update_account(id, &AccountChange { agency_unit: Some(Some(ghost)), ..AccountChange::default() }, "admin", at)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Rule { field: "agency_unit", rule: "unknown_agency_unit" })),
        "{refused:?}"
    );
    let refused = store
        .insert_account(&NewAccount { login: "police.li".into(), agency_unit: Some(ghost), ..officer }, "admin", at)
        .await;
    assert!(matches!(refused, Err(StoreError::Rule { field: "agency_unit", .. })), "{refused:?}");

    // --- Every change audited, the chain unbroken.
    let actions: Vec<String> = store.audit_events(0, 0).await.expect("audit").into_iter().map(|e| e.action).collect();
    for action in ["registry.agency_kind.upsert", "registry.agency_unit.create", "account.create", "account.update"] {
        assert!(actions.iter().any(|a| a == action), "{action} missing from {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| *a == "registry.agency_unit.create").count(), 2);
    assert!(store.verify_audit().await.expect("verify").is_ok());
}

#[tokio::test]
async fn agency_kinds_are_seeded_and_units_and_officers_are_registry_data() {
    on_every_backend("agency", agency_story).await;
}

/// Raw SQL of a database at migration 7: a record with two events (by different actors), a key
/// and an alert.
fn legacy_rows(estate: EstateId) -> Vec<String> {
    let e = estate.0;
    vec![
        format!(
            "INSERT INTO records (plugin, kind, estate_id, parent_id, state, prev_state, data_json, created_at, \
             updated_at, state_entered_at, version) VALUES ('dog', 'licence', {e}, NULL, 'approved', 'submitted', \
             '{{}}', 1000, 2000, 2000, 2)"
        ),
        "INSERT INTO record_events (record_id, plugin, at, actor, action, from_state, to_state, data_json) VALUES \
         (1, 'dog', 1000, 'user:first', 'create', NULL, 'submitted', '{}'), \
         (1, 'dog', 2000, 'user:second', 'approve', 'submitted', 'approved', '{}')"
            .to_owned(),
        "INSERT INTO record_keys (record_id, field, value, plugin, kind, unique_value) VALUES \
         (1, 'no', 'L-1', 'dog', 'licence', 'L-1')"
            .to_owned(),
        format!(
            "INSERT INTO alerts (plugin, record_id, estate_id, rule, dedupe_key, severity, message_zh, message_en, \
             due_at, raised_at) VALUES ('dog', 1, {e}, 'overdue', 'd1', 'warning', '逾期', 'overdue', NULL, 1500)"
        ),
    ]
}

async fn migration_story(store: Store) {
    Migrator::up(&store.writer, Some(7)).await.expect("migrations 1 to 7");
    let (estate, _) = seed(&store).await;
    for sql in legacy_rows(estate) {
        store.writer.execute_unprepared(&sql).await.expect("legacy row");
    }
    if store.backend() == Backend::Sqlite {
        // Ids up to 10 were handed out once (refused creates): none may be handed out again.
        let seq = "UPDATE sqlite_sequence SET seq = 10 WHERE name = 'records'";
        store.writer.execute_unprepared(seq).await.expect("high-water mark");
    }
    let report = store.migrate().await.expect("migration 8");
    assert_eq!(report.applied, vec!["m20261201_000008_contract_second_edition".to_owned()]);

    // The record is kept: at its estate, created by its first event's actor, occurred at creation.
    let r = store.record("dog", RecordId(1)).await.expect("read").expect("kept");
    assert_eq!(
        (r.place.clone(), r.created_by.as_str(), r.assignee.clone(), r.occurred_at, r.version, r.state.as_str()),
        (Place::Estate(estate), "user:first", None, Timestamp(1000), 2, "approved")
    );
    let events = store.events("dog", RecordId(1)).await.expect("events");
    assert_eq!(
        events.iter().map(|e| (e.place.clone(), e.occurred_at, e.backdated_reason.clone())).collect::<Vec<_>>(),
        vec![
            (Some(Place::Estate(estate)), Timestamp(1000), None),
            (Some(Place::Estate(estate)), Timestamp(2000), None)
        ]
    );
    let by_key =
        RecordFilter { plugin: "dog".into(), key: Some(("no".into(), "L-1".into())), ..RecordFilter::default() };
    assert_eq!(ids(&store.records(&by_key).await.expect("by key")), vec![RecordId(1)]);
    let alerts = store.alerts(&AlertFilter::default()).await.expect("alerts");
    assert_eq!(
        alerts.iter().map(|a| (a.record_id, a.grid_cell.clone())).collect::<Vec<_>>(),
        vec![(Some(RecordId(1)), None)]
    );
    assert_eq!(ids(&store.record_ids_without_refs("dog", None, 0).await.expect("without refs")), vec![RecordId(1)]);

    // The rebuilt table keeps its rules: foreign keys, the one-place check, ids going on.
    let bad_estate = store
        .write(WriteBatch {
            creates: vec![create("dog", "licence", Place::Estate(EstateId(estate.0 + 50)), "s", Vec::new(), 3000)],
            ..WriteBatch::default()
        })
        .await;
    assert!(matches!(bad_estate, Err(StoreError::MissingReference { .. })), "{bad_estate:?}");
    let both = store
        .writer
        .execute_unprepared(&format!(
            "INSERT INTO records (plugin, kind, estate_id, grid_cell, state, data_json, created_at, updated_at, \
             state_entered_at, version, created_by, occurred_at) VALUES ('dog', 'x', {}, '{CELL}', 's', '{{}}', 1, 1, \
             1, 1, 'a', 1)",
            estate.0
        ))
        .await;
    assert!(both.is_err(), "a record at two places");
    let next = one(&store, create("dog", "licence", Place::GridCell(CELL.into()), "s", Vec::new(), 3000)).await;
    if store.backend() == Backend::Sqlite {
        // Ids go on after the rebuild's high-water mark (PostgreSQL keeps its sequence).
        assert_eq!(next, RecordId(11));
        let check = Statement::from_string(DbBackend::Sqlite, "PRAGMA foreign_key_check");
        assert!(store.reader.query_all_raw(check).await.expect("fk check").is_empty());
        let names = Statement::from_string(
            DbBackend::Sqlite,
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records' ORDER BY name",
        );
        let rows = store.reader.query_all_raw(names).await.expect("indexes");
        let names: Vec<String> = rows.iter().map(|r| r.try_get::<String>("", "name").expect("name")).collect();
        assert_eq!(
            names,
            [
                "idx_records_assignee",
                "idx_records_plugin_kind_estate_id",
                "idx_records_plugin_kind_estate_state",
                "idx_records_plugin_kind_grid_cell_id",
                "idx_records_plugin_parent",
            ]
        );
    }

    // Going down refuses while a record sits at a grid cell, and undoes nothing.
    assert!(Migrator::down(&store.writer, Some(1)).await.is_err());
    assert_eq!(store.record("dog", next).await.expect("read").map(|r| r.place), Some(Place::GridCell(CELL.into())));
}

#[tokio::test]
async fn migration_8_keeps_the_records_of_a_database_at_migration_7() {
    on_every_backend("migration 8", migration_story).await;
}
