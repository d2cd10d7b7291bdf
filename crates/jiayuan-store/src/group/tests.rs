//! Tests of group commit on SQLite: concurrent batches share commits and still each get their own
//! outcome; the one-round-trip form writes and refuses exactly what the statement-by-statement
//! form does; cancelled callers, BUSY from another process, dropping and closing the store.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use sea_orm::{EntityTrait, PaginatorTrait, QueryOrder};
use tokio::task::JoinSet;

use jiayuan_domain::{EstateId, Place, RecordId, Timestamp};

use super::{MAX_GROUP_BATCHES, MAX_GROUP_ROWS};
use crate::entity::{alert, audit_event, record, record_event, record_key, record_ref};
use crate::tests::{TEST_DB, store_with_estate};
use crate::*;

fn key(field: &str, value: &str, unique: bool) -> IndexKey {
    IndexKey { field: field.into(), value: value.into(), unique }
}

fn create(plugin: &str, kind: &str, estate: EstateId, keys: Vec<IndexKey>, at: i64) -> NewRecord {
    NewRecord {
        plugin: plugin.into(),
        kind: kind.into(),
        place: Place::Estate(estate),
        parent: None,
        state: "open".into(),
        data_json: format!(r#"{{"at":{at}}}"#),
        keys,
        refs: Vec::new(),
        at: Timestamp(at),
        occurred_at: Timestamp(at),
        backdated_reason: None,
        actor: "user:1".into(),
    }
}

fn update(plugin: &str, id: RecordId, expected: i64, state: &str, keys: Vec<IndexKey>, at: i64) -> RecordUpdate {
    RecordUpdate {
        plugin: plugin.into(),
        id,
        expected_version: expected,
        action: format!("to-{state}"),
        new_state: state.into(),
        data_json: format!(r#"{{"at":{at},"state":"{state}"}}"#),
        keys,
        refs: Vec::new(),
        move_to: None,
        assignee: None,
        at: Timestamp(at),
        occurred_at: Timestamp(at),
        backdated_reason: None,
        actor: "user:2".into(),
    }
}

fn alert(plugin: &str, record: Option<AlertTarget>, dedupe: &str, at: i64) -> NewAlert {
    NewAlert {
        plugin: plugin.into(),
        record,
        estate_id: None,
        grid_cell: None,
        rule: "overdue".into(),
        dedupe_key: dedupe.into(),
        severity: "warning".into(),
        message_zh: "已逾期".into(),
        message_en: "overdue".into(),
        due_at: Some(Timestamp(at + 1000)),
        at: Timestamp(at),
    }
}

fn audit_row(object: &str, action: &str, at: i64) -> NewAudit {
    NewAudit {
        at: Timestamp(at),
        actor: "user:1".into(),
        action: action.into(),
        target: AuditTarget::Object(object.into()),
        estate_id: None,
        detail_json: format!(r#"{{"at":{at}}}"#),
    }
}

/// The batch with one audit event per create (named in-batch) and per update.
fn audited(mut batch: WriteBatch) -> WriteBatch {
    for (i, c) in batch.creates.iter().enumerate() {
        batch.audit.push(NewAudit {
            target: AuditTarget::InBatch(i),
            estate_id: c.place.estate(),
            ..audit_row("", "record.create", c.at.0)
        });
    }
    for u in &batch.updates {
        let action = format!("record.transition:{}", u.action);
        batch.audit.push(audit_row(&format!("{}/record/{}", u.plugin, u.id.0), &action, u.at.0));
    }
    batch
}

fn creates(records: Vec<NewRecord>) -> WriteBatch {
    WriteBatch { creates: records, ..WriteBatch::default() }
}

fn counts(store: &Store) -> super::GroupCounts {
    store.group_counts().expect("SQLite stores group-commit")
}

/// Rows in (records, record_keys, record_events, alerts).
async fn table_counts(store: &Store) -> (u64, u64, u64, u64) {
    let db = &store.reader;
    (
        record::Entity::find().count(db).await.expect("count records"),
        record_key::Entity::find().count(db).await.expect("count keys"),
        record_event::Entity::find().count(db).await.expect("count events"),
        alert::Entity::find().count(db).await.expect("count alerts"),
    )
}

/// Every row of the record engine's tables, in key order.
type Dump =
    (Vec<record::Model>, Vec<record_key::Model>, Vec<record_event::Model>, Vec<alert::Model>, Vec<record_ref::Model>);

/// Every row of the record engine's tables, in key order.
async fn dump(store: &Store) -> Dump {
    let db = &store.reader;
    (
        record::Entity::find().order_by_asc(record::Column::Id).all(db).await.expect("records"),
        record_key::Entity::find()
            .order_by_asc(record_key::Column::RecordId)
            .order_by_asc(record_key::Column::Field)
            .order_by_asc(record_key::Column::Value)
            .all(db)
            .await
            .expect("keys"),
        record_event::Entity::find().order_by_asc(record_event::Column::Seq).all(db).await.expect("events"),
        alert::Entity::find().order_by_asc(alert::Column::Id).all(db).await.expect("alerts"),
        record_ref::Entity::find()
            .order_by_asc(record_ref::Column::RecordId)
            .order_by_asc(record_ref::Column::Version)
            .order_by_asc(record_ref::Column::RefKind)
            .order_by_asc(record_ref::Column::RefId)
            .order_by_asc(record_ref::Column::Field)
            .all(db)
            .await
            .expect("refs"),
    )
}

/// A reference of `kind` to `id` through `field`.
fn refers(kind: RefKind, id: &str, field: &str) -> RecordRef {
    RecordRef { kind, id: id.into(), field: field.into() }
}

/// The grid cell the parity test puts records at.
const CELL: &str = "440303004001001";

async fn add_cell(store: &Store) {
    store
        .insert_grid_cell(&jiayuan_domain::GridCell {
            code: CELL.into(),
            kind: jiayuan_domain::GridKind::Basic,
            community: jiayuan_domain::DivisionCode::parse("440303004001").expect("community code"),
            name: "翠竹一网格".into(),
            estate_id: None,
            valid_from: jiayuan_domain::Date::from_ymd(2024, 1, 1).expect("date"),
            valid_to: None,
        })
        .await
        .expect("grid cell");
}

/// Polls `fut` once (so a write is queued) and reports whether it is still waiting.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(std::pin::Pin::new(fut).poll(&mut cx), Poll::Pending)
}

#[derive(Debug)]
enum Expect {
    /// Creates one record with this unique `n` key, and raises its alert.
    Created(String),
    /// Updates the record to version 2.
    Updated(RecordId),
    UniqueKey(&'static str),
    VersionConflict(RecordId),
    NotFound,
    MissingReference,
    Invalid,
    /// One of a pair racing for the same unique value or alert dedupe key.
    Race(&'static str),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_each_get_their_own_outcome() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, estate) = store_with_estate(&dir, 5_000).await;
    // Existing state: a record holding the unique value "taken", and ten records to update.
    store
        .write(creates(vec![create("load", "case", estate, vec![key("n", "taken", true)], 0)]))
        .await
        .expect("the holder of `taken`");
    let mut targets = Vec::new();
    for i in 0..10 {
        targets.push(
            store.write(creates(vec![create("load", "case", estate, vec![], i)])).await.expect("target").created[0],
        );
    }
    let before = table_counts(&store).await;
    assert_eq!(before, (11, 1, 11, 0));

    let mut jobs: Vec<(Expect, WriteBatch)> = Vec::new();
    for i in 0..30 {
        let n = format!("ok-{i}");
        jobs.push((
            Expect::Created(n.clone()),
            WriteBatch {
                creates: vec![create("load", "note", estate, vec![key("n", &n, true), key("tag", "x", false)], i)],
                updates: vec![],
                alerts: vec![alert("load", Some(AlertTarget::InBatch(0)), &format!("alert-{i}"), i)],
                audit: vec![],
            },
        ));
    }
    for &t in &targets[..5] {
        jobs.push((
            Expect::Updated(t),
            WriteBatch {
                updates: vec![update("load", t, 1, "closed", vec![key("u", "1", false)], 9)],
                ..WriteBatch::default()
            },
        ));
    }
    for &t in &targets[5..] {
        jobs.push((
            Expect::VersionConflict(t),
            WriteBatch { updates: vec![update("load", t, 0, "closed", vec![], 9)], ..WriteBatch::default() },
        ));
    }
    for i in 0..4 {
        jobs.push((
            Expect::UniqueKey("taken"),
            creates(vec![create("load", "case", estate, vec![key("n", "taken", true)], 100 + i)]),
        ));
    }
    // A batch whose first create is fine and whose second takes a used value: none of it lands.
    jobs.push((
        Expect::UniqueKey("taken"),
        WriteBatch {
            creates: vec![
                create("load", "case", estate, vec![key("n", "half-way", true)], 200),
                create("load", "case", estate, vec![key("n", "taken", true)], 200),
            ],
            updates: vec![],
            alerts: vec![alert("load", Some(AlertTarget::InBatch(0)), "half-way", 200)],
            audit: vec![],
        },
    ));
    for i in 0..3 {
        jobs.push((
            Expect::MissingReference,
            creates(vec![create("load", "case", EstateId(estate.0 + 99), vec![], i)]),
        ));
    }
    jobs.push((
        Expect::NotFound,
        WriteBatch { updates: vec![update("other", targets[0], 1, "closed", vec![], 9)], ..WriteBatch::default() },
    ));
    jobs.push((
        Expect::Invalid,
        WriteBatch {
            alerts: vec![alert("load", Some(AlertTarget::InBatch(3)), "nowhere", 0)],
            ..WriteBatch::default()
        },
    ));
    for _ in 0..2 {
        jobs.push((
            Expect::Race("race"),
            creates(vec![create("load", "case", estate, vec![key("n", "race", true)], 300)]),
        ));
        jobs.push((
            Expect::Race("shared-alert"),
            WriteBatch { alerts: vec![alert("load", None, "shared-alert", 300)], ..WriteBatch::default() },
        ));
    }
    let total = jobs.len();

    let mut set = JoinSet::new();
    for (expect, batch) in jobs {
        let store = store.clone();
        set.spawn(async move { (expect, store.write(batch).await) });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = set.join_next().await {
        outcomes.push(done.expect("writer task ran"));
    }
    assert_eq!(outcomes.len(), total);

    let mut race_wins = 0;
    let mut shared_alerts = 0;
    let mut created_ids = Vec::new();
    for (expect, outcome) in &outcomes {
        match (expect, outcome) {
            (Expect::Created(n), Ok(res)) => {
                assert_eq!(res.alerts_raised, 1, "{n}");
                let [id] = res.created[..] else { panic!("one create: {res:?}") };
                // The id returned is this caller's own record.
                let mine = RecordFilter {
                    plugin: "load".into(),
                    key: Some(("n".into(), n.clone())),
                    ..RecordFilter::default()
                };
                let found: Vec<RecordId> = store.records(&mine).await.expect("records").iter().map(|r| r.id).collect();
                assert_eq!(found, vec![id], "{n}");
                let alerts = store.alerts(&AlertFilter { record_id: Some(id), ..AlertFilter::default() }).await;
                assert_eq!(alerts.expect("alerts").len(), 1, "{n}");
                created_ids.push(id);
            }
            (Expect::Updated(id), Ok(res)) => {
                assert_eq!(res, &WriteResult::default());
                let stored = store.record("load", *id).await.expect("record").expect("target exists");
                assert_eq!((stored.version, stored.state.as_str()), (2, "closed"));
            }
            (Expect::VersionConflict(id), Err(StoreError::VersionConflict { id: got, expected: 0, found: 1 })) => {
                assert_eq!(got, id);
            }
            (Expect::UniqueKey(v), Err(StoreError::UniqueKey { field, value })) => {
                assert_eq!((field.as_str(), value.as_str()), ("n", *v));
            }
            (Expect::NotFound, Err(StoreError::NotFound { what: "record", .. }))
            | (Expect::MissingReference, Err(StoreError::MissingReference { .. }))
            | (Expect::Invalid, Err(StoreError::InvalidBatch(_))) => {}
            (Expect::Race("race"), Ok(res)) => {
                race_wins += 1;
                created_ids.push(res.created[0]);
            }
            (Expect::Race("race"), Err(StoreError::UniqueKey { value, .. })) => assert_eq!(value, "race"),
            (Expect::Race("shared-alert"), Ok(res)) => shared_alerts += res.alerts_raised,
            (expect, outcome) => panic!("expected {expect:?}, got {outcome:?}"),
        }
    }
    assert_eq!((race_wins, shared_alerts), (1, 1), "exactly one of each racing pair wins");
    created_ids.sort();
    created_ids.dedup();
    assert_eq!(created_ids.len(), 31, "every create got an id of its own");
    for &t in &targets[5..] {
        assert_eq!(store.record("load", t).await.expect("record").map(|r| r.version), Some(1));
    }
    let half_way =
        RecordFilter { plugin: "load".into(), key: Some(("n".into(), "half-way".into())), ..RecordFilter::default() };
    assert_eq!(store.count_records(&half_way).await.expect("count"), 0);

    // Records: 30 notes + the race winner. Keys: 2 per note + the winner's + 1 per updated
    // target. Events: one per create + one per update. Alerts: 30 + the shared one.
    let (records, keys, events, alerts) = table_counts(&store).await;
    assert_eq!(
        (records, keys, events, alerts),
        (before.0 + 31, before.1 + 60 + 1 + 5, before.2 + 31 + 5, before.3 + 31)
    );
}

#[tokio::test]
async fn concurrent_batches_share_commits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, estate) = store_with_estate(&dir, 5_000).await;
    let start = counts(&store);

    // 50 writers at once (on this one-thread runtime they are all queued before the writer
    // task runs again).
    const WRITES: usize = 50;
    let mut set = JoinSet::new();
    for i in 0..WRITES {
        let store = store.clone();
        set.spawn(async move {
            store.write(creates(vec![create("load", "case", estate, vec![key("n", &i.to_string(), true)], 0)])).await
        });
    }
    let mut ids = Vec::new();
    while let Some(done) = set.join_next().await {
        ids.push(done.expect("writer ran").expect("every write succeeds").created[0]);
    }
    let grouped = counts(&store);
    let commits = grouped.commits - start.commits;
    assert!(commits >= 1 && commits < WRITES as u64, "{WRITES} writes took {commits} commits");
    assert_eq!(grouped.one_trip - start.one_trip, WRITES as u64, "each small batch is one round trip");
    assert_eq!(grouped.replayed, start.replayed);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), WRITES);
    assert_eq!(table_counts(&store).await, (WRITES as u64, WRITES as u64, WRITES as u64, 0));

    // A lone writer is committed alone, without waiting for company.
    store.write(creates(vec![create("load", "case", estate, vec![], 1)])).await.expect("lone write");
    assert_eq!(counts(&store).commits, grouped.commits + 1);

    // More writers than a group holds: several groups, every batch written.
    let mut set = JoinSet::new();
    for _ in 0..MAX_GROUP_BATCHES + 6 {
        let store = store.clone();
        set.spawn(async move { store.write(creates(vec![create("load", "case", estate, vec![], 2)])).await });
    }
    let before = counts(&store).commits;
    while let Some(done) = set.join_next().await {
        done.expect("writer ran").expect("every write succeeds");
    }
    let commits = counts(&store).commits - before;
    assert!(commits >= 2 && commits < (MAX_GROUP_BATCHES + 6) as u64, "{commits} commits");

    // Batches too large to share the row budget: the one that does not fit waits for the next
    // group; all three are written (statement by statement: they are too large for one trip).
    let big = MAX_GROUP_ROWS / 3 + 100;
    let mut set = JoinSet::new();
    for b in 0..3 {
        let store = store.clone();
        let batch = creates((0..big).map(|i| create("bulk", "row", estate, vec![], (b * big + i) as i64)).collect());
        set.spawn(async move { store.write(batch).await });
    }
    let before = counts(&store);
    while let Some(done) = set.join_next().await {
        assert_eq!(done.expect("writer ran").expect("bulk write").created.len(), big);
    }
    let after = counts(&store);
    assert_eq!((after.commits - before.commits, after.replayed - before.replayed), (2, 3));
    let bulk = RecordFilter { plugin: "bulk".into(), ..RecordFilter::default() };
    assert_eq!(store.count_records(&bulk).await.expect("count"), 3 * big as u64);

    // Concurrent batches of several creates with references: grouped, one trip each, and every
    // reference indexed at version 1 of its own record.
    const REF_WRITES: usize = 20;
    let mut set = JoinSet::new();
    for w in 0..REF_WRITES {
        let store = store.clone();
        let batch = creates(
            (0..3)
                .map(|i| NewRecord {
                    refs: vec![
                        refers(RefKind::Person, "shared", "owner"),
                        refers(RefKind::House, &format!("{w}-{i}"), "address"),
                    ],
                    ..create("refs", "case", estate, vec![], 3)
                })
                .collect(),
        );
        set.spawn(async move { store.write(batch).await });
    }
    let before = counts(&store);
    let mut ids = Vec::new();
    while let Some(done) = set.join_next().await {
        ids.extend(done.expect("writer ran").expect("every write succeeds").created);
    }
    let after = counts(&store);
    assert_eq!(after.one_trip - before.one_trip, REF_WRITES as u64);
    assert!(after.commits - before.commits < REF_WRITES as u64, "{} commits", after.commits - before.commits);
    ids.sort();
    let shared = store.records_referring(RefKind::Person, "shared").await.expect("referring");
    assert_eq!(shared.iter().map(|r| r.record_id).collect::<Vec<_>>(), ids);
    assert!(shared.iter().all(|r| r.first_version == 1 && r.last_version == 1 && r.current && r.field == "owner"));
    let house = store.records_referring(RefKind::House, "7-2").await.expect("referring");
    assert_eq!(house.len(), 1);
    assert_eq!((house[0].plugin.as_str(), house[0].kind.as_str()), ("refs", "case"));
}

/// The one-round-trip form must write exactly the rows the statement-by-statement form writes
/// (ids, seqs, every column) and refuse exactly the same batches with the same errors.
#[tokio::test]
async fn one_round_trip_writes_what_statement_by_statement_writes() {
    let (dir_a, dir_b) = (tempfile::tempdir().expect("temp dir"), tempfile::tempdir().expect("temp dir"));
    let (grouped, estate) = store_with_estate(&dir_a, 5_000).await;
    let (plain, estate_b) = store_with_estate(&dir_b, 5_000).await;
    assert_eq!(estate, estate_b);
    let plain = plain.without_group_commit();
    add_cell(&grouped).await;
    add_cell(&plain).await;
    let r = RecordId;

    let mut licence = create("dog", "licence", estate, vec![key("no", "L-1", true), key("owner", "p1", false)], 10);
    licence.keys.push(key("owner", "p1", true)); // repeated keys merge, unique wins
    // References, one repeated (written once); back-dated with a reason.
    licence.refs = vec![
        refers(RefKind::Person, "1", "owner"),
        refers(RefKind::House, "5", "address"),
        refers(RefKind::Person, "1", "owner"),
    ];
    licence.occurred_at = Timestamp(3);
    licence.backdated_reason = Some("paper form".into());
    // A transition that moves the record to the grid cell, assigns it and changes its references.
    let mut approve = update("dog", r(1), 1, "approved", vec![key("no", "L-1X", true), key("owner", "p2", false)], 20);
    approve.move_to = Some(Place::GridCell(CELL.into()));
    approve.assignee = Some(Some("alice".into()));
    approve.refs = vec![refers(RefKind::Person, "2", "owner"), refers(RefKind::GridCell, CELL, "place")];
    approve.occurred_at = Timestamp(15);
    // An edit that clears the assignee and moves back to the estate.
    let mut edit = update("dog", r(1), 2, "approved", vec![key("no", "L-1X", true)], 30);
    edit.assignee = Some(None);
    edit.move_to = Some(Place::Estate(estate));
    edit.refs = vec![refers(RefKind::Person, "2", "owner")];
    let mut at_cell = create("dog", "shop", estate, vec![key("no", "S-1", true)], 70);
    at_cell.place = Place::GridCell(CELL.into());
    at_cell.refs = vec![refers(RefKind::Firm, "9", "operator")];
    let mut at_unknown_cell = create("dog", "shop", estate, vec![], 50);
    at_unknown_cell.place = Place::GridCell("440303004001999".into());
    let mut move_unknown = update("dog", r(3), 1, "approved", vec![], 50);
    move_unknown.move_to = Some(Place::GridCell("440303004001999".into()));
    let mut vaccination = create("dog", "vaccination", estate, vec![key("no", "L-1", true)], 10);
    vaccination.parent = Some(ParentRef::InBatch(0));
    let mut child = create("dog", "vaccination", estate, vec![key("batch", "B7", false)], 40);
    child.parent = Some(ParentRef::Existing(r(1)));
    let mut foreign_child = create("cat", "x", estate, vec![], 40);
    foreign_child.parent = Some(ParentRef::Existing(r(1)));
    let batches: Vec<WriteBatch> = vec![
        WriteBatch {
            creates: vec![licence, vaccination],
            updates: vec![],
            alerts: vec![alert("dog", Some(AlertTarget::InBatch(0)), "a1", 10), alert("dog", None, "a2", 10)],
            audit: vec![],
        },
        // A transition, replacing keys; one alert new and one already raised.
        WriteBatch {
            creates: vec![],
            updates: vec![approve],
            alerts: vec![alert("dog", Some(AlertTarget::Existing(r(1))), "a1", 20), alert("dog", None, "a3", 20)],
            audit: vec![],
        },
        // An edit that keeps the state (state_entered_at stays), and a create, together.
        WriteBatch {
            creates: vec![create("dog", "licence", estate, vec![key("no", "L-1", true)], 30)],
            updates: vec![edit],
            alerts: vec![alert("dog", Some(AlertTarget::InBatch(0)), "a4", 30), alert("dog", None, "a4", 30)],
            audit: vec![],
        },
        WriteBatch { creates: vec![child], ..WriteBatch::default() },
        // Refused: a taken unique key (by a create, by an update), twins in one batch.
        creates(vec![create("dog", "licence", estate, vec![key("no", "L-1X", true)], 50)]),
        WriteBatch {
            updates: vec![update("dog", r(3), 1, "approved", vec![key("no", "L-1X", true)], 50)],
            ..WriteBatch::default()
        },
        creates(vec![
            create("dog", "licence", estate, vec![key("no", "T", true)], 50),
            create("dog", "licence", estate, vec![key("no", "T", true)], 50),
        ]),
        // Refused: stale version, another plugin's record, an unknown record.
        WriteBatch {
            creates: vec![create("dog", "licence", estate, vec![], 50)],
            updates: vec![update("dog", r(1), 1, "revoked", vec![], 50)],
            alerts: vec![],
            audit: vec![],
        },
        WriteBatch { updates: vec![update("cat", r(1), 3, "x", vec![], 50)], ..WriteBatch::default() },
        WriteBatch { updates: vec![update("dog", r(999), 1, "x", vec![], 50)], ..WriteBatch::default() },
        // Refused: an unknown estate, a parent or alert target of another plugin.
        creates(vec![create("dog", "licence", EstateId(estate.0 + 7), vec![], 50)]),
        WriteBatch { creates: vec![foreign_child], ..WriteBatch::default() },
        WriteBatch { alerts: vec![alert("cat", Some(AlertTarget::Existing(r(1))), "c1", 50)], ..WriteBatch::default() },
        // Refused: an unknown grid cell, at a create and at a move.
        creates(vec![at_unknown_cell]),
        WriteBatch { updates: vec![move_unknown], ..WriteBatch::default() },
        // Fine again: ids go on without a gap after the refused creates.
        WriteBatch {
            creates: vec![create("dog", "licence", estate, vec![key("no", "L-9", true)], 60)],
            updates: vec![
                update("dog", r(1), 3, "revoked", vec![], 60),
                update("dog", r(3), 1, "approved", vec![key("no", "L-3", true)], 60),
            ],
            alerts: vec![alert("dog", Some(AlertTarget::Existing(r(3))), "a5", 60)],
            audit: vec![],
        },
        // A record at the grid cell, with an alert there.
        WriteBatch {
            creates: vec![at_cell],
            alerts: vec![NewAlert {
                grid_cell: Some(CELL.into()),
                ..alert("dog", Some(AlertTarget::InBatch(0)), "a6", 70)
            }],
            ..WriteBatch::default()
        },
    ];
    // Every batch audits its changes (creates by in-batch reference); one batch is audit only.
    let mut batches: Vec<WriteBatch> = batches.into_iter().map(audited).collect();
    batches.insert(4, WriteBatch { audit: vec![audit_row("plugin/dog", "plugin.load", 35)], ..WriteBatch::default() });
    let start = counts(&grouped);
    let mut ok = 0;
    for (i, batch) in batches.into_iter().enumerate() {
        let a = grouped.write(batch.clone()).await;
        let b = plain.write(batch).await;
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "batch {i}");
        ok += usize::from(a.is_ok());
    }
    assert_eq!(ok, 7);
    assert_eq!(dump(&grouped).await, dump(&plain).await);
    // The same audit chain, unbroken: refused batches left no row and no gap.
    let chain = |store: Store| async move {
        audit_event::Entity::find().order_by_asc(audit_event::Column::Seq).all(&store.reader).await.expect("audit")
    };
    let audit = chain(grouped.clone()).await;
    assert_eq!(audit, chain(plain.clone()).await);
    assert_eq!(
        audit.iter().map(|r| (r.seq, r.action.as_str(), r.object.as_str())).collect::<Vec<_>>(),
        vec![
            (1, "record.create", "dog/record/1"),
            (2, "record.create", "dog/record/2"),
            (3, "record.transition:to-approved", "dog/record/1"),
            (4, "record.create", "dog/record/3"),
            (5, "record.transition:to-approved", "dog/record/1"),
            (6, "record.create", "dog/record/4"),
            (7, "plugin.load", "plugin/dog"),
            (8, "record.create", "dog/record/5"),
            (9, "record.transition:to-revoked", "dog/record/1"),
            (10, "record.transition:to-approved", "dog/record/3"),
            (11, "record.create", "dog/record/6"),
        ]
    );
    for store in [&grouped, &plain] {
        let report = store.verify_audit().await.expect("verify");
        assert_eq!((report.events, report.fault), (11, None));
    }
    let (records, _, events, _, refs) = dump(&grouped).await;
    assert_eq!(records.iter().map(|r| r.id).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(
        records.iter().map(|r| (r.id, r.estate_id, r.grid_cell.as_deref(), r.assignee.as_deref())).collect::<Vec<_>>(),
        vec![
            (1, Some(estate.0), None, None),
            (2, Some(estate.0), None, None),
            (3, Some(estate.0), None, None),
            (4, Some(estate.0), None, None),
            (5, Some(estate.0), None, None),
            (6, None, Some(CELL), None),
        ]
    );
    let places: Vec<(i64, Option<&str>, i64, Option<&str>)> = events
        .iter()
        .filter(|e| e.record_id == 1 || e.record_id == 6)
        .map(|e| (e.record_id, e.place_json.as_deref(), e.occurred_at, e.backdated_reason.as_deref()))
        .collect();
    let in_estate = format!(r#"{{"estate":{}}}"#, estate.0);
    let in_cell = format!(r#"{{"grid_cell":"{CELL}"}}"#);
    assert_eq!(
        places,
        vec![
            (1, Some(in_estate.as_str()), 3, Some("paper form")),
            (1, Some(in_cell.as_str()), 15, None),
            (1, Some(in_estate.as_str()), 30, None),
            (1, Some(in_estate.as_str()), 60, None),
            (6, Some(in_cell.as_str()), 70, None),
        ]
    );
    assert_eq!(
        refs.iter().map(|r| (r.record_id, r.version, r.ref_kind.as_str(), r.ref_id.as_str())).collect::<Vec<_>>(),
        vec![
            (1, 1, "house", "5"),
            (1, 1, "person", "1"),
            (1, 2, "grid_cell", CELL),
            (1, 2, "person", "2"),
            (1, 3, "person", "2"),
            (6, 1, "firm", "9"),
        ]
    );
    assert_eq!(
        events.iter().map(|e| (e.record_id, e.action.as_str())).collect::<Vec<_>>(),
        vec![
            (1, "create"),
            (2, "create"),
            (1, "to-approved"),
            (3, "create"),
            (1, "to-approved"),
            (4, "create"),
            (5, "create"),
            (1, "to-revoked"),
            (3, "to-approved"),
            (6, "create")
        ]
    );
    // The five accepted batches went in one round trip; the refused ones were replayed for their
    // error, except the two refused by the reference check that comes first.
    let end = counts(&grouped);
    assert_eq!((end.one_trip - start.one_trip, end.replayed - start.replayed), (7, 9));
}

#[tokio::test]
async fn a_cancelled_write_is_not_applied_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, estate) = store_with_estate(&dir, 5_000).await;
    let mut cancelled = Box::pin(store.write(creates(vec![create("load", "case", estate, vec![], 1)])));
    assert!(poll_once(&mut cancelled), "the write is queued and waiting");
    drop(cancelled);
    let kept = store.write(creates(vec![create("load", "case", estate, vec![], 2)])).await.expect("next write");
    assert_eq!(kept.created, vec![RecordId(1)]);
    assert_eq!(table_counts(&store).await, (1, 0, 1, 0));
    let all = store.records(&RecordFilter { plugin: "load".into(), ..RecordFilter::default() }).await;
    assert_eq!(all.expect("records")[0].created_at, Timestamp(2));
}

#[tokio::test]
async fn a_write_that_waited_past_the_acquire_timeout_is_busy_and_not_applied() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (setup, estate) = store_with_estate(&dir, 5_000).await;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join(TEST_DB).display());
    let store =
        Store::connect(&DatabaseSettings { acquire_timeout_ms: 200, ..DatabaseSettings::with_insecure_test_keys(url) })
            .await
            .expect("connect");
    let mut late = Box::pin(store.write(creates(vec![create("load", "case", estate, vec![], 1)])));
    assert!(poll_once(&mut late), "the write is queued and waiting");
    // Block this (only) runtime thread: the writer task cannot take the write up in time.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let late = late.await;
    assert!(matches!(late, Err(StoreError::Busy)), "{late:?}");
    assert_eq!(table_counts(&setup).await, (0, 0, 0, 0));
    assert_eq!(counts(&store).commits, 0, "the late write never reached a transaction");
    store.write(creates(vec![create("load", "case", estate, vec![], 2)])).await.expect("a timely write");
    assert_eq!(table_counts(&setup).await.0, 1);
}

