//! Tests of encryption at rest through the [`Store`]: no plaintext document number or phone in
//! the database file, a wrong data key refused at connect (and, without a check value, at the
//! first decrypt), lookups through the blind indexes. On SQLite always, on PostgreSQL when
//! `JIAYUAN_TEST_PG_URL` is set (a fresh schema per test, dropped afterwards).

use sea_orm::ConnectionTrait;

use jiayuan_domain::{DocKind, Hukou, IdentityDoc, Sex};

use crate::{DatabaseSettings, FieldKeys, NewPerson, Store, StoreError};

/// A canary: values that must never appear in plaintext in the database.
const CANARY_DOC: &str = "11010519491231002X";
const CANARY_PHONE: &str = "13798765432";
const CANARY_NAME: &str = "CanaryPersonName";

fn canary() -> NewPerson {
    NewPerson {
        name: CANARY_NAME.into(),
        doc: IdentityDoc { kind: DocKind::ResidentId, number: CANARY_DOC.into() },
        sex: Some(Sex::Male),
        birth_date: None,
        hukou: Hukou::Shenzhen,
        phone: Some(CANARY_PHONE.into()),
    }
}

fn key_a() -> FieldKeys {
    FieldKeys::from_master(&[0xa1; 32])
}

fn key_b() -> FieldKeys {
    FieldKeys::from_master(&[0xb2; 32])
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join("at-rest.db").display())
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn the_sqlite_file_holds_no_plaintext_document_number_or_phone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = DatabaseSettings::new(sqlite_url(&dir)).with_field_keys(key_a());
    let store = Store::connect(&settings).await.expect("connect");
    store.migrate().await.expect("migrate");
    let id = store.insert_person(&canary()).await.expect("insert canary");
    let found = store.person_by_doc(DocKind::ResidentId, CANARY_DOC).await.expect("by doc").expect("found");
    assert_eq!((found.id, found.doc.number.as_str(), found.phone.as_deref()), (id, CANARY_DOC, Some(CANARY_PHONE)));
    let by_phone = store.persons_by_phone(CANARY_PHONE).await.expect("by phone");
    assert_eq!(by_phone.iter().map(|p| p.id).collect::<Vec<_>>(), vec![id]);
    store.close().await.expect("close (checkpoints the WAL)");

    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("list temp dir") {
        bytes.extend(std::fs::read(entry.expect("entry").path()).expect("read database file"));
    }
    // The scan sees the database's text: the name (not encrypted) is there.
    assert!(contains(&bytes, CANARY_NAME), "the scan must see plaintext columns");
    for plaintext in [CANARY_DOC, "110105194912310", CANARY_PHONE, "98765432"] {
        assert!(!contains(&bytes, plaintext), "`{plaintext}` is in the database file");
    }
}

/// Writes a canary with key A, then checks that no key and key B are refused at connect, that
/// key A still reads it, and that without the stored check value key B fails at the first
/// decrypt instead of returning garbage.
async fn wrong_keys_are_refused(settings: DatabaseSettings) {
    let store = Store::connect(&settings.clone().with_field_keys(key_a())).await.expect("connect with key A");
    store.migrate().await.expect("migrate");
    let id = store.insert_person(&canary()).await.expect("insert canary");
    store.close().await.expect("close");

    let none = Store::connect(&DatabaseSettings { field_keys: None, ..settings.clone() }).await;
    assert!(matches!(none, Err(StoreError::NoDataKey)), "{none:?}");

    let err = Store::connect(&settings.clone().with_field_keys(key_b())).await.expect_err("key B is refused");
    let text = err.to_string();
    assert!(matches!(err, StoreError::DataKeyMismatch), "{text}");
    assert!(text.contains("the data key does not match the one this database was written with"), "{text}");

    let store = Store::connect(&settings.clone().with_field_keys(key_a())).await.expect("key A still opens it");
    assert!(store.migrate().await.expect("migrate again").applied.is_empty());
    assert_eq!(store.person(id).await.expect("read").map(|p| p.doc.number), Some(CANARY_DOC.to_owned()));
    // Someone removes the check value: key B now opens the database, but the first read of an
    // encrypted column fails loudly and names the column, not the value.
    store.writer.execute_unprepared("DELETE FROM store_meta").await.expect("drop the check value");
    store.close().await.expect("close");
    let wrong = Store::connect(&settings.clone().with_field_keys(key_b())).await.expect("no check value to compare");
    let err = wrong.person(id).await.expect_err("key B cannot decrypt");
    let text = err.to_string();
    assert!(matches!(err, StoreError::Corrupt { what: "persons.doc_number", .. }), "{text}");
    assert!(text.contains("cannot be decrypted with the configured data key (wrong key?)"), "{text}");
    assert!(!text.contains(CANARY_DOC) && !text.contains(CANARY_PHONE), "{text}");
    // Lookups with key B compute other blind indexes: they find nobody rather than garbage.
    assert_eq!(wrong.person_by_doc(DocKind::ResidentId, CANARY_DOC).await.expect("lookup"), None);
    assert!(wrong.persons_by_phone(CANARY_PHONE).await.expect("lookup").is_empty());
    wrong.close().await.expect("close");
}

