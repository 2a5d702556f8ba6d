//! `kockpit promote|abort|flip|rollback|pause|resume|restart APP --env ENV`: the cockpit's
//! actions as single commands, with the same plan, permission check, confirmation rules and
//! audit log as the keys in the cockpit.
//!
//! Exit codes scripts can rely on:
//! 0 done (applied, already as asked, or dry run passed) · 1 the cluster call failed ·
//! 2 bad usage or configuration · 3 refused (a precondition, e.g. an unready colour) ·
//! 4 not permitted (read-only, RBAC) · 5 conflict (changed concurrently) ·
//! 6 not confirmed · 7 the audit log could not be written (nothing was sent).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use serde_json::json;

use crate::audit::Operator;
use crate::cluster::actions::{
    self, ActionError, ExecuteOptions, Operation, Plan, PlanOptions, RouterKind, Verb,
};
use crate::cluster::client;
use crate::config::file::{self, Config, EnvConfig};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_REFUSED: i32 = 3;
pub const EXIT_DENIED: i32 = 4;
pub const EXIT_CONFLICT: i32 = 5;
pub const EXIT_NOT_CONFIRMED: i32 = 6;
pub const EXIT_AUDIT: i32 = 7;

/// Arguments shared by every action command.
#[derive(Debug, Clone, clap::Args)]
pub struct ActionArgs {
    /// The app: its `app` label (or Deployment / Rollout name).
    pub app: String,
    /// Environment: a name from the config or a global --env, or NAME=CONTEXT/NAMESPACE.
    #[arg(long = "env", value_name = "ENV")]
    pub env: String,
    /// Why (recorded in the audit log and the Event; required in production).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Do not ask for confirmation (production still needs --reason).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Send the change as a server-side dry run: validated, not stored, not audited.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the plan and the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// With several Deployments: the one to pause, resume or restart.
    #[arg(long, value_name = "NAME")]
    pub deployment: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub common: ActionArgs,
    /// All traffic to the canary at once, skipping the remaining steps.
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub common: ActionArgs,
    /// The revision to go back to (default: the previous one).
    #[arg(long, value_name = "N")]
    pub to_revision: Option<i64>,
}

/// The global flags the commands share with the cockpit.
#[derive(Debug, Clone, Default)]
pub struct Globals {
    pub config: Option<PathBuf>,
    pub envs: Vec<String>,
    pub kubeconfig: Option<PathBuf>,
    pub audit_log: Option<PathBuf>,
    pub read_only: bool,
}

/// An error with the exit code it maps to.
pub(crate) struct Fail(pub(crate) i32, pub(crate) String);

fn exit_code(e: &ActionError) -> i32 {
    match e {
        ActionError::Refused(_) => EXIT_REFUSED,
        ActionError::Api { code: 403, .. } => EXIT_DENIED,
        ActionError::Api { code: 409, .. } | ActionError::Conflict { .. } => EXIT_CONFLICT,
        ActionError::Audit(_) => EXIT_AUDIT,
        _ => EXIT_FAILED,
    }
}

/// Find `--env ENV` among the global --env flags and the config's environments.
pub(crate) fn resolve_env(
    name: &str,
    globals: &Globals,
    config: &Config,
) -> Result<EnvConfig, Fail> {
    if name.contains('=') {
        return file::parse_env_flag(name).map_err(|e| Fail(EXIT_USAGE, e.to_string()));
    }
    let mut known: Vec<EnvConfig> = Vec::new();
    for s in &globals.envs {
        known.push(file::parse_env_flag(s).map_err(|e| Fail(EXIT_USAGE, e.to_string()))?);
    }
    known.extend(config.envs.iter().cloned());
    known.iter().find(|e| e.name == name).cloned().ok_or_else(|| {
        let names: Vec<&str> = known.iter().map(|e| e.name.as_str()).collect();
        Fail(
            EXIT_USAGE,
            if names.is_empty() {
                format!(
                    "no environment {name:?}: no config file defines environments; use --env {name}=CONTEXT/NAMESPACE"
                )
            } else {
                format!(
                    "no environment {name:?}; known: {} (or use --env {name}=CONTEXT/NAMESPACE)",
                    names.join(", ")
                )
            },
        )
    })
}

