//! Blue/green: point the Service's selector at the other colour, only when every pod of that
//! colour is Ready. Flipping back is the instant rollback.

use kube::Client;
use serde_json::{Value, json};

use super::detect::{Release, ReleaseKind};
use super::{ActionError, Goal, Plan, Res, Write, blank, get, list, name_of, str_at};

/// The colour that is not selected now.
pub async fn goal(_client: &Client, _ns: &str, release: &Release) -> Result<Goal, ActionError> {
    let ReleaseKind::BlueGreen {
        service,
        key,
        active,
        colours,
    } = &release.kind
    else {
        return Err(ActionError::Refused(format!(
            "{} is not blue/green",
            release.app
        )));
    };
    let others: Vec<&str> = colours
        .iter()
        .map(|(c, _)| c.as_str())
        .filter(|c| c != active)
        .collect();
    match others.as_slice() {
        [to] => Ok(Goal::Selector {
            service: service.clone(),
            key: key.clone(),
            to: to.to_string(),
        }),
        [] => Err(ActionError::Refused(format!(
            "Service/{service} selects {key}={active} and there is no other colour to flip to"
        ))),
        more => Err(ActionError::Refused(format!(
            "Service/{service} could flip to any of {}: more than two colours",
            more.join(", ")
        ))),
    }
}

/// Ready and not terminating.
pub(crate) fn pod_ready(p: &Value) -> bool {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
        && p.pointer("/metadata/deletionTimestamp").is_none()
}

/// Plan the selector change, refusing unless every pod of the target colour is Ready.
pub async fn plan(
    client: &Client,
    ns: &str,
    service: &str,
    key: &str,
    to: &str,
) -> Result<Plan, ActionError> {
    let svc = get(client, ns, &Res::SERVICE, service).await?;
    let selector = svc
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let from = selector
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut plan = blank(
        &svc,
        "Service",
        Goal::Selector {
            service: service.into(),
            key: key.into(),
            to: to.into(),
        },
    );
    plan.before = json!({"selector": {key: from}});
    plan.after = json!({"selector": {key: to}});
    plan.changes = vec![format!("Service/{service} selector {key}: {from} → {to}")];
    if from == to {
        plan.noop = true;
        plan.changes = vec![format!("Service/{service} already selects {key}={to}")];
        return Ok(plan);
    }
    let mut target = selector.clone();
    target.insert(key.to_string(), json!(to));
    let labels = target
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(",");
    let pods = list(client, ns, &Res::POD, Some(&labels)).await?;
    if pods.is_empty() {
        return Err(ActionError::Refused(format!(
            "no pods of {key}={to} to send traffic to (selector {labels})"
        )));
    }
    // Every Deployment of that colour must have its full count of Ready pods too.
    let deploys = list(client, ns, &Res::DEPLOYMENT, None).await?;
    let short: Vec<String> = deploys
        .iter()
        .filter(|d| {
            target.iter().all(|(k, v)| {
                d.pointer("/spec/template/metadata/labels")
                    .and_then(|l| l.get(k))
                    == Some(v)
            })
        })
        .filter_map(|d| {
            let want = d
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let ready = d
                .pointer("/status/readyReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            (ready < want).then(|| format!("Deployment/{} has {ready} of {want} Ready", name_of(d)))
        })
        .collect();
    let not_ready: Vec<String> = pods
        .iter()
        .filter(|p| !pod_ready(p))
        .map(|p| {
            let why = p
                .pointer("/status/containerStatuses/0/state/waiting/reason")
                .and_then(Value::as_str)
                .or_else(|| str_at(p, "/status/phase"))
                .unwrap_or("not Ready");
            format!("{} ({why})", name_of(p))
        })
        .collect();
    if !not_ready.is_empty() {
        return Err(ActionError::Refused(format!(
            "refusing to flip Service/{service} to {key}={to}: {} of {} pods are not Ready: {}",
            not_ready.len(),
            pods.len(),
            not_ready.join(", ")
        )));
    }
    if !short.is_empty() {
        return Err(ActionError::Refused(format!(
            "refusing to flip Service/{service} to {key}={to}: {}",
            short.join("; ")
        )));
    }
    plan.writes = vec![Write::merge(
        Res::SERVICE,
        &svc,
        json!({"spec": {"selector": {key: to}}}),
    )];
    Ok(plan)
}