#[tokio::test]
async fn wrong_keys_are_refused_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    wrong_keys_are_refused(DatabaseSettings::new(sqlite_url(&dir))).await;
}

/// Rows of `persons` as stored, every column as text (PostgreSQL).
async fn raw_person_columns(store: &Store) -> Vec<String> {
    let rows = store
        .reader
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT concat_ws('|', id, name, doc_kind, doc_number_enc, doc_bidx, sex, birth_date, hukou, phone_enc, \
             phone_bidx, house_id) FROM persons",
        ))
        .await
        .expect("raw select");
    rows.iter().map(|r| r.try_get_by_index::<String>(0).expect("text")).collect()
}

/// Runs `test` with settings for a fresh PostgreSQL schema (dropped afterwards), or prints a
/// notice when `JIAYUAN_TEST_PG_URL` is unset.
async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(DatabaseSettings) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Ok(base) = std::env::var("JIAYUAN_TEST_PG_URL") else {
        eprintln!("JIAYUAN_TEST_PG_URL is not set: skipping the PostgreSQL encryption-at-rest test");
        return;
    };
    let schema = format!("jy_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(base.as_str()).await.expect("connect to the test database");
    admin.execute_unprepared(&format!("CREATE SCHEMA {schema}")).await.expect("create schema");
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options[search_path]={schema}");
    let outcome = tokio::spawn(test(DatabaseSettings::new(url))).await;
    admin.execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE")).await.expect("drop schema");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test]
async fn wrong_keys_are_refused_on_postgres() {
    on_postgres(wrong_keys_are_refused).await;
}

#[tokio::test]
async fn postgres_rows_hold_no_plaintext_document_number_or_phone() {
    on_postgres(|settings| async move {
        let store = Store::connect(&settings.with_field_keys(key_a())).await.expect("connect");
        store.migrate().await.expect("migrate");
        let id = store.insert_person(&canary()).await.expect("insert canary");
        let raw = raw_person_columns(&store).await;
        assert_eq!(raw.len(), 1);
        assert!(raw[0].contains(CANARY_NAME), "{raw:?}");
        for plaintext in [CANARY_DOC, "110105194912310", CANARY_PHONE, "98765432"] {
            assert!(!raw[0].contains(plaintext), "`{plaintext}` stored in plaintext: {raw:?}");
        }
        let found = store.person_by_doc(DocKind::ResidentId, CANARY_DOC).await.expect("by doc").expect("found");
        assert_eq!((found.id, found.phone.as_deref()), (id, Some(CANARY_PHONE)));
        let by_phone = store.persons_by_phone("+86 137 9876 5432").await.expect("by phone");
        assert_eq!(by_phone.iter().map(|p| p.id).collect::<Vec<_>>(), vec![id]);
        let twin = store.insert_person(&canary()).await;
        assert!(matches!(&twin, Err(StoreError::UniqueKey { field, .. }) if field == "persons.doc"), "{twin:?}");
        store.close().await.expect("close");
    })
    .await;
}
