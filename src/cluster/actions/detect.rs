//! How an app releases, read from the cluster's objects: an Argo Rollout; a stable and a
//! canary Deployment split by an HTTPRoute, an ingress-nginx canary Ingress or the replica
//! ratio behind one Service; blue and green Deployments behind one Service's selector; or one
//! rolling Deployment.

use std::fmt;

use kube::Client;
use serde_json::Value;

use super::{ActionError, Res, list, name_of, str_at};

/// The label that names an app (the convention the sandbox and most charts use).
pub const APP_LABEL: &str = "app";

/// Selector keys that name a colour in blue/green Services.
const COLOUR_KEYS: &[&str] = &["version", "color", "colour", "slot"];

/// What splits canary traffic, as named in the config (`router = "…"`) and on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouterKind {
    ReplicaRatio,
    GatewayApi,
    IngressNginx,
    ArgoRollouts,
    Traefik,
    Istio,
}

impl RouterKind {
    pub const ALL: [RouterKind; 6] = [
        RouterKind::ReplicaRatio,
        RouterKind::GatewayApi,
        RouterKind::IngressNginx,
        RouterKind::ArgoRollouts,
        RouterKind::Traefik,
        RouterKind::Istio,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RouterKind::ReplicaRatio => "replica-ratio",
            RouterKind::GatewayApi => "gateway-api",
            RouterKind::IngressNginx => "ingress-nginx",
            RouterKind::ArgoRollouts => "argo-rollouts",
            RouterKind::Traefik => "traefik",
            RouterKind::Istio => "istio",
        }
    }

    pub fn parse(s: &str) -> Option<RouterKind> {
        RouterKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// A canary router found in the cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Router {
    /// One Service selects both Deployments: the weight is the replica ratio.
    ReplicaRatio {
        service: String,
        stable: String,
        canary: String,
    },
    /// Gateway API: backendRef weights of one rule (Service names).
    HttpRoute {
        route: String,
        rule: usize,
        stable: String,
        canary: String,
    },
    /// ingress-nginx: the canary Ingress's `canary-weight` annotation.
    Nginx { ingress: String },
    /// Argo Rollouts: the controller owns the weights; drive the Rollout.
    Argo { rollout: String },
    /// Traefik: a TraefikService's weighted services (Service names).
    Traefik {
        res: Res,
        service: String,
        stable: String,
        canary: String,
    },
    /// Istio: `spec.http[http].route[]` of a VirtualService; `stable`/`canary` index the
    /// route's destinations.
    Istio {
        res: Res,
        service: String,
        http: usize,
        stable: usize,
        canary: usize,
    },
}

impl Router {
    pub fn kind(&self) -> RouterKind {
        match self {
            Router::ReplicaRatio { .. } => RouterKind::ReplicaRatio,
            Router::HttpRoute { .. } => RouterKind::GatewayApi,
            Router::Nginx { .. } => RouterKind::IngressNginx,
            Router::Argo { .. } => RouterKind::ArgoRollouts,
            Router::Traefik { .. } => RouterKind::Traefik,
            Router::Istio { .. } => RouterKind::Istio,
        }
    }
}

impl fmt::Display for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Router::ReplicaRatio { service, .. } => {
                write!(f, "replica ratio behind Service/{service}")
            }
            Router::HttpRoute { route, .. } => write!(f, "Gateway API HTTPRoute/{route}"),
            Router::Nginx { ingress } => write!(f, "ingress-nginx Ingress/{ingress}"),
            Router::Argo { rollout } => write!(f, "Argo Rollouts Rollout/{rollout}"),
            Router::Traefik { res, service, .. } => {
                write!(f, "Traefik TraefikService/{service} ({})", res.group)
            }
            Router::Istio { service, http, .. } => {
                write!(f, "Istio VirtualService/{service} http[{http}]")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReleaseKind {
    Canary {
        router: Router,
        /// The stable and canary Deployments (none for an Argo Rollout).
        stable: Option<String>,
        canary: Option<String>,
    },
    BlueGreen {
        service: String,
        /// The selector key that names the colour, and the colour selected now.
        key: String,
        active: String,
        /// `(colour, Deployment)` of every colour.
        colours: Vec<(String, String)>,
    },
    Rolling {
        deployment: String,
    },
}

/// An app and how it releases.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub app: String,
    pub kind: ReleaseKind,
    /// Noted while detecting (e.g. GitOps ownership of a Deployment).
    pub warnings: Vec<String>,
}

