//! Traefik weighted services and Istio virtual services: finding the app's split and writing
//! new weights.
//!
//! Traefik (`traefik.io/v1alpha1`, and the older `traefik.containo.us/v1alpha1`)
//! `TraefikService` with `spec.weighted.services[].weight`: proportional like Gateway API.
//! Istio (`networking.istio.io/v1`, `v1beta1`) `VirtualService` with `spec.http[].route[]`
//! destinations (a host, optionally a subset from a `DestinationRule`) whose weights sum to 100.

use kube::Client;
use serde_json::{Value, json};

use super::detect::Router;
use super::weights::{pct, refuse_if_controlled, reweigh};
use super::{ActionError, Goal, Plan, Res, Write, blank, get, list, name_of, str_at};

pub const TRAEFIK: [Res; 2] = [
    Res::new(
        "traefik.io",
        "v1alpha1",
        "TraefikService",
        "traefikservices",
    ),
    Res::new(
        "traefik.containo.us",
        "v1alpha1",
        "TraefikService",
        "traefikservices",
    ),
];

pub const ISTIO: [Res; 2] = [
    Res::new(
        "networking.istio.io",
        "v1",
        "VirtualService",
        "virtualservices",
    ),
    Res::new(
        "networking.istio.io",
        "v1beta1",
        "VirtualService",
        "virtualservices",
    ),
];

pub const DESTINATION_RULES: [Res; 2] = [
    Res::new(
        "networking.istio.io",
        "v1",
        "DestinationRule",
        "destinationrules",
    ),
    Res::new(
        "networking.istio.io",
        "v1beta1",
        "DestinationRule",
        "destinationrules",
    ),
];

/// The first version/group of `kinds` the cluster serves, with its objects.
async fn first_served(
    client: &Client,
    ns: &str,
    kinds: &[Res],
) -> Result<Option<(Res, Vec<Value>)>, ActionError> {
    for res in kinds {
        let items = list(client, ns, res, None).await?;
        if !items.is_empty() {
            return Ok(Some((res.clone(), items)));
        }
    }
    Ok(None)
}

/// A TraefikService splitting between a stable-only and a canary-only Service.
pub async fn find_traefik(
    client: &Client,
    ns: &str,
    stable_svcs: &[String],
    canary_svcs: &[String],
) -> Result<Option<Router>, ActionError> {
    for res in &TRAEFIK {
        for ts in list(client, ns, res, None).await? {
            let names: Vec<&str> = ts
                .pointer("/spec/weighted/services")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| s.get("name").and_then(Value::as_str))
                .collect();
            let s = names.iter().find(|n| stable_svcs.iter().any(|x| x == *n));
            let c = names.iter().find(|n| canary_svcs.iter().any(|x| x == *n));
            if let (Some(s), Some(c)) = (s, c) {
                return Ok(Some(Router::Traefik {
                    res: res.clone(),
                    service: name_of(&ts).to_string(),
                    stable: s.to_string(),
                    canary: c.to_string(),
                }));
            }
        }
    }
    Ok(None)
}

/// The short Service name of an Istio destination host (`checkout-canary.shop.svc.cluster.local`).
fn host_service(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// Subset name → labels, from the DestinationRules for `service`.
fn subsets<'a>(rules: &'a [Value], service: &str) -> Vec<(&'a str, &'a Value)> {
    rules
        .iter()
        .filter(|r| str_at(r, "/spec/host").is_some_and(|h| host_service(h) == service))
        .flat_map(|r| {
            r.pointer("/spec/subsets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| {
                    Some((
                        s.get("name").and_then(Value::as_str)?,
                        s.get("labels").unwrap_or(&Value::Null),
                    ))
                })
        })
        .collect()
}

/// Which track a destination sends to: `Some(true)` canary, `Some(false)` stable.
#[allow(clippy::too_many_arguments)]
fn track_of(
    dest: &Value,
    rules: &[Value],
    stable_svcs: &[String],
    canary_svcs: &[String],
    shared_svcs: &[String],
    stable_labels: &Value,
    canary_labels: &Value,
) -> Option<bool> {
    let svc = host_service(str_at(dest, "/host")?);
    match str_at(dest, "/subset") {
        None => {
            if canary_svcs.iter().any(|s| s == svc) {
                Some(true)
            } else if stable_svcs.iter().any(|s| s == svc) {
                Some(false)
            } else {
                None
            }
        }
        Some(subset) => {
            // Only a host that is one of the app's own Services.
            if !stable_svcs
                .iter()
                .chain(canary_svcs)
                .chain(shared_svcs)
                .any(|s| s == svc)
            {
                return None;
            }
            let labels = subsets(rules, svc)
                .into_iter()
                .find(|(n, _)| *n == subset)
                .map(|(_, l)| l)?;
            let picks = |tmpl: &Value| {
                labels
                    .as_object()
                    .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| tmpl.get(k) == Some(v)))
            };
            match (picks(canary_labels), picks(stable_labels)) {
                (true, false) => Some(true),
                (false, true) => Some(false),
                _ => None,
            }
        }
    }
}

