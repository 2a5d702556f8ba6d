//! `kockpit drill list|run|history` and `kockpit guard`.
//!
//! Exit codes: 0 done (a drill ran to its end and reported, whatever the outcome; the guard
//! rolled back, its `--duration` passed, or it was stopped) · 1 the cluster, sandbox or
//! Prometheus failed · 2 usage or configuration · 3 refused (production without
//! `allow_production`, a real cluster without `bad_image`, another drill running) · 4 read-only
//! · 7 the audit log could not be written.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use crate::audit::Operator;
use crate::cluster::actions::RouterKind;
use crate::cluster::client;
use crate::command::{self, Globals};
use crate::config::file::{self, Config, EnvConfig, Thresholds};

use super::DrillError;
use super::guard::{End, Guard, Settings};
use super::probe::Probe;
use super::report;
use super::run::DrillRun;
use super::scenario::{self, SCENARIOS};

#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    #[command(subcommand)]
    pub command: DrillCommand,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once; boxing buys nothing
pub enum DrillCommand {
    /// The scenarios: what each injects, what "recovered" means, the right actions.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Run a drill: a fault at a random moment, your response timed, a report at the end.
    Run(RunArgs),
    /// Past drills with trends per scenario.
    History {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The scenario (see `kockpit drill list`).
    pub scenario: String,
    /// Environment: a name from the config or a global --env, or NAME=CONTEXT/NAMESPACE.
    #[arg(long = "env", value_name = "ENV", default_value = "staging")]
    pub env: String,
    /// The app to drill on (default: the scenario's app in the sandbox's world).
    #[arg(long)]
    pub app: Option<String>,
    /// Seed for the moment of the fault (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The fault comes at a random moment within this many seconds (default: [drill]
    /// window_seconds, else 300).
    #[arg(long, value_name = "SECONDS")]
    pub window: Option<f64>,
    /// Seconds the metrics must stay under the thresholds to count as recovered (default:
    /// [drill] hold_seconds, else 60).
    #[arg(long, value_name = "SECONDS")]
    pub hold: Option<f64>,
    /// Give up this many seconds after the fault.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800.0)]
    pub timeout: f64,
    /// Seconds between looks at the audit log and the metrics.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub poll: f64,
    /// PromQL rate window in seconds (of the cluster's clock).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub rate_window: u64,
    /// Slow burn: seconds (of the cluster's clock) per step.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub step: f64,
    /// Prometheus URL (default: the environment's `prometheus` in the config).
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Real clusters: the known-bad image to roll out (default: [drill] bad_image).
    #[arg(long, value_name = "IMAGE")]
    pub bad_image: Option<String>,
    /// Print the report as one JSON object (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct GuardArgs {
    /// The app to guard.
    pub app: String,
    /// Environment: a name from the config or a global --env, or NAME=CONTEXT/NAMESPACE.
    #[arg(long = "env", value_name = "ENV")]
    pub env: String,
    /// Prometheus URL (default: the environment's `prometheus` in the config).
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Seconds between checks (default: [guard] interval_seconds, else 10).
    #[arg(long, value_name = "SECONDS")]
    pub interval: Option<f64>,
    /// Failed checks in a row that make a breach (default: [guard] failed_checks, else 3).
    #[arg(long, value_name = "N")]
    pub checks: Option<u32>,
    /// Seconds to cancel before the rollback (default: [guard] countdown_seconds, else 15).
    #[arg(long, value_name = "SECONDS")]
    pub countdown: Option<f64>,
    /// Seconds after a flip or rolling update to watch (default: [guard]
    /// after_change_seconds, else 300).
    #[arg(long, value_name = "SECONDS")]
    pub after_change: Option<f64>,
    /// Error ratio limit, 0..1 (default: [guard.apps.APP], else [thresholds]).
    #[arg(long, value_name = "RATIO")]
    pub max_error_ratio: Option<f64>,
    /// p99 limit in seconds (default: [guard.apps.APP], else [thresholds]).
    #[arg(long, value_name = "SECONDS")]
    pub max_p99: Option<f64>,
    /// PromQL rate window in seconds (of the cluster's clock).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub rate_window: u64,
    /// Stop after this many seconds (default: until a rollback or Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
}

fn usage(msg: impl Into<String>) -> DrillError {
    DrillError::Usage(msg.into())
}

fn check_secs(what: &str, v: f64, zero_ok: bool) -> Result<f64, DrillError> {
    if v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0)) && v <= 86_400.0 {
        Ok(v)
    } else {
        Err(usage(format!(
            "{what} must be {} and at most 86400 seconds, got {v}",
            if zero_ok { "0 or more" } else { "more than 0" }
        )))
    }
}

