//! [`Store`]: opening the database (one writer + a read pool on SQLite, one pool on PostgreSQL),
//! running the migrations, and the write-transaction discipline every write goes through.
//!
//! On SQLite the record engine's writes ([`Store::write`]) do not take the writer connection
//! themselves: they queue to the group-commit writer task (`crate::group`), which applies
//! every batch waiting in one transaction. The other writes (registry, enablement, migrations)
//! take the writer connection directly, one transaction each.
//!
//! The store holds the [`FieldKeys`] that encrypt sensitive columns. The database remembers a
//! key check value (`store_meta.key_check`, written by the first [`Store::migrate`]); opening a
//! database written with another key is refused at [`Store::connect`] with
//! [`StoreError::DataKeyMismatch`], before anything is read or written.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::ActiveValue::Set;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::{MigratorTrait, SchemaManager};
use serde::Deserialize;

use crate::crypto::FieldKeys;
use crate::entity::store_meta;
use crate::error::{StoreError, connect_err, db, db_err, is_busy, redact_url};
use crate::group::GroupWriter;
use crate::migration::Migrator;

/// How many times a write retries a BUSY `BEGIN IMMEDIATE` (each attempt already waits up to
/// `busy_timeout_ms` inside SQLite) before giving up with [`StoreError::Busy`].
const BUSY_RETRIES: u32 = 3;

/// Key of the PostgreSQL advisory lock that serialises concurrent `migrate` calls from several
/// host instances ("jiayuan" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x006a_6961_7975_616e;

/// The `store_meta` row holding the data key's check value.
const KEY_CHECK: &str = "key_check";

/// The SQLite writer's `cache_size` pragma: negative values are KiB, so 32 MiB.
pub(crate) const WRITER_CACHE_PAGES: &str = "-32768";

/// Where the database is and how to use it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db?mode=rwc` (embedded) or `postgres://user:password@host/db`.
    pub url: String,
    /// Size of the read pool (SQLite) or of the one pool (PostgreSQL). At least 1 is used.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long SQLite waits for another writer's lock before reporting BUSY, in milliseconds.
    #[serde(default = "default_busy_timeout_ms")]
    pub busy_timeout_ms: u64,
    /// How long to wait for a pooled connection (including opening one), in milliseconds.
    /// On SQLite this also bounds how long a write queues for the single writer connection (or,
    /// for [`Store::write`], for the group-commit writer to take it up); running out is
    /// [`StoreError::Busy`] (or [`StoreError::Connect`] while connecting).
    #[serde(default = "default_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
    /// The data key that encrypts identity-document numbers and phone numbers (and computes
    /// their blind indexes). Required: [`Store::connect`] without it is
    /// [`StoreError::NoDataKey`]. Never deserialised from settings text (the host reads the key
    /// from its own `[security]` section); `Debug` shows `FieldKeys(***)`.
    #[serde(skip)]
    pub field_keys: Option<FieldKeys>,
}

fn default_max_connections() -> u32 {
    4
}

fn default_busy_timeout_ms() -> u64 {
    5_000
}

fn default_acquire_timeout_ms() -> u64 {
    10_000
}

impl DatabaseSettings {
    /// Settings for `url` with the default pool size (4), busy timeout (5 s) and acquire
    /// timeout (10 s).
    pub fn new(url: impl Into<String>) -> DatabaseSettings {
        DatabaseSettings {
            url: url.into(),
            max_connections: default_max_connections(),
            busy_timeout_ms: default_busy_timeout_ms(),
            acquire_timeout_ms: default_acquire_timeout_ms(),
            field_keys: None,
        }
    }

    /// These settings with `keys` as the data key.
    pub fn with_field_keys(self, keys: FieldKeys) -> DatabaseSettings {
        DatabaseSettings { field_keys: Some(keys), ..self }
    }

    /// Settings for `url` (as [`DatabaseSettings::new`]) with the fixed, publicly known test
    /// data key ([`FieldKeys::insecure_test_keys`]). For tests only: built with the `test-keys`
    /// feature (or in this crate's tests).
    #[cfg(any(test, feature = "test-keys"))]
    pub fn with_insecure_test_keys(url: impl Into<String>) -> DatabaseSettings {
        DatabaseSettings::new(url).with_field_keys(FieldKeys::insecure_test_keys())
    }

