//! Tests of settings loading: the shipped `config/default.toml`, env overrides, bad values.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn repo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn the_shipped_default_loads() {
    let s = load(Layers { dir: &repo_config(), env: None }, vars(&[])).expect("config/default.toml is valid");
    assert!(s.database.url.starts_with("sqlite:"));
    assert_eq!(s.plugins.allow, vec!["dog-licensing".to_owned()]);
    assert_eq!(s.enablement.district, vec!["dog-licensing".to_owned()]);
    assert!(s.calendar.len() > 20, "the 2026 holiday arrangement is listed");
    let dogs: serde_json::Value =
        serde_json::from_str(s.plugin_config.get("dog-licensing").expect("dog config")).expect("json");
    assert_eq!(dogs["household_limits"]["440303"], 5);
}

#[test]
fn production_example_loads_as_an_environment_layer() {
    let s = load(Layers { dir: &repo_config(), env: Some("production.example") }, vars(&[]))
        .expect("config/production.example.toml is valid");
    assert!(s.database.url.starts_with("postgres://"));
}

#[test]
fn environment_variables_override_files() {
    let s = load(
        Layers { dir: &repo_config(), env: None },
        vars(&[
            ("JIAYUAN_DATABASE__URL", "postgres://postgres@127.0.0.1:5432/test"),
            ("JIAYUAN_PLUGINS__ALLOW", "dog-licensing,fixture"),
            ("JIAYUAN_SCHEDULER__TICK_SECS", "5"),
            ("JIAYUAN_ENV", "ignored-here"),
            ("UNRELATED", "x"),
        ]),
    )
    .expect("valid overrides");
    assert_eq!(s.database.url, "postgres://postgres@127.0.0.1:5432/test");
    assert_eq!(s.plugins.allow, vec!["dog-licensing".to_owned(), "fixture".to_owned()]);
    assert_eq!(s.scheduler.tick, std::time::Duration::from_secs(5));
}

fn with_default(extra_replace: (&str, &str)) -> Result<Settings, SettingsError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(repo_config().join("default.toml")).expect("read default");
    assert!(text.contains(extra_replace.0), "fixture text {:?} not in default.toml", extra_replace.0);
    std::fs::write(dir.path().join("default.toml"), text.replace(extra_replace.0, extra_replace.1)).expect("write");
    load(Layers { dir: dir.path(), env: None }, vars(&[]))
}

#[test]
fn bad_values_name_their_key() {
    let err = with_default(("listen = \"127.0.0.1:8080\"", "listen = \"localhost\"")).expect_err("bad address");
    assert!(err.to_string().contains("server.listen"), "{err}");

    let err = with_default(("district = [\"dog-licensing\"]", "district = [\"Dog Licensing\"]")).expect_err("bad id");
    assert!(err.to_string().contains("enablement.district"), "{err}");

    let err =
        with_default(("# [enablement.streets.440303010000]\n# disable", "[enablement.streets.440303010001]\ndisable"))
            .expect_err("community code is not a street");
    assert!(err.to_string().contains("enablement.streets.440303010001"), "{err}");

    let err = with_default(("[scheduler]", "[scheduler]\nfrequency = 3")).expect_err("unknown key");
    assert!(err.to_string().contains("frequency"), "{err}");
}

// ---- [auth] ----

#[test]
fn the_shipped_auth_defaults_are_owasp_and_twelve_hour_sessions() {
    let s = load(Layers { dir: &repo_config(), env: None }, vars(&[])).expect("valid");
    assert_eq!(
        s.auth,
        AuthSettings {
            session_ttl: Duration::from_secs(12 * 3600),
            cookie_secure: true,
            login_attempts: 5,
            login_window: Duration::from_secs(60),
            cache_ttl: Duration::from_secs(5),
            argon2_memory_kib: 19456,
            argon2_iterations: 2,
        }
    );
    assert_eq!(s.auth, AuthSettings::default(), "the code's defaults are the shipped file's");
    let summary = s.redacted_summary();
    assert!(summary.lines().any(|l| l.starts_with("auth.sessions") && l.contains("Secure")), "{summary}");
    assert!(summary.lines().any(|l| l.starts_with("auth.argon2") && l.contains("19456 KiB")), "{summary}");

    let production = load(Layers { dir: &repo_config(), env: Some("production.example") }, vars(&[])).expect("valid");
    assert!(production.auth.cookie_secure);
    assert_eq!(production.auth.session_ttl, Duration::from_secs(8 * 3600));
}

