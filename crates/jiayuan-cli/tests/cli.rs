//! End-to-end tests of the `jiayuan` binary: each test runs the real executable in its own
//! temporary directory against the shipped `config/`, overriding settings with `JIAYUAN_*`
//! variables as an operator would, and checks what the user sees (output and exit status).
//!
//! The plugins are built once per test process by `cargo xtask plugins build`, into a target
//! directory of their own so the nested cargo never waits for the lock of the build running us.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_jiayuan");
/// How long `serve` may take to print its address, and an HTTP answer to arrive. A bound so a
/// broken build fails instead of hanging, not a performance check.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// The plugin the repository ships.
const DOGS: &str = "dog-licensing";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shipped configuration directory.
fn config_dir() -> PathBuf {
    workspace_root().join("config")
}

// ---------------------------------------------------------------------------------------------
// Running the binary.

/// A temporary directory a test runs the binary in.
struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox { dir: tempfile::tempdir().expect("a temporary directory") }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `jiayuan --config <repo>/config ARGS`, run in the sandbox with no inherited `JIAYUAN_*`
    /// variable, the database in the sandbox and an empty plugin directory; tests override these
    /// with [`Command::env`].
    fn jiayuan(&self, args: &[&str]) -> Command {
        self.jiayuan_with_config(&config_dir(), args)
    }

    /// [`Sandbox::jiayuan`] with another configuration directory.
    fn jiayuan_with_config(&self, config: &Path, args: &[&str]) -> Command {
        let no_plugins = self.path().join("no-plugins");
        fs::create_dir_all(&no_plugins).expect("an empty plugin directory");
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.path()).arg("--config").arg(config).args(args);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("JIAYUAN_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("JIAYUAN_DATABASE__URL", sqlite_url(&self.path().join("jiayuan.sqlite")))
            .env("JIAYUAN_PLUGINS__DIR", no_plugins);
        cmd
    }
}

fn sqlite_url(file: &Path) -> String {
    format!("sqlite://{}?mode=rwc", file.display())
}

