//! The event loop: key presses, watcher and poller messages and ticks go through
//! [`crate::app::update`]; a frame is drawn only when the update says the screen changed.

use std::path::PathBuf;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use jiff::Timestamp;
use kube::Client;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::terminal;
use crate::app::dialog::{Access, Availability};
use crate::app::msg::{Cmd, GuardEvent, Msg};
use crate::app::state::{AppState, Conn, EnvState};
use crate::app::update;
use crate::audit::Operator;
use crate::cluster::actions::{
    self, ExecuteOptions, Goal, Operation, Plan, PlanOptions, RouterKind, Verb,
};
use crate::cluster::client;
use crate::cluster::logs::LogFollower;
use crate::config::file::{GuardConfig, Thresholds};
use crate::config::keymap::Keymap;
use crate::drill::guard::{Guard, Settings};
use crate::drill::probe::Probe;
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
    /// Where actions are recorded.
    pub audit_log: PathBuf,
    /// The config file given with --config (drills started from the cockpit read it too).
    pub config: Option<PathBuf>,
    /// Canary steps for promote (percent).
    pub canary_steps: Vec<u32>,
    /// Per-app router overrides from the config.
    pub routers: std::collections::BTreeMap<String, RouterKind>,
    /// The rollback guard (`[guard]` with `enabled = true`): run for every environment with
    /// a cluster and a Prometheus that is not read-only.
    pub guard: Option<GuardConfig>,
    /// `[thresholds]`: the guard's limits where `[guard.apps.APP]` sets none.
    pub thresholds: Thresholds,
    /// The whole config: releases read their smoke checks, windows and thresholds from it.
    pub settings: crate::config::file::Config,
}

/// PromQL rate window of the cockpit's guard, seconds (as `kockpit guard`'s default).
const GUARD_RATE_WINDOW: u64 = 60;

/// Where one environment's guard runs.
struct GuardSite {
    env: usize,
    client: Client,
    name: String,
    context: String,
    namespace: String,
    prometheus: String,
    /// Who the guard's rollbacks are recorded as (with this environment's kube user).
    operator: Operator,
}

/// The rollback guard of one environment: every `interval_seconds`, a check of each app (as
/// `kockpit guard` does, see [`Guard::check`]); on a breach a countdown the operator can
/// cancel (`Cmd::CancelGuard`), then the rollback through the action code, audited as
/// automatic. The countdown and the outcome go to the core as `Msg::Guard`.
async fn run_guard(
    site: GuardSite,
    config: GuardConfig,
    thresholds: Thresholds,
    ctx: ActionCtx,
    mut apps: watch::Receiver<Vec<String>>,
    mut cancels: UnboundedReceiver<()>,
    cancel: CancellationToken,
) {
    let env = site.env;
    let probe = match Probe::new(&site.prometheus, GUARD_RATE_WINDOW) {
        Ok(p) => p,
        Err(e) => {
            let _ = ctx.tx.send(Msg::Guard {
                env,
                event: GuardEvent::RolledBack {
                    app: "(all apps)".into(),
                    result: Err(format!("the guard cannot start: {e}")),
                },
            });
            return;
        }
    };
    let mut guards: std::collections::BTreeMap<String, Guard> = Default::default();
    // Progress lines are for `kockpit guard`; the cockpit shows the countdown and outcome.
    let mut quiet = |_: &str| {};
    loop {
        let list = apps.borrow_and_update().clone();
        guards.retain(|app, _| list.contains(app));
        for app in list {
            if cancel.is_cancelled() {
                return;
            }
            let g = guards.entry(app.clone()).or_insert_with(|| {
                let mut g = Guard::new(
                    site.client.clone(),
                    site.name.clone(),
                    site.context.clone(),
                    site.namespace.clone(),
                    app.clone(),
                    ctx.routers.get(&app).copied(),
                    ctx.steps.clone(),
                    probe.clone(),
                    Settings {
                        thresholds: config.apps.get(&app).copied().unwrap_or(thresholds),
                        interval: config.interval_seconds,
                        checks: config.failed_checks,
                        countdown: config.countdown_seconds,
                        after_change: config.after_change_seconds,
                    },
                    ctx.audit_log.clone(),
                    site.operator.clone(),
                );
                g.gitops = ctx.settings.gitops_for(&app, &site.name).cloned();
                g
            });
            let Some(breach) = g.check(&mut quiet).await else {
                continue;
            };
            // A cancel from an earlier countdown does not count for this one.
            while cancels.try_recv().is_ok() {}
            let countdown = Duration::from_secs_f64(config.countdown_seconds);
            let deadline = Timestamp::now()
                .checked_add(jiff::SignedDuration::from_secs_f64(
                    config.countdown_seconds,
                ))
                .unwrap_or_else(|_| Timestamp::now());
            let _ = ctx.tx.send(Msg::Guard {
                env,
                event: GuardEvent::Countdown {
                    app: app.clone(),
                    what: breach.what.clone(),
                    failure: breach.failure.clone(),
                    deadline,
                },
            });
            let cancelled = tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(countdown) => false,
                c = cancels.recv() => match c {
                    Some(()) => true,
                    None => return,
                },
            };
            let event = if cancelled {
                g.cancel(breach, &mut quiet).await;
                GuardEvent::Cancelled { app: app.clone() }
            } else {
                GuardEvent::RolledBack {
                    app: app.clone(),
                    result: match g.roll_back(&breach.why).await {
                        Ok(Some(change)) => Ok(change),
                        Ok(None) => Ok("already rolled back; nothing sent".into()),
                        Err(e) => Err(e.to_string()),
                    },
                }
            };
            if ctx.tx.send(Msg::Guard { env, event }).is_err() {
                return;
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs_f64(config.interval_seconds)) => {}
        }
    }
}

