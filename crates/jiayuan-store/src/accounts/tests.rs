//! Tests of accounts, sessions and API tokens: one story run against SQLite (temp file) and, when
//! `JIAYUAN_TEST_PG_URL` is set, against PostgreSQL (a fresh schema, dropped afterwards); plus a
//! SQLite test of [`Store::append_audit`] racing the group-commit writer.

use sea_orm::ConnectionTrait;

use jiayuan_domain::{AccountError, DivisionCode, FirmId};

use super::*;
use crate::records::{IndexKey, NewRecord};
use crate::store::DatabaseSettings;
use crate::tests::{TEST_DB, store_with_estate};

const T: i64 = 1_764_300_000_000;
const ADMIN_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$YWRtaW4taGFzaA";
const STAFF_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$c3RhZmYtaGFzaA";

fn hash(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn at(offset: i64) -> Timestamp {
    Timestamp(T + offset)
}

fn admin() -> NewAccount {
    NewAccount {
        login: "admin".into(),
        display_name: "王管理".into(),
        role: Role::DistrictAdmin,
        scope: AccountScope::District,
        items: None,
        password_hash: Some(ADMIN_HASH.into()),
        agency_unit: None,
    }
}

fn staff() -> NewAccount {
    NewAccount {
        login: "firm7.staff".into(),
        display_name: "李员工".into(),
        role: Role::FirmStaff,
        scope: AccountScope::Firm(FirmId(7)),
        items: Some(vec!["dog-licensing".into()]),
        password_hash: None,
        agency_unit: None,
    }
}

fn session(n: u8, account: AccountId, expires: i64) -> NewSession {
    NewSession {
        id_hash: hash(n),
        account_id: account,
        created_at: at(0),
        expires_at: at(expires),
        verified_hash: None,
    }
}

fn token(n: u8, account: AccountId, expires: Option<i64>) -> NewApiToken {
    NewApiToken {
        account_id: account,
        name: format!("token {n}"),
        prefix: format!("jyt_{n:02}"),
        token_hash: hash(n),
        created_at: at(0),
        expires_at: expires.map(at),
    }
}

/// `actor action object` of every audit event, in seq order.
async fn audit_lines(store: &Store) -> Vec<String> {
    store
        .audit_events(0, 0)
        .await
        .expect("audit events")
        .into_iter()
        .map(|e| format!("{} {} {}", e.actor, e.action, e.object))
        .collect()
}

/// The whole story; every backend must pass it unchanged.
async fn story(store: Store) {
    store.migrate().await.expect("migrate");

    // --- Create and read back.
    let admin_id = store.insert_account(&admin(), "system:cli", at(0)).await.expect("insert admin");
    let staff_id = store.insert_account(&staff(), "admin", at(1)).await.expect("insert staff");
    assert_ne!(admin_id, staff_id);
    let expected_admin = Account {
        id: admin_id,
        login: "admin".into(),
        display_name: "王管理".into(),
        role: Role::DistrictAdmin,
        scope: AccountScope::District,
        items: None,
        disabled: false,
        created_at: at(0),
        updated_at: at(0),
        agency_unit: None,
    };
    let expected_staff = Account {
        id: staff_id,
        login: "firm7.staff".into(),
        display_name: "李员工".into(),
        role: Role::FirmStaff,
        scope: AccountScope::Firm(FirmId(7)),
        items: Some(vec!["dog-licensing".into()]),
        disabled: false,
        created_at: at(1),
        updated_at: at(1),
        agency_unit: None,
    };
    assert_eq!(store.account(admin_id).await.expect("account"), Some(expected_admin.clone()));
    assert_eq!(store.account_by_login("firm7.staff").await.expect("by login"), Some(expected_staff.clone()));
    assert_eq!(store.account_by_login("nobody").await.expect("by login"), None);
    assert_eq!(store.account(AccountId(staff_id.0 + 100)).await.expect("account"), None);
    assert_eq!(store.accounts().await.expect("accounts"), vec![expected_admin.clone(), expected_staff.clone()]);
    assert_eq!(
        store.password_hash_of("admin").await.expect("hash"),
        Some((expected_admin.clone(), Some(ADMIN_HASH.to_owned())))
    );
    assert_eq!(store.password_hash_of("firm7.staff").await.expect("hash"), Some((expected_staff.clone(), None)));
    let street = DivisionCode::parse("440303004000").expect("street code");
    let officer = NewAccount {
        login: "cuizhu-officer".into(),
        role: Role::StreetOfficer,
        scope: AccountScope::Division(street.clone()),
        ..admin()
    };
    let officer_id = store.insert_account(&officer, "admin", at(2)).await.expect("insert officer");
    let read = store.account(officer_id).await.expect("officer").expect("officer exists");
    assert_eq!((read.role, read.scope), (Role::StreetOfficer, AccountScope::Division(street)));

    // --- Refusals write nothing, not even an audit event.
    let events_before = audit_lines(&store).await.len();
    let dup = store.insert_account(&NewAccount { display_name: "another".into(), ..admin() }, "admin", at(3)).await;
    assert!(
        matches!(&dup, Err(StoreError::UniqueKey { field, value }) if field == "accounts.login" && value == "admin"),
        "{dup:?}"
    );
    let misfit = store
        .insert_account(&NewAccount { login: "misfit".into(), role: Role::FirmManager, ..admin() }, "admin", at(3))
        .await;
    assert!(
        matches!(
            &misfit,
            Err(StoreError::InvalidAccount(AccountError::ScopeDoesNotFit { role: Role::FirmManager, .. }))
        ),
        "{misfit:?}"
    );
    let no_items =
        store.insert_account(&NewAccount { login: "no-items".into(), items: None, ..staff() }, "admin", at(3)).await;
    assert!(
        matches!(&no_items, Err(StoreError::InvalidAccount(AccountError::ItemsRequired(Role::FirmStaff)))),
        "{no_items:?}"
    );
    let bad_login = store.insert_account(&NewAccount { login: "Bad Login".into(), ..admin() }, "admin", at(3)).await;
    assert!(matches!(&bad_login, Err(StoreError::InvalidAccount(AccountError::BadLogin(_)))), "{bad_login:?}");
    assert_eq!(store.accounts().await.expect("accounts").len(), 3);
    assert_eq!(audit_lines(&store).await.len(), events_before);

    // --- Sessions: expiry is exclusive; a login rotates the pre-login session; logout.
    store.create_session(&session(1, admin_id, 1_000), None, "admin", at(10)).await.expect("session 1");
    assert_eq!(store.session_account(&hash(1), at(999)).await.expect("lookup"), Some(expected_admin.clone()));
    assert_eq!(store.session_account(&hash(1), at(1_000)).await.expect("lookup"), None);
    assert_eq!(store.session_account(&hash(99), at(0)).await.expect("lookup"), None);
    store.create_session(&session(2, admin_id, 1_000), Some(&hash(1)), "admin", at(11)).await.expect("rotate");
    assert_eq!(store.session_account(&hash(1), at(20)).await.expect("lookup"), None);
    assert_eq!(store.session_account(&hash(2), at(20)).await.expect("lookup"), Some(expected_admin.clone()));
    let taken = store.create_session(&session(2, staff_id, 1_000), None, "firm7.staff", at(12)).await;
    assert!(matches!(&taken, Err(StoreError::UniqueKey { field, .. }) if field == "sessions.id_hash"), "{taken:?}");
    let orphan = store.create_session(&session(3, AccountId(staff_id.0 + 100), 1_000), None, "x", at(12)).await;
    assert!(matches!(orphan, Err(StoreError::MissingReference { .. })), "{orphan:?}");
    assert!(store.delete_session(&hash(2), "admin", at(13)).await.expect("logout"));
    assert!(!store.delete_session(&hash(2), "admin", at(14)).await.expect("logout again"));
    assert_eq!(store.session_account(&hash(2), at(20)).await.expect("lookup"), None);

    // --- Disabling ends the sessions and refuses new ones until enabled again.
    store.create_session(&session(4, admin_id, 1_000), None, "admin", at(20)).await.expect("session 4");
    store.set_account_disabled(admin_id, true, "root", at(21)).await.expect("disable");
    assert_eq!(store.session_account(&hash(4), at(22)).await.expect("lookup"), None);
    let disabled = store.account(admin_id).await.expect("account").expect("exists");
    assert!(disabled.disabled);
    assert_eq!(disabled.updated_at, at(21));
    store.create_session(&session(5, admin_id, 1_000), None, "admin", at(23)).await.expect("session 5");
    assert_eq!(store.session_account(&hash(5), at(24)).await.expect("lookup"), None);
    store.set_account_disabled(admin_id, false, "root", at(25)).await.expect("enable");
    assert_eq!(store.session_account(&hash(4), at(26)).await.expect("lookup"), None, "disabling ended it");
    assert_eq!(store.session_account(&hash(5), at(26)).await.expect("lookup"), None, "enabling ended it");
    store.create_session(&session(10, admin_id, 1_000), None, "admin", at(26)).await.expect("session 10");
    let enabled = store.session_account(&hash(10), at(26)).await.expect("lookup").expect("session 10 is honoured");
    assert_eq!((enabled.id, enabled.disabled, enabled.updated_at), (admin_id, false, at(25)));
    let unknown = store.set_account_disabled(AccountId(staff_id.0 + 100), true, "root", at(27)).await;
    assert!(matches!(&unknown, Err(StoreError::NotFound { what: "account", .. })), "{unknown:?}");

    // --- A password reset ends every session of the account, and only of that account.
    store.create_session(&session(6, staff_id, 1_000), None, "firm7.staff", at(30)).await.expect("session 6");
    store.create_session(&session(7, staff_id, 1_000), None, "firm7.staff", at(30)).await.expect("session 7");
    store.set_password_hash(staff_id, Some(STAFF_HASH), "admin", at(31)).await.expect("reset");
    for n in [6, 7] {
        assert_eq!(store.session_account(&hash(n), at(32)).await.expect("lookup"), None);
    }
    assert!(store.session_account(&hash(10), at(32)).await.expect("lookup").is_some(), "other accounts keep theirs");
    let (read, hash_now) = store.password_hash_of("firm7.staff").await.expect("hash").expect("exists");
    assert_eq!((hash_now.as_deref(), read.updated_at), (Some(STAFF_HASH), at(31)));
    // A login that verified the password from before the reset gets no session, and writes nothing.
    let stale = NewSession { verified_hash: Some(ADMIN_HASH.into()), ..session(11, staff_id, 1_000) };
    let refused = store.create_session(&stale, None, "firm7.staff", at(32)).await;
    assert!(matches!(&refused, Err(StoreError::StaleCredentials { account }) if *account == staff_id), "{refused:?}");
    assert_eq!(store.session_account(&hash(11), at(32)).await.expect("lookup"), None);
    store.set_password_hash(staff_id, None, "admin", at(33)).await.expect("clear");
    assert_eq!(store.password_hash_of("firm7.staff").await.expect("hash").and_then(|(_, h)| h), None);
    let unknown = store.set_password_hash(AccountId(staff_id.0 + 100), Some(STAFF_HASH), "admin", at(34)).await;
    assert!(matches!(&unknown, Err(StoreError::NotFound { what: "account", .. })), "{unknown:?}");

    // --- Housekeeping removes exactly the expired sessions.
    store.create_session(&session(8, staff_id, 40), None, "firm7.staff", at(35)).await.expect("session 8");
    store.create_session(&session(9, staff_id, 41), None, "firm7.staff", at(35)).await.expect("session 9");
    assert_eq!(store.delete_expired_sessions(at(40)).await.expect("housekeeping"), 1);
    assert_eq!(store.session_account(&hash(9), at(40)).await.expect("lookup").map(|a| a.id), Some(staff_id));
    assert_eq!(store.delete_expired_sessions(at(40)).await.expect("housekeeping again"), 0);

    // --- API tokens: expiry, revocation, disabled accounts; never the hash.
    let t1 = store.insert_api_token(&token(11, staff_id, None), "firm7.staff", at(50)).await.expect("token 1");
    let t2 = store.insert_api_token(&token(12, staff_id, Some(100)), "firm7.staff", at(51)).await.expect("token 2");
    assert_ne!(t1, t2);
    let found = store.token_account(&hash(11), at(1_000_000)).await.expect("lookup").expect("token 1 is valid");
    assert_eq!((found.0.id, found.1), (staff_id, t1));
    assert_eq!(store.token_account(&hash(12), at(99)).await.expect("lookup").map(|(_, id)| id), Some(t2));
    assert_eq!(store.token_account(&hash(12), at(100)).await.expect("lookup"), None);
    assert_eq!(store.token_account(&hash(13), at(0)).await.expect("lookup"), None);
    let dup = store.insert_api_token(&token(11, admin_id, None), "admin", at(52)).await;
    assert!(
        matches!(&dup, Err(StoreError::UniqueKey { field, value }) if field == "api_tokens.token_hash" && value == "jyt_11"),
        "{dup:?}"
    );
    let orphan = store.insert_api_token(&token(14, AccountId(staff_id.0 + 100), None), "x", at(52)).await;
    assert!(matches!(orphan, Err(StoreError::MissingReference { .. })), "{orphan:?}");
    store.set_account_disabled(staff_id, true, "admin", at(53)).await.expect("disable staff");
    assert_eq!(store.token_account(&hash(11), at(54)).await.expect("lookup"), None);
    store.set_account_disabled(staff_id, false, "admin", at(55)).await.expect("enable staff");
    assert!(store.token_account(&hash(11), at(56)).await.expect("lookup").is_some(), "tokens survive a disable");
    assert!(store.revoke_api_token(t1, "firm7.staff", at(57)).await.expect("revoke"));
    assert!(!store.revoke_api_token(t1, "firm7.staff", at(58)).await.expect("revoke again"));
    assert!(!store.revoke_api_token(t2 + 100, "firm7.staff", at(58)).await.expect("revoke unknown"));
    assert_eq!(store.token_account(&hash(11), at(59)).await.expect("lookup"), None);
    let infos = store.api_tokens(staff_id).await.expect("tokens");
    assert_eq!(
        infos,
        vec![
            ApiTokenInfo {
                id: t1,
                account_id: staff_id,
                name: "token 11".into(),
                prefix: "jyt_11".into(),
                created_at: at(0),
                expires_at: None,
                revoked_at: Some(at(57)),
            },
            ApiTokenInfo {
                id: t2,
                account_id: staff_id,
                name: "token 12".into(),
                prefix: "jyt_12".into(),
                created_at: at(0),
                expires_at: Some(at(100)),
                revoked_at: None,
            },
        ]
    );
    assert_eq!(store.api_token(t2).await.expect("token"), Some(infos[1].clone()));
    assert_eq!(store.api_token(t2 + 100).await.expect("token"), None);
    assert!(store.api_tokens(admin_id).await.expect("tokens").is_empty());

    // --- Events that are not writes.
    store
        .append_audit(NewAudit {
            at: at(60),
            actor: "anonymous".into(),
            action: "auth.login_failed".into(),
            target: AuditTarget::Object("account/admin".into()),
            estate_id: None,
            detail_json: r#"{"login":"admin"}"#.into(),
        })
        .await
        .expect("append audit");
    let in_batch = store
        .append_audit(NewAudit {
            at: at(61),
            actor: "x".into(),
            action: "x".into(),
            target: AuditTarget::InBatch(0),
            estate_id: None,
            detail_json: "{}".into(),
        })
        .await;
    assert!(matches!(in_batch, Err(StoreError::InvalidBatch(_))), "{in_batch:?}");

    // --- Every change left its event, in order, and nothing personal or secret.
    let a = admin_id.0;
    let s = staff_id.0;
    let expected = vec![
        format!("system:cli account.create account/{a}"),
        format!("admin account.create account/{s}"),
        format!("admin account.create account/{}", officer_id.0),
        format!("admin auth.login session/{a}"),
        format!("admin auth.login session/{a}"),
        format!("admin auth.logout session/{a}"),
        format!("admin auth.login session/{a}"),
        format!("root account.disable account/{a}"),
        format!("admin auth.login session/{a}"),
        format!("root account.enable account/{a}"),
        format!("admin auth.login session/{a}"),
        format!("firm7.staff auth.login session/{s}"),
        format!("firm7.staff auth.login session/{s}"),
        format!("admin account.password_reset account/{s}"),
        format!("admin account.password_reset account/{s}"),
        format!("firm7.staff auth.login session/{s}"),
        format!("firm7.staff auth.login session/{s}"),
        format!("firm7.staff token.issue token/{t1}"),
        format!("firm7.staff token.issue token/{t2}"),
        format!("admin account.disable account/{s}"),
        format!("admin account.enable account/{s}"),
        format!("firm7.staff token.revoke token/{t1}"),
        "anonymous auth.login_failed account/admin".to_owned(),
    ];
    assert_eq!(audit_lines(&store).await, expected);
    let events = store.audit_events(0, 0).await.expect("audit events");
    let details: Vec<serde_json::Value> =
        events.iter().map(|e| serde_json::from_str(&e.detail_json).expect("detail is JSON")).collect();
    assert_eq!(details[1]["role"], "firm_staff");
    assert_eq!(details[1]["scope"], "firm:7");
    assert_eq!(details[4]["replaced"], true);
    assert_eq!(details[7]["sessions_ended"], 1);
    assert_eq!(details[9]["sessions_ended"], 1);
    assert_eq!(details[13]["sessions_ended"], 2);
    assert_eq!(details[17]["prefix"], "jyt_11");
    for e in &events {
        let text = format!("{} {} {}", e.actor, e.object, e.detail_json);
        for secret in ["王管理", "李员工", ADMIN_HASH, STAFF_HASH, "argon2"] {
            assert!(!text.contains(secret), "audit event {} carries `{secret}`: {text}", e.seq);
        }
        for n in [1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12] {
            assert!(!text.contains(&hash(n)), "audit event {} carries a hash: {text}", e.seq);
        }
    }
    let report = store.verify_audit().await.expect("verify");
    assert_eq!((report.events, report.fault), (expected.len() as u64, None));

    // --- Deleting an account (no API for it yet) takes its sessions with it; a token keeps it.
    store.create_session(&session(20, officer_id, 1_000), None, "cuizhu-officer", at(70)).await.expect("session");
    let delete = |id: AccountId| format!("DELETE FROM accounts WHERE id = {}", id.0);
    store.writer.execute_unprepared(&delete(officer_id)).await.expect("delete officer");
    assert_eq!(store.session_account(&hash(20), at(71)).await.expect("lookup"), None);
    assert!(store.writer.execute_unprepared(&delete(staff_id)).await.is_err(), "a token refers to it");
}

/// A corrupt role, scope or item list is reported with its column.
async fn corrupt_rows(store: &Store) {
    for (i, (column, value, what)) in [
        ("role", "'overlord'", "accounts.role"),
        ("scope", "'estate:3'", "accounts.scope"),
        ("items_json", "'dog-licensing'", "accounts.items_json"),
    ]
    .into_iter()
    .enumerate()
    {
        let account = NewAccount { login: format!("corrupt-{i}"), ..staff() };
        let id = store.insert_account(&account, "admin", at(0)).await.expect("insert");
        let sql = format!("UPDATE accounts SET {column} = {value} WHERE id = {}", id.0);
        store.writer.execute_unprepared(&sql).await.expect("corrupt the row");
        let read = store.account(id).await;
        assert!(matches!(&read, Err(StoreError::Corrupt { what: w, .. }) if *w == what), "{read:?}");
    }
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join(TEST_DB).display())
}

