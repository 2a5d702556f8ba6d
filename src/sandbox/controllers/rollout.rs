//! A small Argo Rollouts controller (`argoproj.io/v1alpha1` Rollout, canary strategy), close
//! enough to Argo's for the kubectl plugin's verbs, which are all patches:
//!
//! * promote: status `pauseConditions: null` (with `currentStepIndex + 1` when paused on a
//!   step) and `spec.paused: false`; full promote: status `promoteFull: true`;
//! * abort: status `abort: true`; retry: status `abort: false`;
//! * undo: JSON patch of `spec.template` from an older ReplicaSet.
//!
//! One ReplicaSet per pod template, named `<rollout>-<hash>`, labelled (and selected) by
//! `rollouts-pod-template-hash`, annotated with `rollout.argoproj.io/revision`. The stable
//! ReplicaSet is `status.stableRS`; the canary is the one of the current template. The steps
//! are walked as Argo does with traffic routing: `setWeight` scales the canary to
//! `ceil(replicas × weight / 100)` and, once those pods are available, reports the weight in
//! `status.canary.weights` (the sandbox's traffic model routes by it); the stable ReplicaSet
//! keeps all its replicas until the update completes. `pause: {}` waits for a promote,
//! `pause: {duration}` for the sandbox clock. On completion the canary becomes the stable and
//! the old ReplicaSets scale to zero. The stable and canary Services get a
//! `rollouts-pod-template-hash` selector, as Argo sets it.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::super::Sandbox;
use super::super::clock::{format_time, parse_time};
use super::super::defaults;
use super::super::server::selector_string;
use super::super::store::{WriteOpts, meta_str, metadata_mut, name_of};
use super::{
    Note, annotation, controller_uid, emit_event, i64_at, log_err, owner_ref, replicasets,
    rollouts, services, template_hash, uid_of,
};

/// The field manager and event source of the Argo Rollouts controller.
pub const MANAGER: &str = "rollouts-controller";
/// Revision annotation on the Rollout and its ReplicaSets.
pub const REV: &str = "rollout.argoproj.io/revision";
/// The label that tells a Rollout's ReplicaSets (and their pods) apart.
pub const HASH: &str = "rollouts-pod-template-hash";
/// Annotation Argo puts on the Services it manages.
pub const MANAGED_BY: &str = "argo-rollouts.argoproj.io/managed-by-rollouts";
const API_VERSION: &str = "argoproj.io/v1alpha1";
const PAUSE_REASON: &str = "CanaryPauseStep";

/// The revision of a Rollout's ReplicaSet.
pub fn rs_revision(rs: &Value) -> i64 {
    annotation(rs, REV)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn rs_hash(rs: &Value) -> &str {
    rs.pointer("/metadata/labels")
        .and_then(|l| l.get(HASH))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn sort_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.sort_keys();
            m.values_mut().for_each(sort_keys);
        }
        Value::Array(a) => a.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// A pod template as a ReplicaSet stores it (server defaults applied), without the hash label
/// and with sorted keys: what two templates are compared (and hashed) by, so that an undo that
/// copies a ReplicaSet's template back finds that ReplicaSet again.
pub fn normalized_template(t: &Value) -> Value {
    let mut rs = json!({"spec": {"template": t.clone()}});
    defaults::apply_defaults("ReplicaSet", &mut rs);
    let mut t = rs
        .pointer_mut("/spec/template")
        .map(Value::take)
        .unwrap_or(Value::Null);
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove(HASH);
        l.remove("pod-template-hash");
    }
    sort_keys(&mut t);
    t
}

/// What the controller reads from and keeps in `status` between passes.
#[derive(Debug, Clone, Default)]
struct Progress {
    index: i64,
    paused_at: Option<String>,
    controller_pause: bool,
    abort: bool,
    aborted_at: Option<String>,
    promote_full: bool,
}

fn step_text(step: &Value) -> String {
    if let Some(w) = step.get("setWeight") {
        format!("setWeight: {w}")
    } else if let Some(p) = step.get("pause") {
        match p.get("duration") {
            Some(d) => format!(
                "pause: {}",
                d.as_str().map_or(d.to_string(), str::to_string)
            ),
            None => "pause".into(),
        }
    } else {
        "step".into()
    }
}

/// A pause duration: seconds as a number or a Go-style string (`30s`, `5m`, `1h`).
pub fn pause_seconds(d: &Value) -> Option<i64> {
    if let Some(n) = d.as_i64() {
        return Some(n.max(0));
    }
    let s = d.as_str()?.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Some(n.max(0));
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    }
}

fn set_weight(step: &Value) -> Option<i64> {
    step.get("setWeight")
        .and_then(Value::as_i64)
        .map(|w| w.clamp(0, 100))
}

