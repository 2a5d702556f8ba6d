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
    if opts.dry_run {
        let started = Instant::now();
        let applied = apply(client, plan, true).await?;
        return Ok(Executed {
            applied,
            duration_ms: started.elapsed().as_millis() as u64,
            audit: None,
            event_error: None,
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
    let intent_seq = append(opts.audit_log.clone(), intent.clone()).await?;
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
