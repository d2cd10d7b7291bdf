//! 登录与认证 authentication: passwords, browser sessions, API tokens and login rate limiting.
//!
//! - Passwords are Argon2id PHC strings, hashed and verified on the blocking pool so a burst of
//!   logins never stalls the async workers. An unknown login is verified against a dummy hash so
//!   its timing matches a wrong password.
//! - Browser sessions are server-side: the cookie holds a random secret, the database its SHA-256.
//!   A login always issues a fresh id (rotation) and deletes the one the browser brought; logout
//!   deletes the row. Cookies are `HttpOnly`, `SameSite=Strict`, `Secure` unless configured off.
//! - API tokens (`jy_…`) are random, shown once, stored as SHA-256; sent as `Authorization: Bearer`.
//! - Failed logins are counted per login name and per client address in a fixed window; past the
//!   limit the answer is 429 with `Retry-After`, before any hashing happens. The count is per host
//!   instance (several instances multiply the allowance; each still bounds it).
//!
//! Resolved callers are cached for a few seconds (`token_cache`) to keep authenticated reads
//! cheap; a revocation or logout through this instance evicts at once, others notice within the
//! TTL.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};

use jiayuan_domain::Timestamp;
use jiayuan_host::access::Caller;
use jiayuan_host::clock::HostClock;
use jiayuan_store::{Account, AuditTarget, NewAudit, NewSession, Store, StoreError};

use crate::error::ApiError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "jiayuan_session";

/// The prefix of every API token, so leaked tokens are easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "jy_";

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Longest password accepted (bounds the hashing work an attacker can ask for).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Authentication settings: the host's `[auth]` section, used as they are.
pub use jiayuan_host::settings::AuthSettings;

/// Why a password or an authentication step failed, for the CLI and the API.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The password breaks the length rule.
    #[error("the password must have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters (it has {0})")]
    WeakPassword(usize),
    /// The operating system's random number generator failed: no safe secret can be made.
    #[error("the operating system's random number generator failed: {0}")]
    Randomness(String),
    /// Hashing failed (bad parameters) or the blocking pool is gone.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The Argon2id hasher for `config`.
fn argon2(config: &AuthSettings) -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(config.argon2_memory_kib, config.argon2_iterations, 1, None)
        .map_err(|e| AuthError::Hashing(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks the password rule: length only (NIST SP 800-63B), counted in characters.
pub fn check_password(password: &str) -> Result<(), AuthError> {
    let n = password.chars().count();
    if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) { Ok(()) } else { Err(AuthError::WeakPassword(n)) }
}

/// Hashes a password with Argon2id on the blocking pool; the PHC string carries salt and parameters.
pub async fn hash_password(config: &AuthSettings, password: &str) -> Result<String, AuthError> {
    check_password(password)?;
    let argon = argon2(config)?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AuthError::Hashing(e.to_string()))
    })
    .await
    .map_err(|e| AuthError::Hashing(format!("blocking pool: {e}")))?
}

/// Verifies a password against a PHC string on the blocking pool. A malformed stored hash is a
/// mismatch (and logged), never a panic.
async fn verify_password(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || match PasswordHash::new(&hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "a stored password hash does not parse; the login fails");
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// A fresh random secret (256 bits, URL-safe base64 without padding).
pub fn new_secret() -> Result<String, AuthError> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Randomness(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a session id or token: hex SHA-256.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new API token: `(token shown once, prefix for display, hash to store)`.
pub fn new_token() -> Result<(String, String, String), AuthError> {
    let token = format!("{TOKEN_PREFIX}{}", new_secret()?);
    let prefix = token.chars().take(TOKEN_PREFIX.len() + 6).collect();
    let hash = secret_hash(&token);
    Ok((token, prefix, hash))
}

/// How a request authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A browser session (its stored hash).
    Session(String),
    /// An API token (its id).
    Token(i64),
}

/// An authenticated request's account and caller.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The account.
    pub account: Account,
    /// What the engine and [`jiayuan_host::access::authorize`] see.
    pub caller: Caller,
    /// How it authenticated.
    pub via: Via,
}

impl Authenticated {
    fn new(account: Account, via: Via) -> Authenticated {
        let caller = Caller::account(&account.login, account.role, &account.scope, account.items.clone());
        Authenticated { account, caller, via }
    }
}

#[derive(Debug)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Logins, sessions, tokens and the login rate limiter, shared by every request.
#[derive(Debug)]
pub struct Auth {
    store: Store,
    clock: Arc<dyn HostClock>,
    config: AuthSettings,
    dummy_hash: String,
    failures: Mutex<HashMap<String, Window>>,
    cache: Mutex<HashMap<String, (Authenticated, Instant)>>,
}

