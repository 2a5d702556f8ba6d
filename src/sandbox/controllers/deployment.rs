//! The Deployment controller: one ReplicaSet per pod template (named by its hash), revision
//! annotations, RollingUpdate within maxSurge/maxUnavailable, Recreate, pause, the
//! Progressing/Available conditions with the progress deadline, and revisionHistoryLimit.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::super::Sandbox;
use super::super::clock::{format_time, parse_time};
use super::super::selector::LabelSelector;
use super::super::store::{WriteOpts, meta_str, metadata_mut, name_of};
use super::{
    Note, annotation, controller_uid, deployments, emit_event, i64_at, int_or_percent, log_err,
    owner_ref, replicasets, revision, template_hash, template_without_hash, uid_of,
};

const MANAGER: &str = "deployment-controller";
const REV: &str = "deployment.kubernetes.io/revision";
const REV_HISTORY: &str = "deployment.kubernetes.io/revision-history";

/// Annotations the controller keeps to itself (not copied between Deployment and ReplicaSet).
const SKIPPED: &[&str] = &[
    REV,
    REV_HISTORY,
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "kubectl.kubernetes.io/last-applied-configuration",
];

pub fn reconcile(sb: &Sandbox, ns: &str, d: &Value, now: Timestamp) {
    if meta_str(d, "deletionTimestamp").is_some() {
        return;
    }
    let name = name_of(d).to_string();
    let uid = uid_of(d).to_string();
    let (all_rs, _) = sb.store.list(replicasets(), Some(ns));
    let mut owned: Vec<Value> = all_rs
        .iter()
        .filter(|rs| controller_uid(rs) == Some(uid.as_str()))
        .map(|rs| (**rs).clone())
        .collect();
    owned.sort_by_key(revision);
    let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let replicas = d
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let paused = d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    let max_rev = owned.iter().map(revision).max().unwrap_or(0);
    let new_idx = owned.iter().position(|rs| {
        rs.pointer("/spec/template").map(template_without_hash) == Some(template.clone())
    });

    // A paused Deployment does not roll out; it only reports status.
    if paused {
        sync_status(sb, ns, d, &owned, new_idx, now, Progress::Paused);
        return;
    }

    let mut progressed = false;
    let new_idx = match new_idx {
        Some(i) => {
            // Rolling back to an old template makes its ReplicaSet the newest revision.
            let rev = revision(&owned[i]);
            if rev < max_rev || annotations_out_of_sync(d, &owned[i]) {
                let target_rev = if rev < max_rev { max_rev + 1 } else { rev };
                let updated = sb.store.modify(
                    replicasets(),
                    ns,
                    name_of(&owned[i]).to_string().as_str(),
                    &WriteOpts::controller(super::WRITER),
                    |rs| {
                        set_rs_annotations(rs, d, target_rev, rev, replicas);
                        Ok(())
                    },
                );
                if let Ok(u) = updated {
                    owned[i] = (*u).clone();
                    progressed = true;
                }
            }
            Some(i)
        }
        None => match create_rs(sb, ns, d, &template, max_rev + 1, replicas, &owned, now) {
            Some(rs) => {
                owned.push(rs);
                progressed = true;
                Some(owned.len() - 1)
            }
            None => None,
        },
    };
    // The Deployment's revision follows its newest ReplicaSet.
    if let Some(i) = new_idx {
        let rev = revision(&owned[i]).to_string();
        if annotation(d, REV) != Some(rev.as_str()) {
            log_err(
                "set deployment revision",
                sb.store.modify(
                    deployments(),
                    ns,
                    &name,
                    &WriteOpts::controller(super::WRITER),
                    |o| {
                        let meta = metadata_mut(o);
                        let ann = meta.entry("annotations").or_insert_with(|| json!({}));
                        if let Some(a) = ann.as_object_mut() {
                            a.insert(REV.into(), json!(rev));
                        }
                        Ok(())
                    },
                ),
            );
        }
    }
    let Some(new_i) = new_idx else {
        return;
    };
    let recreate = d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
    let scaled = if recreate {
        rollout_recreate(sb, ns, d, &mut owned, new_i, replicas, now)
    } else {
        rollout_rolling(sb, ns, d, &mut owned, new_i, replicas, now)
    };
    cleanup_history(sb, ns, d, &owned, new_i);
    let progress = if progressed || scaled {
        Progress::Moved
    } else {
        Progress::Observe
    };
    sync_status(sb, ns, d, &owned, Some(new_i), now, progress);
}

