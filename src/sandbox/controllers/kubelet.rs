//! A simulated scheduler and kubelet. A pod's whole lifecycle is a pure function of its
//! creation time, its images and the clock ([`timeline`]): scheduled at once, started a second
//! later, Ready after the readiness probe's initial delay; an image marked bad crashes two
//! seconds after each start and backs off 10 s, 20 s, 40 s … up to 5 minutes, as CrashLoopBackOff
//! does. Deleted pods terminate within their grace period (at most two simulated seconds here).

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::super::Sandbox;
use super::super::clock::{format_time, parse_time};
use super::super::faults::{Fault, FaultKind, version_names};
use super::super::store::{WriteOpts, meta_str, name_of};
use super::{NODE_NAME, Note, emit_event, log_err, pods};

const MANAGER: &str = "kubelet";
/// Seconds from creation to the container starting (pull + create).
pub const START_DELAY: i64 = 1;
/// How long a bad image runs before it exits.
pub const CRASH_AFTER: i64 = 2;

/// Whether an image is marked bad: its tag says so (`:1.5.1-bad`, `broken`, `crash`).
pub fn is_bad_image(image: &str) -> bool {
    let tag = image.rsplit(':').next().unwrap_or_default();
    image.contains(':') && (tag.contains("bad") || tag.contains("broken") || tag.contains("crash"))
}

/// One run of a container: started, and (if it has) when and how it ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    pub start: Timestamp,
    /// When the run ended (it crashed); none while it runs.
    pub end: Option<Timestamp>,
}

/// Where one container is in its life at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The current run, or the one that just crashed while backing off.
    pub current: Option<Run>,
    /// The run before the current one.
    pub previous: Option<Run>,
    pub running: bool,
    pub ready: bool,
    pub restarts: i64,
    /// `ContainerCreating` or `CrashLoopBackOff` when waiting.
    pub waiting: Option<&'static str>,
}

fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

/// Periods during which the container crashes whenever it runs: a bad image always, a
/// crash-loop fault while it lasts.
fn crash_windows(
    container: &Value,
    faults: &[Fault],
    first_start: Timestamp,
) -> Vec<(Timestamp, Option<Timestamp>)> {
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut w: Vec<(Timestamp, Option<Timestamp>)> = faults
        .iter()
        .filter(|f| f.kind == FaultKind::CrashLoop)
        .map(|f| (f.start, f.end()))
        .collect();
    if is_bad_image(image) {
        w.push((first_start, None));
    }
    w
}

/// When a run that starts at `start` crashes, if it does.
fn crash_of(start: Timestamp, windows: &[(Timestamp, Option<Timestamp>)]) -> Option<Timestamp> {
    windows
        .iter()
        .filter_map(|(ws, we)| {
            let from = start.max(*ws);
            we.is_none_or(|e| from < e)
                .then(|| from + secs(CRASH_AFTER))
        })
        .min()
}

/// A container's state at `now`, given the pod's creation time and the faults aimed at it.
pub fn timeline(
    created: Timestamp,
    container: &Value,
    now: Timestamp,
    faults: &[Fault],
) -> Timeline {
    let first_start = created + secs(START_DELAY);
    if now < first_start {
        return Timeline {
            current: None,
            previous: None,
            running: false,
            ready: false,
            restarts: 0,
            waiting: Some("ContainerCreating"),
        };
    }
    let windows = crash_windows(container, faults, first_start);
    let mut run = Run {
        start: first_start,
        end: None,
    };
    let mut previous = None;
    let mut restarts = 0;
    loop {
        match crash_of(run.start, &windows) {
            Some(crash) if crash <= now => {
                let ended = Run {
                    start: run.start,
                    end: Some(crash),
                };
                restarts += 1;
                let backoff = (10_i64 << (restarts - 1).min(5)).min(300);
                let next = crash + secs(backoff);
                if now < next {
                    return Timeline {
                        current: Some(ended),
                        previous,
                        running: false,
                        ready: false,
                        restarts,
                        waiting: Some("CrashLoopBackOff"),
                    };
                }
                previous = Some(ended);
                run = Run {
                    start: next,
                    end: None,
                };
            }
            _ => break,
        }
    }
    let mut delay = container
        .pointer("/readinessProbe/initialDelaySeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0) as f64;
    // A slow rollout holds back pods created while it lasts.
    for f in faults {
        if let FaultKind::SlowRollout(extra) = f.kind
            && f.active_at(created)
        {
            delay += extra;
        }
    }
    let readiness_fails = faults
        .iter()
        .any(|f| f.kind == FaultKind::ReadinessFailure && f.active_at(now));
    Timeline {
        current: Some(run),
        previous,
        running: true,
        ready: !readiness_fails && now >= run.start + SignedDuration::from_secs_f64(delay),
        restarts,
        waiting: None,
    }
}

/// The faults aimed at a pod (all of them, active or not: its history depends on them).
pub fn pod_faults(sb: &Sandbox, p: &Value) -> Vec<Fault> {
    let ns = meta_str(p, "namespace").unwrap_or_default();
    let app = p
        .pointer("/metadata/labels/app")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let names = version_names(p);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    sb.faults.for_pod(ns, app, &names)
}

fn pod_ip(uid: &str) -> String {
    let h = uid
        .bytes()
        .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("10.244.{}.{}", (h >> 8) % 250, h % 250 + 2)
}

fn cond(type_: &str, ok: bool, prev: &Value, t: &str, reason: Option<&str>) -> Value {
    let status = if ok { "True" } else { "False" };
    let prev_c = prev
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
        });
    let transition = match prev_c {
        Some(c) if c.get("status").and_then(Value::as_str) == Some(status) => {
            c.get("lastTransitionTime").cloned().unwrap_or(json!(t))
        }
        _ => json!(t),
    };
    let mut m = Map::new();
    m.insert("type".into(), json!(type_));
    m.insert("status".into(), json!(status));
    m.insert("lastProbeTime".into(), Value::Null);
    m.insert("lastTransitionTime".into(), transition);
    if let (false, Some(r)) = (ok, reason) {
        m.insert("reason".into(), json!(r));
    }
    Value::Object(m)
}

