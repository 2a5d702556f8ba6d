//! The exit checklist of a release, evaluated against the cluster and Prometheus as they are
//! now. One function for the cockpit (every few seconds while a release is open) and for
//! `kockpit release show|conclude`:
//!
//! 1. **Pods Ready**: every pod of the new version (first container's image tag = the
//!    release's version) is Ready; terminating pods are not counted.
//! 2. **Rollout complete**: `kubectl rollout status`'s rules for every Deployment running the
//!    version (an Argo Rollout: phase Healthy).
//! 3. **Smoke checks**: each configured check passed on its last run (see [`super::smoke`]).
//! 4. **Observation**: no error-rate or latency breach of the version for the observation
//!    window since the last change (release opened or resumed, or an action on the app); read
//!    with a range query, so a restarted cockpit or the command line sees the same window.
//!    No traffic to the version is never a pass.
//! 5. **Image traceable**: every container image of the version has a tag that is not
//!    `latest` (or a digest), and all its pods run the same image ID.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use kube::Client;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::derive::image_tag;
use crate::cluster::actions::{self, ReleaseKind, Res, Router, RouterKind};
use crate::config::file::{SmokeCheck, Thresholds};
use crate::metrics::MetricsClient;

use super::smoke::SmokeResult;

/// An item's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Not yet (waiting, counting, not run yet).
    Pending,
    /// Nothing to check (no smoke checks configured).
    #[serde(rename = "n/a")]
    NotApplicable,
    /// Could not be checked (no Prometheus, an API error).
    Unknown,
}

impl Status {
    pub fn passes(self) -> bool {
        matches!(self, Status::Pass | Status::NotApplicable)
    }

    /// `✓`, `✗`, `…`, `–`, `?`.
    pub fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Fail => "✗",
            Status::Pending => "…",
            Status::NotApplicable => "–",
            Status::Unknown => "?",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

impl Item {
    fn new(name: &str, status: Status, detail: impl Into<String>) -> Item {
        Item {
            name: name.to_string(),
            status,
            detail: detail.into(),
        }
    }
}

/// The items, in their order, as evaluated at `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checklist {
    pub at: Timestamp,
    pub items: Vec<Item>,
}

impl Checklist {
    /// Every item passes (or has nothing to check).
    pub fn passed(&self) -> bool {
        !self.items.is_empty() && self.items.iter().all(|i| i.status.passes())
    }

    pub fn failing(&self) -> Vec<&Item> {
        self.items.iter().filter(|i| !i.status.passes()).collect()
    }

    /// `4/6 ✓`.
    pub fn summary(&self) -> String {
        let ok = self.items.iter().filter(|i| i.status.passes()).count();
        format!("{ok}/{} ✓", self.items.len())
    }
}

/// What to evaluate.
pub struct Context<'a> {
    pub client: &'a Client,
    pub namespace: &'a str,
    pub app: &'a str,
    pub version: &'a str,
    pub router: Option<RouterKind>,
    /// None: the environment has no Prometheus.
    pub metrics: Option<&'a MetricsClient>,
    pub environment: &'a str,
    pub thresholds: Thresholds,
    pub window_seconds: f64,
    /// Where the observation window starts.
    pub last_change: Timestamp,
    pub now: Timestamp,
    /// The smoke checks that apply, and their last results by name.
    pub smoke_checks: Vec<SmokeCheck>,
    pub smoke_results: BTreeMap<String, SmokeResult>,
}

/// `1h02m`, `3m12s`, `45s`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as i64;
    match s {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

fn secs_between(a: Timestamp, b: Timestamp) -> f64 {
    (b.as_millisecond() - a.as_millisecond()) as f64 / 1000.0
}

/// Evaluate every item now.
pub async fn evaluate(cx: &Context<'_>) -> Checklist {
    let (pods, rollout, image) = cluster_items(cx).await;
    let mut items = vec![pods, rollout];
    items.extend(smoke_items(&cx.smoke_checks, &cx.smoke_results));
    items.push(observation(cx).await);
    items.push(image);
    Checklist { at: cx.now, items }
}

/// One item per smoke check (or one saying there are none).
pub fn smoke_items(checks: &[SmokeCheck], results: &BTreeMap<String, SmokeResult>) -> Vec<Item> {
    if checks.is_empty() {
        return vec![Item::new(
            "Smoke checks",
            Status::NotApplicable,
            "none configured",
        )];
    }
    checks
        .iter()
        .map(|c| {
            let name = format!("Smoke: {}", c.name);
            match results.get(&c.name) {
                None => Item::new(&name, Status::Pending, "not run yet"),
                Some(r) => Item::new(
                    &name,
                    if r.ok { Status::Pass } else { Status::Fail },
                    format!("{} (at {})", r.detail, r.at.strftime("%H:%M:%S")),
                ),
            }
        })
        .collect()
}

/// Why a pod is not Ready, in kubectl's words where it has them.
fn pod_state(p: &Value) -> String {
    let waiting = p
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter().find_map(|c| {
                c.pointer("/state/waiting/reason")
                    .or_else(|| c.pointer("/state/terminated/reason"))
                    .and_then(Value::as_str)
            })
        });
    waiting
        .or_else(|| p.pointer("/status/phase").and_then(Value::as_str))
        .unwrap_or("Pending")
        .to_string()
}