/// What a finished run printed, and how it exited.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Both streams, for messages that may go to either.
    fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Everything, for assertion messages.
    fn describe(&self) -> String {
        format!("exit code {:?}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }

    fn assert_success(&self) -> &Run {
        assert_eq!(self.code, Some(0), "expected success\n{}", self.describe());
        self
    }
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("the jiayuan binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Plugins, built once.

static PLUGINS: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The plugin directory `cargo xtask plugins build` wrote (shared by every test; tests that change
/// it work on a copy).
fn built_plugins() -> &'static Path {
    match PLUGINS.get_or_init(build_plugins) {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    }
}

fn build_plugins() -> Result<PathBuf, String> {
    let root = workspace_root();
    let base = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d));
    let target_dir = base.join("cli-test-builds");
    // Under the target directory rather than in /tmp: the statics of a test process are never
    // dropped, so a temporary directory would outlive every run. Emptied first, so a plugin
    // removed from the workspace does not linger.
    let out = target_dir.join("plugins");
    match fs::remove_dir_all(&out) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot empty {}: {e}", out.display())),
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args(["xtask", "plugins", "build", "--out"])
        .arg(&out)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cargo.to_string_lossy()))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo xtask plugins build --out {}` failed: {}\n--- stdout\n{}--- stderr\n{}",
            out.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(out)
}

static FIXTURE_PLUGINS: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The plugins built with `--include-fixtures` (dog licensing and the misbehaving fixture), in a
/// directory of their own so the other tests never see the fixture.
fn built_plugins_with_fixture() -> &'static Path {
    let built = FIXTURE_PLUGINS.get_or_init(|| {
        let root = workspace_root();
        let base = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d));
        let target_dir = base.join("cli-test-builds");
        let out = target_dir.join("plugins-with-fixture");
        let _ = fs::remove_dir_all(&out);
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(&cargo)
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &target_dir)
            .args(["xtask", "plugins", "build", "--include-fixtures", "--out"])
            .arg(&out)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", cargo.to_string_lossy()))?;
        if !output.status.success() {
            return Err(format!(
                "`cargo xtask plugins build --include-fixtures` failed: {}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(out)
    });
    match built {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    }
}

/// A value of `<plugin_dir>/plugin.toml` (the sidecar holds one `key = value` per line).
fn sidecar_value(plugin_dir: &Path, key: &str) -> String {
    let path = plugin_dir.join("plugin.toml");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| panic!("{} has no `{key}`:\n{text}", path.display()))
}

/// Writes `value` for `key` in `<plugin_dir>/plugin.toml`.
fn set_sidecar_value(plugin_dir: &Path, key: &str, value: &str) {
    let path = plugin_dir.join("plugin.toml");
    let text = fs::read_to_string(&path).expect("the sidecar is readable");
    let mut found = false;
    let edited: Vec<String> = text
        .lines()
        .map(|line| match line.split_once('=') {
            Some((k, _)) if k.trim() == key => {
                found = true;
                format!("{key} = \"{value}\"")
            }
            _ => line.to_owned(),
        })
        .collect();
    assert!(found, "{} has no `{key}`", path.display());
    fs::write(&path, edited.join("\n") + "\n").expect("the sidecar is writable");
}

/// Copies a plugin directory tree; directories get mode 0755 whatever the umask, since the host
/// refuses plugins writable by group or others.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir(to).unwrap_or_else(|e| panic!("cannot create {}: {e}", to.display()));
    fs::set_permissions(to, fs::Permissions::from_mode(0o755)).expect("chmod 755");
    for entry in fs::read_dir(from).expect("the plugin directory is readable") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap_or_else(|e| panic!("cannot copy {}: {e}", entry.path().display()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// config check

#[test]
fn config_check_prints_the_settings_with_the_database_password_redacted() {
    let sandbox = Sandbox::new();
    let password = "Pw-7f3a-very-secret";
    let url = format!("postgres://jiayuan:{password}@db.example:5432/jiayuan");
    let run = run(sandbox.jiayuan(&["config", "check"]).env("JIAYUAN_DATABASE__URL", &url));
    run.assert_success();
    assert!(run.stdout.starts_with("configuration OK"), "{}", run.describe());
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("database.url") && l.contains("postgres://jiayuan:***@db.example:5432/jiayuan")),
        "the database URL is shown with its password masked\n{}",
        run.describe()
    );
    assert!(!run.output().contains(password), "the password leaked\n{}", run.describe());
    // The rest of the shipped defaults.
    assert!(
        run.stdout.lines().any(|l| l.starts_with("server.listen") && l.contains("127.0.0.1:8080")),
        "{}",
        run.describe()
    );
    assert!(run.stdout.lines().any(|l| l.starts_with("plugins.allow") && l.contains(DOGS)), "{}", run.describe());
}

#[test]
fn config_check_names_the_key_of_a_bad_value() {
    let sandbox = Sandbox::new();
    let password = "Pw-7f3a-very-secret";
    let run = run(sandbox
        .jiayuan(&["config", "check"])
        .env("JIAYUAN_SERVER__LISTEN", "nonsense")
        .env("JIAYUAN_DATABASE__URL", format!("postgres://jiayuan:{password}@db.example/jiayuan")));
    assert_ne!(run.code, Some(0), "a bad value must fail the check\n{}", run.describe());
    assert!(run.stderr.contains("server.listen"), "stderr names the key\n{}", run.describe());
    assert!(run.stderr.contains("nonsense"), "stderr names the value\n{}", run.describe());
    assert!(!run.stdout.contains("configuration OK"), "{}", run.describe());
    assert!(!run.output().contains(password), "the password leaked\n{}", run.describe());
}

#[test]
fn config_check_layers_the_environment_file_under_the_variables() {
    let sandbox = Sandbox::new();
    let config = sandbox.path().join("config");
    fs::create_dir(&config).expect("a config directory");
    fs::copy(config_dir().join("default.toml"), config.join("default.toml")).expect("default.toml copied");
    fs::copy(config_dir().join("production.example.toml"), config.join("production.toml"))
        .expect("production.example.toml copied");

    let check = |extra: &[(&str, &str)]| {
        let mut cmd = sandbox.jiayuan_with_config(&config, &["--env", "production", "config", "check"]);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let run = run(&mut cmd);
        run.assert_success();
        run
    };
    let line =
        |run: &Run, key: &str| run.stdout.lines().find(|l| l.starts_with(key)).map(str::to_owned).unwrap_or_default();

    let file = check(&[]);
    assert!(line(&file, "server.listen").contains("0.0.0.0:8080"), "production.toml applies\n{}", file.describe());
    assert!(line(&file, "database.max_connections").ends_with(" 16"), "{}", file.describe());
    assert!(line(&file, "log").contains("Json"), "{}", file.describe());

    let var = check(&[("JIAYUAN_SERVER__LISTEN", "127.0.0.1:9090")]);
    assert!(line(&var, "server.listen").contains("127.0.0.1:9090"), "the variable wins\n{}", var.describe());
    assert!(line(&var, "database.max_connections").ends_with(" 16"), "the rest of the file stays\n{}", var.describe());
}

#[test]
fn config_check_names_a_missing_environment_file() {
    let sandbox = Sandbox::new();
    let run = run(&mut sandbox.jiayuan(&["--env", "staging", "config", "check"]));
    assert_ne!(run.code, Some(0), "{}", run.describe());
    assert!(run.stderr.contains("staging.toml"), "{}", run.describe());
}

// ---------------------------------------------------------------------------------------------
// migrate

#[test]
fn migrate_applies_the_migrations_once() {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("fresh.sqlite");
    let url = sqlite_url(&db);

    let first = run(sandbox.jiayuan(&["migrate"]).env("JIAYUAN_DATABASE__URL", &url));
    first.assert_success();
    let line = first.stdout.lines().find(|l| l.starts_with("applied ")).unwrap_or_else(|| {
        panic!("the first run says what it applied\n{}", first.describe());
    });
    // "applied N migration(s): a, b, c"
    let (count, names) = line["applied ".len()..].split_once(" migration(s): ").expect("the count and the names");
    let count: usize = count.parse().expect("a count");
    assert!(count > 0, "{}", first.describe());
    assert_eq!(names.split(", ").count(), count, "every applied migration is named\n{}", first.describe());
    assert!(db.is_file(), "the database file was created");

    let second = run(sandbox.jiayuan(&["migrate"]).env("JIAYUAN_DATABASE__URL", &url));
    second.assert_success();
    assert_eq!(second.stdout.trim(), "database is up to date", "{}", second.describe());
}

#[test]
fn migrate_never_prints_the_database_password() {
    let sandbox = Sandbox::new();
    let password = "Pw-7f3a-very-secret";
    // Nothing listens on port 1: the connection fails, and the error names the database.
    let run = run(sandbox
        .jiayuan(&["migrate"])
        .env("JIAYUAN_DATABASE__URL", format!("postgres://jiayuan:{password}@127.0.0.1:1/jiayuan"))
        .env("JIAYUAN_DATABASE__ACQUIRE_TIMEOUT_MS", "1000"));
    assert_ne!(run.code, Some(0), "{}", run.describe());
    assert!(run.stderr.contains("127.0.0.1:1"), "the error names the database\n{}", run.describe());
    assert!(!run.output().contains(password), "the password leaked\n{}", run.describe());
}

// ---------------------------------------------------------------------------------------------
// plugins list | verify

#[test]
fn plugins_list_shows_the_built_plugin_with_version_api_and_sha256() {
    let plugins = built_plugins();
    let sidecar_dir = plugins.join(DOGS);
    let (version, api, sha256) = (
        sidecar_value(&sidecar_dir, "version"),
        sidecar_value(&sidecar_dir, "api_version"),
        sidecar_value(&sidecar_dir, "sha256"),
    );
    assert_eq!(sha256.len(), 64, "the sidecar holds a hex sha256: {sha256}");
    let sandbox = Sandbox::new();

    let list = run(sandbox.jiayuan(&["plugins", "list"]).env("JIAYUAN_PLUGINS__DIR", plugins));
    list.assert_success();
    let line = list
        .stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(DOGS))
        .unwrap_or_else(|| panic!("a line for {DOGS}\n{}", list.describe()));
    assert!(line.starts_with("loaded"), "{}", list.describe());
    assert!(line.contains(&format!("{DOGS} {version} (api {api})")), "version and API version\n{}", list.describe());
    assert!(line.contains(&format!("sha256 {sha256}")), "the sidecar's sha256\n{}", list.describe());

    let verify = run(sandbox.jiayuan(&["plugins", "verify"]).env("JIAYUAN_PLUGINS__DIR", plugins));
    verify.assert_success();
    assert!(verify.stdout.contains(&format!("loaded       {DOGS}")), "{}", verify.describe());
}

#[test]
fn plugins_verify_fails_when_the_library_does_not_match_its_sidecar() {
    let sandbox = Sandbox::new();
    let plugins = sandbox.path().join("plugins");
    copy_dir(built_plugins(), &plugins);
    let real = sidecar_value(&plugins.join(DOGS), "sha256");
    let wrong: String = real.chars().rev().collect();
    assert_ne!(wrong, real);
    set_sidecar_value(&plugins.join(DOGS), "sha256", &wrong);

    let verify = run(sandbox.jiayuan(&["plugins", "verify"]).env("JIAYUAN_PLUGINS__DIR", &plugins));
    assert_eq!(verify.code, Some(1), "{}", verify.describe());
    let line = verify
        .stdout
        .lines()
        .find(|l| l.starts_with("FAILED") && l.contains(DOGS))
        .unwrap_or_else(|| panic!("a FAILED line for {DOGS}\n{}", verify.describe()));
    assert!(line.contains(&format!("has sha256 {real}")), "names the file's digest\n{}", verify.describe());
    assert!(line.contains(&format!("sidecar says {wrong}")), "names the sidecar's digest\n{}", verify.describe());
    assert!(line.contains("cargo xtask plugins build"), "says how to fix it\n{}", verify.describe());

    // `list` shows the same failure but does not fail.
    let list = run(sandbox.jiayuan(&["plugins", "list"]).env("JIAYUAN_PLUGINS__DIR", &plugins));
    list.assert_success();
    assert!(list.stdout.contains(line), "{}", list.describe());
}

#[test]
fn plugins_verify_refuses_a_plugin_not_on_the_allow_list() {
    let sandbox = Sandbox::new();
    let plugins = sandbox.path().join("plugins");
    fs::create_dir(&plugins).expect("a plugin directory");
    fs::set_permissions(&plugins, fs::Permissions::from_mode(0o755)).expect("chmod 755");
    copy_dir(&built_plugins().join(DOGS), &plugins.join("stray"));
    set_sidecar_value(&plugins.join("stray"), "id", "stray");

    let verify = run(sandbox.jiayuan(&["plugins", "verify"]).env("JIAYUAN_PLUGINS__DIR", &plugins));
    assert_eq!(verify.code, Some(1), "{}", verify.describe());
    let line = verify
        .stdout
        .lines()
        .find(|l| l.starts_with("FAILED") && l.contains("stray"))
        .unwrap_or_else(|| panic!("a FAILED line for `stray`\n{}", verify.describe()));
    assert!(line.contains("allow-list"), "names the allow-list\n{}", verify.describe());
    assert!(line.contains(&format!("[\"{DOGS}\"]")), "shows what is allowed\n{}", verify.describe());
    assert!(line.contains("plugins.allow"), "names the setting to change\n{}", verify.describe());

    // On the allow-list it gets past that check (and fails later, its library being dog-licensing).
    let allowed = run(sandbox
        .jiayuan(&["plugins", "verify"])
        .env("JIAYUAN_PLUGINS__DIR", &plugins)
        .env("JIAYUAN_PLUGINS__ALLOW", format!("{DOGS},stray")));
    assert_eq!(allowed.code, Some(1), "{}", allowed.describe());
    assert!(!allowed.stdout.contains("allow-list"), "{}", allowed.describe());
}

#[test]
fn an_empty_plugin_dir_says_how_to_build_the_plugins() {
    let sandbox = Sandbox::new();
    // The sandbox's plugin directory is empty.
    let list = run(&mut sandbox.jiayuan(&["plugins", "list"]));
    list.assert_success();
    assert!(list.stdout.contains("no plugins found"), "{}", list.describe());
    assert!(list.stdout.contains("cargo xtask plugins build"), "{}", list.describe());

    let verify = run(&mut sandbox.jiayuan(&["plugins", "verify"]));
    assert_eq!(verify.code, Some(1), "nothing to verify is a failure\n{}", verify.describe());
    assert!(verify.stdout.contains("cargo xtask plugins build"), "{}", verify.describe());
    assert!(!verify.stderr.contains("0 plugin(s) failed"), "{}", verify.describe());

    let missing = run(sandbox.jiayuan(&["plugins", "list"]).env("JIAYUAN_PLUGINS__DIR", sandbox.path().join("nope")));
    assert_eq!(missing.code, Some(1), "{}", missing.describe());
    assert!(missing.stderr.contains("nope"), "names the directory\n{}", missing.describe());
    assert!(missing.stderr.contains("cargo xtask plugins build"), "{}", missing.describe());
}

// ---------------------------------------------------------------------------------------------
// demo

/// The counts of the `seeded …` line as (noun, count) pairs: `("estates", 5)`, `("dogs", 36)`, …
fn seeded_counts(run: &Run) -> Vec<(String, usize)> {
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("seeded "))
        .unwrap_or_else(|| panic!("a `seeded` line\n{}", run.describe()));
    let (_, counts) = line.split_once(": ").expect("`seeded FILE: counts`");
    let words: Vec<&str> =
        counts.split(|c: char| c.is_whitespace() || "(),;".contains(c)).filter(|w| !w.is_empty()).collect();
    words.windows(2).filter_map(|w| Some((w[1].to_owned(), w[0].parse().ok()?))).collect()
}

fn count(counts: &[(String, usize)], noun: &str) -> usize {
    counts.iter().find(|(n, _)| n == noun).map(|(_, c)| *c).unwrap_or_else(|| panic!("no `{noun}` in {counts:?}"))
}

#[test]
fn demo_seeds_a_fresh_database_on_every_run() {
    let plugins = built_plugins();
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("demo.sqlite");
    let demo = |extra: &[&str]| {
        let mut args = vec!["demo", "--no-serve", "--database", db.to_str().expect("a UTF-8 path")];
        args.extend_from_slice(extra);
        let run = run(sandbox.jiayuan(&args).env("JIAYUAN_PLUGINS__DIR", plugins));
        run.assert_success();
        run
    };

    let first = demo(&[]);
    let counts = seeded_counts(&first);
    for noun in ["estates", "firms", "houses", "residents", "dogs", "licences"] {
        assert!(count(&counts, noun) > 0, "some {noun}\n{}", first.describe());
    }
    assert!(first.stdout.contains(&db.display().to_string()), "names the file\n{}", first.describe());
    assert!(!first.stderr.contains("not loaded"), "the plugin loaded\n{}", first.describe());
    assert!(db.is_file());

    // Seeding again into the same file would duplicate every row; without --keep it starts afresh.
    let second = demo(&[]);
    assert_eq!(seeded_counts(&second), counts, "{}", second.describe());

    let kept = demo(&["--keep"]);
    assert!(kept.stdout.contains("reusing"), "{}", kept.describe());
    assert!(!kept.stdout.contains("seeded"), "--keep does not seed again\n{}", kept.describe());
}

#[test]
fn audit_verify_passes_on_the_demo_and_names_the_row_after_a_hand_edit() {
    let plugins = built_plugins();
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("demo.sqlite");
    run(sandbox
        .jiayuan(&["demo", "--no-serve", "--database", db.to_str().expect("a UTF-8 path")])
        .env("JIAYUAN_PLUGINS__DIR", plugins))
    .assert_success();
    let verify = || run(sandbox.jiayuan(&["audit", "verify"]).env("JIAYUAN_DATABASE__URL", sqlite_url(&db)));

    let ok = verify();
    ok.assert_success();
    let line =
        ok.stdout.lines().find(|l| l.starts_with("audit log OK: ")).unwrap_or_else(|| panic!("{}", ok.describe()));
    let events: usize = line["audit log OK: ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("an event count\n{}", ok.describe()));
    assert!(events > 3, "plugin load and the seeded creates are audited\n{}", ok.describe());
    assert!(line.contains(", head "), "{}", ok.describe());

    // A hand edit of one row's actor.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        use sea_orm::ConnectionTrait;
        let conn = sea_orm::Database::connect(sqlite_url(&db)).await.expect("open the demo database");
        let changed = conn
            .execute_unprepared("UPDATE audit_events SET actor = 'user:mallory' WHERE seq = 3")
            .await
            .expect("edit a row");
        assert_eq!(changed.rows_affected(), 1);
        conn.close().await.expect("close");
    });
    let broken = verify();
    assert_eq!(broken.code, Some(1), "{}", broken.describe());
    assert!(broken.stdout.contains("audit log BROKEN at seq 3: hash mismatch"), "{}", broken.describe());
}

#[test]
fn demo_without_plugins_seeds_the_registry_and_says_how_to_build_them() {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("data").join("demo.sqlite");
    // The sandbox's plugin directory is empty.
    let run = run(&mut sandbox.jiayuan(&["demo", "--no-serve", "--database", db.to_str().expect("a UTF-8 path")]));
    run.assert_success();
    assert!(run.stderr.contains("cargo xtask plugins build"), "{}", run.describe());
    let counts = seeded_counts(&run);
    assert!(count(&counts, "estates") > 0, "{}", run.describe());
    assert_eq!(count(&counts, "dogs"), 0, "{}", run.describe());
    assert!(db.is_file(), "the parent directory was created");
}

// ---------------------------------------------------------------------------------------------
// serve

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// A running `jiayuan serve`, killed when dropped.
struct Server {
    child: Child,
    lines: mpsc::Receiver<(Stream, String)>,
    readers: Vec<JoinHandle<()>>,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl Server {
    fn start(cmd: &mut Command) -> Server {
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("serve starts");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout is piped");
        let err = child.stderr.take().expect("stderr is piped");
        let readers = vec![forward(out, Stream::Out, tx.clone()), forward(err, Stream::Err, tx)];
        Server { child, lines, readers, stdout: Vec::new(), stderr: Vec::new() }
    }

    fn keep(&mut self, (stream, line): (Stream, String)) {
        match stream {
            Stream::Out => self.stdout.push(line),
            Stream::Err => self.stderr.push(line),
        }
    }

    fn captured(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout.join("\n"), self.stderr.join("\n"))
    }

    /// Reads output until the `jiayuan listening on http://ADDR` line; returns ADDR.
    fn address(&mut self) -> String {
        self.address_after("jiayuan listening on http://")
    }

    /// Reads output until a stdout line `PREFIX` ADDR; returns ADDR.
    fn address_after(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok((stream, line)) => {
                    let addr = (stream == Stream::Out)
                        .then(|| line.strip_prefix(prefix))
                        .flatten()
                        .and_then(|rest| rest.split_whitespace().next())
                        .map(str::to_owned);
                    self.keep((stream, line));
                    if let Some(addr) = addr {
                        return addr;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("serve printed no address within {READY_WITHIN:?}\n{}", self.captured())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                    panic!("serve exited ({status}) before listening\n{}", self.captured())
                }
            }
        }
    }

    /// Kills the process and collects the rest of its output.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + READY_WITHIN;
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.keep(line);
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward(stream: impl Read + Send + 'static, which: Stream, tx: mpsc::Sender<(Stream, String)>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send((which, line)).is_err() {
                break;
            }
        }
    })
}

