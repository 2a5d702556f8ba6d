//! Apps derived from an environment's objects: which Deployments (or Argo Rollout) form an
//! app, how it releases (canary by HTTPRoute, Traefik TraefikService, Istio VirtualService,
//! ingress-nginx canary Ingress, replica ratio or Argo Rollouts; blue/green by Service
//! selector; rolling), its versions with their traffic share, and rollout progress as
//! `kubectl rollout status` (or the Rollout's status) says.

use super::state::{
    AppView, ArgoRolloutView, DeploymentView, EnvState, IngressView, IstioDestination, Labels,
    ReplicaSetView, Role, Rollout, Router, Strategy, TraefikServiceView, VersionView,
};

/// The tag of an image reference (`latest` when it has none).
pub fn image_tag(image: &str) -> &str {
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once('@') {
        Some((_, digest)) => digest.get(..19).unwrap_or(digest),
        None => last.split_once(':').map(|(_, t)| t).unwrap_or("latest"),
    }
}

/// Whether every pair of `selector` is in `labels` (an empty selector selects nothing).
pub fn selects(selector: &Labels, labels: &Labels) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The app a workload belongs to: its pods' (else its own) `app` (or
/// `app.kubernetes.io/name`) label, else its name.
fn app_name(name: &str, template_labels: &Labels, labels: &Labels) -> String {
    ["app", "app.kubernetes.io/name"]
        .iter()
        .find_map(|k| template_labels.get(*k).or_else(|| labels.get(*k)))
        .cloned()
        .unwrap_or_else(|| name.to_string())
}

fn app_of(d: &DeploymentView) -> String {
    app_name(&d.name, &d.template_labels, &d.labels)
}

fn track_of(d: &DeploymentView) -> Option<String> {
    ["track", "version", "color", "colour"]
        .iter()
        .find_map(|k| d.template_labels.get(*k))
        .cloned()
}

/// `kubectl rollout status`, in its order of checks.
pub fn rollout(d: &DeploymentView) -> Rollout {
    if d.generation > d.observed_generation {
        return Rollout::WaitingForSpec;
    }
    if d.paused {
        return Rollout::Paused;
    }
    if let Some((reason, _)) = &d.progressing
        && reason == "ProgressDeadlineExceeded"
    {
        return Rollout::Failed(format!(
            "{} of {} updated, progress deadline exceeded",
            d.updated, d.replicas
        ));
    }
    if d.updated < d.replicas {
        return Rollout::Progressing(format!("{} of {} updated", d.updated, d.replicas));
    }
    if d.status_replicas > d.updated {
        return Rollout::Progressing(format!(
            "{} old replicas pending termination",
            d.status_replicas - d.updated
        ));
    }
    if d.available < d.updated {
        return Rollout::Progressing(format!(
            "{} of {} updated replicas available",
            d.available, d.updated
        ));
    }
    Rollout::Complete
}

fn gitops(d: &DeploymentView) -> Option<String> {
    gitops_of(&d.labels, &d.annotations)
}

fn gitops_of(labels: &Labels, annotations: &Labels) -> Option<String> {
    let has = |k: &str| labels.contains_key(k) || annotations.contains_key(k);
    if has("argocd.argoproj.io/instance") || has("argocd.argoproj.io/tracking-id") {
        Some("Argo CD".into())
    } else if has("kustomize.toolkit.fluxcd.io/name") || has("helm.toolkit.fluxcd.io/name") {
        Some("Flux".into())
    } else {
        None
    }
}

fn version(d: &DeploymentView, role: Role, weight: Option<f64>) -> VersionView {
    VersionView {
        deployment: d.name.clone(),
        role,
        track: track_of(d),
        tag: d
            .images
            .first()
            .map(|i| image_tag(i).to_string())
            .unwrap_or_default(),
        ready: d.ready,
        desired: d.replicas,
        weight,
    }
}

/// Derive the apps of an environment from its objects, sorted by name. An app with an Argo
/// Rollout is that Rollout's (as `kockpit promote` sees it), whatever Deployments share its
/// name.
pub fn apps(env: &EnvState) -> Vec<AppView> {
    let mut groups: std::collections::BTreeMap<String, Vec<&DeploymentView>> = Default::default();
    for d in env.deployments.values() {
        groups.entry(app_of(d)).or_default().push(d);
    }
    let mut rollouts: std::collections::BTreeMap<String, &ArgoRolloutView> = Default::default();
    for r in env.argo_rollouts.values() {
        rollouts
            .entry(app_name(&r.name, &r.template_labels, &r.labels))
            .or_insert(r);
    }
    let mut apps: Vec<AppView> = groups
        .into_iter()
        .filter(|(name, _)| !rollouts.contains_key(name))
        .map(|(name, ds)| app(env, name, ds))
        .collect();
    apps.extend(rollouts.into_iter().map(|(name, r)| argo_app(env, name, r)));
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    apps
}

fn app(env: &EnvState, name: String, ds: Vec<&DeploymentView>) -> AppView {
    let gitops = ds.iter().find_map(|d| gitops(d));
    let canary = ds
        .iter()
        .find(|d| track_of(d).as_deref() == Some("canary") || d.name.ends_with("-canary"))
        .copied();
    if let (Some(canary), 2) = (canary, ds.len())
        && let Some(stable) = ds.iter().find(|d| d.name != canary.name).copied()
    {
        return canary_app(env, name, stable, canary, gitops);
    }
    // Blue/green: a Service whose selector picks exactly one of several Deployments.
    if ds.len() >= 2 {
        let svc = env.services.values().find(|s| {
            s.selector.contains_key("version")
                && ds
                    .iter()
                    .filter(|d| selects(&s.selector, &d.template_labels))
                    .count()
                    == 1
        });
        if let Some(svc) = svc {
            let active = svc.selector.get("version").cloned().unwrap_or_default();
            let mut versions: Vec<VersionView> = ds
                .iter()
                .map(|d| {
                    let on = selects(&svc.selector, &d.template_labels);
                    version(
                        d,
                        if on { Role::Active } else { Role::Idle },
                        Some(if on { 100.0 } else { 0.0 }),
                    )
                })
                .collect();
            versions.sort_by_key(|v| v.role != Role::Active);
            let idle = ds
                .iter()
                .find(|d| !selects(&svc.selector, &d.template_labels))
                .copied()
                .unwrap_or(ds[0]);
            return AppView {
                name,
                strategy: Strategy::BlueGreen {
                    service: svc.name.clone(),
                    active,
                },
                versions,
                revision: idle.revision,
                rollout: rollout(idle),
                gitops,
            };
        }
    }
    let primary = ds[0];
    AppView {
        name,
        strategy: Strategy::Rolling,
        versions: ds.iter().flat_map(|d| rolling_versions(env, d)).collect(),
        revision: primary.revision,
        rollout: rollout(primary),
        gitops,
    }
}

