//! Who is calling and what they may do. The sandbox knows three bearer tokens: an admin (all
//! verbs), a viewer (get/list/watch only) and one with no rights at all, so that RBAC denials
//! can be exercised exactly as a real cluster shows them.

use http::HeaderValue;
use serde_json::{Value, json};

use super::clock::format_time;
use super::error::{ApiError, ApiResult};
use super::resources::{ResourceType, find};

/// The admin token written into the sandbox kubeconfig.
pub const ADMIN_TOKEN: &str = "kockpit-sandbox-admin";
/// A read-only user's token (get, list, watch).
pub const VIEWER_TOKEN: &str = "kockpit-sandbox-viewer";
/// A user with no rights beyond discovery and self-reviews.
pub const NO_RBAC_TOKEN: &str = "kockpit-sandbox-no-rbac";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Viewer,
    Nothing,
}

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub role: Role,
}

/// Map the Authorization header to a user; an unknown token is 401, as on a real server.
///
/// No header at all is the admin: kubectl (client-go's clientcmd) never sends credentials over
/// plain HTTP, so the sandbox treats unauthenticated loopback callers as the old insecure port
/// did. The viewer and no-RBAC tokens exist for clients that do send tokens (kube-rs, curl).
pub fn authenticate(header: Option<&HeaderValue>) -> ApiResult<User> {
    let Some(h) = header else {
        return Ok(User {
            name: "sandbox-admin".into(),
            role: Role::Admin,
        });
    };
    let token = h
        .to_str()
        .ok()
        .and_then(|s| s.strip_prefix("Bearer "))
        .map(str::trim);
    let user = match token {
        Some(ADMIN_TOKEN) => User {
            name: "sandbox-admin".into(),
            role: Role::Admin,
        },
        Some(VIEWER_TOKEN) => User {
            name: "sandbox-viewer".into(),
            role: Role::Viewer,
        },
        Some(NO_RBAC_TOKEN) => User {
            name: "system:serviceaccount:production:no-rbac".into(),
            role: Role::Nothing,
        },
        _ => return Err(ApiError::new(401, "Unauthorized", "Unauthorized")),
    };
    Ok(user)
}

/// Whether `user` may do `verb` on the resource (and subresource).
pub fn allowed(user: &User, verb: &str, rt: &ResourceType) -> bool {
    if rt.create_only {
        // Everyone may review their own access.
        return verb == "create";
    }
    match user.role {
        Role::Admin => true,
        Role::Viewer => matches!(verb, "get" | "list" | "watch"),
        Role::Nothing => false,
    }
}

/// 403 unless allowed, with the real server's message.
pub fn authorize(
    user: &User,
    verb: &str,
    rt: &ResourceType,
    sub: Option<&str>,
    name: Option<&str>,
    ns: Option<&str>,
) -> ApiResult<()> {
    if allowed(user, verb, rt) {
        return Ok(());
    }
    let resource = match sub {
        Some(s) => format!("{}/{s}", rt.plural),
        None => rt.plural.to_string(),
    };
    let mut e = ApiError::forbidden(
        &user.name,
        verb,
        &resource,
        rt.group,
        name,
        if rt.namespaced { ns } else { None },
    );
    // The subject of the message names the resource without the subresource.
    e.message = e.message.replacen(
        &super::error::qualified(&resource, rt.group),
        &super::error::qualified(rt.plural, rt.group),
        1,
    );
    if let Some(d) = e.details.as_mut() {
        d.kind = Some(rt.plural.to_string());
    }
    Err(e)
}

/// Answer a SelfSubjectAccessReview or SelfSubjectRulesReview (201, echoing the spec).
pub fn review(user: &User, rt: &ResourceType, mut body: Value, now: jiff::Timestamp) -> Value {
    let status = if rt.kind == "SelfSubjectAccessReview" {
        let attrs = body.pointer("/spec/resourceAttributes");
        let verb = attrs
            .and_then(|a| a.get("verb"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let group = attrs
            .and_then(|a| a.get("group"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let resource = attrs
            .and_then(|a| a.get("resource"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ok = if attrs.is_none() {
            // Non-resource URLs: discovery is open to all.
            true
        } else {
            let target = super::resources::RESOURCES
                .iter()
                .find(|r| r.group == group && r.plural == resource)
                .or_else(|| find(group, "v1", resource));
            match target {
                Some(t) => allowed(user, verb, t),
                // Unknown resources: only the admin (system:masters) may do anything.
                None => {
                    user.role == Role::Admin
                        || (user.role == Role::Viewer && matches!(verb, "get" | "list" | "watch"))
                }
            }
        };
        json!({"allowed": ok})
    } else {
        rules_review(user)
    };
    if let Some(m) = body.as_object_mut() {
        m.insert("kind".into(), json!(rt.kind));
        m.insert("apiVersion".into(), json!(rt.api_version()));
        m.insert(
            "metadata".into(),
            json!({"creationTimestamp": null, "managedFields": [{
                "manager": "kubectl", "operation": "Update", "apiVersion": rt.api_version(),
                "time": format_time(now), "fieldsType": "FieldsV1", "fieldsV1": {}
            }]}),
        );
        m.insert("status".into(), status);
        // Key order as the server writes it.
        let spec = m.remove("spec");
        let status = m.remove("status");
        if let Some(s) = spec {
            m.insert("spec".into(), s);
        }
        if let Some(s) = status {
            m.insert("status".into(), s);
        }
    }
    body
}

fn rules_review(user: &User) -> Value {
    let discovery = json!({"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"]});
    let reviews = json!({"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]});
    let mut rules = vec![reviews];
    match user.role {
        Role::Admin => rules.insert(
            0,
            json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}),
        ),
        Role::Viewer => rules.insert(
            0,
            json!({"verbs": ["get", "list", "watch"], "apiGroups": ["*"], "resources": ["*"]}),
        ),
        Role::Nothing => {}
    }
    json!({"resourceRules": rules, "nonResourceRules": [discovery], "incomplete": false})
}
