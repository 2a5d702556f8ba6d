//! `kubectl rollout undo`, client-side as kubectl does it (see rollout-facts.md): find the
//! target ReplicaSet among those the Deployment owns, copy its pod template (without
//! `pod-template-hash`) and its annotations (except the Deployment's own), one JSON patch.

use kube::Client;
use serde_json::{Map, Value, json};

use super::{ActionError, Goal, Plan, Res, Write, blank, get, list, rv_of};

/// Annotations the Deployment controller and kubectl keep on the Deployment itself.
const KEPT_ANNOTATIONS: &[&str] = &[
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "kubectl.kubernetes.io/last-applied-configuration",
];

/// One revision of a Deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub revision: i64,
    pub images: Vec<String>,
    pub change_cause: Option<String>,
    /// The ReplicaSet's pods are what the Deployment runs now.
    pub current: bool,
}

fn revision_of(o: &Value) -> i64 {
    o.pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn images(template: &Value) -> Vec<String> {
    template
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("image").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Without the `pod-template-hash` label, as templates are compared and restored.
fn template_without_hash(t: &Value) -> Value {
    let mut t = t.clone();
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove("pod-template-hash");
    }
    t
}

/// The ReplicaSets a Deployment controls, newest revision first.
async fn owned(client: &Client, ns: &str, d: &Value) -> Result<Vec<Value>, ActionError> {
    let selector = d
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let uid = d.pointer("/metadata/uid").cloned().unwrap_or_default();
    let mut rss: Vec<Value> = list(client, ns, &Res::REPLICASET, Some(&selector))
        .await?
        .into_iter()
        .filter(|rs| {
            rs.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|os| {
                    os.iter().any(|o| {
                        o.get("controller").and_then(Value::as_bool) == Some(true)
                            && o.get("uid") == Some(&uid)
                    })
                })
        })
        .collect();
    rss.sort_by_key(|rs| std::cmp::Reverse(revision_of(rs)));
    Ok(rss)
}

/// The revisions of a Deployment, newest first.
pub async fn history(client: &Client, ns: &str, name: &str) -> Result<Vec<Revision>, ActionError> {
    let d = get(client, ns, &Res::DEPLOYMENT, name).await?;
    let current = template_without_hash(d.pointer("/spec/template").unwrap_or(&Value::Null));
    Ok(owned(client, ns, &d)
        .await?
        .iter()
        .map(|rs| {
            let t = rs.pointer("/spec/template").unwrap_or(&Value::Null);
            Revision {
                revision: revision_of(rs),
                images: images(t),
                change_cause: rs
                    .pointer("/metadata/annotations/kubernetes.io~1change-cause")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                current: template_without_hash(t) == current,
            }
        })
        .collect())
}

/// Resolve `to_revision` (0: the previous one) to an existing revision, kubectl's way.
pub async fn resolve(
    client: &Client,
    ns: &str,
    name: &str,
    to_revision: i64,
) -> Result<i64, ActionError> {
    let d = get(client, ns, &Res::DEPLOYMENT, name).await?;
    if d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        return Err(ActionError::Refused(format!(
            "Deployment/{name} is paused: resume it before rolling back (kubectl refuses too)"
        )));
    }
    let rss = owned(client, ns, &d).await?;
    let known: Vec<String> = rss.iter().map(|rs| revision_of(rs).to_string()).collect();
    if to_revision == 0 {
        return rss.get(1).map(revision_of).ok_or_else(|| {
            ActionError::Refused(format!(
                "Deployment/{name} has no previous revision to roll back to"
            ))
        });
    }
    if rss.iter().any(|rs| revision_of(rs) == to_revision) {
        Ok(to_revision)
    } else {
        Err(ActionError::Refused(format!(
            "Deployment/{name} has no revision {to_revision}; revisions: {}",
            known.join(", ")
        )))
    }
}

/// Plan the undo to `revision`.
pub async fn plan(
    client: &Client,
    ns: &str,
    name: &str,
    revision: i64,
) -> Result<Plan, ActionError> {
    let d = get(client, ns, &Res::DEPLOYMENT, name).await?;
    let goal = Goal::Revision {
        deployment: name.to_string(),
        revision,
    };
    if d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        return Err(ActionError::Refused(format!(
            "Deployment/{name} is paused: resume it before rolling back (kubectl refuses too)"
        )));
    }
    let rss = owned(client, ns, &d).await?;
    let Some(target) = rss.iter().find(|rs| revision_of(rs) == revision) else {
        let known: Vec<String> = rss.iter().map(|rs| revision_of(rs).to_string()).collect();
        return Err(ActionError::Refused(format!(
            "Deployment/{name} has no revision {revision}; revisions: {}",
            known.join(", ")
        )));
    };
    let new_template =
        template_without_hash(target.pointer("/spec/template").unwrap_or(&Value::Null));
    let current = d.pointer("/spec/template").cloned().unwrap_or_default();
    let mut plan = blank(&d, "Deployment", goal);
    let (from_images, to_images) = (images(&current), images(&new_template));
    plan.before = json!({"revision": revision_of(&d), "images": from_images});
    plan.after = json!({"revision": revision, "images": to_images});
    plan.changes = vec![format!(
        "Deployment/{name} revision {} → {revision} (becomes revision {})",
        revision_of(&d),
        rss.first().map_or(0, revision_of) + 1
    )];
    for (a, b) in from_images.iter().zip(&to_images) {
        if a != b {
            plan.changes.push(format!("image {a} → {b}"));
        }
    }
    if let Some(cause) = target
        .pointer("/metadata/annotations/kubernetes.io~1change-cause")
        .and_then(Value::as_str)
    {
        plan.changes.push(format!("change-cause: {cause}"));
    }
    if template_without_hash(&current) == new_template {
        plan.noop = true;
        plan.after = plan.before.clone();
        plan.changes = vec![format!(
            "Deployment/{name} already runs revision {revision}'s template: nothing to roll back"
        )];
        return Ok(plan);
    }
    let mut annotations: Map<String, Value> = d
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .map(|a| {
            a.iter()
                .filter(|(k, _)| KEPT_ANNOTATIONS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(a) = target
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        for (k, v) in a {
            if !KEPT_ANNOTATIONS.contains(&k.as_str()) {
                annotations.insert(k.clone(), v.clone());
            }
        }
    }
    plan.writes = vec![Write {
        res: Res::DEPLOYMENT,
        name: name.to_string(),
        subresource: None,
        body: super::Body::Json(json!([
            // Replacing resourceVersion with the one read makes it a precondition (409 if stale).
            {"op": "replace", "path": "/metadata/resourceVersion", "value": rv_of(&d)},
            {"op": "replace", "path": "/spec/template", "value": new_template},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations},
        ])),
    }];
    Ok(plan)
}
