//! [`StoreError`], the one error type of the store, and the mapping from driver errors to it.
//!
//! sea-orm and sqlx errors never leave the crate: they are classified here (busy, pool timeout,
//! anything else) by error *code*, never by message text, and turned into text with the name of
//! the operation that failed.

use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};

/// Everything that can go wrong in the store.
///
/// `Clone`, so that one failure of a group commit (e.g. [`StoreError::Busy`] at its start) can
/// be reported to every caller in the group.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened. The URL is shown with its password replaced by `***`.
    #[error("cannot connect to database `{url_redacted}`: {reason}")]
    Connect {
        /// The URL with any password redacted.
        url_redacted: String,
        /// What the driver said (with any password redacted too). Part of the message, not a
        /// separate error source, so a cause chain never prints it twice.
        reason: String,
    },
    /// Applying the schema migrations failed; nothing of the failed run was kept.
    #[error("schema migration failed: {0}")]
    Migration(String),
    /// Any other database failure, with the operation that was running.
    #[error("database error during {operation}: {detail}")]
    Database {
        /// The store operation, e.g. `write batch`.
        operation: &'static str,
        /// What the driver said.
        detail: String,
    },
    /// An update expected another version of the record: someone changed it in between.
    #[error("record {id} was changed concurrently: expected version {expected}, found {found}")]
    VersionConflict {
        /// The record.
        id: jiayuan_domain::RecordId,
        /// The version the caller read.
        expected: i64,
        /// The version stored now.
        found: i64,
    },
    /// A unique index key (or a unique registry column) is already taken. The value may be
    /// personal data: mask it before logging or showing it.
    #[error("unique key `{field}` already has the value `{value}`")]
    UniqueKey {
        /// The key field (for registry rows: `table.column`).
        field: String,
        /// The value that is taken.
        value: String,
    },
    /// A row the operation needs does not exist.
    #[error("{what} {id} does not exist")]
    NotFound {
        /// What was looked for, e.g. `record`, `building`.
        what: &'static str,
        /// Its id or code.
        id: String,
    },
    /// A row refers to another row that does not exist (a foreign key failed).
    #[error("{operation} refers to a row that does not exist")]
    MissingReference {
        /// The store operation, e.g. `insert estate`.
        operation: &'static str,
    },
    /// An account description is refused (bad login, a scope the role cannot hold, items where
    /// none are allowed or missing where they are required); nothing was written.
    #[error("invalid account: {0}")]
    InvalidAccount(jiayuan_domain::AccountError),
    /// A login's verified password no longer holds: the account's password changed, or it was
    /// disabled, while the login was being checked. No session was written.
    #[error("the credentials of account {account} changed while logging in; log in again")]
    StaleCredentials {
        /// The account.
        account: jiayuan_domain::AccountId,
    },
    /// A registry rule refused the write (nothing was written): `field` is the field the rule is
    /// about, `rule` its code (e.g. `estate_already_served`, `primary_overlaps`,
    /// `check_character_needs_override`). Never carries the value.
    #[error("registry rule `{rule}` refused field `{field}`")]
    Rule {
        /// The field.
        field: &'static str,
        /// The rule's code.
        rule: &'static str,
    },
    /// A batch is malformed (e.g. an in-batch reference that points forward); nothing was written.
    #[error("invalid write batch: {0}")]
    InvalidBatch(String),
    /// The database stayed locked by another writer after retrying; try again later (HTTP 503).
    #[error("database is busy: another writer holds the lock, try again later")]
    Busy,
    /// No data key was configured ([`crate::DatabaseSettings::field_keys`]): the store cannot
    /// read or write encrypted columns, so it refuses to open the database.
    #[error(
        "no data key is configured: the store encrypts identity-document numbers and phone numbers \
         and needs the key to read or write them"
    )]
    NoDataKey,
    /// The configured data key is not the one the database was written with (its key check
    /// value differs). Nothing was read or written.
    #[error(
        "the data key does not match the one this database was written with: configure the \
         original data key (a new key cannot read the encrypted columns)"
    )]
    DataKeyMismatch,
    /// Encrypting a value failed (e.g. the operating system's random number generator).
    #[error("cannot encrypt {what}: {detail}")]
    Crypto {
        /// The column, e.g. `persons.phone`.
        what: &'static str,
        /// What failed (never the value).
        detail: String,
    },
    /// A stored row cannot be read back into a domain value (e.g. an unknown enum text, or an
    /// encrypted column that does not decrypt with the configured key).
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt {
        /// What was read, e.g. `estate.management`.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

/// SQLite primary result codes that mean "someone else holds the lock".
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
/// SQLite primary result code of a constraint violation (extended codes say which kind).
const SQLITE_CONSTRAINT_FOREIGNKEY: i64 = 787;
/// PostgreSQL SQLSTATE of a foreign-key violation.
const PG_FOREIGN_KEY_VIOLATION: &str = "23503";

fn sqlx_database_error(err: &DbErr) -> Option<&(dyn sea_orm::sqlx::error::DatabaseError + 'static)> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => match e.as_ref() {
            sea_orm::sqlx::Error::Database(db) => Some(db.as_ref()),
            _ => None,
        },
        _ => None,
    }
}

