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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::state::{PodView, ReplicaSetView};

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
}
