//! `jiayuan users`: accounts and API tokens from the command line — the way to create the first
//! district admin, and the break-glass path when nobody can log in.
//!
//! Every command opens the configured database directly (migrating it first, like `serve`), so it
//! works with or without a running host. Every change goes through the same functions as the
//! admin API ([`jiayuan_server::accounts`], [`Store`]) and is audited by the store in the same
//! transaction, with the actor `cli:<OS user>`. Passwords are read from the terminal without echo
//! (or from standard input with `--password-stdin`), never from an argument, and only their
//! Argon2id hash is stored; a token is printed once.
//!
//! A running host trusts a resolved token or session for `auth.cache_ttl_secs` without asking the
//! database, so a revocation or a disabled account made here reaches it within that time.

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};
use serde_json::json;

use jiayuan_domain::{AccountError, AccountScope, Role, Timestamp, check_login};
use jiayuan_host::clock::{HostClock, SystemClock};
use jiayuan_host::plugins::PluginRegistry;
use jiayuan_host::settings::Settings;
use jiayuan_server::AuthSettings;
use jiayuan_server::accounts::{self, AccountDraft};
use jiayuan_server::auth::check_password;
use jiayuan_store::{Account, ApiTokenInfo, Store};

/// Longest token name accepted (as in the admin API).
const MAX_TOKEN_NAME_CHARS: usize = 100;

/// `jiayuan users …`.
#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Create an account. Without --password-stdin or --no-password, asks for the password twice
    /// on the terminal (no echo).
    Add(AddArgs),
    /// List the accounts (never their password hashes).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set a new password for an account; every browser session of it ends (its API tokens stay).
    Passwd {
        /// The account's login.
        login: String,
        /// Read the password from the first line of standard input instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account: its sessions end, and its API tokens are refused while it is disabled.
    Disable {
        /// The account's login.
        login: String,
    },
    /// Enable a disabled account again.
    Enable {
        /// The account's login.
        login: String,
    },
    /// Change an account's role, scope, assigned items or name; a change of role, scope or items
    /// ends its browser sessions.
    Set(SetArgs),
    /// Issue, list and revoke an account's API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// Options of `jiayuan users set`.
#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// The account's login.
    login: String,
    /// A new role.
    #[arg(long, value_parser = Role::parse)]
    role: Option<Role>,
    /// A new scope: district, street:CODE, community:CODE or firm:ID.
    #[arg(long, value_parser = AccountScope::parse)]
    scope: Option<AccountScope>,
    /// New assigned service items (comma-separated plugin ids; firm_staff and agency_officer).
    #[arg(long, value_delimiter = ',', conflicts_with = "all_items")]
    items: Option<Vec<String>>,
    /// Drop the item list (for roles that cover every item of their scope).
    #[arg(long)]
    all_items: bool,
    /// A new name shown in the UI.
    #[arg(long)]
    name: Option<String>,
    /// The agency unit of an agency officer (an id from `GET /api/registry/agency-units`); 0
    /// removes it.
    #[arg(long)]
    agency_unit: Option<i64>,
}

/// Options of `jiayuan users add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Login name: 3 to 64 characters of a-z, 0-9, '.', '_' or '-'.
    login: String,
    /// district_admin, street_officer, community_worker, firm_manager, firm_staff, agency_officer
    /// or auditor.
    #[arg(long, value_parser = Role::parse)]
    role: Role,
    /// Where the account acts: district, street:CODE, community:CODE (12-digit division codes) or
    /// firm:ID.
    #[arg(long, value_parser = AccountScope::parse)]
    scope: AccountScope,
    /// The service items (plugin ids, comma-separated) a firm_staff or agency_officer works on;
    /// they must be loaded from plugins.dir.
    #[arg(long, value_delimiter = ',')]
    items: Option<Vec<String>>,
    /// The name shown in the UI (default: the login).
    #[arg(long)]
    name: Option<String>,
    /// Read the password from the first line of standard input instead of the terminal.
    #[arg(long, conflicts_with = "no_password")]
    password_stdin: bool,
    /// Create the account without a password (token-only, e.g. an integration).
    #[arg(long)]
    no_password: bool,
    /// The agency unit an agency_officer belongs to (an id from `GET /api/registry/agency-units`):
    /// their audience is `agency:<the unit's kind>`. Without one, an officer sees and does only
    /// what any agency may.
    #[arg(long)]
    agency_unit: Option<i64>,
}