fn version_of_pod(p: &Value) -> Option<String> {
    actions::str_at(p, "/spec/containers/0/image").map(|i| image_tag(i).to_string())
}

async fn app_objects(cx: &Context<'_>, res: &Res) -> Result<Vec<Value>, actions::ActionError> {
    let mut objs = actions::list(
        cx.client,
        cx.namespace,
        res,
        Some(&format!("app={}", cx.app)),
    )
    .await?;
    if objs.is_empty() {
        objs = actions::list(
            cx.client,
            cx.namespace,
            res,
            Some(&format!("app.kubernetes.io/name={}", cx.app)),
        )
        .await?;
    }
    Ok(objs)
}

async fn cluster_items(cx: &Context<'_>) -> (Item, Item, Item) {
    const PODS: &str = "Pods Ready";
    const ROLLOUT: &str = "Rollout complete";
    const IMAGE: &str = "Image traceable";
    let pods = match app_objects(cx, &Res::POD).await {
        Ok(p) => p,
        Err(e) => {
            let why = format!("cannot list pods: {e}");
            return (
                Item::new(PODS, Status::Unknown, why.clone()),
                Item::new(ROLLOUT, Status::Unknown, why.clone()),
                Item::new(IMAGE, Status::Unknown, why),
            );
        }
    };
    let mine: Vec<&Value> = pods
        .iter()
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
        .filter(|p| version_of_pod(p).as_deref() == Some(cx.version))
        .collect();
    (
        pods_item(cx, &mine),
        rollout_item(cx).await,
        image_item(cx, &mine),
    )
}

fn pods_item(cx: &Context<'_>, mine: &[&Value]) -> Item {
    const PODS: &str = "Pods Ready";
    if mine.is_empty() {
        return Item::new(
            PODS,
            Status::Pending,
            format!("no pods run {} yet", cx.version),
        );
    }
    let not_ready: Vec<String> = mine
        .iter()
        .filter(|p| !actions::pod_ready(p))
        .map(|p| format!("{} ({})", actions::name_of(p), pod_state(p)))
        .collect();
    let n = mine.len();
    if not_ready.is_empty() {
        Item::new(
            PODS,
            Status::Pass,
            format!("{n}/{n} pods of {} Ready", cx.version),
        )
    } else {
        let status = if not_ready.iter().any(|s| {
            s.contains("CrashLoopBackOff")
                || s.contains("ImagePullBackOff")
                || s.contains("ErrImagePull")
                || s.contains("Error")
        }) {
            Status::Fail
        } else {
            Status::Pending
        };
        Item::new(
            PODS,
            status,
            format!(
                "{}/{n} Ready; not ready: {}",
                n - not_ready.len(),
                not_ready.join(", ")
            ),
        )
    }
}

/// `kubectl rollout status` for one Deployment (as JSON), by the cockpit's own rules
/// ([`crate::app::derive::rollout`]): None when complete.
fn deployment_waiting(d: &Value) -> Option<(Status, String)> {
    use crate::app::state::Rollout;
    let name = actions::name_of(d);
    let dep: k8s_openapi::api::apps::v1::Deployment = match serde_json::from_value(d.clone()) {
        Ok(dep) => dep,
        Err(e) => return Some((Status::Unknown, format!("{name}: {e}"))),
    };
    match crate::app::derive::rollout(&crate::cluster::convert::deployment(&dep)) {
        Rollout::Complete => None,
        Rollout::WaitingForSpec => Some((
            Status::Pending,
            format!("{name}: waiting for the spec update to be observed"),
        )),
        Rollout::Paused => Some((Status::Pending, format!("{name}: paused"))),
        Rollout::Failed(m) => Some((Status::Fail, format!("{name}: {m}"))),
        Rollout::Progressing(m) => Some((Status::Pending, format!("{name}: {m}"))),
        other => Some((Status::Pending, format!("{name}: {other:?}"))),
    }
}

