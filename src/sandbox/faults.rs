//! Injected faults, for drills and tests: per environment (namespace), app and optionally
//! version, an error ratio, added latency, a crash loop, a readiness failure or a slow rollout;
//! and per namespace (or everywhere) a delay of API writes (`apiDelay`).
//! Each fault has an id, a start time and an optional duration. The kubelet and the traffic
//! model consult [`Faults::active`] at every step, so faults take effect (and clear) on the
//! simulated clock.

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "value")]
pub enum FaultKind {
    /// Fraction of requests (0..=1) answered with 5xx.
    ErrorRatio(f64),
    /// Milliseconds added to every request's latency.
    Latency(f64),
    /// Containers exit shortly after start and back off, as with a bad image.
    CrashLoop,
    /// Readiness probes fail: pods stay Running but not Ready.
    ReadinessFailure,
    /// New pods take this many extra seconds to become Ready.
    SlowRollout(f64),
    /// API writes (POST, PUT, PATCH, DELETE) in the fault's namespace (every namespace when it
    /// names none) are held this many seconds of wall-clock time before they are processed.
    ApiDelay(f64),
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    pub id: String,
    /// The environment: a namespace (for `apiDelay`, empty = every namespace).
    #[serde(default)]
    pub namespace: String,
    /// The app (not used by `apiDelay`).
    #[serde(default)]
    pub app: String,
    /// Matches a pod's image tag or its `version`/`track` label; none = every version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(flatten)]
    pub kind: FaultKind,
    #[serde(with = "ts")]
    pub start: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
}

mod ts {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::super::clock::format_time(*t))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Fault {
    pub fn end(&self) -> Option<Timestamp> {
        self.duration_seconds
            .map(|d| self.start + SignedDuration::from_secs_f64(d.max(0.0)))
    }

    pub fn active_at(&self, t: Timestamp) -> bool {
        t >= self.start && self.end().is_none_or(|e| t < e)
    }

    /// Whether the fault applies to a pod of `app` in `namespace` with these version names.
    pub fn targets(&self, namespace: &str, app: &str, versions: &[&str]) -> bool {
        !matches!(self.kind, FaultKind::ApiDelay(_))
            && self.namespace == namespace
            && self.app == app
            && self
                .version
                .as_deref()
                .is_none_or(|v| versions.contains(&v))
    }
}

/// A request to inject a fault (the body of `POST /sandbox/v1/faults`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultSpec {
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub app: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Seconds from now until it starts (default 0).
    #[serde(default)]
    pub delay_seconds: Option<f64>,
    #[serde(default)]
    pub duration_seconds: Option<f64>,
}

