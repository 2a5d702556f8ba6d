//! The GitOps controller's view of an app: Flux's Kustomization (`lastAppliedRevision`, the
//! Ready condition) or Argo CD's Application (sync status and revision, health), found from
//! the ownership labels on the app's objects; and asking it to reconcile now after a push (as
//! `flux reconcile` and Argo CD's refresh do).

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

/// Which controller object manages an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Flux { namespace: String, name: String },
    ArgoCd { namespace: String, name: String },
}

impl Owner {
    /// From an object's labels and annotations.
    pub fn of(o: &Value) -> Option<Owner> {
        let get = |k: &str| {
            let esc = k.replace('~', "~0").replace('/', "~1");
            o.pointer(&format!("/metadata/labels/{esc}"))
                .or_else(|| o.pointer(&format!("/metadata/annotations/{esc}")))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        if let Some(name) = get("kustomize.toolkit.fluxcd.io/name") {
            let namespace = get("kustomize.toolkit.fluxcd.io/namespace")
                .unwrap_or_else(|| "flux-system".into());
            return Some(Owner::Flux { namespace, name });
        }
        let argo = get("argocd.argoproj.io/tracking-id")
            .and_then(|id| id.split(':').next().map(str::to_string))
            .or_else(|| get("argocd.argoproj.io/instance"));
        argo.map(|app| match app.split_once('_') {
            // Apps in any namespace: `<namespace>_<name>`.
            Some((ns, name)) => Owner::ArgoCd {
                namespace: ns.to_string(),
                name: name.to_string(),
            },
            None => Owner::ArgoCd {
                namespace: "argocd".into(),
                name: app,
            },
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Owner::Flux { namespace, name } => format!("Flux Kustomization {namespace}/{name}"),
            Owner::ArgoCd { namespace, name } => {
                format!("Argo CD Application {namespace}/{name}")
            }
        }
    }

    fn api(&self, client: &Client) -> (Api<DynamicObject>, String) {
        let (g, v, k, p, ns, name) = match self {
            Owner::Flux { namespace, name } => (
                "kustomize.toolkit.fluxcd.io",
                "v1",
                "Kustomization",
                "kustomizations",
                namespace,
                name,
            ),
            Owner::ArgoCd { namespace, name } => (
                "argoproj.io",
                "v1alpha1",
                "Application",
                "applications",
                namespace,
                name,
            ),
        };
        let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, k), p);
        (Api::namespaced_with(client.clone(), ns, &ar), name.clone())
    }
}

/// What the controller says now.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncState {
    pub owner: Owner,
    /// The revision applied (Flux `main@sha1:…`, Argo CD the commit).
    pub revision: Option<String>,
    /// Ready (Flux) / Synced and Healthy (Argo CD).
    pub ready: Option<bool>,
    /// The condition's or status's message.
    pub message: String,
}

impl SyncState {
    /// Whether `commit` (full or abbreviated) is the applied revision.
    pub fn applied(&self, commit: &str) -> bool {
        self.revision.as_deref().is_some_and(|r| {
            let sha = r.rsplit(':').next().unwrap_or(r);
            sha.len() >= 7
                && commit.len() >= 7
                && (commit.starts_with(sha) || sha.starts_with(commit))
        })
    }
}

fn short(rev: &str) -> String {
    match rev.rsplit_once(':') {
        Some((_, sha)) => sha.chars().take(8).collect(),
        None => rev.chars().take(8).collect(),
    }
}

impl std::fmt::Display for SyncState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.owner.describe())?;
        match self.ready {
            Some(true) => f.write_str("ready")?,
            Some(false) => f.write_str("not ready")?,
            None => f.write_str("unknown")?,
        }
        if let Some(r) = &self.revision {
            write!(f, ", applied {}", short(r))?;
        }
        if !self.message.is_empty() && self.ready != Some(true) {
            write!(f, " ({})", self.message)?;
        }
        Ok(())
    }
}