/// `jiayuan users token …`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Issue an API token; it is printed once, on standard output, and cannot be shown again.
    Issue {
        /// The account's login.
        login: String,
        /// What the token is for, e.g. "nightly export".
        #[arg(long)]
        name: String,
        /// Days until it expires (default: until revoked).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_days: Option<u32>,
    },
    /// List an account's tokens (their prefixes, never the tokens).
    List {
        /// The account's login.
        login: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one of an account's tokens at once.
    Revoke {
        /// The account's login.
        login: String,
        /// The token's id (see `jiayuan users token list`).
        token_id: i64,
    },
}

/// Runs a `jiayuan users` command against the configured database; `actor` is what the audit
/// log records as having made the change (`cli:<OS user>`).
pub async fn run(mut settings: Settings, command: UsersCommand, actor: &str) -> anyhow::Result<()> {
    settings.resolve_data_key().context("finding the data key")?;
    let store = Store::connect(&settings.database).await.context("connecting to the database")?;
    let result = async {
        store.migrate().await.context("migrating the database")?;
        let cli = Cli { settings: &settings, store: &store, config: settings.auth.clone(), actor };
        cli.run(command).await
    }
    .await;
    let closed = store.close().await.context("closing the database");
    result.and(closed)
}

/// What every command works with.
struct Cli<'a> {
    settings: &'a Settings,
    store: &'a Store,
    config: AuthSettings,
    actor: &'a str,
}