#[derive(Debug, Default)]
pub struct Faults {
    inner: Mutex<(u64, Vec<Fault>)>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FaultError {
    #[error("{0}")]
    Invalid(String),
    #[error("no fault with id {0}")]
    NotFound(String),
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Vec<Fault>)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, spec: FaultSpec, now: Timestamp) -> Result<Fault, FaultError> {
        let api_delay = matches!(spec.kind, FaultKind::ApiDelay(_));
        if !api_delay && (spec.namespace.is_empty() || spec.app.is_empty()) {
            return Err(FaultError::Invalid(
                "a fault needs namespace and app".into(),
            ));
        }
        match spec.kind {
            FaultKind::ApiDelay(secs) if !(0.0..=3_600.0).contains(&secs) => {
                return Err(FaultError::Invalid(format!(
                    "apiDelay must be within 0..3600 seconds, got {secs}"
                )));
            }
            FaultKind::ErrorRatio(r) if !(0.0..=1.0).contains(&r) => {
                return Err(FaultError::Invalid(format!(
                    "errorRatio must be within 0..1, got {r}"
                )));
            }
            FaultKind::Latency(ms) | FaultKind::SlowRollout(ms)
                if !(0.0..=3_600_000.0).contains(&ms) =>
            {
                return Err(FaultError::Invalid(format!("value out of range: {ms}")));
            }
            _ => {}
        }
        if spec
            .duration_seconds
            .is_some_and(|d| !(d > 0.0 && d.is_finite()))
        {
            return Err(FaultError::Invalid(
                "durationSeconds must be a positive number".into(),
            ));
        }
        let delay = spec.delay_seconds.unwrap_or(0.0);
        if !(delay >= 0.0 && delay.is_finite()) {
            return Err(FaultError::Invalid("delaySeconds must be >= 0".into()));
        }
        let mut g = self.lock();
        g.0 += 1;
        let fault = Fault {
            id: format!("f{}", g.0),
            namespace: spec.namespace,
            app: spec.app,
            version: spec.version.filter(|v| !v.is_empty()),
            kind: spec.kind,
            start: now + SignedDuration::from_secs_f64(delay),
            duration_seconds: spec.duration_seconds,
        };
        g.1.push(fault.clone());
        Ok(fault)
    }

    pub fn list(&self) -> Vec<Fault> {
        self.lock().1.clone()
    }

    pub fn remove(&self, id: &str) -> Result<Fault, FaultError> {
        let mut g = self.lock();
        let pos =
            g.1.iter()
                .position(|f| f.id == id)
                .ok_or_else(|| FaultError::NotFound(id.to_string()))?;
        Ok(g.1.remove(pos))
    }

    pub fn clear(&self) -> usize {
        let mut g = self.lock();
        let n = g.1.len();
        g.1.clear();
        n
    }

    /// Faults active at `t` for a pod.
    pub fn active(
        &self,
        namespace: &str,
        app: &str,
        versions: &[&str],
        t: Timestamp,
    ) -> Vec<Fault> {
        self.lock()
            .1
            .iter()
            .filter(|f| f.active_at(t) && f.targets(namespace, app, versions))
            .cloned()
            .collect()
    }

    /// How long to hold an API write in `namespace` (None for cluster-scoped objects) at `t`:
    /// the longest active `apiDelay` for that namespace or for every namespace.
    pub fn api_delay(&self, namespace: Option<&str>, t: Timestamp) -> Option<f64> {
        self.lock()
            .1
            .iter()
            .filter(|f| f.active_at(t))
            .filter(|f| f.namespace.is_empty() || Some(f.namespace.as_str()) == namespace)
            .filter_map(|f| match f.kind {
                FaultKind::ApiDelay(s) if s > 0.0 => Some(s),
                _ => None,
            })
            .reduce(f64::max)
    }

    /// All faults (active or not) for a pod, for computing its timeline.
    pub fn for_pod(&self, namespace: &str, app: &str, versions: &[&str]) -> Vec<Fault> {
        self.lock()
            .1
            .iter()
            .filter(|f| f.targets(namespace, app, versions))
            .cloned()
            .collect()
    }
}

/// The names a pod's version goes by: its image tag and its `version`/`track` labels.
pub fn version_names(pod: &serde_json::Value) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(img) = pod
        .pointer("/spec/containers/0/image")
        .and_then(serde_json::Value::as_str)
    {
        v.push(image_tag(img).to_string());
    }
    for l in ["version", "track"] {
        if let Some(s) = pod
            .pointer(&format!("/metadata/labels/{l}"))
            .and_then(serde_json::Value::as_str)
        {
            v.push(s.to_string());
        }
    }
    v
}

/// The tag of an image reference (`latest` when it has none).
pub fn image_tag(image: &str) -> &str {
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once('@') {
        Some((_, digest)) => digest,
        None => last.split_once(':').map(|(_, t)| t).unwrap_or("latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> FaultSpec {
        serde_json::from_str(json).expect("fault spec")
    }

    #[test]
    fn api_delay_needs_no_app_and_scopes_by_namespace() {
        let f = Faults::default();
        let t: Timestamp = "2026-11-20T10:00:00Z".parse().expect("time");
        let a = f
            .add(
                spec(r#"{"kind":"apiDelay","value":5,"namespace":"production"}"#),
                t,
            )
            .expect("add");
        assert_eq!(a.kind, FaultKind::ApiDelay(5.0));
        assert_eq!(f.api_delay(Some("production"), t), Some(5.0));
        assert_eq!(f.api_delay(Some("staging"), t), None);
        assert_eq!(f.api_delay(None, t), None);
        f.add(
            spec(r#"{"kind":"apiDelay","value":2,"durationSeconds":10}"#),
            t,
        )
        .expect("add everywhere");
        assert_eq!(f.api_delay(Some("staging"), t), Some(2.0));
        assert_eq!(f.api_delay(Some("production"), t), Some(5.0));
        assert_eq!(
            f.api_delay(Some("staging"), t + SignedDuration::from_secs(11)),
            None
        );
        // Not a pod fault: the traffic model and kubelet never see it.
        assert!(f.for_pod("production", "", &[]).is_empty());
        assert!(f.add(spec(r#"{"kind":"apiDelay","value":-1}"#), t).is_err());
        assert!(
            f.add(
                spec(r#"{"kind":"latency","value":5,"namespace":"staging"}"#),
                t
            )
            .is_err(),
            "other kinds still need an app"
        );
        let json = serde_json::to_value(&a).expect("json");
        assert_eq!(json["kind"], "apiDelay");
        assert_eq!(json["value"], 5.0);
    }
}