fn sqlite_code(err: &DbErr) -> Option<i64> {
    let db = sqlx_database_error(err)?;
    db.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()?;
    db.code()?.parse().ok()
}

/// Whether the error means the database lock is held by another writer (SQLite BUSY/LOCKED, or
/// no pooled connection became free in time).
pub(crate) fn is_busy(err: &DbErr) -> bool {
    if matches!(err, DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)) {
        return true;
    }
    sqlite_code(err).is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
}

/// Whether the error is a foreign-key violation.
pub(crate) fn is_foreign_key_violation(err: &DbErr) -> bool {
    if sqlite_code(err) == Some(SQLITE_CONSTRAINT_FOREIGNKEY) {
        return true;
    }
    sqlx_database_error(err)
        .filter(|db| db.try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>().is_some())
        .and_then(|db| db.code())
        .is_some_and(|code| code == PG_FOREIGN_KEY_VIOLATION)
}

/// Maps a driver error of `operation` to a [`StoreError`].
pub(crate) fn db_err(operation: &'static str, err: DbErr) -> StoreError {
    if is_busy(&err) {
        StoreError::Busy
    } else if is_foreign_key_violation(&err) {
        StoreError::MissingReference { operation }
    } else {
        StoreError::Database { operation, detail: err.to_string() }
    }
}

/// Returns a closure for `map_err` that maps a driver error of `operation`.
pub(crate) fn db(operation: &'static str) -> impl FnOnce(DbErr) -> StoreError {
    move |err| db_err(operation, err)
}

/// The URL with the password (userinfo or `password=` query parameter) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = String::with_capacity(url.len());
    match base.split_once("://") {
        Some((scheme, rest)) => {
            out.push_str(scheme);
            out.push_str("://");
            // The authority ends at the first `/`; the userinfo ends at the last `@` in it.
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    match userinfo.split_once(':') {
                        Some((user, _password)) => {
                            out.push_str(user);
                            out.push_str(":***");
                        }
                        None => out.push_str(userinfo),
                    }
                    out.push('@');
                    out.push_str(host);
                }
                None => out.push_str(authority),
            }
            out.push_str(path);
        }
        None => out.push_str(base),
    }
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

/// The passwords in `url` (userinfo and `password=` parameters), to scrub from driver messages.
pub(crate) fn passwords_in(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    if let Some((_, rest)) = base.split_once("://") {
        let authority = rest.split('/').next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
            && !password.is_empty()
        {
            found.push(password.to_owned());
        }
    }
    if let Some(query) = query {
        for p in query.split('&') {
            if let Some((k, v)) = p.split_once('=')
                && k.eq_ignore_ascii_case("password")
                && !v.is_empty()
            {
                found.push(v.to_owned());
            }
        }
    }
    found
}

/// A connection error for `url`, with every password scrubbed from the URL and the message.
pub(crate) fn connect_err(url: &str, err: impl std::fmt::Display) -> StoreError {
    let mut message = err.to_string();
    for password in passwords_in(url) {
        message = message.replace(&password, "***");
    }
    StoreError::Connect { url_redacted: redact_url(url), reason: message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo_and_query_passwords() {
        assert_eq!(
            redact_url("postgres://app:s3cr%40t@db.local:5432/jiayuan"),
            "postgres://app:***@db.local:5432/jiayuan"
        );
        assert_eq!(
            redact_url("postgres://app@db.local/jiayuan?password=hunter2&sslmode=disable"),
            "postgres://app@db.local/jiayuan?password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/jiayuan/data.db?mode=rwc"),
            "sqlite:///var/lib/jiayuan/data.db?mode=rwc"
        );
        assert_eq!(redact_url("postgres://a:b@c@host/db"), "postgres://a:***@host/db");
    }

    #[test]
    fn connect_errors_never_carry_the_password() {
        let url = "postgres://app:hunter2@db.local/jiayuan?password=other1";
        let err = connect_err(url, "auth failed for hunter2 and other1");
        let text = err.to_string();
        assert!(!text.contains("hunter2") && !text.contains("other1"), "{text}");
        assert!(text.contains("postgres://app:***@db.local/jiayuan"), "{text}");
    }

    #[test]
    fn classifies_pool_timeouts_as_busy() {
        assert!(is_busy(&DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)));
        assert!(!is_busy(&DbErr::Custom("x".into())));
        assert!(matches!(db_err("op", DbErr::Custom("x".into())), StoreError::Database { operation: "op", .. }));
    }
}