impl Cli<'_> {
    async fn run(&self, command: UsersCommand) -> anyhow::Result<()> {
        match command {
            UsersCommand::Add(args) => self.add(args).await,
            UsersCommand::List { json } => self.list(json).await,
            UsersCommand::Passwd { login, password_stdin } => self.passwd(&login, password_stdin).await,
            UsersCommand::Disable { login } => self.set_disabled(&login, true).await,
            UsersCommand::Enable { login } => self.set_disabled(&login, false).await,
            UsersCommand::Set(args) => self.set(args).await,
            UsersCommand::Token(TokenCommand::Issue { login, name, expires_days }) => {
                self.issue_token(&login, &name, expires_days).await
            }
            UsersCommand::Token(TokenCommand::List { login, json }) => self.list_tokens(&login, json).await,
            UsersCommand::Token(TokenCommand::Revoke { login, token_id }) => self.revoke_token(&login, token_id).await,
        }
    }

    fn now(&self) -> Timestamp {
        SystemClock.now()
    }

    /// The account with this login, or an error naming it.
    async fn account(&self, login: &str) -> anyhow::Result<Account> {
        self.store
            .account_by_login(login)
            .await
            .with_context(|| format!("reading account `{login}`"))?
            .with_context(|| format!("no account with login `{login}` (see `jiayuan users list`)"))
    }

    async fn add(&self, args: AddArgs) -> anyhow::Result<()> {
        let AddArgs { login, role, scope, items, name, password_stdin, no_password, agency_unit } = args;
        // Everything that can be refused is checked before the password is asked for.
        check_login(&login)?;
        match role.check_scope(&scope, items.as_deref()) {
            Ok(()) => {}
            Err(AccountError::ItemsRequired(_)) => bail!(
                "a {role} works on assigned service items only: name them with --items (plugin ids, \
                 e.g. --items dog-licensing)"
            ),
            Err(AccountError::ItemsNotAllowed(_)) => {
                bail!("a {role} covers every service item of their scope: drop --items")
            }
            Err(e) => return Err(e.into()),
        }
        if self.store.account_by_login(&login).await.context("reading the accounts")?.is_some() {
            bail!("login `{login}` is already taken (see `jiayuan users list`)");
        }
        self.check_scope_exists(&scope).await?;
        let known = match &items {
            Some(items) => self.check_items(items)?,
            None => Vec::new(),
        };
        let password = if no_password {
            None
        } else {
            Some(read_new_password(&login, password_stdin, "--no-password for a token-only account")?)
        };
        let draft = AccountDraft {
            login: login.clone(),
            display_name: name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| login.clone()),
            role,
            scope,
            items,
            password,
            agency_unit: agency_unit.map(jiayuan_domain::AgencyUnitId),
        };
        let account = accounts::create_account(self.store, &self.config, draft, &known, self.actor, self.now())
            .await
            .with_context(|| format!("creating account `{login}`"))?;
        println!(
            "created account {} `{}`: {}, scope {}{}{}",
            account.id,
            account.login,
            account.role,
            account.scope,
            account.items.as_ref().map(|i| format!(", items {}", i.join(","))).unwrap_or_default(),
            if no_password { ", no password (issue a token: `jiayuan users token issue`)" } else { "" },
        );
        Ok(())
    }

    /// A division scope must name a division of the registry, a firm scope a registered firm: an
    /// account covering nothing is a typo.
    async fn check_scope_exists(&self, scope: &AccountScope) -> anyhow::Result<()> {
        match scope {
            AccountScope::District => Ok(()),
            AccountScope::Division(code) => {
                let divisions = self.store.divisions().await.context("reading the divisions")?;
                if divisions.iter().any(|d| d.code == *code) {
                    Ok(())
                } else {
                    bail!("scope `{scope}`: division {code} is not in the registry")
                }
            }
            AccountScope::Firm(id) => match self.store.firm(*id).await.context("reading the firms")? {
                Some(_) => Ok(()),
                None => bail!("scope `{scope}`: there is no firm {id} in the registry"),
            },
        }
    }

    /// Loads the plugins of `plugins.dir` (as `jiayuan plugins list` does) and checks that every
    /// item is one of them; returns the loaded ids.
    fn check_items(&self, items: &[String]) -> anyhow::Result<Vec<String>> {
        let dir = &self.settings.plugins.dir;
        let mut registry = PluginRegistry::new(self.settings.plugins.clone());
        registry.load_dir().with_context(|| format!("loading the plugins of {} to check --items", dir.display()))?;
        let loaded: Vec<String> = registry.handles().map(|h| h.id().to_owned()).collect();
        if let Some(unknown) = items.iter().find(|i| !loaded.contains(i)) {
            let have = if loaded.is_empty() { "none".to_owned() } else { loaded.join(", ") };
            bail!(
                "service item `{unknown}` is not a plugin loaded from {} (loaded: {have}); see `jiayuan plugins list`",
                dir.display()
            );
        }
        Ok(loaded)
    }

    async fn list(&self, as_json: bool) -> anyhow::Result<()> {
        let all = self.store.accounts().await.context("reading the accounts")?;
        if as_json {
            let rows: Vec<_> = all
                .iter()
                .map(|a| {
                    json!({"id": a.id, "login": a.login, "role": a.role, "scope": a.scope.to_string(),
                           "items": a.items, "disabled": a.disabled, "agency_unit": a.agency_unit})
                })
                .collect();
            println!("{}", json!({ "accounts": rows }));
            return Ok(());
        }
        if all.is_empty() {
            println!(
                "no accounts yet; create the first admin with \
                 `jiayuan users add admin --role district_admin --scope district`"
            );
            return Ok(());
        }
        let rows: Vec<[String; 6]> = all
            .iter()
            .map(|a| {
                [
                    a.id.to_string(),
                    a.login.clone(),
                    a.role.to_string(),
                    a.scope.to_string(),
                    a.items.as_ref().map_or_else(|| "(all)".to_owned(), |i| i.join(",")),
                    if a.disabled { "disabled" } else { "active" }.to_owned(),
                ]
            })
            .collect();
        print_table(["ID", "LOGIN", "ROLE", "SCOPE", "ITEMS", "STATUS"], &rows);
        Ok(())
    }

    async fn passwd(&self, login: &str, password_stdin: bool) -> anyhow::Result<()> {
        let account = self.account(login).await?;
        let password = read_new_password(login, password_stdin, "")?;
        accounts::reset_password(self.store, &self.config, account.id, &password, self.actor, self.now())
            .await
            .with_context(|| format!("setting the password of `{login}`"))?;
        println!("password of `{login}` changed; its browser sessions have ended (its API tokens stay valid)");
        if account.disabled {
            println!("note: `{login}` is disabled: enable it with `jiayuan users enable {login}` to log in");
        }
        Ok(())
    }

    async fn set(&self, args: SetArgs) -> anyhow::Result<()> {
        let SetArgs { login, role, scope, items, all_items, name, agency_unit } = args;
        if role.is_none() && scope.is_none() && items.is_none() && !all_items && name.is_none() && agency_unit.is_none()
        {
            bail!("nothing to change: give --role, --scope, --items, --all-items, --name or --agency-unit");
        }
        let account = self.account(&login).await?;
        // The result is checked whole first, then the registry and the plugins.
        let new_items = if all_items { None } else { items.clone().or_else(|| account.items.clone()) };
        let (new_role, new_scope) =
            (role.unwrap_or(account.role), scope.clone().unwrap_or_else(|| account.scope.clone()));
        new_role
            .check_scope(&new_scope, new_items.as_deref())
            .with_context(|| format!("`{login}` would be a {new_role} with scope `{new_scope}`"))?;
        if let Some(scope) = &scope {
            self.check_scope_exists(scope).await?;
        }
        let known = match &items {
            Some(items) => self.check_items(items)?,
            None => Vec::new(),
        };
        let change = jiayuan_store::AccountChange {
            display_name: name.filter(|n| !n.trim().is_empty()),
            role,
            scope,
            items: if all_items { Some(None) } else { items.map(Some) },
            agency_unit: agency_unit.map(|u| (u > 0).then_some(jiayuan_domain::AgencyUnitId(u))),
        };
        let after = accounts::update_account(self.store, account.id, &change, &known, self.actor, self.now())
            .await
            .with_context(|| format!("changing account `{login}`"))?;
        println!(
            "account `{login}`: {}, scope {}{}",
            after.role,
            after.scope,
            after.items.as_ref().map(|i| format!(", items {}", i.join(","))).unwrap_or_default(),
        );
        if after.role != account.role || after.scope != account.scope || after.items != account.items {
            println!(
                "its browser sessions have ended; running hosts apply the change to its tokens within auth.cache_ttl_secs"
            );
        }
        Ok(())
    }

    async fn set_disabled(&self, login: &str, disabled: bool) -> anyhow::Result<()> {
        let account = self.account(login).await?;
        let word = if disabled { "disabled" } else { "enabled" };
        if account.disabled == disabled {
            println!("account `{login}` is already {word}; nothing changed");
            return Ok(());
        }
        self.store
            .set_account_disabled(account.id, disabled, self.actor, self.now())
            .await
            .with_context(|| format!("setting account `{login}` {word}"))?;
        if disabled {
            println!(
                "account `{login}` disabled: its sessions have ended and its API tokens are refused until \
                 it is enabled again (running hosts notice within auth.cache_ttl_secs = {}s)",
                self.settings.auth.cache_ttl.as_secs()
            );
        } else {
            println!("account `{login}` enabled");
        }
        Ok(())
    }

    async fn issue_token(&self, login: &str, name: &str, expires_days: Option<u32>) -> anyhow::Result<()> {
        let name = name.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_TOKEN_NAME_CHARS {
            bail!("token name `{name}` must have 1 to {MAX_TOKEN_NAME_CHARS} characters (it has {chars})");
        }
        let account = self.account(login).await?;
        let now = self.now();
        let expires = expires_days.map(|d| Timestamp(now.0.saturating_add(i64::from(d) * 86_400_000)));
        let issued = accounts::issue_token(self.store, account.id, name, expires, self.actor, now)
            .await
            .with_context(|| format!("issuing a token for `{login}`"))?;
        // The token alone on standard output (so `TOKEN=$(jiayuan users token issue …)` works);
        // what it is on standard error.
        println!("{}", issued.token);
        eprintln!(
            "issued token {} \"{name}\" ({}…) for `{login}`, {}. It is shown only this once and cannot be \
             shown again: store it now. Send it as `authorization: Bearer <token>`.",
            issued.id,
            issued.prefix,
            match expires {
                Some(at) => format!("valid until {}", at.to_rfc3339_shanghai()),
                None => "valid until revoked".to_owned(),
            }
        );
        if account.disabled {
            eprintln!("note: `{login}` is disabled: the token is refused until the account is enabled");
        }
        Ok(())
    }

    async fn list_tokens(&self, login: &str, as_json: bool) -> anyhow::Result<()> {
        let account = self.account(login).await?;
        let tokens =
            self.store.api_tokens(account.id).await.with_context(|| format!("reading the tokens of `{login}`"))?;
        let now = self.now();
        if as_json {
            let rows: Vec<_> = tokens
                .iter()
                .map(|t| {
                    json!({"id": t.id, "name": t.name, "prefix": t.prefix,
                           "created_at": t.created_at.to_rfc3339_shanghai(),
                           "expires_at": t.expires_at.map(Timestamp::to_rfc3339_shanghai),
                           "revoked_at": t.revoked_at.map(Timestamp::to_rfc3339_shanghai),
                           "state": token_state(t, now)})
                })
                .collect();
            println!("{}", json!({ "login": login, "tokens": rows }));
            return Ok(());
        }
        if tokens.is_empty() {
            println!("`{login}` has no API tokens; issue one with `jiayuan users token issue {login} --name NAME`");
            return Ok(());
        }
        let rows: Vec<[String; 6]> = tokens
            .iter()
            .map(|t| {
                [
                    t.id.to_string(),
                    t.name.clone(),
                    format!("{}…", t.prefix),
                    t.created_at.to_rfc3339_shanghai(),
                    t.expires_at.map_or_else(|| "never".to_owned(), Timestamp::to_rfc3339_shanghai),
                    token_state(t, now).to_owned(),
                ]
            })
            .collect();
        print_table(["ID", "NAME", "PREFIX", "CREATED", "EXPIRES", "STATE"], &rows);
        Ok(())
    }

    async fn revoke_token(&self, login: &str, token_id: i64) -> anyhow::Result<()> {
        let account = self.account(login).await?;
        let token = self.store.api_token(token_id).await.with_context(|| format!("reading token {token_id}"))?;
        match token {
            Some(t) if t.account_id == account.id => {
                if t.revoked_at.is_some() {
                    println!("token {token_id} \"{}\" of `{login}` was revoked already; nothing changed", t.name);
                    return Ok(());
                }
                self.store
                    .revoke_api_token(token_id, self.actor, self.now())
                    .await
                    .with_context(|| format!("revoking token {token_id}"))?;
                println!(
                    "token {token_id} \"{}\" of `{login}` revoked (running hosts notice within \
                     auth.cache_ttl_secs = {}s)",
                    t.name,
                    self.settings.auth.cache_ttl.as_secs()
                );
                Ok(())
            }
            _ => bail!("`{login}` has no token {token_id} (see `jiayuan users token list {login}`)"),
        }
    }
}

