//! The world the sandbox starts with: the base cluster (namespaces, a node) and, per
//! environment (`staging`, `production`), a canary app per traffic router — `checkout`
//! (stable + canary Deployments, Services, an HTTPRoute at 90/10), `search` (replica ratio:
//! one Service over stable and canary Deployments), `catalog` (ingress-nginx: a canary Ingress
//! at canary-weight 10), `cart` (an Argo Rollout paused at 20 %), `inventory` (a Traefik
//! TraefikService at 90/10 over stable and canary Services) and `reviews` (an Istio
//! VirtualService at 90/10 over the DestinationRule subsets of one Service) — a blue/green app
//! (`payments`: blue and green Deployments, a Service selecting blue) and a rolling-update app
//! (`frontend`) with three revisions of history. The world is built half an hour in the past and run forward, so that
//! it starts settled, with believable ages and events.

use std::time::Duration;

use serde_json::{Value, json};

use super::Sandbox;
use super::controllers::{self, deployments, namespaces, services, settle};
use super::resources::RESOURCES;
use super::store::WriteOpts;

const MANAGER: &str = "kubectl-create";

fn create(sb: &Sandbox, group: &str, plural: &str, ns: &str, obj: Value) {
    // The stored (first listed) version of the type.
    let Some(rt) = RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
    else {
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
        // search: canary by replica ratio (one Service selects stable and canary pods).
        create(
            sb,
            "apps",
            "deployments",
            env,
            deployment(
                "search",
                env,
                json!({"app": "search", "track": "stable"}),
                "registry.local/search:4.1.0",
                big,
                "deploy search 4.1.0",
            ),
        );
        create(
            sb,
            "apps",
            "deployments",
            env,
            deployment(
                "search-canary",
                env,
                json!({"app": "search", "track": "canary"}),
                "registry.local/search:4.2.0",
                1,
                "canary search 4.2.0",
            ),
        );
        create(
            sb,
            "",
            "services",
            env,
            service("search", "search", json!({"app": "search"})),
        );
        // catalog: canary by ingress-nginx (a canary Ingress with canary-weight 10).
        create(
            sb,
            "apps",
            "deployments",
            env,
            deployment(
                "catalog",
                env,
                json!({"app": "catalog", "track": "stable"}),
                "registry.local/catalog:7.0.3",
                big,
                "deploy catalog 7.0.3",
            ),
        );
        create(
            sb,
            "apps",
            "deployments",
            env,
            deployment(
                "catalog-canary",
                env,
                json!({"app": "catalog", "track": "canary"}),
                "registry.local/catalog:7.1.0",
                1,
                "canary catalog 7.1.0",
            ),
        );
        for (name, track) in [("catalog", "stable"), ("catalog-canary", "canary")] {
            create(
                sb,
                "",
                "services",
                env,
                service(name, "catalog", json!({"app": "catalog", "track": track})),
            );
        }
        let host = format!("catalog.{env}.example.internal");
        create(
            sb,
            "networking.k8s.io",
            "ingresses",
            env,
            ingress("catalog", "catalog", &host, "catalog", None),
        );
        create(
            sb,
            "networking.k8s.io",
            "ingresses",
            env,
            ingress(
                "catalog-canary",
                "catalog",
                &host,
                "catalog-canary",
                Some(10),
            ),
        );
        // cart: an Argo Rollout (canary steps, stable/canary Services).
        create(
            sb,
            "argoproj.io",
            "rollouts",
            env,
            rollout(
                env,
                "registry.local/cart:2.0.0",
                if env == "production" { 4 } else { 2 },
            ),
        );
        for name in ["cart-stable", "cart-canary"] {
            create(
                sb,
                "",
                "services",
                env,
                service(name, "cart", json!({"app": "cart"})),
            );
        }
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
        // inventory: canary by a Traefik TraefikService (weighted stable/canary Services).
        canary_pair(sb, env, "inventory", "5.2.0", "5.3.0", big);
        for (name, track) in [
            ("inventory-stable", "stable"),
            ("inventory-canary", "canary"),
        ] {
            create(
                sb,
                "",
                "services",
                env,
                service(
                    name,
                    "inventory",
                    json!({"app": "inventory", "track": track}),
                ),
            );
        }
        create(
            sb,
            "traefik.io",
            "traefikservices",
            env,
            traefik_service("inventory", "inventory", 90, 10),
        );
        // reviews: canary by an Istio VirtualService over DestinationRule subsets of one
        // Service that selects both tracks.
        canary_pair(sb, env, "reviews", "1.8.0", "1.9.0", big);
        create(
            sb,
            "",
            "services",
            env,
            service("reviews", "reviews", json!({"app": "reviews"})),
        );
        create(
            sb,
            "networking.istio.io",
            "destinationrules",
            env,
            destination_rule("reviews", "reviews"),
        );
        create(
            sb,
            "networking.istio.io",
            "virtualservices",
            env,
            virtual_service("reviews", "reviews", env, 90, 10),
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
    // Ten minutes ago cart 2.1.0 started its canary: at 20 %, paused for a promote.
    run_until(sb, start - jiff::SignedDuration::from_secs(10 * 60));
    for env in ["staging", "production"] {
        set_rollout_image(sb, env, "cart", "registry.local/cart:2.1.0");
    }
    // Second by second (a pod waiting out its readiness delay changes nothing for a while,
    // which would end `settle` early).
    for _ in 0..30 {
        clock.advance(Duration::from_secs(1));
        controllers::reconcile_all(sb);
    }
    // Run forward to the present.
    run_until(sb, start);
    let _ = (deployments(), services(), namespaces());
}

/// Deployments `<app>` (track=stable, `big` replicas) and `<app>-canary` (track=canary, one
/// replica) of `registry.local/<app>`.
fn canary_pair(sb: &Sandbox, env: &str, app: &str, stable: &str, canary: &str, big: i64) {
    for (name, track, version, replicas) in [
        (app.to_string(), "stable", stable, big),
        (format!("{app}-canary"), "canary", canary, 1),
    ] {
        let cause = if track == "stable" {
            format!("deploy {app} {version}")
        } else {
            format!("canary {app} {version}")
        };
        create(
            sb,
            "apps",
            "deployments",
            env,
            deployment(
                &name,
                env,
                json!({"app": app, "track": track}),
                &format!("registry.local/{app}:{version}"),
                replicas,
                &cause,
            ),
        );
    }
}

/// A `traefik.io/v1alpha1` TraefikService `name` splitting between `<app>-stable` and
/// `<app>-canary` (port 80) by weight.
pub fn traefik_service(name: &str, app: &str, stable: i64, canary: i64) -> Value {
    json!({
        "apiVersion": "traefik.io/v1alpha1", "kind": "TraefikService",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"weighted": {"services": [
            {"name": format!("{app}-stable"), "port": 80, "weight": stable},
            {"name": format!("{app}-canary"), "port": 80, "weight": canary}
        ]}}
    })
}

/// An Istio DestinationRule `name` for host `app` with subsets `stable` and `canary` (by the
/// `track` label).
pub fn destination_rule(name: &str, app: &str) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "host": app,
            "subsets": [
                {"name": "stable", "labels": {"track": "stable"}},
                {"name": "canary", "labels": {"track": "canary"}}
            ]
        }
    })
}

