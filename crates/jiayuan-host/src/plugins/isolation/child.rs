//! The child's side of process isolation: what `jiayuan plugin-runner` runs.
//!
//! The child confines itself first (`no_new_privs`; Landlock where the kernel allows: read-only
//! access to its plugin folder and the system's shared libraries, nothing else on disk, no TCP,
//! no signals or abstract sockets outside its sandbox), before any plugin code — the library's
//! constructors included — runs. Then it loads the plugin through the same checks as the host
//! (sidecar, permissions, pin, sha256, declaration, constructor, manifest), reports
//! [`ToParent::Ready`] (or [`ToParent::Refused`]), and runs every [`ToChild::Call`] on the
//! plugin's own threads with a [`RemoteContext`] whose requests become [`ToParent::Ask`] frames.
//! It ends when its stdin closes, and dies with its parent.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use super::frame::{FrameError, Ready, ToChild, ToParent, read_frame, write_frame};
use super::remote::{HostReply, HostRequest, RemoteContext, Upstream};
use crate::plugins::{PluginRegistry, PluginSettings};

/// What the parent tells a runner on its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerArgs {
    /// `plugins.dir`.
    pub dir: PathBuf,
    /// The plugin's sidecar, inside `dir`.
    pub sidecar: PathBuf,
    /// The plugin id the parent allowed.
    pub id: String,
    /// The sha256 the configuration pins, if any.
    pub pin: Option<String>,
    /// Threads for the plugin's hooks.
    pub threads: usize,
    /// How long the constructor and manifest may take.
    pub start_timeout: Duration,
}

impl RunnerArgs {
    /// The arguments after the subcommand, as the parent passes them.
    pub(crate) fn to_args(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--dir".into(),
            self.dir.clone().into(),
            "--sidecar".into(),
            self.sidecar.clone().into(),
            "--id".into(),
            self.id.clone().into(),
            "--threads".into(),
            self.threads.to_string().into(),
            "--start-timeout-ms".into(),
            self.start_timeout.as_millis().to_string().into(),
        ];
        if let Some(pin) = &self.pin {
            args.push("--pin".into());
            args.push(pin.into());
        }
        args
    }
}

/// Why a runner stopped with an error (its parent sees the pipe close and restarts it).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The pipe to the parent failed or carried a bad frame.
    #[error("{0}")]
    Frame(String),
}

impl From<FrameError> for RunnerError {
    fn from(e: FrameError) -> Self {
        RunnerError::Frame(e.to_string())
    }
}

/// The shared libraries a plugin library needs (libc, libgcc_s, the loader's cache): readable,
/// never writable, inside the sandbox.
const SYSTEM_LIBRARIES: [&str; 6] = ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib", "/etc/ld.so.cache"];

/// Confines this process before any plugin code runs; says how far it got.
fn confine(folder: &Path) -> String {
    use landlock::{
        ABI, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
        path_beneath_rules,
    };
    let nnp = match rustix::thread::set_no_new_privs(true) {
        Ok(()) => "no_new_privs",
        Err(_) => "no_new_privs refused",
    };
    // Dies with the host, so a killed host leaves no runner behind.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let abi = ABI::V6;
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.handle_access(AccessNet::from_all(abi)))
        .and_then(|r| r.scope(Scope::from_all(abi)))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules([folder], AccessFs::from_read(abi))))
        .and_then(|r| r.add_rules(path_beneath_rules(SYSTEM_LIBRARIES, AccessFs::from_read(abi))))
        .and_then(|r| r.restrict_self());
    let landlock = match status {
        Ok(s) => match s.ruleset {
            RulesetStatus::FullyEnforced => "landlock fully enforced (plugin folder read-only, no network)".to_owned(),
            RulesetStatus::PartiallyEnforced => "landlock partially enforced (an older kernel)".to_owned(),
            RulesetStatus::NotEnforced => "landlock not available on this kernel".to_owned(),
        },
        Err(e) => format!("landlock not applied: {e}"),
    };
    format!("{nnp}, {landlock}")
}