fn annotations_out_of_sync(d: &Value, rs: &Value) -> bool {
    let want = copied_annotations(d);
    want.iter().any(|(k, v)| annotation(rs, k) != v.as_str())
}

fn copied_annotations(d: &Value) -> Map<String, Value> {
    d.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .map(|a| {
            a.iter()
                .filter(|(k, _)| !SKIPPED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// `desired-replicas` and `max-replicas`, which every scaling updates.
fn set_replicas_annotations(rs: &mut Value, d: &Value, replicas: i64) {
    let max_surge = int_or_percent(
        d.pointer("/spec/strategy/rollingUpdate/maxSurge"),
        replicas,
        true,
        "25%",
    );
    let meta = metadata_mut(rs);
    let ann = meta.entry("annotations").or_insert_with(|| json!({}));
    if let Some(a) = ann.as_object_mut() {
        a.insert(
            "deployment.kubernetes.io/desired-replicas".into(),
            json!(replicas.to_string()),
        );
        a.insert(
            "deployment.kubernetes.io/max-replicas".into(),
            json!((replicas + max_surge).to_string()),
        );
    }
}

/// The new ReplicaSet takes the Deployment's annotations (change-cause among them) and revision.
fn set_rs_annotations(rs: &mut Value, d: &Value, rev: i64, old_rev: i64, replicas: i64) {
    set_replicas_annotations(rs, d, replicas);
    let meta = metadata_mut(rs);
    let ann = meta.entry("annotations").or_insert_with(|| json!({}));
    if let Some(a) = ann.as_object_mut() {
        for (k, v) in copied_annotations(d) {
            a.insert(k, v);
        }
        if rev != old_rev && old_rev > 0 {
            let hist = match a.get(REV_HISTORY).and_then(Value::as_str) {
                Some(h) if !h.is_empty() => format!("{h},{old_rev}"),
                _ => old_rev.to_string(),
            };
            a.insert(REV_HISTORY.into(), json!(hist));
        }
        a.insert(REV.into(), json!(rev.to_string()));
    }
}

#[allow(clippy::too_many_arguments)]
fn create_rs(
    sb: &Sandbox,
    ns: &str,
    d: &Value,
    template: &Value,
    rev: i64,
    replicas: i64,
    owned: &[Value],
    now: Timestamp,
) -> Option<Value> {
    let hash = template_hash(template);
    let rs_name = format!("{}-{hash}", name_of(d));
    let mut tpl = template.clone();
    if let Some(m) = tpl.as_object_mut() {
        let meta = m.entry("metadata").or_insert_with(|| json!({}));
        if let Some(mm) = meta.as_object_mut() {
            let labels = mm.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("pod-template-hash".into(), json!(hash));
            }
        }
    }
    let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
    if let Some(s) = selector.as_object_mut() {
        let ml = s.entry("matchLabels").or_insert_with(|| json!({}));
        if let Some(m) = ml.as_object_mut() {
            m.insert("pod-template-hash".into(), json!(hash));
        }
    }
    let mut labels = tpl
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    if let Some(l) = labels.as_object_mut() {
        sort_map(l);
    }
    // Recreate starts the new ReplicaSet at 0; RollingUpdate scales it up in the rollout step.
    let mut rs = json!({
        "metadata": {
            "name": rs_name,
            "namespace": ns,
            "labels": labels,
            "annotations": {},
            "ownerReferences": owner_ref(d, "Deployment", "apps/v1"),
        },
        "spec": {"replicas": 0, "selector": selector, "template": tpl},
    });
    let _ = owned;
    set_rs_annotations(&mut rs, d, rev, 0, replicas);
    match sb
        .store
        .create(replicasets(), ns, rs, &WriteOpts::controller(super::WRITER))
    {
        Ok(created) => {
            let _ = now;
            Some((*created).clone())
        }
        Err(e) => {
            log_err("create replicaset", Err::<(), _>(e));
            None
        }
    }
}

fn sort_map(m: &mut Map<String, Value>) {
    let mut entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    m.extend(entries);
}

fn spec_replicas(rs: &Value) -> i64 {
    i64_at(rs, "/spec/replicas")
}

fn available(rs: &Value) -> i64 {
    i64_at(rs, "/status/availableReplicas")
}

/// Scale a ReplicaSet and record the event. Returns whether it changed.
fn scale_rs(sb: &Sandbox, ns: &str, d: &Value, rs: &mut Value, to: i64, now: Timestamp) -> bool {
    let from = spec_replicas(rs);
    if from == to {
        return false;
    }
    let rs_name = name_of(rs).to_string();
    let replicas = i64_at(d, "/spec/replicas");
    let res = sb.store.modify(
        replicasets(),
        ns,
        &rs_name,
        &WriteOpts::controller(super::WRITER),
        |o| {
            if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("replicas".into(), json!(to));
            }
            set_replicas_annotations(o, d, replicas);
            Ok(())
        },
    );
    match res {
        Ok(u) => {
            *rs = (*u).clone();
            let dir = if to > from { "up" } else { "down" };
            emit_event(
                sb,
                d,
                Note::normal(
                    MANAGER,
                    "ScalingReplicaSet",
                    format!("Scaled {dir} replica set {rs_name} to {to} from {from}"),
                ),
                now,
            );
            true
        }
        Err(e) => {
            log_err("scale replicaset", Err::<(), _>(e));
            false
        }
    }
}

fn rollout_recreate(
    sb: &Sandbox,
    ns: &str,
    d: &Value,
    owned: &mut [Value],
    new_i: usize,
    replicas: i64,
    now: Timestamp,
) -> bool {
    let mut changed = false;
    for (i, rs) in owned.iter_mut().enumerate() {
        if i != new_i && spec_replicas(rs) > 0 {
            changed |= scale_rs(sb, ns, d, rs, 0, now);
        }
    }
    let old_pods: i64 = owned
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != new_i)
        .map(|(_, rs)| i64_at(rs, "/status/replicas"))
        .sum();
    if old_pods == 0 && !changed {
        changed |= scale_rs(sb, ns, d, &mut owned[new_i], replicas, now);
    }
    changed
}

fn rollout_rolling(
    sb: &Sandbox,
    ns: &str,
    d: &Value,
    owned: &mut [Value],
    new_i: usize,
    replicas: i64,
    now: Timestamp,
) -> bool {
    let surge = int_or_percent(
        d.pointer("/spec/strategy/rollingUpdate/maxSurge"),
        replicas,
        true,
        "25%",
    );
    let mut unavailable = int_or_percent(
        d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
        replicas,
        false,
        "25%",
    );
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    let mut changed = false;
    // Scale up the new ReplicaSet within maxSurge.
    let total: i64 = owned.iter().map(spec_replicas).sum();
    let new_replicas = spec_replicas(&owned[new_i]);
    if new_replicas > replicas {
        changed |= scale_rs(sb, ns, d, &mut owned[new_i], replicas, now);
    } else if new_replicas < replicas {
        let room = (replicas + surge - total).min(replicas - new_replicas);
        if room > 0 {
            changed |= scale_rs(sb, ns, d, &mut owned[new_i], new_replicas + room, now);
        }
    }
    // Scale down old ReplicaSets within maxUnavailable: unhealthy replicas first.
    let min_available = replicas - unavailable;
    let all_pods: i64 = owned.iter().map(spec_replicas).sum();
    let new_unavailable = (spec_replicas(&owned[new_i]) - available(&owned[new_i])).max(0);
    let mut budget = all_pods - min_available - new_unavailable;
    if budget <= 0 {
        return changed;
    }
    let mut order: Vec<usize> = (0..owned.len()).filter(|i| *i != new_i).collect();
    order.sort_by_key(|i| {
        meta_str(&owned[*i], "creationTimestamp")
            .unwrap_or_default()
            .to_string()
    });
    for &i in &order {
        let unhealthy = (spec_replicas(&owned[i]) - available(&owned[i])).max(0);
        let cut = unhealthy.min(budget);
        if cut > 0 {
            let to = spec_replicas(&owned[i]) - cut;
            changed |= scale_rs(sb, ns, d, &mut owned[i], to, now);
            budget -= cut;
        }
    }
    let available_all: i64 = owned.iter().map(available).sum();
    let mut budget = available_all - min_available;
    for &i in &order {
        if budget <= 0 {
            break;
        }
        let cut = spec_replicas(&owned[i]).min(budget);
        if cut > 0 {
            let to = spec_replicas(&owned[i]) - cut;
            changed |= scale_rs(sb, ns, d, &mut owned[i], to, now);
            budget -= cut;
        }
    }
    changed
}

/// Keep at most revisionHistoryLimit old ReplicaSets that are scaled to zero.
fn cleanup_history(sb: &Sandbox, ns: &str, d: &Value, owned: &[Value], new_i: usize) {
    let limit = d
        .pointer("/spec/revisionHistoryLimit")
        .and_then(Value::as_i64)
        .unwrap_or(10)
        .max(0) as usize;
    let mut old: Vec<&Value> = owned
        .iter()
        .enumerate()
        .filter(|(i, rs)| {
            *i != new_i && spec_replicas(rs) == 0 && i64_at(rs, "/status/replicas") == 0
        })
        .map(|(_, rs)| rs)
        .collect();
    if old.len() <= limit {
        return;
    }
    old.sort_by_key(|rs| revision(rs));
    for rs in &old[..old.len() - limit] {
        log_err(
            "delete old replicaset",
            sb.store
                .delete(replicasets(), ns, name_of(rs), None, None, false),
        );
    }
}

enum Progress {
    Paused,
    Moved,
    Observe,
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    update: &str,
    transition: &str,
) -> Value {
    json!({
        "type": type_, "status": status, "lastUpdateTime": update,
        "lastTransitionTime": transition, "reason": reason, "message": message
    })
}

fn find_condition<'a>(d: &'a Value, type_: &str) -> Option<&'a Value> {
    d.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