/// Run an action command; never returns.
pub fn run(verb: Verb, args: ActionArgs, to_revision: Option<i64>, globals: Globals) -> ! {
    let json_out = args.json;
    let code = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => match rt.block_on(run_async(verb, args, to_revision, globals)) {
            Ok(code) => code,
            Err(Fail(code, msg)) => {
                if json_out {
                    println!(
                        "{}",
                        json!({"result": "error", "exit_code": code, "error": msg})
                    );
                } else {
                    eprintln!("kockpit: {msg}");
                }
                code
            }
        },
        Err(e) => {
            eprintln!("kockpit: starting the async runtime: {e}");
            EXIT_FAILED
        }
    };
    std::process::exit(code)
}

fn print_plan(plan: &Plan, env: &EnvConfig, context: &str, dry_run: bool) {
    println!(
        "{}{} {} in {}{} (context {context}, namespace {})",
        if dry_run { "[dry run] " } else { "" },
        plan.verb,
        plan.app,
        env.name,
        if env.production { " [PRODUCTION]" } else { "" },
        plan.namespace
    );
    println!("  {}", plan.release);
    for c in &plan.changes {
        println!("  {c}");
    }
    for w in &plan.warnings {
        println!("  ! {w}");
    }
}

fn prompt(question: &str) -> Option<String> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_string()),
    }
}

/// Staging: `y`. Production: type the app name, then a reason (unless given).
fn confirm(plan: &Plan, env: &EnvConfig, args: &ActionArgs) -> Result<Option<String>, Fail> {
    let reason = args.reason.clone().filter(|r| !r.trim().is_empty());
    if args.dry_run {
        return Ok(reason);
    }
    if args.yes {
        if env.production && reason.is_none() {
            return Err(Fail(
                EXIT_NOT_CONFIRMED,
                format!(
                    "{} is production: --yes needs --reason TEXT (it goes into the audit log)",
                    env.name
                ),
            ));
        }
        return Ok(reason);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Fail(
            EXIT_NOT_CONFIRMED,
            format!(
                "not confirmed: stdin is not a terminal; pass --yes{} to act without asking",
                if env.production { " --reason TEXT" } else { "" }
            ),
        ));
    }
    if env.production {
        let typed = prompt(&format!(
            "Production. Type the app name ({}) to confirm: ",
            plan.app
        ));
        if typed.as_deref() != Some(plan.app.as_str()) {
            return Err(Fail(
                EXIT_NOT_CONFIRMED,
                "not confirmed: the name did not match; nothing was changed".into(),
            ));
        }
        let reason = match reason {
            Some(r) => r,
            None => prompt("Reason (recorded in the audit log): ")
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    Fail(
                        EXIT_NOT_CONFIRMED,
                        "not confirmed: production changes need a reason".into(),
                    )
                })?,
        };
        Ok(Some(reason))
    } else {
        match prompt("Apply? [y/N] ").as_deref() {
            Some("y" | "Y" | "yes") => Ok(reason),
            _ => Err(Fail(
                EXIT_NOT_CONFIRMED,
                "not confirmed; nothing was changed".into(),
            )),
        }
    }
}

