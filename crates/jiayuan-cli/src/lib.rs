//! The library half of the `jiayuan` binary: serving a started host, the demo and `jiayuan users`,
//! shared with the workspace integration tests.

use anyhow::Context;

pub mod demo;
pub mod ledger;
pub mod users;

/// How often expired browser sessions are deleted.
const SESSION_SWEEP: std::time::Duration = std::time::Duration::from_secs(3600);

/// Serves a started host until Ctrl-C, printing `banner` once listening.
pub async fn run_host(host: jiayuan_host::runtime::Host, banner: Option<String>) -> anyhow::Result<()> {
    let listen = host.settings.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen} (is another jiayuan running? change server.listen)"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, "listening");
    if let Some(b) = banner {
        println!("{}", b.replace("{addr}", &addr.to_string()));
    } else {
        println!("jiayuan listening on http://{addr}  (health: http://{addr}/api/health)");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let scheduler = host.settings.scheduler.enabled.then(|| {
        let engine = host.engine.clone();
        let every = host.settings.scheduler.tick;
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            jiayuan_host::scheduler::run(engine, every, async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await
        })
    });
    // Expired sessions no longer authenticate; this only keeps the table small.
    let housekeeping = {
        let engine = host.engine.clone();
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SESSION_SWEEP);
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        match engine.store().delete_expired_sessions(engine.clock().now()).await {
                            Ok(0) => {}
                            Ok(n) => tracing::debug!(sessions = n, "expired sessions removed"),
                            Err(e) => tracing::warn!(error = %e, "removing expired sessions failed; retrying later"),
                        }
                    }
                    _ = rx.changed() => break,
                }
            }
        })
    };
    let auth =
        jiayuan_server::Auth::new(host.engine.store().clone(), host.engine.clock().clone(), host.settings.auth.clone())
            .await
            .context("preparing authentication")?;
    let mut rx = stop_rx.clone();
    let server = jiayuan_server::serve(listener, host.engine.clone(), auth, async move {
        let _ = rx.wait_for(|stop| *stop).await;
    });
    let ctrl_c = async {
        shutdown_signal().await;
        tracing::info!("shutting down");
    };
    tokio::select! {
        res = server => res.context("serving HTTP")?,
        _ = ctrl_c => {}
    }
    let _ = stop_tx.send(true);
    if let Some(s) = scheduler {
        let _ = s.await;
    }
    let _ = housekeeping.await;
    Ok(())
}

/// Ctrl-C, or SIGTERM (what systemd and container runtimes send).
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stop with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