/// How often metrics are refreshed.
const METRICS_EVERY: Duration = Duration::from_secs(10);

/// What the action tasks need of the runtime.
#[derive(Clone)]
struct ActionCtx {
    tx: UnboundedSender<Msg>,
    operator: Operator,
    audit_log: PathBuf,
    /// For drills started from the cockpit (the embedded sandbox's is written at start).
    kubeconfig: Option<PathBuf>,
    config: Option<PathBuf>,
    steps: Vec<u32>,
    routers: std::collections::BTreeMap<String, RouterKind>,
    /// The whole config (GitOps repositories per app and environment).
    settings: crate::config::file::Config,
}

/// Which actions `app` allows: its release kind decides which apply, a SelfSubjectAccessReview
/// per object decides which are permitted.
async fn check_access(
    env: usize,
    client: Client,
    ns: String,
    app: String,
    router: Option<RouterKind>,
    tx: UnboundedSender<Msg>,
) {
    let release = actions::detect(&client, &ns, &app, router).await;
    let access = match release {
        Err(e) => Access {
            app: app.clone(),
            release: String::new(),
            verbs: Verb::ALL
                .iter()
                .map(|v| (*v, Availability::NotApplicable(e.to_string())))
                .collect(),
        },
        Ok(release) => {
            let mut verbs = Vec::new();
            for v in Verb::ALL {
                let a = match actions::required(&release, v) {
                    Err(why) => Availability::NotApplicable(why),
                    Ok(perms) => match actions::check_permissions(&client, &ns, &perms).await {
                        Ok(answers) => match answers.into_iter().flatten().next() {
                            Some(why) => Availability::Denied(why),
                            None => Availability::Available,
                        },
                        // Unknown: offer it; the plan checks again and the server decides.
                        Err(_) => Availability::Available,
                    },
                };
                verbs.push((v, a));
            }
            Access {
                app: app.clone(),
                release: release.describe(),
                verbs,
            }
        }
    };
    let _ = tx.send(Msg::Access { env, access });
}

