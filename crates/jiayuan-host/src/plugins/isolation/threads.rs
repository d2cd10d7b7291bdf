//! [`PluginThreads`]: the plain OS threads a plugin's code runs on, so no hook ever occupies one
//! of the runtime's workers.
//!
//! Each plugin owns a small fixed pool. A call is a [`Ticket`]: queued, then running on one of
//! the pool's threads, then done. A caller that gives up on a call (its timeout passed)
//! [`Ticket::abandon`]s it: a queued call is dropped unrun; a running one is asked to stop, which a
//! hook that is merely waiting (a pending future) does at once, since [`block_on`] drops the
//! future on its next wake-up. A hook that blocks its thread (a busy loop, a synchronous sleep)
//! cannot be preempted: when it has not returned shortly after, the caller marks its thread
//! *stuck* ([`Ticket::mark_stuck`]) until the hook returns, if ever. When every thread of the pool
//! is stuck the plugin can take no more calls, and [`super::super::PluginHandle`] quarantines it.
//!
//! The threads are not the runtime's blocking pool: the runtime's shutdown never waits for them,
//! and the process exits with them still stuck.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// Polls `future` to completion on the current thread, parking between wake-ups. The plugin's
/// futures await only the host's channels, which wake the parked thread.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => thread::park(),
        }
    }
}

/// [`block_on`], giving up (and dropping the future) when `cancelled()` holds at a wake-up.
pub(crate) fn block_on_unless<F: Future>(future: F, cancelled: impl Fn() -> bool) -> Option<F::Output> {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return Some(output),
            Poll::Pending if cancelled() => return None,
            Poll::Pending => thread::park(),
        }
    }
}

/// Wakes the thread parked in [`block_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Queued,
    Running,
    /// Abandoned while running, asked to stop.
    Abandoned,
    /// Abandoned before it started: the worker drops it.
    Dropped,
    /// Abandoned while running and did not stop: its thread is stuck until the hook returns.
    Stuck,
    Done,
}

/// One call's place in the pool.
#[derive(Debug)]
pub(crate) struct Ticket {
    phase: Mutex<Phase>,
    /// The thread running it, to wake when it is abandoned.
    runner: Mutex<Option<Thread>>,
    pool: Arc<Counts>,
}

impl Ticket {
    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The caller gives up on the call. A queued call is dropped unrun (`false`); a running one
    /// is asked to stop and its thread woken (`true`: see [`Ticket::mark_stuck`]).
    pub(crate) fn abandon(&self) -> bool {
        let mut phase = self.phase();
        match *phase {
            Phase::Queued => {
                *phase = Phase::Dropped;
                false
            }
            Phase::Running => {
                *phase = Phase::Abandoned;
                drop(phase);
                if let Some(thread) = self.runner.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
                    thread.unpark();
                }
                true
            }
            Phase::Abandoned | Phase::Dropped | Phase::Stuck | Phase::Done => false,
        }
    }

    /// Whether the caller gave up on the call (checked by the job at every wake-up).
    pub(crate) fn abandoned(&self) -> bool {
        matches!(*self.phase(), Phase::Abandoned | Phase::Stuck | Phase::Dropped)
    }

    /// An abandoned call that did not stop: counts its thread stuck until the hook returns.
    /// Returns whether it did (`false` when the call has returned meanwhile).
    pub(crate) fn mark_stuck(&self) -> bool {
        let mut phase = self.phase();
        if *phase == Phase::Abandoned {
            *phase = Phase::Stuck;
            self.pool.stuck.fetch_add(1, Ordering::SeqCst);
            true
        } else {
            false
        }
    }

    /// A worker takes the call: `false` when it was abandoned while queued.
    fn start(&self) -> bool {
        let mut phase = self.phase();
        if *phase == Phase::Queued {
            *phase = Phase::Running;
            *self.runner.lock().unwrap_or_else(PoisonError::into_inner) = Some(thread::current());
            true
        } else {
            false
        }
    }

    fn finish(&self) {
        let mut phase = self.phase();
        if *phase == Phase::Stuck {
            self.pool.stuck.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("a stuck plugin thread returned from its abandoned call");
        }
        *phase = Phase::Done;
    }
}

#[derive(Debug, Default)]
struct Counts {
    stuck: AtomicUsize,
}

type Job = (Arc<Ticket>, Box<dyn FnOnce(&Ticket) + Send>);

/// A plugin's own threads.
#[derive(Debug)]
pub(crate) struct PluginThreads {
    jobs: Mutex<mpsc::Sender<Job>>,
    counts: Arc<Counts>,
    threads: usize,
}