/// `GET path` over HTTP/1.1; returns the status code and the body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let answer = http(addr, "GET", path, &[], None);
    (answer.status, answer.body)
}

/// An HTTP answer.
struct Answer {
    status: u16,
    /// The status line and the headers.
    head: String,
    body: String,
}

impl Answer {
    /// The value of the first header `name` (case-insensitive), if any.
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// `METHOD path` over HTTP/1.1 with extra headers and an optional JSON body.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], json: Option<&str>) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    stream.set_read_timeout(Some(READY_WITHIN)).expect("a read timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request += &format!("{k}: {v}\r\n");
    }
    if let Some(body) = json {
        request += &format!("content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    } else {
        request += "\r\n";
    }
    stream.write_all(request.as_bytes()).expect("the request is sent");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("a response");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("an HTTP response: {raw}"));
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding: chunked"),
        "this client reads only plain bodies: {head}"
    );
    let status =
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("a status: {head}"));
    Answer { status, head: head.to_owned(), body: body.to_owned() }
}

/// Starts `serve` on a free port with the built plugins, checks `/api/health`, stops it, and
/// returns the server with everything it printed.
fn serve_and_check_health(sandbox: &Sandbox, args: &[&str]) -> (Server, String) {
    let mut args = args.to_vec();
    args.push("serve");
    let mut server = Server::start(
        sandbox
            .jiayuan(&args)
            .env("JIAYUAN_SERVER__LISTEN", "127.0.0.1:0")
            .env("JIAYUAN_PLUGINS__DIR", built_plugins()),
    );
    let addr = server.address();
    let (status, body) = http_get(&addr, "/api/health");
    assert_eq!(status, 200, "{body}\n{}", server.captured());
    let health: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("health is JSON ({e}): {body}"));
    assert_eq!(health["status"], "ok", "{body}");
    assert_eq!(health["database"], "ok", "{body}");
    assert_eq!(health["plugins_failed"], 0, "every plugin loaded: {body}");
    server.stop();
    (server, addr)
}