async fn rollout_item(cx: &Context<'_>) -> Item {
    const ROLLOUT: &str = "Rollout complete";
    let release = match actions::detect(cx.client, cx.namespace, cx.app, cx.router).await {
        Ok(r) => r,
        Err(e) => return Item::new(ROLLOUT, Status::Unknown, e.to_string()),
    };
    if let ReleaseKind::Canary {
        router: Router::Argo { rollout },
        ..
    } = &release.kind
    {
        return match actions::get(cx.client, cx.namespace, &Res::ROLLOUT, rollout).await {
            Err(e) => Item::new(ROLLOUT, Status::Unknown, e.to_string()),
            Ok(ro) => {
                let phase = ro
                    .pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or("Progressing");
                let tag = actions::template_tag(&ro).unwrap_or_default();
                let msg = ro
                    .pointer("/status/message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let status = match phase {
                    "Healthy" if tag == cx.version => Status::Pass,
                    "Degraded" => Status::Fail,
                    _ => Status::Pending,
                };
                let more = if msg.is_empty() {
                    String::new()
                } else {
                    format!(": {msg}")
                };
                Item::new(ROLLOUT, status, format!("Rollout/{rollout} {phase}{more}"))
            }
        };
    }
    let deployments = match app_objects(cx, &Res::DEPLOYMENT).await {
        Ok(d) => d,
        Err(e) => return Item::new(ROLLOUT, Status::Unknown, e.to_string()),
    };
    let mine: Vec<&Value> = deployments
        .iter()
        .filter(|d| actions::template_tag(d).as_deref() == Some(cx.version))
        .collect();
    if mine.is_empty() {
        return Item::new(
            ROLLOUT,
            Status::Pending,
            format!("no Deployment of {} runs {}", cx.app, cx.version),
        );
    }
    let waiting: Vec<(Status, String)> =
        mine.iter().filter_map(|d| deployment_waiting(d)).collect();
    if waiting.is_empty() {
        let names: Vec<&str> = mine.iter().map(|d| actions::name_of(d)).collect();
        return Item::new(
            ROLLOUT,
            Status::Pass,
            format!("deployment {} successfully rolled out", names.join(", ")),
        );
    }
    let status = if waiting.iter().any(|(s, _)| *s == Status::Fail) {
        Status::Fail
    } else {
        Status::Pending
    };
    Item::new(
        ROLLOUT,
        status,
        waiting
            .into_iter()
            .map(|(_, m)| m)
            .collect::<Vec<_>>()
            .join("; "),
    )
}

fn image_item(cx: &Context<'_>, mine: &[&Value]) -> Item {
    image_check(cx.version, mine)
}