#[allow(clippy::too_many_arguments)]
async fn plan_action(
    env: usize,
    client: Client,
    ns: String,
    app: String,
    verb: Verb,
    to_revision: Option<i64>,
    gitops: Option<crate::config::file::GitopsConfig>,
    ctx: ActionCtx,
) {
    let opts = PlanOptions {
        to_revision,
        steps: ctx.steps.clone(),
        router: ctx.routers.get(&app).copied(),
        gitops,
        ..PlanOptions::default()
    };
    let result = async {
        let plan = actions::plan(&client, &ns, &app, verb, &opts)
            .await
            .map_err(|e| e.to_string())?;
        if !plan.noop
            && plan.git.is_none()
            && let Some(denied) = actions::denied_reason(&client, &plan)
                .await
                .map_err(|e| e.to_string())?
        {
            return Err(format!("not permitted: {denied}"));
        }
        let history = match &plan.goal {
            Goal::Revision { deployment, .. } => actions::history(&client, &ns, deployment)
                .await
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        Ok((plan, history))
    }
    .await;
    let _ = ctx.tx.send(Msg::Planned {
        env,
        app,
        verb,
        result,
    });
}

async fn execute_action(env: usize, client: Client, op: Operation, plan: Plan, ctx: ActionCtx) {
    let opts = ExecuteOptions {
        dry_run: false,
        audit_log: ctx.audit_log.clone(),
    };
    let result = actions::execute(&client, &plan, &op, &opts)
        .await
        .map(|done| {
            if let (Some(pushed), Some(git)) = (&done.git, &plan.git)
                && let Some(owner) = git.owner.clone()
            {
                tokio::spawn(super::releases::watch_sync(
                    env,
                    client.clone(),
                    plan.namespace.clone(),
                    plan.app.clone(),
                    owner,
                    pushed.clone(),
                    git.objects.clone(),
                    ctx.tx.clone(),
                ));
                return format!(
                    "committed {} and pushed to {}: {} · audit #{}",
                    pushed
                        .commits
                        .last()
                        .map(|c| &c[..c.len().min(12)])
                        .unwrap_or(""),
                    pushed.remote_branch,
                    pushed
                        .edits
                        .iter()
                        .map(|e| e.describe())
                        .collect::<Vec<_>>()
                        .join("; "),
                    done.audit.map(|a| a.1).unwrap_or_default()
                );
            }
            let mut text = if done.applied.unchanged {
                "already as asked, nothing sent".to_string()
            } else {
                format!(
                    "applied in {} ms: {}",
                    done.duration_ms,
                    done.applied.plan.changes.join("; ")
                )
            };
            if done.applied.retried {
                text.push_str(" (retried after a concurrent change)");
            }
            if let Some((_, o)) = done.audit {
                text.push_str(&format!(" · audit #{o}"));
            }
            text
        })
        .map_err(|e| e.to_string());
    let _ = ctx.tx.send(Msg::Executed {
        env,
        app: plan.app.clone(),
        verb: plan.verb,
        result,
    });
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
    client: Option<Client>,
    name: String,
    context: String,
    namespace: String,
    kube_user: Option<String>,
    prometheus: Option<String>,
    /// The guard's app list and its cancel key, when the guard runs here.
    guard_apps: Option<watch::Sender<Vec<String>>>,
    guard_cancel: Option<UnboundedSender<()>>,
    /// Wakes the release poller (after a step was recorded).
    release_wake: Option<std::sync::Arc<tokio::sync::Notify>>,
}

impl EnvRuntime {
    /// `drill run` flags that point the child at this environment.
    fn drill_args(&self, ctx: &ActionCtx) -> Vec<String> {
        let mut args = vec![
            "--env".to_string(),
            format!("{}={}/{}", self.name, self.context, self.namespace),
            "--audit-log".to_string(),
            ctx.audit_log.display().to_string(),
        ];
        if let Some(c) = &ctx.config {
            args.extend(["--config".to_string(), c.display().to_string()]);
        }
        if let Some(k) = &ctx.kubeconfig {
            args.extend(["--kubeconfig".to_string(), k.display().to_string()]);
        }
        if let Some(p) = &self.prometheus {
            args.extend(["--prometheus".to_string(), p.clone()]);
        }
        args
    }
}

/// Run `kockpit drill run SCENARIO` as a child (its fault, timeline and report are its own);
/// the cockpit shows its banner from the drill state file and its summary when it ends.
async fn run_drill(env: usize, args: Vec<String>, scenario: String, tx: UnboundedSender<Msg>) {
    let result = async {
        let exe = std::env::current_exe().map_err(|e| format!("finding kockpit: {e}"))?;
        let out = tokio::process::Command::new(exe)
            .args(["drill", "run", &scenario, "--json"])
            .args(&args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("starting the drill: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| {
                let err = String::from_utf8_lossy(&out.stderr);
                format!("no report ({})", err.lines().last().unwrap_or("no output"))
            })?;
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            return Err(e.to_string());
        }
        let secs = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_f64())
                .map_or("—".to_string(), |s| format!("{s:.0} s"))
        };
        Ok(format!(
            "{scenario}: {} · detect {} · mitigate {} · recover {} · right action: {}",
            v.get("outcome").and_then(|o| o.as_str()).unwrap_or("?"),
            secs("time_to_detect_seconds"),
            secs("time_to_mitigate_seconds"),
            secs("time_to_recover_seconds"),
            match v.get("right_action").and_then(|r| r.as_bool()) {
                Some(true) => "yes",
                Some(false) => "no",
                None => "none taken",
            }
        ))
    }
    .await;
    let _ = tx.send(Msg::DrillDone { env, result });
}

