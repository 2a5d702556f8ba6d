//! What kube-apiserver 1.26 does to an object before storing it: the v1 defaulting functions
//! (`SetDefaults_*`), the parts of admission and `PrepareForCreate` that show in a stored object
//! (service account, priority, default tolerations, QoS class, namespace finalizer and phase), and
//! the Go struct field order the server serializes in (see `shared/fixtures/kube-apiserver-1.26/`).
//!
//! Everything here is idempotent and, apart from the namespace's `kubernetes.io/metadata.name`
//! label and dropping `sessionAffinityConfig` when affinity is `None` (as the server does), only
//! fills what is absent, so it is safe on create and on update. Not done here: ClusterIP and
//! NodePort allocation (see [`needs_cluster_ip`]), the service account token volume, and the
//! priority value of a named PriorityClass.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

type Object = Map<String, Value>;

/// Applies the server-side defaults for `kind` (Deployment, ReplicaSet, Pod, Service, Namespace;
/// other kinds are left alone).
pub fn apply_defaults(kind: &str, obj: &mut Value) {
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    match kind {
        "Deployment" => default_deployment(obj),
        "ReplicaSet" => default_replicaset(obj),
        "Pod" => default_pod(obj),
        "Service" => default_service(obj),
        "Namespace" => default_namespace(obj),
        "Ingress" => default_ingress(obj),
        _ => {}
    }
}

/// networking/v1 Ingress: nothing in the spec is defaulted; the status is the zero value.
fn default_ingress(ing: &mut Object) {
    if let Some(status) = child(ing, "status") {
        default(status, "loadBalancer", json!({}));
    }
}

/// True when a Service still needs a cluster IP from the caller's allocator (then set both
/// `spec.clusterIP` and `spec.clusterIPs`): not ExternalName, and no `clusterIP` given
/// (`"None"`, headless, counts as given).
pub fn needs_cluster_ip(obj: &Value) -> bool {
    let spec = obj.get("spec");
    let field = |k: &str| spec.and_then(|s| s.get(k)).and_then(Value::as_str);
    field("type") != Some("ExternalName") && field("clusterIP").unwrap_or("").is_empty()
}

// ---- helpers ----

/// Go treats a missing field, `null` and `""` alike: all get the default.
fn unset(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

fn default(map: &mut Object, key: &str, value: Value) {
    if unset(map.get(key)) {
        map.insert(key.into(), value);
    }
}

/// For Go's non-pointer integers, where 0 also means "unset".
fn default_nonzero(map: &mut Object, key: &str, value: i64) {
    if unset(map.get(key)) || map.get(key).and_then(Value::as_i64) == Some(0) {
        map.insert(key.into(), json!(value));
    }
}

/// The object at `key`, created when absent or null; `None` when something else is there.
fn child<'a>(map: &'a mut Object, key: &str) -> Option<&'a mut Object> {
    let slot = map.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = json!({});
    }
    slot.as_object_mut()
}

/// The objects in the array at `key` (nothing when absent or mistyped).
fn each<'a>(map: &'a mut Object, key: &str) -> impl Iterator<Item = &'a mut Object> {
    map.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn str_of<'a>(map: &'a Object, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or("")
}

// ---- workloads ----

fn default_deployment(d: &mut Object) {
    if let Some(spec) = child(d, "spec") {
        default(spec, "replicas", json!(1));
        if let Some(strategy) = child(spec, "strategy") {
            default(strategy, "type", json!("RollingUpdate"));
            if str_of(strategy, "type") == "RollingUpdate"
                && let Some(ru) = child(strategy, "rollingUpdate")
            {
                default(ru, "maxUnavailable", json!("25%"));
                default(ru, "maxSurge", json!("25%"));
            }
        }
        default(spec, "revisionHistoryLimit", json!(10));
        default(spec, "progressDeadlineSeconds", json!(600));
        default_template(spec);
    }
    // DeploymentStatus is a Go struct value: `{}` at least.
    child(d, "status");
}

fn default_replicaset(rs: &mut Object) {
    if let Some(spec) = child(rs, "spec") {
        default(spec, "replicas", json!(1));
        default_template(spec);
    }
    // `status.replicas` has no omitempty.
    if let Some(status) = child(rs, "status") {
        default(status, "replicas", json!(0));
    }
}

fn default_template(spec: &mut Object) {
    let Some(template) = child(spec, "template") else {
        return;
    };
    // ObjectMeta.CreationTimestamp is a struct value: a zero time serializes as null.
    if let Some(meta) = child(template, "metadata") {
        meta.entry("creationTimestamp").or_insert(Value::Null);
    }
    if let Some(pod_spec) = child(template, "spec") {
        default_pod_spec(pod_spec);
    }
}