/// `active`, `revoked` or `expired` at `now`.
fn token_state(t: &ApiTokenInfo, now: Timestamp) -> &'static str {
    if t.revoked_at.is_some() {
        "revoked"
    } else if t.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

/// Prints rows under a header, columns padded to their widest cell (in characters).
fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header);
    for row in rows {
        line(row.each_ref().map(String::as_str));
    }
}

/// A new password for `login`: the first line of standard input with `from_stdin`, else typed
/// twice on the terminal without echo. Refused when standard input is not a terminal (a script
/// would hang or pass nothing): `also` names the other way out, if the command has one.
fn read_new_password(login: &str, from_stdin: bool, also: &str) -> anyhow::Result<String> {
    if from_stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading the password from standard input")?;
        let password = password_from_stdin(&text)?;
        check_password(&password)?;
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        let or = if also.is_empty() { String::new() } else { format!(", or {also}") };
        bail!(
            "standard input is not a terminal, so the password cannot be typed: pipe it in with \
             --password-stdin{or}"
        );
    }
    let first = rpassword::prompt_password(format!("new password for `{login}`: "))
        .context("reading the password from the terminal")?;
    check_password(&first)?;
    let second = rpassword::prompt_password("repeat it: ").context("reading the password from the terminal")?;
    if first != second {
        bail!("the two passwords differ; nothing changed");
    }
    Ok(first)
}

