//! The command line: `kockpit sandbox` and friends.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use color_eyre::eyre::{Context, Result};

use crate::cluster::actions::Verb;
use crate::{command, sandbox};

#[derive(Debug, Parser)]
#[command(
    name = "kockpit",
    version,
    about = "A terminal cockpit for Kubernetes releases"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub cockpit: CockpitArgs,
}

/// How the cockpit finds its environments, keys and colours.
#[derive(Debug, clap::Args)]
pub struct CockpitArgs {
    /// Config file (default: $XDG_CONFIG_HOME/kockpit/config.toml, if it exists).
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// An environment: NAME=CONTEXT/NAMESPACE (repeatable; replaces the config's envs).
    #[arg(long = "env", value_name = "NAME=CONTEXT/NAMESPACE")]
    pub envs: Vec<String>,
    /// Kubeconfig to read contexts from (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "PATH", global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Audit log file (default: $XDG_STATE_HOME/kockpit/audit.jsonl).
    #[arg(long, value_name = "PATH", global = true)]
    pub audit_log: Option<PathBuf>,
    /// Prometheus URL for environments given with --env.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Key bindings patching the defaults (default: $XDG_CONFIG_HOME/kockpit/keymap.toml).
    #[arg(long, value_name = "PATH")]
    pub keymap: Option<PathBuf>,
    /// Theme: dark, light, high-contrast, monochrome, or a theme file.
    #[arg(long, value_name = "NAME|PATH")]
    pub theme: Option<String>,
    /// Show everything, change nothing.
    #[arg(long, global = true)]
    pub read_only: bool,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once; boxing buys nothing
pub enum Command {
    /// Serve the simulated cluster (Kubernetes API over plain HTTP on loopback) until SIGINT/SIGTERM.
    Sandbox(SandboxArgs),
    /// Verify or show the audit log of operator actions.
    Audit(crate::audit::cli::AuditArgs),
    /// Canary: step the weight to the next configured step (--full: all the way).
    Promote(crate::command::PromoteArgs),
    /// Canary: weight back to 0 (Argo Rollouts: abort).
    Abort(crate::command::ActionArgs),
    /// Blue/green: point the Service at the other colour (refused unless all its pods are Ready).
    Flip(crate::command::ActionArgs),
    /// Roll back: a Deployment to the previous (or --to-revision) revision; a canary aborts;
    /// blue/green flips back.
    Rollback(crate::command::RollbackArgs),
    /// Pause the app's rollout.
    Pause(crate::command::ActionArgs),
    /// Resume the app's rollout.
    Resume(crate::command::ActionArgs),
    /// Rolling restart (kubectl rollout restart).
    Restart(crate::command::ActionArgs),
    /// Rollback drills: list the scenarios, run one, show the history.
    Drill(crate::drill::cli::DrillArgs),
    /// Watch one app's new version and roll it back automatically (after a cancellable
    /// countdown) when its error ratio or p99 breaches the thresholds.
    Guard(crate::drill::cli::GuardArgs),
    /// Release sessions: open, shelve, resume, conclude (exit checklist), abandon; list, show.
    Release(crate::release::cli::ReleaseArgs),
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub action: Option<SandboxAction>,
    /// Address for the Kubernetes API (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Address for the Prometheus side: `/metrics` and the Prometheus HTTP API.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub prometheus_listen: SocketAddr,
    /// Seconds of traffic history to simulate at start (0 to 3600).
    #[arg(long, default_value_t = 1800)]
    pub backfill: i64,
    /// Write a kubeconfig for the sandbox here (one cluster, context `sandbox`).
    #[arg(long)]
    pub write_kubeconfig: Option<PathBuf>,
    /// Seed for names, uids and everything random in the simulation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Stop the clock; it moves only through POST /sandbox/v1/clock (for tests).
    #[arg(long)]
    pub manual_clock: bool,
    /// Start the simulated clock at this time (RFC 3339), for reproducible runs.
    #[arg(long)]
    pub clock_start: Option<jiff::Timestamp>,
    /// Seconds between watch BOOKMARK events.
    #[arg(long, default_value_t = 60)]
    pub bookmark_seconds: u64,
    /// Changes kept for watches; a watch from an older resourceVersion gets 410 Gone.
    #[arg(long, default_value_t = 50_000)]
    pub history: usize,
}

#[derive(Debug, Subcommand)]
pub enum SandboxAction {
    /// Inject, list and clear faults in a running sandbox.
    Fault(FaultArgs),
}

#[derive(Debug, clap::Args)]
pub struct FaultArgs {
    /// The sandbox's Kubernetes URL; default: the server of the current context in $KUBECONFIG.
    #[arg(long, global = true, env = "KOCKPIT_SANDBOX")]
    pub server: Option<String>,
    #[command(subcommand)]
    pub command: FaultCommand,
}

#[derive(Debug, Subcommand)]
pub enum FaultCommand {
    /// Inject a fault into one app (optionally one version) of an environment.
    Add(FaultAdd),
    /// List faults with their ids, windows and whether they are active.
    List,
    /// Clear one fault by id, or all of them.
    Clear {
        /// The fault to clear; all when omitted.
        id: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).multiple(false)))]