/// `SetDefaults_PodSpec` plus the per-container/volume defaults (pods and templates alike).
fn default_pod_spec(spec: &mut Object) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    // v1 conversion keeps the deprecated `serviceAccount` in step with `serviceAccountName`.
    match (
        unset(spec.get("serviceAccountName")),
        unset(spec.get("serviceAccount")),
    ) {
        (false, true) => {
            let name = spec
                .get("serviceAccountName")
                .cloned()
                .unwrap_or(Value::Null);
            spec.insert("serviceAccount".into(), name);
        }
        (true, false) => {
            let name = spec.get("serviceAccount").cloned().unwrap_or(Value::Null);
            spec.insert("serviceAccountName".into(), name);
        }
        _ => {}
    }
    for key in ["initContainers", "containers"] {
        each(spec, key).for_each(default_container);
    }
    for volume in each(spec, "volumes") {
        for source in ["secret", "configMap", "downwardAPI", "projected"] {
            if let Some(Value::Object(src)) = volume.get_mut(source) {
                default(src, "defaultMode", json!(420));
            }
        }
    }
}

fn default_container(c: &mut Object) {
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    if unset(c.get("imagePullPolicy")) {
        let policy = pull_policy(str_of(c, "image"));
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    // ResourceRequirements is a struct value.
    default(c, "resources", json!({}));
    for port in each(c, "ports") {
        default(port, "protocol", json!("TCP"));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(Value::Object(p)) = c.get_mut(probe) {
            default_nonzero(p, "timeoutSeconds", 1);
            default_nonzero(p, "periodSeconds", 10);
            default_nonzero(p, "successThreshold", 1);
            default_nonzero(p, "failureThreshold", 3);
            default_http_get(p);
        }
    }
    if let Some(Value::Object(lifecycle)) = c.get_mut("lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(Value::Object(h)) = lifecycle.get_mut(hook) {
                default_http_get(h);
            }
        }
    }
    for env in each(c, "env") {
        if let Some(Value::Object(from)) = env.get_mut("valueFrom")
            && let Some(Value::Object(field_ref)) = from.get_mut("fieldRef")
        {
            default(field_ref, "apiVersion", json!("v1"));
        }
    }
}

fn default_http_get(handler: &mut Object) {
    if let Some(Value::Object(get)) = handler.get_mut("httpGet") {
        default(get, "scheme", json!("HTTP"));
    }
}

/// `Always` for `:latest` or an untagged image, else `IfNotPresent` (as `SetDefaults_Container`).
fn pull_policy(image: &str) -> &'static str {
    let (name, has_digest) = match image.split_once('@') {
        Some((name, _)) => (name, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':').map(|(_, tag)| tag) {
        Some("latest") => "Always",
        Some(_) => "IfNotPresent",
        None if has_digest || image.is_empty() => "IfNotPresent",
        None => "Always",
    }
}

/// Pod-only defaults: `SetDefaults_Pod`, the ServiceAccount, Priority and
/// DefaultTolerationSeconds admission plugins, and `PrepareForCreate`'s status.
fn default_pod(pod: &mut Object) {
    let mut qos = None;
    if let Some(spec) = child(pod, "spec") {
        if unset(spec.get("serviceAccountName")) {
            let name = match spec.get("serviceAccount") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                _ => "default".into(),
            };
            spec.insert("serviceAccountName".into(), json!(name));
        }
        default_pod_spec(spec);
        for key in ["initContainers", "containers"] {
            each(spec, key).for_each(requests_from_limits);
        }
        default(spec, "enableServiceLinks", json!(true));
        if unset(spec.get("priorityClassName")) {
            default(spec, "priority", json!(0));
        }
        default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
        default_tolerations(spec);
        qos = Some(qos_class(spec));
    }
    if let Some(status) = child(pod, "status") {
        default(status, "phase", json!("Pending"));
        if let Some(qos) = qos {
            default(status, "qosClass", json!(qos));
        }
    }
}

/// Limits without a matching request become requests (pods only, not templates).
fn requests_from_limits(c: &mut Object) {
    let Some(Value::Object(resources)) = c.get_mut("resources") else {
        return;
    };
    let Some(Value::Object(limits)) = resources.get("limits").cloned() else {
        return;
    };
    if let Some(requests) = child(resources, "requests") {
        for (name, q) in limits {
            requests.entry(name).or_insert(q);
        }
    }
}

/// Tolerate `not-ready` and `unreachable` NoExecute taints for 300s unless already tolerated.
fn default_tolerations(spec: &mut Object) {
    let existing: Vec<(String, String)> = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    let f = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    (f("key"), f("effect"))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut added = Vec::new();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let tolerated = existing.iter().any(|(k, effect)| {
            (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        });
        if !tolerated {
            added.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }));
        }
    }
    if added.is_empty() {
        return;
    }
    match spec.get_mut("tolerations") {
        Some(Value::Array(ts)) => ts.extend(added),
        Some(Value::Null) | None => {
            spec.insert("tolerations".into(), Value::Array(added));
        }
        Some(_) => {}
    }
}