#[tokio::test]
async fn busy_from_another_process_is_busy_after_retries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (holder, estate) = store_with_estate(&dir, 5_000).await;
    let (impatient, _) = store_with_estate(&dir, 1).await;
    let before = table_counts(&holder).await;
    let lock = holder.begin_write("hold the lock").await.expect("begin immediate");
    let blocked = impatient.write(creates(vec![create("load", "case", estate, vec![], 1)])).await;
    assert!(matches!(blocked, Err(StoreError::Busy)), "{blocked:?}");
    lock.rollback().await.expect("release the lock");
    assert_eq!(table_counts(&holder).await, before);
    impatient
        .write(creates(vec![create("load", "case", estate, vec![], 1)]))
        .await
        .expect("write once the lock is free");
}

#[tokio::test]
async fn the_writer_task_ends_with_the_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, estate) = store_with_estate(&dir, 5_000).await;
    let task = store.group.as_ref().and_then(|g| g.take_task()).expect("a SQLite store has a writer task");
    store.write(creates(vec![create("load", "case", estate, vec![], 1)])).await.expect("write");
    let clone = store.clone();
    drop(store);
    clone.write(creates(vec![create("load", "case", estate, vec![], 2)])).await.expect("a clone keeps the writer");
    drop(clone);
    task.await.expect("the writer task ends cleanly once every clone is gone");
}

#[tokio::test]
async fn close_finishes_queued_writes_then_refuses_more() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, estate) = store_with_estate(&dir, 5_000).await;
    let other = store.clone();
    let mut queued = Box::pin(other.write(creates(vec![create("load", "case", estate, vec![], 1)])));
    assert!(poll_once(&mut queued), "the write is queued and waiting");
    store.close().await.expect("close");
    assert_eq!(queued.await.expect("a write queued before the close is applied").created, vec![RecordId(1)]);
    let after = other.write(creates(vec![create("load", "case", estate, vec![], 2)])).await;
    assert!(matches!(&after, Err(StoreError::Database { detail, .. }) if detail == "the store is closed"), "{after:?}");
    // What was committed before the close is in the file.
    let url = format!("sqlite://{}?mode=rwc", dir.path().join(TEST_DB).display());
    let reopened = Store::connect(&DatabaseSettings::with_insecure_test_keys(url)).await.expect("reopen");
    assert_eq!(table_counts(&reopened).await.0, 1);
}