/// A VirtualService http route with one stable and one canary destination.
pub async fn find_istio(
    client: &Client,
    ns: &str,
    stable: &Value,
    canary: &Value,
    stable_svcs: &[String],
    canary_svcs: &[String],
    shared_svcs: &[String],
) -> Result<Option<Router>, ActionError> {
    let Some((res, vss)) = first_served(client, ns, &ISTIO).await? else {
        return Ok(None);
    };
    let rules = first_served(client, ns, &DESTINATION_RULES)
        .await?
        .map(|(_, r)| r)
        .unwrap_or_default();
    let labels = |d: &Value| {
        d.pointer("/spec/template/metadata/labels")
            .cloned()
            .unwrap_or(Value::Null)
    };
    let (sl, cl) = (labels(stable), labels(canary));
    for vs in &vss {
        for (i, http) in vs
            .pointer("/spec/http")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let routes = http.get("route").and_then(Value::as_array);
            // A route to the app's Services naming a subset no DestinationRule defines is
            // broken: say so rather than fall back to another router.
            for r in routes.into_iter().flatten() {
                let (Some(host), Some(subset)) = (
                    str_at(r, "/destination/host"),
                    str_at(r, "/destination/subset"),
                ) else {
                    continue;
                };
                let svc = host_service(host);
                let ours = [stable_svcs, canary_svcs, shared_svcs]
                    .iter()
                    .any(|l| l.iter().any(|s| s == svc));
                if ours && !subsets(&rules, svc).iter().any(|(n, _)| *n == subset) {
                    return Err(ActionError::Refused(format!(
                        "VirtualService/{}: subset {subset} of {host} is not defined in any DestinationRule",
                        name_of(vs)
                    )));
                }
            }
            let tracks: Vec<Option<bool>> = routes
                .into_iter()
                .flatten()
                .map(|r| {
                    r.get("destination").and_then(|d| {
                        track_of(d, &rules, stable_svcs, canary_svcs, shared_svcs, &sl, &cl)
                    })
                })
                .collect();
            let s = tracks.iter().position(|t| *t == Some(false));
            let c = tracks.iter().position(|t| *t == Some(true));
            if let (Some(s), Some(c)) = (s, c) {
                return Ok(Some(Router::Istio {
                    res: res.clone(),
                    service: name_of(vs).to_string(),
                    http: i,
                    stable: s,
                    canary: c,
                }));
            }
        }
    }
    Ok(None)
}

/// The canary's share now (percent).
pub async fn current(client: &Client, ns: &str, router: &Router) -> Result<f64, ActionError> {
    match router {
        Router::Traefik {
            res,
            service,
            canary,
            ..
        } => {
            let ts = get(client, ns, res, service).await?;
            let (svcs, _) = traefik_services(&ts, service)?;
            let total: i64 = svcs.iter().map(|(_, w)| *w).sum();
            let c: i64 = svcs
                .iter()
                .filter(|(n, _)| n == canary)
                .map(|(_, w)| *w)
                .sum();
            Ok(pct(c, total))
        }
        Router::Istio {
            res,
            service,
            http,
            canary,
            ..
        } => {
            let vs = get(client, ns, res, service).await?;
            let weights = istio_weights(&vs, service, *http)?;
            Ok(weights.get(*canary).copied().unwrap_or(0) as f64)
        }
        _ => Ok(0.0),
    }
}

/// `(name, weight)` of each weighted service, and the raw entries.
type Weighted = (Vec<(String, i64)>, Vec<Value>);