/// `qos.GetPodQOS` over containers and init containers (cpu and memory only).
fn qos_class(spec: &Object) -> &'static str {
    let mut requests: BTreeMap<String, i128> = BTreeMap::new();
    let mut limits: BTreeMap<String, i128> = BTreeMap::new();
    let mut guaranteed = true;
    let containers = ["containers", "initContainers"]
        .into_iter()
        .filter_map(|k| spec.get(k).and_then(Value::as_array))
        .flatten();
    for c in containers {
        let sum_into = |kind: &str, acc: &mut BTreeMap<String, i128>| {
            let mut found = Vec::new();
            let list = c
                .get("resources")
                .and_then(|r| r.get(kind))
                .and_then(Value::as_object);
            for (name, q) in list.into_iter().flatten() {
                let positive = quantity_nanos(q).filter(|n| *n > 0);
                if let (true, Some(n)) = (name == "cpu" || name == "memory", positive) {
                    let total = acc.entry(name.clone()).or_insert(0);
                    *total = total.saturating_add(n);
                    found.push(name.as_str());
                }
            }
            found.len()
        };
        sum_into("requests", &mut requests);
        if sum_into("limits", &mut limits) < 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        "BestEffort"
    } else if guaranteed
        && requests.len() == limits.len()
        && requests.iter().all(|(k, v)| limits.get(k) == Some(v))
    {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// A resource quantity (`"100m"`, `"128Mi"`, `"1.5G"`, `"2e3"`, `1`) in nano-units.
fn quantity_nanos(q: &Value) -> Option<i128> {
    const NANO: i128 = 1_000_000_000;
    let s = match q {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let all_digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    if !all_digits(int_part) || !all_digits(frac_part) || frac_part.len() > 18 {
        return None;
    }
    let mantissa: i128 = format!("{int_part}{frac_part}").parse().ok()?;
    let binary = |exp: u32| 1024i128.checked_pow(exp)?.checked_mul(NANO);
    let decimal = |exp: i32| 10i128.checked_pow(u32::try_from(exp + 9).ok()?);
    let multiplier = match suffix {
        "n" => Some(1),
        "u" => Some(1_000),
        "m" => Some(1_000_000),
        "" => Some(NANO),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        other => other
            .strip_prefix(['e', 'E'])
            .and_then(|e| e.parse::<i32>().ok())
            .filter(|e| (-9..=20).contains(e))
            .and_then(decimal),
    }?;
    let scaled = mantissa.checked_mul(multiplier)? / 10i128.checked_pow(frac_part.len() as u32)?;
    Some(if negative { -scaled } else { scaled })
}

// ---- services and namespaces ----

fn default_service(svc: &mut Object) {
    if let Some(spec) = child(svc, "spec") {
        default(spec, "type", json!("ClusterIP"));
        default(spec, "sessionAffinity", json!("None"));
        let affinity = str_of(spec, "sessionAffinity").to_string();
        match affinity.as_str() {
            "None" => {
                spec.shift_remove("sessionAffinityConfig");
            }
            "ClientIP" => {
                let timeout =
                    child(spec, "sessionAffinityConfig").and_then(|cfg| child(cfg, "clientIP"));
                if let Some(client_ip) = timeout {
                    default(client_ip, "timeoutSeconds", json!(10800));
                }
            }
            _ => {}
        }
        for port in each(spec, "ports") {
            default(port, "protocol", json!("TCP"));
            let target = port.get("targetPort");
            if unset(target) || target.and_then(Value::as_i64) == Some(0) {
                let p = port.get("port").cloned().unwrap_or(json!(0));
                port.insert("targetPort".into(), p);
            }
        }
        let ty = str_of(spec, "type").to_string();
        if matches!(ty.as_str(), "NodePort" | "LoadBalancer") {
            default(spec, "externalTrafficPolicy", json!("Cluster"));
        }
        if ty == "LoadBalancer" {
            default(spec, "allocateLoadBalancerNodePorts", json!(true));
        }
        if ty != "ExternalName" {
            let cluster_ip = str_of(spec, "clusterIP").to_string();
            if !cluster_ip.is_empty() {
                default(spec, "clusterIPs", json!([cluster_ip]));
            }
            let selectorless = spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty);
            let policy = if cluster_ip == "None" && selectorless {
                "RequireDualStack"
            } else {
                "SingleStack"
            };
            default(spec, "ipFamilies", json!(["IPv4"]));
            default(spec, "ipFamilyPolicy", json!(policy));
        }
        if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
            default(spec, "internalTrafficPolicy", json!("Cluster"));
        }
    }
    if let Some(status) = child(svc, "status") {
        default(status, "loadBalancer", json!({}));
    }
}

