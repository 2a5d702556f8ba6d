//! GitOps ownership: a direct change to an object Argo CD or Flux manages is reverted at the
//! controller's next sync (when it self-heals). Say so before the operator confirms.

use serde_json::Value;

fn has(o: &Value, key: &str) -> Option<String> {
    let esc = key.replace('~', "~0").replace('/', "~1");
    o.pointer(&format!("/metadata/labels/{esc}"))
        .or_else(|| o.pointer(&format!("/metadata/annotations/{esc}")))
        .map(|v| v.as_str().unwrap_or_default().to_string())
}

/// Who manages `o`, if a GitOps controller does: ("Argo CD", "application shop").
pub fn manager(o: &Value) -> Option<(&'static str, String)> {
    use crate::gitops::sync::Owner;
    match Owner::of(o) {
        Some(Owner::ArgoCd { name, .. }) => Some(("Argo CD", format!("application {name}"))),
        Some(Owner::Flux { namespace, name }) => {
            Some(("Flux", format!("Kustomization {namespace}/{name}")))
        }
        None => {
            let h = has(o, "helm.toolkit.fluxcd.io/name")?;
            let ns = has(o, "helm.toolkit.fluxcd.io/namespace").unwrap_or_default();
            Some(("Flux", format!("HelmRelease {ns}/{h}")))
        }
    }
}

/// The warning for a plan that writes `o`.
pub fn warnings(o: &Value, kind: &str) -> Vec<String> {
    let name = o
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    manager(o)
        .map(|(who, what)| {
            vec![format!(
                "{kind}/{name} is managed by {who} ({what}): a direct change will be reverted at its next sync unless you also change Git (or suspend auto-sync)"
            )]
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argo_cd_and_flux_are_recognised() {
        let argo = json!({"metadata": {"name": "checkout", "annotations": {"argocd.argoproj.io/tracking-id": "shop-prod:apps/Deployment:production/checkout"}}});
        assert_eq!(
            manager(&argo),
            Some(("Argo CD", "application shop-prod".to_string()))
        );
        let flux = json!({"metadata": {"name": "x", "labels": {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}});
        assert_eq!(
            manager(&flux),
            Some(("Flux", "Kustomization flux-system/apps".to_string()))
        );
        let w = warnings(&flux, "Deployment");
        assert!(w[0].contains("Deployment/x is managed by Flux"), "{w:?}");
        assert!(manager(&json!({"metadata": {"name": "y"}})).is_none());
    }
}