fn sync_status(
    sb: &Sandbox,
    ns: &str,
    d: &Value,
    owned: &[Value],
    new_i: Option<usize>,
    now: Timestamp,
    progress: Progress,
) {
    let t = format_time(now);
    let replicas = d
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let sum = |p: &str| owned.iter().map(|rs| i64_at(rs, p)).sum::<i64>();
    let status_replicas = sum("/status/replicas");
    let updated = new_i
        .map(|i| i64_at(&owned[i], "/status/replicas"))
        .unwrap_or(0);
    let ready = sum("/status/readyReplicas");
    let avail = sum("/status/availableReplicas");
    let unavailable_budget = {
        let surge = int_or_percent(
            d.pointer("/spec/strategy/rollingUpdate/maxSurge"),
            replicas,
            true,
            "25%",
        );
        let u = int_or_percent(
            d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
            replicas,
            false,
            "25%",
        );
        if d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate") {
            replicas
        } else if surge == 0 && u == 0 {
            1
        } else {
            u
        }
    };
    let old_status = d.get("status").cloned().unwrap_or(json!({}));
    // Progress as the real controller counts it: more updated/ready/available, fewer old.
    let was = |k: &str| old_status.get(k).and_then(Value::as_i64).unwrap_or(0);
    let numbers_moved = updated > was("updatedReplicas")
        || ready > was("readyReplicas")
        || avail > was("availableReplicas")
        || status_replicas - updated < was("replicas") - was("updatedReplicas");
    let rs_name = new_i
        .map(|i| name_of(&owned[i]).to_string())
        .unwrap_or_default();
    let complete =
        updated == replicas && avail == replicas && status_replicas == replicas && new_i.is_some();

    // Available.
    let prev_avail = find_condition(d, "Available");
    let (a_status, a_reason, a_msg) = if avail >= replicas - unavailable_budget {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let available_cond = match prev_avail {
        Some(c) if c.get("status").and_then(Value::as_str) == Some(a_status) => c.clone(),
        _ => condition("Available", a_status, a_reason, a_msg, &t, &t),
    };

    // Progressing.
    let prev = find_condition(d, "Progressing");
    let prev_reason = prev
        .and_then(|c| c.get("reason"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let prev_status = prev
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let prev_transition = prev
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .unwrap_or(&t)
        .to_string();
    let keep = |status: &str| {
        if prev_status == status {
            prev_transition.clone()
        } else {
            t.clone()
        }
    };
    let deadline = d
        .pointer("/spec/progressDeadlineSeconds")
        .and_then(Value::as_i64);
    let progressing_cond = match progress {
        Progress::Paused => {
            if prev_reason == "DeploymentPaused" {
                prev.cloned()
            } else {
                Some(condition(
                    "Progressing",
                    "Unknown",
                    "DeploymentPaused",
                    "Deployment is paused",
                    &t,
                    &keep("Unknown"),
                ))
            }
        }
        _ if complete => {
            if prev_reason == "NewReplicaSetAvailable" {
                prev.cloned()
            } else {
                Some(condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                    &t,
                    &keep("True"),
                ))
            }
        }
        _ if prev_reason == "DeploymentPaused" => Some(condition(
            "Progressing",
            "Unknown",
            "DeploymentResumed",
            "Deployment is resumed",
            &t,
            &keep("Unknown"),
        )),
        Progress::Moved => {
            let (reason, msg) = if prev.is_none() || prev_reason == "NewReplicaSetAvailable" {
                (
                    "NewReplicaSetCreated",
                    format!("Created new replica set \"{rs_name}\""),
                )
            } else {
                (
                    "ReplicaSetUpdated",
                    format!("ReplicaSet \"{rs_name}\" is progressing."),
                )
            };
            Some(condition(
                "Progressing",
                "True",
                reason,
                &msg,
                &t,
                &keep("True"),
            ))
        }
        Progress::Observe if numbers_moved => Some(condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{rs_name}\" is progressing."),
            &t,
            &keep("True"),
        )),
        Progress::Observe => {
            let last_update = prev
                .and_then(|c| c.get("lastUpdateTime"))
                .and_then(Value::as_str)
                .and_then(parse_time);
            let exceeded = match (deadline, last_update) {
                // As the real controller (DeploymentTimedOut): after a successful rollout
                // (NewReplicaSetAvailable) pods going unready is not a stalled rollout.
                (Some(secs), Some(lu)) => {
                    prev_reason != "ProgressDeadlineExceeded"
                        && prev_reason != "NewReplicaSetAvailable"
                        && now > lu + SignedDuration::from_secs(secs)
                }
                _ => false,
            };
            if exceeded {
                let c = condition(
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    &format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                    &t,
                    &t,
                );
                Some(c)
            } else {
                prev.cloned()
            }
        }
    };
    let mut status = Map::new();
    status.insert(
        "observedGeneration".into(),
        json!(i64_at(d, "/metadata/generation")),
    );
    status.insert("replicas".into(), json!(status_replicas));
    status.insert("updatedReplicas".into(), json!(updated));
    status.insert("readyReplicas".into(), json!(ready));
    status.insert("availableReplicas".into(), json!(avail));
    let unavailable = (replicas.max(status_replicas) - avail).max(0);
    if unavailable > 0 {
        status.insert("unavailableReplicas".into(), json!(unavailable));
    }
    // Zero counts are omitted, as the Go structs do (omitempty).
    status.retain(|k, v| k == "observedGeneration" || v.as_i64() != Some(0));
    let mut conds = vec![available_cond];
    if let Some(p) = progressing_cond {
        conds.push(p);
    }
    status.insert("conditions".into(), Value::Array(conds));
    let status = Value::Object(status);
    if d.get("status") == Some(&status) {
        return;
    }
    let name = name_of(d).to_string();
    log_err(
        "deployment status",
        sb.store.modify(
            deployments(),
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

/// The ReplicaSet selector of a Deployment as a label selector (for listing its pods).
pub fn selector_of(d: &Value) -> Option<LabelSelector> {
    d.pointer("/spec/selector")
        .and_then(LabelSelector::from_label_selector_object)
}