impl Release {
    /// "a canary via Gateway API HTTPRoute/checkout", for messages and the dialog.
    pub fn describe(&self) -> String {
        match &self.kind {
            ReleaseKind::Canary { router, .. } => format!("a canary via {router}"),
            ReleaseKind::BlueGreen {
                service,
                key,
                active,
                ..
            } => format!("blue/green via Service/{service} ({key}={active})"),
            ReleaseKind::Rolling { deployment } => {
                format!("a rolling update of Deployment/{deployment}")
            }
        }
    }
}

fn labels(o: &Value, ptr: &str) -> Vec<(String, String)> {
    o.pointer(ptr)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn template_label<'a>(d: &'a Value, key: &str) -> Option<&'a str> {
    d.pointer("/spec/template/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// Whether a Service selector picks pods with these template labels (an empty selector
/// picks nothing, as for Services).
fn selects(svc: &Value, d: &Value) -> bool {
    let sel = labels(svc, "/spec/selector");
    !sel.is_empty()
        && sel
            .iter()
            .all(|(k, v)| template_label(d, k) == Some(v.as_str()))
}

fn is_canary(d: &Value) -> bool {
    template_label(d, "track") == Some("canary") || name_of(d).ends_with("-canary")
}

/// Find how `app` releases in `ns`. `force` restricts canary routers to one kind.
pub async fn detect(
    client: &Client,
    ns: &str,
    app: &str,
    force: Option<RouterKind>,
) -> Result<Release, ActionError> {
    let wants = |k: RouterKind| force.is_none_or(|f| f == k);
    let release = |kind| Release {
        app: app.to_string(),
        kind,
        warnings: Vec::new(),
    };
    if wants(RouterKind::ArgoRollouts) {
        let rollouts = list(client, ns, &Res::ROLLOUT, None).await?;
        if let Some(r) = rollouts.iter().find(|r| {
            name_of(r) == app || str_at(r, &format!("/metadata/labels/{APP_LABEL}")) == Some(app)
        }) {
            return Ok(release(ReleaseKind::Canary {
                router: Router::Argo {
                    rollout: name_of(r).to_string(),
                },
                stable: None,
                canary: None,
            }));
        }
    }
    let mut deps = list(
        client,
        ns,
        &Res::DEPLOYMENT,
        Some(&format!("{APP_LABEL}={app}")),
    )
    .await?;
    if deps.is_empty() {
        // An unlabelled Deployment named like the app.
        deps = list(client, ns, &Res::DEPLOYMENT, None)
            .await?
            .into_iter()
            .filter(|d| name_of(d) == app)
            .collect();
    }
    if deps.is_empty() {
        return Err(ActionError::Refused(format!(
            "no app {app} in namespace {ns}: no Deployment labelled {APP_LABEL}={app} or named {app}{}",
            if force.is_none() || force == Some(RouterKind::ArgoRollouts) {
                ", and no Rollout"
            } else {
                ""
            }
        )));
    }
    deps.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    let canaries: Vec<&Value> = deps.iter().filter(|d| is_canary(d)).collect();
    let services = if deps.len() >= 2 {
        list(client, ns, &Res::SERVICE, None).await?
    } else {
        Vec::new()
    };
    if let ([canary], 2) = (canaries.as_slice(), deps.len())
        && let Some(stable) = deps.iter().find(|d| name_of(d) != name_of(canary))
    {
        let router = find_router(client, ns, app, &services, stable, canary, &wants).await?;
        return Ok(release(ReleaseKind::Canary {
            router,
            stable: Some(name_of(stable).to_string()),
            canary: Some(name_of(canary).to_string()),
        }));
    }
    if force.is_some() {
        return Err(ActionError::Refused(format!(
            "the config says {app} is a canary via {}, but it has no stable and canary Deployment pair",
            force.map(RouterKind::name).unwrap_or_default()
        )));
    }
    if deps.len() >= 2 {
        for svc in &services {
            let sel = labels(svc, "/spec/selector");
            let Some((key, active)) = sel
                .iter()
                .find(|(k, _)| COLOUR_KEYS.contains(&k.as_str()))
                .cloned()
            else {
                continue;
            };
            let picked = deps.iter().filter(|d| selects(svc, d)).count();
            let colours: Vec<(String, String)> = deps
                .iter()
                .filter_map(|d| {
                    template_label(d, &key).map(|c| (c.to_string(), name_of(d).to_string()))
                })
                .collect();
            if picked == 1 && colours.len() >= 2 {
                return Ok(release(ReleaseKind::BlueGreen {
                    service: name_of(svc).to_string(),
                    key,
                    active,
                    colours,
                }));
            }
        }
    }
    let deployment = if deps.len() == 1 {
        name_of(&deps[0]).to_string()
    } else if let Some(d) = deps.iter().find(|d| name_of(d) == app) {
        name_of(d).to_string()
    } else {
        let names: Vec<&str> = deps.iter().map(name_of).collect();
        return Err(ActionError::Refused(format!(
            "{app} has {} Deployments ({}) and is neither a canary pair nor blue/green: name one with --deployment",
            names.len(),
            names.join(", ")
        )));
    };
    Ok(release(ReleaseKind::Rolling { deployment }))
}

/// Backend Service names of an Ingress.
fn ingress_backends(ing: &Value) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    if let Some(s) = str_at(ing, "/spec/defaultBackend/service/name") {
        out.push(s);
    }
    for rule in ing
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for path in rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(s) = str_at(path, "/backend/service/name") {
                out.push(s);
            }
        }
    }
    out
}

