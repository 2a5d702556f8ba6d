//! Actions that change a cluster, shared by the cockpit and the command line: roll a
//! Deployment back as `kubectl rollout undo` does, flip a blue/green Service selector, and set
//! an HTTPRoute canary weight. Each reads fresh state, sends one optimistic-concurrency patch
//! (the resourceVersion it read), and retries once on a 409.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

/// Annotations the Deployment controller and kubectl keep on the Deployment itself.
const KEPT_ANNOTATIONS: &[&str] = &[
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "kubectl.kubernetes.io/last-applied-configuration",
];

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    Refused(String),
    #[error("{object}: {message} ({code})")]
    Api {
        object: String,
        code: u16,
        message: String,
    },
    #[error("{object}: {source}")]
    Client {
        object: String,
        #[source]
        source: kube::Error,
    },
}

fn api_err(object: &str, e: kube::Error) -> ActionError {
    match e {
        kube::Error::Api(s) => ActionError::Api {
            object: object.to_string(),
            code: s.code,
            message: s.message,
        },
        other => ActionError::Client {
            object: object.to_string(),
            source: other,
        },
    }
}

fn is_conflict(e: &ActionError) -> bool {
    matches!(e, ActionError::Api { code: 409, .. })
}

/// What an action changed: the exact before → after, for the confirmation and the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub object: String,
    pub before: Value,
    pub after: Value,
}

/// The revisions of a Deployment, newest first: (revision, images, change-cause).
pub async fn history(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<Vec<(i64, Vec<String>, Option<String>)>, ActionError> {
    let object = format!("deployment/{name}");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d = deploys.get(name).await.map_err(|e| api_err(&object, e))?;
    let mut out: Vec<_> = owned_replicasets(client, ns, &d)
        .await?
        .iter()
        .map(|rs| {
            let images = rs
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref())
                .map(|s| {
                    s.containers
                        .iter()
                        .filter_map(|c| c.image.clone())
                        .collect()
                })
                .unwrap_or_default();
            let cause = rs.annotations().get("kubernetes.io/change-cause").cloned();
            (revision(rs.annotations()), images, cause)
        })
        .collect();
    out.sort_by_key(|h| std::cmp::Reverse(h.0));
    Ok(out)
}

fn revision(annotations: &BTreeMap<String, String>) -> i64 {
    annotations
        .get("deployment.kubernetes.io/revision")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

async fn owned_replicasets(
    client: &Client,
    ns: &str,
    d: &Deployment,
) -> Result<Vec<ReplicaSet>, ActionError> {
    let selector = d
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let list = rss
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| api_err("replicasets", e))?;
    let uid = d.metadata.uid.clone().unwrap_or_default();
    Ok(list
        .items
        .into_iter()
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        })
        .collect())
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

/// `kubectl rollout undo` (to the previous revision when `to_revision` is 0).
pub async fn rollback(
    client: &Client,
    ns: &str,
    name: &str,
    to_revision: i64,
    dry_run: bool,
) -> Result<Applied, ActionError> {
    match rollback_once(client, ns, name, to_revision, dry_run).await {
        Err(e) if is_conflict(&e) => rollback_once(client, ns, name, to_revision, dry_run).await,
        r => r,
    }
}