/// Canary pods for a weight, as Argo computes them with traffic routing.
fn canary_replicas(replicas: i64, weight: i64) -> i64 {
    (replicas.saturating_mul(weight).saturating_add(99) / 100).clamp(0, replicas.max(0))
}

/// A Rollout's owned ReplicaSets and the writes one pass makes to them.
struct Ctx<'a> {
    sb: &'a Sandbox,
    ns: &'a str,
    ro: &'a Value,
    now: Timestamp,
}

impl Ctx<'_> {
    fn event(&self, reason: &str, message: String) {
        emit_event(
            self.sb,
            self.ro,
            Note::normal(MANAGER, reason, message),
            self.now,
        );
    }

    fn warning(&self, reason: &str, message: String) {
        emit_event(
            self.sb,
            self.ro,
            Note::warning(MANAGER, reason, message),
            self.now,
        );
    }

    /// Scale a ReplicaSet (with Argo's event). Returns whether it changed.
    fn scale(&self, rs: &mut Value, to: i64) -> bool {
        let from = i64_at(rs, "/spec/replicas");
        if from == to {
            return false;
        }
        let rs_name = name_of(rs).to_string();
        let rev = rs_revision(rs);
        let res = self.sb.store.modify(
            replicasets(),
            self.ns,
            &rs_name,
            &WriteOpts::controller(MANAGER),
            |o| {
                if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.insert("replicas".into(), json!(to));
                }
                Ok(())
            },
        );
        match res {
            Ok(u) => {
                *rs = (*u).clone();
                let dir = if to > from { "up" } else { "down" };
                self.event(
                    "ScalingReplicaSet",
                    format!(
                        "Scaled {dir} ReplicaSet {rs_name} (revision {rev}) from {from} to {to}"
                    ),
                );
                true
            }
            Err(e) => {
                log_err("scale rollout replicaset", Err::<(), _>(e));
                false
            }
        }
    }

    fn set_revision(&self, rs: &mut Value, rev: i64) {
        let rs_name = name_of(rs).to_string();
        let res = self.sb.store.modify(
            replicasets(),
            self.ns,
            &rs_name,
            &WriteOpts::controller(MANAGER),
            |o| {
                let meta = metadata_mut(o);
                let ann = meta.entry("annotations").or_insert_with(|| json!({}));
                if let Some(a) = ann.as_object_mut() {
                    a.insert(REV.into(), json!(rev.to_string()));
                }
                Ok(())
            },
        );
        match res {
            Ok(u) => *rs = (*u).clone(),
            Err(e) => log_err("set rollout replicaset revision", Err::<(), _>(e)),
        }
    }

    fn create_rs(&self, template: &Value, hash: &str, rev: i64, replicas: i64) -> Option<Value> {
        let ro = self.ro;
        let mut tpl = template.clone();
        let meta = metadata_mut(&mut tpl);
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert(HASH.into(), json!(hash));
        }
        let labels = tpl
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        let mut selector = ro.pointer("/spec/selector").cloned().unwrap_or(json!({}));
        if let Some(s) = selector.as_object_mut() {
            let ml = s.entry("matchLabels").or_insert_with(|| json!({}));
            if let Some(m) = ml.as_object_mut() {
                m.insert(HASH.into(), json!(hash));
            }
        }
        let rs = json!({
            "metadata": {
                "name": format!("{}-{hash}", name_of(ro)),
                "namespace": self.ns,
                "labels": labels,
                "annotations": {
                    REV: rev.to_string(),
                    "rollout.argoproj.io/desired-replicas": i64_at(ro, "/spec/replicas").to_string()
                },
                "ownerReferences": owner_ref(ro, "Rollout", API_VERSION),
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": i64_at(ro, "/spec/minReadySeconds"),
                "selector": selector,
                "template": tpl
            },
        });
        match self
            .sb
            .store
            .create(replicasets(), self.ns, rs, &WriteOpts::controller(MANAGER))
        {
            Ok(created) => {
                self.event(
                    "NewReplicaSetCreated",
                    format!(
                        "Created ReplicaSet {} (revision {rev}) with size {replicas}",
                        name_of(&created)
                    ),
                );
                Some((*created).clone())
            }
            Err(e) => {
                log_err("create rollout replicaset", Err::<(), _>(e));
                None
            }
        }
    }

    /// Point a Service at one ReplicaSet's pods, as Argo does.
    fn select(&self, service: &str, hash: &str) {
        if service.is_empty() || hash.is_empty() {
            return;
        }
        let Some(svc) = self.sb.store.get(services(), self.ns, service) else {
            return;
        };
        let ro_name = name_of(self.ro);
        let selected = svc
            .pointer("/spec/selector")
            .and_then(|s| s.get(HASH))
            .and_then(Value::as_str)
            == Some(hash);
        if selected && annotation(&svc, MANAGED_BY) == Some(ro_name) {
            return;
        }
        log_err(
            "rollout service selector",
            self.sb.store.modify(
                services(),
                self.ns,
                service,
                &WriteOpts::controller(MANAGER),
                |o| {
                    let meta = metadata_mut(o);
                    let ann = meta.entry("annotations").or_insert_with(|| json!({}));
                    if let Some(a) = ann.as_object_mut() {
                        a.insert(MANAGED_BY.into(), json!(ro_name));
                    }
                    if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                        let sel = spec.entry("selector").or_insert_with(|| json!({}));
                        if let Some(s) = sel.as_object_mut() {
                            s.insert(HASH.into(), json!(hash));
                        }
                    }
                    Ok(())
                },
            ),
        );
    }
}

