//! Run a confirmed plan: audit intent (fsync'd) → the API requests → audit outcome →
//! a Kubernetes Event on the object. The one path both the cockpit and the CLI take.

use std::path::PathBuf;
use std::time::Instant;

use k8s_openapi::api::core::v1::Event;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::{ActionError, Applied, Plan, apply};
use crate::audit::{AuditLog, Entry, Operator, Target};

/// Who acts, where, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub environment: String,
    pub context: String,
    pub operator: Operator,
    pub reason: Option<String>,
    /// Part of a rollback drill.
    pub drill: bool,
    /// Done by the automated guard (recorded as `automatic` in the audit log).
    pub automatic: bool,
}

/// How to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecuteOptions {
    /// The server's dry run: validated and admitted, not stored. Not audited (nothing changes).
    pub dry_run: bool,
    pub audit_log: PathBuf,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    pub applied: Applied,
    /// From the intent being durable to the last response.
    pub duration_ms: u64,
    /// `seq` of the intent and outcome lines (none for a dry run).
    pub audit: Option<(u64, u64)>,
    /// Why no Event was posted on the object, if none was.
    pub event_error: Option<String>,
    /// GitOps: what was committed and pushed (the cluster was not patched).
    pub git: Option<crate::gitops::change::Pushed>,
}

async fn append(path: PathBuf, entry: Entry) -> Result<u64, ActionError> {
    tokio::task::spawn_blocking(move || {
        AuditLog::open(&path)
            .and_then(|mut log| log.append(entry))
            .map(|w| w.seq)
            .map_err(|e| ActionError::Audit(e.to_string()))
    })
    .await
    .map_err(|e| ActionError::Audit(format!("audit writer: {e}")))?
}

/// Execute `plan` as `op`. The intent is on disk before any request leaves; the outcome (the
/// HTTP status and message) follows whatever happens. If the intent cannot be written, nothing
/// is sent.
pub async fn execute(
    client: &Client,
    plan: &Plan,
    op: &Operation,
    opts: &ExecuteOptions,
) -> Result<Executed, ActionError> {
    if opts.dry_run && plan.git.is_some() {
        // Nothing to ask the server: the change would be a commit (shown by the plan).
        return Ok(Executed {
            applied: Applied {
                plan: plan.clone(),
                unchanged: false,
                retried: false,
            },
            duration_ms: 0,
            audit: None,
            event_error: None,
            git: None,
        });
    }
    if opts.dry_run {
        let started = Instant::now();
        let applied = apply(client, plan, true).await?;
        return Ok(Executed {
            applied,
            duration_ms: started.elapsed().as_millis() as u64,
            audit: None,
            event_error: None,
            git: None,
        });
    }
    let target = Target {
        environment: op.environment.clone(),
        context: op.context.clone(),
        namespace: plan.namespace.clone(),
        object: plan.object.clone(),
    };
    let mut intent = Entry::intent(
        op.operator.clone(),
        target,
        plan.verb.name(),
        plan.before.clone(),
        plan.after.clone(),
    );
    intent.reason = op.reason.clone();
    intent.app = Some(plan.app.clone());
    intent.drill = op.drill;
    intent.automatic = op.automatic;
    if let Some(git) = &plan.git {
        intent.after = serde_json::json!({
            "change": plan.after,
            "git": {
                "repo": git.config.repo,
                "remote": git.config.remote,
                "edits": git.edits.iter().map(|e| e.describe()).collect::<Vec<_>>(),
            },
        });
    }
    let intent_seq = append(opts.audit_log.clone(), intent.clone()).await?;
    if let Some(git) = &plan.git {
        return execute_git(client, plan, git, op, opts, intent, intent_seq).await;
    }
    let started = Instant::now();
    let result = apply(client, plan, false).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let (status, message) = match &result {
        Ok(a) if a.unchanged => (
            Some(200),
            format!("unchanged: {}", a.plan.changes.join("; ")),
        ),
        Ok(a) => (
            Some(200),
            format!(
                "applied{}: {}",
                if a.retried {
                    " (after a conflict, on fresh state)"
                } else {
                    ""
                },
                a.plan.changes.join("; ")
            ),
        ),
        Err(e) => (e.status(), e.to_string()),
    };
    let mut outcome = Entry::outcome(&intent, status, &message, duration_ms);
    if let Ok(a) = &result {
        outcome.after = a.plan.after.clone();
    }
    // The outcome must be recorded even when the action failed; a failure to record it is
    // reported alongside (the intent already says what was attempted).
    let outcome_seq = append(opts.audit_log.clone(), outcome).await;
    let applied = result?;
    let outcome_seq = outcome_seq?;
    let event_error = if applied.unchanged {
        None
    } else {
        post_event(client, plan, op).await.err()
    };
    Ok(Executed {
        applied,
        duration_ms,
        audit: Some((intent_seq, outcome_seq)),
        event_error,
        git: None,
    })
}

