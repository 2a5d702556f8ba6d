//! Simulated controllers, driven by the sandbox clock: Deployment (revisions, RollingUpdate
//! and Recreate, pause, progress deadline, history limit), ReplicaSet, Argo Rollouts (canary
//! steps; see [`rollout`]), a kubelet (pod lifecycle, readiness, crash loops, graceful
//! termination), Endpoints, ingress-nginx's Ingress status, Flux's GitRepository and
//! Kustomization (see [`flux`]), garbage collection and Events. They read and write only
//! through the store, as real controllers go through the API.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::Sandbox;
use super::clock::{format_time, parse_time};
use super::resources::{ResourceType, find};
use super::selector::LabelSelector;
use super::store::{WriteOpts, meta_str, metadata_mut, name_of};

/// The field manager of every controller-manager write, as on a real cluster.
pub const WRITER: &str = "kube-controller-manager";

/// Name of the one simulated node.
pub const NODE_NAME: &str = "sandbox-node-1";

fn rt(group: &str, plural: &str) -> &'static ResourceType {
    rt_v(group, "v1", plural)
}

fn rt_v(group: &str, version: &str, plural: &str) -> &'static ResourceType {
    // Every type named here is in the resource table.
    match find(group, version, plural) {
        Some(r) => r,
        None => &super::resources::RESOURCES[0],
    }
}

pub fn deployments() -> &'static ResourceType {
    rt("apps", "deployments")
}
pub fn replicasets() -> &'static ResourceType {
    rt("apps", "replicasets")
}
pub fn pods() -> &'static ResourceType {
    rt("", "pods")
}
pub fn services() -> &'static ResourceType {
    rt("", "services")
}
pub fn endpoints() -> &'static ResourceType {
    rt("", "endpoints")
}
pub fn events() -> &'static ResourceType {
    rt("", "events")
}
pub fn namespaces() -> &'static ResourceType {
    rt("", "namespaces")
}
pub fn ingresses() -> &'static ResourceType {
    rt("networking.k8s.io", "ingresses")
}
pub fn httproutes() -> &'static ResourceType {
    rt("gateway.networking.k8s.io", "httproutes")
}
pub fn rollouts() -> &'static ResourceType {
    rt_v("argoproj.io", "v1alpha1", "rollouts")
}
/// Traefik's TraefikService in its current group and in the older one (separately stored).
pub fn traefikservices() -> [&'static ResourceType; 2] {
    [
        rt_v("traefik.io", "v1alpha1", "traefikservices"),
        rt_v("traefik.containo.us", "v1alpha1", "traefikservices"),
    ]
}
/// Istio's VirtualService (v1 and v1beta1 share this storage).
pub fn virtualservices() -> &'static ResourceType {
    rt("networking.istio.io", "virtualservices")
}
/// Istio's DestinationRule (v1 and v1beta1 share this storage).
pub fn destinationrules() -> &'static ResourceType {
    rt("networking.istio.io", "destinationrules")
}
/// Flux's GitRepository (source.toolkit.fluxcd.io/v1).
pub fn gitrepositories() -> &'static ResourceType {
    rt("source.toolkit.fluxcd.io", "gitrepositories")
}
/// Flux's Kustomization (kustomize.toolkit.fluxcd.io/v1).
pub fn kustomizations() -> &'static ResourceType {
    rt("kustomize.toolkit.fluxcd.io", "kustomizations")
}

/// Run the controllers until cancelled: after every change, and on a short tick for
/// time-driven transitions (readiness delays, crash back-off, termination).
pub async fn run(sb: Arc<Sandbox>, cancel: CancellationToken) {
    loop {
        reconcile_all(&sb);
        let tick = sb.store.clock.real_duration(Duration::from_millis(250));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = sb.store.changed.notified() => {
                // Let a burst of changes land before reacting.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            _ = tokio::time::sleep(tick.max(Duration::from_millis(20))) => {}
        }
    }
}

