//! The ReplicaSet controller: keeps the number of live pods at `spec.replicas` (new pods from
//! the template, surplus pods deleted least-ready and newest first) and reports status.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::super::Sandbox;
use super::super::clock::format_time;
use super::super::store::{WriteOpts, meta_str, name_of};
use super::{
    Note, controller_uid, emit_event, i64_at, log_err, owner_ref, pod_ready, pods, replicasets,
    uid_of,
};

const MANAGER: &str = "replicaset-controller";

pub fn reconcile(sb: &Sandbox, ns: &str, rs: &Value, now: Timestamp) {
    if meta_str(rs, "deletionTimestamp").is_some() {
        return;
    }
    let uid = uid_of(rs);
    let (all, _) = sb.store.list(pods(), Some(ns));
    let mut live: Vec<&Value> = all
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| controller_uid(p) == Some(uid) && meta_str(p, "deletionTimestamp").is_none())
        .collect();
    let want = rs
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0) as usize;
    if live.len() < want {
        for _ in live.len()..want {
            create_pod(sb, ns, rs, now);
        }
    } else if live.len() > want {
        // Delete the least useful first: unscheduled, pending, not ready, then newest.
        live.sort_by_key(|p| {
            let rank = if p.pointer("/spec/nodeName").is_none() {
                0
            } else if p.pointer("/status/phase").and_then(Value::as_str) == Some("Pending") {
                1
            } else if !pod_ready(p) {
                2
            } else {
                3
            };
            (
                rank,
                std::cmp::Reverse(
                    meta_str(p, "creationTimestamp")
                        .unwrap_or_default()
                        .to_string(),
                ),
            )
        });
        for p in live.iter().take(live.len() - want) {
            let name = name_of(p).to_string();
            if sb
                .store
                .delete(pods(), ns, &name, None, None, false)
                .is_ok()
            {
                emit_event(
                    sb,
                    rs,
                    Note::normal(MANAGER, "SuccessfulDelete", format!("Deleted pod: {name}")),
                    now,
                );
            }
        }
        live.truncate(want);
    }
    sync_status(sb, ns, rs, &all, uid);
}

fn create_pod(sb: &Sandbox, ns: &str, rs: &Value, now: Timestamp) {
    let tpl = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut meta = Map::new();
    meta.insert("generateName".into(), json!(format!("{}-", name_of(rs))));
    meta.insert("namespace".into(), json!(ns));
    if let Some(l) = tpl.pointer("/metadata/labels") {
        meta.insert("labels".into(), l.clone());
    }
    if let Some(a) = tpl.pointer("/metadata/annotations") {
        meta.insert("annotations".into(), a.clone());
    }
    meta.insert(
        "ownerReferences".into(),
        owner_ref(rs, "ReplicaSet", "apps/v1"),
    );
    let pod = json!({
        "metadata": meta,
        "spec": tpl.get("spec").cloned().unwrap_or(json!({})),
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    });
    match sb
        .store
        .create(pods(), ns, pod, &WriteOpts::controller(super::WRITER))
    {
        Ok(p) => emit_event(
            sb,
            rs,
            Note::normal(
                MANAGER,
                "SuccessfulCreate",
                format!("Created pod: {}", name_of(&p)),
            ),
            now,
        ),
        Err(e) => log_err("create pod", Err::<(), _>(e)),
    }
    let _ = format_time;
}

fn sync_status(sb: &Sandbox, ns: &str, rs: &Value, all: &[std::sync::Arc<Value>], uid: &str) {
    let owned: Vec<&Value> = all
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| controller_uid(p) == Some(uid) && meta_str(p, "deletionTimestamp").is_none())
        .collect();
    let replicas = owned.len() as i64;
    let ready = owned.iter().filter(|p| pod_ready(p)).count() as i64;
    let mut status = Map::new();
    status.insert("replicas".into(), json!(replicas));
    status.insert("fullyLabeledReplicas".into(), json!(replicas));
    status.insert("readyReplicas".into(), json!(ready));
    status.insert("availableReplicas".into(), json!(ready));
    status.retain(|_, v| v.as_i64() != Some(0));
    if !status.contains_key("replicas") {
        status.insert("replicas".into(), json!(0));
    }
    status.insert(
        "observedGeneration".into(),
        json!(i64_at(rs, "/metadata/generation")),
    );
    let status = Value::Object(status);
    if rs.get("status") == Some(&status) {
        return;
    }
    let name = name_of(rs).to_string();
    log_err(
        "replicaset status",
        sb.store.modify(
            replicasets(),
            ns,
            &name,
            &WriteOpts::status(super::WRITER),
            |o| {
                if let Some(m) = o.as_object_mut() {
                    m.insert("status".into(), status);
                }
                Ok(())
            },
        ),
    );
}
