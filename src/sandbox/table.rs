//! Server-side `Table` output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), as
//! kube-apiserver 1.26 renders it for `kubectl get`: the column definitions and cell logic of
//! `pkg/printers/internalversion/printers.go` (always the "wide" set, like the server), the CRD
//! `additionalPrinterColumns` convertor for HTTPRoute, Rollout, VirtualService and
//! DestinationRule, Flux's GitRepository and Kustomization, and the CRD default (`Name`, `Age`) for every other kind (TraefikService). See `shared/fixtures/kube-apiserver-1.26/09-table/`.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::defaults::order_metadata;

/// What each row's `object` carries (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// `"object": null`.
    None,
    /// A `PartialObjectMetadata` with the object's metadata (the server's default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

/// One `columnDefinitions` entry.
struct Column {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    description: &'static str,
    priority: i64,
}

const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty: "string",
        format: "",
        description,
        priority: 1,
    }
}

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: http://kubernetes.io/docs/user-guide/identifiers#names";
const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";
const NODE_ADDRESSES_DESC: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";

const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: NAME_DESC,
    priority: 0,
};
const AGE: Column = col("Age", "string", AGE_DESC);

const POD_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide(
        "IP",
        "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    ),
    wide(
        "Node",
        "NodeName is a request to schedule this pod onto a specific node. If it is non-empty, the scheduler simply schedules this pod onto that node, assuming that it fits resource requirements.",
    ),
    wide(
        "Nominated Node",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
    ),
    wide(
        "Readiness Gates",
        "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
    ),
];

const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    col(
        "Available",
        "string",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    wide("Containers", CONTAINERS_DESC),
    wide("Images", IMAGES_DESC),
    wide(
        "Selector",
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
    ),
];

const REPLICASET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently oberved number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
    ),
    col(
        "Ready",
        "integer",
        "The number of ready replicas for this replica set.",
    ),
    AGE,
    wide("Containers", CONTAINERS_DESC),
    wide("Images", IMAGES_DESC),
    wide(
        "Selector",
        "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types",
    ),
    col(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    col(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.",
    ),
    col(
        "Port(s)",
        "string",
        "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    AGE,
    wide(
        "Selector",
        "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/",
    ),
];

const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
    ),
    AGE,
];

const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

const EVENT_COLUMNS: &[Column] = &[
    col(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    col(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    col(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    col("Object", "string", "The object that this event is about."),
    wide(
        "Subobject",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
    ),
    wide(
        "Source",
        "The component reporting this event. Should be a short machine understandable string.",
    ),
    col(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    wide(
        "First Seen",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    ),
    wide("Count", "The number of times this event has occurred."),
    Column {
        name: "Name",
        ty: "string",
        format: "name",
        description: NAME_DESC,
        priority: 1,
    },
];

const NODE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col("Version", "string", "Kubelet Version reported by the node."),
    wide("Internal-IP", NODE_ADDRESSES_DESC),
    wide("External-IP", NODE_ADDRESSES_DESC),
    wide(
        "OS-Image",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    ),
    wide(
        "Kernel-Version",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    ),
    wide(
        "Container-Runtime",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    ),
];

/// The HTTPRoute CRD's `additionalPrinterColumns` (see `00-scene/crd-httproute.yaml`).
const HTTPROUTE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Hostnames",
        "string",
        "Custom resource definition column (in JSONPath format): .spec.hostnames",
    ),
    col(
        "Age",
        "date",
        "Custom resource definition column (in JSONPath format): .metadata.creationTimestamp",
    ),
];

/// `ingressColumnDefinitions` of printers.go.
const INGRESS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for ingress",
    ),
    col(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    col(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    col("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

/// The Argo Rollouts CRD's `additionalPrinterColumns` (rollouts.argoproj.io, v1alpha1).
const ROLLOUT_COLUMNS: &[Column] = &[
    NAME,
    col("Desired", "integer", "Number of desired pods"),
    col(
        "Current",
        "integer",
        "Total number of non-terminated pods targeted by this rollout",
    ),
    col(
        "Up-to-date",
        "integer",
        "Total number of non-terminated pods targeted by this rollout that have the desired template spec",
    ),
    col(
        "Available",
        "integer",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this rollout",
    ),
    col("Age", "date", "Time since resource was created"),
];

/// The Age column's description in Istio's CRDs (`crd-all.gen.yaml`).
const ISTIO_AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC. Populated by the system. Read-only. Null for lists. For more information, see [Kubernetes API Conventions](https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#metadata)";

/// Istio's VirtualService CRD `additionalPrinterColumns` (networking.istio.io, every version).
const VIRTUALSERVICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Gateways",
        "string",
        "The names of gateways and sidecars that should apply these routes",
    ),
    col(
        "Hosts",
        "string",
        "The destination hosts to which traffic is being sent",
    ),
    col("Age", "date", ISTIO_AGE_DESC),
];

/// Istio's DestinationRule CRD `additionalPrinterColumns`.
const DESTINATIONRULE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Host",
        "string",
        "The name of a service from the service registry",
    ),
    col("Age", "date", ISTIO_AGE_DESC),
];

/// Flux's GitRepository `additionalPrinterColumns` (source.toolkit.fluxcd.io/v1): the
/// kubebuilder markers give no descriptions, so the CRD handler describes each by its JSONPath.
const GITREPOSITORY_COLUMNS: &[Column] = &[
    NAME,
    col(
        "URL",
        "string",
        "Custom resource definition column (in JSONPath format): .spec.url",
    ),
    col(
        "Age",
        "date",
        "Custom resource definition column (in JSONPath format): .metadata.creationTimestamp",
    ),
    col("Ready", "string", FLUX_READY_DESC),
    col("Status", "string", FLUX_STATUS_DESC),
];

/// Flux's Kustomization `additionalPrinterColumns` (kustomize.toolkit.fluxcd.io/v1).
const KUSTOMIZATION_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Age",
        "date",
        "Custom resource definition column (in JSONPath format): .metadata.creationTimestamp",
    ),
    col("Ready", "string", FLUX_READY_DESC),
    col("Status", "string", FLUX_STATUS_DESC),
];

const FLUX_READY_DESC: &str = "Custom resource definition column (in JSONPath format): .status.conditions[?(@.type==\"Ready\")].status";
const FLUX_STATUS_DESC: &str = "Custom resource definition column (in JSONPath format): .status.conditions[?(@.type==\"Ready\")].message";