fn default_namespace(ns: &mut Object) {
    let name = ns
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !name.is_empty()
        && let Some(labels) = child(ns, "metadata").and_then(|m| child(m, "labels"))
    {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    if let Some(spec) = child(ns, "spec") {
        default(spec, "finalizers", json!(["kubernetes"]));
    }
    if let Some(status) = child(ns, "status") {
        default(status, "phase", json!("Active"));
    }
}

// ---- Go struct field order ----

const TOP: &[&str] = &["kind", "apiVersion", "metadata", "spec", "status"];
const EVENT_TOP: &[&str] = &[
    "kind",
    "apiVersion",
    "metadata",
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "type",
    "eventTime",
    "series",
    "action",
    "related",
    "reportingComponent",
    "reportingInstance",
];
const METADATA: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];
const OWNER_REFERENCE: &[&str] = &[
    "apiVersion",
    "kind",
    "name",
    "uid",
    "controller",
    "blockOwnerDeletion",
];
const MANAGED_FIELDS: &[&str] = &[
    "manager",
    "operation",
    "apiVersion",
    "time",
    "fieldsType",
    "fieldsV1",
    "subresource",
];
const DEPLOYMENT_SPEC: &[&str] = &[
    "replicas",
    "selector",
    "template",
    "strategy",
    "minReadySeconds",
    "revisionHistoryLimit",
    "paused",
    "progressDeadlineSeconds",
];
const DEPLOYMENT_STATUS: &[&str] = &[
    "observedGeneration",
    "replicas",
    "updatedReplicas",
    "readyReplicas",
    "availableReplicas",
    "unavailableReplicas",
    "conditions",
    "collisionCount",
];
const DEPLOYMENT_CONDITION: &[&str] = &[
    "type",
    "status",
    "lastUpdateTime",
    "lastTransitionTime",
    "reason",
    "message",
];
const REPLICASET_SPEC: &[&str] = &["replicas", "minReadySeconds", "selector", "template"];
const REPLICASET_STATUS: &[&str] = &[
    "replicas",
    "fullyLabeledReplicas",
    "readyReplicas",
    "availableReplicas",
    "observedGeneration",
    "conditions",
];
const POD_SPEC: &[&str] = &[
    "volumes",
    "initContainers",
    "containers",
    "ephemeralContainers",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "dnsPolicy",
    "nodeSelector",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "nodeName",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "securityContext",
    "imagePullSecrets",
    "hostname",
    "subdomain",
    "affinity",
    "schedulerName",
    "tolerations",
    "hostAliases",
    "priorityClassName",
    "priority",
    "dnsConfig",
    "readinessGates",
    "runtimeClassName",
    "enableServiceLinks",
    "preemptionPolicy",
    "overhead",
    "topologySpreadConstraints",
    "setHostnameAsFQDN",
    "os",
    "hostUsers",
    "schedulingGates",
    "resourceClaims",
];
const CONTAINER: &[&str] = &[
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "ports",
    "envFrom",
    "env",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "volumeMounts",
    "volumeDevices",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
];
const CONTAINER_PORT: &[&str] = &["name", "hostPort", "containerPort", "protocol", "hostIP"];
const PROBE: &[&str] = &[
    "exec",
    "httpGet",
    "tcpSocket",
    "grpc",
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
    "terminationGracePeriodSeconds",
];
const HTTP_GET: &[&str] = &["path", "port", "host", "scheme", "httpHeaders"];
const TOLERATION: &[&str] = &["key", "operator", "value", "effect", "tolerationSeconds"];
const POD_STATUS: &[&str] = &[
    "phase",
    "conditions",
    "message",
    "reason",
    "nominatedNodeName",
    "hostIP",
    "hostIPs",
    "podIP",
    "podIPs",
    "startTime",
    "initContainerStatuses",
    "containerStatuses",
    "qosClass",
    "ephemeralContainerStatuses",
    "resize",
    "resourceClaimStatuses",
];
const POD_CONDITION: &[&str] = &[
    "type",
    "status",
    "lastProbeTime",
    "lastTransitionTime",
    "reason",
    "message",
];
const CONTAINER_STATUS: &[&str] = &[
    "name",
    "state",
    "lastState",
    "ready",
    "restartCount",
    "image",
    "imageID",
    "containerID",
    "started",
];
const SERVICE_SPEC: &[&str] = &[
    "ports",
    "selector",
    "clusterIP",
    "clusterIPs",
    "type",
    "externalIPs",
    "sessionAffinity",
    "loadBalancerIP",
    "loadBalancerSourceRanges",
    "externalName",
    "externalTrafficPolicy",
    "healthCheckNodePort",
    "publishNotReadyAddresses",
    "sessionAffinityConfig",
    "ipFamilies",
    "ipFamilyPolicy",
    "allocateLoadBalancerNodePorts",
    "loadBalancerClass",
    "internalTrafficPolicy",
];
const SERVICE_PORT: &[&str] = &[
    "name",
    "protocol",
    "appProtocol",
    "port",
    "targetPort",
    "nodePort",
];

/// Reorders the keys of an object: `keys` first (those present), then the rest as they were.
fn reorder<'a>(v: Option<&'a mut Value>, keys: &[&str]) -> Option<&'a mut Object> {
    let map = v?.as_object_mut()?;
    let mut rest: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
    for key in keys {
        if let Some(i) = rest.iter().position(|(k, _)| k == key) {
            let (k, v) = rest.remove(i);
            map.insert(k, v);
        }
    }
    map.extend(rest);
    Some(map)
}

fn reorder_each(v: Option<&mut Value>, keys: &[&str]) {
    if let Some(Value::Array(items)) = v {
        for item in items {
            reorder(Some(item), keys);
        }
    }
}

fn sort_keys_deep(v: &mut Value) {
    if let Value::Object(map) = v {
        let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, mut v) in entries {
            sort_keys_deep(&mut v);
            map.insert(k, v);
        }
    }
}

/// Go maps (`map[string]string`, `ResourceList`) serialize with sorted keys.
fn sort_map(v: Option<&mut Value>) {
    if let Some(Value::Object(map)) = v {
        map.sort_keys();
    }
}