/// One pass of every controller over every namespace.
pub fn reconcile_all(sb: &Sandbox) {
    let now = sb.store.clock.now();
    let (nss, _) = sb.store.list(namespaces(), None);
    for ns in nss.iter().map(|n| name_of(n).to_string()) {
        for d in sb.store.list(deployments(), Some(&ns)).0 {
            deployment::reconcile(sb, &ns, &d, now);
        }
        for ro in sb.store.list(rollouts(), Some(&ns)).0 {
            rollout::reconcile(sb, &ns, &ro, now);
        }
        for rs in sb.store.list(replicasets(), Some(&ns)).0 {
            replicaset::reconcile(sb, &ns, &rs, now);
        }
        for p in sb.store.list(pods(), Some(&ns)).0 {
            kubelet::reconcile(sb, &ns, &p, now);
        }
        for svc in sb.store.list(services(), Some(&ns)).0 {
            endpoints_for(sb, &ns, &svc, now);
        }
        for ing in sb.store.list(ingresses(), Some(&ns)).0 {
            ingress_status(sb, &ns, &ing);
        }
        flux::reconcile(sb, &ns, now);
        collect_garbage(sb, &ns);
        trim_events(sb, &ns, now);
    }
}

/// Step until the world settles or `limit` passes (used when seeding and in tests).
pub fn settle(sb: &Sandbox, step: Duration, limit: Duration) {
    let mut waited = Duration::ZERO;
    while waited < limit {
        let before = sb.store.current_rv();
        reconcile_all(sb);
        if sb.store.current_rv() == before {
            sb.store.clock.advance(step);
            waited += step;
            reconcile_all(sb);
            if sb.store.current_rv() == before {
                return;
            }
        }
    }
}

// ---------- small helpers over JSON objects ----------

pub fn i64_at(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

pub fn uid_of(v: &Value) -> &str {
    meta_str(v, "uid").unwrap_or_default()
}

pub fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/annotations")?.get(key)?.as_str()
}

/// The controller owner's uid.
pub fn controller_uid(v: &Value) -> Option<&str> {
    v.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))?
        .get("uid")?
        .as_str()
}

fn owner_ref(owner: &Value, kind: &str, api_version: &str) -> Value {
    json!([{
        "apiVersion": api_version,
        "kind": kind,
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": true,
        "blockOwnerDeletion": true
    }])
}

fn is_terminating(v: &Value) -> bool {
    meta_str(v, "deletionTimestamp").is_some()
}

/// Whether a pod counts as Ready.
pub fn pod_ready(p: &Value) -> bool {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn log_err(what: &str, r: Result<impl Sized, super::error::ApiError>) {
    if let Err(e) = r {
        // Conflicts are normal (another write won); the next pass retries on fresh state.
        if e.code != 409 && e.code != 404 {
            tracing::warn!("sandbox controller: {what}: {e}");
        }
    }
}

/// What an Event says: reason, message, type and the component that reports it.
pub struct Note<'a> {
    pub reason: &'a str,
    pub message: String,
    pub warning: bool,
    pub component: &'a str,
}

impl<'a> Note<'a> {
    pub fn normal(component: &'a str, reason: &'a str, message: String) -> Self {
        Note {
            reason,
            message,
            warning: false,
            component,
        }
    }
    pub fn warning(component: &'a str, reason: &'a str, message: String) -> Self {
        Note {
            reason,
            message,
            warning: true,
            component,
        }
    }
}

/// Post a core/v1 Event about `obj` (in its namespace).
pub fn emit_event(sb: &Sandbox, obj: &Value, note: Note<'_>, now: Timestamp) {
    let ns = meta_str(obj, "namespace").unwrap_or_default();
    let name = format!("{}.{:016x}", name_of(obj), sb.store.random_u64());
    let t = format_time(now);
    let ev = json!({
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {
            "kind": obj.get("kind").and_then(Value::as_str).unwrap_or_default(),
            "namespace": ns, "name": name_of(obj), "uid": uid_of(obj),
            "apiVersion": obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default(),
            "resourceVersion": meta_str(obj, "resourceVersion").unwrap_or_default()
        },
        "reason": note.reason,
        "message": note.message,
        "source": {"component": note.component},
        "firstTimestamp": t,
        "lastTimestamp": t,
        "count": 1,
        "type": if note.warning { "Warning" } else { "Normal" },
        "eventTime": null,
        "reportingComponent": note.component,
        "reportingInstance": ""
    });
    log_err(
        "post event",
        sb.store
            .create(events(), ns, ev, &WriteOpts::controller(note.component)),
    );
}