pub fn reconcile(sb: &Sandbox, ns: &str, p: &Value, now: Timestamp) {
    let name = name_of(p).to_string();
    let Some(created) = meta_str(p, "creationTimestamp").and_then(parse_time) else {
        return;
    };
    // Graceful termination finishes within min(grace, 2 s).
    if let Some(del) = meta_str(p, "deletionTimestamp").and_then(parse_time) {
        let grace = p
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30);
        let requested = del - secs(grace);
        if now >= requested + secs(grace.min(2)) {
            sb.store.remove(pods(), ns, &name);
        }
        return;
    }
    if p.pointer("/spec/nodeName").is_none() {
        let r = sb.store.modify(
            pods(),
            ns,
            &name,
            &WriteOpts::controller("kube-scheduler"),
            |o| {
                if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.insert("nodeName".into(), json!(NODE_NAME));
                }
                Ok(())
            },
        );
        if r.is_ok() {
            emit_event(
                sb,
                p,
                Note::normal(
                    "default-scheduler",
                    "Scheduled",
                    format!("Successfully assigned {ns}/{name} to {NODE_NAME}"),
                ),
                now,
            );
        }
        log_err("schedule pod", r);
        return;
    }
    let faults = pod_faults(sb, p);
    if faults.is_empty() && settled(p) {
        // Running, Ready, a good image and no faults: nothing changes with time.
        return;
    }
    let status = pod_status(p, created, now, &faults);
    if p.get("status") == Some(&status) {
        return;
    }
    announce(sb, ns, p, &status, now);
    log_err(
        "pod status",
        sb.store
            .modify(pods(), ns, &name, &WriteOpts::status(MANAGER), |o| {
                if let Some(m) = o.as_object_mut() {
                    m.insert("status".into(), status);
                }
                Ok(())
            }),
    );
}

/// A pod whose status cannot change by itself: every container running and ready, on good
/// images.
fn settled(p: &Value) -> bool {
    let statuses = p
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array);
    let containers = p.pointer("/spec/containers").and_then(Value::as_array);
    match (statuses, containers) {
        (Some(s), Some(c)) => {
            s.len() == c.len()
                && s.iter()
                    .all(|cs| cs.get("ready") == Some(&Value::Bool(true)))
                && c.iter().all(|c| {
                    !is_bad_image(c.get("image").and_then(Value::as_str).unwrap_or_default())
                })
                && s.iter()
                    .zip(c)
                    .all(|(cs, c)| cs.get("image") == c.get("image"))
        }
        _ => false,
    }
}

/// Events a kubelet posts on transitions: Pulled/Created/Started, BackOff.
fn announce(sb: &Sandbox, ns: &str, p: &Value, new: &Value, now: Timestamp) {
    let statuses = |v: &Value| {
        v.pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let old = statuses(p);
    for c in statuses(new) {
        let cname = c.get("name").and_then(Value::as_str).unwrap_or_default();
        let prev = old.iter().find(|o| o.get("name") == c.get("name"));
        let started_now = c.pointer("/state/running/startedAt");
        let started_before = prev.and_then(|o| o.pointer("/state/running/startedAt"));
        if started_now.is_some() && started_now != started_before {
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            if prev.and_then(|o| o.get("restartCount")) == c.get("restartCount") {
                emit_event(
                    sb,
                    p,
                    Note::normal(
                        MANAGER,
                        "Pulled",
                        format!("Container image \"{image}\" already present on machine"),
                    ),
                    now,
                );
            }
            emit_event(
                sb,
                p,
                Note::normal(MANAGER, "Created", format!("Created container {cname}")),
                now,
            );
            emit_event(
                sb,
                p,
                Note::normal(MANAGER, "Started", format!("Started container {cname}")),
                now,
            );
        }
        let waiting = c.pointer("/state/waiting/reason").and_then(Value::as_str);
        let waiting_before = prev
            .and_then(|o| o.pointer("/state/waiting/reason"))
            .and_then(Value::as_str);
        if waiting == Some("CrashLoopBackOff") && waiting_before != Some("CrashLoopBackOff") {
            let pod = name_of(p);
            emit_event(
                sb,
                p,
                Note::warning(
                    MANAGER,
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {cname} in pod {pod}_{ns}({})",
                        super::uid_of(p)
                    ),
                ),
                now,
            );
        }
    }
}

