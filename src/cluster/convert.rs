//! Kubernetes objects to the cockpit's compact view models. Strings that came from the
//! cluster are stored as they are and made safe where they are drawn; log lines are made
//! safe here, on arrival.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::DynamicObject;

use crate::app::state::{
    DeploymentView, EventView, Labels, PodView, ReplicaSetView, RouteView, ServiceView,
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

fn revision(meta: &ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .and_then(|r| r.parse().ok())
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
    ReplicaSetView {
        name: name(&rs.metadata),
        owner: controller_owner(&rs.metadata, "Deployment"),
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