fn run_cmds(cmds: Vec<Cmd>, envs: &mut [EnvRuntime], ctx: &ActionCtx) -> bool {
    let mut quit = false;
    for c in cmds {
        match c {
            Cmd::StartDrill { env, scenario } => {
                if let Some(e) = envs.get(env) {
                    tokio::spawn(run_drill(env, e.drill_args(ctx), scenario, ctx.tx.clone()));
                }
            }
            Cmd::CheckAccess { env, app } => {
                if let Some(e) = envs.get(env)
                    && let Some(client) = &e.client
                {
                    tokio::spawn(check_access(
                        env,
                        client.clone(),
                        e.namespace.clone(),
                        app.clone(),
                        ctx.routers.get(&app).copied(),
                        ctx.tx.clone(),
                    ));
                }
            }
            Cmd::Plan {
                env,
                app,
                verb,
                to_revision,
            } => match envs.get(env).and_then(|e| e.client.clone().map(|c| (e, c))) {
                Some((e, client)) => {
                    let gitops = ctx.settings.gitops_for(&app, &e.name).cloned();
                    tokio::spawn(plan_action(
                        env,
                        client,
                        e.namespace.clone(),
                        app,
                        verb,
                        to_revision,
                        gitops,
                        ctx.clone(),
                    ));
                }
                None => {
                    let _ = ctx.tx.send(Msg::Planned {
                        env,
                        app,
                        verb,
                        result: Err("no connection to this environment's cluster".into()),
                    });
                }
            },
            Cmd::Execute { env, plan, reason } => {
                if let Some(e) = envs.get(env)
                    && let Some(client) = e.client.clone()
                {
                    let mut operator = ctx.operator.clone();
                    operator.kube_user = e.kube_user.clone();
                    let op = Operation {
                        environment: e.name.clone(),
                        context: e.context.clone(),
                        operator,
                        reason,
                        drill: crate::drill::state::active_for(&e.name, &e.namespace).is_some(),
                        automatic: false,
                    };
                    tokio::spawn(execute_action(env, client, op, *plan, ctx.clone()));
                }
            }
            Cmd::CancelGuard { env } => {
                if let Some(c) = envs.get(env).and_then(|e| e.guard_cancel.as_ref()) {
                    let _ = c.send(());
                }
            }
            Cmd::ReleaseStep {
                env,
                app,
                version,
                step,
                text,
                checklist,
            } => {
                if let Some(e) = envs.get(env) {
                    let mut operator = ctx.operator.clone();
                    operator.kube_user = e.kube_user.clone();
                    let req = super::releases::StepRequest {
                        env,
                        environment: e.name.clone(),
                        context: e.context.clone(),
                        namespace: e.namespace.clone(),
                        app,
                        version,
                        operator,
                        drill: crate::drill::state::active_for(&e.name, &e.namespace).is_some(),
                        step,
                        text,
                        checklist: checklist.map(|c| *c),
                        audit_log: ctx.audit_log.clone(),
                    };
                    tokio::spawn(super::releases::record(
                        req,
                        ctx.tx.clone(),
                        e.release_wake.clone(),
                    ));
                }
            }
            Cmd::Quit => quit = true,
            Cmd::FollowLogs { env, app, pods } => {
                if let Some(f) = envs.get_mut(env).and_then(|e| e.logs.as_mut()) {
                    f.follow(&app, &pods);
                }
            }
            Cmd::WatchMetrics { env, apps, window } => {
                if let Some(e) = envs.get(env) {
                    if let Some(g) = &e.guard_apps {
                        let _ = g.send(apps.clone());
                    }
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
    let mut sandbox_kubeconfig: Option<TempDir> = None;
    let operator = Operator::current(None);
    let agent = client::operator_tag(&operator);
    let specs: Vec<(EnvSpec, Result<Client, String>)> = if opts.envs.is_empty() {
        let running = crate::sandbox::start(crate::sandbox::Config::default())
            .await
            .wrap_err("starting the built-in sandbox")?;
        let client = client::for_url(&running.url(), &agent);
        // A kubeconfig for the embedded sandbox, so drills started from the cockpit (a child
        // `kockpit drill run`) reach it like any cluster.
        sandbox_kubeconfig = tempfile_dir().ok().filter(|d| {
            running
                .write_kubeconfig(&d.path().join("kubeconfig"))
                .is_ok()
        });
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
            let client =
                client::for_context(opts.kubeconfig.as_deref(), spec.context.as_deref(), &agent)
                    .await;
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
        runtimes.push(EnvRuntime {
            logs,
            metrics: mtx,
            client: client.as_ref().ok().cloned(),
            name: spec.name.clone(),
            context: envs.last().map(|e| e.context.clone()).unwrap_or_default(),
            namespace: spec.namespace.clone(),
            prometheus: spec.prometheus.clone(),
            kube_user: if sandbox.is_some() {
                Some("sandbox-admin".to_string())
            } else {
                client::kube_user(opts.kubeconfig.as_deref(), spec.context.as_deref())
            },
            guard_apps: None,
            guard_cancel: None,
            release_wake: None,
        });
        if let Ok(c) = client {
            let wake = std::sync::Arc::new(tokio::sync::Notify::new());
            let ev = crate::release::live::Evaluator::new(
                c.clone(),
                crate::config::file::EnvConfig {
                    name: spec.name.clone(),
                    context: spec.context.clone(),
                    namespace: spec.namespace.clone(),
                    prometheus: spec.prometheus.clone(),
                    production: spec.production,
                    read_only: spec.read_only,
                },
                opts.settings.clone(),
                None,
            );
            tokio::spawn(super::releases::run(
                i,
                ev,
                opts.audit_log.clone(),
                tx.clone(),
                cancel.clone(),
                wake.clone(),
            ));
            if let Some(rt) = runtimes.last_mut() {
                rt.release_wake = Some(wake);
            }
        }
    }
    let ctx = ActionCtx {
        tx: tx.clone(),
        operator: operator.clone(),
        audit_log: opts.audit_log.clone(),
        config: opts.config.clone(),
        kubeconfig: sandbox_kubeconfig
            .as_ref()
            .map(|d| d.path().join("kubeconfig"))
            .or(opts.kubeconfig.clone()),
        steps: opts.canary_steps.clone(),
        routers: opts.routers.clone(),
        settings: opts.settings.clone(),
    };
    if let Some(config) = &opts.guard {
        for (i, rt) in runtimes.iter_mut().enumerate() {
            let read_only = opts.read_only || specs.get(i).is_some_and(|(s, _)| s.read_only);
            let (Some(client), Some(prometheus), false) =
                (rt.client.clone(), rt.prometheus.clone(), read_only)
            else {
                continue;
            };
            let (atx, arx) = watch::channel(Vec::new());
            let (ctx_cancel, crx) = unbounded_channel();
            let mut operator = operator.clone();
            operator.kube_user = rt.kube_user.clone();
            tokio::spawn(run_guard(
                GuardSite {
                    env: i,
                    client,
                    name: rt.name.clone(),
                    context: rt.context.clone(),
                    namespace: rt.namespace.clone(),
                    prometheus,
                    operator,
                },
                config.clone(),
                opts.thresholds,
                ctx.clone(),
                arx,
                crx,
                cancel.clone(),
            ));
            rt.guard_apps = Some(atx);
            rt.guard_cancel = Some(ctx_cancel);
        }
    }
    let mut state = AppState::new(envs, now, opts.chart_window);
    state.sandbox = sandbox.is_some();
    state.read_only = opts.read_only;
    state.operator = agent.clone();
    run_cmds(state.start(), &mut runtimes, &ctx);

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
                    if state.dialog.is_some() {
                        Some(Msg::DialogKey(k))
                    } else if state.drill_menu.is_some() {
                        Some(Msg::MenuKey(k))
                    } else if state.release_menu.is_some() {
                        Some(Msg::ReleaseKey(k))
                    } else if state.filter_input.is_some() {
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
        // Once a second: is a drill running against an environment?
        if batch.iter().any(|m| matches!(m, Msg::Tick(_))) {
            for (i, rt) in runtimes.iter().enumerate() {
                let drill = crate::drill::state::active_for(&rt.name, &rt.namespace).map(|d| {
                    crate::app::state::DrillBanner {
                        scenario: d.scenario,
                        app: d.app,
                        started: d.started,
                    }
                });
                batch.push(Msg::Drill { env: i, drill });
            }
        }
        let mut quit = false;
        for m in batch {
            let out = update::update(&mut state, m);
            dirty |= out.dirty;
            quit |= run_cmds(out.cmds, &mut runtimes, &ctx);
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

/// A private directory removed when the cockpit ends.
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> std::io::Result<TempDir> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!(
        "kockpit-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(TempDir(dir))
}