pub struct FaultAdd {
    /// Environment (namespace), e.g. `production` (for --api-delay: all when omitted).
    #[arg(long = "env", default_value = "")]
    pub namespace: String,
    /// App (the `app` label), e.g. `checkout` (not used by --api-delay).
    #[arg(long, default_value = "")]
    pub app: String,
    /// Only this version: an image tag (`1.5.0`) or a track/colour label (`canary`, `green`).
    #[arg(long)]
    pub version: Option<String>,
    /// Answer this fraction of requests (0..1) with 5xx.
    #[arg(long, group = "kind")]
    pub error_ratio: Option<f64>,
    /// Add this many milliseconds to every request.
    #[arg(long, group = "kind")]
    pub latency_ms: Option<f64>,
    /// Make containers crash shortly after they start (CrashLoopBackOff).
    #[arg(long, group = "kind")]
    pub crash_loop: bool,
    /// Make readiness probes fail.
    #[arg(long, group = "kind")]
    pub readiness_failure: bool,
    /// New pods take this many extra seconds to become Ready.
    #[arg(long, group = "kind")]
    pub slow_rollout: Option<f64>,
    /// Hold API writes (POST/PUT/PATCH/DELETE) in the environment this many seconds.
    #[arg(long, group = "kind")]
    pub api_delay: Option<f64>,
    /// Start this many seconds from now.
    #[arg(long)]
    pub delay: Option<f64>,
    /// End after this many seconds (default: until cleared).
    #[arg(long)]
    pub duration: Option<f64>,
}

pub fn main() -> Result<()> {
    color_eyre::install()?;
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Sandbox(SandboxArgs {
            action: Some(SandboxAction::Fault(f)),
            ..
        })) => crate::sandbox::client::run(f),
        Some(Command::Sandbox(args)) => run_sandbox(args),
        Some(Command::Audit(args)) => {
            let config_log = crate::config::file::load(cli.cockpit.config.as_deref())
                .ok()
                .flatten()
                .and_then(|c| c.audit_log);
            crate::audit::cli::run(args, cli.cockpit.audit_log.clone().or(config_log))
        }
        Some(Command::Promote(a)) => {
            let verb = if a.full {
                Verb::PromoteFull
            } else {
                Verb::Promote
            };
            command::run(verb, a.common, None, globals(&cli.cockpit))
        }
        Some(Command::Rollback(a)) => command::run(
            Verb::Rollback,
            a.common,
            a.to_revision,
            globals(&cli.cockpit),
        ),
        Some(Command::Abort(a)) => command::run(Verb::Abort, a, None, globals(&cli.cockpit)),
        Some(Command::Flip(a)) => command::run(Verb::Flip, a, None, globals(&cli.cockpit)),
        Some(Command::Pause(a)) => command::run(Verb::Pause, a, None, globals(&cli.cockpit)),
        Some(Command::Resume(a)) => command::run(Verb::Resume, a, None, globals(&cli.cockpit)),
        Some(Command::Restart(a)) => command::run(Verb::Restart, a, None, globals(&cli.cockpit)),
        Some(Command::Drill(a)) => {
            std::process::exit(crate::drill::cli::run(a, globals(&cli.cockpit)))
        }
        Some(Command::Guard(a)) => {
            std::process::exit(crate::drill::cli::guard(a, globals(&cli.cockpit)))
        }
        Some(Command::Release(a)) => {
            std::process::exit(crate::release::cli::run(a, globals(&cli.cockpit)))
        }
        None => run_cockpit(cli.cockpit),
    }
}

fn globals(c: &CockpitArgs) -> command::Globals {
    command::Globals {
        config: c.config.clone(),
        envs: c.envs.clone(),
        kubeconfig: c.kubeconfig.clone(),
        audit_log: c.audit_log.clone(),
        read_only: c.read_only,
    }
}

/// Print a configuration error (it names the file and line) and exit with status 2.
fn config_error(e: impl std::fmt::Display) -> ! {
    eprintln!("kockpit: {e}");
    std::process::exit(2)
}