/// The versions of a rolling Deployment's pods, the template's first (ready of the desired
/// replicas), then each older one still running (ready of its pods), newest ReplicaSet first.
/// The Deployment's own ready count would credit the new version with old pods mid-update.
/// Without any pods, the Deployment's counts stand.
fn rolling_versions(env: &EnvState, d: &DeploymentView) -> Vec<VersionView> {
    let mut new = version(d, Role::Primary, None);
    // Per older version: (ReplicaSet revision, ready, pods).
    let mut old: std::collections::BTreeMap<&str, (i64, i32, i32)> = Default::default();
    let mut new_ready = 0;
    let mut any = false;
    for p in env
        .pods
        .values()
        .filter(|p| selects(&d.selector, &p.labels))
    {
        any = true;
        if p.version == new.tag {
            new_ready += i32::from(p.ready);
            continue;
        }
        let revision = p
            .owner
            .as_ref()
            .and_then(|rs| env.replicasets.get(rs))
            .map_or(0, |rs| rs.revision);
        let entry = old.entry(&p.version).or_default();
        entry.0 = entry.0.max(revision);
        entry.1 += i32::from(p.ready);
        entry.2 += 1;
    }
    if !any {
        return vec![new];
    }
    new.ready = new_ready;
    let mut old: Vec<_> = old.into_iter().collect();
    old.sort_by_key(|(_, (revision, ..))| std::cmp::Reverse(*revision));
    let mut versions = vec![new];
    versions.extend(old.into_iter().map(|(tag, (_, ready, pods))| VersionView {
        deployment: d.name.clone(),
        role: Role::Old,
        track: None,
        tag: tag.to_string(),
        ready,
        desired: pods,
        weight: None,
    }));
    versions
}

fn canary_app(
    env: &EnvState,
    name: String,
    stable: &DeploymentView,
    canary: &DeploymentView,
    gitops: Option<String>,
) -> AppView {
    let service_for = |d: &DeploymentView| {
        env.services
            .values()
            .filter(|s| selects(&s.selector, &d.template_labels))
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
    };
    let (stable_svcs, canary_svcs) = (service_for(stable), service_for(canary));
    // In the order `kockpit promote` looks for them: an HTTPRoute splitting between a Service
    // of each track; a TraefikService weighing a stable-only and a canary-only Service; an
    // Istio VirtualService route to both tracks; an ingress-nginx canary Ingress in front of
    // a canary-only Service; one Service selecting both tracks (the replica ratio). Two
    // Services, one per track, and none of these: nothing known splits the traffic.
    let route = env.routes.values().find(|r| {
        r.backends.iter().any(|(s, _)| canary_svcs.contains(s))
            && r.backends.iter().any(|(s, _)| stable_svcs.contains(s))
    });
    let canary_only: Vec<&String> = canary_svcs
        .iter()
        .filter(|s| !stable_svcs.contains(s))
        .collect();
    let stable_only: Vec<&String> = stable_svcs
        .iter()
        .filter(|s| !canary_svcs.contains(s))
        .collect();
    let traefik = || {
        env.traefik_services
            .values()
            .chain(env.traefik_services_legacy.values())
            .find(|t| {
                let names = || t.services.iter().map(|(n, _)| n);
                names().any(|n| stable_only.contains(&n))
                    && names().any(|n| canary_only.contains(&n))
            })
    };
    let istio = || {
        let ours: Vec<&String> = stable_svcs.iter().chain(&canary_svcs).collect();
        istio_route(env, (stable, canary), (&stable_only, &canary_only), &ours)
    };
    let nginx = || {
        env.ingresses
            .values()
            .find(|i| i.canary && i.backends.iter().any(|b| canary_only.contains(&b)))
    };
    let shared = || stable_svcs.iter().find(|s| canary_svcs.contains(s));
    let (router, weight) = if let Some(r) = route {
        let add = |a: i64, w: &i64| a.saturating_add((*w).max(0));
        let total: i64 = r.backends.iter().map(|(_, w)| w).fold(0, add);
        let canary_w: i64 = r
            .backends
            .iter()
            .filter(|(s, _)| canary_svcs.contains(s) && !stable_svcs.contains(s))
            .map(|(_, w)| w)
            .fold(0, add);
        let pct = (total > 0).then(|| canary_w as f64 * 100.0 / total as f64);
        (Router::HttpRoute(r.name.clone()), pct)
    } else if let Some(t) = traefik() {
        (
            Router::Traefik(t.name.clone()),
            traefik_weight(t, &canary_only),
        )
    } else if let Some((name, weight)) = istio() {
        (Router::Istio(name), weight)
    } else if let Some(i) = nginx() {
        (Router::Nginx(i.name.clone()), nginx_weight(i))
    } else if let Some(shared) = shared() {
        let ready = stable.ready + canary.ready;
        let pct = (ready > 0).then(|| canary.ready as f64 * 100.0 / ready as f64);
        (Router::ReplicaRatio(shared.clone()), pct)
    } else {
        (Router::Unknown, None)
    };
    AppView {
        name,
        strategy: Strategy::Canary {
            router,
            canary_weight: weight,
        },
        versions: vec![
            version(stable, Role::Stable, weight.map(|w| 100.0 - w)),
            version(canary, Role::Canary, weight),
        ],
        revision: canary.revision,
        rollout: rollout(canary),
        gitops,
    }
}