#[test]
fn auth_settings_take_environment_overrides() {
    let s = load(
        Layers { dir: &repo_config(), env: None },
        vars(&[
            ("JIAYUAN_AUTH__SESSION_TTL_SECS", "3600"),
            ("JIAYUAN_AUTH__COOKIE_SECURE", "false"),
            ("JIAYUAN_AUTH__LOGIN_ATTEMPTS", "3"),
            ("JIAYUAN_AUTH__LOGIN_WINDOW_SECS", "300"),
            ("JIAYUAN_AUTH__CACHE_TTL_SECS", "0"),
            ("JIAYUAN_AUTH__ARGON2_MEMORY_KIB", "65536"),
            ("JIAYUAN_AUTH__ARGON2_ITERATIONS", "3"),
        ]),
    )
    .expect("valid overrides");
    assert_eq!(
        s.auth,
        AuthSettings {
            session_ttl: Duration::from_secs(3600),
            cookie_secure: false,
            login_attempts: 3,
            login_window: Duration::from_secs(300),
            cache_ttl: Duration::ZERO,
            argon2_memory_kib: 65536,
            argon2_iterations: 3,
        }
    );
    assert!(s.redacted_summary().contains("NOT Secure"));
}

#[test]
fn bad_auth_values_name_their_key() {
    let bad = |key: &str, value: &str| {
        let var = format!("JIAYUAN_AUTH__{}", key.to_ascii_uppercase());
        load(Layers { dir: &repo_config(), env: None }, vars(&[(&var, value)]))
            .expect_err(&format!("{key} = {value} is refused"))
            .to_string()
    };
    for (key, value) in [
        ("session_ttl_secs", "0"),
        ("session_ttl_secs", "59"),
        ("session_ttl_secs", "2592001"),
        ("login_attempts", "0"),
        ("login_window_secs", "0"),
        ("cache_ttl_secs", "301"),
        ("argon2_memory_kib", "7"),
        ("argon2_memory_kib", "4194305"),
        ("argon2_iterations", "0"),
        ("argon2_iterations", "101"),
    ] {
        let text = bad(key, value);
        assert!(text.contains(&format!("auth.{key}")), "{key} = {value}: {text}");
        assert!(text.contains(value), "the value is named: {text}");
    }
    // Not a number, or not a boolean: the config crate names the key.
    let text = bad("cookie_secure", "sometimes");
    assert!(text.contains("cookie_secure"), "{text}");
    let text = bad("session_ttl_secs", "12h");
    assert!(text.contains("session_ttl_secs"), "{text}");
    let err = with_default(("[auth]", "[auth]\nsession_ttl = 3")).expect_err("unknown key");
    assert!(err.to_string().contains("session_ttl"), "{err}");
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let err = load(Layers { dir: Path::new("/nonexistent/jiayuan"), env: None }, vars(&[])).expect_err("no config");
    assert!(err.to_string().contains("/nonexistent/jiayuan"), "{err}");
}

#[test]
fn secrets_are_redacted() {
    let s = load(
        Layers { dir: &repo_config(), env: None },
        vars(&[("JIAYUAN_DATABASE__URL", "postgres://app:s3cret@db:5432/jiayuan")]),
    )
    .expect("valid");
    let summary = s.redacted_summary();
    assert!(!summary.contains("s3cret"), "{summary}");
    assert!(summary.contains("postgres://app:***@db:5432/jiayuan"), "{summary}");
}

// ---- [security]: the data key ----

const HEX_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn sqlite_in(dir: &Path, file: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.join(file).display())
}

#[test]
fn the_data_key_comes_from_the_environment_and_is_never_printed() {
    let s = load(
        Layers { dir: &repo_config(), env: Some("production.example") },
        vars(&[("JIAYUAN_SECURITY__DATA_KEY", HEX_KEY)]),
    )
    .expect("valid");
    assert_eq!(s.security.data_key, Some(FieldKeys::parse(HEX_KEY).expect("hex")));
    let debug = format!("{s:?}");
    assert!(!debug.contains(HEX_KEY) && !debug.contains("00112233"), "{debug}");
    assert!(debug.contains("FieldKeys(***)"), "{debug}");
    let summary = s.redacted_summary();
    assert!(!summary.contains("00112233"), "{summary}");
    assert!(summary.lines().any(|l| l.starts_with("security") && l.contains("***")), "{summary}");

    let mut s = s;
    assert_eq!(s.resolve_data_key().expect("inline key"), DataKeySource::Inline);
    assert_eq!(s.database.field_keys, s.security.data_key);
    assert!(!format!("{s:?}").contains("00112233"));
}

