//! The parent's side of process isolation: [`Runner`] keeps one child process (the `jiayuan`
//! binary's hidden `plugin-runner` subcommand) for a plugin, and restarts it when it dies.
//!
//! - The child starts with an empty environment (no data key, no database URL, no secret of any
//!   kind reaches it; nothing is passed but its command line), in its plugin folder, and confines
//!   itself (see [`super::child`]).
//! - A supervisor thread owns the child: it waits for it to exit, fails every call in flight with
//!   how it ended (exit status or signal), counts the death, and restarts it after a backoff
//!   (100 ms doubling to 5 s). Too many deaths within the quarantine window quarantine the plugin
//!   and no child is started again.
//! - A call that runs past its timeout gets the child killed (through a pidfd, so never another
//!   process); that counts as a death too.
//! - A reader thread per child routes its frames: requests for host services go to the caller's
//!   task, answers to the caller.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use super::frame::{Ready, ToChild, ToParent, read_frame, write_frame};
use super::remote::{Ask, Responder, Snapshot};
use super::{HookCall, HookResult};

/// What a call hears when the child ended: `Err(cause)`.
pub(crate) type Finished = Result<HookResult, String>;

/// How to start the child.
#[derive(Debug, Clone)]
pub(crate) struct Spawn {
    /// The `jiayuan` executable.
    pub(crate) program: PathBuf,
    /// `plugin-runner` and its arguments.
    pub(crate) args: Vec<OsString>,
    /// The plugin folder (the child's working directory).
    pub(crate) folder: PathBuf,
    /// How long it may take to report ready.
    pub(crate) ready_within: Duration,
}

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    /// The executable did not start.
    #[error("cannot start the plugin runner {}: {source}", program.display())]
    Spawn {
        /// The executable.
        program: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// It started but did not report ready in time, or its pipe broke first.
    #[error("the plugin runner did not report ready: {0}")]
    NotReady(String),
    /// The plugin did not load in the child.
    #[error("{0}")]
    Refused(String),
}

struct Slot {
    asks: mpsc::UnboundedSender<Ask>,
    done: oneshot::Sender<Finished>,
}

struct Live {
    generation: u64,
    pid: u32,
    pidfd: Option<OwnedFd>,
    stdin: Arc<Mutex<ChildStdin>>,
    calls: HashMap<u64, Slot>,
    next_call: u64,
    /// Why the host killed it, if it did.
    killed_for: Option<String>,
}

#[derive(Default)]
struct State {
    live: Option<Live>,
    generation: u64,
    deaths: VecDeque<Instant>,
    restarts: u64,
    quarantine: Option<String>,
    /// The runner was dropped: no restart.
    stopped: bool,
}

struct Shared {
    plugin: String,
    spawn: Spawn,
    death_limit: u32,
    window: Duration,
    state: Mutex<State>,
    /// Bumped whenever a child comes up or goes down.
    changed: watch::Sender<u64>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// A process-isolated plugin's child process, restarted when it dies. Dropping it stops the
/// child for good.
pub(crate) struct Runner {
    shared: Arc<Shared>,
}

impl Drop for Runner {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.stopped = true;
        if let Some(live) = state.live.as_mut() {
            live.killed_for = Some("its host dropped the plugin".into());
            if let Some(fd) = &live.pidfd {
                let _ = rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL);
            }
        }
    }
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.state();
        f.debug_struct("Runner")
            .field("plugin", &self.shared.plugin)
            .field("pid", &state.live.as_ref().map(|l| l.pid))
            .field("restarts", &state.restarts)
            .finish_non_exhaustive()
    }
}

/// Where a call went, to give up on it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dispatched {
    generation: u64,
}