/// Runs a plugin for its parent over `input` and `output` (the child's stdin and stdout).
pub fn run_plugin_runner(
    args: &RunnerArgs,
    mut input: impl Read,
    output: impl Write + Send + 'static,
) -> Result<(), RunnerError> {
    let folder = args.sidecar.parent().unwrap_or(&args.dir).to_owned();
    let sandbox = confine(&folder);
    let out: Arc<Mutex<Box<dyn Write + Send>>> = Arc::new(Mutex::new(Box::new(output)));
    let send = {
        let out = out.clone();
        move |message: &ToParent| -> Result<(), FrameError> {
            let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
            write_frame(&mut *out, message)
        }
    };

    let mut settings = PluginSettings::new(args.dir.clone(), vec![args.id.clone()]);
    settings.threads = args.threads;
    settings.call_timeout = args.start_timeout;
    // Calls have no timeout in here: the parent kills this process when one runs too long.
    settings.quarantine_after_panics = 0;
    if let Some(pin) = &args.pin {
        settings.pins.insert(args.id.clone(), pin.clone());
    }
    let mut registry = PluginRegistry::new(settings);
    let handle = match registry.load(&args.sidecar) {
        Ok(handle) => handle,
        Err(e) => {
            send(&ToParent::Refused { error: e.to_string() })?;
            return Ok(());
        }
    };
    let manifest_json = serde_json::to_string(handle.manifest())
        .map_err(|e| RunnerError::Frame(format!("the manifest does not serialise: {e}")))?;
    send(&ToParent::Ready(Ready {
        id: handle.id().to_owned(),
        version: handle.info().version.clone(),
        api_version: handle.info().api_version,
        manifest_json,
        sandbox,
    }))?;

    let pending: Pending = Arc::default();
    let asks = Arc::new(AtomicU64::new(0));
    while let Some(message) = read_frame::<ToChild>(&mut input)? {
        match message {
            ToChild::Call { call, hook, snapshot } => {
                let upstream = PipeUpstream { call, out: out.clone(), pending: pending.clone(), asks: asks.clone() };
                let ctx = RemoteContext::new(snapshot, Arc::new(upstream));
                let out = out.clone();
                handle.run_detached(ctx, hook, move |result| {
                    let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
                    let _ = write_frame(&mut *out, &ToParent::Done { call, result });
                });
            }
            ToChild::Reply { call, ask, reply } => {
                let waiting = pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&(call, ask));
                if let Some(tx) = waiting {
                    let _ = tx.send(reply);
                }
            }
        }
    }
    Ok(())
}

type Pending = Arc<Mutex<HashMap<(u64, u64), oneshot::Sender<HostReply>>>>;

/// Requests of one call, sent to the parent as frames.
struct PipeUpstream {
    call: u64,
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    pending: Pending,
    asks: Arc<AtomicU64>,
}

impl Upstream for PipeUpstream {
    fn ask(&self, request: HostRequest) -> oneshot::Receiver<HostReply> {
        let (tx, rx) = oneshot::channel();
        let ask = self.asks.fetch_add(1, Ordering::Relaxed);
        let expects_reply = !matches!(request, HostRequest::Log { .. });
        if expects_reply {
            self.pending.lock().unwrap_or_else(PoisonError::into_inner).insert((self.call, ask), tx);
        }
        let sent = {
            let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
            write_frame(&mut *out, &ToParent::Ask { call: self.call, ask, request })
        };
        if sent.is_err() {
            // The parent is gone: the receiver reports the call abandoned.
            self.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&(self.call, ask));
        }
        rx
    }
}

/// The runner's frame streams, for the CLI: stdin, and a duplicate of stdout. File descriptor 1
/// itself is pointed at stderr, so a plugin that prints cannot corrupt the frames.
pub fn stdio() -> io::Result<(io::Stdin, std::fs::File)> {
    use std::os::fd::AsFd;
    let frames = rustix::io::dup(io::stdout().as_fd())?;
    rustix::stdio::dup2_stdout(io::stderr().as_fd())?;
    Ok((io::stdin(), std::fs::File::from(frames)))
}
