//! Simulated traffic: for every app in every namespace, a request rate with a daily shape and
//! noise, routed the way the cluster says — an Argo Rollout's canary weight
//! (`status.canary.weights`), HTTPRoute backendRef weights (proportional), a Traefik
//! TraefikService's weighted services (proportional, default 1), an Istio VirtualService's
//! route weights (to a Service, or to a DestinationRule subset of its pods), an ingress-nginx
//! canary Ingress (`canary-weight` of `canary-weight-total`), a Service selector (blue/green),
//! or the ready-replica ratio when one Service selects several Deployments. Only Ready pods get
//! traffic. Each version answers with an error ratio and a
//! latency distribution that depend on its image (`-errors`, `-slow` tags) and on injected
//! faults. Every simulated second updates the counters that `/metrics` exposes and that the
//! sandbox's own Prometheus API stores.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use super::Sandbox;
use super::controllers::{
    annotation, destinationrules, httproutes, ingresses, pod_ready, pods, rollouts, services,
    traefikservices, virtualservices,
};
use super::faults::{Fault, FaultKind, image_tag, version_names};
use super::selector::LabelSelector;
use super::store::{meta_str, name_of};

/// Histogram bucket bounds (seconds): the client defaults, finer where p99s of healthy
/// services fall.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One app's traffic character.
struct Profile {
    /// Requests per second in production at the daily mean (staging gets a fifth).
    rps: f64,
    /// Median latency, seconds.
    median: f64,
    /// Server-error ratio of a healthy version.
    errors: f64,
}

fn profile(app: &str) -> Profile {
    match app {
        "checkout" => Profile {
            rps: 40.0,
            median: 0.045,
            errors: 0.001,
        },
        "payments" => Profile {
            rps: 25.0,
            median: 0.080,
            errors: 0.002,
        },
        "frontend" => Profile {
            rps: 60.0,
            median: 0.025,
            errors: 0.0005,
        },
        "search" => Profile {
            rps: 30.0,
            median: 0.060,
            errors: 0.001,
        },
        "catalog" => Profile {
            rps: 30.0,
            median: 0.035,
            errors: 0.001,
        },
        "cart" => Profile {
            rps: 30.0,
            median: 0.040,
            errors: 0.001,
        },
        "inventory" => Profile {
            rps: 20.0,
            median: 0.030,
            errors: 0.001,
        },
        "reviews" => Profile {
            rps: 35.0,
            median: 0.050,
            errors: 0.001,
        },
        _ => Profile {
            rps: 10.0,
            median: 0.050,
            errors: 0.001,
        },
    }
}

/// Counters of one pod: requests by status code.
#[derive(Debug, Clone, Default)]
pub struct PodCounters {
    pub namespace: String,
    pub app: String,
    pub service: String,
    pub version: String,
    pub pod: String,
    pub by_code: BTreeMap<u16, f64>,
}

/// A latency histogram of one version.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// Cumulative counts per bucket of [`BUCKETS`], then +Inf.
    pub buckets: [f64; BUCKETS.len() + 1],
    pub sum: f64,
    pub count: f64,
}

#[derive(Default)]
struct State {
    /// The last simulated second.
    last: Option<i64>,
    pods: BTreeMap<(String, String), PodCounters>,
    /// Keyed by (namespace, app, version).
    hists: BTreeMap<(String, String, String), Histogram>,
}

/// The traffic simulation and its counters.
#[derive(Default)]
pub struct Traffic {
    state: Mutex<State>,
}

/// A pod that receives a share of an app's traffic.
struct Target {
    pod: String,
    service: String,
    version: String,
    share: f64,
    /// Error ratio and added latency (seconds) of its image, before faults.
    error_ratio: f64,
    extra_latency: f64,
    faults: Vec<Fault>,
}

impl Target {
    /// Error ratio and added latency at a moment, faults included.
    fn behaviour(&self, t: jiff::Timestamp) -> (f64, f64) {
        let (mut err, mut extra) = (self.error_ratio, self.extra_latency);
        for f in self.faults.iter().filter(|f| f.active_at(t)) {
            match f.kind {
                FaultKind::ErrorRatio(r) => err = 1.0 - (1.0 - err) * (1.0 - r),
                FaultKind::Latency(ms) => extra += ms / 1000.0,
                _ => {}
            }
        }
        (err, extra)
    }
}

/// One weighted backend of an app: a Service, optionally narrowed to the pods that also carry
/// `subset`'s labels (an Istio DestinationRule subset).
struct Backend {
    service: String,
    subset: Option<Value>,
    weight: f64,
}

impl Backend {
    fn new(service: impl Into<String>, weight: f64) -> Backend {
        Backend {
            service: service.into(),
            subset: None,
            weight,
        }
    }
}

/// Backends and weights from `(service, weight)` pairs.
fn plain(pairs: Vec<(String, f64)>) -> Vec<Backend> {
    pairs.into_iter().map(|(s, w)| Backend::new(s, w)).collect()
}

/// Who gets each app's traffic, per namespace.
type Routes = Vec<(String, BTreeMap<String, Vec<Target>>)>;