impl Runner {
    /// Starts the first child and waits until it reports its plugin loaded (the caller checks the
    /// manifest it sends). `death_limit` deaths within `window` quarantine (`0`: never).
    pub(crate) fn start(
        plugin: &str,
        spawn: Spawn,
        death_limit: u32,
        window: Duration,
    ) -> Result<(Runner, Ready), StartError> {
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            plugin: plugin.to_owned(),
            spawn,
            death_limit,
            window,
            state: Mutex::new(State::default()),
            changed,
        });
        let (child, ready) = launch(&shared)?;
        let supervisor = shared.clone();
        thread::Builder::new()
            .name(format!("plugin:{plugin}:supervisor"))
            .spawn(move || supervise(&supervisor, child))
            .map_err(|source| StartError::Spawn { program: shared.spawn.program.clone(), source })?;
        Ok((Runner { shared }, ready))
    }

    /// The child's pid, while one runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.shared.state().live.as_ref().map(|l| l.pid)
    }

    /// How many times the child was restarted.
    pub(crate) fn restarts(&self) -> u64 {
        self.shared.state().restarts
    }

    /// Why the plugin is quarantined, once its child died too often.
    pub(crate) fn quarantine(&self) -> Option<String> {
        self.shared.state().quarantine.clone()
    }

    /// Sends a call to the child (waiting while it restarts); its requests arrive on `asks`, its
    /// result on `done`. `Err` when the plugin is quarantined.
    pub(crate) async fn dispatch(
        &self,
        hook: HookCall,
        snapshot: Snapshot,
        asks: mpsc::UnboundedSender<Ask>,
        done: oneshot::Sender<Finished>,
    ) -> Result<Dispatched, String> {
        let mut changed = self.shared.changed.subscribe();
        loop {
            {
                let mut state = self.shared.state();
                if let Some(reason) = &state.quarantine {
                    return Err(reason.clone());
                }
                if let Some(live) = state.live.as_mut() {
                    let call = live.next_call;
                    live.next_call += 1;
                    let generation = live.generation;
                    let stdin = live.stdin.clone();
                    live.calls.insert(call, Slot { asks, done });
                    drop(state);
                    let frame = ToChild::Call { call, hook, snapshot };
                    let written = write_frame(&mut *stdin.lock().unwrap_or_else(PoisonError::into_inner), &frame);
                    if let Err(e) = written {
                        // The child is dying; the supervisor fails the call with how it ended.
                        tracing::warn!(plugin = %self.shared.plugin, error = %e, "could not send a call to the plugin runner");
                    }
                    return Ok(Dispatched { generation });
                }
            }
            if changed.changed().await.is_err() {
                return Err("the plugin runner's supervisor stopped".into());
            }
        }
    }

    /// Kills the child a call went to (if it still runs), because the call hung.
    pub(crate) fn kill_hung(&self, dispatched: Dispatched, why: String) {
        let mut state = self.shared.state();
        let Some(live) = state.live.as_mut().filter(|l| l.generation == dispatched.generation) else { return };
        live.killed_for = Some(why);
        let sent = live.pidfd.as_ref().map(|fd| rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL));
        if !matches!(sent, Some(Ok(()))) {
            tracing::error!(plugin = %self.shared.plugin, pid = live.pid, "could not kill the hung plugin runner");
        }
    }
}

/// Starts one child and waits for its first frame.
fn launch(shared: &Arc<Shared>) -> Result<(Child, Ready), StartError> {
    let spawn = &shared.spawn;
    let mut child = Command::new(&spawn.program)
        .args(&spawn.args)
        .current_dir(&spawn.folder)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| StartError::Spawn { program: spawn.program.clone(), source })?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(StartError::NotReady("its pipes were not set up".into()));
    };
    let pid = child.id();
    let pidfd = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap_or(0))
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    let (first_tx, first) = std_mpsc::channel();
    let generation = {
        let mut state = shared.state();
        state.generation += 1;
        state.generation
    };
    let reader = shared.clone();
    let stdin = Arc::new(Mutex::new(stdin));
    let replies = stdin.clone();
    thread::Builder::new()
        .name(format!("plugin:{}:reader", shared.plugin))
        .spawn(move || read_child(&reader, generation, stdout, &replies, first_tx))
        .map_err(|source| StartError::Spawn { program: spawn.program.clone(), source })?;
    let first = first.recv_timeout(spawn.ready_within);
    let ready = match first {
        Ok(Ok(ToParent::Ready(ready))) => ready,
        other => {
            let _ = child.kill();
            let status = child.wait().map(describe).unwrap_or_else(|e| e.to_string());
            return Err(match other {
                Ok(Ok(ToParent::Refused { error })) => StartError::Refused(error),
                Ok(Ok(_)) => StartError::NotReady("its first frame was not Ready".into()),
                Ok(Err(e)) => StartError::NotReady(format!("{e} ({status})")),
                Err(_) => StartError::NotReady(format!("nothing within {:?} ({status})", spawn.ready_within)),
            });
        }
    };
    tracing::info!(plugin = %shared.plugin, pid, sandbox = %ready.sandbox, "plugin runner ready");
    shared.state().live =
        Some(Live { generation, pid, pidfd, stdin, calls: HashMap::new(), next_call: 0, killed_for: None });
    shared.bump();
    Ok((child, ready))
}

