//! Canary weights per router: read the current split, work out the patches for a new one.

use kube::Client;
use serde_json::{Value, json};

use super::detect::Router;
use super::{ActionError, ArgoVerb, Goal, Plan, Res, Write, blank, get, str_at};

const NGINX_CANARY: &str = "nginx.ingress.kubernetes.io/canary";
const NGINX_WEIGHT: &str = "nginx.ingress.kubernetes.io/canary-weight";
const NGINX_TOTAL: &str = "nginx.ingress.kubernetes.io/canary-weight-total";
const NGINX_RULES: &[&str] = &[
    "nginx.ingress.kubernetes.io/canary-by-header",
    "nginx.ingress.kubernetes.io/canary-by-header-value",
    "nginx.ingress.kubernetes.io/canary-by-header-pattern",
    "nginx.ingress.kubernetes.io/canary-by-cookie",
];

fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// Refuse objects a controller rewrites (Argo Rollouts or Flagger own the route/ingress).
pub(super) fn refuse_if_controlled(o: &Value, kind: &str) -> Result<(), ActionError> {
    let name = super::name_of(o);
    for owner in o
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let api = owner
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let okind = owner.get("kind").and_then(Value::as_str).unwrap_or("");
        let oname = owner.get("name").and_then(Value::as_str).unwrap_or("");
        let who = if api.starts_with("argoproj.io/") {
            Some("Argo Rollouts")
        } else if api.starts_with("flagger.app/") {
            Some("Flagger")
        } else {
            None
        };
        if let Some(who) = who {
            return Err(ActionError::Refused(format!(
                "{kind}/{name} is managed by {who} ({okind}/{oname}), which would overwrite the weight: drive {okind}/{oname} instead"
            )));
        }
    }
    let managed_by = o
        .pointer("/metadata/labels/app.kubernetes.io~1managed-by")
        .and_then(Value::as_str);
    let flagger_annotation = o
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.keys().any(|k| k.starts_with("flagger.app/")));
    if managed_by == Some("flagger") || flagger_annotation {
        return Err(ActionError::Refused(format!(
            "{kind}/{name} is managed by Flagger, which would overwrite the weight: drive its Canary instead"
        )));
    }
    Ok(())
}

/// Replicas of a Deployment's spec.
fn replicas(d: &Value) -> i64 {
    d.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// The replica split that comes closest to `percent` with `total` pods: (stable, canary).
/// Any weight above 0 keeps at least one canary pod, any weight below 100 one stable pod.
fn ratio_split(total: i64, percent: u32) -> (i64, i64) {
    let mut canary = (total * i64::from(percent) + 50) / 100;
    if percent > 0 && canary == 0 {
        canary = 1;
    }
    if percent < 100 && canary == total && total > 1 {
        canary = total - 1;
    }
    let canary = canary.clamp(0, total);
    (total - canary, canary)
}

pub(super) fn pct(part: i64, total: i64) -> f64 {
    if total <= 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

fn fmt_pct(p: f64) -> String {
    if (p - p.round()).abs() < 0.05 {
        format!("{} %", p.round() as i64)
    } else {
        format!("{p:.1} %")
    }
}

/// Weight of a backendRef (Gateway API default: 1).
fn ref_weight(b: &Value) -> i64 {
    b.get("weight").and_then(Value::as_i64).unwrap_or(1).max(0)
}

fn route_rule<'a>(
    route: &'a Value,
    rule: usize,
    name: &str,
) -> Result<&'a Vec<Value>, ActionError> {
    route
        .pointer(&format!("/spec/rules/{rule}/backendRefs"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ActionError::Refused(format!(
                "HTTPRoute/{name} has no rule {rule} with backendRefs"
            ))
        })
}