/// The commit message: what changed (with the previous values), who, why, where.
fn commit_message(
    plan: &Plan,
    op: &Operation,
    edits: &[crate::gitops::change::FieldEdit],
    audit_id: &str,
) -> String {
    use crate::gitops::change::scalar;
    let first = edits
        .first()
        .map(|e| {
            format!(
                " ({} {}: {} → {})",
                e.object,
                // The field's own name (`image`, `weight`, `color`).
                e.path
                    .0
                    .last()
                    .map(|s| crate::gitops::yaml::FieldPath(vec![s.clone()]).to_string())
                    .unwrap_or_default(),
                e.old
                    .as_ref()
                    .map(scalar)
                    .unwrap_or_else(|| "(absent)".into()),
                scalar(&e.new)
            )
        })
        .unwrap_or_default();
    let mut m = format!(
        "kockpit: {} {} in {}{first}\n\n",
        plan.verb, plan.app, op.environment
    );
    for e in edits {
        m.push_str(&format!(
            "{} {}: {} → {}\n",
            e.object,
            e.path,
            e.old
                .as_ref()
                .map(scalar)
                .unwrap_or_else(|| "(absent)".into()),
            scalar(&e.new)
        ));
    }
    m.push('\n');
    let who = match &op.operator.ssh_client {
        Some(ip) => format!("{}@{ip}", op.operator.os_user),
        None => op.operator.os_user.clone(),
    };
    m.push_str(&format!("Operator: {who}"));
    if let Some(k) = &op.operator.kube_user {
        m.push_str(&format!(" (kube user {k})"));
    }
    m.push('\n');
    m.push_str(&format!(
        "Reason: {}\n",
        op.reason.as_deref().unwrap_or("(none given)")
    ));
    for e in edits {
        m.push_str(&format!(
            "Previous-Value: {} {} = {}\n",
            e.object,
            e.path,
            e.old
                .as_ref()
                .map(scalar)
                .unwrap_or_else(|| "(absent)".into())
        ));
    }
    m.push_str(&format!(
        "Environment: {} (context {}, namespace {})\n",
        op.environment, op.context, plan.namespace
    ));
    if op.drill {
        m.push_str("Drill: yes\n");
    }
    if op.automatic {
        m.push_str("Automatic: yes (the rollback guard)\n");
    }
    m.push_str(&format!("Kockpit-Audit-Id: {audit_id}\n"));
    m
}