/// What the CRD handler serves for a version without `additionalPrinterColumns`.
const DEFAULT_COLUMNS: &[Column] = &[NAME, col("Age", "date", AGE_DESC)];

type RowFn = fn(&Value, Timestamp) -> Vec<Value>;

fn printer(kind: &str) -> (&'static [Column], RowFn) {
    match kind {
        "Pod" => (POD_COLUMNS, pod_row),
        "Deployment" => (DEPLOYMENT_COLUMNS, deployment_row),
        "ReplicaSet" => (REPLICASET_COLUMNS, replicaset_row),
        "Service" => (SERVICE_COLUMNS, service_row),
        "Endpoints" => (ENDPOINTS_COLUMNS, endpoints_row),
        "Namespace" => (NAMESPACE_COLUMNS, namespace_row),
        "Event" => (EVENT_COLUMNS, event_row),
        "Node" => (NODE_COLUMNS, node_row),
        "HTTPRoute" => (HTTPROUTE_COLUMNS, httproute_row),
        "Ingress" => (INGRESS_COLUMNS, ingress_row),
        "Rollout" => (ROLLOUT_COLUMNS, rollout_row),
        "VirtualService" => (VIRTUALSERVICE_COLUMNS, virtualservice_row),
        "DestinationRule" => (DESTINATIONRULE_COLUMNS, destinationrule_row),
        "GitRepository" => (GITREPOSITORY_COLUMNS, gitrepository_row),
        "Kustomization" => (KUSTOMIZATION_COLUMNS, kustomization_row),
        // TraefikService (both groups) has no printer columns: Name, Age.
        _ => (DEFAULT_COLUMNS, default_row),
    }
}

/// Builds the `Table` for a list (or a single object: pass one item) of `kind`.
/// `now` is the server clock used for ages.
pub fn to_table(
    kind: &str,
    items: &[&Value],
    list_resource_version: &str,
    continue_token: Option<&str>,
    remaining: Option<i64>,
    include_object: IncludeObject,
    now: Timestamp,
) -> Value {
    let (columns, row_fn) = printer(kind);
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), json!(list_resource_version));
    if let Some(token) = continue_token.filter(|t| !t.is_empty()) {
        meta.insert("continue".into(), json!(token));
    }
    if let Some(n) = remaining {
        meta.insert("remainingItemCount".into(), json!(n));
    }
    let column_defs: Vec<Value> = columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.ty,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(row_fn(obj, now)));
            if kind == "Pod"
                && let Some(conditions) = pod_row_conditions(obj)
            {
                row.insert("conditions".into(), conditions);
            }
            let object = match include_object {
                IncludeObject::None => Value::Null,
                IncludeObject::Metadata => {
                    // converted to ObjectMeta, so in Go field order whatever the storage order
                    let mut meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
                    order_metadata(Some(&mut meta));
                    json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": meta,
                    })
                }
                IncludeObject::Object => (*obj).clone(),
            };
            row.insert("object".into(), object);
            Value::Object(row)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": column_defs,
        "rows": rows,
    })
}

/// `duration.HumanDuration` of apimachinery: ~2-3 significant figures, `<invalid>` for durations
/// more than a second in the future.
pub fn human_duration(d_seconds: i64) -> String {
    let seconds = d_seconds;
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

// ---- value access (Go zero values for anything missing or mistyped) ----

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    get(v, path).and_then(Value::as_str).unwrap_or("")
}

fn int(v: &Value, path: &[&str]) -> i64 {
    get(v, path).and_then(Value::as_i64).unwrap_or(0)
}

fn list<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s.into()
    }
}

/// Seconds from `ts` (RFC 3339) to `now`, truncated toward zero like Go's `int(d.Seconds())`.
fn seconds_since(ts: &str, now: Timestamp) -> Option<i64> {
    let t: Timestamp = ts.parse().ok()?;
    Some(now.duration_since(t).as_secs())
}

/// `translateTimestampSince`: `<unknown>` for a zero (absent) time.
fn since(ts: &str, now: Timestamp) -> String {
    seconds_since(ts, now).map_or_else(|| "<unknown>".into(), human_duration)
}

fn name(obj: &Value) -> Value {
    json!(text(obj, &["metadata", "name"]))
}

fn age(obj: &Value, now: Timestamp) -> Value {
    json!(since(text(obj, &["metadata", "creationTimestamp"]), now))
}

/// `labels.FormatLabels`: sorted `k=v` pairs, `<none>` when empty.
fn format_labels(map: Option<&Value>) -> String {
    let mut pairs: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    or_none(&pairs.join(","))
}