/// The status a kubelet would report for `p` at `now`.
pub fn pod_status(p: &Value, created: Timestamp, now: Timestamp, faults: &[Fault]) -> Value {
    let t0 = format_time(created);
    let containers = p
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut statuses = Vec::new();
    let mut all_ready = !containers.is_empty();
    let mut any_started = false;
    let mut waiting_reason = None;
    for c in &containers {
        let tl = timeline(created, c, now, faults);
        all_ready &= tl.ready;
        any_started |= tl.current.is_some();
        let started_at = tl.current.map(|r| r.start);
        let last_terminated = if tl.running { tl.previous } else { tl.current };
        let cname = c.get("name").and_then(Value::as_str).unwrap_or_default();
        let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
        let state = match (tl.running, tl.waiting) {
            (true, _) => json!({"running": {"startedAt": started_at.map(format_time)}}),
            (false, Some("CrashLoopBackOff")) => {
                waiting_reason.get_or_insert("CrashLoopBackOff");
                json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off restarting failed container {cname} in pod {}_{}({})", name_of(p), meta_str(p, "namespace").unwrap_or_default(), super::uid_of(p))}})
            }
            _ => {
                waiting_reason.get_or_insert("ContainerCreating");
                json!({"waiting": {"reason": "ContainerCreating"}})
            }
        };
        let last_state = match last_terminated.and_then(|r| r.end.map(|e| (r.start, e))) {
            Some((s, f)) => {
                json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": format_time(s), "finishedAt": format_time(f), "containerID": format!("sandbox://{}/{cname}/{}", super::uid_of(p), tl.restarts - 1)}})
            }
            None => json!({}),
        };
        let mut m = Map::new();
        m.insert("name".into(), json!(cname));
        m.insert("state".into(), state);
        m.insert("lastState".into(), last_state);
        m.insert("ready".into(), json!(tl.ready));
        m.insert("restartCount".into(), json!(tl.restarts));
        m.insert("image".into(), json!(image));
        if started_at.is_some() {
            m.insert("imageID".into(), json!(image_id(image)));
            m.insert(
                "containerID".into(),
                json!(format!(
                    "sandbox://{}/{cname}/{}",
                    super::uid_of(p),
                    tl.restarts
                )),
            );
        }
        m.insert("started".into(), json!(tl.running));
        statuses.push(Value::Object(m));
    }
    let t = format_time(now);
    let phase = if any_started { "Running" } else { "Pending" };
    let not_ready_reason = Some("ContainersNotReady");
    let conditions = json!([
        cond("Initialized", true, p, &t0, None),
        cond("Ready", all_ready, p, &t, not_ready_reason),
        cond("ContainersReady", all_ready, p, &t, not_ready_reason),
        cond("PodScheduled", true, p, &t0, None),
    ]);
    let mut s = Map::new();
    s.insert("phase".into(), json!(phase));
    s.insert("conditions".into(), conditions);
    s.insert("hostIP".into(), json!("127.0.0.1"));
    if any_started || waiting_reason == Some("ContainerCreating") {
        let ip = pod_ip(super::uid_of(p));
        if any_started {
            s.insert("podIP".into(), json!(ip));
            s.insert("podIPs".into(), json!([{"ip": ip}]));
        }
    }
    s.insert("startTime".into(), json!(t0));
    s.insert("containerStatuses".into(), Value::Array(statuses));
    s.insert(
        "qosClass".into(),
        p.pointer("/status/qosClass")
            .cloned()
            .unwrap_or(json!("BestEffort")),
    );
    Value::Object(s)
}

/// The image ID a container runtime reports for `image`: its repository and the digest the
/// tag resolved to (`registry.local/checkout@sha256:…`). The sandbox's registry never moves a
/// tag, so one tag is always one digest.
pub fn image_id(image: &str) -> String {
    use sha2::{Digest, Sha256};
    let repo = match image.rsplit_once('@') {
        Some((r, _)) => r,
        None => match image.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => r,
            _ => image,
        },
    };
    format!(
        "{repo}@sha256:{}",
        hex::encode(Sha256::digest(image.as_bytes()))
    )
}