/// One simulated second's series values, for the sample history.
pub struct Snapshot {
    pub second: i64,
    pub pods: Vec<PodCounters>,
    pub hists: Vec<((String, String, String), Histogram)>,
}

fn mix(seed: u64, parts: &[&str], n: i64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for p in parts {
        for b in p.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
    }
    h ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Daily shape: quietest around 04:00, busiest around 16:00 (±35 %).
fn daily(second: i64) -> f64 {
    let day = (second.rem_euclid(86_400)) as f64 / 86_400.0;
    1.0 + 0.35 * (std::f64::consts::TAU * (day - 0.42)).sin()
}

fn labels_match(sel: &Value, pod: &Value) -> bool {
    sel.as_object().is_some_and(|m| {
        !m.is_empty()
            && LabelSelector::from_map(m)
                .matches(pod.pointer("/metadata/labels").and_then(Value::as_object))
    })
}

impl Traffic {
    /// The last simulated second.
    pub fn last_second(&self) -> Option<i64> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).last
    }

    /// Begin simulating at `second` (earlier than now to give the charts a past).
    pub fn start_at(&self, second: i64) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.last = Some(second - 1);
    }

    /// Simulate every whole second up to `now_second` that has not been simulated yet (at most
    /// `max_catch_up` of them), returning the per-second snapshots for the sample history.
    pub fn advance(&self, sb: &Sandbox, now_second: i64, max_catch_up: i64) -> Vec<Snapshot> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let from = match st.last {
            Some(l) => (l + 1).max(now_second - max_catch_up + 1),
            None => now_second,
        };
        let mut out = Vec::new();
        // The cluster does not change while we catch up: route once.
        let routes: Routes = if from <= now_second {
            sb.store
                .list(super::controllers::namespaces(), None)
                .0
                .iter()
                .map(|n| (name_of(n).to_string(), routing(sb, name_of(n))))
                .collect()
        } else {
            Vec::new()
        };
        let existing: HashSet<(String, String)> = routes
            .iter()
            .flat_map(|(ns, _)| {
                sb.store
                    .list(pods(), Some(ns))
                    .0
                    .iter()
                    .map(|p| (ns.clone(), name_of(p).to_string()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for s in from..=now_second {
            step(sb, &mut st, s, &routes, &existing);
            st.last = Some(s);
            out.push(Snapshot {
                second: s,
                pods: st.pods.values().cloned().collect(),
                hists: st
                    .hists
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            });
        }
        out
    }

    /// The Prometheus text exposition of the current counters.
    pub fn exposition(&self) -> String {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut o = String::new();
        o.push_str("# HELP http_requests_total Requests served, by pod and status code.\n");
        o.push_str("# TYPE http_requests_total counter\n");
        for c in st.pods.values() {
            for (code, v) in &c.by_code {
                let _ = writeln!(
                    o,
                    "http_requests_total{{namespace=\"{}\",app=\"{}\",service=\"{}\",version=\"{}\",pod=\"{}\",code=\"{code}\"}} {v}",
                    c.namespace, c.app, c.service, c.version, c.pod
                );
            }
        }
        o.push_str("# HELP http_request_duration_seconds Request latency, by version.\n");
        o.push_str("# TYPE http_request_duration_seconds histogram\n");
        for ((ns, app, version), h) in &st.hists {
            let base = format!("namespace=\"{ns}\",app=\"{app}\",version=\"{version}\"");
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "http_request_duration_seconds_bucket{{{base},le=\"{le}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                o,
                "http_request_duration_seconds_bucket{{{base},le=\"+Inf\"}} {}",
                h.buckets[BUCKETS.len()]
            );
            let _ = writeln!(o, "http_request_duration_seconds_sum{{{base}}} {}", h.sum);
            let _ = writeln!(
                o,
                "http_request_duration_seconds_count{{{base}}} {}",
                h.count
            );
        }
        o
    }
}

/// Who gets an app's traffic, and with what share, right now.
fn routing(sb: &Sandbox, ns: &str) -> BTreeMap<String, Vec<Target>> {
    let (pod_list, _) = sb.store.list(pods(), Some(ns));
    let (svc_list, _) = sb.store.list(services(), Some(ns));
    let routes = sb.store.list(httproutes(), Some(ns)).0;
    let ingress_list = sb.store.list(ingresses(), Some(ns)).0;
    let rollout_list = sb.store.list(rollouts(), Some(ns)).0;
    let traefik_list: Vec<Arc<Value>> = traefikservices()
        .iter()
        .flat_map(|rt| sb.store.list(rt, Some(ns)).0)
        .collect();
    let vs_list = sb.store.list(virtualservices(), Some(ns)).0;
    let dr_list = sb.store.list(destinationrules(), Some(ns)).0;
    let ready: Vec<&Value> = pod_list
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| pod_ready(p) && meta_str(p, "deletionTimestamp").is_none())
        .collect();
    let mut apps: Vec<String> = pod_list
        .iter()
        .filter_map(|p| {
            p.pointer("/metadata/labels/app")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    apps.sort();
    apps.dedup();
    let svc = |name: &str| svc_list.iter().find(|s| name_of(s) == name);
    let selects_app = |service: &str, app: &str| {
        svc(service)
            .is_some_and(|s| s.pointer("/spec/selector/app").and_then(Value::as_str) == Some(app))
    };
    let mut out = BTreeMap::new();
    for app in apps {
        // Backends with weights, in the cockpit's detection order: an Argo Rollout's canary
        // weights, an HTTPRoute, a TraefikService, an Istio VirtualService, an ingress-nginx
        // canary pair, else the app's Service (ready-replica ratio).
        let backends = rollout_backends(&rollout_list, &app)
            .map(plain)
            .or_else(|| httproute_backends(&routes, &app, &selects_app).map(plain))
            .or_else(|| {
                traefik_backends(&traefik_list, ns, &app, &selects_app, &|n| svc(n).is_some())
                    .map(plain)
            })
            .or_else(|| istio_backends(&vs_list, &dr_list, ns, &app, &selects_app))
            .or_else(|| ingress_backends(&ingress_list, &app, &selects_app).map(plain))
            .or_else(|| {
                svc(&app)
                    .or_else(|| {
                        svc_list.iter().find(|s| {
                            s.pointer("/spec/selector/app").and_then(Value::as_str)
                                == Some(app.as_str())
                        })
                    })
                    .map(|s| vec![Backend::new(name_of(s), 1.0)])
            })
            .unwrap_or_default();
        let total: f64 = backends.iter().map(|b| b.weight.max(0.0)).sum();
        let prof = profile(&app);
        let mut targets = Vec::new();
        for Backend {
            service,
            subset,
            weight: w,
        } in backends
        {
            if total <= 0.0 || w <= 0.0 {
                continue;
            }
            let Some(s) = svc(&service) else { continue };
            let Some(sel) = s.pointer("/spec/selector") else {
                continue;
            };
            let chosen: Vec<&&Value> = ready
                .iter()
                .filter(|p| labels_match(sel, p))
                .filter(|p| subset.as_ref().is_none_or(|l| labels_match(l, p)))
                .collect();
            for p in &chosen {
                let image = p
                    .pointer("/spec/containers/0/image")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let tag = image_tag(image);
                let names = version_names(p);
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let mut err = prof.errors;
                let mut extra = 0.0;
                if tag.contains("errors") {
                    err = err.max(0.30);
                }
                if tag.contains("slow") {
                    extra += 0.4;
                }
                targets.push(Target {
                    faults: sb.faults.for_pod(ns, &app, &names),
                    pod: name_of(p).to_string(),
                    service: service.clone(),
                    version: tag.to_string(),
                    share: w / total / chosen.len() as f64,
                    error_ratio: err,
                    extra_latency: extra,
                });
            }
        }
        out.insert(app, targets);
    }
    out
}

/// An Argo Rollout's split: `status.canary.weights.canary.weight` % to the canary Service,
/// the rest to the stable Service (whose selectors the controller pins to a pod-template hash).
fn rollout_backends(rollouts: &[Arc<Value>], app: &str) -> Option<Vec<(String, f64)>> {
    let ro = rollouts.iter().find(|r| {
        r.pointer("/spec/selector/matchLabels/app")
            .or_else(|| r.pointer("/spec/template/metadata/labels/app"))
            .and_then(Value::as_str)
            == Some(app)
    })?;
    let canary = ro.pointer("/spec/strategy/canary")?;
    let service = |k: &str| {
        canary
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let stable = service("stableService")?;
    let weight = ro
        .pointer("/status/canary/weights/canary/weight")
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
        .clamp(0.0, 100.0);
    let mut out = vec![(stable, 100.0 - weight)];
    if let Some(c) = service("canaryService") {
        out.push((c, weight));
    }
    Some(out)
}

/// The first rule's backendRefs of an HTTPRoute that sends to the app (weights proportional,
/// default 1).
fn httproute_backends(
    routes: &[Arc<Value>],
    app: &str,
    selects_app: &dyn Fn(&str, &str) -> bool,
) -> Option<Vec<(String, f64)>> {
    let refs = |r: &Value| {
        r.pointer("/spec/rules/0/backendRefs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let route = routes.iter().find(|r| {
        refs(r).iter().any(|b| {
            b.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| selects_app(n, app))
        })
    })?;
    Some(
        refs(route)
            .iter()
            .map(|b| {
                let name = b.get("name").and_then(Value::as_str).unwrap_or_default();
                let w = b
                    .get("weight")
                    .and_then(Value::as_f64)
                    .unwrap_or(1.0)
                    .max(0.0);
                (name.to_string(), w)
            })
            .collect(),
    )
}

/// A TraefikService's weighted services (`spec.weighted.services[]`), when one of them is a
/// Service of the app: weights proportional, a missing weight is 1 (Traefik's default).
/// Entries that name another namespace, a kind other than Service or a Service that does not
/// exist are skipped (Traefik cannot build them), so the others share the traffic.
fn traefik_backends(
    list: &[Arc<Value>],
    ns: &str,
    app: &str,
    selects_app: &dyn Fn(&str, &str) -> bool,
    exists: &dyn Fn(&str) -> bool,
) -> Option<Vec<(String, f64)>> {
    let services = |ts: &Value| -> Vec<(String, f64)> {
        ts.pointer("/spec/weighted/services")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|s| {
                s.get("kind")
                    .and_then(Value::as_str)
                    .is_none_or(|k| k.is_empty() || k == "Service")
                    && s.get("namespace")
                        .and_then(Value::as_str)
                        .is_none_or(|n| n.is_empty() || n == ns)
            })
            .filter_map(|s| {
                let name = s
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| exists(n))?;
                let w = match s.get("weight") {
                    None | Some(Value::Null) => 1.0,
                    Some(w) => w.as_f64().unwrap_or(0.0).max(0.0),
                };
                Some((name.to_string(), w))
            })
            .collect()
    };
    list.iter()
        .map(|ts| services(ts))
        .find(|svcs| svcs.iter().any(|(n, _)| selects_app(n, app)))
}