    /// The file of an embedded SQLite database (`sqlite://data/x.sqlite?mode=rwc` →
    /// `data/x.sqlite`); `None` for an in-memory SQLite database or PostgreSQL.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        sqlite_file(&self.url)
    }

    fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

/// Prints the URL with its password redacted.
impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("busy_timeout_ms", &self.busy_timeout_ms)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("field_keys", &self.field_keys)
            .finish()
    }
}

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Embedded SQLite file (WAL).
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// What [`Store::migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigrationReport {
    /// Names of the migrations applied by this call, in order (empty when already up to date).
    pub applied: Vec<String>,
}

/// The database: registry repositories, record-engine storage and enablement overrides.
///
/// Cheap to clone (the pools are shared). On SQLite every write goes through one writer
/// connection in a `BEGIN IMMEDIATE` transaction and reads use a separate pool of `query_only`
/// connections; record-engine batches ([`Store::write`]) are group-committed by one writer task
/// (several concurrent batches in one transaction, each in its own savepoint). On PostgreSQL
/// both share one pool and every write is its own transaction.
#[derive(Clone)]
pub struct Store {
    pub(crate) writer: DatabaseConnection,
    pub(crate) reader: DatabaseConnection,
    /// The group-commit writer (SQLite only). The task ends when the last clone of the store is
    /// dropped, or at [`Store::close`].
    pub(crate) group: Option<Arc<GroupWriter>>,
    /// The keys of the encrypted columns.
    pub(crate) keys: FieldKeys,
    /// Record-data fields kept encrypted (shared by every clone).
    pub(crate) sealed: Arc<crate::sealed::SealedFields>,
    backend: Backend,
}