fn available(rs: &Value) -> i64 {
    i64_at(rs, "/status/availableReplicas")
}

fn read_progress(status: &Value) -> Progress {
    let paused_at = status
        .get("pauseConditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("reason").and_then(Value::as_str) == Some(PAUSE_REASON))
        })
        .map(|c| {
            c.get("startTime")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        });
    Progress {
        index: status
            .get("currentStepIndex")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0),
        paused_at,
        controller_pause: status.get("controllerPause").and_then(Value::as_bool) == Some(true),
        abort: status.get("abort").and_then(Value::as_bool) == Some(true),
        aborted_at: status
            .get("abortedAt")
            .and_then(Value::as_str)
            .map(str::to_string),
        promote_full: status.get("promoteFull").and_then(Value::as_bool) == Some(true),
    }
}

pub fn reconcile(sb: &Sandbox, ns: &str, ro: &Value, now: Timestamp) {
    if meta_str(ro, "deletionTimestamp").is_some() {
        return;
    }
    let cx = Ctx { sb, ns, ro, now };
    let name = name_of(ro).to_string();
    let uid = uid_of(ro).to_string();
    let mut base_rv = meta_str(ro, "resourceVersion")
        .unwrap_or_default()
        .to_string();
    let (all_rs, _) = sb.store.list(replicasets(), Some(ns));
    let mut owned: Vec<Value> = all_rs
        .iter()
        .filter(|rs| controller_uid(rs) == Some(uid.as_str()))
        .map(|rs| (**rs).clone())
        .collect();
    owned.sort_by_key(rs_revision);
    let replicas = ro
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0);
    let template = ro.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let norm = normalized_template(&template);
    let new_hash = template_hash(&norm);
    let steps: Vec<Value> = ro
        .pointer("/spec/strategy/canary/steps")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let n_steps = steps.len() as i64;
    let step_hash = template_hash(&Value::Array(steps.clone()));
    let stable_svc = ro
        .pointer("/spec/strategy/canary/stableService")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let canary_svc = ro
        .pointer("/spec/strategy/canary/canaryService")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let old_status = ro.get("status").cloned().unwrap_or(json!({}));
    let str_status = |k: &str| {
        old_status
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut p = read_progress(&old_status);
    let max_rev = owned.iter().map(rs_revision).max().unwrap_or(0);

    // The ReplicaSet of the current template: found by template, else created.
    let stable_hash_before = str_status("stableRS");
    let stable_exists = owned.iter().any(|rs| rs_hash(rs) == stable_hash_before);
    let stable_hash = if stable_hash_before.is_empty() || !stable_exists {
        new_hash.clone()
    } else {
        stable_hash_before.clone()
    };
    let first = stable_hash == new_hash;
    let new_i = match owned
        .iter()
        .position(|rs| rs.pointer("/spec/template").map(normalized_template) == Some(norm.clone()))
    {
        Some(i) => {
            // Going back to an old template makes its ReplicaSet the newest revision.
            if rs_revision(&owned[i]) < max_rev {
                cx.set_revision(&mut owned[i], max_rev + 1);
            }
            i
        }
        None => {
            let size = if first { replicas } else { 0 };
            match cx.create_rs(&template, &new_hash, max_rev + 1, size) {
                Some(rs) => {
                    owned.push(rs);
                    owned.len() - 1
                }
                None => return,
            }
        }
    };
    let canary_hash = rs_hash(&owned[new_i]).to_string();
    let canary_rev = rs_revision(&owned[new_i]);
    let stable_hash = if first {
        canary_hash.clone()
    } else {
        stable_hash
    };

    // The Rollout's revision follows its newest ReplicaSet.
    let rev = canary_rev.to_string();
    if annotation(ro, REV) != Some(rev.as_str()) {
        let res = sb.store.modify(
            rollouts(),
            ns,
            &name,
            &WriteOpts::controller(MANAGER),
            |o| {
                let meta = metadata_mut(o);
                meta.insert("resourceVersion".into(), json!(base_rv));
                let ann = meta.entry("annotations").or_insert_with(|| json!({}));
                if let Some(a) = ann.as_object_mut() {
                    a.insert(REV.into(), json!(rev));
                }
                Ok(())
            },
        );
        match res {
            Ok(u) => {
                base_rv = meta_str(&u, "resourceVersion")
                    .unwrap_or_default()
                    .to_string()
            }
            Err(e) => return log_err("rollout revision", Err::<(), _>(e)),
        }
    }

    // A new template (or new steps) starts the steps over.
    let updated = str_status("currentPodHash") != canary_hash;
    if updated {
        if !str_status("currentPodHash").is_empty() {
            cx.event(
                "RolloutUpdated",
                format!("Rollout updated to revision {canary_rev}"),
            );
        }
        p = Progress::default();
    } else if str_status("currentStepHash") != step_hash
        && !str_status("currentStepHash").is_empty()
    {
        p.index = 0;
        p.paused_at = None;
        p.controller_pause = false;
    }
    let user_paused = ro.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    let canary_is_stable = canary_hash == stable_hash;
    let old_phase = str_status("phase");
    let old_weight = old_status
        .pointer("/canary/weights/canary/weight")
        .and_then(Value::as_i64)
        .unwrap_or(0);

    let mut weight = 0;
    let mut new_stable = stable_hash.clone();
    let (phase, message): (&str, String);
    if canary_is_stable {
        // Nothing to roll out: the stable gets every replica, the rest none.
        for (i, rs) in owned.iter_mut().enumerate() {
            cx.scale(rs, if i == new_i { replicas } else { 0 });
        }
        p.index = n_steps;
        p.paused_at = None;
        p.controller_pause = false;
        p.abort = false;
        p.aborted_at = None;
        p.promote_full = false;
        let others: i64 = owned
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != new_i)
            .map(|(_, rs)| i64_at(rs, "/status/replicas"))
            .sum();
        (phase, message) = if available(&owned[new_i]) < replicas {
            (
                "Progressing",
                "updated replicas are still becoming available".into(),
            )
        } else if others > 0 {
            ("Progressing", "old replicas are pending termination".into())
        } else {
            ("Healthy", String::new())
        };
    } else if p.abort {
        // Aborted: all traffic and replicas back on the stable; the canary scales to zero.
        for rs in owned.iter_mut() {
            let to = if rs_hash(rs) == stable_hash {
                replicas
            } else {
                0
            };
            cx.scale(rs, to);
        }
        p.index = 0;
        p.paused_at = None;
        p.controller_pause = false;
        p.promote_full = false;
        let msg = format!("RolloutAborted: Rollout aborted update to revision {canary_rev}");
        if old_phase != "Degraded" {
            p.aborted_at = Some(format_time(now));
            cx.warning(
                "RolloutAborted",
                format!("Rollout aborted update to revision {canary_rev}"),
            );
        }
        (phase, message) = ("Degraded", msg);
    } else {
        // Walking the canary steps. The stable keeps its replicas; older ones go.
        for rs in owned.iter_mut() {
            let h = rs_hash(rs).to_string();
            if h == stable_hash {
                cx.scale(rs, replicas);
            } else if h != canary_hash {
                cx.scale(rs, 0);
            }
        }
        p.aborted_at = None;
        let mut complete = false;
        if user_paused {
            // spec.paused: hold where we are.
        } else if p.promote_full {
            // Skip the remaining steps: the canary goes to full size, then becomes the stable.
            p.paused_at = None;
            p.controller_pause = false;
        } else {
            for _ in 0..=steps.len() {
                let Some(step) = steps.get(p.index as usize) else {
                    break;
                };
                let done = if let Some(w) = set_weight(step) {
                    p.controller_pause = false;
                    let want = canary_replicas(replicas, w);
                    cx.scale(&mut owned[new_i], want);
                    available(&owned[new_i]) >= want
                } else if let Some(pause) = step.get("pause") {
                    match (&p.paused_at, p.controller_pause) {
                        (Some(start), _) => {
                            let until =
                                pause.get("duration").and_then(pause_seconds).and_then(|d| {
                                    parse_time(start).and_then(|t| {
                                        t.checked_add(SignedDuration::from_secs(d)).ok()
                                    })
                                });
                            if until.is_some_and(|u| now >= u) {
                                p.paused_at = None;
                                p.controller_pause = false;
                                cx.event("RolloutResumed", "Rollout is resumed".into());
                                true
                            } else {
                                false
                            }
                        }
                        // Promoted: the pause condition was cleared while paused on this step.
                        (None, true) => {
                            p.controller_pause = false;
                            cx.event("RolloutResumed", "Rollout is resumed".into());
                            true
                        }
                        (None, false) => {
                            p.paused_at = Some(format_time(now));
                            p.controller_pause = true;
                            cx.event(
                                "RolloutPaused",
                                format!("Rollout is paused ({PAUSE_REASON})"),
                            );
                            false
                        }
                    }
                } else {
                    // Steps the sandbox does not simulate (analysis, experiment, …) pass.
                    true
                };
                if !done {
                    break;
                }
                cx.event(
                    "RolloutStepCompleted",
                    format!(
                        "Rollout step {}/{n_steps} completed ({})",
                        p.index + 1,
                        step_text(step)
                    ),
                );
                p.index += 1;
            }
        }
        // The weight in force: the last setWeight passed.
        weight = steps
            .iter()
            .take(p.index.clamp(0, n_steps) as usize)
            .filter_map(set_weight)
            .next_back()
            .unwrap_or(0);
        if (p.index >= n_steps || p.promote_full) && !user_paused {
            cx.scale(&mut owned[new_i], replicas);
            if available(&owned[new_i]) >= replicas {
                complete = true;
            }
        }
        if complete {
            // The canary is the new stable: old ReplicaSets go, the canary weight drops to 0.
            p.index = n_steps;
            new_stable = canary_hash.clone();
            weight = 0;
            for (i, rs) in owned.iter_mut().enumerate() {
                if i != new_i {
                    cx.scale(rs, 0);
                }
            }
            p.promote_full = false;
            cx.event(
                "RolloutCompleted",
                format!(
                    "Rollout completed update to revision {canary_rev} ({canary_hash}): Completed all {n_steps} canary steps"
                ),
            );
            (phase, message) = ("Healthy", String::new());
        } else if user_paused {
            (phase, message) = ("Paused", "manually paused".into());
        } else if p.paused_at.is_some() {
            (phase, message) = ("Paused", PAUSE_REASON.into());
        } else if available(&owned[new_i]) < i64_at(&owned[new_i], "/spec/replicas") {
            (phase, message) = (
                "Progressing",
                "updated replicas are still becoming available".into(),
            );
        } else {
            (phase, message) = ("Progressing", "more replicas need to be updated".into());
        }
    }
    if weight != old_weight {
        cx.event(
            "TrafficWeightUpdated",
            format!("Traffic weight updated from {old_weight} to {weight}"),
        );
    }

    // Services: the stable one selects the stable pods, the canary one the canary pods.
    let canary_sel = if p.abort || new_stable == canary_hash {
        new_stable.clone()
    } else {
        canary_hash.clone()
    };
    cx.select(&stable_svc, &new_stable);
    cx.select(&canary_svc, &canary_sel);

    cleanup_history(&cx, &owned, &canary_hash, &new_stable);

    // Status.
    let sum = |ptr: &str| owned.iter().map(|rs| i64_at(rs, ptr)).sum::<i64>();
    let mut status = Map::new();
    status.insert("HPAReplicas".into(), json!(sum("/status/replicas")));
    if p.abort {
        status.insert("abort".into(), json!(true));
    }
    if let Some(t) = &p.aborted_at {
        status.insert("abortedAt".into(), json!(t));
    }
    status.insert(
        "availableReplicas".into(),
        json!(sum("/status/availableReplicas")),
    );
    status.insert("blueGreen".into(), json!({}));
    let stable_weight = 100 - weight;
    status.insert(
        "canary".into(),
        json!({"weights": {
            "canary": {"podTemplateHash": canary_sel, "serviceName": canary_svc, "weight": weight},
            "stable": {"podTemplateHash": new_stable, "serviceName": stable_svc, "weight": stable_weight}
        }}),
    );
    if p.controller_pause {
        status.insert("controllerPause".into(), json!(true));
    }
    status.insert("currentPodHash".into(), json!(canary_hash));
    if n_steps > 0 {
        status.insert("currentStepHash".into(), json!(step_hash));
        status.insert("currentStepIndex".into(), json!(p.index.min(n_steps)));
    }
    if !message.is_empty() {
        status.insert("message".into(), json!(message));
    }
    status.insert(
        "observedGeneration".into(),
        json!(i64_at(ro, "/metadata/generation").to_string()),
    );
    if let Some(t) = &p.paused_at {
        status.insert(
            "pauseConditions".into(),
            json!([{"reason": PAUSE_REASON, "startTime": t}]),
        );
    }
    status.insert("phase".into(), json!(phase));
    if p.promote_full {
        status.insert("promoteFull".into(), json!(true));
    }
    status.insert("readyReplicas".into(), json!(sum("/status/readyReplicas")));
    status.insert("replicas".into(), json!(sum("/status/replicas")));
    status.insert(
        "selector".into(),
        json!(
            ro.pointer("/spec/selector")
                .map(selector_string)
                .unwrap_or_default()
        ),
    );
    status.insert("stableRS".into(), json!(new_stable));
    status.insert(
        "updatedReplicas".into(),
        json!(i64_at(&owned[new_i], "/status/replicas")),
    );
    let status = Value::Object(status);
    if ro.get("status") == Some(&status) {
        return;
    }
    log_err(
        "rollout status",
        sb.store
            .modify(rollouts(), ns, &name, &WriteOpts::status(MANAGER), |o| {
                // Written on what this pass read: a promote or abort in between wins (409).
                metadata_mut(o).insert("resourceVersion".into(), json!(base_rv));
                if let Some(m) = o.as_object_mut() {
                    m.insert("status".into(), status);
                }
                Ok(())
            }),
    );
}

