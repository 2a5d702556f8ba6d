//! The world the sandbox starts with: the base cluster (namespaces, a node) and, per
//! environment (`staging`, `production`), a canary app (`checkout`: stable + canary
//! Deployments, Services, an HTTPRoute at 90/10), a blue/green app (`payments`: blue and green
//! Deployments, a Service selecting blue) and a rolling-update app (`frontend`) with three
//! revisions of history. The world is built half an hour in the past and run forward, so that
//! it starts settled, with believable ages and events.

use std::time::Duration;

use serde_json::{Value, json};

use super::Sandbox;
use super::controllers::{self, deployments, namespaces, services, settle};
use super::resources::find;
use super::store::WriteOpts;

const MANAGER: &str = "kubectl-create";

fn create(sb: &Sandbox, group: &str, plural: &str, ns: &str, obj: Value) {
    let Some(rt) = find(group, "v1", plural) else {
        return;
    };
    if let Err(e) = sb
        .store
        .create(rt, ns, obj, &WriteOpts::controller(MANAGER))
    {
        tracing::warn!("seeding {plural} in {ns:?}: {e}");
    }
}

/// Namespaces every cluster has, and the node pods run on.
pub fn base(sb: &Sandbox) {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        create(
            sb,
            "",
            "namespaces",
            "",
            json!({"metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}}),
        );
    }
    create(
        sb,
        "",
        "nodes",
        "",
        json!({
            "metadata": {"name": controllers::NODE_NAME, "labels": {
                "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": controllers::NODE_NAME,
                "kubernetes.io/os": "linux", "node-role.kubernetes.io/worker": ""},
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
            "spec": {"podCIDR": "10.244.0.0/16", "podCIDRs": ["10.244.0.0/16"]},
            "status": {
                "capacity": {"cpu": "64", "ephemeral-storage": "500Gi", "memory": "256Gi", "pods": "10000"},
                "allocatable": {"cpu": "64", "ephemeral-storage": "500Gi", "memory": "256Gi", "pods": "10000"},
                "conditions": [
                    {"type": "Ready", "status": "True", "lastHeartbeatTime": null, "lastTransitionTime": null, "reason": "KubeletReady", "message": "kubelet is posting ready status (simulated)"},
                    {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": null, "lastTransitionTime": null, "reason": "KubeletHasSufficientMemory"},
                    {"type": "DiskPressure", "status": "False", "lastHeartbeatTime": null, "lastTransitionTime": null, "reason": "KubeletHasNoDiskPressure"},
                    {"type": "PIDPressure", "status": "False", "lastHeartbeatTime": null, "lastTransitionTime": null, "reason": "KubeletHasSufficientPID"}
                ],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": controllers::NODE_NAME}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
                "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "6.1.0", "osImage": "kockpit sandbox", "containerRuntimeVersion": "sandbox://1.0", "kubeletVersion": "v1.26.4-kockpit-sandbox", "kubeProxyVersion": "v1.26.4-kockpit-sandbox", "operatingSystem": "linux", "architecture": "amd64"}
            }
        }),
    );
}

/// A Deployment as the fixtures' scene has it (probes, resources, prometheus annotations).
pub fn deployment(
    name: &str,
    env: &str,
    labels: Value,
    image: &str,
    replicas: i64,
    change_cause: &str,
) -> Value {
    let container = name_container(&labels);
    json!({
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {"kubernetes.io/change-cause": change_cause}
        },
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}
                },
                "spec": {"containers": [{
                    "name": container,
                    "image": image,
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": "APP_ENV", "value": env}],
                    "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": "http"}, "initialDelaySeconds": 3, "periodSeconds": 5},
                    "livenessProbe": {"httpGet": {"path": "/healthz/live", "port": "http"}, "initialDelaySeconds": 10, "periodSeconds": 10},
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
                }]}
            }
        }
    })
}

fn name_container(labels: &Value) -> String {
    labels
        .get("app")
        .and_then(Value::as_str)
        .unwrap_or("app")
        .to_string()
}

fn service(name: &str, app: &str, selector: Value) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"type": "ClusterIP", "selector": selector,
                 "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}
    })
}