async fn run_async(
    verb: Verb,
    args: ActionArgs,
    to_revision: Option<i64>,
    globals: Globals,
) -> Result<i32, Fail> {
    let config = file::load(globals.config.as_deref())
        .map_err(|e| Fail(EXIT_USAGE, e.to_string()))?
        .unwrap_or_default();
    let env = resolve_env(&args.env, &globals, &config)?;
    if !args.dry_run && (globals.read_only || config.read_only || env.read_only) {
        let why = if globals.read_only {
            "--read-only is set"
        } else if config.read_only {
            "the config sets read_only"
        } else {
            "the config marks this environment read_only"
        };
        return Err(Fail(
            EXIT_DENIED,
            format!("{verb} not available: {why}; nothing was changed"),
        ));
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
    .map_err(|e| Fail(EXIT_USAGE, e))?;
    let router = config
        .apps
        .get(&args.app)
        .and_then(|a| a.router.as_deref())
        .and_then(RouterKind::parse);
    let opts = PlanOptions {
        to_revision,
        steps: config.canary_steps.clone(),
        router,
        deployment: args.deployment.clone(),
        now: None,
        gitops: config.gitops_for(&args.app, &env.name).cloned(),
    };
    let context = env.context.clone().unwrap_or_else(|| "(current)".into());
    let fail = |e: ActionError| Fail(exit_code(&e), e.to_string());
    let plan = actions::plan(&client, &env.namespace, &args.app, verb, &opts)
        .await
        .map_err(fail)?;
    if !args.json {
        print_plan(&plan, &env, &context, args.dry_run);
    }
    if plan.noop {
        if args.json {
            println!(
                "{}",
                json!({"result": "unchanged", "exit_code": 0, "changes": plan.changes, "before": plan.before, "after": plan.after})
            );
        } else {
            println!("nothing to do");
        }
        return Ok(EXIT_OK);
    }
    // A change written to Git needs no cluster permission (the controller applies it).
    if plan.git.is_none()
        && let Some(denied) = actions::denied_reason(&client, &plan).await.map_err(fail)?
    {
        return Err(Fail(EXIT_DENIED, format!("not permitted: {denied}")));
    }
    let reason = confirm(&plan, &env, &args)?;
    let op = Operation {
        environment: env.name.clone(),
        context,
        operator,
        reason,
        drill: crate::drill::state::active_for(&env.name, &env.namespace).is_some(),
        automatic: false,
    };
    let audit_log = globals
        .audit_log
        .clone()
        .or(config.audit_log.clone())
        .unwrap_or_else(crate::audit::default_path);
    let done = actions::execute(
        &client,
        &plan,
        &op,
        &ExecuteOptions {
            dry_run: args.dry_run,
            audit_log: audit_log.clone(),
        },
    )
    .await
    .map_err(fail)?;
    let result = if args.dry_run {
        "dry-run"
    } else if done.applied.unchanged {
        "unchanged"
    } else {
        "applied"
    };
    if args.json {
        println!(
            "{}",
            json!({
                "result": result,
                "exit_code": 0,
                "environment": env.name,
                "namespace": plan.namespace,
                "object": done.applied.plan.object,
                "changes": done.applied.plan.changes,
                "before": done.applied.plan.before,
                "after": done.applied.plan.after,
                "retried_after_conflict": done.applied.retried,
                "duration_ms": done.duration_ms,
                "audit": done.audit.map(|(i, o)| json!({"file": audit_log, "intent": i, "outcome": o})),
                "event_error": done.event_error,
                "git": done.git.as_ref().map(|g| json!({
                    "commits": g.commits,
                    "remote_branch": g.remote_branch,
                    "fast_forwarded": g.fast_forwarded,
                    "edits": g.edits.iter().map(|e| e.describe()).collect::<Vec<_>>(),
                })),
            })
        );
    } else {
        let note = if done.applied.retried {
            " (retried once after a concurrent change)"
        } else {
            ""
        };
        if let Some(g) = &done.git {
            println!(
                "committed {} and pushed to {} in {} ms (the cluster was not patched)",
                g.commits
                    .last()
                    .map(|c| &c[..c.len().min(12)])
                    .unwrap_or(""),
                g.remote_branch,
                done.duration_ms
            );
            if let Some(gp) = &plan.git {
                println!("  {} applies it at its next sync", gp.controller);
            }
        }
        match result {
            _ if done.git.is_some() => {}
            "dry-run" if plan.git.is_some() => {
                println!("dry run: nothing was committed or pushed (the Git edits are above)")
            }
            "dry-run" => println!("dry run passed: the server accepted the change{note}"),
            "unchanged" => println!("already as asked: nothing sent{note}"),
            _ => println!("applied in {} ms{note}", done.duration_ms),
        }
        if let Some((i, o)) = done.audit {
            println!("audit: lines {i} and {o} of {}", audit_log.display());
        }
        if let Some(e) = &done.event_error {
            println!("  ! {e}");
        }
    }
    Ok(EXIT_OK)
}

/// The verb of a command name (`promote`, …).
pub fn verb_of(promote_full: bool, verb: Verb) -> Verb {
    if promote_full && verb == Verb::Promote {
        Verb::PromoteFull
    } else {
        verb
    }
}