#[test]
fn serve_listens_and_answers_health() {
    let sandbox = Sandbox::new();
    let (server, addr) = serve_and_check_health(&sandbox, &[]);
    // Human-readable logs by default, without terminal colours when stderr is not a terminal.
    let listening = server
        .stderr
        .iter()
        .find(|l| l.contains("listening") && l.contains(&addr))
        .unwrap_or_else(|| panic!("a log line naming the address\n{}", server.captured()));
    assert!(serde_json::from_str::<Value>(listening).is_err(), "not JSON by default: {listening}");
    assert!(!server.stderr.iter().any(|l| l.contains('\u{1b}')), "no ANSI escapes in a pipe\n{}", server.captured());
    assert!(sandbox.path().join("jiayuan.sqlite").is_file(), "serve migrated the configured database");
}

#[test]
fn log_json_makes_every_log_line_a_json_object() {
    let sandbox = Sandbox::new();
    let (server, addr) = serve_and_check_health(&sandbox, &["--log-json"]);
    assert!(!server.stderr.is_empty(), "serve logs something\n{}", server.captured());
    let mut listening = false;
    for line in &server.stderr {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}\n{}", server.captured()));
        assert!(entry.is_object(), "{line}");
        assert!(entry["level"].is_string() && entry["timestamp"].is_string(), "{line}");
        listening |= entry["fields"]["message"] == "listening" && entry["fields"]["addr"] == addr.as_str();
    }
    assert!(listening, "a `listening` entry with the address\n{}", server.captured());
}

// ---------------------------------------------------------------------------------------------
// users

/// The password the tests give accounts.
const PASSWORD: &str = "correct horse battery";