/// The two environments with their apps, settled into a steady state.
pub fn world(sb: &Sandbox) {
    let clock = &sb.store.clock;
    // Build the world in the past, then run it forward to now.
    let start = clock.now();
    let past = Duration::from_secs(30 * 60);
    rewind(sb, past);
    for (env, big) in [("staging", 2), ("production", 3)] {
        create(
            sb,
            "",
            "namespaces",
            "",
            json!({"metadata": {"name": env, "labels": {"env": env, "kubernetes.io/metadata.name": env}}}),
        );
        // checkout: canary via HTTPRoute weights (and replica ratio through Service `checkout`).
        create(
            sb,
            "apps",
            "deployments",
            env,
            deployment(
                "checkout",
                env,
                json!({"app": "checkout", "track": "stable"}),
                "registry.local/checkout:1.4.2",
                big,
                "deploy checkout 1.4.2",
            ),
        );
        create(
            sb,
            "apps",
            "deployments",
            env,
            deployment(
                "checkout-canary",
                env,
                json!({"app": "checkout", "track": "canary"}),
                "registry.local/checkout:1.5.0",
                1,
                "canary checkout 1.5.0",
            ),
        );
        create(
            sb,
            "",
            "services",
            env,
            service("checkout", "checkout", json!({"app": "checkout"})),
        );
        create(
            sb,
            "",
            "services",
            env,
            service(
                "checkout-stable",
                "checkout",
                json!({"app": "checkout", "track": "stable"}),
            ),
        );
        create(
            sb,
            "",
            "services",
            env,
            service(
                "checkout-canary",
                "checkout",
                json!({"app": "checkout", "track": "canary"}),
            ),
        );
        create(
            sb,
            "gateway.networking.k8s.io",
            "httproutes",
            env,
            json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": "checkout", "labels": {"app": "checkout"}},
                "spec": {
                    "parentRefs": [{"name": "public", "namespace": "gateway-system"}],
                    "hostnames": [format!("checkout.{env}.example.internal")],
                    "rules": [{
                        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                        "backendRefs": [
                            {"name": "checkout-stable", "port": 80, "weight": 90},
                            {"name": "checkout-canary", "port": 80, "weight": 10}
                        ]
                    }]
                }
            }),
        );
        // payments: blue/green by Service selector.
        create(
            sb,
            "apps",
            "deployments",
            env,
            deployment(
                "payments-blue",
                env,
                json!({"app": "payments", "version": "blue"}),
                "registry.local/payments:2.3.1",
                2,
                "deploy payments 2.3.1 (blue)",
            ),
        );
        create(
            sb,
            "apps",
            "deployments",
            env,
            deployment(
                "payments-green",
                env,
                json!({"app": "payments", "version": "green"}),
                "registry.local/payments:2.4.0",
                2,
                "deploy payments 2.4.0 (green)",
            ),
        );
        create(
            sb,
            "",
            "services",
            env,
            service(
                "payments",
                "payments",
                json!({"app": "payments", "version": "blue"}),
            ),
        );
        // frontend: plain rolling updates with history.
        create(
            sb,
            "apps",
            "deployments",
            env,
            deployment(
                "frontend",
                env,
                json!({"app": "frontend"}),
                "registry.local/frontend:3.0.0",
                2,
                "deploy frontend 3.0.0",
            ),
        );
        create(
            sb,
            "",
            "services",
            env,
            service("frontend", "frontend", json!({"app": "frontend"})),
        );
    }
    settle(sb, Duration::from_secs(1), Duration::from_secs(60));
    for version in ["3.1.0", "3.2.0"] {
        for env in ["staging", "production"] {
            set_image(
                sb,
                env,
                "frontend",
                &format!("registry.local/frontend:{version}"),
            );
        }
        settle(sb, Duration::from_secs(1), Duration::from_secs(120));
    }
    // Run forward to the present, a minute at a time.
    while let Ok(left) = Duration::try_from(start.duration_since(clock.now())) {
        if left.is_zero() {
            break;
        }
        clock.advance(left.min(Duration::from_secs(60)));
        controllers::reconcile_all(sb);
    }
    let _ = (deployments(), services(), namespaces());
}

/// Move the clock back (seeding only): a real clock is rebased, a manual one set back.
fn rewind(sb: &Sandbox, by: Duration) {
    sb.store.clock.rewind(by);
}

/// `kubectl set image` + `kubectl annotate kubernetes.io/change-cause`, as the scene was made.
pub fn set_image(sb: &Sandbox, ns: &str, deploy: &str, image: &str) {
    let cause = format!("kubectl set image deployment/{deploy} {deploy}={image}");
    let r = sb.store.modify(
        deployments(),
        ns,
        deploy,
        &WriteOpts::controller("kubectl-set"),
        |d| {
            if let Some(c) = d.pointer_mut("/spec/template/spec/containers/0") {
                c["image"] = json!(image);
            }
            if let Some(a) = d
                .pointer_mut("/metadata/annotations")
                .and_then(Value::as_object_mut)
            {
                a.insert("kubernetes.io/change-cause".into(), json!(cause));
            }
            Ok(())
        },
    );
    if let Err(e) = r {
        tracing::warn!("seeding: set image on {ns}/{deploy}: {e}");
    }
}