#[tokio::test]
async fn accounts_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::connect(&DatabaseSettings::with_insecure_test_keys(sqlite_url(&dir))).await.expect("connect");
    story(store.clone()).await;
    corrupt_rows(&store).await;
    store.close().await.expect("close");
}

#[tokio::test]
async fn accounts_on_postgres() {
    let Ok(base) = std::env::var("JIAYUAN_TEST_PG_URL") else {
        eprintln!("JIAYUAN_TEST_PG_URL is not set: skipping the PostgreSQL accounts test");
        return;
    };
    let schema = format!("jy_accounts_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(base.as_str()).await.expect("connect to the test database");
    admin.execute_unprepared(&format!("CREATE SCHEMA {schema}")).await.expect("create schema");
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options[search_path]={schema}");
    let outcome = tokio::spawn(async move {
        let store = Store::connect(&DatabaseSettings::with_insecure_test_keys(url)).await.expect("connect");
        story(store.clone()).await;
        corrupt_rows(&store).await;
        store.close().await.expect("close");
    })
    .await;
    admin.execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE")).await.expect("drop schema");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Stand-alone audit events and account changes interleaved with group-committed record batches
/// make one unbroken chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_audit_and_account_changes_share_the_chain_with_group_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, estate) = store_with_estate(&dir, 5_000).await;
    let staff_id = store.insert_account(&staff(), "admin", at(0)).await.expect("insert staff");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24i64 {
        let store = store.clone();
        tasks.spawn(async move {
            match i % 3 {
                0 => {
                    let batch = WriteBatch {
                        creates: vec![NewRecord {
                            plugin: "dog-licensing".into(),
                            kind: "licence".into(),
                            place: jiayuan_domain::Place::Estate(estate),
                            parent: None,
                            state: "draft".into(),
                            data_json: "{}".into(),
                            keys: vec![IndexKey { field: "no".into(), value: i.to_string(), unique: true }],
                            refs: Vec::new(),
                            at: at(i),
                            occurred_at: at(i),
                            backdated_reason: None,
                            actor: "user:1".into(),
                        }],
                        audit: vec![NewAudit {
                            at: at(i),
                            actor: "user:1".into(),
                            action: "record.create".into(),
                            target: AuditTarget::InBatch(0),
                            estate_id: Some(estate),
                            detail_json: "{}".into(),
                        }],
                        ..WriteBatch::default()
                    };
                    store.write(batch).await.map(|_| ())
                }
                1 => {
                    store
                        .append_audit(NewAudit {
                            at: at(i),
                            actor: "user:1".into(),
                            action: "record.unmask".into(),
                            target: AuditTarget::Object(format!("dog-licensing/record/{i}")),
                            estate_id: Some(estate),
                            detail_json: "{}".into(),
                        })
                        .await
                }
                _ => {
                    let n = u8::try_from(i).expect("small");
                    store.create_session(&session(n, staff_id, 1_000), None, "firm7.staff", at(i)).await
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("write");
    }
    let report = store.verify_audit().await.expect("verify");
    assert_eq!((report.events, report.fault), (1 + 24, None));
    store.close().await.expect("close");
}

#[tokio::test]
async fn an_account_change_is_checked_whole_audited_and_ends_sessions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::connect(&DatabaseSettings::with_insecure_test_keys(sqlite_url(&dir))).await.expect("connect");
    store.migrate().await.expect("migrate");
    let id = store.insert_account(&staff(), "admin", at(0)).await.expect("staff");
    store.create_session(&session(1, id, 1_000), None, "firm7.staff", at(1)).await.expect("session");
    let events_before = audit_lines(&store).await.len();

    // A firm manager covers every item: keeping the item list would not fit, so nothing changes.
    let misfit = AccountChange { role: Some(Role::FirmManager), ..AccountChange::default() };
    let refused = store.update_account(id, &misfit, "admin", at(2)).await;
    assert!(matches!(refused, Err(StoreError::InvalidAccount(_))), "{refused:?}");
    assert_eq!(audit_lines(&store).await.len(), events_before, "a refused change writes nothing");
    assert!(store.session_account(&hash(1), at(2)).await.expect("lookup").is_some());

    // A rename alone keeps the sessions.
    let rename = AccountChange { display_name: Some("李主管".into()), ..AccountChange::default() };
    let renamed = store.update_account(id, &rename, "admin", at(3)).await.expect("rename");
    assert_eq!((renamed.display_name.as_str(), renamed.updated_at), ("李主管", at(3)));
    assert!(store.session_account(&hash(1), at(3)).await.expect("lookup").is_some(), "sessions kept");

    // Promotion with the items dropped fits; it ends the sessions and is audited with old and new.
    let promote = AccountChange { role: Some(Role::FirmManager), items: Some(None), ..AccountChange::default() };
    let promoted = store.update_account(id, &promote, "admin", at(4)).await.expect("promote");
    assert_eq!((promoted.role, promoted.items.clone()), (Role::FirmManager, None));
    assert_eq!(store.account(id).await.expect("read").expect("exists"), promoted);
    assert_eq!(store.session_account(&hash(1), at(4)).await.expect("lookup"), None, "old reach ended");
    let events = store.audit_events(0, 0).await.expect("audit");
    let last = events.last().expect("an event");
    assert_eq!((last.action.as_str(), last.actor.as_str()), ("account.update", "admin"));
    assert!(last.detail_json.contains(r#""role":["firm_staff","firm_manager"]"#), "{}", last.detail_json);
    assert!(!last.detail_json.contains("李主管"), "no display names in the audit log: {}", last.detail_json);
    assert!(store.verify_audit().await.expect("verify").is_ok());

    let unknown = store.update_account(AccountId(id.0 + 100), &rename, "admin", at(5)).await;
    assert!(matches!(unknown, Err(StoreError::NotFound { what: "account", .. })), "{unknown:?}");
    store.close().await.expect("close");
}