/// Everything the cockpit needs, from flags and files; a bad file ends the program here,
/// before the terminal is taken over.
fn cockpit_options(args: CockpitArgs) -> crate::tui::Options {
    use crate::config::{file, keymap::Keymap, theme};
    let config = file::load(args.config.as_deref())
        .unwrap_or_else(|e| config_error(e))
        .unwrap_or_default();
    let envs: Vec<file::EnvConfig> = if args.envs.is_empty() {
        config.envs.clone()
    } else {
        args.envs
            .iter()
            .map(|s| file::parse_env_flag(s).unwrap_or_else(|e| config_error(e)))
            .map(|mut e| {
                if e.prometheus.is_none() {
                    e.prometheus = args.prometheus.clone();
                }
                e
            })
            .collect()
    };
    let keymap = Keymap::load(args.keymap.as_deref()).unwrap_or_else(|e| config_error(e));
    let colors = theme::ColorEnv::detect();
    let theme_name = args.theme.clone().or(config.theme.clone());
    let theme =
        theme::Theme::load(theme_name.as_deref(), &colors).unwrap_or_else(|e| config_error(e));
    crate::tui::Options {
        envs: envs
            .into_iter()
            .map(|e| crate::tui::EnvSpec {
                name: e.name,
                context: e.context,
                namespace: e.namespace,
                prometheus: e.prometheus,
                production: e.production,
                read_only: e.read_only,
            })
            .collect(),
        kubeconfig: args.kubeconfig.or(config.kubeconfig.clone()),
        read_only: args.read_only || config.read_only,
        chart_window: i64::from(config.chart_minutes) * 60,
        ui: crate::ui::UiContext {
            theme,
            help: keymap.help(),
            max_error_ratio: config.thresholds.max_error_ratio,
            max_p99_seconds: config.thresholds.max_p99_seconds,
        },
        keymap,
        config: args.config.clone(),
        audit_log: args
            .audit_log
            .clone()
            .or(config.audit_log.clone())
            .unwrap_or_else(crate::audit::default_path),
        canary_steps: config.canary_steps.clone(),
        guard: config.guard.enabled.then(|| config.guard.clone()),
        thresholds: config.thresholds,
        settings: config.clone(),
        routers: config
            .apps
            .iter()
            .filter_map(|(app, c)| {
                c.router
                    .as_deref()
                    .and_then(crate::cluster::actions::RouterKind::parse)
                    .map(|r| (app.clone(), r))
            })
            .collect(),
    }
}

fn run_cockpit(args: CockpitArgs) -> Result<()> {
    let opts = cockpit_options(args);
    init_file_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .wrap_err("starting the async runtime")?;
    rt.block_on(crate::tui::run(opts))
}

/// The cockpit owns the terminal: its log goes to a file under the XDG state dir.
fn init_file_tracing() {
    use etcetera::BaseStrategy;
    let Ok(dirs) = etcetera::choose_base_strategy() else {
        return;
    };
    let dir = dirs
        .state_dir()
        .unwrap_or_else(|| dirs.data_dir())
        .join("kockpit");
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("kockpit.log"))
    else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KOCKPIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KOCKPIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run_sandbox(args: SandboxArgs) -> Result<()> {
    init_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("starting the async runtime")?;
    rt.block_on(async move {
        let cfg = sandbox::Config {
            listen: args.listen,
            prometheus_listen: args.prometheus_listen,
            backfill_seconds: args.backfill,
            seed: args.seed,
            speed: args.speed,
            manual_clock: args.manual_clock,
            clock_start: args.clock_start,
            history_limit: args.history,
            bookmark_interval: std::time::Duration::from_secs(args.bookmark_seconds.max(1)),
            world: true,
        };
        let running = sandbox::start(cfg)
            .await
            .wrap_err_with(|| format!("listening on {}", args.listen))?;
        if let Some(path) = &args.write_kubeconfig {
            running
                .write_kubeconfig(path)
                .wrap_err_with(|| format!("writing kubeconfig {}", path.display()))?;
        }
        // Whoever started us may stop reading stdout; the sandbox keeps serving regardless.
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "kubernetes: {}", running.url());
        let _ = writeln!(out, "prometheus: {}", running.prometheus_url());
        if let Some(path) = &args.write_kubeconfig {
            let _ = writeln!(out, "kubeconfig: {}", path.display());
        }
        let _ = out.flush();
        drop(out);
        wait_for_shutdown().await;
        running.shutdown();
        Ok(())
    })
}

async fn wait_for_shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
        _ = async { match hup.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
    }
}