/// The Service an Istio host names in namespace `ns`: `name`, `name.ns`, `name.ns.svc` or
/// `name.ns.svc.cluster.local`; a host in another namespace or outside the cluster is none.
fn istio_host_service<'a>(host: &'a str, ns: &str) -> Option<&'a str> {
    let mut parts = host.split('.');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let rest: Vec<&str> = parts.collect();
    match rest.as_slice() {
        [] => Some(name),
        [n] | [n, "svc"] | [n, "svc", "cluster", "local"] if *n == ns => Some(name),
        _ => None,
    }
}

/// The labels of `subset` of `service`, from the namespace's DestinationRules.
fn istio_subset<'a>(
    rules: &'a [Arc<Value>],
    ns: &str,
    service: &str,
    subset: &str,
) -> Option<&'a Value> {
    rules
        .iter()
        .filter(|r| {
            r.pointer("/spec/host")
                .and_then(Value::as_str)
                .and_then(|h| istio_host_service(h, ns))
                == Some(service)
        })
        .flat_map(|r| {
            r.pointer("/spec/subsets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|s| s.get("name").and_then(Value::as_str) == Some(subset))
        .map(|s| s.get("labels").unwrap_or(&Value::Null))
}

/// Whether an Istio http route takes every request (no match conditions). Simulated requests
/// carry no headers, cookies or special paths, so a matched route takes none of them.
fn istio_catch_all(http: &Value) -> bool {
    match http.get("match") {
        None | Some(Value::Null) => true,
        Some(Value::Array(ms)) => {
            ms.is_empty()
                || ms.iter().any(|m| {
                    m.as_object().is_some_and(|o| {
                        o.iter().all(|(k, v)| {
                            k == "name"
                                || (k == "uri"
                                    && (v.get("prefix").and_then(Value::as_str) == Some("/")))
                        })
                    })
                })
        }
        Some(_) => false,
    }
}

/// An Istio VirtualService's split for the app: of the `spec.http[]` routes that send to a
/// Service of the app, the first without match conditions (else the first). Each destination
/// gets its weight's share (weights proportional among the destinations that resolve; a lone
/// destination, or all weights missing, share equally) of the pods of its host's Service,
/// narrowed to its DestinationRule subset. Destinations whose host is not a Service here or
/// whose subset no DestinationRule defines get nothing.
fn istio_backends(
    list: &[Arc<Value>],
    rules: &[Arc<Value>],
    ns: &str,
    app: &str,
    selects_app: &dyn Fn(&str, &str) -> bool,
) -> Option<Vec<Backend>> {
    let destinations = |http: &Value| -> Vec<Value> {
        http.get("route")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let sends_to_app = |http: &Value| {
        destinations(http).iter().any(|d| {
            d.pointer("/destination/host")
                .and_then(Value::as_str)
                .and_then(|h| istio_host_service(h, ns))
                .is_some_and(|s| selects_app(s, app))
        })
    };
    let https: Vec<&Value> = list
        .iter()
        .flat_map(|vs| {
            vs.pointer("/spec/http")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter(|h| sends_to_app(h))
        .collect();
    let http = https
        .iter()
        .find(|h| istio_catch_all(h))
        .or_else(|| https.first())?;
    let routes = destinations(http);
    let explicit = routes.iter().any(|r| {
        r.get("weight")
            .and_then(Value::as_f64)
            .is_some_and(|w| w > 0.0)
    });
    let mut out = Vec::new();
    for r in &routes {
        let Some(service) = r
            .pointer("/destination/host")
            .and_then(Value::as_str)
            .and_then(|h| istio_host_service(h, ns))
        else {
            continue;
        };
        let subset = match r.pointer("/destination/subset").and_then(Value::as_str) {
            None | Some("") => None,
            // A subset without labels is every pod of the Service.
            Some(name) => match istio_subset(rules, ns, service, name) {
                Some(labels) if labels.as_object().is_some_and(|m| !m.is_empty()) => {
                    Some(labels.clone())
                }
                Some(_) => None,
                None => continue,
            },
        };
        let weight = if explicit {
            r.get("weight")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                .max(0.0)
        } else {
            1.0
        };
        out.push(Backend {
            service: service.to_string(),
            subset,
            weight,
        });
    }
    Some(out)
}

/// ingress-nginx's canary annotations.
pub const NGINX_CANARY: &str = "nginx.ingress.kubernetes.io/canary";
pub const NGINX_CANARY_WEIGHT: &str = "nginx.ingress.kubernetes.io/canary-weight";
pub const NGINX_CANARY_WEIGHT_TOTAL: &str = "nginx.ingress.kubernetes.io/canary-weight-total";

/// A canary Ingress's weight and total, as ingress-nginx reads them: integers in strings; a
/// total that is missing, unreadable or not positive is 100; a weight that is missing or
/// unreadable is 0, and it is kept within 0..=total.
pub fn nginx_canary_weight(ing: &Value) -> (f64, f64) {
    let total = annotation(ing, NGINX_CANARY_WEIGHT_TOTAL)
        .and_then(|t| t.trim().parse::<i64>().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100);
    let weight = annotation(ing, NGINX_CANARY_WEIGHT)
        .and_then(|w| w.trim().parse::<i64>().ok())
        .unwrap_or(0)
        .clamp(0, total);
    (weight as f64, total as f64)
}

fn is_nginx_canary(ing: &Value) -> bool {
    annotation(ing, NGINX_CANARY).is_some_and(|c| c.trim().eq_ignore_ascii_case("true"))
}

/// (host, path, service) of every backend an Ingress names.
fn ingress_paths(ing: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for rule in ing
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let host = rule.get("host").and_then(Value::as_str).unwrap_or_default();
        for p in rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let path = p.get("path").and_then(Value::as_str).unwrap_or("/");
            if let Some(svc) = p.pointer("/backend/service/name").and_then(Value::as_str) {
                out.push((host.to_string(), path.to_string(), svc.to_string()));
            }
        }
    }
    if let Some(svc) = ing
        .pointer("/spec/defaultBackend/service/name")
        .and_then(Value::as_str)
    {
        out.push((String::new(), String::new(), svc.to_string()));
    }
    out
}

/// ingress-nginx: the main Ingress that sends a host/path to the app, and a canary Ingress
/// for the same host/path that takes weight/total of that traffic.
fn ingress_backends(
    ingresses: &[Arc<Value>],
    app: &str,
    selects_app: &dyn Fn(&str, &str) -> bool,
) -> Option<Vec<(String, f64)>> {
    let (host, path, primary) = ingresses
        .iter()
        .filter(|i| !is_nginx_canary(i))
        .flat_map(|i| ingress_paths(i))
        .find(|(_, _, svc)| selects_app(svc, app))?;
    let canary = ingresses
        .iter()
        .filter(|i| is_nginx_canary(i))
        .find_map(|i| {
            ingress_paths(i)
                .into_iter()
                .find(|(h, p, _)| *h == host && *p == path)
                .map(|(_, _, svc)| (svc, nginx_canary_weight(i)))
        });
    Some(match canary {
        Some((svc, (w, total))) => vec![(primary, total - w), (svc, w)],
        None => vec![(primary, 1.0)],
    })
}

/// Standard normal from two uniforms (Box–Muller).
fn normal(rng: &mut SmallRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn step(
    sb: &Sandbox,
    st: &mut State,
    second: i64,
    routes: &Routes,
    existing: &HashSet<(String, String)>,
) {
    let mut alive: HashMap<(String, String), ()> = HashMap::new();
    let mut alive_versions: HashMap<(String, String, String), ()> = HashMap::new();
    let at = jiff::Timestamp::from_second(second).unwrap_or_default();
    for (ns, apps) in routes {
        let scale = if ns == "production" { 1.0 } else { 0.2 };
        for (app, targets) in apps {
            let prof = profile(app);
            let mut rng = SmallRng::seed_from_u64(mix(sb.seed, &[ns, app], second));
            let noise = 1.0 + 0.1 * normal(&mut rng).clamp(-3.0, 3.0);
            let rate = prof.rps * scale * daily(second) * noise;
            for t in targets {
                let expected = rate * t.share;
                let mut n = expected.floor() as i64;
                if rng.random::<f64>() < expected - expected.floor() {
                    n += 1;
                }
                let key = (ns.clone(), t.pod.clone());
                alive.insert(key.clone(), ());
                let hkey = (ns.clone(), app.clone(), t.version.clone());
                alive_versions.insert(hkey.clone(), ());
                let counters = st.pods.entry(key).or_insert_with(|| PodCounters {
                    namespace: ns.clone(),
                    app: app.clone(),
                    service: t.service.clone(),
                    version: t.version.clone(),
                    pod: t.pod.clone(),
                    by_code: BTreeMap::new(),
                });
                counters.service = t.service.clone();
                let hist = st.hists.entry(hkey).or_default();
                let (error_ratio, extra_latency) = t.behaviour(at);
                for _ in 0..n {
                    let u: f64 = rng.random();
                    let code = if u < error_ratio {
                        if rng.random::<bool>() { 500 } else { 503 }
                    } else if u < error_ratio + 0.01 {
                        404
                    } else {
                        200
                    };
                    *counters.by_code.entry(code).or_insert(0.0) += 1.0;
                    let latency = (prof.median.ln() + 0.5 * normal(&mut rng)).exp() + extra_latency;
                    for (i, le) in BUCKETS.iter().enumerate() {
                        if latency <= *le {
                            hist.buckets[i] += 1.0;
                        }
                    }
                    hist.buckets[BUCKETS.len()] += 1.0;
                    hist.sum += latency;
                    hist.count += 1.0;
                }
            }
        }
    }
    // Deleted pods' series end; pods still there keep their last values.
    st.pods
        .retain(|k, _| alive.contains_key(k) || existing.contains(k));
    let live_versions: HashMap<(String, String, String), ()> = st
        .pods
        .values()
        .map(|c| ((c.namespace.clone(), c.app.clone(), c.version.clone()), ()))
        .collect();
    st.hists
        .retain(|k, _| alive_versions.contains_key(k) || live_versions.contains_key(k));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::controllers::{ingresses, rollouts};
    use crate::sandbox::patch::json_merge_patch;
    use crate::sandbox::store::WriteOpts;
    use crate::sandbox::test_fixtures::{run_for, sandbox};
    use serde_json::json;

    /// An app's share of traffic per version (image tag).
    fn shares(sb: &Sandbox, ns: &str, app: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for t in routing(sb, ns).remove(app).unwrap_or_default() {
            *out.entry(t.version).or_insert(0.0) += t.share;
        }
        out
    }

    fn near(got: Option<&f64>, want: f64) -> bool {
        got.is_some_and(|g| (g - want).abs() < 1e-9)
    }

    fn annotate(sb: &Sandbox, name: &str, annotations: Value) {
        sb.store
            .modify(
                ingresses(),
                "production",
                name,
                &WriteOpts::controller("kubectl"),
                |o| {
                    json_merge_patch(o, &json!({"metadata": {"annotations": annotations}}));
                    Ok(())
                },
            )
            .expect("annotate");
    }

    #[test]
    fn every_router_splits_the_seeded_canaries() {
        let sb = sandbox(true);
        // HTTPRoute 90/10.
        let s = shares(&sb, "production", "checkout");
        assert!(near(s.get("1.5.0"), 0.1), "{s:?}");
        // Replica ratio: 3 stable pods and 1 canary pod behind one Service.
        let s = shares(&sb, "production", "search");
        assert!(
            near(s.get("4.2.0"), 0.25) && near(s.get("4.1.0"), 0.75),
            "{s:?}"
        );
        let s = shares(&sb, "staging", "search");
        assert!(near(s.get("4.2.0"), 1.0 / 3.0), "{s:?}");
        // ingress-nginx canary-weight 10 (of 100).
        let s = shares(&sb, "production", "catalog");
        assert!(
            near(s.get("7.1.0"), 0.1) && near(s.get("7.0.3"), 0.9),
            "{s:?}"
        );
        // Argo Rollout at 20 %.
        for ns in ["production", "staging"] {
            let s = shares(&sb, ns, "cart");
            assert!(
                near(s.get("2.1.0"), 0.2) && near(s.get("2.0.0"), 0.8),
                "{ns}: {s:?}"
            );
        }
        // Traefik weighted services 90/10, and Istio subsets 90/10 — though Service `reviews`
        // selects both tracks (3:1 by replicas), the VirtualService decides.
        for ns in ["production", "staging"] {
            let s = shares(&sb, ns, "inventory");
            assert!(
                near(s.get("5.3.0"), 0.1) && near(s.get("5.2.0"), 0.9),
                "{ns}: {s:?}"
            );
            let s = shares(&sb, ns, "reviews");
            assert!(
                near(s.get("1.9.0"), 0.1) && near(s.get("1.8.0"), 0.9),
                "{ns}: {s:?}"
            );
        }
    }

    /// Apply `patch` (a JSON merge patch) to `name` of type `rt` in production.
    fn merge(
        sb: &Sandbox,
        rt: &'static crate::sandbox::resources::ResourceType,
        name: &str,
        patch: Value,
    ) {
        sb.store
            .modify(
                rt,
                "production",
                name,
                &WriteOpts::controller("kubectl"),
                |o| {
                    json_merge_patch(o, &patch);
                    Ok(())
                },
            )
            .expect("patch");
    }

    fn traefik_weights(sb: &Sandbox, services: Value) {
        merge(
            sb,
            traefikservices()[0],
            "inventory",
            json!({"spec": {"weighted": {"services": services}}}),
        );
    }

    #[test]
    fn traefik_weights_are_proportional_with_a_default_of_one() {
        let sb = sandbox(true);
        let s = |sb: &Sandbox| shares(sb, "production", "inventory");
        traefik_weights(
            &sb,
            json!([{"name": "inventory-stable", "weight": 3}, {"name": "inventory-canary", "weight": 1}]),
        );
        assert!(near(s(&sb).get("5.3.0"), 0.25), "{:?}", s(&sb));
        // No weight: 1.
        traefik_weights(
            &sb,
            json!([{"name": "inventory-stable", "weight": 3}, {"name": "inventory-canary"}]),
        );
        assert!(near(s(&sb).get("5.3.0"), 0.25), "{:?}", s(&sb));
        // Canary at 0: all on stable.
        traefik_weights(
            &sb,
            json!([{"name": "inventory-stable", "weight": 5}, {"name": "inventory-canary", "weight": 0}]),
        );
        assert_eq!(s(&sb).get("5.3.0"), None);
        assert!(near(s(&sb).get("5.2.0"), 1.0));
        // Entries for another namespace, another kind or an unknown Service get nothing; a
        // weight that is not a number is 0; nothing panics.
        traefik_weights(
            &sb,
            json!([
                {"name": "inventory-stable", "weight": 1},
                {"name": "inventory-canary", "weight": 1, "namespace": "staging"},
                {"name": "inventory-canary", "weight": 1, "kind": "TraefikService"},
                {"name": "inventory-canary", "weight": "lots"},
                {"name": "nope", "weight": 7},
                {"weight": 7},
                "garbage"
            ]),
        );
        assert!(near(s(&sb).get("5.2.0"), 1.0), "{:?}", s(&sb));
        // The older group is routed by too.
        sb.store
            .delete(
                traefikservices()[0],
                "production",
                "inventory",
                None,
                None,
                false,
            )
            .expect("delete");
        let mut old = crate::sandbox::seed::traefik_service("inventory", "inventory", 1, 1);
        old["apiVersion"] = json!("traefik.containo.us/v1alpha1");
        sb.store
            .create(
                traefikservices()[1],
                "production",
                old,
                &WriteOpts::controller("kubectl"),
            )
            .expect("create");
        assert!(near(s(&sb).get("5.3.0"), 0.5), "{:?}", s(&sb));
        // Without any TraefikService, the two Services (one per track) do not split: the
        // first Service of the app takes it all.
        sb.store
            .delete(
                traefikservices()[1],
                "production",
                "inventory",
                None,
                None,
                false,
            )
            .expect("delete");
        assert_eq!(s(&sb).values().sum::<f64>().round(), 1.0);
    }

    fn istio_route(sb: &Sandbox, http: Value) {
        merge(
            sb,
            virtualservices(),
            "reviews",
            json!({"spec": {"http": http}}),
        );
    }

    fn dest(host: &str, subset: Option<&str>, weight: Option<i64>) -> Value {
        let mut d = json!({"destination": {"host": host}});
        if let Some(s) = subset {
            d["destination"]["subset"] = json!(s);
        }
        if let Some(w) = weight {
            d["weight"] = json!(w);
        }
        d
    }

    #[test]
    fn istio_weights_route_to_destination_rule_subsets() {
        let sb = sandbox(true);
        let s = |sb: &Sandbox| shares(sb, "production", "reviews");
        let fqdn = "reviews.production.svc.cluster.local";
        istio_route(
            &sb,
            json!([{"route": [dest(fqdn, Some("stable"), Some(40)), dest("reviews", Some("canary"), Some(60))]}]),
        );
        assert!(
            near(s(&sb).get("1.9.0"), 0.6) && near(s(&sb).get("1.8.0"), 0.4),
            "{:?}",
            s(&sb)
        );
        // Weights that do not sum to 100 are proportional.
        istio_route(
            &sb,
            json!([{"route": [dest("reviews.production", Some("stable"), Some(30)), dest("reviews.production.svc", Some("canary"), Some(10))]}]),
        );
        assert!(near(s(&sb).get("1.9.0"), 0.25), "{:?}", s(&sb));
        // A subset no DestinationRule defines gets nothing; the known destinations share.
        istio_route(
            &sb,
            json!([{"route": [dest(fqdn, Some("stable"), Some(80)), dest(fqdn, Some("v3"), Some(20))]}]),
        );
        assert!(near(s(&sb).get("1.8.0"), 1.0), "{:?}", s(&sb));
        // A lone destination without weight or subset: every pod of the Service (3:1).
        istio_route(&sb, json!([{"route": [dest("reviews", None, None)]}]));
        assert!(near(s(&sb).get("1.9.0"), 0.25), "{:?}", s(&sb));
        // A route with match conditions takes no simulated request: the catch-all decides.
        istio_route(
            &sb,
            json!([
                {"match": [{"headers": {"end-user": {"exact": "jason"}}}],
                 "route": [dest(fqdn, Some("canary"), None)]},
                {"route": [dest(fqdn, Some("stable"), Some(50)), dest(fqdn, Some("canary"), Some(50))]}
            ]),
        );
        assert!(near(s(&sb).get("1.9.0"), 0.5), "{:?}", s(&sb));
        // A host in another namespace is not this namespace's Service; garbage never panics.
        istio_route(
            &sb,
            json!([{"route": [
                dest("reviews.staging.svc.cluster.local", Some("canary"), Some(50)),
                dest(fqdn, Some("stable"), Some(50)),
                {"destination": "x", "weight": "y"},
                7
            ]}]),
        );
        assert!(near(s(&sb).get("1.8.0"), 1.0), "{:?}", s(&sb));
        // A subset without labels is the whole Service.
        merge(
            &sb,
            destinationrules(),
            "reviews",
            json!({"spec": {"subsets": [{"name": "all"}]}}),
        );
        istio_route(
            &sb,
            json!([{"route": [dest(fqdn, Some("all"), Some(100))]}]),
        );
        assert!(near(s(&sb).get("1.9.0"), 0.25), "{:?}", s(&sb));
        // Without the VirtualService, Service `reviews` splits by ready replicas.
        sb.store
            .delete(
                virtualservices(),
                "production",
                "reviews",
                None,
                None,
                false,
            )
            .expect("delete");
        assert!(near(s(&sb).get("1.9.0"), 0.25), "{:?}", s(&sb));
    }

    #[test]
    fn istio_hosts_resolve_in_their_namespace() {
        assert_eq!(istio_host_service("reviews", "prod"), Some("reviews"));
        assert_eq!(istio_host_service("reviews.prod", "prod"), Some("reviews"));
        assert_eq!(
            istio_host_service("reviews.prod.svc", "prod"),
            Some("reviews")
        );
        assert_eq!(
            istio_host_service("reviews.prod.svc.cluster.local", "prod"),
            Some("reviews")
        );
        assert_eq!(
            istio_host_service("reviews.other.svc.cluster.local", "prod"),
            None
        );
        assert_eq!(istio_host_service("api.example.com", "prod"), None);
        assert_eq!(istio_host_service("", "prod"), None);
        assert_eq!(istio_host_service(".prod", "prod"), None);
    }

    #[test]
    fn nginx_canary_annotations_move_the_weight() {
        let sb = sandbox(true);
        let canary = |sb: &Sandbox| shares(sb, "production", "catalog").get("7.1.0").copied();
        annotate(&sb, "catalog-canary", json!({NGINX_CANARY_WEIGHT: "50"}));
        assert!(near(canary(&sb).as_ref(), 0.5));
        annotate(
            &sb,
            "catalog-canary",
            json!({NGINX_CANARY_WEIGHT_TOTAL: "200"}),
        );
        assert!(near(canary(&sb).as_ref(), 0.25));
        annotate(&sb, "catalog-canary", json!({NGINX_CANARY_WEIGHT: "500"}));
        assert!(
            near(canary(&sb).as_ref(), 1.0),
            "weight capped at the total"
        );
        // Not a number: 0, and no panic.
        annotate(
            &sb,
            "catalog-canary",
            json!({NGINX_CANARY_WEIGHT: "ten", NGINX_CANARY_WEIGHT_TOTAL: "lots"}),
        );
        assert_eq!(canary(&sb), None);
        assert!(near(shares(&sb, "production", "catalog").get("7.0.3"), 1.0));
        annotate(&sb, "catalog-canary", json!({NGINX_CANARY_WEIGHT: "30"}));
        assert!(near(canary(&sb).as_ref(), 0.3));
        // canary "false" (or missing): the Ingress is not a canary and is ignored.
        annotate(&sb, "catalog-canary", json!({NGINX_CANARY: "false"}));
        assert_eq!(canary(&sb), None);
        annotate(&sb, "catalog-canary", json!({NGINX_CANARY: null}));
        assert_eq!(canary(&sb), None);
    }

    #[test]
    fn nginx_weights_parse_like_ingress_nginx() {
        let ing = |a: Value| json!({"metadata": {"annotations": a}});
        assert_eq!(nginx_canary_weight(&ing(json!({}))), (0.0, 100.0));
        assert_eq!(
            nginx_canary_weight(&ing(json!({NGINX_CANARY_WEIGHT: " 10 "}))),
            (10.0, 100.0)
        );
        assert_eq!(
            nginx_canary_weight(&ing(json!({NGINX_CANARY_WEIGHT: "-5"}))),
            (0.0, 100.0)
        );
        assert_eq!(
            nginx_canary_weight(&ing(json!({NGINX_CANARY_WEIGHT: "12.5"}))),
            (0.0, 100.0)
        );
        assert_eq!(
            nginx_canary_weight(&ing(
                json!({NGINX_CANARY_WEIGHT: "3", NGINX_CANARY_WEIGHT_TOTAL: "0"})
            )),
            (3.0, 100.0)
        );
        assert_eq!(nginx_canary_weight(&json!({})), (0.0, 100.0));
    }

    #[test]
    fn replica_ratio_follows_ready_replicas() {
        let sb = sandbox(true);
        sb.store
            .modify(
                crate::sandbox::controllers::deployments(),
                "production",
                "search-canary",
                &WriteOpts::controller("kubectl"),
                |o| {
                    o["spec"]["replicas"] = json!(3);
                    Ok(())
                },
            )
            .expect("scale");
        // New pods get traffic only once Ready.
        run_for(&sb, 1);
        assert!(near(shares(&sb, "production", "search").get("4.2.0"), 0.25));
        run_for(&sb, 10);
        assert!(near(shares(&sb, "production", "search").get("4.2.0"), 0.5));
    }

    #[test]
    fn rollout_weights_route_cart() {
        let sb = sandbox(true);
        sb.store
            .modify(
                rollouts(),
                "production",
                "cart",
                &WriteOpts::status("kubectl"),
                |o| {
                    json_merge_patch(o, &json!({"status": {"abort": true}}));
                    Ok(())
                },
            )
            .expect("abort");
        run_for(&sb, 5);
        let s = shares(&sb, "production", "cart");
        assert!(
            near(s.get("2.0.0"), 1.0) && !s.contains_key("2.1.0"),
            "{s:?}"
        );
    }
}
