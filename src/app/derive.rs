//! Apps derived from an environment's objects: which Deployments (or Argo Rollout) form an
//! app, how it releases (canary by HTTPRoute, ingress-nginx canary Ingress, replica ratio or
//! Argo Rollouts; blue/green by Service selector; rolling), its versions with their traffic
//! share, and rollout progress as `kubectl rollout status` (or the Rollout's status) says.

use super::state::{
    AppView, ArgoRolloutView, DeploymentView, EnvState, IngressView, Labels, ReplicaSetView, Role,
    Rollout, Router, Strategy, VersionView,
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
    // of each track; an ingress-nginx canary Ingress in front of a canary-only Service; one
    // Service selecting both tracks (the replica ratio). Two Services, one per track, and
    // none of these: nothing known splits the traffic.
    let route = env.routes.values().find(|r| {
        r.backends.iter().any(|(s, _)| canary_svcs.contains(s))
            && r.backends.iter().any(|(s, _)| stable_svcs.contains(s))
    });
    let canary_only: Vec<&String> = canary_svcs
        .iter()
        .filter(|s| !stable_svcs.contains(s))
        .collect();
    let nginx = || {
        env.ingresses
            .values()
            .find(|i| i.canary && i.backends.iter().any(|b| canary_only.contains(&b)))
    };
    let shared = || stable_svcs.iter().find(|s| canary_svcs.contains(s));
    let (router, weight) = if let Some(r) = route {
        let total: i64 = r.backends.iter().map(|(_, w)| (*w).max(0)).sum();
        let canary_w: i64 = r
            .backends
            .iter()
            .filter(|(s, _)| canary_svcs.contains(s) && !stable_svcs.contains(s))
            .map(|(_, w)| (*w).max(0))
            .sum();
        let pct = (total > 0).then(|| canary_w as f64 * 100.0 / total as f64);
        (Router::HttpRoute(r.name.clone()), pct)
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
    use crate::app::state::{IngressView, PodView, ServiceView};

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