/// Events older than an hour are dropped, as the apiserver's event TTL does.
fn trim_events(sb: &Sandbox, ns: &str, now: Timestamp) {
    let (evs, _) = sb.store.list(events(), Some(ns));
    let cutoff = now - SignedDuration::from_secs(3600);
    let mut keep = evs.len();
    for e in &evs {
        let old = parse_time(str_at(e, "/lastTimestamp")).is_some_and(|t| t < cutoff);
        if old || keep > 2000 {
            sb.store.remove(events(), ns, name_of(e));
            keep -= 1;
        }
    }
}

/// Delete objects whose controller owner is gone (background propagation).
fn collect_garbage(sb: &Sandbox, ns: &str) {
    let live: HashSet<String> = sb
        .store
        .list(deployments(), Some(ns))
        .0
        .iter()
        .chain(sb.store.list(replicasets(), Some(ns)).0.iter())
        .chain(sb.store.list(rollouts(), Some(ns)).0.iter())
        .map(|o| uid_of(o).to_string())
        .collect();
    for (kind, typ) in [("ReplicaSet", replicasets()), ("Pod", pods())] {
        for o in sb.store.list(typ, Some(ns)).0 {
            if let Some(owner) = controller_uid(&o)
                && !live.contains(owner)
                && !is_terminating(&o)
            {
                log_err(
                    &format!("collect orphan {kind}"),
                    sb.store.delete(typ, ns, name_of(&o), None, None, false),
                );
            }
        }
    }
    let svcs: HashSet<String> = sb
        .store
        .list(services(), Some(ns))
        .0
        .iter()
        .map(|s| name_of(s).to_string())
        .collect();
    for ep in sb.store.list(endpoints(), Some(ns)).0 {
        if !svcs.contains(name_of(&ep)) && annotation(&ep, MANAGED_EP).is_some() {
            sb.store.remove(endpoints(), ns, name_of(&ep));
        }
    }
}

/// The address an Ingress of class `nginx` is reachable at (the simulated node), which
/// ingress-nginx writes into `status.loadBalancer.ingress` as the real controller does.
pub const INGRESS_ADDRESS: &str = "127.0.0.1";

/// ingress-nginx's status updater: Ingresses of class `nginx` get the controller's address.
fn ingress_status(sb: &Sandbox, ns: &str, ing: &Value) {
    let class = ing
        .pointer("/spec/ingressClassName")
        .and_then(Value::as_str)
        .or_else(|| annotation(ing, "kubernetes.io/ingress.class"));
    let want = match class {
        Some("nginx") => json!({"loadBalancer": {"ingress": [{"ip": INGRESS_ADDRESS}]}}),
        _ => json!({"loadBalancer": {}}),
    };
    let current = ing
        .get("status")
        .cloned()
        .unwrap_or(json!({"loadBalancer": {}}));
    if current == want {
        return;
    }
    log_err(
        "ingress status",
        sb.store.modify(
            ingresses(),
            ns,
            name_of(ing),
            &WriteOpts::status("nginx-ingress-controller"),
            |o| {
                if let Some(m) = o.as_object_mut() {
                    m.insert("status".into(), want);
                }
                Ok(())
            },
        ),
    );
}

