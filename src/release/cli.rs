//! `kockpit release open|shelve|resume|conclude|abandon|list|show`.
//!
//! Exit codes: 0 done · 1 the cluster failed · 2 usage or configuration · 3 refused (wrong
//! state, or `conclude` with a checklist that is not green and no `--override`) · 7 the audit
//! log could not be written.

use std::path::PathBuf;

use clap::Subcommand;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::checklist::{Checklist, Status};
use super::live::Evaluator;
use super::{Ledger, Release, ReleaseError, State, Step, StepKind, Who};
use crate::audit::Operator;
use crate::cluster::client;
use crate::command::{self, Globals};
use crate::config::file::{self, Config, EnvConfig};

#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    #[command(subcommand)]
    pub command: ReleaseCommand,
}

#[derive(Debug, clap::Args)]
pub struct Target {
    /// The app.
    pub app: String,
    /// Environment: a name from the config or a global --env, or NAME=CONTEXT/NAMESPACE.
    #[arg(long = "env", value_name = "ENV")]
    pub env: String,
    /// Prometheus URL for the observation window (default: the environment's `prometheus`).
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// One JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Open a release of APP in ENV (version: --version, else the one being rolled out).
    Open {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        version: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Shelve the open release while it is blocked (a reason is required).
    Shelve {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a shelved release (its observation window starts again).
    Resume {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Conclude the open release: only when its exit checklist is green, or with --override.
    Conclude {
        #[command(flatten)]
        target: Target,
        /// Conclude although the checklist is not green; the reason is audited with the
        /// failing items.
        #[arg(long = "override", value_name = "REASON")]
        override_reason: Option<String>,
    },
    /// Abandon the open or shelved release (a reason is required).
    Abandon {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Releases, newest first (open and shelved ones unless --all).
    List {
        #[arg(long = "env", value_name = "ENV")]
        env: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// One release's history and, while it is open, its exit checklist evaluated now.
    Show {
        #[command(flatten)]
        target: Target,
        /// Which release of the app (default: the latest).
        #[arg(long)]
        number: Option<u64>,
    },
}

fn usage(m: impl Into<String>) -> ReleaseError {
    ReleaseError::Usage(m.into())
}

struct Resolved {
    config: Config,
    env: EnvConfig,
    context: String,
    operator: Operator,
    audit_log: PathBuf,
    kubeconfig: Option<PathBuf>,
}

fn resolve(env: &str, globals: &Globals) -> Result<Resolved, ReleaseError> {
    let config = file::load(globals.config.as_deref())
        .map_err(|e| usage(e.to_string()))?
        .unwrap_or_default();
    let env =
        command::resolve_env(env, globals, &config).map_err(|command::Fail(_, m)| usage(m))?;
    let kubeconfig = globals.kubeconfig.clone().or(config.kubeconfig.clone());
    let kube_user = client::kube_user(kubeconfig.as_deref(), env.context.as_deref());
    Ok(Resolved {
        context: env.context.clone().unwrap_or_else(|| "(current)".into()),
        operator: Operator::current(kube_user),
        audit_log: audit_path(globals, &config),
        config,
        env,
        kubeconfig,
    })
}

fn audit_path(globals: &Globals, config: &Config) -> PathBuf {
    globals
        .audit_log
        .clone()
        .or(config.audit_log.clone())
        .unwrap_or_else(crate::audit::default_path)
}

async fn evaluator(r: &Resolved, prometheus: Option<&str>) -> Result<Evaluator, ReleaseError> {
    let client = client::for_context(
        r.kubeconfig.as_deref(),
        r.env.context.as_deref(),
        &client::operator_tag(&r.operator),
    )
    .await
    .map_err(usage)?;
    Ok(Evaluator::new(
        client,
        r.env.clone(),
        r.config.clone(),
        prometheus,
    ))
}

/// Evaluate the checklist of `rel` now (running its smoke checks once).
async fn check(ev: &Evaluator, ledger: &Ledger, rel: &Release) -> Checklist {
    let smoke = ev.run_smoke(rel).await;
    ev.checklist(rel, ledger.last_change(rel), &smoke, Timestamp::now())
        .await
}

/// `kockpit release …`; returns the exit code.
pub fn run(args: ReleaseArgs, globals: Globals) -> i32 {
    let json_out = match &args.command {
        ReleaseCommand::List { json, .. } => *json,
        ReleaseCommand::Open { target, .. }
        | ReleaseCommand::Shelve { target, .. }
        | ReleaseCommand::Resume { target, .. }
        | ReleaseCommand::Conclude { target, .. }
        | ReleaseCommand::Abandon { target, .. }
        | ReleaseCommand::Show { target, .. } => target.json,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kockpit: starting the async runtime: {e}");
            return command::EXIT_FAILED;
        }
    };
    match rt.block_on(run_async(args, globals)) {
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

fn who(r: &Resolved, app: &str, reason: Option<String>) -> Who {
    Who {
        environment: r.env.name.clone(),
        context: r.context.clone(),
        namespace: r.env.namespace.clone(),
        app: app.to_string(),
        operator: r.operator.clone(),
        reason,
        drill: false,
    }
}

async fn run_async(args: ReleaseArgs, globals: Globals) -> Result<(), ReleaseError> {
    let (target, kind, reason) = match args.command {
        ReleaseCommand::List { env, all, json } => {
            let config = file::load(globals.config.as_deref())
                .map_err(|e| usage(e.to_string()))?
                .unwrap_or_default();
            let env = match env {
                Some(e) => Some(
                    command::resolve_env(&e, &globals, &config)
                        .map_err(|command::Fail(_, m)| usage(m))?
                        .name,
                ),
                None => None,
            };
            let ledger = Ledger::load(&audit_path(&globals, &config))?;
            let rs: Vec<&Release> = ledger
                .releases
                .iter()
                .rev()
                .filter(|r| all || r.state.active())
                .filter(|r| env.as_ref().is_none_or(|e| &r.environment == e))
                .collect();
            if json {
                println!(
                    "{}",
                    json!({"releases": rs.iter().map(|r| release_json(r, None)).collect::<Vec<_>>()})
                );
            } else if rs.is_empty() {
                println!(
                    "no {}releases{}",
                    if all { "" } else { "open or shelved " },
                    if all { "" } else { " (--all for the history)" }
                );
            } else {
                for r in rs {
                    println!("{}", list_line(r));
                }
            }
            return Ok(());
        }
        ReleaseCommand::Show { target, number } => {
            let r = resolve(&target.env, &globals)?;
            let ledger = Ledger::load(&r.audit_log)?;
            let rel = ledger
                .find(&r.env.name, &target.app, number)
                .ok_or_else(|| {
                    ReleaseError::Refused(format!(
                        "no release of {} in {}{}",
                        target.app,
                        r.env.name,
                        number.map(|n| format!(" numbered {n}")).unwrap_or_default()
                    ))
                })?
                .clone();
            let checklist = if rel.state == State::Open {
                let ev = evaluator(&r, target.prometheus.as_deref()).await?;
                Some(check(&ev, &ledger, &rel).await)
            } else {
                None
            };
            if target.json {
                println!("{}", release_json(&rel, checklist.as_ref()));
            } else {
                print!("{}", show_text(&rel, checklist.as_ref()));
            }
            return Ok(());
        }
        ReleaseCommand::Open {
            target,
            version,
            reason,
        } => (target, StepKind::Open, (reason, version)),
        ReleaseCommand::Shelve { target, reason } => (target, StepKind::Shelve, (reason, None)),
        ReleaseCommand::Resume { target, reason } => (target, StepKind::Resume, (reason, None)),
        ReleaseCommand::Abandon { target, reason } => (target, StepKind::Abandon, (reason, None)),
        ReleaseCommand::Conclude {
            target,
            override_reason,
        } => (target, StepKind::Conclude, (None, override_reason)),
    };
    let r = resolve(&target.env, &globals)?;
    let (reason, extra) = reason;
    let mut checklist = None;
    let step = match kind {
        StepKind::Open => {
            let version = match extra {
                Some(v) => v,
                None => {
                    let ev = evaluator(&r, target.prometheus.as_deref()).await?;
                    ev.detect_version(&target.app).await?
                }
            };
            Step::Open { version }
        }
        StepKind::Shelve => Step::Shelve,
        StepKind::Resume => Step::Resume,
        StepKind::Abandon => Step::Abandon,
        StepKind::Conclude => {
            let ledger = Ledger::load(&r.audit_log)?;
            let Some(rel) = ledger.active(&r.env.name, &target.app).cloned() else {
                return Err(ReleaseError::Refused(format!(
                    "{} has no open release in {}",
                    target.app, r.env.name
                )));
            };
            let ev = evaluator(&r, target.prometheus.as_deref()).await?;
            let c = check(&ev, &ledger, &rel).await;
            checklist = Some(c.clone());
            Step::Conclude {
                checklist: c,
                override_reason: extra,
            }
        }
    };
    let result = super::record(&r.audit_log, &who(&r, &target.app, reason), &step);
    if let (Err(ReleaseError::Refused(_)), Some(c), false) = (&result, &checklist, target.json) {
        eprint!("{}", checklist_text(c));
    }
    let rel = result?;
    if target.json {
        println!("{}", release_json(&rel, checklist.as_ref()));
    } else {
        if let Some(c) = &checklist {
            print!("{}", checklist_text(c));
        }
        println!("{}", rel.summary());
    }
    Ok(())
}

fn list_line(r: &Release) -> String {
    format!(
        "{:<28} {:<12} {:<10} opened {} by {}{}",
        r.id(),
        r.version,
        r.state.name(),
        r.opened().strftime("%Y-%m-%d %H:%M"),
        r.transitions
            .first()
            .map(|t| t.operator.os_user.as_str())
            .unwrap_or_default(),
        match r.ended() {
            Some(t) => format!(", {} {}", r.state.name(), t.strftime("%Y-%m-%d %H:%M")),
            None => String::new(),
        }
    )
}

/// The checklist as lines: `✓ Pods Ready        3/3 pods of 1.4.2 Ready`.
pub fn checklist_text(c: &Checklist) -> String {
    let mut out = format!(
        "exit checklist at {} ({}):\n",
        c.at.strftime("%H:%M:%S"),
        c.summary()
    );
    let w = c
        .items
        .iter()
        .map(|i| i.name.chars().count())
        .max()
        .unwrap_or(0);
    for i in &c.items {
        out.push_str(&format!(
            "  {} {:<w$}  {}\n",
            i.status.mark(),
            i.name,
            i.detail
        ));
    }
    out
}

fn show_text(r: &Release, c: Option<&Checklist>) -> String {
    let mut out = format!(
        "release {} · version {} · {}{}\n  environment {} ({}/{})\n",
        r.id(),
        r.version,
        r.state.name(),
        if r.overridden { " (override)" } else { "" },
        r.environment,
        r.context,
        r.namespace
    );
    for t in &r.transitions {
        let who = match &t.operator.ssh_client {
            Some(ip) => format!("{}@{ip}", t.operator.os_user),
            None => t.operator.os_user.clone(),
        };
        out.push_str(&format!(
            "  {}  {:<9} by {who}{}  (audit #{})\n",
            t.time.strftime("%Y-%m-%d %H:%M:%S"),
            t.verb,
            t.reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
            t.seq
        ));
        if let Some(failing) = t.detail.get("failing").and_then(Value::as_array) {
            let names: Vec<&str> = failing.iter().filter_map(Value::as_str).collect();
            out.push_str(&format!("      overrode: {}\n", names.join(", ")));
        }
    }
    if let Some(c) = c {
        out.push_str(&checklist_text(c));
    }
    out
}

fn release_json(r: &Release, c: Option<&Checklist>) -> Value {
    json!({
        "id": r.id(),
        "app": r.app,
        "environment": r.environment,
        "context": r.context,
        "namespace": r.namespace,
        "number": r.number,
        "version": r.version,
        "state": r.state.name(),
        "overridden": r.overridden,
        "transitions": r.transitions.iter().map(|t| json!({
            "seq": t.seq, "time": t.time, "action": t.verb, "operator": t.operator,
            "reason": t.reason, "detail": t.detail,
        })).collect::<Vec<_>>(),
        "checklist": c,
        "green": c.map(|c| c.passed()),
        "failing": c.map(|c| c.items.iter().filter(|i| !matches!(i.status, Status::Pass | Status::NotApplicable)).map(|i| i.name.clone()).collect::<Vec<_>>()),
    })
}