#[test]
fn a_bad_data_key_names_its_key_without_echoing_it() {
    let bad = "zz-this-is-not-a-key-but-secret-zz";
    let err = load(Layers { dir: &repo_config(), env: None }, vars(&[("JIAYUAN_SECURITY__DATA_KEY", bad)]))
        .expect_err("bad key");
    let text = err.to_string();
    assert!(text.contains("security.data_key"), "{text}");
    assert!(!text.contains(bad), "{text}");

    let err = load(
        Layers { dir: &repo_config(), env: None },
        vars(&[("JIAYUAN_SECURITY__DATA_KEY", HEX_KEY), ("JIAYUAN_SECURITY__DATA_KEY_FILE", "/etc/key")]),
    )
    .expect_err("both");
    assert!(err.to_string().contains("not both"), "{err}");

    let err = load(Layers { dir: &repo_config(), env: None }, vars(&[("JIAYUAN_SECURITY__DATA_KEY_FILE", "")]))
        .expect_err("empty path");
    assert!(err.to_string().contains("security.data_key_file"), "{err}");
}

#[test]
fn embedded_sqlite_creates_its_key_file_once_next_to_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_in(dir.path(), "data/jiayuan.sqlite");
    let fresh =
        || load(Layers { dir: &repo_config(), env: None }, vars(&[("JIAYUAN_DATABASE__URL", &url)])).expect("valid");
    let key_file = dir.path().join("data/jiayuan.key");
    let mut first = fresh();
    assert!(first.redacted_summary().contains(&format!("data_key_file {}", key_file.display())));
    assert_eq!(first.resolve_data_key().expect("created"), DataKeySource::Created(key_file.clone()));
    let text = std::fs::read_to_string(&key_file).expect("key file written");
    assert_eq!(text.trim_end().len(), 64, "64 hex characters");
    assert!(text.trim_end().bytes().all(|b| b.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the owner may read the key file");
    }
    let mut second = fresh();
    assert_eq!(second.resolve_data_key().expect("read"), DataKeySource::File(key_file.clone()));
    assert_eq!(second.database.field_keys, first.database.field_keys);
    assert!(first.database.field_keys.is_some());
    // Keys put in by the caller (tests) are kept.
    let mut given = fresh();
    given.database.field_keys = Some(FieldKeys::from_master(&[1; 32]));
    assert_eq!(given.resolve_data_key().expect("given"), DataKeySource::Given);
}

#[test]
fn a_missing_key_file_next_to_an_existing_database_is_not_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("jiayuan.sqlite"), b"").expect("an existing database");
    let mut s = load(
        Layers { dir: &repo_config(), env: None },
        vars(&[("JIAYUAN_DATABASE__URL", &sqlite_in(dir.path(), "jiayuan.sqlite"))]),
    )
    .expect("valid");
    let err = s.resolve_data_key().expect_err("no new key for old data");
    let text = err.to_string();
    assert!(text.contains("security.data_key_file") && text.contains("restore"), "{text}");
    assert!(!dir.path().join("jiayuan.key").exists());
}

#[test]
fn postgres_needs_a_configured_key() {
    let mut s = load(
        Layers { dir: &repo_config(), env: None },
        vars(&[("JIAYUAN_DATABASE__URL", "postgres://app:s3cret@db:5432/jiayuan")]),
    )
    .expect("loading does not need the key yet");
    assert!(s.redacted_summary().contains("NO DATA KEY"));
    let err = s.resolve_data_key().expect_err("no key");
    let text = err.to_string();
    assert!(text.contains("security.data_key") && text.contains("JIAYUAN_SECURITY__DATA_KEY"), "{text}");
    assert!(text.contains("postgres://app:***@db:5432/jiayuan") && !text.contains("s3cret"), "{text}");
}

#[test]
fn a_configured_key_file_is_read_and_a_bad_one_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("data.key");
    let settings_with = |file: &Path| {
        load(
            Layers { dir: &repo_config(), env: None },
            vars(&[
                ("JIAYUAN_DATABASE__URL", "postgres://app@db:5432/jiayuan"),
                ("JIAYUAN_SECURITY__DATA_KEY_FILE", file.to_str().expect("utf-8 path")),
            ]),
        )
        .expect("valid")
    };
    let err = settings_with(&file).resolve_data_key().expect_err("missing file, PostgreSQL: never created");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!file.exists());

    std::fs::write(&file, format!("{HEX_KEY}\n")).expect("write key");
    let mut s = settings_with(&file);
    assert_eq!(s.resolve_data_key().expect("read"), DataKeySource::File(file.clone()));
    assert_eq!(s.database.field_keys, Some(FieldKeys::parse(HEX_KEY).expect("hex")));

    std::fs::write(&file, "secret-but-malformed\n").expect("write bad key");
    let err = settings_with(&file).resolve_data_key().expect_err("bad file");
    let text = err.to_string();
    assert!(text.contains("security.data_key_file") && text.contains("data.key"), "{text}");
    assert!(!text.contains("secret-but-malformed"), "{text}");
}
