//! User accounts and how they authenticate: `accounts` (role, scope, items, password hash),
//! browser `sessions` and `api_tokens`.
//!
//! No secret is stored. A password is kept as the PHC string its hasher produced (hashing and
//! checking happen above the store); a session id and an API token are kept as the hex SHA-256 of
//! the secret, which the caller computes — so a lookup is one indexed equality. An account's role
//! is stored as [`Role::as_str`], its scope as the [`AccountScope`] display spelling
//! (`district`, `street:<code>`, `community:<code>`, `firm:<id>`), its items as a JSON array of
//! plugin ids (`NULL`: every item of the scope).
//!
//! Every change appends its audit event in the same transaction. Audit events name accounts by
//! id and login, tokens by id, name and prefix, sessions by their account (`session/<account id>`)
//! — never a display name, a hash or a secret. Instants are compared as `expires_at > now`: a
//! session or token is valid strictly before its expiry instant.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TryInsertResult,
};

use jiayuan_domain::{AccountId, AccountScope, AgencyUnitId, Role, Timestamp, check_login};

use crate::audit::{self, AuditTarget, NewAudit};
use crate::entity::{account, api_token, session};
use crate::error::{StoreError, db};
use crate::records::WriteBatch;
use crate::store::{Store, finish};

/// An account to create ([`Account`] without its id and instants, plus its password hash).
#[derive(Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// Login name (checked with [`check_login`]); unique.
    pub login: String,
    /// Name shown in the UI (personal data: never audited).
    pub display_name: String,
    /// The role the account acts in.
    pub role: Role,
    /// Where it acts; must fit the role ([`Role::check_scope`]).
    pub scope: AccountScope,
    /// The service items (plugin ids) it is limited to; `None` = every item of its scope. Only
    /// firm staff and agency officers have (and need) a list.
    pub items: Option<Vec<String>>,
    /// PHC string of the password hash; `None` = no password (token-only, or set later).
    pub password_hash: Option<String>,
    /// The agency unit an agency officer belongs to (must exist).
    pub agency_unit: Option<AgencyUnitId>,
}

/// Shows the password hash as `***`.
impl std::fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccount")
            .field("login", &self.login)
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .field("scope", &self.scope)
            .field("items", &self.items)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "***"))
            .field("agency_unit", &self.agency_unit)
            .finish()
    }
}

/// A stored account. Its password hash is not part of it: see [`Store::password_hash_of`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Id.
    pub id: AccountId,
    /// Login name.
    pub login: String,
    /// Name shown in the UI.
    pub display_name: String,
    /// The role it acts in.
    pub role: Role,
    /// Where it acts.
    pub scope: AccountScope,
    /// The service items it is limited to; `None` = every item of its scope.
    pub items: Option<Vec<String>>,
    /// A disabled account cannot log in, and its sessions and tokens are not honoured.
    pub disabled: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last changed (password, enabled state).
    pub updated_at: Timestamp,
    /// The agency unit an agency officer belongs to.
    pub agency_unit: Option<AgencyUnitId>,
}

/// A browser session to store.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSession {
    /// Hex SHA-256 of the secret session id (the secret itself is never stored).
    pub id_hash: String,
    /// Whose session it is.
    pub account_id: AccountId,
    /// When it was opened.
    pub created_at: Timestamp,
    /// It is valid strictly before this instant.
    pub expires_at: Timestamp,
    /// The password hash the login verified. When given, the session is refused
    /// ([`StoreError::StaleCredentials`]) if the account's hash changed, or the account was
    /// disabled, between the check and this write: a login racing a password reset gets no
    /// session that would outlive the reset.
    pub verified_hash: Option<String>,
}

/// Shows only the first characters of the hash.
impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("id_hash", &abbreviate(&self.id_hash))
            .field("account_id", &self.account_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("verified_hash", &self.verified_hash.as_ref().map(|_| "***"))
            .finish()
    }
}