/// `(name, weight)` of a TraefikService's weighted services; every weight must be given.
fn traefik_services(ts: &Value, name: &str) -> Result<Weighted, ActionError> {
    let list = ts
        .pointer("/spec/weighted/services")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| {
            ActionError::Refused(format!(
                "TraefikService/{name} has no spec.weighted.services: not a weighted split"
            ))
        })?;
    let mut out = Vec::new();
    for s in &list {
        let n = s.get("name").and_then(Value::as_str).unwrap_or("?");
        let w = s.get("weight").and_then(Value::as_i64).ok_or_else(|| {
            ActionError::Refused(format!(
                "TraefikService/{name}: service {n} has no weight: fix the object before stepping"
            ))
        })?;
        if w < 0 {
            return Err(ActionError::Refused(format!(
                "TraefikService/{name}: service {n} has a negative weight {w}"
            )));
        }
        out.push((n.to_string(), w));
    }
    Ok((out, list))
}

/// The weights of `spec.http[http].route[]`, checked: all given (or one destination alone),
/// summing to 100.
fn istio_weights(vs: &Value, name: &str, http: usize) -> Result<Vec<i64>, ActionError> {
    let routes = vs
        .pointer(&format!("/spec/http/{http}/route"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ActionError::Refused(format!("VirtualService/{name} has no http[{http}].route"))
        })?;
    if routes.len() == 1 {
        return Ok(vec![
            routes[0]
                .get("weight")
                .and_then(Value::as_i64)
                .unwrap_or(100),
        ]);
    }
    let mut weights = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        let w = r.get("weight").and_then(Value::as_i64).ok_or_else(|| {
            ActionError::Refused(format!(
                "VirtualService/{name}: http[{http}].route[{i}] has no weight: fix the object before stepping"
            ))
        })?;
        weights.push(w);
    }
    let sum: i64 = weights.iter().sum();
    if sum != 100 {
        return Err(ActionError::Refused(format!(
            "VirtualService/{name}: http[{http}] route weights sum to {sum}, not 100: fix the object before stepping"
        )));
    }
    Ok(weights)
}

