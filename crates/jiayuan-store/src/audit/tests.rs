//! Tests of the audit chain: the hash covers every field; a chain built through [`Store::write`]
//! verifies, and any one tampering done straight in SQL (edit a field, delete a row, swap two
//! rows' contents, insert a forged row) is caught at the right seq; concurrent writers still make
//! one unbroken chain. On SQLite, and on PostgreSQL when `JIAYUAN_TEST_PG_URL` is set.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use sea_orm::ActiveValue::Unchanged;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryOrder};

use super::*;
use crate::store::DatabaseSettings;

#[test]
fn the_hash_covers_every_field_and_the_link() {
    let base = row_hash(GENESIS, 1, 5, "a", "b", "c", Some(1), "{}");
    assert_eq!(base.len(), 64);
    assert_ne!(base, row_hash(GENESIS, 2, 5, "a", "b", "c", Some(1), "{}"));
    assert_ne!(base, row_hash(GENESIS, 1, 6, "a", "b", "c", Some(1), "{}"));
    assert_ne!(base, row_hash(GENESIS, 1, 5, "ab", "", "c", Some(1), "{}"));
    assert_ne!(base, row_hash(GENESIS, 1, 5, "a", "b", "c", None, "{}"));
    assert_ne!(base, row_hash(GENESIS, 1, 5, "a", "b", "c", Some(1), "{ }"));
    assert_ne!(base, row_hash(&"1".repeat(64), 1, 5, "a", "b", "c", Some(1), "{}"));
}

/// One tampering of the stored chain.
#[derive(Debug, Clone)]
enum Tamper {
    /// Change one field (0..8: at, actor, action, object, estate_id, detail_json, prev_hash, hash).
    Edit(Index, u8),
    /// Delete a row.
    Delete(Index),
    /// Swap the contents (everything but seq) of two different rows.
    Swap(Index, Index),
    /// Append a row chained and hashed correctly after the last one.
    Forge,
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, f)| Tamper::Edit(i, f)),
        any::<Index>().prop_map(Tamper::Delete),
        (any::<Index>(), any::<Index>()).prop_map(|(i, j)| Tamper::Swap(i, j)),
        Just(Tamper::Forge),
    ]
}

fn event(actor: &str, n: usize) -> NewAudit {
    NewAudit {
        at: Timestamp(1_700_000_000_000 + n as i64),
        actor: actor.to_owned(),
        action: format!("test.action:{}", n % 3),
        target: AuditTarget::Object(format!("test/record/{n}")),
        estate_id: n.is_multiple_of(2).then_some(EstateId(n as i64)),
        detail_json: format!(r#"{{"n":{n}}}"#),
    }
}

/// Empties the log and resets its head.
async fn reset(store: &Store) {
    audit_event::Entity::delete_many().exec(&store.writer).await.expect("empty the log");
    let mut head = Query::update();
    head.table(Alias::new("audit_head"))
        .value(Alias::new("seq"), 0i64)
        .value(Alias::new("hash"), GENESIS)
        .and_where(Expr::col(Alias::new("id")).eq(1i64));
    store.writer.execute(&head).await.expect("reset the head");
}

async fn rows(store: &Store) -> Vec<audit_event::Model> {
    audit_event::Entity::find().order_by_asc(audit_event::Column::Seq).all(&store.reader).await.expect("audit rows")
}

/// Builds a chain of `sizes.iter().sum()` events through `write` (one batch per size), applies
/// `tamper` in SQL and returns the seq verify must name.
async fn tampered(store: &Store, sizes: &[usize], tamper: &Tamper) -> i64 {
    reset(store).await;
    let mut n = 0;
    for (b, &size) in sizes.iter().enumerate() {
        let audit = (0..size)
            .map(|_| {
                n += 1;
                event(&format!("user:{b}"), n)
            })
            .collect();
        store.write(WriteBatch { audit, ..WriteBatch::default() }).await.expect("append");
    }
    let before = store.verify_audit().await.expect("verify");
    assert_eq!((before.events, &before.fault), (n as u64, &None), "untampered chain");
    let all = rows(store).await;
    assert_eq!(before.head, all.last().map(|r| r.hash.clone()).unwrap_or_default());
    let db = &store.writer;
    match tamper {
        Tamper::Edit(i, field) => {
            let row = i.get(&all).clone();
            let seq = row.seq;
            let mut m = row.clone().into_active_model();
            match field {
                0 => m.at = Set(row.at + 1),
                1 => m.actor = Set(format!("{}x", row.actor)),
                2 => m.action = Set(format!("{}x", row.action)),
                3 => m.object = Set(format!("{}x", row.object)),
                4 => m.estate_id = Set(row.estate_id.map_or(Some(7), |e| if e == 1 { None } else { Some(e + 1) })),
                5 => m.detail_json = Set(r#"{"n":-1}"#.to_owned()),
                6 => m.prev_hash = Set("ab".repeat(32)),
                _ => m.hash = Set("cd".repeat(32)),
            }
            m.update(db).await.expect("edit");
            seq
        }
        Tamper::Delete(i) => {
            let seq = i.get(&all).seq;
            audit_event::Entity::delete_by_id(seq).exec(db).await.expect("delete");
            seq
        }
        Tamper::Swap(i, j) => {
            let (a, b) = (i.index(all.len()), j.index(all.len()));
            if a == b {
                // Needs two rows: forge instead.
                return forge(store, &all).await;
            }
            let (first, second) = (all[a.min(b)].clone(), all[a.max(b)].clone());
            for (row, content) in [(&first, &second), (&second, &first)] {
                let m = audit_event::ActiveModel {
                    seq: Unchanged(row.seq),
                    at: Set(content.at),
                    actor: Set(content.actor.clone()),
                    action: Set(content.action.clone()),
                    object: Set(content.object.clone()),
                    estate_id: Set(content.estate_id),
                    detail_json: Set(content.detail_json.clone()),
                    prev_hash: Set(content.prev_hash.clone()),
                    hash: Set(content.hash.clone()),
                };
                audit_event::Entity::update(m).exec(db).await.expect("swap");
            }
            first.seq
        }
        Tamper::Forge => forge(store, &all).await,
    }
}

/// Appends a well-formed row after the last one (without moving the head).
async fn forge(store: &Store, all: &[audit_event::Model]) -> i64 {
    let last = all.last().expect("the chain has rows");
    let seq = last.seq + 1;
    let hash = row_hash(&last.hash, seq, last.at, "user:forger", "record.create", "x/record/1", None, "{}");
    audit_event::ActiveModel {
        seq: Set(seq),
        at: Set(last.at),
        actor: Set("user:forger".into()),
        action: Set("record.create".into()),
        object: Set("x/record/1".into()),
        estate_id: Set(None),
        detail_json: Set("{}".into()),
        prev_hash: Set(last.hash.clone()),
        hash: Set(hash),
    }
    .insert(&store.writer)
    .await
    .expect("forge");
    seq
}

fn tamper_property(store: &Store, runtime: &tokio::runtime::Runtime, cases: u32) {
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    runner
        .run(&(prop::collection::vec(1usize..4, 1..6), tamper()), |(sizes, tamper)| {
            runtime.block_on(async {
                let expected = tampered(store, &sizes, &tamper).await;
                let report = store.verify_audit().await.expect("verify");
                let fault = report.fault.expect("the tampering is caught");
                assert_eq!(fault.seq, expected, "{tamper:?} on {sizes:?}: {}", fault.reason);
            });
            Ok(())
        })
        .expect("every tampering is caught at its seq");
}

/// Many concurrent writers (record-engine batches and enablement changes) make one chain, which
/// verifies while they write.
async fn concurrent_chain(store: &Store) {
    reset(store).await;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            for i in 0..8 {
                let n = t * 100 + i;
                let audit = vec![event(&format!("user:{t}"), n), event(&format!("user:{t}"), n + 50)];
                store.write(WriteBatch { audit, ..WriteBatch::default() }).await.expect("append");
            }
            let o = crate::EnablementOverride {
                item: format!("item-{t}"),
                scope: crate::EnablementScope::District,
                enabled: true,
                reason: "test".into(),
                changed_by: format!("admin:{t}"),
                changed_at: Timestamp(1),
            };
            store.set_enablement(&o).await.expect("set");
        });
    }
    // Verifying while they write sees a sound (growing) chain every time.
    let verifier = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                let report = store.verify_audit().await.expect("verify meanwhile");
                assert_eq!(report.fault, None, "after {} events", report.events);
                tokio::task::yield_now().await;
            }
        })
    };
    while let Some(done) = tasks.join_next().await {
        done.expect("writer task");
    }
    verifier.await.expect("verifier task");
    let report = store.verify_audit().await.expect("verify");
    assert_eq!((report.events, report.fault), (16 * (8 * 2 + 1), None));
    assert_eq!(rows(store).await.len(), 16 * 17);
}

