//! Kubernetes objects to the cockpit's compact view models. Strings that came from the
//! cluster are stored as they are and made safe where they are drawn; log lines are made
//! safe here, on arrival.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::DynamicObject;

use serde_json::Value;

use crate::app::state::{
    ArgoRolloutView, DeploymentView, DestinationRuleView, EventView, IngressView, IstioDestination,
    Labels, PodView, ReplicaSetView, RouteView, ServiceView, TraefikServiceView,
    VirtualServiceView,
};

fn labels(m: &Option<BTreeMap<String, String>>) -> Labels {
    m.clone().unwrap_or_default()
}

fn ts(t: &Option<Time>) -> Option<Timestamp> {
    t.as_ref().map(|t| t.0)
}

fn name(meta: &ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

/// The revision annotation of a Deployment's (or an Argo Rollout's) ReplicaSet.
fn revision(meta: &ObjectMeta) -> i64 {
    let a = meta.annotations.as_ref();
    [
        "deployment.kubernetes.io/revision",
        "rollout.argoproj.io/revision",
    ]
    .iter()
    .find_map(|k| a.and_then(|a| a.get(*k)))
    .and_then(|r| r.trim().parse().ok())
    .unwrap_or(0)
}

fn controller_owner(meta: &ObjectMeta, kind: &str) -> Option<String> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == kind)
        .map(|o| o.name.clone())
}

pub fn deployment(d: &Deployment) -> DeploymentView {
    let spec = d.spec.as_ref();
    let status = d.status.as_ref();
    let template = spec.map(|s| &s.template);
    DeploymentView {
        name: name(&d.metadata),
        labels: labels(&d.metadata.labels),
        selector: spec
            .and_then(|s| s.selector.match_labels.clone())
            .unwrap_or_default(),
        template_labels: template
            .and_then(|t| t.metadata.as_ref())
            .map(|m| labels(&m.labels))
            .unwrap_or_default(),
        annotations: labels(&d.metadata.annotations),
        replicas: spec.and_then(|s| s.replicas).unwrap_or(1),
        images: template
            .and_then(|t| t.spec.as_ref())
            .map(|s| {
                s.containers
                    .iter()
                    .filter_map(|c| c.image.clone())
                    .collect()
            })
            .unwrap_or_default(),
        revision: revision(&d.metadata),
        generation: d.metadata.generation.unwrap_or(0),
        observed_generation: status.and_then(|s| s.observed_generation).unwrap_or(0),
        status_replicas: status.and_then(|s| s.replicas).unwrap_or(0),
        updated: status.and_then(|s| s.updated_replicas).unwrap_or(0),
        ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
        available: status.and_then(|s| s.available_replicas).unwrap_or(0),
        paused: spec.and_then(|s| s.paused).unwrap_or(false),
        progressing: status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Progressing"))
            .map(|c| {
                (
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                )
            }),
        created: ts(&d.metadata.creation_timestamp),
    }
}

pub fn replicaset(rs: &ReplicaSet) -> ReplicaSetView {
    let rs_labels = rs.metadata.labels.as_ref();
    ReplicaSetView {
        name: name(&rs.metadata),
        owner: controller_owner(&rs.metadata, "Deployment"),
        rollout: controller_owner(&rs.metadata, "Rollout"),
        hash: ["rollouts-pod-template-hash", "pod-template-hash"]
            .iter()
            .find_map(|k| rs_labels.and_then(|l| l.get(*k)))
            .cloned()
            .unwrap_or_default(),
        revision: revision(&rs.metadata),
        images: rs
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
            .unwrap_or_default(),
        change_cause: rs
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kubernetes.io/change-cause"))
            .cloned(),
        replicas: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
        ready: rs
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0),
        created: ts(&rs.metadata.creation_timestamp),
    }
}