/// The canary's share in percent by a TraefikService: the weights of its canary-only
/// Services of the sum of all weights. Unknown when a weight is missing or negative (the
/// actions refuse to step such a split too) or they sum to nothing.
pub fn traefik_weight(t: &TraefikServiceView, canary_only: &[&String]) -> Option<f64> {
    let mut total = 0i64;
    let mut canary_w = 0i64;
    for (name, w) in &t.services {
        let w = w.filter(|w| *w >= 0)?;
        total = total.saturating_add(w);
        if canary_only.contains(&name) {
            canary_w = canary_w.saturating_add(w);
        }
    }
    (total > 0).then(|| canary_w as f64 * 100.0 / total as f64)
}

/// The short Service name of an Istio host (`reviews.shop.svc.cluster.local` → `reviews`).
fn host_service(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// The first Istio VirtualService HTTP route (by name, then in order) with a destination of
/// each track, and the canary's share by its weights: its name and the share (unknown
/// unless the weights are all given and sum to 100, as the actions require). A route to one
/// of the app's Services (`ours`) naming a subset no DestinationRule defines is broken, and
/// the actions refuse it rather than look further: it is the router, at an unknown share.
fn istio_route(
    env: &EnvState,
    (stable, canary): (&DeploymentView, &DeploymentView),
    (stable_only, canary_only): (&[&String], &[&String]),
    ours: &[&String],
) -> Option<(String, Option<f64>)> {
    let subset_labels = |svc: &str, subset: &str| {
        env.destination_rules
            .values()
            .filter(|r| host_service(&r.host) == svc)
            .flat_map(|r| &r.subsets)
            .find(|(n, _)| n == subset)
            .map(|(_, l)| l)
    };
    let broken = |d: &IstioDestination| {
        let svc = host_service(&d.host);
        d.subset.as_ref().is_some_and(|subset| {
            ours.iter().any(|s| s.as_str() == svc) && subset_labels(svc, subset).is_none()
        })
    };
    // Which track a destination sends to: Some(true) the canary, Some(false) the stable. A
    // host alone names a Service of one track; a subset is the host Service's pods that also
    // carry the labels a DestinationRule for the host gives it, and must be one track's (its
    // labels alone, `track: canary`, could be any app's).
    let track = |d: &IstioDestination| -> Option<bool> {
        let svc = host_service(&d.host);
        let Some(subset) = &d.subset else {
            let is = |svcs: &[&String]| svcs.iter().any(|s| s.as_str() == svc);
            return if is(canary_only) {
                Some(true)
            } else if is(stable_only) {
                Some(false)
            } else {
                None
            };
        };
        let selector = &env.services.get(svc)?.selector;
        let labels = subset_labels(svc, subset)?;
        let picks = |d: &DeploymentView| {
            selects(selector, &d.template_labels) && selects(labels, &d.template_labels)
        };
        match (picks(canary), picks(stable)) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        }
    };
    env.virtual_services.values().find_map(|vs| {
        vs.http.iter().find_map(|route| {
            if route.iter().any(broken) {
                return Some((vs.name.clone(), None));
            }
            let tracks: Vec<Option<bool>> = route.iter().map(track).collect();
            if !(tracks.contains(&Some(true)) && tracks.contains(&Some(false))) {
                return None;
            }
            let weights: Option<Vec<i64>> = route.iter().map(|d| d.weight).collect();
            let weight = weights
                .filter(|w| {
                    w.iter().all(|w| *w >= 0)
                        && w.iter().try_fold(0i64, |a, w| a.checked_add(*w)) == Some(100)
                })
                .map(|w| {
                    w.iter()
                        .zip(&tracks)
                        .filter(|(_, t)| **t == Some(true))
                        .map(|(w, _)| *w as f64)
                        .sum()
                });
            Some((vs.name.clone(), weight))
        })
    })
}

/// The canary's share in percent by an ingress-nginx canary Ingress: `canary-weight` of
/// `canary-weight-total` (ingress-nginx's defaults: 0 of 100). Unknown when either is not a
/// whole number or the total is not positive (ingress-nginx would not take them either).
pub fn nginx_weight(i: &IngressView) -> Option<f64> {
    let parse = |v: &Option<String>, default: i64| match v {
        None => Some(default),
        Some(v) => v.trim().parse::<i64>().ok(),
    };
    let total = parse(&i.canary_weight_total, 100).filter(|t| *t > 0)?;
    let weight = parse(&i.canary_weight, 0)?.clamp(0, total);
    Some(weight as f64 * 100.0 / total as f64)
}

/// An app released by an Argo Rollout: its stable ReplicaSet (`status.stableRS`) and, while
/// an update is under way, the canary (`status.currentPodHash`), with the weight the
/// Rollout's status reports (without traffic routing Argo reports none: the ready replica
/// ratio is the split then).
fn argo_app(env: &EnvState, name: String, r: &ArgoRolloutView) -> AppView {
    let mut owned: Vec<&ReplicaSetView> = env
        .replicasets
        .values()
        .filter(|rs| rs.rollout.as_deref() == Some(r.name.as_str()))
        .collect();
    owned.sort_by_key(|rs| std::cmp::Reverse(rs.revision));
    let by_hash = |h: &str| {
        owned
            .iter()
            .find(|rs| !h.is_empty() && (rs.hash == h || rs.name == format!("{}-{h}", r.name)))
            .copied()
    };
    // Before the controller has written a status, the newest ReplicaSet stands for both.
    let stable = by_hash(&r.stable_hash).or_else(|| owned.first().copied());
    let canary = by_hash(&r.current_hash).filter(|c| stable.is_none_or(|s| s.name != c.name));
    let weight = match (r.canary_weight, canary) {
        (Some(w), _) => Some(w.clamp(0, 100) as f64),
        (None, Some(c)) => {
            let ready = stable.map_or(0, |s| s.ready) + c.ready;
            (ready > 0).then(|| c.ready as f64 * 100.0 / ready as f64)
        }
        (None, None) => (!r.stable_hash.is_empty()).then_some(0.0),
    };
    let tag = |images: &[String]| {
        images
            .first()
            .map(|i| image_tag(i).to_string())
            .unwrap_or_default()
    };
    let rs_version = |rs: &ReplicaSetView, role, track: &str, weight| VersionView {
        deployment: r.name.clone(),
        role,
        track: Some(track.to_string()),
        tag: tag(&rs.images),
        ready: rs.ready,
        desired: rs.replicas,
        weight,
    };
    let mut versions = Vec::new();
    match stable {
        Some(s) => versions.push(rs_version(
            s,
            Role::Stable,
            "stable",
            weight.map(|w| 100.0 - w),
        )),
        // No ReplicaSet yet: the Rollout's own template and counts.
        None => versions.push(VersionView {
            deployment: r.name.clone(),
            role: Role::Stable,
            track: Some("stable".into()),
            tag: tag(&r.images),
            ready: r.ready,
            desired: r.replicas,
            weight: weight.map(|w| 100.0 - w),
        }),
    }
    if let Some(c) = canary {
        versions.push(rs_version(c, Role::Canary, "canary", weight));
    }
    AppView {
        name,
        strategy: Strategy::Canary {
            router: Router::Argo(r.name.clone()),
            canary_weight: weight,
        },
        versions,
        revision: canary
            .or(stable)
            .map(|rs| rs.revision)
            .filter(|rev| *rev > 0)
            .unwrap_or(r.revision),
        rollout: argo_rollout(r),
        gitops: gitops_of(&r.labels, &r.annotations),
    }
}