/// Shows the backend only (never connection details).
impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database named by `settings.url`.
    ///
    /// SQLite: creates the file if missing, sets WAL, `synchronous=NORMAL`, `foreign_keys=ON` and
    /// the busy timeout; opens ONE writer connection and a read pool of `max_connections`.
    /// PostgreSQL: one pool of `max_connections`.
    ///
    /// Without [`DatabaseSettings::field_keys`] this is [`StoreError::NoDataKey`] (nothing is
    /// opened). When the database already holds a key check value for another data key it is
    /// [`StoreError::DataKeyMismatch`] and the pools are closed again.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        let url = settings.url.as_str();
        let sqlite = url.starts_with("sqlite:");
        if !(sqlite || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(connect_err(url, "unsupported database url: expected `sqlite:` or `postgres://`"));
        }
        let keys = settings.field_keys.clone().ok_or(StoreError::NoDataKey)?;
        let store = if sqlite {
            Store::connect_sqlite(settings, keys).await?
        } else {
            Store::connect_postgres(settings, keys).await?
        };
        match store.check_data_key().await {
            Ok(()) => Ok(store),
            Err(e) => {
                if let Err(close) = store.close().await {
                    tracing::warn!(error = %close, "closing the database after a refused connect failed");
                }
                Err(e)
            }
        }
    }

    /// Compares the configured key with the check value stored by [`Store::migrate`], if the
    /// database has one yet.
    async fn check_data_key(&self) -> Result<(), StoreError> {
        const OP: &str = "check the data key";
        let has_meta = SchemaManager::new(&self.reader).has_table(store_meta::TABLE).await.map_err(db(OP))?;
        if !has_meta {
            return Ok(());
        }
        let stored = store_meta::Entity::find()
            .filter(store_meta::Column::Name.eq(KEY_CHECK))
            .one(&self.reader)
            .await
            .map_err(db(OP))?;
        match stored {
            Some(row) if row.value != self.keys.check_value() => Err(StoreError::DataKeyMismatch),
            _ => Ok(()),
        }
    }

    async fn connect_sqlite(settings: &DatabaseSettings, keys: FieldKeys) -> Result<Store, StoreError> {
        let url = settings.url.as_str();
        let busy = Duration::from_millis(settings.busy_timeout_ms);
        if let Some(dir) = sqlite_file(url).and_then(|f| f.parent().map(std::path::Path::to_path_buf))
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(&dir)
                .map_err(|e| connect_err(url, format!("cannot create the directory {}: {e}", dir.display())))?;
        }

        let mut writer_options = ConnectOptions::new(url);
        writer_options
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(settings.acquire_timeout())
            .sqlx_logging(false)
            .test_before_acquire(false)
            .map_sqlx_sqlite_opts(move |o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(busy)
                    // A 32 MiB page cache for the one writer: a large import is one transaction,
                    // and with SQLite's 2 MiB default its dirty pages spill to the WAL and are
                    // read back page by page (measured: most of the import's time in pread).
                    .pragma("cache_size", WRITER_CACHE_PAGES)
            });
        let writer = Database::connect(writer_options).await.map_err(|e| connect_err(url, e))?;

        // An in-memory database exists once per connection: it cannot have a separate read pool.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let reader = if in_memory {
            writer.clone()
        } else {
            let mut reader_options = ConnectOptions::new(url);
            reader_options
                .max_connections(settings.max_connections.max(1))
                .acquire_timeout(settings.acquire_timeout())
                .sqlx_logging(false)
                .test_before_acquire(false)
                .map_sqlx_sqlite_opts(move |o| o.foreign_keys(true).busy_timeout(busy).pragma("query_only", "ON"));
            Database::connect(reader_options).await.map_err(|e| connect_err(url, e))?
        };
        let group = GroupWriter::start(writer.clone(), settings.acquire_timeout());
        Ok(Store {
            writer,
            reader,
            group: Some(Arc::new(group)),
            keys,
            sealed: Arc::default(),
            backend: Backend::Sqlite,
        })
    }

    async fn connect_postgres(settings: &DatabaseSettings, keys: FieldKeys) -> Result<Store, StoreError> {
        let url = settings.url.as_str();
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout())
            .sqlx_logging(false)
            .test_before_acquire_if_idle_for(Duration::from_secs(30));
        let pool = Database::connect(options).await.map_err(|e| connect_err(url, e))?;
        Ok(Store {
            writer: pool.clone(),
            reader: pool,
            group: None,
            keys,
            sealed: Arc::default(),
            backend: Backend::Postgres,
        })
    }

    /// The database engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The same database with every [`Store::write`] in a transaction of its own, statement by
    /// statement (what PostgreSQL does), to compare group commit against.
    #[cfg(test)]
    pub(crate) fn without_group_commit(&self) -> Store {
        Store { group: None, ..self.clone() }
    }

    /// Checks that the database answers (for health endpoints). Uses the read pool, so it does
    /// not queue behind writers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.reader.ping().await.map_err(db("ping"))
    }

    /// Closes the pools (on SQLite this checkpoints the WAL). Other clones become unusable.
    ///
    /// On SQLite the group-commit writer first finishes the batches queued before this call,
    /// then stops; later [`Store::write`] calls on other clones fail.
    pub async fn close(self) -> Result<(), StoreError> {
        if let Some(group) = &self.group {
            group.shut_down().await;
        }
        if self.backend == Backend::Sqlite {
            self.reader.close_by_ref().await.map_err(db("close"))?;
        }
        self.writer.close_by_ref().await.map_err(db("close"))
    }

    /// Applies every pending migration, all in one transaction (an interrupted run leaves
    /// nothing behind). On PostgreSQL an advisory lock makes concurrent calls from several
    /// host instances wait for each other; the second one then finds nothing to do.
    ///
    /// In the same transaction it records the data key's check value the first time, and
    /// otherwise compares it: a database written with another key is
    /// [`StoreError::DataKeyMismatch`] (and nothing of the run is kept).
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let migration_err = |e: DbErr| StoreError::Migration(e.to_string());
        let txn = self.begin_write("migrate").await?;
        let result = async {
            if self.backend == Backend::Postgres {
                txn.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_advisory_xact_lock($1)",
                    [MIGRATION_LOCK_KEY.into()],
                ))
                .await
                .map_err(migration_err)?;
            }
            let pending: Vec<String> = Migrator::get_pending_migrations(&txn)
                .await
                .map_err(migration_err)?
                .iter()
                .map(|m| m.name().to_owned())
                .collect();
            Migrator::up(&txn, None).await.map_err(migration_err)?;
            record_key_check(&txn, &self.keys).await?;
            Ok(MigrationReport { applied: pending })
        }
        .await;
        let report = finish(txn, result, "migrate").await?;
        if !report.applied.is_empty() {
            tracing::info!(applied = ?report.applied, "database migrated");
        }
        Ok(report)
    }

    /// Starts a write transaction: `BEGIN IMMEDIATE` on SQLite (so the write lock is taken up
    /// front and the busy handler applies), retried a few times while another process holds
    /// the lock.
    pub(crate) async fn begin_write(&self, operation: &'static str) -> Result<DatabaseTransaction, StoreError> {
        begin_write_on(&self.writer, operation).await
    }
}