/// `jiayuan users ARGS` with cheap Argon2 parameters (the tests hash several passwords), a known
/// OS user for the audit actor, and standard input closed (not a terminal).
fn users(sandbox: &Sandbox, args: &[&str]) -> Command {
    let mut all = vec!["users"];
    all.extend_from_slice(args);
    let mut cmd = sandbox.jiayuan(&all);
    cmd.env("JIAYUAN_AUTH__ARGON2_MEMORY_KIB", "256")
        .env("JIAYUAN_AUTH__ARGON2_ITERATIONS", "1")
        .env("USER", "tester")
        .env_remove("LOGNAME")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` with `input` on its standard input.
fn run_with_input(cmd: &mut Command, input: &str) -> Run {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the binary runs");
    child.stdin.take().expect("stdin is piped").write_all(input.as_bytes()).expect("the input is written");
    let out = child.wait_with_output().expect("the binary finishes");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `users list --json`, parsed: the accounts array.
fn accounts_json(sandbox: &Sandbox) -> Vec<Value> {
    let list = run(&mut users(sandbox, &["list", "--json"]));
    list.assert_success();
    let parsed: Value =
        serde_json::from_str(list.stdout.trim()).unwrap_or_else(|e| panic!("JSON ({e})\n{}", list.describe()));
    parsed["accounts"].as_array().cloned().unwrap_or_else(|| panic!("an `accounts` array\n{}", list.describe()))
}

fn account_json<'a>(accounts: &'a [Value], login: &str) -> &'a Value {
    accounts.iter().find(|a| a["login"] == login).unwrap_or_else(|| panic!("no `{login}` in {accounts:?}"))
}

/// Issues a token through the CLI and returns it with the token id from `token list`.
fn issue_token(sandbox: &Sandbox, login: &str, name: &str, extra: &[&str]) -> (String, i64) {
    let mut args = vec!["token", "issue", login, "--name", name];
    args.extend_from_slice(extra);
    let issued = run(&mut users(sandbox, &args));
    issued.assert_success();
    let token = issued.stdout.trim().to_owned();
    assert!(
        token.starts_with("jy_") && !token.contains(char::is_whitespace),
        "the token alone on stdout\n{}",
        issued.describe()
    );
    assert!(issued.stderr.contains("not be shown again"), "says it is shown once\n{}", issued.describe());
    let list = run(&mut users(sandbox, &["token", "list", login, "--json"]));
    list.assert_success();
    assert!(!list.stdout.contains(&token), "a listing never shows the token\n{}", list.describe());
    let parsed: Value = serde_json::from_str(list.stdout.trim()).expect("token list is JSON");
    let entry = parsed["tokens"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("the token `{name}` is listed\n{}", list.describe()));
    let prefix = entry["prefix"].as_str().expect("a prefix");
    assert!(token.starts_with(prefix), "the prefix is the token's start: {prefix}");
    (token, entry["id"].as_i64().expect("an id"))
}

/// (action, actor) of every audit event, in order.
fn audit_events(db: &Path) -> Vec<(String, String)> {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        use sea_orm::ConnectionTrait;
        let conn = sea_orm::Database::connect(sqlite_url(db)).await.expect("open the database");
        let rows = conn
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "SELECT action, actor FROM audit_events ORDER BY seq",
            ))
            .await
            .expect("read the audit log");
        conn.close().await.expect("close");
        rows.iter().map(|r| (r.try_get_by_index(0).expect("action"), r.try_get_by_index(1).expect("actor"))).collect()
    })
}

#[test]
fn users_add_list_passwd_disable_and_tokens_round_trip_and_are_audited() {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("jiayuan.sqlite");

    let empty = run(&mut users(&sandbox, &["list"]));
    empty.assert_success();
    assert!(
        empty.stdout.contains("jiayuan users add admin --role district_admin --scope district"),
        "{}",
        empty.describe()
    );

    let add = run_with_input(
        &mut users(&sandbox, &["add", "admin", "--role", "district_admin", "--scope", "district", "--password-stdin"]),
        &format!("{PASSWORD}\n"),
    );
    add.assert_success();
    assert!(add.stdout.contains("`admin`") && add.stdout.contains("district_admin"), "{}", add.describe());
    run(&mut users(
        &sandbox,
        &["add", "ops", "--role", "auditor", "--scope", "district", "--name", "审计接口", "--no-password"],
    ))
    .assert_success();

    let taken =
        run(&mut users(&sandbox, &["add", "admin", "--role", "auditor", "--scope", "district", "--no-password"]));
    assert_ne!(taken.code, Some(0), "{}", taken.describe());
    assert!(taken.stderr.contains("`admin`") && taken.stderr.contains("already taken"), "{}", taken.describe());

    // Listing: the columns, never a hash.
    let table = run(&mut users(&sandbox, &["list"]));
    table.assert_success();
    let header = table.stdout.lines().next().unwrap_or_default();
    for column in ["ID", "LOGIN", "ROLE", "SCOPE", "ITEMS", "STATUS"] {
        assert!(header.contains(column), "{}", table.describe());
    }
    let admin_line = table
        .stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("admin"))
        .unwrap_or_else(|| panic!("{}", table.describe()));
    assert!(
        admin_line.contains("district_admin") && admin_line.contains("district") && admin_line.contains("active"),
        "{admin_line}"
    );
    let json = run(&mut users(&sandbox, &["list", "--json"]));
    for out in [&table, &json] {
        assert!(!out.output().contains("$argon2"), "no password hash is printed\n{}", out.describe());
    }
    let accounts = accounts_json(&sandbox);
    assert_eq!(accounts.len(), 2);
    let admin = account_json(&accounts, "admin");
    assert_eq!(admin["role"], "district_admin");
    assert_eq!(admin["scope"], "district");
    assert_eq!(admin["items"], Value::Null);
    assert_eq!(admin["disabled"], false);
    assert!(admin["id"].is_i64());

    // A password reset, from standard input; typing is refused without a terminal.
    let reset =
        run_with_input(&mut users(&sandbox, &["passwd", "admin", "--password-stdin"]), "another long password\n");
    reset.assert_success();
    assert!(reset.stdout.contains("`admin`"), "{}", reset.describe());
    let short = run_with_input(&mut users(&sandbox, &["passwd", "admin", "--password-stdin"]), "short\n");
    assert_ne!(short.code, Some(0), "{}", short.describe());
    assert!(short.stderr.contains("10 to 256 characters"), "{}", short.describe());

    // Disable and enable.
    run(&mut users(&sandbox, &["disable", "admin"])).assert_success();
    assert_eq!(account_json(&accounts_json(&sandbox), "admin")["disabled"], true);
    let listed = run(&mut users(&sandbox, &["list"]));
    assert!(listed.stdout.lines().any(|l| l.contains("admin") && l.contains("disabled")), "{}", listed.describe());
    run(&mut users(&sandbox, &["enable", "admin"])).assert_success();
    assert_eq!(account_json(&accounts_json(&sandbox), "admin")["disabled"], false);

    // A change is checked whole: an auditor cannot have a street; a district admin can be renamed.
    let misfit = run(&mut users(&sandbox, &["set", "ops", "--scope", "street:440303004000"]));
    assert_ne!(misfit.code, Some(0), "{}", misfit.describe());
    assert!(
        misfit.stderr.contains("auditor") && misfit.stderr.contains("street:440303004000"),
        "{}",
        misfit.describe()
    );
    let nothing = run(&mut users(&sandbox, &["set", "ops"]));
    assert!(nothing.code != Some(0) && nothing.stderr.contains("nothing to change"), "{}", nothing.describe());
    run(&mut users(&sandbox, &["set", "ops", "--name", "审计接口（新）"])).assert_success();

    // Tokens: issue, list, revoke.
    let (_, id) = issue_token(&sandbox, "ops", "nightly export", &["--expires-days", "30"]);
    let list = run(&mut users(&sandbox, &["token", "list", "ops"]));
    list.assert_success();
    let line =
        list.stdout.lines().find(|l| l.starts_with(&id.to_string())).unwrap_or_else(|| panic!("{}", list.describe()));
    assert!(line.contains("nightly export") && line.contains("active"), "{}", list.describe());
    let foreign = run(&mut users(&sandbox, &["token", "revoke", "admin", &id.to_string()]));
    assert_ne!(foreign.code, Some(0), "another account's token is not revoked\n{}", foreign.describe());
    assert!(foreign.stderr.contains(&format!("no token {id}")), "{}", foreign.describe());
    run(&mut users(&sandbox, &["token", "revoke", "ops", &id.to_string()])).assert_success();
    let list = run(&mut users(&sandbox, &["token", "list", "ops"]));
    assert!(
        list.stdout.lines().any(|l| l.starts_with(&id.to_string()) && l.contains("revoked")),
        "{}",
        list.describe()
    );

    // Unknown logins are named.
    for args in [&["disable", "nobody"][..], &["passwd", "nobody", "--password-stdin"], &["token", "list", "nobody"]] {
        let unknown = run(&mut users(&sandbox, args));
        assert_ne!(unknown.code, Some(0), "{}", unknown.describe());
        assert!(unknown.stderr.contains("no account with login `nobody`"), "{}", unknown.describe());
    }

    // The audit log holds every change, by the CLI's actor, and its chain verifies.
    let verify = run(&mut sandbox.jiayuan(&["audit", "verify"]));
    verify.assert_success();
    assert!(verify.stdout.starts_with("audit log OK: 8 events"), "{}", verify.describe());
    let events = audit_events(&db);
    let actions: Vec<&str> = events.iter().map(|(action, _)| action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "account.create",
            "account.create",
            "account.password_reset",
            "account.disable",
            "account.enable",
            "account.update",
            "token.issue",
            "token.revoke",
        ],
        "refused commands change nothing: {events:?}"
    );
    assert!(events.iter().all(|(_, actor)| actor == "cli:tester"), "{events:?}");
}

#[test]
fn users_add_refuses_a_bad_role_scope_login_or_item_naming_it() {
    let sandbox = Sandbox::new();
    let refused = |args: &[&str], names: &[&str]| {
        let mut all = vec!["add"];
        all.extend_from_slice(args);
        all.push("--no-password");
        let run = run(&mut users(&sandbox, &all));
        assert_ne!(run.code, Some(0), "{all:?} must be refused\n{}", run.describe());
        for name in names {
            assert!(run.stderr.contains(name), "{all:?}: the message names {name}\n{}", run.describe());
        }
    };
    refused(&["x01", "--role", "boss", "--scope", "district"], &["boss", "unknown role"]);
    refused(&["x01", "--role", "street_officer", "--scope", "street:12345"], &["street:12345", "not an account scope"]);
    refused(&["x01", "--role", "district_admin", "--scope", "estate:3"], &["estate:3"]);
    refused(&["x01", "--role", "firm_manager", "--scope", "district"], &["firm_manager", "district"]);
    refused(&["x01", "--role", "firm_manager", "--scope", "firm:99"], &["firm:99", "no firm 99"]);
    refused(
        &["x01", "--role", "street_officer", "--scope", "street:440303001000"],
        &["440303001000", "not in the registry"],
    );
    refused(&["x01", "--role", "firm_staff", "--scope", "firm:1"], &["firm_staff", "--items"]);
    refused(&["x01", "--role", "auditor", "--scope", "district", "--items", "dog-licensing"], &["auditor", "--items"]);
    refused(
        &["x01", "--role", "agency_officer", "--scope", "district", "--items", "nope"],
        &["`nope`", "not a plugin loaded"],
    );
    refused(&["Admin", "--role", "district_admin", "--scope", "district"], &["`Admin`"]);

    // Without --password-stdin or --no-password the password is typed: not without a terminal.
    let untyped = run(&mut users(&sandbox, &["add", "admin", "--role", "district_admin", "--scope", "district"]));
    assert_ne!(untyped.code, Some(0), "{}", untyped.describe());
    assert!(untyped.stderr.contains("--password-stdin"), "names the way out\n{}", untyped.describe());
    let untyped = run(&mut users(&sandbox, &["passwd", "admin"]));
    assert_ne!(untyped.code, Some(0), "{}", untyped.describe());

    assert!(accounts_json(&sandbox).is_empty(), "nothing was created");
}

#[test]
fn users_add_assigns_only_loaded_service_items() {
    let sandbox = Sandbox::new();
    let add = |login: &str, items: &str| {
        run(users(
            &sandbox,
            &["add", login, "--role", "agency_officer", "--scope", "district", "--items", items, "--no-password"],
        )
        .env("JIAYUAN_PLUGINS__DIR", built_plugins()))
    };
    add("chengguan", DOGS).assert_success();
    let unknown = add("police", &format!("{DOGS},parking"));
    assert_ne!(unknown.code, Some(0), "{}", unknown.describe());
    assert!(
        unknown.stderr.contains("`parking`") && unknown.stderr.contains(DOGS),
        "names it and what is loaded\n{}",
        unknown.describe()
    );
    let accounts = accounts_json(&sandbox);
    assert_eq!(accounts.len(), 1);
    assert_eq!(account_json(&accounts, "chengguan")["items"], serde_json::json!([DOGS]));
}

/// `serve` on a free port of the sandbox's database (no plugins), with extra variables.
fn serve(sandbox: &Sandbox, vars: &[(&str, &str)]) -> (Server, String) {
    let mut cmd = sandbox.jiayuan(&["serve"]);
    cmd.env("JIAYUAN_SERVER__LISTEN", "127.0.0.1:0")
        .env("JIAYUAN_AUTH__ARGON2_MEMORY_KIB", "256")
        .env("JIAYUAN_AUTH__ARGON2_ITERATIONS", "1");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut server = Server::start(&mut cmd);
    let addr = server.address();
    (server, addr)
}

fn me(addr: &str, token: &str) -> Answer {
    http(addr, "GET", "/api/auth/me", &[("authorization", &format!("Bearer {token}"))], None)
}

#[test]
fn a_token_issued_by_the_cli_authenticates_until_the_cli_revokes_it() {
    let sandbox = Sandbox::new();
    run(&mut users(&sandbox, &["add", "ops", "--role", "auditor", "--scope", "district", "--no-password"]))
        .assert_success();
    let (token, id) = issue_token(&sandbox, "ops", "smoke test", &[]);
    // No caller cache, so the CLI's changes show on the next request.
    let (mut server, addr) = serve(&sandbox, &[("JIAYUAN_AUTH__CACHE_TTL_SECS", "0")]);

    let answer = me(&addr, &token);
    assert_eq!(answer.status, 200, "{}\n{}", answer.body, server.captured());
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(body["account"]["login"], "ops", "{body}");
    assert_eq!(body["account"]["role"], "auditor", "{body}");
    assert_eq!(body["via"], "token", "{body}");
    assert_eq!(http(&addr, "GET", "/api/auth/me", &[], None).status, 401, "no credentials");

    // Disabling the account (from another process, on the same database) refuses its token.
    run(&mut users(&sandbox, &["disable", "ops"])).assert_success();
    assert_eq!(me(&addr, &token).status, 401, "a disabled account's token is refused");
    run(&mut users(&sandbox, &["enable", "ops"])).assert_success();
    assert_eq!(me(&addr, &token).status, 200, "honoured again once enabled");

    run(&mut users(&sandbox, &["token", "revoke", "ops", &id.to_string()])).assert_success();
    assert_eq!(me(&addr, &token).status, 401, "a revoked token is refused\n{}", server.captured());
    server.stop();

    let verify = run(&mut sandbox.jiayuan(&["audit", "verify"]));
    verify.assert_success();
    let actions: Vec<String> =
        audit_events(&sandbox.path().join("jiayuan.sqlite")).into_iter().map(|(a, _)| a).collect();
    for action in ["account.create", "token.issue", "account.disable", "account.enable", "token.revoke"] {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }
}

fn login(addr: &str, login: &str, password: &str) -> Answer {
    let body = serde_json::json!({ "login": login, "password": password }).to_string();
    http(addr, "POST", "/api/auth/login", &[], Some(&body))
}

#[test]
fn serve_applies_the_auth_settings_to_logins_and_cookies() {
    let sandbox = Sandbox::new();
    run_with_input(
        &mut users(&sandbox, &["add", "admin", "--role", "district_admin", "--scope", "district", "--password-stdin"]),
        PASSWORD,
    )
    .assert_success();

    // The shipped defaults: a Secure cookie living 12 hours.
    let (mut server, addr) = serve(&sandbox, &[]);
    let ok = login(&addr, "admin", PASSWORD);
    assert_eq!(ok.status, 200, "the CLI's password logs in: {}\n{}", ok.body, server.captured());
    let cookie = ok.header("set-cookie").unwrap_or_else(|| panic!("a session cookie: {}", ok.head)).to_owned();
    assert!(cookie.contains("; Secure") && cookie.contains("Max-Age=43200"), "{cookie}");
    let session = cookie.split(';').next().expect("name=value");
    let me = http(&addr, "GET", "/api/auth/me", &[("cookie", session)], None);
    assert_eq!(me.status, 200, "{}", me.body);
    assert!(me.body.contains("\"via\":\"session\""), "{}", me.body);
    server.stop();

    // Configured: no Secure flag, 10-minute sessions, two failures allowed.
    let (mut server, addr) = serve(
        &sandbox,
        &[
            ("JIAYUAN_AUTH__COOKIE_SECURE", "false"),
            ("JIAYUAN_AUTH__SESSION_TTL_SECS", "600"),
            ("JIAYUAN_AUTH__LOGIN_ATTEMPTS", "2"),
        ],
    );
    let ok = login(&addr, "admin", PASSWORD);
    assert_eq!(ok.status, 200, "{}\n{}", ok.body, server.captured());
    let cookie = ok.header("set-cookie").unwrap_or_else(|| panic!("a session cookie: {}", ok.head));
    assert!(!cookie.contains("Secure") && cookie.contains("Max-Age=600"), "{cookie}");
    assert_eq!(login(&addr, "admin", "wrong password!").status, 401);
    assert_eq!(login(&addr, "admin", "wrong password!").status, 401);
    let blocked = login(&addr, "admin", PASSWORD);
    assert_eq!(blocked.status, 429, "the third attempt within the window waits: {}", blocked.body);
    assert!(blocked.header("retry-after").is_some(), "{}", blocked.head);
    server.stop();
}

#[test]
fn the_demo_serves_session_cookies_over_plain_http() {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("demo.sqlite");
    // Without plugins the demo still seeds the registry and its accounts (the item-bound roles
    // excepted), which is all this needs.
    let mut server = Server::start(
        sandbox
            .jiayuan(&["demo", "--database", db.to_str().expect("a UTF-8 path")])
            .env("JIAYUAN_SERVER__LISTEN", "127.0.0.1:0"),
    );
    let addr = server.address_after("Jiayuan demo listening on http://");
    assert!(
        server.stdout.iter().any(|l| l.contains("jiayuan-demo-2026")),
        "the demo password is printed\n{}",
        server.captured()
    );
    let ok = login(&addr, "admin", "jiayuan-demo-2026");
    assert_eq!(ok.status, 200, "{}\n{}", ok.body, server.captured());
    let cookie = ok.header("set-cookie").unwrap_or_else(|| panic!("a session cookie: {}", ok.head));
    assert!(cookie.starts_with("jiayuan_session=") && !cookie.contains("Secure"), "{cookie}");
    server.stop();
}

// ---------------------------------------------------------------------------------------------
// Import, export, registry.

/// `jiayuan import|export|registry ARGS` in the sandbox, as OS user `tester`.
fn ledger(sandbox: &Sandbox, args: &[&str]) -> Run {
    let mut cmd = sandbox.jiayuan(args);
    cmd.env("USER", "tester").env_remove("LOGNAME").stdin(Stdio::null());
    run(&mut cmd)
}

#[test]
fn an_installer_imports_ledgers_with_reports_by_row_and_exports_them_masked() {
    let sandbox = Sandbox::new();
    let file = |name: &str, text: &str| {
        let path = sandbox.path().join(name);
        fs::write(&path, text).expect("a ledger file");
        path.display().to_string()
    };
    ledger(&sandbox, &["import", "template", "persons", "-o", "persons-template.xlsx"]).assert_success();
    assert!(fs::metadata(sandbox.path().join("persons-template.xlsx")).is_ok_and(|m| m.len() > 0));

    let divisions = file(
        "divisions.csv",
        "区划代码,名称,生效日期\n440303000000,罗湖区,2019-01-01\n440303004000,翠竹街道,2019-01-01\n\
         440303004008,翠竹社区,2019-01-01\n",
    );
    let dry = ledger(&sandbox, &["import", "divisions", &divisions, "--dry-run"]);
    dry.assert_success();
    assert!(dry.stdout.contains("3 inserted") && dry.stdout.contains("dry run"), "{}", dry.describe());
    ledger(&sandbox, &["import", "divisions", &divisions]).assert_success();
    let again = ledger(&sandbox, &["import", "divisions", &divisions]);
    assert!(again.stdout.contains("0 inserted, 0 updated, 3 unchanged"), "{}", again.describe());

    // Excel damage and a blank cell are named by row and column, and nothing is written.
    let estates = file(
        "estates.csv",
        "小区编码,小区名称,类型,社区代码,管理状态,户数\nLH-1,翠竹苑,estate,440303004008,property_managed,480\n\
         LH-2,,estate,4.40303E+11,unmanaged,12\n",
    );
    let bad = ledger(&sandbox, &["import", "estates", &estates, "--json"]);
    assert_eq!(bad.code, Some(1), "problems exit 1\n{}", bad.describe());
    let report: Value = serde_json::from_str(&bad.stdout).unwrap_or_else(|e| panic!("JSON ({e})\n{}", bad.describe()));
    let named: Vec<(u64, String, String)> = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["row"].as_u64().unwrap_or(0),
                p["column"].as_str().unwrap_or("").into(),
                p["rule"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert!(named.contains(&(3, "小区名称".into(), "required".into())), "{named:?}");
    assert!(named.contains(&(3, "社区代码".into(), "excel_scientific".into())), "{named:?}");
    assert_eq!(report["committed"], false);
    let listed = ledger(&sandbox, &["registry", "estates"]);
    assert!(!listed.stdout.contains("LH-1"), "all or nothing: nothing was written\n{}", listed.describe());
    ledger(&sandbox, &["import", "estates", &estates, "--valid-rows-only"]);
    assert!(ledger(&sandbox, &["registry", "estates"]).stdout.contains("LH-1"));

    // A resident (a synthetic identity number with a valid check digit) leaves masked.
    let number = "11010519491231002X";
    let persons = file("persons.csv", &format!("姓名,证件号码,户籍,手机号码\n张三,{number},深圳户籍,13812345678\n"));
    ledger(&sandbox, &["import", "persons", &persons]).assert_success();
    ledger(&sandbox, &["export", "persons", "--format", "csv", "--purpose", "reconciliation", "-o", "out.csv"])
        .assert_success();
    let exported = fs::read_to_string(sandbox.path().join("out.csv")).expect("the export");
    assert!(exported.starts_with('\u{feff}') && exported.contains("证件号码"), "BOM and Chinese headers\n{exported}");
    assert!(exported.contains("居民身份证") && exported.contains("深圳户籍"), "choices as their labels\n{exported}");
    assert!(!exported.contains(number) && !exported.contains("13812345678") && exported.contains("*******5678"));
    assert!(exported.lines().next().is_some_and(|l| l.contains("cli:tester") && l.contains("reconciliation")));
    let bad_purpose = ledger(&sandbox, &["export", "persons", "--purpose", "curiosity"]);
    assert!(
        bad_purpose.code != Some(0) && bad_purpose.output().contains("reconciliation"),
        "{}",
        bad_purpose.describe()
    );

    // `--as` takes the account's reach: a firm manager with no estates cannot place a resident.
    let credit = {
        let first17 = "91440300MA5FUTXX9";
        let check = jiayuan_domain::credit_code_check_char(first17).expect("charset");
        format!("{first17}{check}")
    };
    let firms = file("firms.csv", &format!("统一社会信用代码,企业名称,企业类型\n{credit},翠园物业,物业服务企业\n"));
    ledger(&sandbox, &["import", "firms", &firms]).assert_success();
    let mut add = users(&sandbox, &["add", "mgr", "--role", "firm_manager", "--scope", "firm:1", "--password-stdin"]);
    run_with_input(&mut add, &format!("{PASSWORD}\n")).assert_success();
    let theirs =
        file("theirs.csv", "姓名,证件号码,户籍,小区编码,楼栋,房号\n李四,110105194912310038,深圳户籍,LH-1,1栋,101\n");
    let refused = ledger(&sandbox, &["import", "persons", &theirs, "--as", "mgr"]);
    assert_eq!(refused.code, Some(1), "{}", refused.describe());
    let unknown = ledger(&sandbox, &["import", "persons", &theirs, "--as", "nobody"]);
    assert!(unknown.code != Some(0) && unknown.output().contains("no account `nobody`"), "{}", unknown.describe());
    let audit = ledger(&sandbox, &["audit", "verify"]);
    audit.assert_success();
}

// ---------------------------------------------------------------------------------------------
// Plugin isolation, through the real binary.

/// A demo host (registry, accounts) serving dog licensing and the fixture, with `vars`; returns
/// the server, its address and an admin session cookie.
fn isolation_demo(sandbox: &Sandbox, vars: &[(&str, &str)]) -> (Server, String, String) {
    let plugins = sandbox.path().join("plugins");
    copy_dir(built_plugins_with_fixture(), &plugins);
    let db = sandbox.path().join("demo.sqlite");
    let mut cmd = sandbox.jiayuan(&["demo", "--database", db.to_str().expect("a UTF-8 path")]);
    cmd.env("JIAYUAN_SERVER__LISTEN", "127.0.0.1:0")
        .env("JIAYUAN_PLUGINS__DIR", &plugins)
        .env("JIAYUAN_PLUGINS__ALLOW", "dog-licensing,fixture")
        .env("JIAYUAN_ENABLEMENT__DISTRICT", "dog-licensing,fixture")
        .env("JIAYUAN_AUTH__ARGON2_MEMORY_KIB", "256")
        .env("JIAYUAN_AUTH__ARGON2_ITERATIONS", "1");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut server = Server::start(&mut cmd);
    let addr = server.address_after("Jiayuan demo listening on http://");
    let ok = login(&addr, "admin", "jiayuan-demo-2026");
    assert_eq!(ok.status, 200, "{}\n{}", ok.body, server.captured());
    let cookie = ok.header("set-cookie").and_then(|c| c.split(';').next()).expect("a session cookie").to_owned();
    (server, addr, cookie)
}

/// `METHOD path` as the admin session; the status and the JSON body.
fn admin(addr: &str, cookie: &str, method: &str, path: &str, json: Option<&Value>) -> (u16, Value) {
    let body = json.map(Value::to_string);
    let answer = http(addr, method, path, &[("cookie", cookie)], body.as_deref());
    (answer.status, serde_json::from_str(&answer.body).unwrap_or(Value::Null))
}

fn first_estate(addr: &str, cookie: &str) -> i64 {
    let (status, estates) = admin(addr, cookie, "GET", "/api/registry/estates", None);
    assert_eq!(status, 200, "{estates}");
    estates["estates"][0]["id"].as_i64().unwrap_or_else(|| panic!("an estate: {estates}"))
}

fn fixture_row(addr: &str, cookie: &str) -> Value {
    let (_, plugins) = admin(addr, cookie, "GET", "/api/plugins", None);
    plugins["plugins"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["id"] == "fixture"))
        .cloned()
        .unwrap_or_else(|| panic!("the fixture is listed: {plugins}"))
}

fn probe(estate: i64, mode: &str) -> Value {
    serde_json::json!({"kind": "probe", "estate_id": estate, "data": {"mode": mode}})
}

/// Polls `check` (a hang guard of `READY_WITHIN`, not a speed check).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + READY_WITHIN;
    while !check() {
        assert!(Instant::now() < deadline, "{what} did not happen within {READY_WITHIN:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn blocking_hooks_quarantine_their_plugin_and_sigterm_still_stops_the_host() {
    let sandbox = Sandbox::new();
    let (mut server, addr, cookie) = isolation_demo(
        &sandbox,
        &[("JIAYUAN_PLUGINS__CALL_TIMEOUT_MS", "2000"), ("JIAYUAN_PLUGIN_CONFIG__FIXTURE__BLOCK_MS", "120000")],
    );
    let estate = first_estate(&addr, &cookie);
    // Four calls whose hooks block their threads (two busy loops, two sleeps), in flight at once.
    let blocked: Vec<_> = ["spin", "sleep", "spin", "sleep"]
        .into_iter()
        .map(|mode| {
            let (addr, cookie) = (addr.clone(), cookie.clone());
            std::thread::spawn(move || {
                admin(&addr, &cookie, "POST", "/api/items/fixture/records", Some(&probe(estate, mode)))
            })
        })
        .collect();
    let (status, health) = http_get(&addr, "/api/health");
    assert_eq!(status, 200, "health answers while the hooks block: {health}");
    let (status, dogs) = admin(&addr, &cookie, "GET", "/api/items/dog-licensing/records?kind=dog", None);
    assert_eq!(status, 200, "dog licensing serves while the hooks block: {dogs}");
    for call in blocked {
        let (status, body) = call.join().expect("the caller thread ends");
        assert_eq!(status, 503, "{body}");
        assert!(body["error"]["message_en"].as_str().is_some_and(|m| m.contains("`fixture`")), "{body}");
    }
    let fixture = fixture_row(&addr, &cookie);
    assert_eq!(fixture["status"]["status"], "quarantined", "{fixture}");
    assert_eq!(fixture["calls"]["stuck"], 2, "{fixture}");
    let (_, health) = http_get(&addr, "/api/health");
    assert!(health.contains("\"degraded\""), "{health}");

    // SIGTERM: the host stops cleanly although two plugin threads are still stuck.
    let killed = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + READY_WITHIN;
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("the server can be waited for") {
            break status;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not stop the host\n{}", server.captured());
        std::thread::sleep(Duration::from_millis(50));
    };
    server.stop();
    assert!(status.success(), "a clean exit: {status}\n{}", server.captured());
    assert!(server.stderr.iter().any(|l| l.contains("shutting down")), "{}", server.captured());
}

#[test]
fn a_process_isolated_plugin_that_crashes_or_hangs_is_restarted_and_never_holds_the_data_key() {
    let sandbox = Sandbox::new();
    let key = "9f".repeat(32);
    let (mut server, addr, cookie) = isolation_demo(
        &sandbox,
        &[
            ("JIAYUAN_PLUGINS__ISOLATION__FIXTURE", "process"),
            ("JIAYUAN_PLUGINS__CALL_TIMEOUT_MS", "3000"),
            ("JIAYUAN_PLUGINS__QUARANTINE_AFTER_PANICS", "4"),
            ("JIAYUAN_SECURITY__DATA_KEY", &key),
        ],
    );
    let estate = first_estate(&addr, &cookie);
    let fixture = fixture_row(&addr, &cookie);
    assert_eq!(fixture["calls"]["isolation"], "process", "{fixture}");
    let pid = fixture["calls"]["pid"].as_u64().unwrap_or_else(|| panic!("a child pid: {fixture}"));

    // The child's environment holds no secret (the parent's does: the test is not vacuous).
    let environ = |pid: u64| fs::read(format!("/proc/{pid}/environ")).expect("an environ");
    let has_key = |env: &[u8]| env.windows(key.len()).any(|w| w == key.as_bytes());
    assert!(has_key(&environ(u64::from(server.child.id()))), "the host got the key from its environment");
    let child_env = environ(pid);
    assert!(!has_key(&child_env), "the data key reached the plugin runner");
    assert!(child_env.is_empty(), "the runner's environment is empty: {}", String::from_utf8_lossy(&child_env));
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).expect("a cmdline");
    assert!(String::from_utf8_lossy(&cmdline).contains("plugin-runner"), "the child is jiayuan's runner");

    let create = |mode: &str| admin(&addr, &cookie, "POST", "/api/items/fixture/records", Some(&probe(estate, mode)));
    let (status, body) = create("ok");
    assert_eq!(status, 201, "{body}");
    // Each death: the caller hears 503 naming the item, dog licensing keeps serving, the next
    // call reaches a restarted child.
    let mut restarts = 0;
    for mode in ["segfault", "abort", "hang"] {
        let (status, body) = create(mode);
        assert_eq!(status, 503, "{mode}: {body}");
        assert!(body["error"]["message_en"].as_str().is_some_and(|m| m.contains("`fixture`")), "{mode}: {body}");
        let (status, dogs) = admin(&addr, &cookie, "GET", "/api/items/dog-licensing/records?kind=dog", None);
        assert_eq!(status, 200, "dog licensing serves after the fixture's {mode}: {dogs}");
        let (status, body) = create("ok");
        assert_eq!(status, 201, "a restarted child serves after {mode}: {body}");
        restarts += 1;
        let row = fixture_row(&addr, &cookie);
        assert_eq!(row["calls"]["restarts"], restarts, "{row}");
        assert_ne!(row["calls"]["pid"].as_u64(), Some(pid), "a new child: {row}");
    }
    // A fourth death within the window: quarantined, alerted, reported, health degraded.
    let (status, _) = create("segfault");
    assert_eq!(status, 503);
    eventually("the quarantine", || fixture_row(&addr, &cookie)["status"]["status"] == "quarantined");
    let (status, body) = create("ok");
    assert_eq!(status, 503, "{body}");
    let (_, health) = http_get(&addr, "/api/health");
    assert!(health.contains("\"degraded\""), "{health}");
    eventually("the quarantine alert", || {
        let (_, alerts) = admin(&addr, &cookie, "GET", "/api/alerts?plugin=fixture", None);
        alerts["alerts"].as_array().is_some_and(|a| a.iter().any(|a| a["rule"] == "plugin_quarantined"))
    });
    server.stop();
    let output = server.captured();
    assert!(output.contains("SIGSEGV") && output.contains("SIGABRT"), "the deaths are logged by cause\n{output}");
    assert!(output.contains("killed by the host: on_create ran past"), "the hang's kill is logged\n{output}");
}

// ---------------------------------------------------------------------------------------------
// Out-of-tree plugins.

/// A plugin crate outside the workspace (a copy of the fixture's sources with path dependencies
/// on the API, as a third party writes it) builds with `--manifest-path`, loads, and a refusal
/// names the command that rebuilds it.
#[test]
fn an_out_of_tree_plugin_builds_with_its_manifest_path_and_its_refusals_name_that_command() {
    let sandbox = Sandbox::new();
    let root = workspace_root().canonicalize().expect("the workspace root resolves");
    let krate = sandbox.path().join("outside").join("fixture");
    fs::create_dir_all(krate.join("src")).expect("a crate directory");
    fs::copy(root.join("plugins/fixture/src/lib.rs"), krate.join("src/lib.rs")).expect("sources copied");
    // The workspace's lock file: the same dependency versions, so the build reuses compiled ones.
    fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock")).expect("lock file copied");
    let api = root.join("crates/jiayuan-plugin-api");
    fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"jiayuan-plugin-fixture\"\nversion = \"{}\"\nedition = \"2024\"\n\n\
             [lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n\n\
             [dependencies]\njiayuan-plugin-api = {{ path = \"{}\" }}\nasync-trait = \"0.1\"\nserde_json = \"1\"\n\
             rustix = {{ version = \"1\", features = [\"process\"] }}\n\n\
             [features]\nbad-api-version = []\nbad-rustc = []\n\n[workspace]\n",
            env!("CARGO_PKG_VERSION"),
            api.display()
        ),
    )
    .expect("a manifest");
    let plugins = sandbox.path().join("plugins");
    fs::create_dir(&plugins).expect("a plugin directory");
    fs::set_permissions(&plugins, fs::Permissions::from_mode(0o755)).expect("chmod 755");
    let base = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = krate.join("Cargo.toml");
    let built = run(Command::new(&cargo)
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", base.join("cli-test-builds"))
        .args(["xtask", "plugins", "build", "--manifest-path"])
        .arg(&manifest)
        .arg("--out")
        .arg(&plugins));
    built.assert_success();
    assert!(built.stdout.contains("checking the dependencies of 1 plugin(s): fixture"), "{}", built.describe());
    let written = fs::canonicalize(&manifest).expect("the manifest resolves");
    assert_eq!(sidecar_value(&plugins.join("fixture"), "manifest_path"), written.display().to_string());

    let allow = [("JIAYUAN_PLUGINS__DIR", plugins.as_os_str()), ("JIAYUAN_PLUGINS__ALLOW", "fixture".as_ref())];
    let list = run(sandbox.jiayuan(&["plugins", "list"]).envs(allow));
    list.assert_success();
    assert!(list.stdout.contains("loaded       fixture"), "{}", list.describe());

    set_sidecar_value(&plugins.join("fixture"), "rustc", "rustc 1.80.0 (elsewhere)");
    let list = run(sandbox.jiayuan(&["plugins", "list"]).envs(allow));
    let hint = format!("`cargo xtask plugins build --manifest-path {} --out ", written.display());
    assert!(list.stdout.contains(&hint), "the hint fits an out-of-tree plugin\n{}", list.describe());
}