/// kubectl's STATUS column for a pod (the printer's rules, simplified to what pods show).
fn pod_status(p: &Pod) -> String {
    if p.metadata.deletion_timestamp.is_some() {
        return "Terminating".into();
    }
    let status = p.status.as_ref();
    let mut reason = status
        .and_then(|s| s.reason.clone())
        .or_else(|| status.and_then(|s| s.phase.clone()))
        .unwrap_or_else(|| "Unknown".into());
    let mut running = false;
    for c in status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .rev()
    {
        let state = c.state.as_ref();
        if let Some(w) = state
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone())
        {
            reason = w;
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            reason = t.reason.clone().unwrap_or_else(|| match t.signal {
                Some(sig) => format!("Signal:{sig}"),
                None => format!("ExitCode:{}", t.exit_code),
            });
        } else if c.ready && state.and_then(|s| s.running.as_ref()).is_some() {
            running = true;
        }
    }
    if reason == "Completed" && running {
        reason = "Running".into();
    }
    reason
}

pub fn pod(p: &Pod) -> PodView {
    let statuses = p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    let containers = p.spec.as_ref().map(|s| s.containers.len()).unwrap_or(0);
    let ready_cond = p
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let image = p
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    PodView {
        name: name(&p.metadata),
        labels: labels(&p.metadata.labels),
        version: crate::app::derive::image_tag(&image).to_string(),
        status: pod_status(p),
        ready_containers: statuses.iter().filter(|c| c.ready).count() as u16,
        containers: containers as u16,
        ready: ready_cond,
        restarts: statuses.iter().map(|c| c.restart_count).sum(),
        last_restart: statuses
            .iter()
            .filter_map(|c| {
                c.last_state
                    .as_ref()?
                    .terminated
                    .as_ref()?
                    .finished_at
                    .as_ref()
            })
            .map(|t| t.0)
            .max(),
        created: ts(&p.metadata.creation_timestamp),
        node: p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        owner: controller_owner(&p.metadata, "ReplicaSet"),
    }
}

pub fn service(s: &Service) -> ServiceView {
    ServiceView {
        name: name(&s.metadata),
        selector: s
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default(),
    }
}