/// Stores the key check value of `keys` if the database has none yet; otherwise compares it.
async fn record_key_check(txn: &DatabaseTransaction, keys: &FieldKeys) -> Result<(), StoreError> {
    const OP: &str = "record the data key check";
    let stored =
        store_meta::Entity::find().filter(store_meta::Column::Name.eq(KEY_CHECK)).one(txn).await.map_err(db(OP))?;
    match stored {
        Some(row) if row.value == keys.check_value() => Ok(()),
        Some(_) => Err(StoreError::DataKeyMismatch),
        None => {
            let row =
                store_meta::ActiveModel { name: Set(KEY_CHECK.to_owned()), value: Set(keys.check_value().to_owned()) };
            store_meta::Entity::insert(row).exec_without_returning(txn).await.map(|_| ()).map_err(db(OP))
        }
    }
}

/// [`Store::begin_write`] on a given writer connection (the group-commit task holds its own
/// clone of it, so that it does not keep the [`Store`] alive).
pub(crate) async fn begin_write_on(
    writer: &DatabaseConnection,
    operation: &'static str,
) -> Result<DatabaseTransaction, StoreError> {
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let sqlite = writer.get_database_backend() == DbBackend::Sqlite;
    let mut attempt = 0;
    loop {
        match writer.begin_with_options(options).await {
            Ok(txn) => return Ok(txn),
            Err(e) if sqlite && is_busy(&e) && !is_pool_timeout(&e) => {
                attempt += 1;
                if attempt > BUSY_RETRIES {
                    tracing::warn!(operation, attempts = attempt, "database stayed busy, giving up");
                    return Err(StoreError::Busy);
                }
                tracing::debug!(operation, attempt, "database busy at begin, retrying");
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
            }
            Err(e) => return Err(db_err(operation, e)),
        }
    }
}

fn is_pool_timeout(err: &DbErr) -> bool {
    matches!(err, DbErr::ConnectionAcquire(_))
}

/// Commits `txn` if `result` is `Ok`, rolls it back otherwise.
pub(crate) async fn finish<T>(
    txn: DatabaseTransaction,
    result: Result<T, StoreError>,
    operation: &'static str,
) -> Result<T, StoreError> {
    match result {
        Ok(value) => {
            txn.commit().await.map_err(db(operation))?;
            Ok(value)
        }
        Err(err) => {
            if let Err(rollback) = txn.rollback().await {
                tracing::warn!(operation, error = %rollback, "rollback failed");
            }
            Err(err)
        }
    }
}

/// The file a SQLite URL names (`sqlite://data/x.sqlite?mode=rwc` → `data/x.sqlite`), or `None`
/// for an in-memory database.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

#[cfg(test)]
mod url_tests {
    use super::sqlite_file;
    use std::path::PathBuf;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_file("sqlite://data/x.sqlite?mode=rwc"), Some(PathBuf::from("data/x.sqlite")));
        assert_eq!(sqlite_file("sqlite:///tmp/a.db"), Some(PathBuf::from("/tmp/a.db")));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://shared?mode=memory&cache=shared"), None);
        assert_eq!(sqlite_file("postgres://db/x"), None);
    }
}