struct Resolved {
    config: Config,
    env: EnvConfig,
    context: String,
    client: kube::Client,
    operator: Operator,
    audit_log: PathBuf,
}

async fn resolve(env: &str, globals: &Globals) -> Result<Resolved, DrillError> {
    let config = file::load(globals.config.as_deref())
        .map_err(|e| usage(e.to_string()))?
        .unwrap_or_default();
    let env =
        command::resolve_env(env, globals, &config).map_err(|command::Fail(_, m)| usage(m))?;
    if globals.read_only || config.read_only || env.read_only {
        return Err(DrillError::Denied(format!(
            "{} is read-only (--read-only or the config): drills and the guard change things; nothing was changed",
            env.name
        )));
    }
    let kubeconfig = globals.kubeconfig.clone().or(config.kubeconfig.clone());
    let kube_user = client::kube_user(kubeconfig.as_deref(), env.context.as_deref());
    let operator = Operator::current(kube_user);
    let client = client::for_context(
        kubeconfig.as_deref(),
        env.context.as_deref(),
        &client::operator_tag(&operator),
    )
    .await
    .map_err(usage)?;
    let audit_log = globals
        .audit_log
        .clone()
        .or(config.audit_log.clone())
        .unwrap_or_else(crate::audit::default_path);
    Ok(Resolved {
        context: env.context.clone().unwrap_or_else(|| "(current)".into()),
        config,
        env,
        client,
        operator,
        audit_log,
    })
}

fn router_of(config: &Config, app: &str) -> Option<RouterKind> {
    config
        .apps
        .get(app)
        .and_then(|a| a.router.as_deref())
        .and_then(RouterKind::parse)
}

/// `kockpit drill …`; returns the exit code.
pub fn run(args: DrillArgs, globals: Globals) -> i32 {
    match args.command {
        DrillCommand::List { json } => {
            list(json);
            0
        }
        DrillCommand::History { json } => match report::history(&report::dir()) {
            Ok(rs) => {
                if json {
                    println!("{}", json!({"drills": rs, "trends": report::trends(&rs)}));
                } else {
                    print!("{}", report::history_text(&rs));
                }
                0
            }
            Err(e) => {
                eprintln!("kockpit: {e}");
                e.exit_code()
            }
        },
        DrillCommand::Run(a) => {
            let json_out = a.json;
            match block_on(run_drill(a, globals)) {
                Ok(()) => 0,
                Err(e) => {
                    if json_out {
                        println!(
                            "{}",
                            json!({"result": "error", "exit_code": e.exit_code(), "error": e.to_string()})
                        );
                    } else {
                        eprintln!("kockpit: {e}");
                    }
                    e.exit_code()
                }
            }
        }
    }
}

fn block_on<F: std::future::Future<Output = Result<(), DrillError>>>(
    f: F,
) -> Result<(), DrillError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| DrillError::Failed(format!("starting the async runtime: {e}")))?
        .block_on(f)
}

fn list(json: bool) {
    if json {
        let v: Vec<_> = SCENARIOS
            .iter()
            .map(|s| {
                json!({"name": s.name, "title": s.title, "app": s.app, "injects": s.injects,
                       "recovered": s.recovered, "right_actions": s.right_names()})
            })
            .collect();
        println!("{}", json!({"scenarios": v}));
        return;
    }
    for s in &SCENARIOS {
        println!("{}  ({}, app {})", s.name, s.title, s.app);
        println!("    injects:   {}", s.injects);
        println!("    recovered: {}", s.recovered);
        println!("    right:     {}", s.right_names().join(" or "));
    }
}

