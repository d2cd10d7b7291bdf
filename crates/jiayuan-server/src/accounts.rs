//! 账号管理 account administration shared by the admin API and `jiayuan users`: create accounts,
//! reset passwords, issue and revoke API tokens. Every change is audited by the store in the
//! same transaction; passwords are hashed here (Argon2id, off the async workers) and never stored
//! or logged in clear; a token is returned once and only its hash is kept.

use jiayuan_domain::{AccountError, AccountId, AccountScope, Role, Timestamp};
use jiayuan_store::{Account, AccountChange, NewAccount, NewApiToken, Store, StoreError};

use crate::auth::{self, AuthError, AuthSettings};

/// What an administrator asks for when creating an account.
#[derive(Debug, Clone)]
pub struct AccountDraft {
    /// Login name (`a-z0-9._-`, 3–64).
    pub login: String,
    /// Name shown in the UI.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Where the account acts.
    pub scope: AccountScope,
    /// Assigned service items (firm staff and agency officers only).
    pub items: Option<Vec<String>>,
    /// Initial password; `None` makes a token-only account (integrations).
    pub password: Option<String>,
    /// The agency unit of an agency officer (their audience is `agency:<the unit's kind>`).
    pub agency_unit: Option<jiayuan_domain::AgencyUnitId>,
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// The login, role, scope or items do not fit together.
    #[error(transparent)]
    Invalid(#[from] AccountError),
    /// The password breaks the rule, or hashing failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The login is taken.
    #[error("login `{0}` is already taken")]
    LoginTaken(String),
    /// No such account or token.
    #[error("{0} not found")]
    NotFound(String),
    /// A service item the account is assigned to is not loaded.
    #[error("service item `{0}` is not loaded; assign loaded items only")]
    UnknownItem(String),
    /// An agency unit was given for a role other than agency officer, or names no unit.
    #[error("`agency_unit`: {0}")]
    AgencyUnit(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AccountsError {
    fn from(e: StoreError) -> AccountsError {
        match e {
            StoreError::UniqueKey { field, value } if field == "accounts.login" => AccountsError::LoginTaken(value),
            StoreError::NotFound { what, id } => AccountsError::NotFound(format!("{what} {id}")),
            StoreError::InvalidAccount(e) => AccountsError::Invalid(e),
            other => AccountsError::Store(other),
        }
    }
}

/// Creates an account (audited as `account.create` by `actor`). `known_items` are the loaded
/// plugin ids; assigned items must be among them.
pub async fn create_account(
    store: &Store,
    config: &AuthSettings,
    draft: AccountDraft,
    known_items: &[String],
    actor: &str,
    at: Timestamp,
) -> Result<Account, AccountsError> {
    jiayuan_domain::check_login(&draft.login)?;
    draft.role.check_scope(&draft.scope, draft.items.as_deref())?;
    if let Some(unknown) = draft.items.iter().flatten().find(|i| !known_items.contains(i)) {
        return Err(AccountsError::UnknownItem(unknown.clone()));
    }
    check_unit(store, draft.role, draft.agency_unit).await?;
    let password_hash = match &draft.password {
        Some(p) => Some(auth::hash_password(config, p).await?),
        None => None,
    };
    let new = NewAccount {
        login: draft.login.clone(),
        display_name: draft.display_name,
        role: draft.role,
        scope: draft.scope,
        items: draft.items,
        password_hash,
        agency_unit: draft.agency_unit,
    };
    let id = store.insert_account(&new, actor, at).await?;
    store.account(id).await?.ok_or_else(|| AccountsError::NotFound(format!("account {id}")))
}

/// Changes an account's name, role, scope or items (audited as `account.update`; a change of
/// reach ends its browser sessions). Assigned items must be among `known_items`, the loaded
/// plugin ids.
pub async fn update_account(
    store: &Store,
    id: AccountId,
    change: &AccountChange,
    known_items: &[String],
    actor: &str,
    at: Timestamp,
) -> Result<Account, AccountsError> {
    if let Some(unknown) = change.items.iter().flatten().flatten().find(|i| !known_items.contains(i)) {
        return Err(AccountsError::UnknownItem(unknown.clone()));
    }
    if let Some(unit) = change.agency_unit {
        let current = store.account(id).await?.ok_or_else(|| AccountsError::NotFound(format!("account {id}")))?;
        check_unit(store, change.role.unwrap_or(current.role), unit).await?;
    }
    Ok(store.update_account(id, change, actor, at).await?)
}

/// Only agency officers belong to an agency unit, and the unit must exist.
async fn check_unit(
    store: &Store,
    role: Role,
    unit: Option<jiayuan_domain::AgencyUnitId>,
) -> Result<(), AccountsError> {
    let Some(unit) = unit else { return Ok(()) };
    if role != Role::AgencyOfficer {
        return Err(AccountsError::AgencyUnit("only agency officers belong to an agency unit"));
    }
    if store.agency_unit(unit).await?.is_none() {
        return Err(AccountsError::AgencyUnit(
            "no agency unit has this id; create it under /api/registry/agency-units",
        ));
    }
    Ok(())
}

/// Sets a new password (audited as `account.password_reset`); every session of the account ends.
pub async fn reset_password(
    store: &Store,
    config: &AuthSettings,
    id: AccountId,
    password: &str,
    actor: &str,
    at: Timestamp,
) -> Result<(), AccountsError> {
    let hash = auth::hash_password(config, password).await?;
    store.set_password_hash(id, Some(&hash), actor, at).await?;
    Ok(())
}

/// A freshly issued token: shown once.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The token's id (to revoke it).
    pub id: i64,
    /// The token itself (`jy_…`); only its hash is stored.
    pub token: String,
    /// Its first characters, shown in listings.
    pub prefix: String,
}

/// Issues an API token for an account (audited as `token.issue`).
pub async fn issue_token(
    store: &Store,
    account: AccountId,
    name: &str,
    expires_at: Option<Timestamp>,
    actor: &str,
    at: Timestamp,
) -> Result<IssuedToken, AccountsError> {
    if store.account(account).await?.is_none() {
        return Err(AccountsError::NotFound(format!("account {account}")));
    }
    let (token, prefix, token_hash) = auth::new_token()?;
    let new = NewApiToken {
        account_id: account,
        name: name.to_owned(),
        prefix: prefix.clone(),
        token_hash,
        created_at: at,
        expires_at,
    };
    let id = store.insert_api_token(&new, actor, at).await?;
    Ok(IssuedToken { id, token, prefix })
}
