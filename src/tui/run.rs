//! The event loop: key presses, watcher and poller messages and ticks go through
//! [`crate::app::update`]; a frame is drawn only when the update says the screen changed.

use std::path::PathBuf;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use jiff::Timestamp;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::terminal;
use crate::app::msg::{Cmd, Msg};
use crate::app::state::{AppState, Conn, EnvState};
use crate::app::update;
use crate::cluster::logs::LogFollower;
use crate::config::keymap::Keymap;
use crate::metrics::MetricsClient;
use crate::ui::{self, UiContext};

/// One environment to show.
#[derive(Debug, Clone)]
pub struct EnvSpec {
    pub name: String,
    /// Kubeconfig context; none = the current one.
    pub context: Option<String>,
    pub namespace: String,
    pub prometheus: Option<String>,
    pub production: bool,
    pub read_only: bool,
}

/// Everything the cockpit needs to run.
pub struct Options {
    /// Empty: start the built-in sandbox and show its staging and production.
    pub envs: Vec<EnvSpec>,
    pub kubeconfig: Option<PathBuf>,
    pub read_only: bool,
    /// Chart window, seconds.
    pub chart_window: i64,
    pub keymap: Keymap,
    pub ui: UiContext,
}

/// How often metrics are refreshed.
const METRICS_EVERY: Duration = Duration::from_secs(10);

/// A Kubernetes client for a kubeconfig context, or why there is none.
async fn client_for(kubeconfig: Option<&PathBuf>, context: Option<&str>) -> Result<Client, String> {
    let kc = match kubeconfig {
        Some(p) => {
            Kubeconfig::read_from(p).map_err(|e| format!("kubeconfig {}: {e}", p.display()))?
        }
        None => Kubeconfig::read().map_err(|e| format!("kubeconfig: {e}"))?,
    };
    if let Some(ctx) = context
        && !kc.contexts.iter().any(|c| c.name == ctx)
    {
        let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(format!(
            "context `{ctx}` not in the kubeconfig; known contexts: {}",
            known.join(", ")
        ));
    }
    let opts = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let cfg = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .map_err(|e| format!("context {}: {e}", context.unwrap_or("(current)")))?;
    Client::try_from(cfg).map_err(|e| format!("client: {e}"))
}

