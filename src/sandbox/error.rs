//! Kubernetes `Status` errors, shaped exactly as kube-apiserver 1.26 sends them
//! (see `shared/fixtures/kube-apiserver-1.26/05-errors/`).

use serde_json::{Map, Value, json};

/// One entry of `details.causes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: Option<String>,
}

impl Cause {
    /// A `FieldValueInvalid` cause, the common case of a 422.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Cause {
            reason: "FieldValueInvalid".into(),
            message: message.into(),
            field: Some(field.into()),
        }
    }
}

/// Who the error is about: `details` of the Status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    pub name: Option<String>,
    pub group: Option<String>,
    /// The *resource* (plural) for NotFound/Conflict/AlreadyExists, the Kind for Invalid.
    pub kind: Option<String>,
    pub causes: Vec<Cause>,
    /// `details: {}` is sent (empty object) rather than omitted.
    pub empty_object: bool,
}

/// An error the API server answers with a `Status` body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    /// e.g. `NotFound`, `BadRequest`; empty for errors the server sends without a reason.
    pub reason: String,
    pub message: String,
    pub details: Option<Box<Details>>,
}

/// The `resource.group` form used in messages: `deployments.apps`, `pods`.
pub fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Details) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    fn named(resource: &str, group: &str, name: &str) -> Details {
        Details {
            name: Some(name.into()),
            group: Some(group.into()),
            kind: Some(resource.into()),
            ..Default::default()
        }
    }

    pub fn not_found(resource: &str, group: &str, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(resource, group)),
        )
        .with_details(Self::named(resource, group, name))
    }

    pub fn already_exists(resource: &str, group: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(resource, group)),
        )
        .with_details(Self::named(resource, group, name))
    }

    pub fn conflict(resource: &str, group: &str, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(resource, group)
            ),
        )
        .with_details(Self::named(resource, group, name))
    }

    /// 422 Invalid. `kind` is the Kind (`Deployment`), as the real server reports it.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let list: Vec<String> = causes
            .iter()
            .map(|c| match &c.field {
                Some(f) => format!("{f}: {}", c.message),
                None => c.message.clone(),
            })
            .collect();
        let joined = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        let what = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        Self::new(
            422,
            "Invalid",
            format!("{what} \"{name}\" is invalid: {joined}"),
        )
        .with_details(Details {
            name: Some(name.into()),
            group: Some(group.into()),
            kind: Some(kind.into()),
            causes,
            empty_object: false,
        })
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(Details {
            empty_object: true,
            ..Default::default()
        })
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn forbidden(
        user: &str,
        verb: &str,
        resource: &str,
        group: &str,
        name: Option<&str>,
        namespace: Option<&str>,
    ) -> Self {
        let subject = match name {
            Some(n) => format!("{} \"{n}\" is forbidden", qualified(resource, group)),
            None => format!("{} is forbidden", qualified(resource, group)),
        };
        let scope = match namespace {
            Some(ns) => format!(" in the namespace \"{ns}\""),
            None => " at the cluster scope".to_string(),
        };
        let e = Self::new(
            403,
            "Forbidden",
            format!(
                "{subject}: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\"{scope}"
            ),
        );
        e.with_details(Details {
            name: name.map(str::to_string),
            group: Some(group.into()),
            kind: Some(resource.into()),
            ..Default::default()
        })
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The `Status` object, key order as the real server writes it.
    pub fn to_status(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), json!("Status"));
        m.insert("apiVersion".into(), json!("v1"));
        m.insert("metadata".into(), json!({}));
        m.insert("status".into(), json!("Failure"));
        m.insert("message".into(), json!(self.message));
        if !self.reason.is_empty() {
            m.insert("reason".into(), json!(self.reason));
        }
        if let Some(d) = &self.details {
            let mut dm = Map::new();
            if let Some(n) = &d.name {
                dm.insert("name".into(), json!(n));
            }
            if let Some(g) = d.group.as_ref().filter(|g| !g.is_empty()) {
                dm.insert("group".into(), json!(g));
            }
            if let Some(k) = &d.kind {
                dm.insert("kind".into(), json!(k));
            }
            if !d.causes.is_empty() {
                let causes: Vec<Value> = d
                    .causes
                    .iter()
                    .map(|c| {
                        let mut cm = Map::new();
                        cm.insert("reason".into(), json!(c.reason));
                        cm.insert("message".into(), json!(c.message));
                        if let Some(f) = &c.field {
                            cm.insert("field".into(), json!(f));
                        }
                        Value::Object(cm)
                    })
                    .collect();
                dm.insert("causes".into(), Value::Array(causes));
            }
            if !dm.is_empty() || d.empty_object {
                m.insert("details".into(), Value::Object(dm));
            }
        }
        m.insert("code".into(), json!(self.code));
        Value::Object(m)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