/// The password in what was piped to `--password-stdin`: its first line, without the line end.
fn password_from_stdin(text: &str) -> anyhow::Result<String> {
    let line = text.strip_suffix('\n').map_or(text, |t| t.strip_suffix('\r').unwrap_or(t));
    if line.contains('\n') {
        bail!("--password-stdin reads one line, but standard input has several");
    }
    if line.is_empty() {
        bail!("--password-stdin: standard input is empty; pipe the password in (one line)");
    }
    Ok(line.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piped_password_loses_only_its_line_end() {
        assert_eq!(password_from_stdin("correct horse battery\n").expect("ok"), "correct horse battery");
        assert_eq!(password_from_stdin("correct horse battery\r\n").expect("ok"), "correct horse battery");
        assert_eq!(password_from_stdin("no newline at all").expect("ok"), "no newline at all");
        assert_eq!(password_from_stdin(" spaces kept \n").expect("ok"), " spaces kept ");
        assert!(password_from_stdin("").is_err());
        assert!(password_from_stdin("\n").is_err());
        assert!(password_from_stdin("one\ntwo\n").is_err());
    }

    #[test]
    fn tokens_are_active_until_revoked_or_expired() {
        let t = |expires_at, revoked_at| ApiTokenInfo {
            id: 1,
            account_id: jiayuan_domain::AccountId(1),
            name: "ci".into(),
            prefix: "jy_abcdef".into(),
            created_at: Timestamp(0),
            expires_at,
            revoked_at,
        };
        let now = Timestamp(1_000);
        assert_eq!(token_state(&t(None, None), now), "active");
        assert_eq!(token_state(&t(Some(Timestamp(1_001)), None), now), "active");
        assert_eq!(token_state(&t(Some(Timestamp(1_000)), None), now), "expired");
        assert_eq!(token_state(&t(None, Some(Timestamp(500))), now), "revoked");
    }
}