/// Plan canary weight `percent` on a TraefikService or VirtualService.
pub async fn plan(
    client: &Client,
    ns: &str,
    router: &Router,
    percent: u32,
) -> Result<Plan, ActionError> {
    let p = i64::from(percent.min(100));
    match router {
        Router::Traefik {
            res,
            service,
            canary,
            ..
        } => {
            let ts = get(client, ns, res, service).await?;
            refuse_if_controlled(&ts, "TraefikService")?;
            let (svcs, raw) = traefik_services(&ts, service)?;
            let Some(ci) = svcs.iter().position(|(n, _)| n == canary) else {
                return Err(ActionError::Refused(format!(
                    "TraefikService/{service} no longer sends to {canary}"
                )));
            };
            let weights: Vec<i64> = svcs.iter().map(|(_, w)| *w).collect();
            let total: i64 = weights.iter().sum();
            let new = reweigh(&weights, |i| i == ci, p);
            let mut plan = blank(&ts, "TraefikService", Goal::Weight { percent });
            plan.changes = vec![format!(
                "TraefikService/{service} weights: {}",
                svcs.iter()
                    .zip(&new)
                    .map(|((n, w), nw)| format!("{n} {w} → {nw}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )];
            let named = |ws: &[i64]| {
                svcs.iter()
                    .zip(ws)
                    .map(|((n, _), w)| json!({"name": n, "weight": w}))
                    .collect::<Vec<_>>()
            };
            plan.before = json!({"canary_weight": pct(weights[ci], total).round() as i64, "weights": named(&weights)});
            plan.after = json!({"canary_weight": p, "weights": named(&new)});
            plan.noop = weights == new;
            let services: Vec<Value> = raw
                .into_iter()
                .zip(&new)
                .map(|(mut s, w)| {
                    s["weight"] = json!(w);
                    s
                })
                .collect();
            plan.writes = vec![Write::merge(
                res.clone(),
                &ts,
                json!({"spec": {"weighted": {"services": services}}}),
            )];
            Ok(plan)
        }
        Router::Istio {
            res,
            service,
            http,
            canary,
            ..
        } => {
            let vs = get(client, ns, res, service).await?;
            refuse_if_controlled(&vs, "VirtualService")?;
            let weights = istio_weights(&vs, service, *http)?;
            let mut https = vs.pointer("/spec/http").cloned().unwrap_or_default();
            let routes = https[*http]["route"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            // Every subset a destination names must exist.
            let rules = first_served(client, ns, &DESTINATION_RULES)
                .await?
                .map(|(_, r)| r)
                .unwrap_or_default();
            for r in &routes {
                if let (Some(host), Some(subset)) = (
                    str_at(r, "/destination/host"),
                    str_at(r, "/destination/subset"),
                ) && !subsets(&rules, host_service(host))
                    .iter()
                    .any(|(n, _)| *n == subset)
                {
                    return Err(ActionError::Refused(format!(
                        "VirtualService/{service}: subset {subset} of {host} is not defined in any DestinationRule"
                    )));
                }
            }
            let new = reweigh(&weights, |i| i == *canary, p);
            let label = |r: &Value| {
                let host = str_at(r, "/destination/host").unwrap_or("?");
                match str_at(r, "/destination/subset") {
                    Some(s) => format!("{}/{s}", host_service(host)),
                    None => host_service(host).to_string(),
                }
            };
            let mut plan = blank(&vs, "VirtualService", Goal::Weight { percent });
            plan.changes = vec![format!(
                "VirtualService/{service} http[{http}] weights: {}",
                routes
                    .iter()
                    .zip(weights.iter().zip(&new))
                    .map(|(r, (w, nw))| format!("{} {w} → {nw}", label(r)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )];
            let named = |ws: &[i64]| {
                routes
                    .iter()
                    .zip(ws)
                    .map(|(r, w)| json!({"destination": label(r), "weight": w}))
                    .collect::<Vec<_>>()
            };
            plan.before = json!({"canary_weight": weights.get(*canary).copied().unwrap_or(0), "weights": named(&weights)});
            plan.after = json!({"canary_weight": p, "weights": named(&new)});
            plan.noop = weights == new;
            for (r, w) in https[*http]["route"]
                .as_array_mut()
                .into_iter()
                .flatten()
                .zip(&new)
            {
                r["weight"] = json!(w);
            }
            plan.writes = vec![Write::merge(
                res.clone(),
                &vs,
                json!({"spec": {"http": https}}),
            )];
            Ok(plan)
        }
        _ => Err(ActionError::Refused("not a Traefik or Istio router".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reweigh_keeps_the_sum_at_100() {
        assert_eq!(reweigh(&[90, 10], |i| i == 1, 25), [75, 25]);
        assert_eq!(reweigh(&[50, 25, 25], |i| i == 2, 50), [33, 17, 50]);
        assert_eq!(reweigh(&[0, 100], |i| i == 1, 0), [100, 0]);
    }

    #[test]
    fn istio_weights_must_be_given_and_sum_to_100() {
        let ok = json!({"spec": {"http": [{"route": [{"weight": 80}, {"weight": 20}]}]}});
        assert_eq!(istio_weights(&ok, "r", 0).ok(), Some(vec![80, 20]));
        let missing = json!({"spec": {"http": [{"route": [{"weight": 80}, {}]}]}});
        assert!(
            istio_weights(&missing, "r", 0)
                .err()
                .is_some_and(|e| e.to_string().contains("route[1] has no weight"))
        );
        let bad = json!({"spec": {"http": [{"route": [{"weight": 80}, {"weight": 30}]}]}});
        assert!(
            istio_weights(&bad, "r", 0)
                .err()
                .is_some_and(|e| e.to_string().contains("sum to 110, not 100"))
        );
    }

    #[test]
    fn subsets_resolve_through_destination_rules() {
        let rules = vec![
            json!({"spec": {"host": "reviews.shop.svc.cluster.local", "subsets": [
                {"name": "v1", "labels": {"track": "stable"}},
                {"name": "v2", "labels": {"track": "canary"}}
            ]}}),
        ];
        let (sl, cl) = (
            json!({"app": "reviews", "track": "stable"}),
            json!({"app": "reviews", "track": "canary"}),
        );
        let d = |subset: &str| json!({"host": "reviews", "subset": subset});
        let shared = ["reviews".to_string()];
        assert_eq!(
            track_of(&d("v2"), &rules, &[], &[], &shared, &sl, &cl),
            Some(true)
        );
        assert_eq!(
            track_of(&d("v1"), &rules, &[], &[], &shared, &sl, &cl),
            Some(false)
        );
        assert_eq!(
            track_of(&d("v3"), &rules, &[], &[], &shared, &sl, &cl),
            None
        );
        // Another app's host with look-alike subsets is not this app's route.
        assert_eq!(track_of(&d("v2"), &rules, &[], &[], &[], &sl, &cl), None);
        let canary_host = json!({"host": "reviews-canary.shop.svc.cluster.local"});
        let canary = ["reviews-canary".to_string()];
        assert_eq!(
            track_of(&canary_host, &rules, &[], &canary, &[], &sl, &cl),
            Some(true)
        );
    }
}