/// The canary's share of traffic now, in percent.
pub async fn current(client: &Client, ns: &str, router: &Router) -> Result<f64, ActionError> {
    Ok(match router {
        Router::ReplicaRatio { stable, canary, .. } => {
            let s = replicas(&get(client, ns, &Res::DEPLOYMENT, stable).await?);
            let c = replicas(&get(client, ns, &Res::DEPLOYMENT, canary).await?);
            pct(c, s + c)
        }
        Router::HttpRoute {
            route,
            rule,
            canary,
            ..
        } => {
            let r = get(client, ns, &Res::HTTPROUTE, route).await?;
            let refs = route_rule(&r, *rule, route)?;
            let total: i64 = refs.iter().map(ref_weight).sum();
            let c: i64 = refs
                .iter()
                .filter(|b| b.get("name").and_then(Value::as_str) == Some(canary))
                .map(ref_weight)
                .sum();
            pct(c, total)
        }
        Router::Nginx { ingress } => {
            let i = get(client, ns, &Res::INGRESS, ingress).await?;
            let (w, total) = nginx_weight(&i, ingress)?;
            pct(w, total)
        }
        Router::Argo { rollout } => {
            let r = get(client, ns, &Res::ROLLOUT, rollout).await?;
            argo_weight(&r) as f64
        }
        Router::Traefik { .. } | Router::Istio { .. } => {
            super::mesh::current(client, ns, router).await?
        }
    })
}

/// The next configured step above the current weight (for replica ratio: the next step that
/// changes the pod split).
pub async fn next_step_goal(
    client: &Client,
    ns: &str,
    router: &Router,
    steps: &[u32],
) -> Result<Goal, ActionError> {
    if let Router::Argo { rollout } = router {
        let r = get(client, ns, &Res::ROLLOUT, rollout).await?;
        let idx = r
            .pointer("/status/currentStepIndex")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if r.pointer("/status/abort").and_then(Value::as_bool) == Some(true) {
            return Ok(Goal::Argo(ArgoVerb::Retry));
        }
        let n = argo_steps(&r).len() as i64;
        if idx >= n && argo_weight(&r) == 0 {
            return Err(ActionError::Refused(format!(
                "Rollout/{rollout} has no update in progress: nothing to promote"
            )));
        }
        return Ok(Goal::Argo(ArgoVerb::Promote { to_step: idx + 1 }));
    }
    let steps: Vec<u32> = if steps.is_empty() {
        vec![5, 10, 25, 50, 100]
    } else {
        steps.to_vec()
    };
    let now = current(client, ns, router).await?;
    let ratio_total = match router {
        Router::ReplicaRatio { stable, canary, .. } => Some(
            replicas(&get(client, ns, &Res::DEPLOYMENT, stable).await?)
                + replicas(&get(client, ns, &Res::DEPLOYMENT, canary).await?),
        ),
        _ => None,
    };
    let next = steps.iter().copied().find(|s| match ratio_total {
        Some(total) => pct(ratio_split(total, *s).1, total) > now + 0.01,
        None => f64::from(*s) > now + 0.01,
    });
    match next {
        Some(percent) => Ok(Goal::Weight { percent }),
        None => Err(ActionError::Refused(format!(
            "the canary already takes {} of the traffic: nothing to promote",
            fmt_pct(now)
        ))),
    }
}

fn nginx_weight(i: &Value, name: &str) -> Result<(i64, i64), ActionError> {
    let parse = |key: &str, default: i64| -> Result<i64, ActionError> {
        match annotation(i, key) {
            None => Ok(default),
            Some(v) => v.trim().parse::<i64>().map_err(|_| {
                ActionError::Refused(format!(
                    "Ingress/{name}: annotation {key} is {v:?}, not a whole number: fix it before stepping the weight"
                ))
            }),
        }
    };
    let total = parse(NGINX_TOTAL, 100)?;
    if total <= 0 {
        return Err(ActionError::Refused(format!(
            "Ingress/{name}: {NGINX_TOTAL} must be positive"
        )));
    }
    Ok((parse(NGINX_WEIGHT, 0)?.clamp(0, total), total))
}

/// New weights: the canary entries get `p`, the others share the rest in proportion to their
/// weights (the last one takes the rounding), so the sum is exactly 100.
pub(super) fn reweigh(weights: &[i64], is_canary: impl Fn(usize) -> bool, p: i64) -> Vec<i64> {
    let others: i64 = (0..weights.len())
        .filter(|i| !is_canary(*i))
        .map(|i| weights[i])
        .sum();
    let n_others = (0..weights.len()).filter(|i| !is_canary(*i)).count();
    let mut left = 100 - p;
    let mut seen = 0;
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if is_canary(i) {
                return p;
            }
            seen += 1;
            let share = if seen == n_others {
                left
            } else if others > 0 {
                (100 - p) * w / others
            } else {
                (100 - p) / n_others.max(1) as i64
            };
            left -= share;
            share
        })
        .collect()
}