/// A Rollout's progress from its status: its phase, with the canary step it is at.
pub fn argo_rollout(r: &ArgoRolloutView) -> Rollout {
    let step = r
        .step_index
        .filter(|_| r.steps > 0)
        .map(|i| (i.clamp(0, r.steps - 1) + 1, i < r.steps));
    let paused = r.paused || r.pause_conditions || r.phase == "Paused";
    if r.phase == "Degraded" || r.abort {
        return Rollout::Degraded {
            aborted: r.abort,
            message: r.message.clone(),
        };
    }
    if r.generation > r.observed_generation && r.observed_generation > 0 {
        return Rollout::WaitingForSpec;
    }
    match (r.phase.as_str(), step) {
        ("Healthy", _) if !paused => Rollout::Complete,
        // At a step of an update under way (not past the last one).
        (_, Some((step, true))) if paused || r.phase == "Progressing" => Rollout::Step {
            step,
            steps: r.steps,
            paused,
        },
        _ if paused => Rollout::Paused,
        ("Progressing", _) => Rollout::Progressing(if r.message.is_empty() {
            "progressing".into()
        } else {
            r.message.clone()
        }),
        ("", _) => Rollout::WaitingForSpec,
        _ => Rollout::Complete,
    }
}

/// The label selectors of an app's workloads (its Deployments, or its Rollout): the pods any
/// of them selects are the app's.
pub fn app_selectors<'a>(env: &'a EnvState, app: &AppView) -> Vec<&'a Labels> {
    let mut out: Vec<&Labels> = Vec::new();
    for v in &app.versions {
        let sel = match env.deployments.get(&v.deployment) {
            Some(d) => &d.selector,
            None => match env.argo_rollouts.get(&v.deployment) {
                Some(r) => &r.selector,
                None => continue,
            },
        };
        if !out.contains(&sel) {
            out.push(sel);
        }
    }
    out
}