/// An API token to store.
#[derive(Clone, PartialEq, Eq)]
pub struct NewApiToken {
    /// Whose token it is.
    pub account_id: AccountId,
    /// What it is for, chosen by its owner (e.g. `nightly export`).
    pub name: String,
    /// The first characters of the token, to tell tokens apart in the UI and the audit log.
    pub prefix: String,
    /// Hex SHA-256 of the token (the token itself is never stored); unique.
    pub token_hash: String,
    /// When it was issued.
    pub created_at: Timestamp,
    /// It is valid strictly before this instant; `None` = until revoked.
    pub expires_at: Option<Timestamp>,
}

/// Shows only the first characters of the hash.
impl std::fmt::Debug for NewApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiToken")
            .field("account_id", &self.account_id)
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("token_hash", &abbreviate(&self.token_hash))
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What may be shown of a stored API token (never its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenInfo {
    /// Id.
    pub id: i64,
    /// Whose token it is.
    pub account_id: AccountId,
    /// What it is for.
    pub name: String,
    /// The first characters of the token.
    pub prefix: String,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it expires, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// A change of an account's name, role, scope or assigned items; `None` keeps what it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountChange {
    /// A new display name.
    pub display_name: Option<String>,
    /// A new role.
    pub role: Option<Role>,
    /// A new scope.
    pub scope: Option<AccountScope>,
    /// New assigned items (`Some(None)`: every item of the scope, for roles that cover all).
    pub items: Option<Option<Vec<String>>>,
    /// A new agency unit (`Some(None)`: none); must exist.
    pub agency_unit: Option<Option<AgencyUnitId>>,
}

impl Store {
    /// Changes an account (audited as `account.update` by `actor`, old and new values of what
    /// changed). The resulting role, scope and items are checked together
    /// ([`Role::check_scope`]): [`StoreError::InvalidAccount`], nothing written. A change of role,
    /// scope or items ends the account's browser sessions, so nobody keeps the old reach.
    /// Unknown id: [`StoreError::NotFound`].
    pub async fn update_account(
        &self,
        id: AccountId,
        change: &AccountChange,
        actor: &str,
        at: Timestamp,
    ) -> Result<Account, StoreError> {
        const OP: &str = "update account";
        let txn = self.begin_write(OP).await?;
        let result = async {
            let row = account::Entity::find_by_id(id.0)
                .one(&txn)
                .await
                .map_err(db(OP))?
                .ok_or_else(|| StoreError::NotFound { what: "account", id: id.0.to_string() })?;
            let before = account_from_row(row)?;
            let mut after = before.clone();
            if let Some(name) = &change.display_name {
                after.display_name = name.clone();
            }
            if let Some(role) = change.role {
                after.role = role;
            }
            if let Some(scope) = &change.scope {
                after.scope = scope.clone();
            }
            if let Some(items) = &change.items {
                after.items = items.clone();
            }
            if let Some(unit) = change.agency_unit {
                after.agency_unit = unit;
            }
            after.role.check_scope(&after.scope, after.items.as_deref()).map_err(StoreError::InvalidAccount)?;
            after.updated_at = at;
            account::Entity::update_many()
                .col_expr(account::Column::DisplayName, Expr::value(after.display_name.clone()))
                .col_expr(account::Column::Role, Expr::value(after.role.as_str()))
                .col_expr(account::Column::Scope, Expr::value(after.scope.to_string()))
                .col_expr(
                    account::Column::ItemsJson,
                    Expr::value(after.items.as_ref().map(|i| serde_json::Value::from(i.clone()).to_string())),
                )
                .col_expr(account::Column::UpdatedAt, Expr::value(at.0))
                .col_expr(account::Column::AgencyUnitId, Expr::value(after.agency_unit.map(|u| u.0)))
                .filter(account::Column::Id.eq(id.0))
                .exec(&txn)
                .await
                .map_err(unknown_unit(OP))?;
            let reach_changed = before.role != after.role
                || before.scope != after.scope
                || before.items != after.items
                || before.agency_unit != after.agency_unit;
            let ended = if reach_changed { end_sessions(&txn, id, OP).await? } else { 0 };
            let detail = serde_json::json!({
                "login": before.login,
                "role": [before.role.as_str(), after.role.as_str()],
                "scope": [before.scope.to_string(), after.scope.to_string()],
                "items": [before.items, after.items],
                "agency_unit": [before.agency_unit.map(|u| u.0), after.agency_unit.map(|u| u.0)],
                "display_name_changed": before.display_name != after.display_name,
                "sessions_ended": ended,
            });
            audit::append(&txn, &audit_batch("account.update", account_object(id), actor, at, detail), &[]).await?;
            Ok(after)
        }
        .await;
        finish(txn, result, OP).await
    }

    /// Creates an account and returns its id, with an `account.create` audit event by `actor`
    /// in the same transaction.
    ///
    /// The login ([`check_login`]) and the role's scope and items ([`Role::check_scope`]) are
    /// checked first: [`StoreError::InvalidAccount`], nothing written. A login already taken is
    /// [`StoreError::UniqueKey`] with field `accounts.login`.
    pub async fn insert_account(&self, a: &NewAccount, actor: &str, at: Timestamp) -> Result<AccountId, StoreError> {
        const OP: &str = "insert account";
        check_login(&a.login).map_err(StoreError::InvalidAccount)?;
        a.role.check_scope(&a.scope, a.items.as_deref()).map_err(StoreError::InvalidAccount)?;
        let scope = a.scope.to_string();
        let model = account::ActiveModel {
            id: NotSet,
            login: Set(a.login.clone()),
            display_name: Set(a.display_name.clone()),
            role: Set(a.role.as_str().to_owned()),
            scope: Set(scope.clone()),
            items_json: Set(a.items.as_ref().map(|items| serde_json::Value::from(items.clone()).to_string())),
            password_hash: Set(a.password_hash.clone()),
            disabled: Set(false),
            created_at: Set(at.0),
            updated_at: Set(at.0),
            agency_unit_id: Set(a.agency_unit.map(|u| u.0)),
        };
        let txn = self.begin_write(OP).await?;
        let result = async {
            let id = match account::Entity::insert(model)
                .on_conflict_do_nothing_on([account::Column::Login])
                .exec(&txn)
                .await
                .map_err(unknown_unit(OP))?
            {
                TryInsertResult::Inserted(r) => AccountId(r.last_insert_id),
                _ => return Err(StoreError::UniqueKey { field: "accounts.login".into(), value: a.login.clone() }),
            };
            let detail = serde_json::json!({
                "login": a.login,
                "role": a.role.as_str(),
                "scope": scope,
                "items": a.items,
                "password_set": a.password_hash.is_some(),
                "agency_unit": a.agency_unit.map(|u| u.0),
            });
            audit::append(&txn, &audit_batch("account.create", account_object(id), actor, at, detail), &[]).await?;
            Ok(id)
        }
        .await;
        finish(txn, result, OP).await
    }

    /// One account.
    pub async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        let row = account::Entity::find_by_id(id.0).one(&self.reader).await.map_err(db("read account"))?;
        row.map(account_from_row).transpose()
    }

    /// The account with this login.
    pub async fn account_by_login(&self, login: &str) -> Result<Option<Account>, StoreError> {
        Ok(self.password_hash_of(login).await?.map(|(account, _)| account))
    }

    /// Every account, ordered by id.
    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = account::Entity::find()
            .order_by_asc(account::Column::Id)
            .all(&self.reader)
            .await
            .map_err(db("list accounts"))?;
        rows.into_iter().map(account_from_row).collect()
    }

    /// For a login check: the account with this login and its password hash (PHC string; `None`
    /// when it has no password). Disabled accounts are returned too: the caller refuses them.
    pub async fn password_hash_of(&self, login: &str) -> Result<Option<(Account, Option<String>)>, StoreError> {
        let row = account::Entity::find()
            .filter(account::Column::Login.eq(login))
            .one(&self.reader)
            .await
            .map_err(db("read account by login"))?;
        row.map(|mut r| {
            let hash = r.password_hash.take();
            account_from_row(r).map(|a| (a, hash))
        })
        .transpose()
    }

    /// Sets (or, with `None`, clears) an account's password hash and ends every session of the
    /// account (a reset logs everyone out), with an `account.password_reset` audit event by
    /// `actor`, all in one transaction. An unknown account is [`StoreError::NotFound`].
    pub async fn set_password_hash(
        &self,
        id: AccountId,
        hash: Option<&str>,
        actor: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        const OP: &str = "set password hash";
        let txn = self.begin_write(OP).await?;
        let result = async {
            let login = login_in(&txn, id, OP).await?;
            account::Entity::update_many()
                .col_expr(account::Column::PasswordHash, Expr::value(hash.map(str::to_owned)))
                .col_expr(account::Column::UpdatedAt, Expr::value(at.0))
                .filter(account::Column::Id.eq(id.0))
                .exec(&txn)
                .await
                .map_err(db(OP))?;
            let ended = end_sessions(&txn, id, OP).await?;
            let detail = serde_json::json!({ "login": login, "cleared": hash.is_none(), "sessions_ended": ended });
            audit::append(&txn, &audit_batch("account.password_reset", account_object(id), actor, at, detail), &[])
                .await
        }
        .await;
        finish(txn, result, OP).await
    }

    /// Disables or enables an account, with an `account.disable` / `account.enable` audit event
    /// by `actor` in the same transaction. Both end every session of the account: disabling logs
    /// it out, and enabling drops any session opened while it was disabled (a login racing the
    /// disable), which was never honoured and must not come back to life. Its API tokens are kept
    /// but not honoured while it is disabled ([`Store::token_account`]). An unknown account is
    /// [`StoreError::NotFound`].
    pub async fn set_account_disabled(
        &self,
        id: AccountId,
        disabled: bool,
        actor: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        const OP: &str = "set account disabled";
        let txn = self.begin_write(OP).await?;
        let result = async {
            let login = login_in(&txn, id, OP).await?;
            account::Entity::update_many()
                .col_expr(account::Column::Disabled, Expr::value(disabled))
                .col_expr(account::Column::UpdatedAt, Expr::value(at.0))
                .filter(account::Column::Id.eq(id.0))
                .exec(&txn)
                .await
                .map_err(db(OP))?;
            let ended = end_sessions(&txn, id, OP).await?;
            let action = if disabled { "account.disable" } else { "account.enable" };
            let detail = serde_json::json!({ "login": login, "sessions_ended": ended });
            audit::append(&txn, &audit_batch(action, account_object(id), actor, at, detail), &[]).await
        }
        .await;
        finish(txn, result, OP).await
    }

    /// Stores a new session, first deleting the session `replaces` (the pre-login session id, so
    /// that a login always rotates it), with an `auth.login` audit event by `actor`, all in one
    /// transaction.
    ///
    /// An unknown account is [`StoreError::MissingReference`]; an id hash already stored is
    /// [`StoreError::UniqueKey`] with field `sessions.id_hash` (and only its first characters).
    /// The account's disabled flag is not checked here: [`Store::session_account`] refuses
    /// sessions of disabled accounts.
    pub async fn create_session(
        &self,
        s: &NewSession,
        replaces: Option<&str>,
        actor: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        const OP: &str = "create session";
        let model = session::ActiveModel {
            id_hash: Set(s.id_hash.clone()),
            account_id: Set(s.account_id.0),
            created_at: Set(s.created_at.0),
            expires_at: Set(s.expires_at.0),
        };
        let txn = self.begin_write(OP).await?;
        let result = async {
            if let Some(verified) = &s.verified_hash {
                let now: Option<(Option<String>, bool)> = account::Entity::find_by_id(s.account_id.0)
                    .select_only()
                    .column(account::Column::PasswordHash)
                    .column(account::Column::Disabled)
                    .into_tuple()
                    .one(&txn)
                    .await
                    .map_err(db(OP))?;
                if !matches!(&now, Some((Some(hash), false)) if hash == verified) {
                    return Err(StoreError::StaleCredentials { account: s.account_id });
                }
            }
            let mut replaced = false;
            if let Some(old) = replaces {
                let deleted = session::Entity::delete_many()
                    .filter(session::Column::IdHash.eq(old))
                    .exec(&txn)
                    .await
                    .map_err(db(OP))?;
                replaced = deleted.rows_affected > 0;
            }
            match session::Entity::insert(model)
                .on_conflict_do_nothing_on([session::Column::IdHash])
                .exec_without_returning(&txn)
                .await
                .map_err(db(OP))?
            {
                TryInsertResult::Inserted(n) if n > 0 => {}
                _ => {
                    return Err(StoreError::UniqueKey {
                        field: "sessions.id_hash".into(),
                        value: abbreviate(&s.id_hash),
                    });
                }
            }
            let detail = serde_json::json!({
                "account_id": s.account_id.0,
                "expires_at": s.expires_at.0,
                "replaced": replaced,
            });
            audit::append(&txn, &audit_batch("auth.login", session_object(s.account_id), actor, at, detail), &[]).await
        }
        .await;
        finish(txn, result, OP).await
    }

    /// The account of a session, if the session exists, has not expired at `now`
    /// (`expires_at > now`) and its account is not disabled. One query; runs on every browser
    /// request.
    pub async fn session_account(&self, id_hash: &str, now: Timestamp) -> Result<Option<Account>, StoreError> {
        let row = session::Entity::find()
            .find_also_related(account::Entity)
            .filter(session::Column::IdHash.eq(id_hash))
            .filter(session::Column::ExpiresAt.gt(now.0))
            .filter(account::Column::Disabled.eq(false))
            .one(&self.reader)
            .await
            .map_err(db("read session"))?;
        row.and_then(|(_, account)| account).map(account_from_row).transpose()
    }

    /// Deletes a session (logout), with an `auth.logout` audit event by `actor` in the same
    /// transaction; `false` (and no event) if there was no such session.
    pub async fn delete_session(&self, id_hash: &str, actor: &str, at: Timestamp) -> Result<bool, StoreError> {
        const OP: &str = "delete session";
        let txn = self.begin_write(OP).await?;
        let result = async {
            let Some(account_id) = session::Entity::find_by_id(id_hash.to_owned())
                .select_only()
                .column(session::Column::AccountId)
                .into_tuple::<i64>()
                .one(&txn)
                .await
                .map_err(db(OP))?
            else {
                return Ok(false);
            };
            session::Entity::delete_by_id(id_hash.to_owned()).exec(&txn).await.map_err(db(OP))?;
            let account_id = AccountId(account_id);
            let detail = serde_json::json!({ "account_id": account_id.0 });
            audit::append(&txn, &audit_batch("auth.logout", session_object(account_id), actor, at, detail), &[])
                .await
                .map(|()| true)
        }
        .await;
        finish(txn, result, OP).await
    }

    /// Deletes every session expired at `now` (`expires_at <= now`) and returns how many.
    /// Housekeeping: not audited.
    pub async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        const OP: &str = "delete expired sessions";
        let txn = self.begin_write(OP).await?;
        let result = session::Entity::delete_many()
            .filter(session::Column::ExpiresAt.lte(now.0))
            .exec(&txn)
            .await
            .map(|r| r.rows_affected)
            .map_err(db(OP));
        finish(txn, result, OP).await
    }

    /// Stores an API token and returns its id, with a `token.issue` audit event by `actor` in the
    /// same transaction.
    ///
    /// An unknown account is [`StoreError::MissingReference`]; a token hash already stored is
    /// [`StoreError::UniqueKey`] with field `api_tokens.token_hash` and the token's prefix.
    pub async fn insert_api_token(&self, t: &NewApiToken, actor: &str, at: Timestamp) -> Result<i64, StoreError> {
        const OP: &str = "insert api token";
        let model = api_token::ActiveModel {
            id: NotSet,
            account_id: Set(t.account_id.0),
            name: Set(t.name.clone()),
            prefix: Set(t.prefix.clone()),
            token_hash: Set(t.token_hash.clone()),
            created_at: Set(t.created_at.0),
            expires_at: Set(t.expires_at.map(|e| e.0)),
            revoked_at: Set(None),
        };
        let txn = self.begin_write(OP).await?;
        let result = async {
            let id = match api_token::Entity::insert(model)
                .on_conflict_do_nothing_on([api_token::Column::TokenHash])
                .exec(&txn)
                .await
                .map_err(db(OP))?
            {
                TryInsertResult::Inserted(r) => r.last_insert_id,
                _ => {
                    return Err(StoreError::UniqueKey {
                        field: "api_tokens.token_hash".into(),
                        value: t.prefix.clone(),
                    });
                }
            };
            let detail = serde_json::json!({
                "account_id": t.account_id.0,
                "name": t.name,
                "prefix": t.prefix,
                "expires_at": t.expires_at.map(|e| e.0),
            });
            audit::append(&txn, &audit_batch("token.issue", token_object(id), actor, at, detail), &[]).await?;
            Ok(id)
        }
        .await;
        finish(txn, result, OP).await
    }

    /// The account of an API token and the token's id, if the token exists, is not revoked, has
    /// not expired at `now` (`expires_at > now`) and its account is not disabled. One query;
    /// runs on every API request.
    pub async fn token_account(&self, token_hash: &str, now: Timestamp) -> Result<Option<(Account, i64)>, StoreError> {
        let row = api_token::Entity::find()
            .find_also_related(account::Entity)
            .filter(api_token::Column::TokenHash.eq(token_hash))
            .filter(api_token::Column::RevokedAt.is_null())
            .filter(
                Condition::any()
                    .add(api_token::Column::ExpiresAt.is_null())
                    .add(api_token::Column::ExpiresAt.gt(now.0)),
            )
            .filter(account::Column::Disabled.eq(false))
            .one(&self.reader)
            .await
            .map_err(db("read api token"))?;
        match row {
            Some((token, Some(account))) => Ok(Some((account_from_row(account)?, token.id))),
            _ => Ok(None),
        }
    }

    /// Revokes an API token, with a `token.revoke` audit event by `actor` in the same
    /// transaction; `false` (and no event) if there is no such token or it was revoked already.
    pub async fn revoke_api_token(&self, id: i64, actor: &str, at: Timestamp) -> Result<bool, StoreError> {
        const OP: &str = "revoke api token";
        let txn = self.begin_write(OP).await?;
        let result = async {
            let Some(token) = api_token::Entity::find_by_id(id).one(&txn).await.map_err(db(OP))? else {
                return Ok(false);
            };
            if token.revoked_at.is_some() {
                return Ok(false);
            }
            let updated = api_token::Entity::update_many()
                .col_expr(api_token::Column::RevokedAt, Expr::value(at.0))
                .filter(api_token::Column::Id.eq(id))
                .filter(api_token::Column::RevokedAt.is_null())
                .exec(&txn)
                .await
                .map_err(db(OP))?;
            if updated.rows_affected == 0 {
                return Ok(false);
            }
            let detail = serde_json::json!({
                "account_id": token.account_id,
                "name": token.name,
                "prefix": token.prefix,
            });
            audit::append(&txn, &audit_batch("token.revoke", token_object(id), actor, at, detail), &[])
                .await
                .map(|()| true)
        }
        .await;
        finish(txn, result, OP).await
    }

    /// One API token (without its hash), revoked or not.
    pub async fn api_token(&self, id: i64) -> Result<Option<ApiTokenInfo>, StoreError> {
        let row = api_token::Entity::find_by_id(id).one(&self.reader).await.map_err(db("read api token"))?;
        Ok(row.map(token_info_from_row))
    }

    /// The API tokens of an account (without their hashes), revoked and expired ones included,
    /// ordered by id.
    pub async fn api_tokens(&self, account_id: AccountId) -> Result<Vec<ApiTokenInfo>, StoreError> {
        let rows = api_token::Entity::find()
            .filter(api_token::Column::AccountId.eq(account_id.0))
            .order_by_asc(api_token::Column::Id)
            .all(&self.reader)
            .await
            .map_err(db("list api tokens"))?;
        Ok(rows.into_iter().map(token_info_from_row).collect())
    }

    /// Appends one audit event in a transaction of its own, for events that are not writes
    /// (`auth.login_failed`, `record.unmask`, …). Its target must be an
    /// [`AuditTarget::Object`] ([`AuditTarget::InBatch`] is [`StoreError::InvalidBatch`]), and
    /// like every audit event it must carry no personal data.
    ///
    /// On SQLite it takes the writer connection like every write outside the record engine, so
    /// it is serialised with the group-commit writer and the chain stays unbroken.
    pub async fn append_audit(&self, event: NewAudit) -> Result<(), StoreError> {
        const OP: &str = "append audit event";
        let batch = WriteBatch { audit: vec![event], ..WriteBatch::default() };
        let txn = self.begin_write(OP).await?;
        let result = audit::append(&txn, &batch, &[]).await;
        finish(txn, result, OP).await
    }
}