/// Plan the canary weight `percent` through a weight-taking router.
pub async fn plan(
    client: &Client,
    ns: &str,
    router: &Router,
    percent: u32,
) -> Result<Plan, ActionError> {
    let goal = Goal::Weight { percent };
    match router {
        Router::Traefik { .. } | Router::Istio { .. } => {
            super::mesh::plan(client, ns, router, percent).await
        }
        Router::HttpRoute {
            route,
            rule,
            canary,
            ..
        } => {
            let r = get(client, ns, &Res::HTTPROUTE, route).await?;
            refuse_if_controlled(&r, "HTTPRoute")?;
            let refs = route_rule(&r, *rule, route)?;
            let is_canary = |b: &Value| b.get("name").and_then(Value::as_str) == Some(canary);
            let total: i64 = refs.iter().map(ref_weight).sum();
            let canary_now: i64 = refs.iter().filter(|b| is_canary(b)).map(ref_weight).sum();
            let p = i64::from(percent.min(100));
            let old: Vec<i64> = refs.iter().map(ref_weight).collect();
            let new = reweigh(&old, |i| is_canary(&refs[i]), p);
            let mut new_refs = Vec::new();
            let mut changes = Vec::new();
            for (b, w) in refs.iter().zip(new) {
                let mut nb = b.clone();
                nb["weight"] = json!(w);
                let name = b.get("name").and_then(Value::as_str).unwrap_or("?");
                changes.push(format!("{name} {} → {w}", ref_weight(b)));
                new_refs.push(nb);
            }
            let mut plan = blank(&r, "HTTPRoute", goal);
            plan.changes = vec![format!(
                "HTTPRoute/{route} rule {rule} weights: {}",
                changes.join(", ")
            )];
            let before_pct = pct(canary_now, total);
            plan.before = json!({"canary_weight": before_pct.round() as i64,
                "weights": refs.iter().map(|b| json!({"name": b.get("name"), "weight": ref_weight(b)})).collect::<Vec<_>>()});
            plan.after = json!({"canary_weight": p,
                "weights": new_refs.iter().map(|b| json!({"name": b.get("name"), "weight": ref_weight(b)})).collect::<Vec<_>>()});
            plan.noop = refs == &new_refs;
            let mut rules = r.pointer("/spec/rules").cloned().unwrap_or_default();
            rules[*rule]["backendRefs"] = Value::Array(new_refs);
            plan.writes = vec![Write::merge(
                Res::HTTPROUTE,
                &r,
                json!({"spec": {"rules": rules}}),
            )];
            Ok(plan)
        }
        Router::Nginx { ingress } => {
            let i = get(client, ns, &Res::INGRESS, ingress).await?;
            refuse_if_controlled(&i, "Ingress")?;
            if annotation(&i, NGINX_CANARY) != Some("true") {
                return Err(ActionError::Refused(format!(
                    "Ingress/{ingress} is not an ingress-nginx canary ({NGINX_CANARY} is not \"true\")"
                )));
            }
            let (w, total) = nginx_weight(&i, ingress)?;
            let new = (total * i64::from(percent.min(100)) + 50) / 100;
            let mut plan = blank(&i, "Ingress", goal);
            plan.changes = vec![format!(
                "Ingress/{ingress} annotation {NGINX_WEIGHT}: \"{w}\" → \"{new}\"{}",
                if total == 100 {
                    String::new()
                } else {
                    format!(" (of {total})")
                }
            )];
            plan.before = json!({"canary_weight": pct(w, total).round() as i64, "annotation": w.to_string()});
            plan.after = json!({"canary_weight": pct(new, total).round() as i64, "annotation": new.to_string()});
            plan.noop = w == new && annotation(&i, NGINX_WEIGHT).is_some();
            for rule in NGINX_RULES {
                if let Some(v) = annotation(&i, rule) {
                    plan.warnings.push(format!(
                        "{rule}={v:?} is set: requests matching it go to the canary whatever the weight"
                    ));
                }
            }
            plan.writes = vec![Write::merge(
                Res::INGRESS,
                &i,
                json!({"metadata": {"annotations": {NGINX_WEIGHT: new.to_string()}}}),
            )];
            Ok(plan)
        }
        Router::ReplicaRatio {
            stable,
            canary,
            service,
        } => {
            let s = get(client, ns, &Res::DEPLOYMENT, stable).await?;
            let c = get(client, ns, &Res::DEPLOYMENT, canary).await?;
            refuse_if_controlled(&s, "Deployment")?;
            refuse_if_controlled(&c, "Deployment")?;
            let (sr, cr) = (replicas(&s), replicas(&c));
            let total = sr + cr;
            if total <= 0 {
                return Err(ActionError::Refused(format!(
                    "Deployment/{stable} and Deployment/{canary} are both scaled to 0: no replica ratio to change"
                )));
            }
            let (ns_, nc) = ratio_split(total, percent);
            let mut plan = blank(&c, "Deployment", goal);
            plan.object = format!("Service/{service}");
            plan.changes = vec![
                format!("Deployment/{canary} replicas: {cr} → {nc}"),
                format!("Deployment/{stable} replicas: {sr} → {ns_}"),
            ];
            let achieved = pct(nc, total);
            if (achieved - f64::from(percent)).abs() > 0.5 {
                plan.warnings.push(format!(
                    "replica ratio: with {total} pods the nearest split to {percent} % is {nc} of {total} ({})",
                    fmt_pct(achieved)
                ));
            }
            plan.before = json!({"canary_weight": pct(cr, total).round() as i64, "replicas": {stable: sr, canary: cr}});
            plan.after = json!({"canary_weight": achieved.round() as i64, "replicas": {stable: ns_, canary: nc}});
            plan.noop = (sr, cr) == (ns_, nc);
            let w_c = Write::merge(Res::DEPLOYMENT, &c, json!({"spec": {"replicas": nc}}));
            let w_s = Write::merge(Res::DEPLOYMENT, &s, json!({"spec": {"replicas": ns_}}));
            // Grow before shrinking, so capacity never dips.
            plan.writes = if nc >= cr { vec![w_c, w_s] } else { vec![w_s, w_c] };
            // The Service is what the operator thinks of; the Event goes on the canary.
            plan.object_uid = str_at(&c, "/metadata/uid").unwrap_or_default().to_string();
            plan.object_api_version = "apps/v1".into();
            plan.object = format!("Deployment/{canary}");
            Ok(plan)
        }
        Router::Argo { rollout } => {
            plan_argo(
                client,
                ns,
                rollout,
                if percent >= 100 {
                    ArgoVerb::PromoteFull
                } else if percent == 0 {
                    ArgoVerb::Abort
                } else {
                    return Err(ActionError::Refused(format!(
                        "Rollout/{rollout} takes its weights from its own steps: promote moves to the next step"
                    )));
                },
            )
            .await
        }
    }
}