/// Pods belonging to an app (selected by any of its Deployments, or its Rollout), sorted by
/// name.
pub fn app_pods<'a>(env: &'a EnvState, app: &AppView) -> Vec<&'a super::state::PodView> {
    let selectors = app_selectors(env, app);
    env.pods
        .values()
        .filter(|p| selectors.iter().any(|s| selects(s, &p.labels)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::state::{
        DestinationRuleView, IngressView, PodView, RouteView, ServiceView, VirtualServiceView,
    };

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `frontend` rolling from 3.2.0 (ReplicaSet revision 8) to 3.3.0 (revision 9): 6
    /// replicas wanted, 4 ready in all.
    fn mid_rollout() -> EnvState {
        let sel = labels(&[("app", "frontend")]);
        let mut env = EnvState::default();
        env.deployments.insert(
            "frontend".into(),
            DeploymentView {
                name: "frontend".into(),
                selector: sel.clone(),
                template_labels: sel.clone(),
                images: vec!["registry.example/frontend:3.3.0".into()],
                replicas: 6,
                updated: 3,
                ready: 6,
                ..Default::default()
            },
        );
        for (rs, revision) in [
            ("frontend-new", 9),
            ("frontend-old", 8),
            ("frontend-older", 7),
        ] {
            env.replicasets.insert(
                rs.into(),
                ReplicaSetView {
                    name: rs.into(),
                    owner: Some("frontend".into()),
                    revision,
                    ..Default::default()
                },
            );
        }
        let pods = [
            ("frontend-new", "3.3.0", true),
            ("frontend-new", "3.3.0", true),
            ("frontend-new", "3.3.0", false),
            ("frontend-older", "3.1.0", true),
            ("frontend-old", "3.2.0", true),
            ("frontend-old", "3.2.0", true),
            ("frontend-old", "3.2.0", true),
        ];
        for (i, (rs, version, ready)) in pods.into_iter().enumerate() {
            let name = format!("{rs}-{i}");
            env.pods.insert(
                name.clone(),
                PodView {
                    name,
                    labels: sel.clone(),
                    version: version.into(),
                    ready,
                    owner: Some(rs.into()),
                    ..Default::default()
                },
            );
        }
        env
    }

    #[test]
    fn rolling_app_counts_ready_pods_per_version() {
        let mut env = mid_rollout();
        let app = &apps(&env)[0];
        assert_eq!(app.strategy, Strategy::Rolling);
        let got: Vec<_> = app
            .versions
            .iter()
            .map(|v| (v.tag.as_str(), v.role, v.ready, v.desired))
            .collect();
        // The new version first, of the replicas wanted; then the older ones, newest first.
        assert_eq!(
            got,
            [
                ("3.3.0", Role::Primary, 2, 6),
                ("3.2.0", Role::Old, 3, 3),
                ("3.1.0", Role::Old, 1, 1),
            ]
        );
        assert!(app.versions.iter().all(|v| v.deployment == "frontend"));

        // Done: only the new version is left.
        env.pods.retain(|_, p| p.version == "3.3.0");
        env.pods.values_mut().for_each(|p| p.ready = true);
        let app = &apps(&env)[0];
        assert_eq!(app.versions.len(), 1);
        assert_eq!((app.versions[0].ready, app.versions[0].desired), (3, 6));

        // Before any pod is known, the Deployment's counts stand.
        env.pods.clear();
        let app = &apps(&env)[0];
        assert_eq!(app.versions.len(), 1);
        assert_eq!((app.versions[0].ready, app.versions[0].desired), (6, 6));
    }

    fn deployment(name: &str, sel: &Labels, image: &str, replicas: i32) -> DeploymentView {
        DeploymentView {
            name: name.into(),
            labels: sel.clone(),
            selector: sel.clone(),
            template_labels: sel.clone(),
            images: vec![image.into()],
            replicas,
            updated: replicas,
            ready: replicas,
            available: replicas,
            status_replicas: replicas,
            ..Default::default()
        }
    }

    fn service(env: &mut EnvState, name: &str, sel: &Labels) {
        env.services.insert(
            name.into(),
            ServiceView {
                name: name.into(),
                selector: sel.clone(),
            },
        );
    }

    fn ingress(name: &str, backend: &str, weight: Option<&str>) -> IngressView {
        IngressView {
            name: name.into(),
            canary: weight.is_some(),
            canary_weight: weight.map(str::to_string),
            backends: vec![backend.into()],
            ..Default::default()
        }
    }

    /// `catalog` as the sandbox seeds it: stable and canary Deployments, a Service per track,
    /// and a main and a canary Ingress (canary-weight 10).
    fn catalog() -> EnvState {
        let stable = labels(&[("app", "catalog"), ("track", "stable")]);
        let canary = labels(&[("app", "catalog"), ("track", "canary")]);
        let mut env = EnvState::default();
        for d in [
            deployment("catalog", &stable, "registry.local/catalog:7.0.3", 3),
            deployment("catalog-canary", &canary, "registry.local/catalog:7.1.0", 1),
        ] {
            env.deployments.insert(d.name.clone(), d);
        }
        service(&mut env, "catalog", &stable);
        service(&mut env, "catalog-canary", &canary);
        for i in [
            ingress("catalog", "catalog", None),
            ingress("catalog-canary", "catalog-canary", Some("10")),
        ] {
            env.ingresses.insert(i.name.clone(), i);
        }
        env
    }

    fn canary_of(app: &AppView) -> (&Router, Option<f64>) {
        match &app.strategy {
            Strategy::Canary {
                router,
                canary_weight,
            } => (router, *canary_weight),
            other => panic!("not a canary: {other:?}"),
        }
    }

    #[test]
    fn an_nginx_canary_ingress_splits_by_its_weight_annotation() {
        let mut env = catalog();
        let app = &apps(&env)[0];
        assert_eq!(
            canary_of(app),
            (&Router::Nginx("catalog-canary".into()), Some(10.0))
        );
        let got: Vec<_> = app
            .versions
            .iter()
            .map(|v| (v.tag.as_str(), v.role, v.weight))
            .collect();
        assert_eq!(
            got,
            [
                ("7.0.3", Role::Stable, Some(90.0)),
                ("7.1.0", Role::Canary, Some(10.0))
            ]
        );

        // Out of canary-weight-total; a missing weight is ingress-nginx's 0; nonsense is unknown.
        let i = env.ingresses.get_mut("catalog-canary").unwrap();
        i.canary_weight_total = Some("200".into());
        i.canary_weight = Some("50".into());
        assert_eq!(canary_of(&apps(&env)[0]).1, Some(25.0));
        let i = env.ingresses.get_mut("catalog-canary").unwrap();
        i.canary_weight = None;
        assert_eq!(canary_of(&apps(&env)[0]).1, Some(0.0));
        let i = env.ingresses.get_mut("catalog-canary").unwrap();
        i.canary_weight = Some("ten".into());
        assert_eq!(canary_of(&apps(&env)[0]).1, None);
        let i = env.ingresses.get_mut("catalog-canary").unwrap();
        (i.canary_weight, i.canary_weight_total) = (Some("10".into()), Some("0".into()));
        assert_eq!(canary_of(&apps(&env)[0]).1, None);

        // An Ingress that is not a canary, or in front of the stable's Service, routes nothing.
        let i = env.ingresses.get_mut("catalog-canary").unwrap();
        i.canary = false;
        assert_eq!(canary_of(&apps(&env)[0]), (&Router::Unknown, None));
    }

    #[test]
    fn a_service_per_track_without_a_router_is_no_replica_ratio() {
        // Before the Ingresses are seen (or without them): two track Services select nothing
        // in common, so the replica ratio says nothing about the traffic.
        let mut env = catalog();
        env.ingresses.clear();
        let app = &apps(&env)[0];
        assert_eq!(canary_of(app), (&Router::Unknown, None));
        assert!(app.versions.iter().all(|v| v.weight.is_none()));

        // A Service selecting both tracks makes it the replica ratio (1 of 4 ready).
        service(&mut env, "catalog-all", &labels(&[("app", "catalog")]));
        assert_eq!(
            canary_of(&apps(&env)[0]),
            (&Router::ReplicaRatio("catalog-all".into()), Some(25.0))
        );
        // The canary Ingress still wins over the ratio.
        env.ingresses.insert(
            "catalog-canary".into(),
            ingress("catalog-canary", "catalog-canary", Some("10")),
        );
        assert_eq!(
            canary_of(&apps(&env)[0]),
            (&Router::Nginx("catalog-canary".into()), Some(10.0))
        );
    }

    /// A stable (3 replicas) and a canary (1) Deployment of `app`, with a Service per track
    /// (`app` and `app-canary`).
    fn pair(app: &str, stable_tag: &str, canary_tag: &str) -> EnvState {
        let stable = labels(&[("app", app), ("track", "stable")]);
        let canary = labels(&[("app", app), ("track", "canary")]);
        let mut env = EnvState::default();
        let image = |tag: &str| format!("registry.local/{app}:{tag}");
        for d in [
            deployment(app, &stable, &image(stable_tag), 3),
            deployment(&format!("{app}-canary"), &canary, &image(canary_tag), 1),
        ] {
            env.deployments.insert(d.name.clone(), d);
        }
        service(&mut env, app, &stable);
        service(&mut env, &format!("{app}-canary"), &canary);
        env
    }

    fn traefik(name: &str, services: &[(&str, Option<i64>)]) -> TraefikServiceView {
        TraefikServiceView {
            name: name.into(),
            services: services.iter().map(|(n, w)| (n.to_string(), *w)).collect(),
        }
    }

    /// `inventory`: a Service per track, weighed 9 to 1 by a TraefikService.
    fn inventory() -> EnvState {
        let mut env = pair("inventory", "5.4.0", "5.5.0");
        env.traefik_services.insert(
            "inventory".into(),
            traefik(
                "inventory",
                &[("inventory", Some(90)), ("inventory-canary", Some(10))],
            ),
        );
        env
    }

    #[test]
    fn a_traefik_service_splits_in_proportion_to_its_weights() {
        let mut env = inventory();
        let app = &apps(&env)[0];
        assert_eq!(
            canary_of(app),
            (&Router::Traefik("inventory".into()), Some(10.0))
        );
        let got: Vec<_> = app
            .versions
            .iter()
            .map(|v| (v.tag.as_str(), v.role, v.weight))
            .collect();
        assert_eq!(
            got,
            [
                ("5.4.0", Role::Stable, Some(90.0)),
                ("5.5.0", Role::Canary, Some(10.0))
            ]
        );

        // Weights are proportional, whatever they sum to; a third Service takes its share.
        let weigh = |env: &mut EnvState, services: &[(&str, Option<i64>)]| {
            env.traefik_services
                .insert("inventory".into(), traefik("inventory", services));
            canary_of(&apps(env)[0]).1
        };
        let w = weigh(
            &mut env,
            &[("inventory", Some(3)), ("inventory-canary", Some(1))],
        );
        assert_eq!(w, Some(25.0));
        let w = weigh(
            &mut env,
            &[
                ("inventory", Some(2)),
                ("inventory-canary", Some(1)),
                ("inventory-legacy", Some(1)),
            ],
        );
        assert_eq!(w, Some(25.0));
        // A missing or negative weight, or none at all: unknown, never a wrong number.
        for services in [
            &[("inventory", Some(9)), ("inventory-canary", None)][..],
            &[("inventory", Some(11)), ("inventory-canary", Some(-1))],
            &[("inventory", Some(0)), ("inventory-canary", Some(0))],
            &[
                ("inventory", Some(i64::MAX)),
                ("inventory-canary", Some(i64::MAX)),
                ("inventory-legacy", None),
            ],
        ] {
            let w = weigh(&mut env, services);
            assert_eq!(w, None, "{services:?}");
            assert_eq!(
                canary_of(&apps(&env)[0]).0,
                &Router::Traefik("inventory".into())
            );
        }

        // The older traefik.containo.us group's TraefikServices count the same.
        let ts = traefik(
            "inventory",
            &[("inventory", Some(80)), ("inventory-canary", Some(20))],
        );
        env.traefik_services.clear();
        env.traefik_services_legacy.insert(ts.name.clone(), ts);
        assert_eq!(
            canary_of(&apps(&env)[0]),
            (&Router::Traefik("inventory".into()), Some(20.0))
        );

        // One that weighs only the stable's Service splits nothing between the tracks.
        env.traefik_services_legacy.insert(
            "inventory".into(),
            traefik("inventory", &[("inventory", Some(1)), ("images", Some(1))]),
        );
        assert_eq!(canary_of(&apps(&env)[0]), (&Router::Unknown, None));
    }

    #[test]
    fn a_traefik_service_needs_a_service_of_each_track_alone() {
        // A Service over both tracks is no track's: weighing it against the canary's is no
        // canary split (the replica ratio behind it is).
        let mut env = pair("inventory", "5.4.0", "5.5.0");
        service(&mut env, "inventory-all", &labels(&[("app", "inventory")]));
        env.traefik_services.insert(
            "inventory".into(),
            traefik(
                "inventory",
                &[("inventory-all", Some(90)), ("inventory-canary", Some(10))],
            ),
        );
        assert_eq!(
            canary_of(&apps(&env)[0]),
            (&Router::ReplicaRatio("inventory-all".into()), Some(25.0))
        );
    }

    #[test]
    fn routers_are_found_in_the_order_the_actions_look_for_them() {
        // HTTPRoute, then TraefikService, then VirtualService, then the canary Ingress, then
        // the replica ratio.
        let mut env = pair("inventory", "5.4.0", "5.5.0");
        service(&mut env, "inventory-all", &labels(&[("app", "inventory")]));
        let router = |env: &EnvState| canary_of(&apps(env)[0]).0.clone();
        assert_eq!(router(&env), Router::ReplicaRatio("inventory-all".into()));
        env.ingresses.insert(
            "inventory-canary".into(),
            ingress("inventory-canary", "inventory-canary", Some("10")),
        );
        assert_eq!(router(&env), Router::Nginx("inventory-canary".into()));
        let dest = |host: &str, weight| IstioDestination {
            host: host.into(),
            subset: None,
            weight: Some(weight),
        };
        env.virtual_services.insert(
            "inventory".into(),
            VirtualServiceView {
                name: "inventory".into(),
                http: vec![vec![
                    dest("inventory", 90),
                    dest("inventory-canary.shop.svc.cluster.local", 10),
                ]],
            },
        );
        assert_eq!(router(&env), Router::Istio("inventory".into()));
        env.traefik_services.insert(
            "inventory-split".into(),
            traefik(
                "inventory-split",
                &[("inventory", Some(1)), ("inventory-canary", Some(1))],
            ),
        );
        assert_eq!(router(&env), Router::Traefik("inventory-split".into()));
        env.routes.insert(
            "inventory".into(),
            RouteView {
                name: "inventory".into(),
                backends: vec![("inventory".into(), 1), ("inventory-canary".into(), 1)],
            },
        );
        assert_eq!(router(&env), Router::HttpRoute("inventory".into()));
    }

    fn subset(host: &str, name: &str, weight: Option<i64>) -> IstioDestination {
        IstioDestination {
            host: host.into(),
            subset: Some(name.into()),
            weight,
        }
    }

    /// `reviews`: one Service over both tracks; a DestinationRule names the tracks' pods as
    /// subsets v1 (stable) and v2 (canary), and a VirtualService sends testers to v2 and
    /// everyone else 80/20.
    fn reviews() -> EnvState {
        let mut env = pair("reviews", "1.8.0", "1.9.0");
        env.services.clear();
        service(&mut env, "reviews", &labels(&[("app", "reviews")]));
        env.destination_rules.insert(
            "reviews".into(),
            DestinationRuleView {
                name: "reviews".into(),
                host: "reviews.shop.svc.cluster.local".into(),
                subsets: vec![
                    ("v1".into(), labels(&[("track", "stable")])),
                    ("v2".into(), labels(&[("track", "canary")])),
                    ("all".into(), labels(&[("app", "reviews")])),
                ],
            },
        );
        env.virtual_services.insert(
            "reviews".into(),
            VirtualServiceView {
                name: "reviews".into(),
                http: vec![
                    vec![subset("reviews", "v2", None)],
                    vec![
                        subset("reviews.shop.svc.cluster.local", "v1", Some(80)),
                        subset("reviews", "v2", Some(20)),
                    ],
                ],
            },
        );
        env
    }

    #[test]
    fn an_istio_virtual_service_splits_by_its_route_weights_through_subsets() {
        let mut env = reviews();
        let app = &apps(&env)[0];
        assert_eq!(
            canary_of(app),
            (&Router::Istio("reviews".into()), Some(20.0))
        );
        let got: Vec<_> = app
            .versions
            .iter()
            .map(|v| (v.tag.as_str(), v.role, v.weight))
            .collect();
        assert_eq!(
            got,
            [
                ("1.8.0", Role::Stable, Some(80.0)),
                ("1.9.0", Role::Canary, Some(20.0))
            ]
        );

        // Weights missing, or not summing to 100: unknown, never a wrong number.
        fn route(env: &mut EnvState) -> &mut Vec<IstioDestination> {
            &mut env.virtual_services.get_mut("reviews").unwrap().http[1]
        }
        route(&mut env)[1].weight = None;
        assert_eq!(
            canary_of(&apps(&env)[0]),
            (&Router::Istio("reviews".into()), None)
        );
        route(&mut env)[1].weight = Some(30);
        assert_eq!(canary_of(&apps(&env)[0]).1, None);
        route(&mut env)[0].weight = Some(i64::MAX);
        assert_eq!(canary_of(&apps(&env)[0]).1, None);
        route(&mut env)[0].weight = Some(70);
        assert_eq!(canary_of(&apps(&env)[0]).1, Some(30.0));

        // A subset no DestinationRule defines, on the app's Service: the route is broken (the
        // actions refuse it): the VirtualService is the router, at an unknown share.
        route(&mut env)[1] = subset("reviews.shop.svc.cluster.local", "v3", Some(30));
        assert_eq!(
            canary_of(&apps(&env)[0]),
            (&Router::Istio("reviews".into()), None)
        );

        // A subset selecting both tracks, or one of another host's rule: no track, so no
        // split; the Service over both is the replica ratio.
        for (host, name) in [("reviews", "all"), ("ratings", "v2")] {
            route(&mut env)[1] = subset(host, name, Some(30));
            assert_eq!(
                canary_of(&apps(&env)[0]),
                (&Router::ReplicaRatio("reviews".into()), Some(25.0)),
                "{host}/{name}"
            );
        }
    }

    #[test]
    fn an_istio_subset_is_its_host_services_pods_not_any_apps() {
        // `reviews`' DestinationRule names its subsets by track alone; `catalog`'s tracks
        // carry the same labels, but the reviews Service selects none of its pods.
        let mut env = reviews();
        let mut other = pair("catalog", "7.0.3", "7.1.0");
        env.deployments.append(&mut other.deployments);
        env.services.append(&mut other.services);
        env.ingresses.insert(
            "catalog-canary".into(),
            ingress("catalog-canary", "catalog-canary", Some("10")),
        );
        let all = apps(&env);
        let router = |name: &str| {
            let app = all.iter().find(|a| a.name == name).unwrap();
            canary_of(app)
        };
        assert_eq!(
            router("catalog"),
            (&Router::Nginx("catalog-canary".into()), Some(10.0))
        );
        assert_eq!(
            router("reviews"),
            (&Router::Istio("reviews".into()), Some(20.0))
        );

        // Nor is a host no Service is known by.
        env.services.remove("reviews");
        assert_eq!(canary_of(&apps(&env)[1]), (&Router::Unknown, None));
    }

    #[test]
    fn an_istio_destination_without_a_subset_names_a_tracks_service() {
        let mut env = pair("reviews", "1.8.0", "1.9.0");
        let dest = |host: &str, weight| IstioDestination {
            host: host.into(),
            subset: None,
            weight: Some(weight),
        };
        env.virtual_services.insert(
            "reviews".into(),
            VirtualServiceView {
                name: "reviews".into(),
                http: vec![vec![
                    dest("reviews.shop.svc.cluster.local", 95),
                    dest("reviews-canary", 5),
                ]],
            },
        );
        assert_eq!(
            canary_of(&apps(&env)[0]),
            (&Router::Istio("reviews".into()), Some(5.0))
        );
        // The canary Ingress comes after it.
        env.ingresses.insert(
            "reviews-canary".into(),
            ingress("reviews-canary", "reviews-canary", Some("50")),
        );
        assert_eq!(
            canary_of(&apps(&env)[0]),
            (&Router::Istio("reviews".into()), Some(5.0))
        );
    }

    /// `cart` as the sandbox seeds it: an Argo Rollout updating 2.0.0 (stable, 4 replicas) to
    /// 2.1.0 (canary, 1 replica), paused at its second step (index 1) of 5 at weight 20.
    fn cart() -> EnvState {
        let sel = labels(&[("app", "cart")]);
        let mut env = EnvState::default();
        env.argo_rollouts.insert(
            "cart".into(),
            ArgoRolloutView {
                name: "cart".into(),
                labels: sel.clone(),
                selector: sel.clone(),
                template_labels: sel.clone(),
                images: vec!["registry.local/cart:2.1.0".into()],
                replicas: 4,
                revision: 2,
                generation: 2,
                observed_generation: 2,
                pause_conditions: true,
                phase: "Paused".into(),
                message: "CanaryPauseStep".into(),
                canary_weight: Some(20),
                step_index: Some(1),
                steps: 5,
                stable_hash: "6f7d9c".into(),
                current_hash: "58b4f7".into(),
                ready: 5,
                ..Default::default()
            },
        );
        for (hash, rev, tag, replicas) in [
            ("6f7d9c", 1, "2.0.0", 4),
            ("58b4f7", 2, "2.1.0", 1),
            ("4c1e2a", 0, "1.9.0", 0),
        ] {
            let name = format!("cart-{hash}");
            env.replicasets.insert(
                name.clone(),
                ReplicaSetView {
                    name: name.clone(),
                    rollout: Some("cart".into()),
                    hash: hash.into(),
                    revision: rev,
                    images: vec![format!("registry.local/cart:{tag}")],
                    replicas,
                    ready: replicas,
                    ..Default::default()
                },
            );
            for i in 0..replicas {
                let pod = format!("{name}-{i}");
                let mut pod_labels = sel.clone();
                pod_labels.insert("rollouts-pod-template-hash".into(), hash.into());
                env.pods.insert(
                    pod.clone(),
                    PodView {
                        name: pod,
                        labels: pod_labels,
                        version: tag.into(),
                        ready: true,
                        owner: Some(name.clone()),
                        ..Default::default()
                    },
                );
            }
        }
        env
    }

    #[test]
    fn an_argo_rollout_is_a_canary_app_of_its_replicasets() {
        let mut env = cart();
        // A Deployment app beside it stays as it was.
        let fe = labels(&[("app", "frontend")]);
        env.deployments.insert(
            "frontend".into(),
            deployment("frontend", &fe, "registry.local/frontend:3.2.0", 2),
        );
        let all = apps(&env);
        let names: Vec<&str> = all.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["cart", "frontend"]);
        let app = &all[0];
        assert_eq!(canary_of(app), (&Router::Argo("cart".into()), Some(20.0)));
        let got: Vec<_> = app
            .versions
            .iter()
            .map(|v| (v.tag.as_str(), v.role, v.ready, v.desired, v.weight))
            .collect();
        assert_eq!(
            got,
            [
                ("2.0.0", Role::Stable, 4, 4, Some(80.0)),
                ("2.1.0", Role::Canary, 1, 1, Some(20.0)),
            ]
        );
        assert_eq!(app.revision, 2);
        assert_eq!(
            app.rollout,
            Rollout::Step {
                step: 2,
                steps: 5,
                paused: true
            }
        );
        // Its pods are the Rollout's.
        assert_eq!(app_pods(&env, app).len(), 5);

        // Promoted on: at 50 %, progressing at step 3.
        let r = env.argo_rollouts.get_mut("cart").unwrap();
        (r.phase, r.pause_conditions, r.canary_weight, r.step_index) =
            ("Progressing".into(), false, Some(50), Some(2));
        let app = &apps(&env)[0];
        assert_eq!(canary_of(app).1, Some(50.0));
        assert_eq!(
            app.rollout,
            Rollout::Step {
                step: 3,
                steps: 5,
                paused: false
            }
        );
        // spec.paused holds it, whatever the phase says yet.
        env.argo_rollouts.get_mut("cart").unwrap().paused = true;
        assert!(matches!(
            apps(&env)[0].rollout,
            Rollout::Step { paused: true, .. }
        ));

        // Aborted: Degraded, back to 0 %.
        let r = env.argo_rollouts.get_mut("cart").unwrap();
        (r.phase, r.abort, r.paused, r.canary_weight) = ("Degraded".into(), true, false, Some(0));
        let app = &apps(&env)[0];
        assert!(matches!(
            app.rollout,
            Rollout::Degraded { aborted: true, .. }
        ));
        assert_eq!(canary_of(app).1, Some(0.0));

        // Completed: the canary is the stable, the only version, at 0 %.
        let r = env.argo_rollouts.get_mut("cart").unwrap();
        (r.phase, r.abort, r.canary_weight, r.step_index) =
            ("Healthy".into(), false, Some(0), Some(5));
        r.stable_hash = "58b4f7".into();
        let app = &apps(&env)[0];
        assert_eq!(app.rollout, Rollout::Complete);
        assert_eq!(app.versions.len(), 1);
        assert_eq!(
            (app.versions[0].tag.as_str(), app.versions[0].role),
            ("2.1.0", Role::Stable)
        );
    }

    #[test]
    fn an_argo_rollout_without_weights_or_status_still_shows() {
        let mut env = cart();
        // Without traffic routing Argo reports no weights: the ready replica ratio (1 of 5).
        env.argo_rollouts.get_mut("cart").unwrap().canary_weight = None;
        assert_eq!(canary_of(&apps(&env)[0]).1, Some(20.0));

        // Just created: no status, no ReplicaSets yet.
        env.replicasets.clear();
        let r = env.argo_rollouts.get_mut("cart").unwrap();
        *r = ArgoRolloutView {
            name: r.name.clone(),
            selector: r.selector.clone(),
            template_labels: r.template_labels.clone(),
            images: r.images.clone(),
            replicas: 4,
            steps: 5,
            ..Default::default()
        };
        let app = &apps(&env)[0];
        assert_eq!(canary_of(app), (&Router::Argo("cart".into()), None));
        assert_eq!(app.rollout, Rollout::WaitingForSpec);
        assert_eq!(
            (app.versions[0].tag.as_str(), app.versions[0].desired),
            ("2.1.0", 4)
        );
    }
}