/// Keep at most revisionHistoryLimit (default 10) old ReplicaSets scaled to zero.
fn cleanup_history(cx: &Ctx<'_>, owned: &[Value], canary: &str, stable: &str) {
    let limit = cx
        .ro
        .pointer("/spec/revisionHistoryLimit")
        .and_then(Value::as_i64)
        .unwrap_or(10)
        .max(0) as usize;
    let old: Vec<&Value> = owned
        .iter()
        .filter(|rs| {
            let h = rs_hash(rs);
            h != canary
                && h != stable
                && i64_at(rs, "/spec/replicas") == 0
                && i64_at(rs, "/status/replicas") == 0
        })
        .collect();
    if old.len() <= limit {
        return;
    }
    // `owned` is sorted by revision: the oldest go first.
    for rs in &old[..old.len() - limit] {
        log_err(
            "delete old rollout replicaset",
            cx.sb
                .store
                .delete(replicasets(), cx.ns, name_of(rs), None, None, false),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::controllers::{pods, reconcile_all};
    use crate::sandbox::patch::{json_merge_patch, json_patch};
    use crate::sandbox::test_fixtures::{run_for, sandbox};

    fn cart(sb: &Sandbox, ns: &str) -> Value {
        (*sb.store.get(rollouts(), ns, "cart").expect("rollout cart")).clone()
    }

    fn status_str(ro: &Value, ptr: &str) -> String {
        ro.pointer(ptr)
            .map(|v| v.as_str().map_or(v.to_string(), str::to_string))
            .unwrap_or_default()
    }

    /// (hash, spec.replicas, ready pods) of every ReplicaSet of the Rollout, oldest first.
    fn sets(sb: &Sandbox, ns: &str) -> Vec<(String, i64, i64)> {
        let uid = uid_of(&cart(sb, ns)).to_string();
        let mut out: Vec<Value> = sb
            .store
            .list(replicasets(), Some(ns))
            .0
            .iter()
            .filter(|rs| controller_uid(rs) == Some(uid.as_str()))
            .map(|rs| (**rs).clone())
            .collect();
        out.sort_by_key(rs_revision);
        out.iter()
            .map(|rs| {
                (
                    rs_hash(rs).to_string(),
                    i64_at(rs, "/spec/replicas"),
                    i64_at(rs, "/status/readyReplicas"),
                )
            })
            .collect()
    }

    /// What `kubectl patch rollout cart --subresource=status --type=merge -p ...` does.
    fn patch_status(sb: &Sandbox, ns: &str, patch: Value) {
        sb.store
            .modify(rollouts(), ns, "cart", &WriteOpts::status("kubectl"), |o| {
                json_merge_patch(o, &json!({ "status": patch }));
                Ok(())
            })
            .expect("status patch");
    }

    fn images(sb: &Sandbox, ns: &str) -> Vec<String> {
        let mut v: Vec<String> = sb
            .store
            .list(pods(), Some(ns))
            .0
            .iter()
            .filter(|p| {
                p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("cart")
                    && meta_str(p, "deletionTimestamp").is_none()
            })
            .map(|p| status_str(p, "/spec/containers/0/image"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_seeded_cart_is_paused_on_step_one_at_twenty_percent() {
        let sb = sandbox(true);
        for (ns, replicas) in [("production", 4), ("staging", 2)] {
            let ro = cart(&sb, ns);
            assert_eq!(status_str(&ro, "/status/phase"), "Paused", "{ns}");
            assert_eq!(status_str(&ro, "/status/message"), "CanaryPauseStep");
            assert_eq!(status_str(&ro, "/status/currentStepIndex"), "1");
            assert_eq!(
                status_str(&ro, "/status/canary/weights/canary/weight"),
                "20"
            );
            assert_eq!(
                status_str(&ro, "/status/canary/weights/stable/weight"),
                "80"
            );
            assert_eq!(
                status_str(&ro, "/status/pauseConditions/0/reason"),
                "CanaryPauseStep"
            );
            assert_eq!(
                status_str(&ro, "/metadata/annotations/rollout.argoproj.io~1revision"),
                "2"
            );
            let s = sets(&sb, ns);
            assert_eq!(s.len(), 2, "{s:?}");
            assert_eq!(
                (s[0].1, s[0].2),
                (replicas, replicas),
                "stable keeps all replicas"
            );
            assert_eq!((s[1].1, s[1].2), (1, 1), "one canary pod");
            assert_eq!(status_str(&ro, "/status/stableRS"), s[0].0);
            assert_eq!(status_str(&ro, "/status/currentPodHash"), s[1].0);
            for (svc, hash) in [("cart-stable", &s[0].0), ("cart-canary", &s[1].0)] {
                let svc = sb.store.get(services(), ns, svc).expect("service");
                assert_eq!(
                    svc.pointer("/spec/selector"),
                    Some(&json!({"app": "cart", HASH: hash})),
                );
            }
        }
    }

    #[test]
    fn promote_walks_the_remaining_steps_to_completion() {
        let sb = sandbox(true);
        let ns = "production";
        // The kubectl plugin's promote while paused on a step.
        patch_status(
            &sb,
            ns,
            json!({"pauseConditions": null, "currentStepIndex": 2}),
        );
        run_for(&sb, 10);
        let ro = cart(&sb, ns);
        assert_eq!(status_str(&ro, "/status/phase"), "Paused");
        assert_eq!(status_str(&ro, "/status/currentStepIndex"), "3");
        assert_eq!(
            status_str(&ro, "/status/canary/weights/canary/weight"),
            "50"
        );
        assert_eq!(sets(&sb, ns)[1].1, 2, "ceil(4 × 50 %) canary pods");
        // pause: {duration: 30s} ends on the clock.
        run_for(&sb, 40);
        let ro = cart(&sb, ns);
        let s = sets(&sb, ns);
        assert_eq!(status_str(&ro, "/status/phase"), "Healthy");
        assert_eq!(status_str(&ro, "/status/currentStepIndex"), "5");
        assert_eq!(status_str(&ro, "/status/stableRS"), s[1].0);
        assert_eq!(status_str(&ro, "/status/canary/weights/canary/weight"), "0");
        assert_eq!(
            status_str(&ro, "/status/canary/weights/stable/weight"),
            "100"
        );
        assert_eq!((s[0].1, s[1].1), (0, 4));
        assert_eq!(images(&sb, ns), vec!["registry.local/cart:2.1.0"; 4]);
        let svc = sb.store.get(services(), ns, "cart-stable").expect("svc");
        assert_eq!(
            svc.pointer("/spec/selector/rollouts-pod-template-hash"),
            Some(&json!(s[1].0))
        );
        let reasons: Vec<String> = sb
            .store
            .list(super::super::events(), Some(ns))
            .0
            .iter()
            .filter(|e| status_str(e, "/involvedObject/kind") == "Rollout")
            .map(|e| status_str(e, "/reason"))
            .collect();
        for r in [
            "RolloutPaused",
            "RolloutResumed",
            "RolloutStepCompleted",
            "RolloutCompleted",
        ] {
            assert!(reasons.iter().any(|x| x == r), "{r} in {reasons:?}");
        }
    }

    #[test]
    fn clearing_the_pause_condition_alone_also_promotes() {
        let sb = sandbox(true);
        patch_status(&sb, "staging", json!({"pauseConditions": null}));
        run_for(&sb, 5);
        let ro = cart(&sb, "staging");
        assert_eq!(status_str(&ro, "/status/currentStepIndex"), "3");
        assert_eq!(
            status_str(&ro, "/status/canary/weights/canary/weight"),
            "50"
        );
    }

    #[test]
    fn abort_returns_to_stable_and_retry_starts_over() {
        let sb = sandbox(true);
        let ns = "production";
        patch_status(&sb, ns, json!({"abort": true}));
        run_for(&sb, 5);
        let ro = cart(&sb, ns);
        assert_eq!(status_str(&ro, "/status/phase"), "Degraded");
        assert_eq!(
            status_str(&ro, "/status/message"),
            "RolloutAborted: Rollout aborted update to revision 2"
        );
        assert_eq!(status_str(&ro, "/status/canary/weights/canary/weight"), "0");
        assert_eq!(status_str(&ro, "/status/currentStepIndex"), "0");
        assert!(ro.pointer("/status/pauseConditions").is_none());
        let s = sets(&sb, ns);
        assert_eq!((s[0].1, s[1].1), (4, 0));
        assert_eq!(images(&sb, ns), vec!["registry.local/cart:2.0.0"; 4]);
        // Retry.
        patch_status(&sb, ns, json!({"abort": false}));
        run_for(&sb, 10);
        let ro = cart(&sb, ns);
        assert_eq!(status_str(&ro, "/status/phase"), "Paused");
        assert_eq!(status_str(&ro, "/status/currentStepIndex"), "1");
        assert_eq!(
            status_str(&ro, "/status/canary/weights/canary/weight"),
            "20"
        );
        assert_eq!(sets(&sb, ns)[1].1, 1);
    }

    #[test]
    fn full_promote_skips_the_remaining_steps() {
        let sb = sandbox(true);
        let ns = "production";
        patch_status(&sb, ns, json!({"promoteFull": true}));
        run_for(&sb, 10);
        let ro = cart(&sb, ns);
        assert_eq!(status_str(&ro, "/status/phase"), "Healthy");
        assert!(ro.pointer("/status/promoteFull").is_none());
        let s = sets(&sb, ns);
        assert_eq!(status_str(&ro, "/status/stableRS"), s[1].0);
        assert_eq!((s[0].1, s[1].1), (0, 4));
    }

    #[test]
    fn undo_to_the_stable_template_is_immediate_and_bumps_the_revision() {
        let sb = sandbox(true);
        let ns = "production";
        let stable_rs = sb
            .store
            .list(replicasets(), Some(ns))
            .0
            .iter()
            .find(|rs| annotation(rs, REV) == Some("1") && name_of(rs).starts_with("cart-"))
            .map(|rs| (**rs).clone())
            .expect("revision 1");
        // What `kubectl argo rollouts undo` sends: the old template without the hash label.
        let mut tpl = stable_rs["spec"]["template"].clone();
        if let Some(l) = tpl
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            l.remove(HASH);
        }
        sb.store
            .modify(
                rollouts(),
                ns,
                "cart",
                &WriteOpts::controller("kubectl"),
                |o| {
                    json_patch(
                        o,
                        &json!([{"op": "replace", "path": "/spec/template", "value": tpl}]),
                    )
                },
            )
            .expect("undo");
        run_for(&sb, 3);
        let ro = cart(&sb, ns);
        assert_eq!(status_str(&ro, "/status/phase"), "Healthy");
        assert_eq!(
            status_str(&ro, "/metadata/annotations/rollout.argoproj.io~1revision"),
            "3"
        );
        let s = sets(&sb, ns);
        assert_eq!(s.len(), 2, "no new ReplicaSet: {s:?}");
        assert_eq!(status_str(&ro, "/status/stableRS"), rs_hash(&stable_rs));
        assert_eq!(
            status_str(&ro, "/status/currentPodHash"),
            rs_hash(&stable_rs)
        );
        assert!(
            s.iter()
                .all(|(h, n, _)| (h == rs_hash(&stable_rs)) == (*n == 4))
        );
    }

    #[test]
    fn a_deleted_rollout_takes_its_replicasets_and_pods() {
        let sb = sandbox(true);
        sb.store
            .delete(rollouts(), "staging", "cart", None, None, false)
            .expect("delete");
        run_for(&sb, 5);
        reconcile_all(&sb);
        assert!(images(&sb, "staging").is_empty());
        assert!(
            !sb.store
                .list(replicasets(), Some("staging"))
                .0
                .iter()
                .any(|rs| name_of(rs).starts_with("cart-"))
        );
        // The other namespace's Rollout is untouched.
        assert_eq!(images(&sb, "production").len(), 5);
    }

    #[test]
    fn pause_durations_parse_like_argo() {
        assert_eq!(pause_seconds(&json!(30)), Some(30));
        assert_eq!(pause_seconds(&json!("45")), Some(45));
        assert_eq!(pause_seconds(&json!("30s")), Some(30));
        assert_eq!(pause_seconds(&json!("5m")), Some(300));
        assert_eq!(pause_seconds(&json!("1h")), Some(3600));
        assert_eq!(pause_seconds(&json!("soon")), None);
        assert_eq!(pause_seconds(&json!("")), None);
        assert_eq!(pause_seconds(&json!("99999999999999999h")), None);
        assert_eq!(canary_replicas(i64::MAX, 50), i64::MAX / 100);
        assert_eq!(canary_replicas(4, 20), 1);
        assert_eq!(canary_replicas(4, 50), 2);
        assert_eq!(canary_replicas(2, 20), 1);
        assert_eq!(canary_replicas(4, 0), 0);
        assert_eq!(canary_replicas(4, 100), 4);
    }
}
