//! Tests of settings loading: the shipped `config/default.toml`, env overrides, bad values.

use std::path::{Path, PathBuf};

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