fn image_check(version: &str, mine: &[&Value]) -> Item {
    const IMAGE: &str = "Image traceable";
    if mine.is_empty() {
        return Item::new(IMAGE, Status::Pending, format!("no pods run {version} yet"));
    }
    let mut images: BTreeSet<String> = BTreeSet::new();
    // container name → image IDs seen
    let mut ids: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut unreported: Vec<String> = Vec::new();
    for p in mine {
        for c in p
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(i) = c.get("image").and_then(Value::as_str) {
                images.insert(i.to_string());
            }
        }
        let statuses = p
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if statuses.is_empty() {
            unreported.push(actions::name_of(p).to_string());
        }
        for s in statuses {
            let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
            match s
                .get("imageID")
                .and_then(Value::as_str)
                .filter(|i| !i.is_empty())
            {
                Some(id) => {
                    *ids.entry(name.to_string())
                        .or_default()
                        .entry(id.to_string())
                        .or_default() += 1
                }
                None => unreported.push(format!("{}/{name}", actions::name_of(p))),
            }
        }
    }
    let untagged: Vec<&String> = images
        .iter()
        .filter(|i| !i.contains('@') && image_tag(i) == "latest")
        .collect();
    if !untagged.is_empty() {
        return Item::new(
            IMAGE,
            Status::Fail,
            format!(
                "{} has no version tag (`latest` or none): cannot be traced to a commit",
                untagged
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    for (container, seen) in &ids {
        if seen.len() > 1 {
            let list: Vec<String> = seen
                .iter()
                .map(|(id, n)| format!("{} ({n} pods)", short_id(id)))
                .collect();
            return Item::new(
                IMAGE,
                Status::Fail,
                format!(
                    "container {container} runs {} image IDs: {} — the tag was moved",
                    seen.len(),
                    list.join(", ")
                ),
            );
        }
    }
    if !unreported.is_empty() {
        return Item::new(
            IMAGE,
            Status::Pending,
            format!("image ID not reported yet for {}", unreported.join(", ")),
        );
    }
    let id = ids
        .values()
        .next()
        .and_then(|m| m.keys().next())
        .map(|s| short_id(s))
        .unwrap_or_default();
    Item::new(
        IMAGE,
        Status::Pass,
        format!(
            "{} on {} pod{}, one image ID {id}",
            images.iter().cloned().collect::<Vec<_>>().join(", "),
            mine.len(),
            if mine.len() == 1 { "" } else { "s" }
        ),
    )
}

/// `sha256:0123456789ab` from any image ID form.
fn short_id(id: &str) -> String {
    match id.rfind("sha256:") {
        Some(i) => id[i..].chars().take(19).collect(),
        None => id.chars().take(24).collect(),
    }
}

/// Fewer requests than this in a point's rate window: its error ratio is not judged.
pub const MIN_REQUESTS: f64 = 20.0;

async fn observation(cx: &Context<'_>) -> Item {
    const OBS: &str = "Observation";
    let window = cx.window_seconds;
    if window <= 0.0 {
        return Item::new(
            OBS,
            Status::NotApplicable,
            "no observation window configured",
        );
    }
    let Some(metrics) = cx.metrics else {
        return Item::new(
            OBS,
            Status::Unknown,
            format!("no Prometheus configured for {}", cx.environment),
        );
    };
    let since = cx.last_change.min(cx.now);
    let elapsed = secs_between(since, cx.now);
    let start = since.as_second();
    let end = cx.now.as_second().max(start + 1);
    // About 100 points over the span (at least every 5 s): enough to catch a breach that
    // lasts a rate window.
    let step = ((end - start) / 100).max(5);
    let m = match metrics
        .fetch_app(cx.namespace, cx.app, start, end, step)
        .await
    {
        Ok(m) => m,
        Err(e) => return Item::new(OBS, Status::Unknown, format!("Prometheus: {e}")),
    };
    let Some(series) = m.versions.iter().find(|v| v.version == cx.version) else {
        return Item::new(
            OBS,
            Status::Pending,
            format!(
                "no traffic to {} since {}",
                cx.version,
                since.strftime("%H:%M:%S")
            ),
        );
    };
    let t = cx.thresholds;
    let mut last_breach: Option<(i64, String)> = None;
    let mut last_traffic: Option<i64> = None;
    // The rate window of each point (as the query used it), to count its requests.
    let rate_window = crate::metrics::Grid::new(start, end, step)
        .map(|g| g.window_seconds())
        .unwrap_or(60) as f64;
    for (i, (ts, rps)) in series.rps.iter().enumerate() {
        let has_traffic = rps.is_some_and(|r| r > 0.0);
        if has_traffic {
            last_traffic = Some(*ts);
        }
        // One error among a handful of requests is not a 2 % error rate: below
        // MIN_REQUESTS in the window the error ratio is not judged (latency still is).
        let enough = rps.is_some_and(|r| r * rate_window >= MIN_REQUESTS);
        let err = series.error_ratio.get(i).and_then(|p| p.1);
        let p99 = series.p99_seconds.get(i).and_then(|p| p.1);
        if has_traffic
            && enough
            && let Some(e) = err
            && e > t.max_error_ratio
        {
            last_breach = Some((
                *ts,
                format!(
                    "error ratio {:.1} % > {:.1} %",
                    e * 100.0,
                    t.max_error_ratio * 100.0
                ),
            ));
        } else if let Some(p) = p99
            && p > t.max_p99_seconds
        {
            last_breach = Some((
                *ts,
                format!(
                    "p99 {:.0} ms > {:.0} ms",
                    p * 1000.0,
                    t.max_p99_seconds * 1000.0
                ),
            ));
        }
    }
    let window_s = duration(window);
    let now_s = cx.now.as_second();
    let Some(traffic_at) = last_traffic else {
        return Item::new(
            OBS,
            Status::Pending,
            format!(
                "no traffic to {} since {}",
                cx.version,
                since.strftime("%H:%M:%S")
            ),
        );
    };
    let clean_from = match &last_breach {
        Some((ts, _)) => (*ts).max(start),
        None => start,
    };
    let clean = (now_s - clean_from) as f64;
    let breach_note = last_breach
        .as_ref()
        .map(|(ts, why)| {
            let at = Timestamp::from_second(*ts)
                .map(|t| t.strftime("%H:%M:%S").to_string())
                .unwrap_or_default();
            format!("; last breach {at}: {why}")
        })
        .unwrap_or_default();
    if let Some((ts, why)) = &last_breach
        && now_s - ts <= 2 * step
    {
        return Item::new(
            OBS,
            Status::Fail,
            format!("breaching now: {why}; the {window_s} window restarts when it clears"),
        );
    }
    if now_s - traffic_at > 2 * step {
        return Item::new(
            OBS,
            Status::Pending,
            format!("no traffic to {} now{breach_note}", cx.version),
        );
    }
    if clean >= window && elapsed >= window {
        return Item::new(
            OBS,
            Status::Pass,
            format!(
                "no breach for {} (window {window_s}){breach_note}",
                duration(clean)
            ),
        );
    }
    Item::new(
        OBS,
        Status::Pending,
        format!(
            "clean for {} of {window_s}{breach_note}",
            duration(clean.min(elapsed))
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(duration(0.0), "0s");
        assert_eq!(duration(45.2), "45s");
        assert_eq!(duration(192.0), "3m12s");
        assert_eq!(duration(3720.0), "1h02m");
    }

    #[test]
    fn kubectl_rollout_status_rules() {
        let d = |gen_: i64, obs: i64, upd: i64, total: i64, avail: i64| {
            json!({"metadata": {"name": "web", "generation": gen_},
                   "spec": {"replicas": 3},
                   "status": {"observedGeneration": obs, "updatedReplicas": upd, "replicas": total, "availableReplicas": avail}})
        };
        assert!(deployment_waiting(&d(2, 1, 3, 3, 3)).is_some_and(|(_, m)| m.contains("observed")));
        assert_eq!(
            deployment_waiting(&d(2, 2, 1, 3, 3)).map(|x| x.1),
            Some("web: 1 of 3 updated".into())
        );
        assert!(
            deployment_waiting(&d(2, 2, 3, 4, 3))
                .is_some_and(|(_, m)| m.contains("1 old replicas"))
        );
        assert!(
            deployment_waiting(&d(2, 2, 3, 3, 2))
                .is_some_and(|(_, m)| m.contains("2 of 3 updated replicas available"))
        );
        assert_eq!(deployment_waiting(&d(2, 2, 3, 3, 3)), None);
    }

    #[test]
    fn a_moved_tag_and_latest_are_not_traceable() {
        let pod = |name: &str, image: &str, id: &str| {
            json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "app", "image": image}]},
                   "status": {"containerStatuses": [{"name": "app", "image": image, "imageID": id}]}})
        };
        let a = pod(
            "a",
            "reg/shop/web:1.2.0",
            "reg/shop/web@sha256:aaaaaaaaaaaaaaaa",
        );
        let b = pod(
            "b",
            "reg/shop/web:1.2.0",
            "reg/shop/web@sha256:bbbbbbbbbbbbbbbb",
        );
        let l = pod(
            "l",
            "reg/shop/web:latest",
            "reg/shop/web@sha256:aaaaaaaaaaaaaaaa",
        );
        let n = pod("n", "reg/shop/web", "reg/shop/web@sha256:aaaaaaaaaaaaaaaa");
        let item = |pods: &[&Value], version: &str| image_check(version, pods);
        assert_eq!(item(&[&a, &a], "1.2.0").status, Status::Pass);
        let moved = item(&[&a, &b], "1.2.0");
        assert_eq!(moved.status, Status::Fail);
        assert!(moved.detail.contains("2 image IDs"), "{}", moved.detail);
        assert_eq!(item(&[&l], "latest").status, Status::Fail);
        assert_eq!(item(&[&n], "latest").status, Status::Fail);
    }
}