pub fn route(r: &DynamicObject) -> RouteView {
    let backends = r
        .data
        .pointer("/spec/rules/0/backendRefs")
        .and_then(|b| b.as_array())
        .map(|refs| {
            refs.iter()
                .map(|b| {
                    (
                        b.get("name")
                            .and_then(|n| n.as_str())
                            .unwrap_or_default()
                            .to_string(),
                        b.get("weight").and_then(|w| w.as_i64()).unwrap_or(1),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    RouteView {
        name: name(&r.metadata),
        backends,
    }
}

pub const NGINX_CANARY: &str = "nginx.ingress.kubernetes.io/canary";
pub const NGINX_WEIGHT: &str = "nginx.ingress.kubernetes.io/canary-weight";
pub const NGINX_WEIGHT_TOTAL: &str = "nginx.ingress.kubernetes.io/canary-weight-total";

pub fn ingress(i: &Ingress) -> IngressView {
    let ann = |k: &str| {
        i.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .cloned()
    };
    let spec = i.spec.as_ref();
    let default = spec
        .and_then(|s| s.default_backend.as_ref())
        .and_then(|b| b.service.as_ref())
        .map(|s| s.name.clone());
    let paths = spec
        .and_then(|s| s.rules.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|r| r.http.as_ref())
        .flat_map(|h| &h.paths)
        .filter_map(|p| p.backend.service.as_ref())
        .map(|s| s.name.clone());
    let mut backends: Vec<String> = default.into_iter().chain(paths).collect();
    backends.dedup();
    IngressView {
        name: name(&i.metadata),
        canary: ann(NGINX_CANARY).is_some_and(|v| v.trim() == "true"),
        canary_weight: ann(NGINX_WEIGHT),
        canary_weight_total: ann(NGINX_WEIGHT_TOTAL),
        backends,
    }
}

/// A JSON object of strings (labels, annotations, a selector's matchLabels) at `ptr`.
fn string_map(v: &Value, ptr: &str) -> Labels {
    v.pointer(ptr)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn str_at(v: &Value, ptr: &str) -> String {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A whole number written as a number or a string (Argo writes `observedGeneration` as one).
fn int_at(v: &Value, ptr: &str) -> Option<i64> {
    match v.pointer(ptr)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An Argo Rollout (`argoproj.io/v1alpha1`), read from its JSON: nothing in it is trusted to
/// have the expected shape.
pub fn argo_rollout(r: &DynamicObject) -> ArgoRolloutView {
    let d = &r.data;
    let to_i32 = |n: i64| i32::try_from(n.max(0)).unwrap_or(i32::MAX);
    ArgoRolloutView {
        name: name(&r.metadata),
        labels: labels(&r.metadata.labels),
        annotations: labels(&r.metadata.annotations),
        selector: string_map(d, "/spec/selector/matchLabels"),
        template_labels: string_map(d, "/spec/template/metadata/labels"),
        images: d
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("image").and_then(Value::as_str))
            .map(str::to_string)
            .collect(),
        replicas: to_i32(int_at(d, "/spec/replicas").unwrap_or(1)),
        revision: r
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("rollout.argoproj.io/revision"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
        generation: r.metadata.generation.unwrap_or(0),
        observed_generation: int_at(d, "/status/observedGeneration").unwrap_or(0),
        paused: d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true),
        pause_conditions: d
            .pointer("/status/pauseConditions")
            .and_then(Value::as_array)
            .is_some_and(|c| !c.is_empty()),
        abort: d.pointer("/status/abort").and_then(Value::as_bool) == Some(true),
        phase: str_at(d, "/status/phase"),
        message: str_at(d, "/status/message"),
        canary_weight: int_at(d, "/status/canary/weights/canary/weight"),
        step_index: int_at(d, "/status/currentStepIndex"),
        steps: d
            .pointer("/spec/strategy/canary/steps")
            .and_then(Value::as_array)
            .map_or(0, |s| s.len() as i64),
        stable_hash: str_at(d, "/status/stableRS"),
        current_hash: str_at(d, "/status/currentPodHash"),
        ready: to_i32(int_at(d, "/status/readyReplicas").unwrap_or(0)),
        created: ts(&r.metadata.creation_timestamp),
    }
}

/// The elements of the JSON array at `ptr` (none where it is not an array).
fn array_at<'a>(v: &'a Value, ptr: &str) -> impl Iterator<Item = &'a Value> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A Traefik TraefikService (`traefik.io` or `traefik.containo.us`, `v1alpha1`): its
/// weighted services, read from its JSON.
pub fn traefik_service(t: &DynamicObject) -> TraefikServiceView {
    TraefikServiceView {
        name: name(&t.metadata),
        services: array_at(&t.data, "/spec/weighted/services")
            .map(|s| (str_at(s, "/name"), s.get("weight").and_then(Value::as_i64)))
            .collect(),
    }
}

/// An Istio VirtualService (`networking.istio.io`): the destinations of its HTTP routes.
pub fn virtual_service(v: &DynamicObject) -> VirtualServiceView {
    VirtualServiceView {
        name: name(&v.metadata),
        http: array_at(&v.data, "/spec/http")
            .map(|h| {
                array_at(h, "/route")
                    .map(|r| IstioDestination {
                        host: str_at(r, "/destination/host"),
                        subset: r
                            .pointer("/destination/subset")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        weight: r.get("weight").and_then(Value::as_i64),
                    })
                    .collect()
            })
            .collect(),
    }
}

/// An Istio DestinationRule (`networking.istio.io`): its host's subsets.
pub fn destination_rule(d: &DynamicObject) -> DestinationRuleView {
    DestinationRuleView {
        name: name(&d.metadata),
        host: str_at(&d.data, "/spec/host"),
        subsets: array_at(&d.data, "/spec/subsets")
            .filter_map(|s| {
                let n = s.get("name").and_then(Value::as_str)?;
                Some((n.to_string(), string_map(s, "/labels")))
            })
            .collect(),
    }
}

pub fn event(e: &Event) -> EventView {
    let obj = &e.involved_object;
    EventView {
        time: ts(&e.last_timestamp)
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
            .or_else(|| ts(&e.first_timestamp))
            .or_else(|| ts(&e.metadata.creation_timestamp)),
        warning: e.type_.as_deref() == Some("Warning"),
        reason: e.reason.clone().unwrap_or_default(),
        object: format!(
            "{}/{}",
            obj.kind.clone().unwrap_or_default().to_lowercase(),
            obj.name.clone().unwrap_or_default()
        ),
        message: e.message.clone().unwrap_or_default().trim_end().to_string(),
        count: e.count.unwrap_or(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_nginx_canary_ingress_keeps_its_annotations_and_backends() {
        let i: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "catalog-canary", "annotations": {
                "nginx.ingress.kubernetes.io/canary": "true",
                "nginx.ingress.kubernetes.io/canary-weight": "10"
            }},
            "spec": {
                "defaultBackend": {"service": {"name": "catalog-canary", "port": {"number": 80}}},
                "rules": [{"host": "catalog.example", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": "catalog-canary", "port": {"number": 80}}}},
                    {"path": "/img", "pathType": "Prefix",
                     "backend": {"service": {"name": "images", "port": {"number": 80}}}}
                ]}}, {"host": "other.example"}]
            }
        }))
        .expect("an Ingress");
        let v = ingress(&i);
        assert!(v.canary);
        assert_eq!(v.canary_weight.as_deref(), Some("10"));
        assert_eq!(v.canary_weight_total, None);
        assert_eq!(v.backends, ["catalog-canary", "images"]);

        let plain: Ingress =
            serde_json::from_value(json!({"metadata": {"name": "catalog"}})).expect("an Ingress");
        assert_eq!(
            ingress(&plain),
            IngressView {
                name: "catalog".into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn an_argo_rollout_is_read_from_its_json_whatever_its_shape() {
        let r: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "cart", "generation": 2, "labels": {"app": "cart"},
                         "annotations": {"rollout.argoproj.io/revision": "2"}},
            "spec": {
                "replicas": 4,
                "selector": {"matchLabels": {"app": "cart"}},
                "template": {"metadata": {"labels": {"app": "cart"}},
                             "spec": {"containers": [{"name": "cart", "image": "registry.local/cart:2.1.0"}]}},
                "strategy": {"canary": {"steps": [
                    {"setWeight": 20}, {"pause": {}}, {"setWeight": 50},
                    {"pause": {"duration": "30s"}}, {"setWeight": 100}
                ]}}
            },
            "status": {
                "phase": "Paused", "message": "CanaryPauseStep",
                "observedGeneration": "2", "currentStepIndex": 1,
                "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-01-01T00:00:00Z"}],
                "canary": {"weights": {"canary": {"weight": 20}, "stable": {"weight": 80}}},
                "stableRS": "6f7d9c", "currentPodHash": "58b4f7", "readyReplicas": 5
            }
        }))
        .expect("a Rollout");
        let v = argo_rollout(&r);
        assert_eq!(
            (v.name.as_str(), v.replicas, v.revision, v.steps),
            ("cart", 4, 2, 5)
        );
        assert_eq!(v.images, ["registry.local/cart:2.1.0"]);
        assert_eq!(v.selector.get("app").map(String::as_str), Some("cart"));
        assert_eq!((v.generation, v.observed_generation), (2, 2));
        assert!(v.pause_conditions && !v.paused && !v.abort);
        assert_eq!(v.phase, "Paused");
        assert_eq!((v.canary_weight, v.step_index), (Some(20), Some(1)));
        assert_eq!(
            (v.stable_hash.as_str(), v.current_hash.as_str()),
            ("6f7d9c", "58b4f7")
        );

        // Junk where numbers and lists belong reads as absent, never as a panic.
        let junk: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "odd"},
            "spec": {"replicas": "many", "strategy": {"canary": {"steps": 3}},
                     "template": {"spec": {"containers": {"image": 1}}}},
            "status": {"currentStepIndex": [], "canary": "yes", "pauseConditions": {}}
        }))
        .expect("a Rollout");
        let v = argo_rollout(&junk);
        assert_eq!((v.replicas, v.steps, v.step_index), (1, 0, None));
        assert_eq!(v.canary_weight, None);
        assert!(v.images.is_empty() && !v.pause_conditions);
    }

    #[test]
    fn a_traefik_service_keeps_its_weighted_services() {
        let t: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "traefik.io/v1alpha1", "kind": "TraefikService",
            "metadata": {"name": "inventory"},
            "spec": {"weighted": {"services": [
                {"name": "inventory", "port": 80, "weight": 9},
                {"name": "inventory-canary", "port": 80, "weight": 1},
                {"name": "inventory-old", "port": 80},
                {"name": "inventory-odd", "port": 80, "weight": "3"}
            ]}}
        }))
        .expect("a TraefikService");
        assert_eq!(
            traefik_service(&t),
            TraefikServiceView {
                name: "inventory".into(),
                services: vec![
                    ("inventory".into(), Some(9)),
                    ("inventory-canary".into(), Some(1)),
                    ("inventory-old".into(), None),
                    ("inventory-odd".into(), None),
                ],
            }
        );
        // A mirroring (or junk) spec has no weighted services.
        let m: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "traefik.io/v1alpha1", "kind": "TraefikService",
            "metadata": {"name": "mirror"},
            "spec": {"mirroring": {"name": "inventory"}, "weighted": {"services": {"name": 1}}}
        }))
        .expect("a TraefikService");
        assert!(traefik_service(&m).services.is_empty());
    }

    #[test]
    fn a_virtual_service_and_destination_rule_are_read_from_their_json() {
        let vs: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "reviews"},
            "spec": {"hosts": ["reviews"], "http": [
                {"match": [{"headers": {"x-canary": {"exact": "1"}}}],
                 "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
                {"route": [
                    {"destination": {"host": "reviews.shop.svc.cluster.local", "subset": "v1",
                                     "port": {"number": 9080}}, "weight": 80},
                    {"destination": {"host": "reviews", "subset": "v2"}, "weight": 20}
                ]},
                {"route": "junk"}
            ]}
        }))
        .expect("a VirtualService");
        let v = virtual_service(&vs);
        assert_eq!(v.name, "reviews");
        assert_eq!(v.http.len(), 3);
        assert_eq!(
            v.http[1],
            [
                IstioDestination {
                    host: "reviews.shop.svc.cluster.local".into(),
                    subset: Some("v1".into()),
                    weight: Some(80),
                },
                IstioDestination {
                    host: "reviews".into(),
                    subset: Some("v2".into()),
                    weight: Some(20),
                },
            ]
        );
        assert_eq!(v.http[0][0].weight, None);
        assert!(v.http[2].is_empty());

        let dr: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "reviews"},
            "spec": {"host": "reviews.shop.svc.cluster.local", "subsets": [
                {"name": "v1", "labels": {"app": "reviews", "track": "stable"}},
                {"name": "v2", "labels": {"app": "reviews", "track": "canary"}},
                {"labels": {"track": "nameless"}}
            ]}
        }))
        .expect("a DestinationRule");
        let d = destination_rule(&dr);
        assert_eq!(d.host, "reviews.shop.svc.cluster.local");
        let names: Vec<&str> = d.subsets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["v1", "v2"]);
        assert_eq!(
            d.subsets[1].1.get("track").map(String::as_str),
            Some("canary")
        );
    }

    #[test]
    fn a_rollouts_replicaset_names_its_rollout_hash_and_revision() {
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {
                "name": "cart-58b4f7",
                "labels": {"app": "cart", "rollouts-pod-template-hash": "58b4f7"},
                "annotations": {"rollout.argoproj.io/revision": "2"},
                "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                    "name": "cart", "uid": "u1", "controller": true}]
            },
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "cart"}}},
            "status": {"replicas": 1, "readyReplicas": 1}
        }))
        .expect("a ReplicaSet");
        let v = replicaset(&rs);
        assert_eq!(v.owner, None);
        assert_eq!(v.rollout.as_deref(), Some("cart"));
        assert_eq!((v.hash.as_str(), v.revision, v.ready), ("58b4f7", 2, 1));
    }
}