/// Why a job could not be queued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpawnError {
    /// The OS refused a thread.
    #[error("cannot start a thread for plugin `{plugin}`: {source}")]
    Thread {
        /// The plugin id.
        plugin: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl PluginThreads {
    /// Starts `threads` (at least one) threads named `plugin:<id>`.
    pub(crate) fn start(plugin: &str, threads: usize) -> Result<PluginThreads, SpawnError> {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads {
            let rx = rx.clone();
            thread::Builder::new()
                .name(format!("plugin:{plugin}:{n}"))
                .spawn(move || worker(&rx))
                .map_err(|source| SpawnError::Thread { plugin: plugin.to_owned(), source })?;
        }
        Ok(PluginThreads { jobs: Mutex::new(tx), counts: Arc::new(Counts::default()), threads })
    }

    /// How many threads the pool has.
    pub(crate) fn size(&self) -> usize {
        self.threads
    }

    /// How many of them are stuck in an abandoned call.
    pub(crate) fn stuck(&self) -> usize {
        self.counts.stuck.load(Ordering::SeqCst)
    }

    /// Queues `job`; it runs on one of the pool's threads unless abandoned first.
    pub(crate) fn submit(&self, job: impl FnOnce(&Ticket) + Send + 'static) -> Arc<Ticket> {
        let ticket =
            Arc::new(Ticket { phase: Mutex::new(Phase::Queued), runner: Mutex::new(None), pool: self.counts.clone() });
        let sent = self.jobs.lock().unwrap_or_else(PoisonError::into_inner).send((ticket.clone(), Box::new(job)));
        if sent.is_err() {
            // Every worker is gone (they only end when the pool is dropped): nothing will run it.
            *ticket.phase() = Phase::Dropped;
        }
        ticket
    }
}

fn worker(jobs: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let next = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok((ticket, job)) = next else { return };
        if !ticket.start() {
            continue;
        }
        // Plugin panics are caught by the plugin's own guard and come back as errors; this only
        // keeps the thread alive through a panic of the host's side of the job.
        if catch_unwind(AssertUnwindSafe(|| job(&ticket))).is_err() {
            tracing::error!("a plugin call's host side panicked on the plugin's thread");
        }
        ticket.finish();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;
    use std::time::Duration;

    use super::*;

    /// Generous: only a guard against a hanging test, never a measure of speed.
    const HANG_GUARD: Duration = Duration::from_secs(60);

    #[test]
    fn jobs_run_on_the_plugins_own_named_threads() {
        let pool = PluginThreads::start("probe", 2).expect("threads start");
        let (tx, rx) = channel();
        pool.submit(move |_| {
            let _ = tx.send(thread::current().name().map(str::to_owned));
        });
        let name = rx.recv_timeout(HANG_GUARD).expect("the job ran").expect("a named thread");
        assert!(name.starts_with("plugin:probe:"), "{name}");
        assert_eq!((pool.size(), pool.stuck()), (2, 0));
    }

    #[test]
    fn an_abandoned_running_call_counts_its_thread_stuck_until_it_returns() {
        let pool = PluginThreads::start("probe", 1).expect("threads start");
        let (started_tx, started) = channel();
        let (release, released) = channel::<()>();
        let ticket = pool.submit(move |_| {
            let _ = started_tx.send(());
            let _ = released.recv();
        });
        started.recv_timeout(HANG_GUARD).expect("the job started");
        assert!(ticket.abandon(), "a running call is asked to stop");
        assert!(!ticket.abandon(), "once");
        assert_eq!(pool.stuck(), 0, "not stuck until the caller says so");
        assert!(ticket.mark_stuck(), "it did not stop: its thread is stuck");
        assert!(!ticket.mark_stuck(), "counted once");
        assert_eq!(pool.stuck(), 1);

        // A call queued behind the stuck one and abandoned before it starts never runs.
        let (ran_tx, ran) = channel();
        let queued = pool.submit(move |_| {
            let _ = ran_tx.send("queued");
        });
        assert!(!queued.abandon(), "a queued call is dropped, no thread is stuck for it");
        let (after_tx, after) = channel();
        pool.submit(move |_| {
            let _ = after_tx.send("after");
        });
        let _ = release.send(());
        assert_eq!(after.recv_timeout(HANG_GUARD), Ok("after"), "the thread is free again");
        assert!(ran.try_recv().is_err(), "the abandoned queued call did not run");
        assert_eq!(pool.stuck(), 0);
    }

    #[test]
    fn an_abandoned_waiting_call_stops_at_once_and_frees_its_thread() {
        let pool = PluginThreads::start("probe", 1).expect("threads start");
        let (started_tx, started) = channel();
        let (ended_tx, ended) = channel();
        let ticket = pool.submit(move |ticket| {
            let _ = started_tx.send(());
            let out = block_on_unless(std::future::pending::<()>(), || ticket.abandoned());
            let _ = ended_tx.send(out.is_none());
        });
        started.recv_timeout(HANG_GUARD).expect("the job started");
        assert!(ticket.abandon());
        assert_eq!(ended.recv_timeout(HANG_GUARD), Ok(true), "the pending future was dropped");
        // The job returned, so there is nothing to count stuck.
        let (after_tx, after) = channel();
        pool.submit(move |_| {
            let _ = after_tx.send(());
        });
        after.recv_timeout(HANG_GUARD).expect("the thread is free");
        assert!(!ticket.mark_stuck());
        assert_eq!(pool.stuck(), 0);
    }

    #[test]
    fn block_on_runs_a_future_woken_from_another_thread() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            let _ = tx.send(41);
        });
        assert_eq!(block_on(async { rx.await.map(|v| v + 1) }), Ok(42));
        sender.join().expect("the sender ends");
    }
}