/// ObjectMeta in Go order: labels and annotations sorted, owner references and managed fields
/// ordered (`fieldsV1` sorted, as the server serializes field sets).
pub(super) fn order_metadata(meta: Option<&mut Value>) {
    let Some(meta) = reorder(meta, METADATA) else {
        return;
    };
    sort_map(meta.get_mut("labels"));
    sort_map(meta.get_mut("annotations"));
    reorder_each(meta.get_mut("ownerReferences"), OWNER_REFERENCE);
    if let Some(Value::Array(entries)) = meta.get_mut("managedFields") {
        for entry in entries {
            if let Some(fields) =
                reorder(Some(entry), MANAGED_FIELDS).and_then(|m| m.get_mut("fieldsV1"))
            {
                sort_keys_deep(fields);
            }
        }
    }
}

fn order_selector(v: Option<&mut Value>) {
    if let Some(selector) = reorder(v, &["matchLabels", "matchExpressions"]) {
        sort_map(selector.get_mut("matchLabels"));
    }
}

fn order_template(v: Option<&mut Value>) {
    let Some(template) = reorder(v, &["metadata", "spec"]) else {
        return;
    };
    order_metadata(template.get_mut("metadata"));
    order_pod_spec(template.get_mut("spec"));
}

fn order_pod_spec(v: Option<&mut Value>) {
    let Some(spec) = reorder(v, POD_SPEC) else {
        return;
    };
    for key in ["initContainers", "containers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(key) {
            containers.iter_mut().for_each(order_container);
        }
    }
    reorder_each(spec.get_mut("tolerations"), TOLERATION);
    sort_map(spec.get_mut("nodeSelector"));
}

fn order_container(c: &mut Value) {
    let Some(c) = reorder(Some(c), CONTAINER) else {
        return;
    };
    reorder_each(c.get_mut("ports"), CONTAINER_PORT);
    reorder_each(c.get_mut("env"), &["name", "value", "valueFrom"]);
    if let Some(resources) = reorder(c.get_mut("resources"), &["limits", "requests", "claims"]) {
        sort_map(resources.get_mut("limits"));
        sort_map(resources.get_mut("requests"));
    }
    reorder_each(
        c.get_mut("volumeMounts"),
        &[
            "name",
            "readOnly",
            "mountPath",
            "subPath",
            "mountPropagation",
            "subPathExpr",
        ],
    );
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = reorder(c.get_mut(probe), PROBE) {
            reorder(p.get_mut("httpGet"), HTTP_GET);
        }
    }
}