/// The login of account `id`, read in `txn`; [`StoreError::NotFound`] if there is none.
async fn login_in(txn: &impl ConnectionTrait, id: AccountId, operation: &'static str) -> Result<String, StoreError> {
    account::Entity::find_by_id(id.0)
        .select_only()
        .column(account::Column::Login)
        .into_tuple::<String>()
        .one(txn)
        .await
        .map_err(db(operation))?
        .ok_or_else(|| StoreError::NotFound { what: "account", id: id.0.to_string() })
}

/// Deletes every session of account `id` in `txn` and returns how many there were.
async fn end_sessions(txn: &impl ConnectionTrait, id: AccountId, operation: &'static str) -> Result<u64, StoreError> {
    session::Entity::delete_many()
        .filter(session::Column::AccountId.eq(id.0))
        .exec(txn)
        .await
        .map(|r| r.rows_affected)
        .map_err(db(operation))
}

fn account_object(id: AccountId) -> String {
    format!("account/{id}")
}

fn session_object(account: AccountId) -> String {
    format!("session/{account}")
}

fn token_object(id: i64) -> String {
    format!("token/{id}")
}

/// The first 8 characters of a hash, for errors and `Debug` output.
fn abbreviate(hash: &str) -> String {
    match hash.char_indices().nth(8) {
        Some((end, _)) => format!("{}…", &hash[..end]),
        None => hash.to_owned(),
    }
}

