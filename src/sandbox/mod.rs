//! The sandbox: a simulated Kubernetes cluster served over loopback HTTP.
//!
//! It speaks the Kubernetes API closely enough for real `kubectl` and kube-rs (see
//! `shared/fixtures/` for what it imitates), runs simulated controllers (Deployment,
//! ReplicaSet, Argo Rollouts, a kubelet, Endpoints, ingress-nginx's Ingress status, garbage
//! collection) on its own clock, and seeds a world with canary apps (one per traffic router:
//! HTTPRoute, replica ratio, ingress-nginx, Argo Rollouts), a blue/green and a rolling-update
//! app in `staging` and `production`. The cockpit talks to it only over HTTP, exactly as to a
//! real cluster.

pub mod admission;
pub mod auth;
pub mod client;
pub mod clock;
pub mod control;
pub mod controllers;
pub mod defaults;
pub mod discovery;
pub mod error;
pub mod faults;
pub mod logs;
pub mod metrics;
pub mod patch;
pub mod prom;
pub mod proto;
pub mod resources;
pub mod seed;
pub mod selector;
pub mod server;
pub mod store;
pub mod table;
#[cfg(test)]
pub mod test_fixtures;
pub mod traffic;
pub mod validate;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use clock::Clock;
use store::Store;

/// How to run a sandbox.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Address of the Prometheus listener (`/metrics` and the HTTP API).
    pub prometheus_listen: SocketAddr,
    /// Seconds of traffic history simulated at start, so charts have a past.
    pub backfill_seconds: i64,
    pub seed: u64,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Start with a clock that only moves through the control API (tests).
    pub manual_clock: bool,
    /// Where the simulated clock starts (default: now).
    pub clock_start: Option<jiff::Timestamp>,
    /// Changes kept for watches; older resourceVersions get 410 Gone.
    pub history_limit: usize,
    /// How often idle watches get a BOOKMARK (the real server: about a minute).
    pub bookmark_interval: Duration,
    /// Seed the demo world (staging and production apps).
    pub world: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            prometheus_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            backfill_seconds: 1800,
            seed: 1,
            speed: 1.0,
            manual_clock: false,
            clock_start: None,
            history_limit: 50_000,
            bookmark_interval: Duration::from_secs(60),
            world: true,
        }
    }
}

/// The shared state behind the HTTP server and the controllers.
pub struct Sandbox {
    pub store: Store,
    pub faults: faults::Faults,
    pub metrics: metrics::Metrics,
    pub bookmark_interval: Duration,
    pub seed: u64,
    /// The Flux controllers' next-due times (see `controllers::flux`).
    pub flux: controllers::flux::FluxState,
}

/// A running sandbox: its address and the means to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub prometheus_addr: SocketAddr,
    pub sandbox: Arc<Sandbox>,
    cancel: CancellationToken,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn prometheus_url(&self) -> String {
        format!("http://{}", self.prometheus_addr)
    }

    /// A kubeconfig with one cluster, one user (the admin token) and one context `sandbox`.
    pub fn kubeconfig(&self) -> String {
        kubeconfig_for(&self.url(), auth::ADMIN_TOKEN)
    }

    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.kubeconfig())
    }

    /// Stop accepting connections and stop the controllers.
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A kubeconfig for a sandbox at `url` with the given bearer token.
pub fn kubeconfig_for(url: &str, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: sandbox
  cluster:
    server: {url}
contexts:
- name: sandbox
  context:
    cluster: sandbox
    user: sandbox-admin
    namespace: staging
current-context: sandbox
users:
- name: sandbox-admin
  user:
    token: {token}
preferences: {{}}
"
    )
}

/// Build the sandbox (seeding the world) and serve it on `cfg.listen`.
pub async fn start(cfg: Config) -> std::io::Result<Running> {
    let start = cfg.clock_start.unwrap_or_else(jiff::Timestamp::now);
    let clock = if cfg.manual_clock {
        Arc::new(Clock::manual(start))
    } else {
        Arc::new(Clock::real_from(start, cfg.speed))
    };
    let sandbox = Arc::new(Sandbox {
        store: Store::new(clock, cfg.seed, cfg.history_limit),
        faults: faults::Faults::default(),
        metrics: metrics::Metrics::default(),
        bookmark_interval: cfg.bookmark_interval,
        seed: cfg.seed,
        flux: Default::default(),
    });
    seed::base(&sandbox);
    if cfg.world {
        seed::world(&sandbox);
    }
    let listener = TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let prom_listener = TcpListener::bind(cfg.prometheus_listen).await?;
    let prometheus_addr = prom_listener.local_addr()?;
    sandbox.metrics.set_instance(prometheus_addr.to_string());
    let now = sandbox.store.clock.now().as_second();
    sandbox
        .metrics
        .traffic
        .start_at(now - cfg.backfill_seconds.clamp(0, metrics::RETENTION_MS / 1000));
    sandbox.metrics.step(&sandbox);
    let cancel = CancellationToken::new();
    tokio::spawn(controllers::run(sandbox.clone(), cancel.clone()));
    tokio::spawn(metrics::run(sandbox.clone(), cancel.clone()));
    tokio::spawn(metrics::serve(
        prom_listener,
        sandbox.clone(),
        cancel.clone(),
    ));
    tokio::spawn(serve(listener, sandbox.clone(), cancel.clone()));
    Ok(Running {
        addr,
        prometheus_addr,
        sandbox,
        cancel,
    })
}

async fn serve(listener: TcpListener, sb: Arc<Sandbox>, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, _) = match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("sandbox accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let sb = sb.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| server::handle(sb.clone(), req));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = cancel.cancelled() => {}
                r = conn => {
                    if let Err(e) = r {
                        tracing::debug!("sandbox connection ended: {e}");
                    }
                }
            }
        });
    }
}
