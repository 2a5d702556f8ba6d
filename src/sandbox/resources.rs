//! The resource types the sandbox serves: what discovery lists, how URLs map to them, and
//! which verbs and subresources each accepts.

/// One served resource (a plural name in a group/version).
#[derive(Debug)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Subresources: `status`, `scale`, `log`.
    pub subresources: &'static [&'static str],
    /// A custom resource (CRD): no strategic merge patch, list items carry apiVersion/kind.
    pub custom: bool,
    /// Only `create` (the access reviews): not stored, not listed.
    pub create_only: bool,
    pub storage_version_hash: &'static str,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn has_status(&self) -> bool {
        self.subresources.contains(&"status")
    }

    pub fn verbs(&self) -> &'static [&'static str] {
        if self.create_only {
            &["create"]
        } else if self.custom {
            // CRDs list their verbs in this order (fixture 01-discovery/apis-gateway-v1).
            &[
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "create",
                "update",
                "watch",
            ]
        } else if self.plural == "namespaces" {
            &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ]
        } else {
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        }
    }
}

const fn res(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> ResourceType {
    ResourceType {
        group,
        version,
        kind,
        plural,
        singular: "",
        namespaced,
        short_names: &[],
        categories: &[],
        subresources: &[],
        custom: false,
        create_only: false,
        storage_version_hash: "",
    }
}

/// Every resource type served, in discovery order. Index positions are used as ids.
pub static RESOURCES: &[ResourceType] = &[
    ResourceType {
        short_names: &["ns"],
        subresources: &["status"],
        storage_version_hash: "Q3oi5N2YM8M=",
        ..res("", "v1", "Namespace", "namespaces", false)
    },
    ResourceType {
        short_names: &["no"],
        subresources: &["status"],
        storage_version_hash: "XwShjMxG9Fs=",
        ..res("", "v1", "Node", "nodes", false)
    },
    ResourceType {
        short_names: &["po"],
        categories: &["all"],
        subresources: &["status", "log"],
        storage_version_hash: "xPOwRZ+Yhw8=",
        ..res("", "v1", "Pod", "pods", true)
    },
    ResourceType {
        short_names: &["svc"],
        categories: &["all"],
        subresources: &["status"],
        storage_version_hash: "0/CO1lhkEBI=",
        ..res("", "v1", "Service", "services", true)
    },
    ResourceType {
        short_names: &["ep"],
        storage_version_hash: "fWeeMqaN/OA=",
        ..res("", "v1", "Endpoints", "endpoints", true)
    },
    ResourceType {
        short_names: &["ev"],
        storage_version_hash: "r2yiGXH7wu8=",
        ..res("", "v1", "Event", "events", true)
    },
    ResourceType {
        short_names: &["cm"],
        storage_version_hash: "qFsyl6wFWjQ=",
        ..res("", "v1", "ConfigMap", "configmaps", true)
    },
    ResourceType {
        short_names: &["deploy"],
        categories: &["all"],
        subresources: &["status", "scale"],
        storage_version_hash: "8aSe+NMegvE=",
        ..res("apps", "v1", "Deployment", "deployments", true)
    },
    ResourceType {
        short_names: &["rs"],
        categories: &["all"],
        subresources: &["status", "scale"],
        storage_version_hash: "P1RzHs8/mWQ=",
        ..res("apps", "v1", "ReplicaSet", "replicasets", true)
    },
    ResourceType {
        create_only: true,
        ..res(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            false,
        )
    },
    ResourceType {
        create_only: true,
        ..res(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectRulesReview",
            "selfsubjectrulesreviews",
            false,
        )
    },
    // networking.k8s.io sits between authorization.k8s.io and the CRD groups, as in the
    // recorded discovery document.
    ResourceType {
        short_names: &["ing"],
        subresources: &["status"],
        storage_version_hash: "39NQlfNR+bo=",
        ..res("networking.k8s.io", "v1", "Ingress", "ingresses", true)
    },
    ResourceType {
        singular: "httproute",
        categories: &["gateway-api"],
        subresources: &["status"],
        custom: true,
        storage_version_hash: "s9TOoTqdPlk=",
        ..res(
            "gateway.networking.k8s.io",
            "v1",
            "HTTPRoute",
            "httproutes",
            true,
        )
    },
    // Argo Rollouts' CRD (rollouts.argoproj.io): status and scale subresources, short name `ro`.
    ResourceType {
        singular: "rollout",
        short_names: &["ro"],
        subresources: &["status", "scale"],
        custom: true,
        storage_version_hash: "T0mdNo50nFA=",
        ..res("argoproj.io", "v1alpha1", "Rollout", "rollouts", true)
    },
    // Istio's networking CRDs (virtualservices/destinationrules.networking.istio.io): served at
    // v1 (the preferred and stored version) and v1beta1, one storage for both versions.
    ResourceType {
        singular: "virtualservice",
        short_names: &["vs"],
        categories: &["istio-io", "networking-istio-io"],
        subresources: &["status"],
        custom: true,
        storage_version_hash: "4myxAxwji4I=",
        ..res(
            "networking.istio.io",
            "v1",
            "VirtualService",
            "virtualservices",
            true,
        )
    },
    ResourceType {
        singular: "destinationrule",
        short_names: &["dr"],
        categories: &["istio-io", "networking-istio-io"],
        subresources: &["status"],
        custom: true,
        storage_version_hash: "RzP0ejj0QFo=",
        ..res(
            "networking.istio.io",
            "v1",
            "DestinationRule",
            "destinationrules",
            true,
        )
    },
    ResourceType {
        singular: "virtualservice",
        short_names: &["vs"],
        categories: &["istio-io", "networking-istio-io"],
        subresources: &["status"],
        custom: true,
        storage_version_hash: "4myxAxwji4I=",
        ..res(
            "networking.istio.io",
            "v1beta1",
            "VirtualService",
            "virtualservices",
            true,
        )
    },
    ResourceType {
        singular: "destinationrule",
        short_names: &["dr"],
        categories: &["istio-io", "networking-istio-io"],
        subresources: &["status"],
        custom: true,
        storage_version_hash: "RzP0ejj0QFo=",
        ..res(
            "networking.istio.io",
            "v1beta1",
            "DestinationRule",
            "destinationrules",
            true,
        )
    },
    // Traefik's TraefikService (traefikservices.traefik.io) and the same CRD in the group
    // Traefik v2 used (traefik.containo.us): two groups, two separate stores. No short names,
    // no printer columns, no subresources. traefik.io comes first so that a bare
    // `kubectl get traefikservices` resolves to it.
    ResourceType {
        singular: "traefikservice",
        custom: true,
        storage_version_hash: "SE1AVlboAtE=",
        ..res(
            "traefik.io",
            "v1alpha1",
            "TraefikService",
            "traefikservices",
            true,
        )
    },
    ResourceType {
        singular: "traefikservice",
        custom: true,
        storage_version_hash: "lD2etFNcdkA=",
        ..res(
            "traefik.containo.us",
            "v1alpha1",
            "TraefikService",
            "traefikservices",
            true,
        )
    },
    // Flux's source and kustomize controllers' CRDs (gitrepositories.source.toolkit.fluxcd.io,
    // kustomizations.kustomize.toolkit.fluxcd.io), at their v1 storage versions, with the
    // kubebuilder markers of Flux's API types: GitRepository is short `gitrepo` in the
    // categories `all`, `fluxcd` and `fluxcd-sources`; Kustomization is short `ks`, no
    // categories. Both have a status subresource. See `controllers/flux.rs`.
    ResourceType {
        singular: "gitrepository",
        short_names: &["gitrepo"],
        categories: &["all", "fluxcd", "fluxcd-sources"],
        subresources: &["status"],
        custom: true,
        storage_version_hash: "agejlvI8FcU=",
        ..res(
            "source.toolkit.fluxcd.io",
            "v1",
            "GitRepository",
            "gitrepositories",
            true,
        )
    },
    ResourceType {
        singular: "kustomization",
        short_names: &["ks"],
        subresources: &["status"],
        custom: true,
        storage_version_hash: "GozwzC4McTQ=",
        ..res(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "Kustomization",
            "kustomizations",
            true,
        )
    },
];

/// The resource type with this group, version and plural name.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The stored resource type of a kind (its preferred version).
pub fn by_kind(group: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

/// The index of a resource type's storage in [`RESOURCES`]: every version of a group's
/// resource shares the storage of the first one listed (its stored version), as a CRD served at
/// several versions keeps one copy of each object.
pub fn index_of(r: &ResourceType) -> usize {
    let own = RESOURCES
        .iter()
        .position(|x| std::ptr::eq(x, r))
        .unwrap_or_default();
    let own_rt = &RESOURCES[own];
    RESOURCES
        .iter()
        .position(|x| x.group == own_rt.group && x.plural == own_rt.plural)
        .unwrap_or(own)
}

/// The stored version of a resource type (itself unless another version of it comes first).
pub fn storage_of(r: &ResourceType) -> &'static ResourceType {
    &RESOURCES[index_of(r)]
}

/// Whether `r` is served at a version other than the stored one, so that objects read
/// through it need their `apiVersion` rewritten (CRD conversion strategy `None`).
pub fn converts(r: &ResourceType) -> bool {
    storage_of(r).version != r.version
}

/// `obj` as served at `r`'s version: the same object with `apiVersion` set to `r`'s
/// (conversion strategy `None`). List items and Table rows' objects are rewritten too.
pub fn as_served(r: &ResourceType, obj: &mut serde_json::Value) {
    if !converts(r) {
        return;
    }
    let stored = storage_of(r).api_version();
    let served = r.api_version();
    let fix = |o: &mut serde_json::Value| {
        if let Some(m) = o.as_object_mut()
            && m.get("apiVersion").and_then(serde_json::Value::as_str) == Some(stored.as_str())
        {
            m.insert(
                "apiVersion".into(),
                serde_json::Value::String(served.clone()),
            );
        }
    };
    fix(obj);
    if let Some(items) = obj
        .get_mut("items")
        .and_then(serde_json::Value::as_array_mut)
    {
        items.iter_mut().for_each(fix);
    }
    if let Some(rows) = obj
        .get_mut("rows")
        .and_then(serde_json::Value::as_array_mut)
    {
        rows.iter_mut()
            .filter_map(|r| r.get_mut("object"))
            .for_each(fix);
    }
}

/// Groups in discovery order, each with its versions.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, vs)) => {
                if !vs.contains(&r.version) {
                    vs.push(r.version)
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn istio_versions_share_one_storage_and_traefik_groups_do_not() {
        let v1 = find("networking.istio.io", "v1", "virtualservices").expect("v1");
        let beta = find("networking.istio.io", "v1beta1", "virtualservices").expect("v1beta1");
        assert_eq!(index_of(v1), index_of(beta));
        assert!(std::ptr::eq(storage_of(beta), v1));
        assert!(converts(beta) && !converts(v1));
        let dr = find("networking.istio.io", "v1beta1", "destinationrules").expect("dr");
        assert_ne!(index_of(dr), index_of(v1));
        assert_eq!(
            by_kind("networking.istio.io", "VirtualService").map(|r| r.version),
            Some("v1")
        );
        let new = find("traefik.io", "v1alpha1", "traefikservices").expect("traefik.io");
        let old = find("traefik.containo.us", "v1alpha1", "traefikservices").expect("containo");
        assert_ne!(index_of(new), index_of(old));
        assert!(!converts(new) && !converts(old));
        // Every other type is its own storage.
        for (i, r) in RESOURCES.iter().enumerate() {
            if r.group != "networking.istio.io" || r.version == "v1" {
                assert_eq!(index_of(r), i, "{} {}", r.group, r.plural);
            }
        }
        let groups = groups();
        let istio = groups.iter().find(|(g, _)| *g == "networking.istio.io");
        assert_eq!(istio.map(|(_, v)| v.clone()), Some(vec!["v1", "v1beta1"]));
    }

    #[test]
    fn objects_are_served_under_the_requested_version() {
        let beta = find("networking.istio.io", "v1beta1", "virtualservices").expect("v1beta1");
        let mut obj = json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService"});
        as_served(beta, &mut obj);
        assert_eq!(obj["apiVersion"], "networking.istio.io/v1beta1");
        let mut list = json!({"apiVersion": "networking.istio.io/v1", "items": [
            {"apiVersion": "networking.istio.io/v1"}, 7
        ], "rows": [{"object": {"apiVersion": "networking.istio.io/v1"}}, {"object": null}]});
        as_served(beta, &mut list);
        assert_eq!(
            list["items"][0]["apiVersion"],
            "networking.istio.io/v1beta1"
        );
        assert_eq!(
            list["rows"][0]["object"]["apiVersion"],
            "networking.istio.io/v1beta1"
        );
        // Anything else (a Status, a Scale) is left alone, and so is every stored version.
        let mut status = json!({"apiVersion": "v1", "kind": "Status"});
        as_served(beta, &mut status);
        assert_eq!(status["apiVersion"], "v1");
        let v1 = find("networking.istio.io", "v1", "virtualservices").expect("v1");
        let mut obj = json!({"apiVersion": "networking.istio.io/v1"});
        as_served(v1, &mut obj);
        assert_eq!(obj["apiVersion"], "networking.istio.io/v1");
    }
}