/// An Istio VirtualService `name` for host `app` whose one http route sends `stable` % to
/// subset `stable` and `canary` % to subset `canary` of `app.<ns>.svc.cluster.local`.
pub fn virtual_service(name: &str, app: &str, ns: &str, stable: i64, canary: i64) -> Value {
    let host = format!("{app}.{ns}.svc.cluster.local");
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "hosts": [app],
            "http": [{"route": [
                {"destination": {"host": host, "subset": "stable"}, "weight": stable},
                {"destination": {"host": host, "subset": "canary"}, "weight": canary}
            ]}]
        }
    })
}

/// Run the world forward to `until`, a minute at a time.
fn run_until(sb: &Sandbox, until: jiff::Timestamp) {
    let clock = &sb.store.clock;
    while let Ok(left) = Duration::try_from(until.duration_since(clock.now())) {
        if left.is_zero() {
            break;
        }
        clock.advance(left.min(Duration::from_secs(60)));
        controllers::reconcile_all(sb);
    }
}

/// An Ingress of class `nginx` sending `host` `/` to `service:80`; with a weight, an
/// ingress-nginx canary Ingress (`canary: "true"`, `canary-weight: "<weight>"`).
pub fn ingress(
    name: &str,
    app: &str,
    host: &str,
    service: &str,
    canary_weight: Option<i64>,
) -> Value {
    let mut meta = json!({"name": name, "labels": {"app": app}});
    if let Some(w) = canary_weight {
        meta["annotations"] = json!({
            "nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-weight": w.to_string()
        });
    }
    json!({
        "metadata": meta,
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{
                "host": host,
                "http": {"paths": [{
                    "path": "/",
                    "pathType": "Prefix",
                    "backend": {"service": {"name": service, "port": {"number": 80}}}
                }]}
            }]
        }
    })
}

/// The `cart` Argo Rollout: canary steps 20 % → pause → 50 % → 30 s → 100 %.
pub fn rollout(env: &str, image: &str, replicas: i64) -> Value {
    let labels = json!({"app": "cart"});
    let d = deployment("cart", env, labels.clone(), image, replicas, "");
    let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "cart", "labels": labels},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": labels},
            "template": template,
            "strategy": {"canary": {
                "stableService": "cart-stable",
                "canaryService": "cart-canary",
                "steps": [
                    {"setWeight": 20},
                    {"pause": {}},
                    {"setWeight": 50},
                    {"pause": {"duration": "30s"}},
                    {"setWeight": 100}
                ]
            }}
        }
    })
}

/// `kubectl argo rollouts set image`: the first container's image of a Rollout.
pub fn set_rollout_image(sb: &Sandbox, ns: &str, name: &str, image: &str) {
    let r = sb.store.modify(
        controllers::rollouts(),
        ns,
        name,
        &WriteOpts::controller("kubectl-argo-rollouts"),
        |o| {
            if let Some(c) = o.pointer_mut("/spec/template/spec/containers/0") {
                c["image"] = json!(image);
            }
            Ok(())
        },
    );
    if let Err(e) = r {
        tracing::warn!("seeding: set image on rollout {ns}/{name}: {e}");
    }
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