/// Read the controller's object now.
pub async fn state(client: &Client, owner: &Owner) -> Result<SyncState, String> {
    let (api, name) = owner.api(client);
    let o = api
        .get(&name)
        .await
        .map_err(|e| format!("{}: {e}", owner.describe()))?;
    let v = serde_json::to_value(o).map_err(|e| e.to_string())?;
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    Ok(match owner {
        Owner::Flux { .. } => {
            let ready = v
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
                })
                .cloned();
            SyncState {
                owner: owner.clone(),
                revision: s("/status/lastAppliedRevision"),
                ready: ready
                    .as_ref()
                    .and_then(|c| c.get("status").and_then(Value::as_str))
                    .map(|st| st == "True"),
                message: ready
                    .as_ref()
                    .and_then(|c| c.get("message").and_then(Value::as_str))
                    .unwrap_or_default()
                    .to_string(),
            }
        }
        Owner::ArgoCd { .. } => {
            let sync = s("/status/sync/status");
            let health = s("/status/health/status");
            SyncState {
                owner: owner.clone(),
                revision: s("/status/sync/revision"),
                ready: sync
                    .as_deref()
                    .map(|st| st == "Synced" && health.as_deref().is_none_or(|h| h == "Healthy")),
                message: format!(
                    "{} / {}",
                    sync.unwrap_or_else(|| "Unknown".into()),
                    health.unwrap_or_else(|| "Unknown".into())
                ),
            }
        }
    })
}

/// Ask the controller to reconcile now: Flux's `reconcile.fluxcd.io/requestedAt` on the
/// Kustomization and its GitRepository, Argo CD's `argocd.argoproj.io/refresh`. Best effort:
/// without the permission the controller still syncs at its interval.
pub async fn request_reconcile(client: &Client, owner: &Owner) -> Result<(), String> {
    let now = jiff::Timestamp::now().to_string();
    let pp = PatchParams::default();
    let (api, name) = owner.api(client);
    match owner {
        Owner::Flux { namespace, .. } => {
            let body =
                json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": now}}});
            let k = api
                .patch(&name, &pp, &Patch::Merge(&body))
                .await
                .map_err(|e| format!("{}: {e}", owner.describe()))?;
            let k = serde_json::to_value(k).unwrap_or_default();
            if let Some(src) = k.pointer("/spec/sourceRef/name").and_then(Value::as_str) {
                let src_ns = k
                    .pointer("/spec/sourceRef/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(namespace);
                let ar = ApiResource::from_gvk_with_plural(
                    &GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", "GitRepository"),
                    "gitrepositories",
                );
                let repos: Api<DynamicObject> = Api::namespaced_with(client.clone(), src_ns, &ar);
                repos
                    .patch(src, &pp, &Patch::Merge(&body))
                    .await
                    .map_err(|e| format!("GitRepository {src_ns}/{src}: {e}"))?;
            }
        }
        Owner::ArgoCd { .. } => {
            let body =
                json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}});
            api.patch(&name, &pp, &Patch::Merge(&body))
                .await
                .map_err(|e| format!("{}: {e}", owner.describe()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_from_labels() {
        let flux = json!({"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}});
        assert_eq!(
            Owner::of(&flux),
            Some(Owner::Flux {
                namespace: "flux-system".into(),
                name: "apps".into()
            })
        );
        let argo = json!({"metadata": {"annotations": {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:prod/checkout"}}});
        assert_eq!(
            Owner::of(&argo).map(|o| o.describe()),
            Some("Argo CD Application argocd/shop".into())
        );
        assert_eq!(Owner::of(&json!({"metadata": {}})), None);
    }

    #[test]
    fn applied_revision_matches_full_and_short_commits() {
        let s = SyncState {
            owner: Owner::Flux {
                namespace: "f".into(),
                name: "a".into(),
            },
            revision: Some("main@sha1:0123456789abcdef0123456789abcdef01234567".into()),
            ready: Some(true),
            message: String::new(),
        };
        assert!(s.applied("0123456789abcdef0123456789abcdef01234567"));
        assert!(!s.applied("fedcba9876543210fedcba9876543210fedcba98"));
    }
}
