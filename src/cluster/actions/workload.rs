//! Pause, resume and restart a Deployment (or an Argo Rollout), as kubectl does.

use kube::Client;
use serde_json::{Value, json};

use super::detect::{Release, ReleaseKind, Router};
use super::{ActionError, Goal, Plan, Res, Verb, Write, blank, get};

const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Which object a pause/resume/restart of the app acts on: the one that moves. A canary's
/// canary Deployment, blue/green's idle colour (the active one for a restart), the rolling
/// Deployment, the Rollout. `deployment` overrides.
pub fn target(
    release: &Release,
    verb: Verb,
    deployment: Option<&str>,
) -> Result<(Res, String), ActionError> {
    if let Some(d) = deployment {
        return Ok((Res::DEPLOYMENT, d.to_string()));
    }
    match &release.kind {
        ReleaseKind::Canary {
            router: Router::Argo { rollout },
            ..
        } => Ok((Res::ROLLOUT, rollout.clone())),
        ReleaseKind::Canary { canary, .. } => canary
            .clone()
            .map(|c| (Res::DEPLOYMENT, c))
            .ok_or_else(|| ActionError::Refused(format!("{}: no canary Deployment", release.app))),
        ReleaseKind::BlueGreen {
            active, colours, ..
        } => colours
            .iter()
            .find(|(c, _)| (c == active) == (verb == Verb::Restart))
            .map(|(_, d)| (Res::DEPLOYMENT, d.clone()))
            .ok_or_else(|| ActionError::Refused(format!("{}: no such colour", release.app))),
        ReleaseKind::Rolling { deployment } => Ok((Res::DEPLOYMENT, deployment.clone())),
    }
}

/// `spec.paused` → `paused`.
pub async fn plan_pause(
    client: &Client,
    ns: &str,
    res: &Res,
    name: &str,
    paused: bool,
) -> Result<Plan, ActionError> {
    let o = get(client, ns, res, name).await?;
    let now = o.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    let mut plan = blank(
        &o,
        res.kind,
        Goal::Paused {
            res: res.clone(),
            name: name.to_string(),
            paused,
        },
    );
    plan.before = json!({"paused": now});
    plan.after = json!({"paused": paused});
    let word = |p: bool| if p { "paused" } else { "running" };
    if now == paused {
        plan.noop = true;
        plan.changes = vec![format!("{}/{name} is already {}", res.kind, word(paused))];
        return Ok(plan);
    }
    plan.changes = vec![format!(
        "{}/{name} spec.paused: {now} → {paused} ({} → {})",
        res.kind,
        word(now),
        word(paused)
    )];
    plan.writes = vec![Write::merge(
        res.clone(),
        &o,
        json!({"spec": {"paused": paused}}),
    )];
    Ok(plan)
}

/// A rolling restart: a new `restartedAt` on the pod template (a Rollout's `spec.restartAt`).
pub async fn plan_restart(
    client: &Client,
    ns: &str,
    res: &Res,
    name: &str,
    at: &str,
) -> Result<Plan, ActionError> {
    let o = get(client, ns, res, name).await?;
    let argo = res.kind == "Rollout";
    let before = if argo {
        o.pointer("/spec/restartAt")
    } else {
        o.pointer("/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt")
    }
    .cloned()
    .unwrap_or(Value::Null);
    let mut plan = blank(
        &o,
        res.kind,
        Goal::Restart {
            res: res.clone(),
            name: name.to_string(),
            at: at.to_string(),
        },
    );
    if o.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        return Err(ActionError::Refused(format!(
            "{}/{name} is paused: resume it before restarting (kubectl refuses too)",
            res.kind
        )));
    }
    plan.before = json!({"restartedAt": before});
    plan.after = json!({"restartedAt": at});
    let replicas = o
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    plan.changes = vec![
        format!(
            "{}/{name} {}: {} → {at}",
            res.kind,
            if argo { "spec.restartAt" } else { RESTARTED_AT },
            before.as_str().unwrap_or("(never)")
        ),
        format!("replaces all {replicas} pods, one batch at a time, per the rollout strategy"),
    ];
    plan.noop = before.as_str() == Some(at);
    let body = if argo {
        json!({"spec": {"restartAt": at}})
    } else {
        json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}})
    };
    plan.writes = vec![Write::merge(res.clone(), &o, body)];
    Ok(plan)
}