async fn rollback_once(
    client: &Client,
    ns: &str,
    name: &str,
    to_revision: i64,
    dry_run: bool,
) -> Result<Applied, ActionError> {
    let object = format!("deployment/{name}");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d = deploys.get(name).await.map_err(|e| api_err(&object, e))?;
    if d.spec.as_ref().and_then(|s| s.paused) == Some(true) {
        return Err(ActionError::Refused(format!(
            "{object} is paused: resume it before rolling back"
        )));
    }
    let mut rss = owned_replicasets(client, ns, &d).await?;
    rss.sort_by_key(|rs| std::cmp::Reverse(revision(rs.annotations())));
    let target = if to_revision == 0 {
        rss.get(1)
    } else {
        rss.iter()
            .find(|rs| revision(rs.annotations()) == to_revision)
    };
    let Some(target) = target else {
        let known: Vec<String> = rss
            .iter()
            .map(|rs| revision(rs.annotations()).to_string())
            .collect();
        return Err(ActionError::Refused(if to_revision == 0 {
            format!("{object} has no previous revision")
        } else {
            format!(
                "{object} has no revision {to_revision}; revisions: {}",
                known.join(", ")
            )
        }));
    };
    let rs_json = serde_json::to_value(target).unwrap_or_default();
    let d_json = serde_json::to_value(&d).unwrap_or_default();
    let new_template =
        template_without_hash(rs_json.pointer("/spec/template").unwrap_or(&Value::Null));
    let current = d_json
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_default();
    if template_without_hash(&current) == new_template {
        return Err(ActionError::Refused(format!(
            "{object} already runs revision {}'s template: nothing to roll back",
            revision(target.annotations())
        )));
    }
    let mut annotations: serde_json::Map<String, Value> = d
        .annotations()
        .iter()
        .filter(|(k, _)| KEPT_ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    for (k, v) in target.annotations() {
        if !KEPT_ANNOTATIONS.contains(&k.as_str()) {
            annotations.insert(k.clone(), json!(v));
        }
    }
    let ops = json!([
        {"op": "replace", "path": "/metadata/resourceVersion", "value": d.resource_version()},
        {"op": "replace", "path": "/spec/template", "value": new_template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]);
    let patch: json_patch::Patch =
        serde_json::from_value(ops).map_err(|e| ActionError::Refused(e.to_string()))?;
    let pp = PatchParams {
        dry_run,
        ..PatchParams::default()
    };
    deploys
        .patch(name, &pp, &Patch::Json::<()>(patch))
        .await
        .map_err(|e| api_err(&object, e))?;
    let images = |t: &Value| {
        t.pointer("/spec/containers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("image").cloned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    Ok(Applied {
        object,
        before: json!({"revision": revision(d.annotations()), "images": images(&current)}),
        after: json!({"revision": revision(target.annotations()), "images": images(&new_template)}),
    })
}

/// Point a blue/green Service at another colour (`version` label), refusing unless every pod
/// of that colour is Ready.
pub async fn flip(
    client: &Client,
    ns: &str,
    service: &str,
    to: &str,
    dry_run: bool,
) -> Result<Applied, ActionError> {
    let object = format!("service/{service}");
    let svcs: Api<Service> = Api::namespaced(client.clone(), ns);
    let svc = svcs.get(service).await.map_err(|e| api_err(&object, e))?;
    let selector = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    let from = selector.get("version").cloned().unwrap_or_default();
    if from == to {
        return Err(ActionError::Refused(format!(
            "{object} already selects version {to}"
        )));
    }
    let mut target = selector.clone();
    target.insert("version".into(), to.to_string());
    let labels = target
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels(&labels))
        .await
        .map_err(|e| api_err("pods", e))?;
    let ready = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let not_ready: Vec<String> = list
        .items
        .iter()
        .filter(|p| !ready(p))
        .map(|p| p.name_any())
        .collect();
    if list.items.is_empty() {
        return Err(ActionError::Refused(format!(
            "no pods of version {to} to send traffic to"
        )));
    }
    if !not_ready.is_empty() {
        return Err(ActionError::Refused(format!(
            "{} of {} {to} pods are not Ready: {}",
            not_ready.len(),
            list.items.len(),
            not_ready.join(", ")
        )));
    }
    let patch = json!({
        "metadata": {"resourceVersion": svc.resource_version()},
        "spec": {"selector": {"version": to}}
    });
    let pp = PatchParams {
        dry_run,
        ..PatchParams::default()
    };
    svcs.patch(service, &pp, &Patch::Merge(&patch))
        .await
        .map_err(|e| api_err(&object, e))?;
    Ok(Applied {
        object,
        before: json!({"selector": {"version": from}}),
        after: json!({"selector": {"version": to}}),
    })
}

/// Set the canary backend's weight of an HTTPRoute's first rule to `percent` (the other
/// backends share the rest in proportion to their current weights).
pub async fn set_route_weight(
    client: &Client,
    ns: &str,
    route: &str,
    canary_service: &str,
    percent: i64,
    dry_run: bool,
) -> Result<Applied, ActionError> {
    let object = format!("httproute/{route}");
    let gvk = kube::api::GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, "httproutes");
    let routes: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let r = routes.get(route).await.map_err(|e| api_err(&object, e))?;
    let refs = r
        .data
        .pointer("/spec/rules/0/backendRefs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !refs
        .iter()
        .any(|b| b.get("name").and_then(Value::as_str) == Some(canary_service))
    {
        return Err(ActionError::Refused(format!(
            "{object} has no backend {canary_service} in its first rule"
        )));
    }
    let weight = |b: &Value| b.get("weight").and_then(Value::as_i64).unwrap_or(1);
    let before: Vec<Value> = refs
        .iter()
        .map(|b| json!({"name": b.get("name"), "weight": weight(b)}))
        .collect();
    let others: i64 = refs
        .iter()
        .filter(|b| b.get("name").and_then(Value::as_str) != Some(canary_service))
        .map(weight)
        .sum();
    let percent = percent.clamp(0, 100);
    let mut left = 100 - percent;
    let n_others = refs.len() - 1;
    let mut seen = 0;
    let new_refs: Vec<Value> = refs
        .iter()
        .map(|b| {
            let mut b = b.clone();
            let w = if b.get("name").and_then(Value::as_str) == Some(canary_service) {
                percent
            } else {
                seen += 1;
                let share = if seen == n_others {
                    left
                } else if others > 0 {
                    (100 - percent) * weight(&b) / others
                } else {
                    (100 - percent) / n_others.max(1) as i64
                };
                left -= share;
                share
            };
            b["weight"] = json!(w);
            b
        })
        .collect();
    let mut rules = r.data.pointer("/spec/rules").cloned().unwrap_or_default();
    rules[0]["backendRefs"] = Value::Array(new_refs.clone());
    let patch = json!({
        "metadata": {"resourceVersion": r.resource_version()},
        "spec": {"rules": rules}
    });
    let pp = PatchParams {
        dry_run,
        ..PatchParams::default()
    };
    routes
        .patch(route, &pp, &Patch::Merge(&patch))
        .await
        .map_err(|e| api_err(&object, e))?;
    let after: Vec<Value> = new_refs
        .iter()
        .map(|b| json!({"name": b.get("name"), "weight": weight(b)}))
        .collect();
    Ok(Applied {
        object,
        before: Value::Array(before),
        after: Value::Array(after),
    })
}