/// `metav1.LabelSelectorAsSelector(sel).String()`; `None` where that conversion fails.
fn selector_string(sel: Option<&Value>) -> Option<String> {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return Some(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(labels) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for expr in list(sel, &["matchExpressions"]) {
        let key = text(expr, &["key"]);
        let mut values: Vec<&str> = list(expr, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let rendered = match (text(expr, &["operator"]), values.is_empty()) {
            ("In", false) => format!("{key} in ({})", values.join(",")),
            ("NotIn", false) => format!("{key} notin ({})", values.join(",")),
            ("Exists", true) => key.to_string(),
            ("DoesNotExist", true) => format!("!{key}"),
            _ => return None,
        };
        reqs.push((key.to_string(), rendered));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Some(reqs.into_iter().map(|r| r.1).collect::<Vec<_>>().join(","))
}

/// `layoutContainerCells`: container names and images, comma-joined.
fn container_cells(pod_spec: Option<&Value>) -> [Value; 2] {
    let containers = pod_spec.map_or(&[][..], |s| list(s, &["containers"]));
    let names: Vec<&str> = containers.iter().map(|c| text(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, &["image"])).collect();
    [json!(names.join(",")), json!(images.join(","))]
}

// ---- printers ----

fn pod_row(pod: &Value, now: Timestamp) -> Vec<Value> {
    let status = pod.get("status").unwrap_or(&Value::Null);
    let total = list(pod, &["spec", "containers"]).len();
    let mut restarts: i64 = 0;
    let mut ready = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut note_restart = |cs: &Value| {
        let finished = text(cs, &["lastState", "terminated", "finishedAt"]);
        if let Ok(t) = finished.parse::<Timestamp>() {
            last_restart = Some(last_restart.map_or(t, |l| l.max(t)));
        }
    };

    let mut reason = text(status, &["phase"]).to_string();
    if let Some(r) = get(status, &["reason"])
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        reason = r.to_string();
    }

    let init_statuses = list(status, &["initContainerStatuses"]);
    let init_total = list(pod, &["spec", "initContainers"]).len();
    let mut initializing = false;
    for (i, cs) in init_statuses.iter().enumerate() {
        restarts = restarts.saturating_add(int(cs, &["restartCount"]));
        note_restart(cs);
        let terminated = get(cs, &["state", "terminated"]);
        let waiting_reason = text(cs, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int(t, &["exitCode"]) == 0) {
            continue;
        }
        reason = if let Some(t) = terminated {
            match text(t, &["reason"]) {
                "" if int(t, &["signal"]) != 0 => format!("Init:Signal:{}", int(t, &["signal"])),
                "" => format!("Init:ExitCode:{}", int(t, &["exitCode"])),
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{init_total}")
        };
        initializing = true;
        break;
    }

    if !initializing {
        restarts = 0;
        let mut has_running = false;
        for cs in list(status, &["containerStatuses"]).iter().rev() {
            restarts = restarts.saturating_add(int(cs, &["restartCount"]));
            note_restart(cs);
            let waiting = text(cs, &["state", "waiting", "reason"]);
            let terminated = get(cs, &["state", "terminated"]);
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(t) = terminated {
                reason = match text(t, &["reason"]) {
                    "" if int(t, &["signal"]) != 0 => format!("Signal:{}", int(t, &["signal"])),
                    "" => format!("ExitCode:{}", int(t, &["exitCode"])),
                    r => r.to_string(),
                };
            } else if get(cs, &["ready"]) == Some(&Value::Bool(true))
                && get(cs, &["state", "running"]).is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if has_condition(status, "Ready", "True") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    let gated = list(status, &["conditions"])
        .iter()
        .any(|c| text(c, &["type"]) == "PodScheduled" && text(c, &["reason"]) == "SchedulingGated");
    if gated {
        reason = "SchedulingGated".into();
    }
    if get(pod, &["metadata", "deletionTimestamp"]).is_some_and(|t| !t.is_null()) {
        reason = if text(status, &["reason"]) == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }

    let restarts_cell = match last_restart {
        Some(t) => format!(
            "{restarts} ({} ago)",
            human_duration(now.duration_since(t).as_secs())
        ),
        None => restarts.to_string(),
    };

    let ip = list(status, &["podIPs"])
        .first()
        .map_or("", |p| text(p, &["ip"]));
    let gates = list(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let met = gates
            .iter()
            .filter(|g| {
                let ty = text(g, &["conditionType"]);
                list(status, &["conditions"])
                    .iter()
                    .find(|c| text(c, &["type"]) == ty)
                    .is_some_and(|c| text(c, &["status"]) == "True")
            })
            .count();
        format!("{met}/{}", gates.len())
    };
    vec![
        name(pod),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        age(pod, now),
        json!(or_none(ip)),
        json!(or_none(text(pod, &["spec", "nodeName"]))),
        json!(or_none(text(status, &["nominatedNodeName"]))),
        json!(readiness_gates),
    ]
}

fn has_condition(status: &Value, ty: &str, want: &str) -> bool {
    list(status, &["conditions"])
        .iter()
        .any(|c| text(c, &["type"]) == ty && text(c, &["status"]) == want)
}

/// Row conditions the pod printer attaches to finished pods.
fn pod_row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match text(pod, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{
        "type": "Completed",
        "status": "True",
        "reason": reason,
        "message": message,
    }]))
}

fn deployment_row(d: &Value, now: Timestamp) -> Vec<Value> {
    let [containers, images] = container_cells(get(d, &["spec", "template", "spec"]));
    let selector =
        selector_string(get(d, &["spec", "selector"])).unwrap_or_else(|| "<invalid>".into());
    vec![
        name(d),
        json!(format!(
            "{}/{}",
            int(d, &["status", "readyReplicas"]),
            int(d, &["spec", "replicas"])
        )),
        json!(int(d, &["status", "updatedReplicas"])),
        json!(int(d, &["status", "availableReplicas"])),
        age(d, now),
        containers,
        images,
        json!(selector),
    ]
}

fn replicaset_row(rs: &Value, now: Timestamp) -> Vec<Value> {
    let [containers, images] = container_cells(get(rs, &["spec", "template", "spec"]));
    // `metav1.FormatLabelSelector`
    let selector = match selector_string(get(rs, &["spec", "selector"])) {
        None => "<error>".to_string(),
        Some(s) => or_none(&s),
    };
    vec![
        name(rs),
        json!(int(rs, &["spec", "replicas"])),
        json!(int(rs, &["status", "replicas"])),
        json!(int(rs, &["status", "readyReplicas"])),
        age(rs, now),
        containers,
        images,
        json!(selector),
    ]
}

fn service_row(svc: &Value, now: Timestamp) -> Vec<Value> {
    let spec = svc.get("spec").unwrap_or(&Value::Null);
    let strings = |key: &str| -> Vec<&str> {
        list(spec, &[key])
            .iter()
            .filter_map(Value::as_str)
            .collect()
    };
    let external_ips = strings("externalIPs");
    let external = match text(spec, &["type"]) {
        "ClusterIP" | "NodePort" => or_none(&external_ips.join(",")),
        "LoadBalancer" => {
            let mut lb: Vec<&str> = list(svc, &["status", "loadBalancer", "ingress"])
                .iter()
                .map(|i| match text(i, &["ip"]) {
                    "" => text(i, &["hostname"]),
                    ip => ip,
                })
                .filter(|s| !s.is_empty())
                .collect();
            lb.sort_unstable();
            lb.dedup();
            lb.extend(external_ips.iter().copied());
            if lb.is_empty() {
                "<pending>".into()
            } else {
                lb.join(",")
            }
        }
        "ExternalName" => text(spec, &["externalName"]).to_string(),
        _ => "<unknown>".into(),
    };
    let ports: Vec<String> = list(spec, &["ports"])
        .iter()
        .map(|p| {
            let (port, proto) = (int(p, &["port"]), text(p, &["protocol"]));
            match int(p, &["nodePort"]) {
                n if n > 0 => format!("{port}:{n}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect();
    vec![
        name(svc),
        json!(text(spec, &["type"])),
        json!(or_none(
            strings("clusterIPs").first().copied().unwrap_or("")
        )),
        json!(external),
        json!(or_none(&ports.join(","))),
        age(svc, now),
        json!(format_labels(spec.get("selector"))),
    ]
}

/// `formatEndpoints`: at most three `ip:port` entries, then `+ N more...`.
fn endpoints_row(ep: &Value, now: Timestamp) -> Vec<Value> {
    const MAX: usize = 3;
    let subsets = list(ep, &["subsets"]);
    let mut shown: Vec<String> = Vec::new();
    let mut count = 0;
    for ss in subsets {
        let addresses = list(ss, &["addresses"]);
        let ports = list(ss, &["ports"]);
        let mut add = |entry: String| {
            if shown.len() < MAX {
                shown.push(entry);
            }
            count += 1;
        };
        if ports.is_empty() {
            for a in addresses {
                add(text(a, &["ip"]).to_string());
            }
        } else {
            for p in ports {
                for a in addresses {
                    let ip = text(a, &["ip"]);
                    let port = int(p, &["port"]);
                    // net.JoinHostPort brackets IPv6 addresses
                    add(if ip.contains(':') {
                        format!("[{ip}]:{port}")
                    } else {
                        format!("{ip}:{port}")
                    });
                }
            }
        }
    }
    let cell = if subsets.is_empty() {
        "<none>".to_string()
    } else if count > MAX {
        format!("{} + {} more...", shown.join(","), count - MAX)
    } else {
        shown.join(",")
    };
    vec![name(ep), json!(cell), age(ep, now)]
}

fn namespace_row(ns: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(ns),
        json!(text(ns, &["status", "phase"])),
        age(ns, now),
    ]
}

/// Core/v1 field names for an `events.k8s.io/v1` Event (the server converts both to one type).
fn event_field<'a>(ev: &'a Value, core: &str) -> Option<&'a Value> {
    let events_v1 = text(ev, &["apiVersion"]) == "events.k8s.io/v1";
    let key = match core {
        "involvedObject" if events_v1 => "regarding",
        "message" if events_v1 => "note",
        "source" if events_v1 => "deprecatedSource",
        "firstTimestamp" if events_v1 => "deprecatedFirstTimestamp",
        "lastTimestamp" if events_v1 => "deprecatedLastTimestamp",
        "count" if events_v1 => "deprecatedCount",
        "reportingComponent" if events_v1 => "reportingController",
        other => other,
    };
    ev.get(key)
}

fn event_row(ev: &Value, now: Timestamp) -> Vec<Value> {
    let field = |core: &str| event_field(ev, core).unwrap_or(&Value::Null);
    let field_text = |core: &str| field(core).as_str().unwrap_or("");
    let first = match field_text("firstTimestamp") {
        "" => since(field_text("eventTime"), now),
        t => since(t, now),
    };
    let mut last = match field_text("lastTimestamp") {
        "" => first.clone(),
        t => since(t, now),
    };
    let mut count = field("count").as_i64().unwrap_or(0);
    match field("series") {
        Value::Object(series) => {
            let observed = series.get("lastObservedTime").and_then(Value::as_str);
            last = since(observed.unwrap_or(""), now);
            count = series.get("count").and_then(Value::as_i64).unwrap_or(0);
        }
        _ if count == 0 => count = 1,
        _ => {}
    }
    let involved = field("involvedObject");
    let kind = text(involved, &["kind"]).to_lowercase();
    let target = match text(involved, &["name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let source = field("source");
    let component = match text(source, &["component"]) {
        "" => field_text("reportingComponent"),
        c => c,
    };
    let instance = match text(source, &["host"]) {
        "" => field_text("reportingInstance"),
        h => h,
    };
    let source_cell = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(field_text("type")),
        json!(field_text("reason")),
        json!(target),
        json!(text(involved, &["fieldPath"])),
        json!(source_cell),
        json!(field_text("message").trim()),
        json!(first),
        json!(count),
        name(ev),
    ]
}

fn node_row(node: &Value, now: Timestamp) -> Vec<Value> {
    let mut status: Vec<String> = list(node, &["status", "conditions"])
        .iter()
        .filter(|c| text(c, &["type"]) == "Ready")
        .take(1)
        .map(|c| match text(c, &["status"]) {
            "True" => "Ready".to_string(),
            _ => "NotReady".to_string(),
        })
        .collect();
    if status.is_empty() {
        status.push("Unknown".into());
    }
    if get(node, &["spec", "unschedulable"]) == Some(&Value::Bool(true)) {
        status.push("SchedulingDisabled".into());
    }
    let mut roles: Vec<&str> = get(node, &["metadata", "labels"])
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
                    Some(role) if !role.is_empty() => Some(role),
                    Some(_) => None,
                    None if k == "kubernetes.io/role" => v.as_str().filter(|r| !r.is_empty()),
                    None => None,
                })
                .collect()
        })
        .unwrap_or_default();
    roles.sort_unstable();
    roles.dedup();
    let address = |ty: &str| {
        list(node, &["status", "addresses"])
            .iter()
            .find(|a| text(a, &["type"]) == ty)
            .map_or("<none>", |a| text(a, &["address"]))
            .to_string()
    };
    let info = |key: &str| match text(node, &["status", "nodeInfo", key]) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        name(node),
        json!(status.join(",")),
        json!(or_none(&roles.join(","))),
        age(node, now),
        json!(text(node, &["status", "nodeInfo", "kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

fn httproute_row(route: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(route),
        crd_cell("string", get(route, &["spec", "hostnames"]), now),
        crd_cell("date", get(route, &["metadata", "creationTimestamp"]), now),
    ]
}

/// `printIngress` (always wide on the server, so the address is never shortened).
fn ingress_row(ing: &Value, now: Timestamp) -> Vec<Value> {
    let class = match get(ing, &["spec", "ingressClassName"]).and_then(Value::as_str) {
        Some(c) => c.to_string(),
        None => "<none>".to_string(),
    };
    // formatHosts: at most three hosts, then "+ N more...".
    let rules = list(ing, &["spec", "rules"]);
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for r in rules {
        if hosts.len() == 3 {
            more = true;
        }
        let h = text(r, &["host"]);
        if !more && !h.is_empty() {
            hosts.push(h);
        }
    }
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - 3)
    } else {
        hosts.join(",")
    };
    let mut addresses: Vec<&str> = list(ing, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|i| {
            let ip = text(i, &["ip"]);
            let host = text(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    let ports = if list(ing, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(ing),
        json!(class),
        json!(hosts),
        json!(addresses.join(",")),
        json!(ports),
        age(ing, now),
    ]
}

fn rollout_row(ro: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(ro),
        crd_cell("integer", get(ro, &["spec", "replicas"]), now),
        crd_cell("integer", get(ro, &["status", "replicas"]), now),
        crd_cell("integer", get(ro, &["status", "updatedReplicas"]), now),
        crd_cell("integer", get(ro, &["status", "availableReplicas"]), now),
        crd_cell("date", get(ro, &["metadata", "creationTimestamp"]), now),
    ]
}

fn virtualservice_row(vs: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(vs),
        crd_cell("string", get(vs, &["spec", "gateways"]), now),
        crd_cell("string", get(vs, &["spec", "hosts"]), now),
        crd_cell("date", get(vs, &["metadata", "creationTimestamp"]), now),
    ]
}

fn destinationrule_row(dr: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(dr),
        crd_cell("string", get(dr, &["spec", "host"]), now),
        crd_cell("date", get(dr, &["metadata", "creationTimestamp"]), now),
    ]
}

/// `.status.conditions[?(@.type=="Ready")].<field>`: the first Ready condition's field.
fn ready_condition<'a>(obj: &'a Value, field: &str) -> Option<&'a Value> {
    list(obj, &["status", "conditions"])
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))?
        .get(field)
}