/// Refresh one environment's metrics: the apps and window come from `want`.
async fn poll_metrics(
    env: usize,
    namespace: String,
    client: Option<MetricsClient>,
    mut want: watch::Receiver<(Vec<String>, i64)>,
    tx: UnboundedSender<Msg>,
    cancel: CancellationToken,
) {
    loop {
        let (apps, window) = want.borrow_and_update().clone();
        for app in apps {
            let result = match &client {
                Some(c) => {
                    // About one point per chart column, on a grid that stays put between
                    // refreshes so the charts do not shimmer.
                    let step = (window / 120).max(1);
                    let end = Timestamp::now().as_second().div_euclid(step) * step;
                    c.fetch_app(&namespace, &app, end - window, end, step)
                        .await
                        .map_err(|e| e.to_string())
                }
                None => Err("no Prometheus configured for this environment".to_string()),
            };
            if tx.send(Msg::Metrics { env, app, result }).is_err() {
                return;
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(METRICS_EVERY) => {}
            r = want.changed() => if r.is_err() { return },
        }
    }
}

/// Per-environment runtime handles.
struct EnvRuntime {
    logs: Option<LogFollower>,
    metrics: watch::Sender<(Vec<String>, i64)>,
}

fn run_cmds(cmds: Vec<Cmd>, envs: &mut [EnvRuntime]) -> bool {
    let mut quit = false;
    for c in cmds {
        match c {
            Cmd::Quit => quit = true,
            Cmd::FollowLogs { env, app, pods } => {
                if let Some(f) = envs.get_mut(env).and_then(|e| e.logs.as_mut()) {
                    f.follow(&app, &pods);
                }
            }
            Cmd::WatchMetrics { env, apps, window } => {
                if let Some(e) = envs.get(env) {
                    let _ = e.metrics.send((apps, window));
                }
            }
        }
    }
    quit
}

/// Run the cockpit until the operator quits (or a signal arrives).
pub async fn run(opts: Options) -> Result<()> {
    let cancel = CancellationToken::new();
    let (tx, mut rx) = unbounded_channel::<Msg>();
    let mut sandbox = None;
    let specs: Vec<(EnvSpec, Result<Client, String>)> = if opts.envs.is_empty() {
        let running = crate::sandbox::start(crate::sandbox::Config::default())
            .await
            .wrap_err("starting the built-in sandbox")?;
        let cfg = kube::Config::new(running.url().parse().wrap_err("sandbox URL")?);
        let client = Client::try_from(cfg).map_err(|e| e.to_string());
        let prom = Some(running.prometheus_url());
        sandbox = Some(running);
        ["staging", "production"]
            .iter()
            .map(|n| {
                let spec = EnvSpec {
                    name: n.to_string(),
                    context: None,
                    namespace: n.to_string(),
                    prometheus: prom.clone(),
                    production: *n == "production",
                    read_only: false,
                };
                (spec, client.clone())
            })
            .collect()
    } else {
        let mut out = Vec::new();
        for spec in &opts.envs {
            let client = client_for(opts.kubeconfig.as_ref(), spec.context.as_deref()).await;
            out.push((spec.clone(), client));
        }
        out
    };

    let now = Timestamp::now();
    let mut envs = Vec::new();
    let mut runtimes = Vec::new();
    for (i, (spec, client)) in specs.iter().enumerate() {
        let mut env = EnvState {
            name: spec.name.clone(),
            context: spec.context.clone().unwrap_or_else(|| {
                if sandbox.is_some() {
                    "sandbox".into()
                } else {
                    "(current)".into()
                }
            }),
            namespace: spec.namespace.clone(),
            production: spec.production,
            read_only: spec.read_only || opts.read_only,
            ..Default::default()
        };
        let (mtx, mrx) = watch::channel((Vec::new(), opts.chart_window));
        let metrics = match &spec.prometheus {
            Some(url) => match MetricsClient::new(url) {
                Ok(c) => Some(c),
                Err(e) => {
                    env.conn = Conn::Error(e.to_string());
                    None
                }
            },
            None => None,
        };
        tokio::spawn(poll_metrics(
            i,
            spec.namespace.clone(),
            metrics,
            mrx,
            tx.clone(),
            cancel.clone(),
        ));
        let logs = match client {
            Ok(c) => {
                crate::cluster::watch::spawn(i, c, &spec.namespace, &tx, &cancel);
                Some(LogFollower::new(
                    i,
                    c.clone(),
                    &spec.namespace,
                    tx.clone(),
                    cancel.clone(),
                ))
            }
            Err(e) => {
                env.conn = Conn::Error(e.clone());
                None
            }
        };
        envs.push(env);
        runtimes.push(EnvRuntime { logs, metrics: mtx });
    }
    let mut state = AppState::new(envs, now, opts.chart_window);
    state.sandbox = sandbox.is_some();
    state.read_only = opts.read_only;
    run_cmds(state.start(), &mut runtimes);

    let mut guard = terminal::enter().wrap_err("taking over the terminal")?;
    let size = guard.terminal.size().unwrap_or_default();
    state.size = (size.width, size.height);
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut dirty = true;
    loop {
        if dirty {
            guard
                .terminal
                .draw(|f| ui::render(f, &state, &opts.ui))
                .wrap_err("drawing")?;
            dirty = false;
        }
        let first = tokio::select! {
            ev = keys.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    if state.filter_input.is_some() {
                        Some(Msg::FilterKey(k))
                    } else {
                        opts.keymap.action_for(&k).map(Msg::Action)
                    }
                }
                Some(Ok(Event::Resize(w, h))) => Some(Msg::Resize(w, h)),
                Some(Ok(_)) => None,
                // The terminal is gone (input closed): leave.
                Some(Err(_)) | None => break,
            },
            m = rx.recv() => m,
            _ = tick.tick() => Some(Msg::Tick(Timestamp::now())),
            _ = async { match term.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => break,
            _ = async { match hup.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => break,
        };
        // Take everything that is already waiting before drawing once.
        let mut batch: Vec<Msg> = first.into_iter().collect();
        while let Ok(m) = rx.try_recv() {
            batch.push(m);
            if batch.len() >= 10_000 {
                break;
            }
        }
        let mut quit = false;
        for m in batch {
            let out = update::update(&mut state, m);
            dirty |= out.dirty;
            quit |= run_cmds(out.cmds, &mut runtimes);
        }
        if quit || state.quit {
            break;
        }
    }
    cancel.cancel();
    drop(guard);
    if let Some(s) = sandbox {
        s.shutdown();
    }
    Ok(())
}