/// A batch holding only the audit event of an account change.
fn audit_batch(action: &str, object: String, actor: &str, at: Timestamp, detail: serde_json::Value) -> WriteBatch {
    WriteBatch {
        audit: vec![NewAudit {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: AuditTarget::Object(object),
            estate_id: None,
            detail_json: detail.to_string(),
        }],
        ..WriteBatch::default()
    }
}

fn account_from_row(r: account::Model) -> Result<Account, StoreError> {
    let role = Role::parse(&r.role)
        .map_err(|_| StoreError::Corrupt { what: "accounts.role", detail: format!("unknown role `{}`", r.role) })?;
    let scope = AccountScope::parse(&r.scope)
        .map_err(|_| StoreError::Corrupt { what: "accounts.scope", detail: format!("unknown scope `{}`", r.scope) })?;
    let items = r.items_json.as_deref().map(serde_json::from_str::<Vec<String>>).transpose().map_err(|e| {
        StoreError::Corrupt { what: "accounts.items_json", detail: format!("not a list of item ids: {e}") }
    })?;
    Ok(Account {
        id: AccountId(r.id),
        login: r.login,
        display_name: r.display_name,
        role,
        scope,
        items,
        disabled: r.disabled,
        created_at: Timestamp(r.created_at),
        updated_at: Timestamp(r.updated_at),
        agency_unit: r.agency_unit_id.map(AgencyUnitId),
    })
}

/// Maps a driver error of an account write: the only foreign key an account row has is its agency
/// unit, so a violation is [`StoreError::Rule`] on `agency_unit` (`unknown_agency_unit`).
fn unknown_unit(operation: &'static str) -> impl FnOnce(sea_orm::DbErr) -> StoreError {
    move |err| match crate::error::db_err(operation, err) {
        StoreError::MissingReference { .. } => StoreError::Rule { field: "agency_unit", rule: "unknown_agency_unit" },
        other => other,
    }
}

fn token_info_from_row(r: api_token::Model) -> ApiTokenInfo {
    ApiTokenInfo {
        id: r.id,
        account_id: AccountId(r.account_id),
        name: r.name,
        prefix: r.prefix,
        created_at: Timestamp(r.created_at),
        expires_at: r.expires_at.map(Timestamp),
        revoked_at: r.revoked_at.map(Timestamp),
    }
}

#[cfg(test)]
mod tests;