fn gitrepository_row(repo: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(repo),
        crd_cell("string", get(repo, &["spec", "url"]), now),
        crd_cell("date", get(repo, &["metadata", "creationTimestamp"]), now),
        crd_cell("string", ready_condition(repo, "status"), now),
        crd_cell("string", ready_condition(repo, "message"), now),
    ]
}

fn kustomization_row(ks: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(ks),
        crd_cell("date", get(ks, &["metadata", "creationTimestamp"]), now),
        crd_cell("string", ready_condition(ks, "status"), now),
        crd_cell("string", ready_condition(ks, "message"), now),
    ]
}

fn default_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        crd_cell("date", get(obj, &["metadata", "creationTimestamp"]), now),
    ]
}

/// A CRD printer-column cell (`tableconvertor.cellForJSONValue` and the JSONPath printer).
fn crd_cell(ty: &str, value: Option<&Value>, now: Timestamp) -> Value {
    let Some(v) = value.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match (ty, v) {
        ("string", Value::String(s)) => json!(s),
        ("string", Value::Array(_) | Value::Object(_)) => json!(v.to_string()),
        ("string", Value::Bool(_) | Value::Number(_)) => json!(v.to_string()),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, |i| json!(i)),
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, |f| json!(f)),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(s)) => {
            json!(seconds_since(s, now).map_or_else(|| "<invalid>".to_string(), human_duration))
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sandbox::test_fixtures::fixture_json;

    fn items(list: &Value) -> Vec<&Value> {
        list["items"].as_array().unwrap().iter().collect()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// The recording instant, derived from the first row: creation time + its (seconds) age,
    /// plus half a second since the server clock had a fractional part.
    fn now_of(table: &Value) -> Timestamp {
        let row = &table["rows"][0];
        let created = ts(row["object"]["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap());
        let age_col = table["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .position(|c| c["name"] == "Age")
            .unwrap();
        let secs: i64 = row["cells"][age_col]
            .as_str()
            .unwrap()
            .strip_suffix('s')
            .unwrap()
            .parse()
            .unwrap();
        created + jiff::SignedDuration::from_millis(secs * 1000 + 500)
    }

    fn assert_same_table(ours: &Value, theirs: &Value) {
        assert_eq!(ours["columnDefinitions"], theirs["columnDefinitions"]);
        let (a, b) = (
            ours["rows"].as_array().unwrap(),
            theirs["rows"].as_array().unwrap(),
        );
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x["cells"], y["cells"], "row {}", y["cells"][0]);
            assert_eq!(x["object"], y["object"]);
        }
        // key order too: byte-identical to what the server sent
        assert_eq!(ours.to_string(), theirs.to_string());
    }

    #[test]
    fn pods_table_matches_fixture() {
        let want = fixture_json("09-table/pods-table.json");
        let list = fixture_json("02-lists/pods.json");
        let got = to_table(
            "Pod",
            &items(&list),
            "1279",
            None,
            None,
            IncludeObject::Metadata,
            now_of(&want),
        );
        assert_same_table(&got, &want);
    }

    #[test]
    fn pods_table_include_object_none_matches_fixture() {
        let want = fixture_json("09-table/pods-table-includeObject-None.json");
        let list = fixture_json("02-lists/pods.json");
        let payments: Vec<&Value> = items(&list)
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "payments")
            .collect();
        // the row objects are null here, so take the instant from the list objects
        let now = ts("2026-11-21T23:31:42.5Z");
        let got = to_table(
            "Pod",
            &payments,
            "1280",
            None,
            None,
            IncludeObject::None,
            now,
        );
        assert_eq!(got, want);
        assert_eq!(got.to_string(), want.to_string());
    }

    #[test]
    fn deployments_table_matches_fixture() {
        let want = fixture_json("09-table/deployments-table.json");
        let list = fixture_json("02-lists/deployments.json");
        let now = now_of(&want);
        let got = to_table(
            "Deployment",
            &items(&list),
            "1279",
            None,
            None,
            IncludeObject::Metadata,
            now,
        );
        assert_same_table(&got, &want);
        // integers where the server sends integers
        assert!(got["rows"][0]["cells"][2].is_i64());
        assert!(got["rows"][0]["cells"][3].is_i64());
    }

    #[test]
    fn httproutes_table_matches_fixture() {
        let want = fixture_json("09-table/httproutes-table.json");
        let list = fixture_json("02-lists/httproutes.json");
        let got = to_table(
            "HTTPRoute",
            &items(&list),
            "1279",
            None,
            None,
            IncludeObject::Metadata,
            now_of(&want),
        );
        assert_same_table(&got, &want);
    }

    fn cells(kind: &str, obj: &Value, now: &str) -> Vec<Value> {
        let t = to_table(kind, &[obj], "1", None, None, IncludeObject::None, ts(now));
        t["rows"][0]["cells"].as_array().unwrap().clone()
    }

    fn column_names(kind: &str) -> Vec<(String, i64)> {
        let t = to_table(
            kind,
            &[],
            "1",
            None,
            None,
            IncludeObject::None,
            ts("2026-01-01T00:00:00Z"),
        );
        t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["priority"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn replicasets_from_fixture_list() {
        let list = fixture_json("02-lists/replicasets.json");
        let rs = items(&list);
        assert_eq!(
            cells("ReplicaSet", rs[0], "2026-11-21T23:31:18Z"),
            vec![
                json!("checkout-84685c5797"),
                json!(3),
                json!(3),
                json!(3),
                json!("66s"),
                json!("checkout"),
                json!("registry.local/checkout:1.4.2"),
                json!("app=checkout,pod-template-hash=84685c5797,track=stable"),
            ]
        );
        let old = rs
            .iter()
            .find(|r| r["metadata"]["name"] == "frontend-578bddb58f")
            .unwrap();
        let c = cells("ReplicaSet", old, "2026-11-21T23:31:18Z");
        assert_eq!(
            (c[1].clone(), c[2].clone(), c[3].clone()),
            (json!(0), json!(0), json!(0))
        );
    }

    #[test]
    fn services_from_fixture_list() {
        let list = fixture_json("02-lists/services.json");
        let svc = items(&list);
        let c = cells("Service", svc[0], "2026-11-21T23:35:12Z");
        assert_eq!(
            c,
            vec![
                json!("checkout"),
                json!("ClusterIP"),
                json!("10.106.82.46"),
                json!("<none>"),
                json!("80/TCP"),
                json!("5m"),
                json!("app=checkout"),
            ]
        );
        let mut lb = svc[0].clone();
        lb["spec"]["type"] = json!("LoadBalancer");
        lb["spec"]["ports"][0]["nodePort"] = json!(30080);
        assert_eq!(
            cells("Service", &lb, "2026-11-21T23:35:12Z")[3],
            json!("<pending>")
        );
        assert_eq!(
            cells("Service", &lb, "2026-11-21T23:35:12Z")[4],
            json!("80:30080/TCP")
        );
        lb["status"]["loadBalancer"]["ingress"] =
            json!([{"ip": "203.0.113.9"}, {"hostname": "lb.example"}]);
        assert_eq!(
            cells("Service", &lb, "2026-11-21T23:35:12Z")[3],
            json!("203.0.113.9,lb.example")
        );
        let ext = json!({"metadata": {"name": "db"}, "spec": {"type": "ExternalName", "externalName": "db.example"}});
        let c = cells("Service", &ext, "2026-11-21T23:35:12Z");
        assert_eq!(
            c[2..5],
            [json!("<none>"), json!("db.example"), json!("<none>")]
        );
        assert_eq!(c[5], json!("<unknown>"));
        assert_eq!(c[6], json!("<none>"));
    }

    #[test]
    fn endpoints_from_fixture_list() {
        let list = fixture_json("02-lists/endpoints.json");
        let eps = items(&list);
        // `checkout` selects 4 pods: three shown, one more
        let c = cells("Endpoints", eps[0], "2026-11-21T23:31:18Z");
        assert_eq!(c[0], json!("checkout"));
        assert_eq!(
            c[1],
            json!("10.244.0.10:8080,10.244.0.11:8080,10.244.0.8:8080 + 1 more...")
        );
        let canary = cells("Endpoints", eps[1], "2026-11-21T23:31:18Z");
        assert_eq!(canary[1], json!("10.244.0.11:8080"));
        let empty = json!({"metadata": {"name": "x"}});
        assert_eq!(
            cells("Endpoints", &empty, "2026-11-21T23:31:18Z")[1],
            json!("<none>")
        );
        let headless = json!({"metadata": {"name": "h"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}]});
        assert_eq!(
            cells("Endpoints", &headless, "2026-11-21T23:31:18Z")[1],
            json!("10.0.0.1,fd00::1")
        );
    }

    #[test]
    fn namespaces_and_node_from_fixtures() {
        let list = fixture_json("02-lists/namespaces.json");
        let prod = items(&list)
            .into_iter()
            .find(|n| n["metadata"]["name"] == "production")
            .unwrap();
        assert_eq!(
            cells("Namespace", prod, "2026-11-21T23:31:20Z"),
            vec![json!("production"), json!("Active"), json!("11m")]
        );
        let node = fixture_json("03-get/node.json");
        let c = cells("Node", &node, "2026-11-21T23:31:36Z");
        assert_eq!(c[0], json!("refs-node-1"));
        assert_eq!(c[1], json!("Ready"));
        assert_eq!(c[2], json!("worker"));
        assert_eq!(c[4], json!("v1.26.4"));
        assert_eq!(
            c[5..],
            [
                json!("127.0.0.1"),
                json!("<none>"),
                json!("none (fake node)"),
                json!("<unknown>"),
                json!("fake://0.0.0"),
            ]
        );
        let mut cordoned = node.clone();
        cordoned["spec"]["unschedulable"] = json!(true);
        cordoned["status"]["conditions"][0]["status"] = json!("Unknown");
        assert_eq!(
            cells("Node", &cordoned, "2026-11-21T23:31:36Z")[1],
            json!("NotReady,SchedulingDisabled")
        );
        assert_eq!(column_names("Node").iter().filter(|c| c.1 == 1).count(), 5);
    }

    #[test]
    fn events_from_fixture_list() {
        let list = fixture_json("02-lists/events.json");
        let evs = items(&list);
        // scheduler event: no first/last timestamps, eventTime + reportingComponent/Instance
        let c = cells("Event", evs[0], "2026-11-21T23:31:19Z");
        assert_eq!(
            c,
            vec![
                json!("66s"),
                json!("Normal"),
                json!("Scheduled"),
                json!("pod/checkout-84685c5797-kkxsk"),
                json!(""),
                json!("default-scheduler, default-scheduler-vm"),
                json!("Successfully assigned production/checkout-84685c5797-kkxsk to refs-node-1"),
                json!("66s"),
                json!(1),
                json!("checkout-84685c5797-kkxsk.18ea334e4bbdf304"),
            ]
        );
        let dep = evs
            .iter()
            .find(|e| e["source"]["component"] == "deployment-controller")
            .unwrap();
        let c = cells("Event", dep, "2026-11-21T23:31:19Z");
        assert!(c[3].as_str().unwrap().starts_with("deployment/"));
        assert_eq!(c[5], json!("deployment-controller"));
        assert_eq!(c[8], json!(1));
        let names: Vec<String> = column_names("Event").into_iter().map(|c| c.0).collect();
        assert_eq!(
            names,
            [
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name"
            ]
        );
        // events.k8s.io/v1 shape with a series
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e1"},
            "eventTime": "2026-11-21T23:00:00.000000Z",
            "series": {"count": 7, "lastObservedTime": "2026-11-21T23:30:00.000000Z"},
            "regarding": {"kind": "Deployment", "name": "checkout", "fieldPath": "spec"},
            "note": "  scaled \n", "reason": "ScalingReplicaSet", "type": "Normal",
            "reportingController": "deployment-controller"
        });
        let c = cells("Event", &v1, "2026-11-21T23:31:00Z");
        assert_eq!(c[0], json!("60s"));
        assert_eq!(c[3], json!("deployment/checkout"));
        assert_eq!(c[4], json!("spec"));
        assert_eq!(c[5], json!("deployment-controller"));
        assert_eq!(c[6], json!("scaled"));
        assert_eq!(c[7], json!("31m"));
        assert_eq!(c[8], json!(7));
    }

    fn pod(status: Value) -> Value {
        json!({
            "metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": status,
        })
    }

    const T: &str = "2026-01-01T00:10:00Z";

    #[test]
    fn pod_status_column() {
        let status_of = |p: &Value| cells("Pod", p, T)[2].as_str().unwrap().to_string();
        assert_eq!(status_of(&pod(json!({"phase": "Pending"}))), "Pending");
        let creating = json!({"phase": "Pending", "containerStatuses": [
            {"name": "a", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}},
            {"name": "b", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]});
        assert_eq!(status_of(&pod(creating)), "ContainerCreating");
        let crash = json!({"phase": "Running", "containerStatuses": [
            {"name": "a", "ready": false, "restartCount": 5,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2026-01-01T00:05:00Z"}}},
            {"name": "b", "ready": true, "restartCount": 2, "state": {"running": {}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-01-01T00:02:00Z"}}}]});
        let c = cells("Pod", &pod(crash), T);
        assert_eq!(c[1], json!("1/2"));
        assert_eq!(c[2], json!("CrashLoopBackOff"));
        assert_eq!(c[3], json!("7 (5m ago)"));
        let error = json!({"phase": "Failed", "containerStatuses": [
            {"name": "a", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}},
            {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]});
        assert_eq!(status_of(&pod(error)), "Error");
        let done = json!({"phase": "Succeeded", "containerStatuses": [
            {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]});
        let t = to_table(
            "Pod",
            &[&pod(done)],
            "1",
            None,
            None,
            IncludeObject::None,
            ts(T),
        );
        assert_eq!(t["rows"][0]["cells"][2], json!("Completed"));
        assert_eq!(
            t["rows"][0]["conditions"],
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
        );
        assert_eq!(
            t["rows"][0].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["cells", "conditions", "object"]
        );
        let signal = json!({"phase": "Running", "containerStatuses": [
            {"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]});
        assert_eq!(status_of(&pod(signal)), "Signal:9");
        let half = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}], "containerStatuses": [
            {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "b", "ready": true, "state": {"running": {}}}]});
        assert_eq!(status_of(&pod(half)), "NotReady");
        let mut dying = pod(json!({"phase": "Running"}));
        dying["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:10:30Z");
        assert_eq!(status_of(&dying), "Terminating");
        let evicted = json!({"phase": "Failed", "reason": "Evicted"});
        assert_eq!(status_of(&pod(evicted)), "Evicted");
    }

    #[test]
    fn pod_init_containers_and_wide_columns() {
        let mut p = pod(json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "init", "restartCount": 1, "state": {"running": {}}}]}));
        p["spec"]["initContainers"] = json!([{"name": "init"}]);
        let c = cells("Pod", &p, T);
        assert_eq!(c[2], json!("Init:0/1"));
        assert_eq!(c[3], json!("1"));
        assert_eq!(
            c[5..],
            [
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
        p["status"]["initContainerStatuses"][0]["state"] =
            json!({"waiting": {"reason": "CrashLoopBackOff"}});
        assert_eq!(cells("Pod", &p, T)[2], json!("Init:CrashLoopBackOff"));
        p["status"]["initContainerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 3}});
        assert_eq!(cells("Pod", &p, T)[2], json!("Init:ExitCode:3"));
        let mut gated = pod(
            json!({"phase": "Pending", "nominatedNodeName": "n2", "podIPs": [{"ip": "10.0.0.3"}],
            "conditions": [{"type": "G", "status": "True"}]}),
        );
        gated["spec"]["readinessGates"] = json!([{"conditionType": "G"}, {"conditionType": "H"}]);
        gated["spec"]["nodeName"] = json!("n1");
        let c = cells("Pod", &gated, T);
        assert_eq!(
            c[5..],
            [json!("10.0.0.3"), json!("n1"), json!("n2"), json!("1/2")]
        );
    }

    #[test]
    fn selectors() {
        let sel = json!({"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [
            {"key": "c", "operator": "In", "values": ["y", "x"]},
            {"key": "0d", "operator": "Exists"},
            {"key": "e", "operator": "DoesNotExist"},
            {"key": "f", "operator": "NotIn", "values": ["z"]}]});
        assert_eq!(
            selector_string(Some(&sel)).unwrap(),
            "0d,a=1,b=2,c in (x,y),!e,f notin (z)"
        );
        assert_eq!(selector_string(Some(&json!({}))).unwrap(), "");
        assert_eq!(selector_string(None).unwrap(), "");
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "In"}]});
        assert_eq!(selector_string(Some(&bad)), None);
        let d = json!({"metadata": {"name": "d"}, "spec": {"selector": bad}});
        assert_eq!(cells("Deployment", &d, T)[7], json!("<invalid>"));
        assert_eq!(cells("Deployment", &d, T)[1], json!("0/0"));
        let rs = json!({"metadata": {"name": "r"}, "spec": {"selector": {}}});
        assert_eq!(cells("ReplicaSet", &rs, T)[7], json!("<none>"));
        assert_eq!(format_labels(Some(&json!({"z": "1", "a": "2"}))), "a=2,z=1");
    }

    #[test]
    fn envelope_and_include_modes() {
        let obj = json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "cm", "creationTimestamp": "2026-01-01T00:00:00Z"}, "data": {"a": "b"}});
        let t = to_table(
            "ConfigMap",
            &[&obj],
            "42",
            Some("tok"),
            Some(7),
            IncludeObject::Object,
            ts(T),
        );
        assert_eq!(
            t["metadata"],
            json!({"resourceVersion": "42", "continue": "tok", "remainingItemCount": 7})
        );
        assert_eq!(t["rows"][0]["object"], obj);
        assert_eq!(t["rows"][0]["cells"], json!(["cm", "10m"]));
        assert_eq!(
            t["columnDefinitions"][1],
            json!({"name": "Age", "type": "date", "format": "", "description": AGE_DESC, "priority": 0})
        );
        let t = to_table(
            "ConfigMap",
            &[&obj],
            "42",
            Some(""),
            None,
            IncludeObject::Metadata,
            ts(T),
        );
        assert_eq!(t["metadata"], json!({"resourceVersion": "42"}));
        assert_eq!(
            t["rows"][0]["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
        );
        let empty = to_table("Pod", &[], "5", None, None, IncludeObject::Metadata, ts(T));
        assert_eq!(empty["rows"], json!([]));
        assert_eq!(
            t.as_object().unwrap().keys().collect::<Vec<_>>(),
            [
                "kind",
                "apiVersion",
                "metadata",
                "columnDefinitions",
                "rows"
            ]
        );
    }

    #[test]
    fn column_priorities() {
        let prio = |k: &str| column_names(k);
        assert_eq!(
            prio("Pod"),
            [
                ("Name", 0),
                ("Ready", 0),
                ("Status", 0),
                ("Restarts", 0),
                ("Age", 0),
                ("IP", 1),
                ("Node", 1),
                ("Nominated Node", 1),
                ("Readiness Gates", 1)
            ]
            .map(|(n, p)| (n.to_string(), p))
        );
        assert_eq!(
            prio("Service").into_iter().map(|c| c.0).collect::<Vec<_>>(),
            [
                "Name",
                "Type",
                "Cluster-IP",
                "External-IP",
                "Port(s)",
                "Age",
                "Selector"
            ]
        );
        assert_eq!(
            prio("ReplicaSet")
                .into_iter()
                .map(|c| c.0)
                .collect::<Vec<_>>(),
            [
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(prio("Endpoints").len(), 3);
        assert_eq!(prio("Namespace").len(), 3);
        assert_eq!(
            prio("Widget").into_iter().map(|c| c.0).collect::<Vec<_>>(),
            ["Name", "Age"]
        );
    }

    #[test]
    fn crd_cells() {
        let now = ts(T);
        assert_eq!(crd_cell("string", Some(&json!("x")), now), json!("x"));
        assert_eq!(crd_cell("string", Some(&json!(80)), now), json!("80"));
        assert_eq!(
            crd_cell("string", Some(&json!({"a": [1]})), now),
            json!("{\"a\":[1]}")
        );
        assert_eq!(crd_cell("integer", Some(&json!(2.7)), now), json!(2));
        assert_eq!(crd_cell("number", Some(&json!(2)), now), json!(2.0));
        assert_eq!(crd_cell("boolean", Some(&json!(true)), now), json!(true));
        assert_eq!(crd_cell("boolean", Some(&json!("true")), now), Value::Null);
        assert_eq!(
            crd_cell("date", Some(&json!("nope")), now),
            json!("<invalid>")
        );
        assert_eq!(crd_cell("date", None, now), Value::Null);
    }

    #[test]
    fn garbage_never_panics() {
        let junk = [
            json!(null),
            json!(42),
            json!("pod"),
            json!([1, 2]),
            json!({"metadata": 5, "spec": "x", "status": [1]}),
            json!({"metadata": {"name": 7, "creationTimestamp": "yesterday"},
                   "spec": {"containers": "nope", "selector": {"matchLabels": 3, "matchExpressions": {}}, "ports": [null, 3]},
                   "status": {"containerStatuses": [null, {"state": 1}], "conditions": "x", "podIPs": [7]},
                   "subsets": [{"addresses": 1, "ports": [{"port": "x"}]}], "series": {"count": "x"}}),
        ];
        for kind in [
            "Pod",
            "Deployment",
            "ReplicaSet",
            "Service",
            "Endpoints",
            "Namespace",
            "Event",
            "Node",
            "HTTPRoute",
            "Other",
        ] {
            let refs: Vec<&Value> = junk.iter().collect();
            let t = to_table(kind, &refs, "1", None, None, IncludeObject::Metadata, ts(T));
            let ncols = t["columnDefinitions"].as_array().unwrap().len();
            for row in t["rows"].as_array().unwrap() {
                assert_eq!(row["cells"].as_array().unwrap().len(), ncols, "{kind}");
            }
        }
        let huge = json!({"status": {"containerStatuses": [
            {"restartCount": i64::MAX}, {"restartCount": i64::MAX}]}});
        assert_eq!(cells("Pod", &huge, T)[3], json!(i64::MAX.to_string()));
        let unknown = cells("Pod", &json!({"metadata": {"name": "x"}}), T);
        assert_eq!(unknown[4], json!("<unknown>"));
    }

    #[test]
    fn human_duration_boundaries() {
        let cases: &[(i64, &str)] = &[
            (-5, "<invalid>"),
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (1, "1s"),
            (89, "89s"),
            (119, "119s"),
            (120, "2m"),
            (121, "2m1s"),
            (310, "5m10s"),
            (599, "9m59s"),
            (600, "10m"),
            (659, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60, "3h1m"),
            (8 * 3600 - 1, "7h59m"),
            (8 * 3600, "8h"),
            (48 * 3600 - 1, "47h"),
            (48 * 3600, "2d"),
            (51 * 3600, "2d3h"),
            (8 * 86400 - 1, "7d23h"),
            (8 * 86400, "8d"),
            (2 * 365 * 86400 - 1, "729d"),
            (2 * 365 * 86400, "2y"),
            (2 * 365 * 86400 + 86400, "2y1d"),
            (8 * 365 * 86400 - 1, "7y364d"),
            (8 * 365 * 86400, "8y"),
            (4000 * 86400, "10y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(*secs), *want, "{secs}s");
        }
    }

    #[test]
    fn ages_truncate_toward_zero() {
        assert_eq!(
            since("2026-01-01T00:00:00Z", ts("2026-01-01T00:00:01.999Z")),
            "1s"
        );
        assert_eq!(
            since("2026-01-01T00:00:02Z", ts("2026-01-01T00:00:00.5Z")),
            "0s"
        );
        assert_eq!(
            since("2026-01-01T00:00:03Z", ts("2026-01-01T00:00:00Z")),
            "<invalid>"
        );
        assert_eq!(since("", ts(T)), "<unknown>");
    }
}