/// GitOps: commit and push instead of patching; the outcome names the commit. The
/// controller is asked to reconcile now (best effort).
async fn execute_git(
    client: &Client,
    plan: &Plan,
    git: &super::GitPlan,
    op: &Operation,
    opts: &ExecuteOptions,
    intent: Entry,
    intent_seq: u64,
) -> Result<Executed, ActionError> {
    let started = Instant::now();
    let cfg = git.config.clone();
    let objects = git.objects.clone();
    let (plan2, op2, id) = (plan.clone(), op.clone(), intent.id.clone());
    let author = crate::gitops::change::signature(&cfg.repo, &op.operator.os_user);
    let result = tokio::task::spawn_blocking(move || {
        crate::gitops::change::commit_and_push(
            &cfg,
            &objects,
            &|edits| commit_message(&plan2, &op2, edits, &id),
            (&author.0, &author.1),
        )
    })
    .await
    .map_err(|e| ActionError::Client {
        object: plan.object.clone(),
        message: format!("git worker: {e}"),
    })
    .and_then(|r| {
        r.map_err(|e| match e {
            crate::gitops::change::ChangeError::Refused(m) => ActionError::Refused(m),
            crate::gitops::change::ChangeError::Git(m) => ActionError::Client {
                object: git.config.repo.display().to_string(),
                message: m,
            },
        })
    });
    let duration_ms = started.elapsed().as_millis() as u64;
    let (status, message) = match &result {
        Ok(p) => (
            Some(200),
            format!(
                "pushed {} to {}: {}",
                p.commits
                    .last()
                    .map(|c| &c[..c.len().min(12)])
                    .unwrap_or(""),
                p.remote_branch,
                p.edits
                    .iter()
                    .map(|e| e.describe())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
        Err(e) => (None, e.to_string()),
    };
    let mut outcome = Entry::outcome(&intent, status, &message, duration_ms);
    if let Ok(p) = &result {
        outcome.after = serde_json::json!({
            "change": plan.after,
            "git": {"commits": p.commits, "remote_branch": p.remote_branch,
                    "edits": p.edits.iter().map(|e| e.describe()).collect::<Vec<_>>()},
        });
    }
    let outcome_seq = append(opts.audit_log.clone(), outcome).await;
    let pushed = result?;
    let outcome_seq = outcome_seq?;
    if let Some(owner) = &git.owner {
        let _ = crate::gitops::sync::request_reconcile(client, owner).await;
    }
    let mut shown = plan.clone();
    shown.changes = pushed
        .edits
        .iter()
        .map(|e| format!("Git {}", e.describe()))
        .collect();
    let event_error = post_event(client, &shown, op).await.err();
    Ok(Executed {
        applied: Applied {
            plan: shown,
            unchanged: false,
            retried: false,
        },
        duration_ms,
        audit: Some((intent_seq, outcome_seq)),
        event_error,
        git: Some(pushed),
    })
}

/// A Kubernetes Event on the object acted on, so `kubectl describe` and the cluster's own
/// event stream show who did what.
async fn post_event(client: &Client, plan: &Plan, op: &Operation) -> Result<(), String> {
    let (kind, name) = plan.object.split_once('/').unwrap_or(("", &plan.object));
    let now = jiff::Timestamp::now().to_string();
    let who = match &op.operator.ssh_client {
        Some(ip) => format!("{}@{ip}", op.operator.os_user),
        None => op.operator.os_user.clone(),
    };
    let mut message = format!(
        "kockpit {} by {who}: {}",
        plan.verb,
        plan.changes.join("; ")
    );
    if let Some(r) = &op.reason {
        message.push_str(&format!(" (reason: {r})"));
    }
    let reason: String = format!(
        "Kockpit{}",
        plan.verb
            .name()
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<String>()
    );
    let ev: Event = serde_json::from_value(json!({
        "metadata": {"generateName": format!("{name}.kockpit-"), "namespace": plan.namespace},
        "involvedObject": {
            "kind": kind, "name": name, "namespace": plan.namespace,
            "uid": plan.object_uid, "apiVersion": plan.object_api_version
        },
        "reason": reason,
        "message": message,
        "type": if matches!(plan.verb, super::Verb::Abort | super::Verb::Rollback) { "Warning" } else { "Normal" },
        "source": {"component": "kockpit"},
        "reportingComponent": "kockpit",
        "reportingInstance": hostname(),
        "action": plan.verb.name(),
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1
    }))
    .map_err(|e| e.to_string())?;
    Api::<Event>::namespaced(client.clone(), &plan.namespace)
        .create(&PostParams::default(), &ev)
        .await
        .map(|_| ())
        .map_err(|e| format!("posting an Event on {}: {e}", plan.object))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "kockpit".into())
}