fn sqlite_store(runtime: &tokio::runtime::Runtime, dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("audit.db").display());
    runtime.block_on(async {
        let store = Store::connect(&DatabaseSettings::with_insecure_test_keys(url)).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    })
}

#[test]
fn tampering_is_caught_at_its_seq_on_sqlite() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_store(&runtime, &dir);
    tamper_property(&store, &runtime, 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_make_one_chain_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("audit.db").display());
    let store = Store::connect(&DatabaseSettings::with_insecure_test_keys(url)).await.expect("connect");
    store.migrate().await.expect("migrate");
    concurrent_chain(&store).await;
    assert!(store.group_counts().expect("group commit").commits < 16 * 9, "batches shared commits");
}

/// Runs `test` against a fresh PostgreSQL schema (dropped afterwards), or prints a notice. The
/// test runs outside the runtime and blocks on it as it needs.
fn on_postgres(test: impl FnOnce(&Store, &tokio::runtime::Runtime)) {
    let Ok(base) = std::env::var("JIAYUAN_TEST_PG_URL") else {
        eprintln!("JIAYUAN_TEST_PG_URL is not set: skipping the PostgreSQL audit test");
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let schema = format!("jy_audit_{}", uuid::Uuid::new_v4().simple());
    let admin = runtime.block_on(async {
        let admin = sea_orm::Database::connect(base.as_str()).await.expect("connect to the test database");
        admin.execute_unprepared(&format!("CREATE SCHEMA {schema}")).await.expect("create schema");
        admin
    });
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options[search_path]={schema}");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let store = runtime.block_on(async {
            let store = Store::connect(&DatabaseSettings::with_insecure_test_keys(url)).await.expect("connect");
            store.migrate().await.expect("migrate");
            store
        });
        test(&store, &runtime);
        runtime.block_on(store.close()).expect("close");
    }));
    runtime.block_on(async {
        admin.execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE")).await.expect("drop schema");
    });
    if let Err(e) = outcome {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn tampering_is_caught_at_its_seq_on_postgres() {
    on_postgres(|store, runtime| tamper_property(store, runtime, 32));
}

#[test]
fn concurrent_writers_make_one_chain_on_postgres() {
    on_postgres(|store, runtime| runtime.block_on(concurrent_chain(store)));
}