const MANAGED_EP: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// Endpoints for a Service: Ready pods as addresses, the others as notReadyAddresses.
fn endpoints_for(sb: &Sandbox, ns: &str, svc: &Value, now: Timestamp) {
    let Some(sel) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
        return;
    };
    if sel.is_empty() {
        return;
    }
    let selector = LabelSelector::from_map(sel);
    let (pods_list, _) = sb.store.list(pods(), Some(ns));
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    let mut chosen = Vec::new();
    for p in pods_list.iter().filter(|p| {
        selector.matches(p.pointer("/metadata/labels").and_then(Value::as_object))
            && !is_terminating(p)
            && !str_at(p, "/status/podIP").is_empty()
    }) {
        let addr = json!({
            "ip": str_at(p, "/status/podIP"),
            "nodeName": str_at(p, "/spec/nodeName"),
            "targetRef": {"kind": "Pod", "namespace": ns, "name": name_of(p), "uid": uid_of(p)}
        });
        if pod_ready(p) {
            ready.push(addr);
        } else {
            not_ready.push(addr);
        }
        chosen.push(p.clone());
    }
    let ports: Vec<Value> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            let port = match sp.get("targetPort") {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(name)) => chosen.iter().find_map(|p| container_port(p, name)),
                _ => sp.get("port").and_then(Value::as_i64),
            }?;
            let mut m = Map::new();
            if let Some(n) = sp.get("name") {
                m.insert("name".into(), n.clone());
            }
            m.insert("port".into(), json!(port));
            m.insert(
                "protocol".into(),
                sp.get("protocol").cloned().unwrap_or(json!("TCP")),
            );
            Some(Value::Object(m))
        })
        .collect();
    let mut subset = Map::new();
    if !ready.is_empty() {
        subset.insert("addresses".into(), Value::Array(ready));
    }
    if !not_ready.is_empty() {
        subset.insert("notReadyAddresses".into(), Value::Array(not_ready));
    }
    let subsets = if subset.is_empty() || ports.is_empty() {
        None
    } else {
        subset.insert("ports".into(), Value::Array(ports));
        Some(json!([subset]))
    };
    let name = name_of(svc);
    let labels = svc.pointer("/metadata/labels").cloned();
    let opts = WriteOpts::controller(WRITER);
    match sb.store.get(endpoints(), ns, name) {
        None => {
            let mut ep = json!({"metadata": {"name": name, "namespace": ns}});
            let meta = metadata_mut(&mut ep);
            if let Some(l) = labels {
                meta.insert("labels".into(), l);
            }
            meta.insert("annotations".into(), json!({MANAGED_EP: format_time(now)}));
            if let (Some(s), Some(m)) = (subsets, ep.as_object_mut()) {
                m.insert("subsets".into(), s);
            }
            log_err(
                "create endpoints",
                sb.store.create(endpoints(), ns, ep, &opts),
            );
        }
        Some(cur) => {
            if cur.get("subsets") == subsets.as_ref() {
                return;
            }
            log_err(
                "update endpoints",
                sb.store.modify(endpoints(), ns, name, &opts, |ep| {
                    metadata_mut(ep)
                        .insert("annotations".into(), json!({MANAGED_EP: format_time(now)}));
                    if let Some(m) = ep.as_object_mut() {
                        match subsets {
                            Some(s) => m.insert("subsets".into(), s),
                            None => m.remove("subsets"),
                        };
                    }
                    Ok(())
                }),
            );
        }
    }
}

fn container_port(pod: &Value, name: &str) -> Option<i64> {
    pod.pointer("/spec/containers")?
        .as_array()?
        .iter()
        .flat_map(|c| {
            c.get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))?
        .get("containerPort")?
        .as_i64()
}

/// Resolve an int-or-percent (maxSurge/maxUnavailable) against `total`.
pub fn int_or_percent(v: Option<&Value>, total: i64, round_up: bool, default: &str) -> i64 {
    let s = match v {
        Some(Value::Number(n)) => return n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.clone(),
        _ => default.to_string(),
    };
    match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
        Some(p) => {
            let x = p * total;
            if round_up { (x + 99) / 100 } else { x / 100 }
        }
        None => s.parse().unwrap_or(0),
    }
}

/// Deterministic 10-character hash of a pod template, like `pod-template-hash`.
pub fn template_hash(template: &Value) -> String {
    let bytes = serde_json::to_vec(template).unwrap_or_default();
    // FNV-1a, then Kubernetes' "safe" alphabet (no vowels, no ambiguous characters).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = String::new();
    for _ in 0..10 {
        out.push(SAFE[(h % SAFE.len() as u64) as usize] as char);
        h /= SAFE.len() as u64;
        if h == 0 {
            h = 0x9e37_79b9_7f4a_7c15;
        }
    }
    out
}

/// A pod template without the `pod-template-hash` label, for comparing templates.
pub fn template_without_hash(t: &Value) -> Value {
    let mut t = t.clone();
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove("pod-template-hash");
    }
    t
}

pub mod deployment;
pub mod flux;
pub mod kubelet;
pub mod replicaset;
pub mod rollout;

/// Revision annotation of an object.
pub fn revision(v: &Value) -> i64 {
    annotation(v, "deployment.kubernetes.io/revision")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Sorted map of label strings (for building selectors).
pub fn labels_of(v: &Value, ptr: &str) -> BTreeMap<String, String> {
    v.pointer(ptr)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}