fn argo_steps(r: &Value) -> Vec<Value> {
    r.pointer("/spec/strategy/canary/steps")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn argo_weight(r: &Value) -> i64 {
    r.pointer("/status/canary/weights/canary/weight")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The weight the Rollout reaches at step index `to` (the last setWeight at or before it).
fn argo_weight_at(steps: &[Value], to: i64) -> i64 {
    if to >= steps.len() as i64 {
        return 100;
    }
    steps
        .iter()
        .take((to + 1).max(0) as usize)
        .filter_map(|s| s.get("setWeight").and_then(Value::as_i64))
        .next_back()
        .unwrap_or(0)
}

/// The kubectl-argo-rollouts plugin's verbs, as patches of the Rollout.
pub async fn plan_argo(
    client: &Client,
    ns: &str,
    rollout: &str,
    verb: ArgoVerb,
) -> Result<Plan, ActionError> {
    let r = get(client, ns, &Res::ROLLOUT, rollout).await?;
    let steps = argo_steps(&r);
    let n = steps.len() as i64;
    let idx = r
        .pointer("/status/currentStepIndex")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let weight = argo_weight(&r);
    let spec_paused = r.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    let pause_conditions = r
        .pointer("/status/pauseConditions")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let aborted = r.pointer("/status/abort").and_then(Value::as_bool) == Some(true);
    let phase = str_at(&r, "/status/phase").unwrap_or("").to_string();
    let mut plan = blank(&r, "Rollout", Goal::Argo(verb));
    plan.before = json!({"step": idx, "canary_weight": weight, "paused": spec_paused || pause_conditions, "aborted": aborted});
    let status = |body: Value| Write {
        subresource: Some("status"),
        ..Write::merge(Res::ROLLOUT, &r, body)
    };
    let unpause = Write::merge(Res::ROLLOUT, &r, json!({"spec": {"paused": false}}));
    let step_text = |i: i64| {
        if i >= n {
            format!("all {n} steps done")
        } else {
            format!("step {} of {n}", i + 1)
        }
    };
    match verb {
        ArgoVerb::Promote { to_step } => {
            if aborted {
                return Err(ActionError::Refused(format!(
                    "Rollout/{rollout} was aborted: retry it first"
                )));
            }
            let target = argo_weight_at(&steps, to_step);
            plan.after = json!({"step": to_step, "canary_weight": target, "paused": false, "aborted": false});
            plan.changes = vec![format!(
                "Rollout/{rollout}: {} → {} (canary weight {weight} % → {target} %)",
                step_text(idx),
                step_text(to_step)
            )];
            if pause_conditions || spec_paused {
                plan.changes
                    .push("status.pauseConditions cleared (the plugin's promote)".into());
                if pause_conditions {
                    plan.writes
                        .push(status(json!({"status": {"pauseConditions": null}})));
                }
                if spec_paused {
                    plan.writes.push(unpause);
                }
            } else {
                plan.changes
                    .push(format!("status.currentStepIndex: {idx} → {to_step}"));
                plan.writes
                    .push(status(json!({"status": {"currentStepIndex": to_step}})));
            }
        }
        ArgoVerb::PromoteFull => {
            plan.after =
                json!({"step": n, "canary_weight": 100, "paused": false, "aborted": false});
            plan.changes = vec![format!(
                "Rollout/{rollout}: skip to the end, canary weight {weight} % → 100 % (status.promoteFull: true)"
            )];
            plan.noop = phase == "Healthy" && weight == 0 && idx >= n;
            if plan.noop {
                plan.changes = vec![format!(
                    "Rollout/{rollout} is Healthy with no update in progress: nothing to promote"
                )];
            }
            plan.writes
                .push(status(json!({"status": {"promoteFull": true}})));
            if spec_paused {
                plan.writes.push(unpause);
            }
        }
        ArgoVerb::Abort => {
            plan.after = json!({"step": idx, "canary_weight": 0, "paused": spec_paused || pause_conditions, "aborted": true});
            plan.changes = vec![format!(
                "Rollout/{rollout}: abort, canary weight {weight} % → 0 %, back to the stable ReplicaSet (status.abort: true)"
            )];
            plan.noop = aborted;
            plan.writes.push(status(json!({"status": {"abort": true}})));
        }
        ArgoVerb::Retry => {
            plan.after = json!({"step": 0, "canary_weight": argo_weight_at(&steps, 0), "paused": false, "aborted": false});
            plan.changes = vec![format!(
                "Rollout/{rollout}: retry the aborted update from step 1 (status.abort: false)"
            )];
            plan.writes
                .push(status(json!({"status": {"abort": false}})));
        }
    }
    if plan.noop {
        plan.writes.clear();
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_ratio_rounds_and_keeps_a_pod_on_each_side() {
        assert_eq!(ratio_split(4, 5), (3, 1));
        assert_eq!(ratio_split(4, 25), (3, 1));
        assert_eq!(ratio_split(4, 50), (2, 2));
        assert_eq!(ratio_split(4, 99), (1, 3));
        assert_eq!(ratio_split(4, 100), (0, 4));
        assert_eq!(ratio_split(4, 0), (4, 0));
        assert_eq!(ratio_split(1, 50), (0, 1));
    }

    #[test]
    fn argo_weight_follows_the_last_set_weight() {
        let steps: Vec<Value> = serde_json::from_value(json!([
            {"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "30s"}}, {"setWeight": 100}
        ]))
        .unwrap_or_default();
        assert_eq!(argo_weight_at(&steps, 0), 20);
        assert_eq!(argo_weight_at(&steps, 1), 20);
        assert_eq!(argo_weight_at(&steps, 2), 50);
        assert_eq!(argo_weight_at(&steps, 5), 100);
    }

    #[test]
    fn controlled_routes_are_refused() {
        let r = json!({"metadata": {"name": "x", "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "cart"}]}});
        let e = refuse_if_controlled(&r, "HTTPRoute")
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("Argo Rollouts (Rollout/cart)")));
        let f = json!({"metadata": {"name": "x", "annotations": {"flagger.app/primary": "x"}}});
        assert!(refuse_if_controlled(&f, "Ingress").is_err());
        assert!(refuse_if_controlled(&json!({"metadata": {"name": "x"}}), "Ingress").is_ok());
    }
}