/// Which router splits traffic between `stable` and `canary`.
async fn find_router(
    client: &Client,
    ns: &str,
    app: &str,
    services: &[Value],
    stable: &Value,
    canary: &Value,
    wants: &impl Fn(RouterKind) -> bool,
) -> Result<Router, ActionError> {
    let only = |d: &Value, other: &Value| -> Vec<String> {
        services
            .iter()
            .filter(|s| selects(s, d) && !selects(s, other))
            .map(|s| name_of(s).to_string())
            .collect()
    };
    let (stable_svcs, canary_svcs) = (only(stable, canary), only(canary, stable));
    let shared_svcs: Vec<String> = services
        .iter()
        .filter(|s| selects(s, stable) && selects(s, canary))
        .map(|s| name_of(s).to_string())
        .collect();
    if wants(RouterKind::GatewayApi) {
        for route in list(client, ns, &Res::HTTPROUTE, None).await? {
            for (i, rule) in route
                .pointer("/spec/rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let names: Vec<&str> = rule
                    .get("backendRefs")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|b| b.get("name").and_then(Value::as_str))
                    .collect();
                let s = names.iter().find(|n| stable_svcs.iter().any(|s| s == *n));
                let c = names.iter().find(|n| canary_svcs.iter().any(|s| s == *n));
                if let (Some(s), Some(c)) = (s, c) {
                    return Ok(Router::HttpRoute {
                        route: name_of(&route).to_string(),
                        rule: i,
                        stable: s.to_string(),
                        canary: c.to_string(),
                    });
                }
            }
        }
    }
    if wants(RouterKind::Traefik)
        && let Some(r) = super::mesh::find_traefik(client, ns, &stable_svcs, &canary_svcs).await?
    {
        return Ok(r);
    }
    if wants(RouterKind::Istio)
        && let Some(r) = super::mesh::find_istio(
            client,
            ns,
            stable,
            canary,
            &stable_svcs,
            &canary_svcs,
            &shared_svcs,
        )
        .await?
    {
        return Ok(r);
    }
    if wants(RouterKind::IngressNginx) {
        for ing in list(client, ns, &Res::INGRESS, None).await? {
            let is_canary = str_at(
                &ing,
                "/metadata/annotations/nginx.ingress.kubernetes.io~1canary",
            ) == Some("true");
            if is_canary
                && ingress_backends(&ing)
                    .iter()
                    .any(|b| canary_svcs.iter().any(|s| s == b))
            {
                return Ok(Router::Nginx {
                    ingress: name_of(&ing).to_string(),
                });
            }
        }
    }
    if wants(RouterKind::ReplicaRatio)
        && let Some(svc) = services
            .iter()
            .find(|s| selects(s, stable) && selects(s, canary))
    {
        return Ok(Router::ReplicaRatio {
            service: name_of(svc).to_string(),
            stable: name_of(stable).to_string(),
            canary: name_of(canary).to_string(),
        });
    }
    Err(ActionError::Refused(format!(
        "{app} has a stable ({}) and a canary ({}) Deployment but no traffic router{}: no HTTPRoute rule, TraefikService, VirtualService route or ingress-nginx canary Ingress sends traffic to {}, and no Service selects both",
        name_of(stable),
        name_of(canary),
        RouterKind::ALL
            .iter()
            .find(|k| wants(**k) && **k != RouterKind::ArgoRollouts)
            .filter(|_| !RouterKind::ALL.iter().all(|k| wants(*k)))
            .map(|k| format!(" of the configured kind {}", k.name()))
            .unwrap_or_default(),
        if canary_svcs.is_empty() {
            "a canary-only Service".to_string()
        } else {
            canary_svcs.join(", ")
        }
    )))
}
