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

/// The index of a resource type in [`RESOURCES`].
pub fn index_of(r: &ResourceType) -> usize {
    RESOURCES
        .iter()
        .position(|x| std::ptr::eq(x, r))
        .unwrap_or_default()
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