async fn run_drill(a: RunArgs, globals: Globals) -> Result<(), DrillError> {
    let sc = scenario::find(&a.scenario)?;
    let r = resolve(&a.env, &globals).await?;
    let window = check_secs(
        "--window",
        a.window.or(r.config.drill.window_seconds).unwrap_or(300.0),
        true,
    )?;
    let hold = check_secs(
        "--hold",
        a.hold.or(r.config.drill.hold_seconds).unwrap_or(60.0),
        false,
    )?;
    let timeout = check_secs("--timeout", a.timeout, false)?;
    let poll = check_secs("--poll", a.poll, false)?;
    let step = check_secs("--step", a.step, false)?;
    if a.rate_window == 0 {
        return Err(usage("--rate-window must be at least 1 second"));
    }
    let app = a.app.clone().unwrap_or_else(|| sc.app.to_string());
    let drill = DrillRun {
        scenario: sc,
        context: r.context.clone(),
        client: r.client.clone(),
        operator: r.operator.clone(),
        audit_log: r.audit_log.clone(),
        prometheus: a.prometheus.clone().or(r.env.prometheus.clone()),
        seed: a.seed.unwrap_or_else(rand::random),
        window,
        hold,
        timeout,
        poll,
        rate_window: a.rate_window,
        step,
        thresholds: r.config.thresholds,
        router: router_of(&r.config, &app),
        app,
        bad_image: a.bad_image.clone().or(r.config.drill.bad_image.clone()),
        allow_production: r.config.drill.allow_production,
        canary_steps: r.config.canary_steps.clone(),
        state_file: super::state::path(),
        report_dir: report::dir(),
        env: r.env,
    };
    let report_dir = drill.report_dir.clone();
    let json_out = a.json;
    let mut progress = |line: &str| {
        if json_out {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    let rep = drill.run(&mut progress).await?;
    let (md, js) = report::save(&report_dir, &rep)?;
    if json_out {
        let mut v = serde_json::to_value(&rep)
            .map_err(|e| DrillError::Failed(format!("drill report: {e}")))?;
        v["report_markdown"] = json!(md);
        v["report_json"] = json!(js);
        println!("{v}");
    } else {
        print!("{}", rep.to_text());
        println!("report: {} and {}", md.display(), js.display());
    }
    Ok(())
}

/// `kockpit guard APP --env ENV`; returns the exit code.
pub fn guard(a: GuardArgs, globals: Globals) -> i32 {
    match block_on(run_guard(a, globals)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("kockpit: {e}");
            e.exit_code()
        }
    }
}

async fn run_guard(a: GuardArgs, globals: Globals) -> Result<(), DrillError> {
    let r = resolve(&a.env, &globals).await?;
    let g = &r.config.guard;
    let base: Thresholds = g.apps.get(&a.app).copied().unwrap_or(r.config.thresholds);
    let max_error_ratio = a.max_error_ratio.unwrap_or(base.max_error_ratio);
    if !(max_error_ratio > 0.0 && max_error_ratio <= 1.0) {
        return Err(usage(format!(
            "--max-error-ratio must be greater than 0 and at most 1, got {max_error_ratio}"
        )));
    }
    let max_p99 = check_secs(
        "--max-p99",
        a.max_p99.unwrap_or(base.max_p99_seconds),
        false,
    )?;
    let checks = a.checks.unwrap_or(g.failed_checks);
    if !(1..=100).contains(&checks) {
        return Err(usage(format!(
            "--checks must be between 1 and 100, got {checks}"
        )));
    }
    let settings = Settings {
        thresholds: Thresholds {
            max_error_ratio,
            max_p99_seconds: max_p99,
        },
        interval: check_secs(
            "--interval",
            a.interval.unwrap_or(g.interval_seconds),
            false,
        )?,
        checks,
        countdown: check_secs(
            "--countdown",
            a.countdown.unwrap_or(g.countdown_seconds),
            true,
        )?,
        after_change: check_secs(
            "--after-change",
            a.after_change.unwrap_or(g.after_change_seconds),
            false,
        )?,
    };
    let duration = a
        .duration
        .map(|d| check_secs("--duration", d, false))
        .transpose()?;
    if a.rate_window == 0 {
        return Err(usage("--rate-window must be at least 1 second"));
    }
    let url = a.prometheus.clone().or(r.env.prometheus.clone()).ok_or_else(|| {
        usage(format!(
            "no Prometheus for {}: pass --prometheus URL or set prometheus for the environment in the config",
            r.env.name
        ))
    })?;
    let probe = Probe::new(&url, a.rate_window)?;
    let mut guard = Guard::new(
        r.client.clone(),
        r.env.name.clone(),
        r.context.clone(),
        r.env.namespace.clone(),
        a.app.clone(),
        router_of(&r.config, &a.app),
        r.config.canary_steps.clone(),
        probe,
        settings,
        r.audit_log.clone(),
        r.operator.clone(),
    );
    guard.gitops = r.config.gitops_for(&a.app, &r.env.name).cloned();
    let mut out = |line: &str| {
        use std::io::Write;
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    };
    match guard.run(duration, &mut out).await? {
        End::RolledBack(_) | End::Elapsed | End::Stopped => Ok(()),
    }
}