/// Puts keys in the order the real server writes them (Go struct order) for the top level, the
/// metadata, and spec/status of Deployment, ReplicaSet, Pod, Service and Namespace, down to
/// containers and probes; also the Event top level. Go maps met on the way (labels, annotations,
/// selectors, resource lists) are sorted. Unknown keys keep their relative order and follow the
/// known ones.
pub fn canonical_order(kind: &str, obj: &mut Value) {
    let top = if kind == "Event" { EVENT_TOP } else { TOP };
    let Some(obj) = reorder(Some(obj), top) else {
        return;
    };
    order_metadata(obj.get_mut("metadata"));
    match kind {
        "Deployment" => {
            if let Some(spec) = reorder(obj.get_mut("spec"), DEPLOYMENT_SPEC) {
                order_selector(spec.get_mut("selector"));
                order_template(spec.get_mut("template"));
                if let Some(strategy) =
                    reorder(spec.get_mut("strategy"), &["type", "rollingUpdate"])
                {
                    reorder(
                        strategy.get_mut("rollingUpdate"),
                        &["maxUnavailable", "maxSurge"],
                    );
                }
            }
            if let Some(status) = reorder(obj.get_mut("status"), DEPLOYMENT_STATUS) {
                reorder_each(status.get_mut("conditions"), DEPLOYMENT_CONDITION);
            }
        }
        "ReplicaSet" => {
            if let Some(spec) = reorder(obj.get_mut("spec"), REPLICASET_SPEC) {
                order_selector(spec.get_mut("selector"));
                order_template(spec.get_mut("template"));
            }
            if let Some(status) = reorder(obj.get_mut("status"), REPLICASET_STATUS) {
                reorder_each(
                    status.get_mut("conditions"),
                    &["type", "status", "lastTransitionTime", "reason", "message"],
                );
            }
        }
        "Pod" => {
            order_pod_spec(obj.get_mut("spec"));
            if let Some(status) = reorder(obj.get_mut("status"), POD_STATUS) {
                reorder_each(status.get_mut("conditions"), POD_CONDITION);
                for key in ["initContainerStatuses", "containerStatuses"] {
                    reorder_each(status.get_mut(key), CONTAINER_STATUS);
                }
            }
        }
        "Service" => {
            if let Some(spec) = reorder(obj.get_mut("spec"), SERVICE_SPEC) {
                reorder_each(spec.get_mut("ports"), SERVICE_PORT);
                sort_map(spec.get_mut("selector"));
            }
        }
        "Namespace" => {
            reorder(obj.get_mut("status"), &["phase", "conditions"]);
        }
        "Ingress" => {
            if let Some(spec) = reorder(
                obj.get_mut("spec"),
                &["ingressClassName", "defaultBackend", "tls", "rules"],
            ) && let Some(rules) = spec.get_mut("rules").and_then(Value::as_array_mut)
            {
                for rule in rules {
                    if let Some(r) = reorder(Some(rule), &["host", "http"])
                        && let Some(paths) = r.get_mut("http").and_then(|h| h.get_mut("paths"))
                    {
                        reorder_each(Some(paths), &["path", "pathType", "backend"]);
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sandbox::test_fixtures::fixture_json;

    fn defaulted(kind: &str, mut obj: Value) -> Value {
        apply_defaults(kind, &mut obj);
        canonical_order(kind, &mut obj);
        obj
    }

    /// Recorded objects by name, from the production lists.
    fn recorded(kind: &str, name: &str) -> Value {
        let list = match kind {
            "Deployment" => "02-lists/deployments.json",
            "Service" => "02-lists/services.json",
            _ => unreachable!(),
        };
        fixture_json(list)["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == name)
            .unwrap()
            .clone()
    }

    /// Where the recorded spec legitimately differs from a defaulted manifest: the server's
    /// state (allocated cluster IPs) and what happened after the manifest was applied.
    fn server_state_exceptions(kind: &str, name: &str, ours: &mut Value, theirs: &Value) {
        if kind == "Service" {
            // allocated by the server; the sandbox's allocator does this (needs_cluster_ip)
            ours["spec"]["clusterIP"] = theirs["spec"]["clusterIP"].clone();
            ours["spec"]["clusterIPs"] = theirs["spec"]["clusterIPs"].clone();
        }
        if (kind, name) == ("Deployment", "frontend") {
            // rolled out to 3.2.0 during the recording, before the lists were taken
            ours["spec"]["template"]["spec"]["containers"][0]["image"] =
                theirs["spec"]["template"]["spec"]["containers"][0]["image"].clone();
        }
    }

    fn check_scene(file: &str, adapt: impl Fn(&Value, &mut Value)) {
        let scene = fixture_json(file);
        for manifest in scene["items"].as_array().unwrap() {
            let kind = manifest["kind"].as_str().unwrap();
            let name = manifest["metadata"]["name"].as_str().unwrap();
            let mut want = recorded(kind, name);
            adapt(manifest, &mut want);
            let mut ours = defaulted(kind, manifest.clone());
            server_state_exceptions(kind, name, &mut ours, &want);
            canonical_order(kind, &mut ours);
            assert_eq!(ours["spec"], want["spec"], "{file}: {kind} {name}");
            assert_eq!(
                ours["spec"].to_string(),
                want["spec"].to_string(),
                "{file}: {kind} {name}: key order"
            );
        }
    }

    #[test]
    fn production_scene_defaults_to_recorded_specs() {
        check_scene("00-scene/production.json", |_, _| {});
    }

    #[test]
    fn staging_scene_defaults_to_recorded_specs() {
        // only production was listed: compare with it, adjusted for the staging values
        check_scene("00-scene/staging.json", |manifest, want| {
            if manifest["kind"] == "Deployment" {
                want["spec"]["replicas"] = manifest["spec"]["replicas"].clone();
                want["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] =
                    json!("staging");
                want["spec"]["template"]["spec"]["containers"][0]["image"] =
                    manifest["spec"]["template"]["spec"]["containers"][0]["image"].clone();
            }
        });
    }

    #[test]
    fn server_side_apply_manifest_defaults_like_the_server() {
        let request = fixture_json("06-kubectl/18-apply-server-side.patch.request.json");
        let response = fixture_json("06-kubectl/18-apply-server-side.patch.response.json");
        let ours = defaulted("Deployment", request);
        assert_eq!(ours["spec"].to_string(), response["spec"].to_string());
        assert_eq!(ours["status"], json!({}));
    }

    #[test]
    fn pod_from_template_defaults_like_the_server() {
        let scene = fixture_json("00-scene/production.json");
        let checkout = &scene["items"][0];
        let template = &checkout["spec"]["template"];
        let pod = json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": template["metadata"].clone(),
            "spec": template["spec"].clone(),
        });
        let ours = defaulted("Pod", pod);
        let mut want = fixture_json("03-get/pod-checkout-running.json")["spec"].clone();
        // not done by the sandbox: the service account token volume (admission) and the
        // scheduler's binding
        let spec = want.as_object_mut().unwrap();
        spec.shift_remove("volumes");
        spec.shift_remove("nodeName");
        spec["containers"][0]
            .as_object_mut()
            .unwrap()
            .shift_remove("volumeMounts");
        assert_eq!(ours["spec"].to_string(), want.to_string());
        assert_eq!(
            ours["status"],
            json!({"phase": "Pending", "qosClass": "Burstable"})
        );
    }

    #[test]
    fn canonical_order_restores_shuffled_fixtures() {
        fn reverse_keys(v: &mut Value) {
            match v {
                Value::Object(map) => {
                    let mut entries: Vec<(String, Value)> =
                        std::mem::take(map).into_iter().collect();
                    entries.reverse();
                    for (k, mut v) in entries {
                        reverse_keys(&mut v);
                        map.insert(k, v);
                    }
                }
                Value::Array(items) => items.iter_mut().for_each(reverse_keys),
                _ => {}
            }
        }
        for (kind, file) in [
            ("Deployment", "03-get/deployment-checkout.json"),
            ("ReplicaSet", "03-get/replicaset-checkout.json"),
            ("Pod", "03-get/pod-checkout-running.json"),
            ("Service", "03-get/service-payments.json"),
            ("Namespace", "03-get/namespace-production.json"),
        ] {
            let original = fixture_json(file);
            let mut same = original.clone();
            canonical_order(kind, &mut same);
            assert_eq!(
                same.to_string(),
                original.to_string(),
                "{file} is already canonical"
            );
            let mut shuffled = original.clone();
            reverse_keys(&mut shuffled);
            canonical_order(kind, &mut shuffled);
            let (mut a, mut b) = (shuffled, original);
            // below the depth we order (volumes, state, ...) only key sets must agree
            strip_unordered(kind, &mut a);
            strip_unordered(kind, &mut b);
            assert_eq!(a.to_string(), b.to_string(), "{file}");
        }
    }

    /// Drops the subtrees `canonical_order` does not reach.
    fn strip_unordered(kind: &str, v: &mut Value) {
        if kind == "Pod" {
            v["spec"].as_object_mut().unwrap().shift_remove("volumes");
            v["spec"]["containers"][0]
                .as_object_mut()
                .unwrap()
                .shift_remove("volumeMounts");
            for cs in v["status"]["containerStatuses"].as_array_mut().unwrap() {
                cs.as_object_mut().unwrap().shift_remove("state");
            }
        }
    }

    #[test]
    fn canonical_order_keeps_unknown_keys_after_known_ones() {
        let mut obj = json!({"zeta": 1, "spec": {"x": 1, "replicas": 2}, "alpha": 2, "kind": "Deployment",
            "metadata": {"custom": 1, "name": "n"}});
        canonical_order("Deployment", &mut obj);
        assert_eq!(
            obj.to_string(),
            r#"{"kind":"Deployment","metadata":{"name":"n","custom":1},"spec":{"replicas":2,"x":1},"zeta":1,"alpha":2}"#
        );
        let mut ev =
            json!({"type": "Normal", "count": 1, "metadata": {}, "reason": "R", "kind": "Event"});
        canonical_order("Event", &mut ev);
        assert_eq!(
            ev.to_string(),
            r#"{"kind":"Event","metadata":{},"reason":"R","count":1,"type":"Normal"}"#
        );
    }

    #[test]
    fn image_pull_policy() {
        for (image, want) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.25", "IfNotPresent"),
            ("registry.local:5000/team/app", "Always"),
            ("registry.local:5000/team/app:2", "IfNotPresent"),
            ("app@sha256:abcd", "IfNotPresent"),
            ("app:latest@sha256:abcd", "Always"),
            ("", "IfNotPresent"),
        ] {
            assert_eq!(pull_policy(image), want, "{image}");
        }
    }

    fn pod_with(resources: Value) -> Value {
        defaulted(
            "Pod",
            json!({"spec": {"containers": [{"name": "a", "image": "x:1", "resources": resources}]}}),
        )
    }

    #[test]
    fn qos_classes() {
        let qos = |r: Value| pod_with(r)["status"]["qosClass"].clone();
        assert_eq!(qos(json!({})), json!("BestEffort"));
        assert_eq!(qos(json!({"requests": {"cpu": "0"}})), json!("BestEffort"));
        assert_eq!(
            qos(json!({"requests": {"cpu": "100m"}})),
            json!("Burstable")
        );
        // limits only: requests are defaulted from them, so Guaranteed
        let g = pod_with(json!({"limits": {"cpu": "1", "memory": "1Gi"}}));
        assert_eq!(g["status"]["qosClass"], json!("Guaranteed"));
        assert_eq!(
            g["spec"]["containers"][0]["resources"],
            json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}})
        );
        assert_eq!(
            qos(
                json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1024Mi"}})
            ),
            json!("Guaranteed")
        );
        assert_eq!(
            qos(json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}})),
            json!("Burstable")
        );
        assert_eq!(qos(json!({"limits": {"cpu": "1"}})), json!("Burstable"));
        let huge = json!({"requests": {"memory": "100000000000Ei"}});
        let two = defaulted(
            "Pod",
            json!({"spec": {"containers": [{"resources": huge}], "initContainers": [{"resources": huge}]}}),
        );
        assert_eq!(two["status"]["qosClass"], json!("Burstable"));
    }

    #[test]
    fn quantities() {
        let q = |s: &str| quantity_nanos(&json!(s));
        assert_eq!(q("100m"), Some(100_000_000));
        assert_eq!(q("1"), Some(1_000_000_000));
        assert_eq!(q("1.5"), Some(1_500_000_000));
        assert_eq!(q("128Mi"), Some(128 * 1024 * 1024 * 1_000_000_000));
        assert_eq!(q("1k"), q("1000"));
        assert_eq!(q("2e3"), q("2k"));
        assert_eq!(q("1Gi"), q("1024Mi"));
        assert_eq!(q("-1"), Some(-1_000_000_000));
        assert_eq!(quantity_nanos(&json!(2)), q("2"));
        for bad in [
            "",
            "abc",
            "1x",
            "1.2.3",
            "Mi",
            "1e99",
            "99999999999999999999999999999Ei",
        ] {
            assert_eq!(q(bad), None, "{bad}");
        }
    }

    #[test]
    fn pod_admission_defaults() {
        let pod = defaulted(
            "Pod",
            json!({"spec": {"serviceAccount": "builder", "priorityClassName": "high",
                "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}],
                "containers": [{"name": "a", "image": "a", "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "lifecycle": {"preStop": {"httpGet": {"port": 80}}},
                    "startupProbe": {"httpGet": {"port": 80}, "periodSeconds": 0}}],
                "volumes": [{"name": "c", "configMap": {"name": "c"}}]}}),
        );
        let spec = &pod["spec"];
        assert_eq!(spec["serviceAccountName"], "builder");
        assert_eq!(spec["serviceAccount"], "builder");
        assert!(spec.get("priority").is_none());
        assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
        assert_eq!(spec["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(
            spec["tolerations"][1]["key"],
            "node.kubernetes.io/not-ready"
        );
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(c["lifecycle"]["preStop"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(c["startupProbe"]["periodSeconds"], 10);
        assert_eq!(spec["volumes"][0]["configMap"]["defaultMode"], 420);
        // a template gets none of the pod-only defaults
        let d = defaulted(
            "Deployment",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:1"}]}}}}),
        );
        let tspec = &d["spec"]["template"]["spec"];
        assert!(tspec.get("enableServiceLinks").is_none());
        assert!(tspec.get("tolerations").is_none());
        assert_eq!(
            d["spec"]["template"]["metadata"],
            json!({"creationTimestamp": null})
        );
        // Recreate gets no rollingUpdate
        let r = defaulted(
            "Deployment",
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
        );
        assert_eq!(r["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn service_variants() {
        let svc =
            |spec: Value| defaulted("Service", json!({"metadata": {"name": "s"}, "spec": spec}));
        let lb = svc(
            json!({"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 443, "targetPort": 0}]}),
        );
        assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
        assert_eq!(
            lb["spec"]["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 10800}})
        );
        assert_eq!(
            lb["spec"]["ports"][0],
            json!({"protocol": "TCP", "port": 443, "targetPort": 443})
        );
        assert_eq!(lb["status"], json!({"loadBalancer": {}}));
        let ext = svc(json!({"type": "ExternalName", "externalName": "db.example"}));
        assert_eq!(
            ext["spec"],
            json!({"type": "ExternalName", "sessionAffinity": "None", "externalName": "db.example"})
        );
        assert!(!needs_cluster_ip(&ext));
        let headless = svc(json!({"clusterIP": "None"}));
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        assert!(!needs_cluster_ip(&headless));
        let plain =
            svc(json!({"selector": {"app": "a"}, "sessionAffinityConfig": {"clientIP": {}}}));
        assert!(needs_cluster_ip(&plain));
        assert!(plain["spec"].get("sessionAffinityConfig").is_none());
        assert!(plain["spec"].get("clusterIPs").is_none());
        assert_eq!(plain["spec"]["ipFamilyPolicy"], "SingleStack");
        assert!(needs_cluster_ip(&json!({})));
    }

    #[test]
    fn namespace_defaults() {
        let want = fixture_json("03-get/namespace-production.json");
        let ns = defaulted(
            "Namespace",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "production", "labels": {"env": "production"}}}),
        );
        assert_eq!(ns["metadata"]["labels"], want["metadata"]["labels"]);
        assert_eq!(ns["spec"], want["spec"]);
        assert_eq!(ns["status"], want["status"]);
        // an existing (e.g. emptied) finalizer list is left alone
        let kept = defaulted(
            "Namespace",
            json!({"metadata": {"name": "x"}, "spec": {"finalizers": []}}),
        );
        assert_eq!(kept["spec"]["finalizers"], json!([]));
    }

    #[test]
    fn defaults_are_idempotent() {
        let scene = fixture_json("00-scene/production.json");
        for item in scene["items"].as_array().unwrap() {
            let kind = item["kind"].as_str().unwrap();
            let once = defaulted(kind, item.clone());
            assert_eq!(defaulted(kind, once.clone()).to_string(), once.to_string());
        }
    }

    #[test]
    fn garbage_never_panics() {
        let junk = [
            json!(null),
            json!([1]),
            json!("x"),
            json!({"spec": 5, "status": "x", "metadata": 1}),
            json!({"spec": {"template": 3, "strategy": [], "containers": {}, "ports": "x", "selector": 1,
                "sessionAffinity": 7, "type": 3, "tolerations": "x"}, "metadata": {"name": 5, "labels": 3}}),
            json!({"spec": {"template": {"metadata": 1, "spec": {"containers": [1, {"ports": [2], "resources": 3, "image": 4}]}},
                "containers": [{"resources": {"limits": 5, "requests": {"cpu": []}}}], "volumes": [{"secret": 1}]}}),
        ];
        for kind in [
            "Deployment",
            "ReplicaSet",
            "Pod",
            "Service",
            "Namespace",
            "Event",
            "Other",
        ] {
            for j in &junk {
                let mut v = j.clone();
                apply_defaults(kind, &mut v);
                canonical_order(kind, &mut v);
                needs_cluster_ip(&v);
            }
        }
    }
}