/// Routes one child's frames until its stdout closes.
fn read_child(
    shared: &Shared,
    generation: u64,
    mut stdout: ChildStdout,
    stdin: &Arc<Mutex<ChildStdin>>,
    first: std_mpsc::Sender<Result<ToParent, String>>,
) {
    match read_frame::<ToParent>(&mut stdout) {
        Ok(Some(frame)) => {
            let _ = first.send(Ok(frame));
        }
        Ok(None) => {
            let _ = first.send(Err("it closed its output".into()));
            return;
        }
        Err(e) => {
            let _ = first.send(Err(e.to_string()));
            return;
        }
    }
    loop {
        let frame = match read_frame::<ToParent>(&mut stdout) {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(plugin = %shared.plugin, error = %e, "bad frame from the plugin runner");
                return;
            }
        };
        let mut state = shared.state();
        let Some(live) = state.live.as_mut().filter(|l| l.generation == generation) else { return };
        match frame {
            ToParent::Ask { call, ask, request } => {
                let Some(slot) = live.calls.get(&call) else { continue };
                let stdin = stdin.clone();
                let respond: Responder = Box::new(move |reply| {
                    let frame = ToChild::Reply { call, ask, reply };
                    let _ = write_frame(&mut *stdin.lock().unwrap_or_else(PoisonError::into_inner), &frame);
                });
                let _ = slot.asks.send((request, respond));
            }
            ToParent::Done { call, result } => {
                if let Some(slot) = live.calls.remove(&call) {
                    let _ = slot.done.send(Ok(result));
                }
            }
            ToParent::Ready(_) | ToParent::Refused { .. } => {
                tracing::error!(plugin = %shared.plugin, "the plugin runner sent a second handshake");
            }
        }
    }
}

/// How a child ended, in words.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => {
            let name = match signal {
                6 => " (SIGABRT: aborted)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV: segmentation fault)",
                _ => "",
            };
            format!("killed by signal {signal}{name}")
        }
        (None, None) => status.to_string(),
    }
}

/// Owns the child: waits for it to end, fails its calls, counts the death, restarts it.
fn supervise(shared: &Arc<Shared>, mut child: Child) {
    let plugin = shared.plugin.clone();
    loop {
        let status = child.wait().map(describe).unwrap_or_else(|e| format!("could not be waited for: {e}"));
        let backoff = {
            let mut state = shared.state();
            let live = state.live.take();
            if state.stopped {
                return;
            }
            let cause = match live.as_ref().and_then(|l| l.killed_for.clone()) {
                Some(why) => format!("killed by the host: {why}"),
                None => status.clone(),
            };
            if let Some(live) = live {
                for (_, slot) in live.calls {
                    let _ = slot.done.send(Err(cause.clone()));
                }
            }
            tracing::error!(plugin, cause = %cause, "the plugin runner died");
            let now = Instant::now();
            state.deaths.push_back(now);
            while state.deaths.front().is_some_and(|t| now.duration_since(*t) > shared.window) {
                state.deaths.pop_front();
            }
            let deaths = state.deaths.len();
            if shared.death_limit > 0 && deaths >= shared.death_limit as usize {
                state.quarantine = Some(format!(
                    "its process died {deaths} times within {:?} (limit {}); last: {cause}",
                    shared.window, shared.death_limit
                ));
            }
            let exponent = u32::try_from(deaths.saturating_sub(1)).unwrap_or(u32::MAX).min(6);
            Duration::from_millis(100 * 2u64.pow(exponent)).min(Duration::from_secs(5))
        };
        shared.bump();
        if shared.state().stopped {
            return;
        }
        if shared.state().quarantine.is_some() {
            tracing::error!(plugin, "the plugin runner died too often; not restarting it");
            return;
        }
        thread::sleep(backoff);
        loop {
            match launch(shared) {
                Ok((next, _ready)) => {
                    shared.state().restarts += 1;
                    child = next;
                    break;
                }
                Err(e) => {
                    tracing::error!(plugin, error = %e, "could not restart the plugin runner");
                    let mut state = shared.state();
                    state.deaths.push_back(Instant::now());
                    if shared.death_limit > 0 && state.deaths.len() >= shared.death_limit as usize {
                        state.quarantine = Some(format!("its process could not be restarted: {e}"));
                        drop(state);
                        shared.bump();
                        return;
                    }
                    drop(state);
                    thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }
}