/// Entries kept in the rate limiter and the caller cache before expired ones are swept.
const SWEEP_AT: usize = 10_000;

impl Auth {
    /// Authentication over `store`, with the dummy hash for unknown logins computed once.
    pub async fn new(store: Store, clock: Arc<dyn HostClock>, config: AuthSettings) -> Result<Auth, AuthError> {
        let dummy_hash = hash_password(&config, "not-a-password-of-anyone").await?;
        Ok(Auth {
            store,
            clock,
            config,
            dummy_hash,
            failures: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &AuthSettings {
        &self.config
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Resolves the request's credentials: `Authorization: Bearer <token>` first, else the
    /// session cookie. No credentials, or unknown / expired / revoked ones, is 401.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Authenticated, ApiError> {
        let (key, bearer) = match bearer_token(headers) {
            Some(t) => (secret_hash(t), true),
            None => match session_cookie(headers) {
                Some(s) => (secret_hash(s), false),
                None => return Err(unauthenticated("no credentials")),
            },
        };
        if let Some(hit) = self.cached(&key) {
            return Ok(hit);
        }
        let now = self.now();
        let found = if bearer {
            self.store
                .token_account(&key, now)
                .await
                .map_err(|e| ApiError::internal(&e))?
                .map(|(account, id)| Authenticated::new(account, Via::Token(id)))
        } else {
            self.store
                .session_account(&key, now)
                .await
                .map_err(|e| ApiError::internal(&e))?
                .map(|account| Authenticated::new(account, Via::Session(key.clone())))
        };
        let mut found = found.ok_or_else(|| unauthenticated("unknown, expired or revoked credentials"))?;
        // An agency officer's audience is the kind of their unit.
        if let Some(unit) = found.account.agency_unit
            && let Some(unit) = self.store.agency_unit(unit).await.map_err(|e| ApiError::internal(&e))?
        {
            found.caller = found.caller.in_unit(&unit);
        }
        self.remember(key, found.clone());
        Ok(found)
    }

    fn cached(&self, key: &str) -> Option<Authenticated> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(key).filter(|(_, at)| at.elapsed() < self.config.cache_ttl).map(|(a, _)| a.clone())
    }

    fn remember(&self, key: String, a: Authenticated) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= SWEEP_AT {
            let ttl = self.config.cache_ttl;
            cache.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        cache.insert(key, (a, Instant::now()));
    }

    /// Forgets every cached caller (after an account, token or session change).
    pub fn forget_cached(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Logs in with a password. Returns the account and the new session secret for the cookie.
    /// `previous` is the session the browser brought, deleted in the same transaction (rotation).
    /// Too many failures for this login or `client` is 429; wrong credentials are one 401
    /// (whether the login exists is not told). Both outcomes are audited.
    pub async fn login(
        &self,
        login: &str,
        password: &str,
        previous: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<(Account, String), ApiError> {
        let keys: Vec<String> =
            std::iter::once(format!("login:{login}")).chain(client.map(|ip| format!("ip:{ip}"))).collect();
        if let Some(wait) = keys.iter().filter_map(|k| self.blocked_for(k)).max() {
            return Err(too_many(wait));
        }
        let found = self.store.password_hash_of(login).await.map_err(|e| ApiError::internal(&e))?;
        let (account, hash) = match found {
            Some((account, Some(hash))) if !account.disabled => (Some(account), hash),
            _ => (None, self.dummy_hash.clone()),
        };
        let ok = verify_password(hash.clone(), password.to_owned()).await && account.is_some();
        let now = self.now();
        let Some(account) = account.filter(|_| ok) else {
            for k in &keys {
                self.fail(k);
            }
            let audit = NewAudit {
                at: now,
                actor: login.to_owned(),
                action: "auth.login_failed".into(),
                target: AuditTarget::Object(format!("login/{login}")),
                estate_id: None,
                detail_json: serde_json::json!({ "client": client.map(|ip| ip.to_string()) }).to_string(),
            };
            self.store.append_audit(audit).await.map_err(|e| ApiError::internal(&e))?;
            return Err(bad_credentials());
        };
        self.clear(&keys[0]);
        let secret = new_secret().map_err(|e| ApiError::internal(&e))?;
        let ttl_ms = i64::try_from(self.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
        let session = NewSession {
            id_hash: secret_hash(&secret),
            account_id: account.id,
            created_at: now,
            expires_at: Timestamp(now.0.saturating_add(ttl_ms)),
            verified_hash: Some(hash),
        };
        let previous = previous.map(secret_hash);
        match self.store.create_session(&session, previous.as_deref(), &account.login, now).await {
            Ok(()) => {}
            // The password changed (or the account was disabled) while this login was checked.
            Err(StoreError::StaleCredentials { .. }) => {
                return Err(bad_credentials());
            }
            Err(e) => return Err(ApiError::internal(&e)),
        }
        if let Some(p) = previous {
            self.cache.lock().unwrap_or_else(|p| p.into_inner()).remove(&p);
        }
        Ok((account, secret))
    }

    /// Ends a browser session on the server (audited).
    pub async fn logout(&self, session_hash: &str, login: &str) -> Result<(), ApiError> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).remove(session_hash);
        self.store.delete_session(session_hash, login, self.now()).await.map_err(|e| ApiError::internal(&e))?;
        Ok(())
    }

    /// The `Set-Cookie` value carrying a new session.
    pub fn session_cookie(&self, secret: &str) -> HeaderValue {
        let secure = if self.config.cookie_secure { "; Secure" } else { "" };
        let max_age = self.config.session_ttl.as_secs();
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("jiayuan_session=; Path=/; Max-Age=0"))
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn cleared_cookie(&self) -> HeaderValue {
        let secure = if self.config.cookie_secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"))
            .unwrap_or_else(|_| HeaderValue::from_static("jiayuan_session=; Path=/; Max-Age=0"))
    }

    fn blocked_for(&self, key: &str) -> Option<Duration> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let w = map.get(key)?;
        let left = self.config.login_window.checked_sub(w.started.elapsed())?;
        (w.failures >= self.config.login_attempts).then_some(left)
    }

    fn fail(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let window = self.config.login_window;
        if map.len() >= SWEEP_AT {
            map.retain(|_, w| w.started.elapsed() < window);
        }
        let w = map.entry(key.to_owned()).or_insert(Window { started: Instant::now(), failures: 0 });
        if w.started.elapsed() >= window {
            *w = Window { started: Instant::now(), failures: 0 };
        }
        w.failures += 1;
    }

    fn clear(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// The bearer token of the request, if any.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The session secret from the `Cookie` header, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value)
}

/// One answer for a wrong login, a wrong password and a disabled account (which is which is
/// not told).
fn bad_credentials() -> ApiError {
    ApiError::client(StatusCode::UNAUTHORIZED, "bad_credentials", "账号或密码错误", "wrong login or password")
}

fn unauthenticated(why: &str) -> ApiError {
    ApiError::client(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "请先登录（会话 Cookie 或 Authorization: Bearer 令牌）",
        format!("authentication required ({why}): log in for a session cookie or send Authorization: Bearer <token>"),
    )
    .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"jiayuan\""))
}

fn too_many(wait: Duration) -> ApiError {
    let secs = wait.as_secs().max(1);
    ApiError::client(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_logins",
        format!("登录失败次数过多，请 {secs} 秒后再试"),
        format!("too many failed logins; try again in {secs} s"),
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> AuthSettings {
        AuthSettings { argon2_memory_kib: 64, argon2_iterations: 1, ..AuthSettings::default() }
    }

    #[tokio::test]
    async fn passwords_hash_to_argon2id_and_verify() {
        let hash = hash_password(&fast(), "correct horse battery").await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(verify_password(hash.clone(), "correct horse battery".into()).await);
        assert!(!verify_password(hash, "correct horse battery!".into()).await);
        assert!(!verify_password("not a phc string".into(), "x".into()).await);
        assert!(matches!(hash_password(&fast(), "short").await, Err(AuthError::WeakPassword(5))));
    }

    #[test]
    fn the_default_parameters_are_owasps_argon2id_baseline() {
        let c = AuthSettings::default();
        assert_eq!((c.argon2_memory_kib, c.argon2_iterations), (19 * 1024, 2));
        assert!(argon2(&c).is_ok());
    }

    #[test]
    fn tokens_are_prefixed_random_and_stored_hashed() {
        let (token, prefix, hash) = new_token().expect("token");
        let (other, _, _) = new_token().expect("token");
        assert!(token.starts_with(TOKEN_PREFIX) && token.len() == TOKEN_PREFIX.len() + 43, "{token}");
        assert_ne!(token, other);
        assert!(token.starts_with(&prefix));
        assert_eq!(hash, secret_hash(&token));
        assert!(!hash.contains(&token[TOKEN_PREFIX.len()..]));
    }

    #[test]
    fn credentials_are_read_from_bearer_or_cookie() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer jy_abc"));
        assert_eq!(bearer_token(&h), Some("jy_abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&h), None);
        h.insert(header::COOKIE, HeaderValue::from_static("theme=dark; jiayuan_session=s3cr3t; x=y"));
        assert_eq!(session_cookie(&h), Some("s3cr3t"));
    }
}
