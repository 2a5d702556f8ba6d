//! Apps derived from an environment's objects: which Deployments form an app, how it releases
//! (canary by HTTPRoute or replica ratio, blue/green by Service selector, rolling), its
//! versions with their traffic share, and rollout progress as `kubectl rollout status` says.

use super::state::{
    AppView, DeploymentView, EnvState, Labels, Role, Rollout, Router, Strategy, VersionView,
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

/// The app a Deployment belongs to: its `app` (or `app.kubernetes.io/name`) label.
fn app_of(d: &DeploymentView) -> String {
    ["app", "app.kubernetes.io/name"]
        .iter()
        .find_map(|k| d.template_labels.get(*k).or_else(|| d.labels.get(*k)))
        .cloned()
        .unwrap_or_else(|| d.name.clone())
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
    let has = |k: &str| d.labels.contains_key(k) || d.annotations.contains_key(k);
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

/// Derive the apps of an environment from its objects, sorted by name.
pub fn apps(env: &EnvState) -> Vec<AppView> {
    let mut groups: std::collections::BTreeMap<String, Vec<&DeploymentView>> = Default::default();
    for d in env.deployments.values() {
        groups.entry(app_of(d)).or_default().push(d);
    }
    groups
        .into_iter()
        .map(|(name, ds)| app(env, name, ds))
        .collect()
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
        versions: ds.iter().map(|d| version(d, Role::Primary, None)).collect(),
        revision: primary.revision,
        rollout: rollout(primary),
        gitops,
    }
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
    // An HTTPRoute splitting between a Service of each track decides the weight.
    let route = env.routes.values().find(|r| {
        r.backends.iter().any(|(s, _)| canary_svcs.contains(s))
            && r.backends.iter().any(|(s, _)| stable_svcs.contains(s))
    });
    let (router, weight) = match route {
        Some(r) => {
            let total: i64 = r.backends.iter().map(|(_, w)| (*w).max(0)).sum();
            let canary_w: i64 = r
                .backends
                .iter()
                .filter(|(s, _)| canary_svcs.contains(s) && !stable_svcs.contains(s))
                .map(|(_, w)| (*w).max(0))
                .sum();
            let pct = (total > 0).then(|| canary_w as f64 * 100.0 / total as f64);
            (Router::HttpRoute(r.name.clone()), pct)
        }
        None => {
            let shared = stable_svcs
                .iter()
                .find(|s| canary_svcs.contains(s))
                .cloned()
                .unwrap_or_default();
            let ready = stable.ready + canary.ready;
            let pct = (ready > 0).then(|| canary.ready as f64 * 100.0 / ready as f64);
            (Router::ReplicaRatio(shared), pct)
        }
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

/// Pods belonging to an app (selected by any of its Deployments), sorted by name.
pub fn app_pods<'a>(env: &'a EnvState, app: &AppView) -> Vec<&'a super::state::PodView> {
    let selectors: Vec<&Labels> = app
        .versions
        .iter()
        .filter_map(|v| env.deployments.get(&v.deployment))
        .map(|d| &d.selector)
        .collect();
    env.pods
        .values()
        .filter(|p| selectors.iter().any(|s| selects(s, &p.labels)))
        .collect()
}
