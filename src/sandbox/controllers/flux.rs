//! A small Flux: the source controller's GitRepository and the kustomize controller's
//! Kustomization (`source.toolkit.fluxcd.io/v1`, `kustomize.toolkit.fluxcd.io/v1`), reading a
//! real Git repository on the local disk (see [`crate::gitops::read`]).
//!
//! * GitRepository: `spec.url` (a `file://` URL or a path, bare or not), `spec.ref.branch`
//!   (default `master`, as Flux), `spec.interval`, `spec.suspend`. Each reconcile resolves the
//!   branch head and records it as the artifact (`status.artifact.revision` =
//!   `<branch>@sha1:<commit>`), Ready `Succeeded` "stored artifact for revision '…'", or Ready
//!   False `GitOperationFailed` (keeping the last artifact). Only branch refs are followed.
//! * Kustomization: `spec.sourceRef` (a GitRepository, optionally in another namespace),
//!   `spec.path`, `spec.interval`, `spec.suspend`, `spec.targetNamespace`, `spec.prune`. Each
//!   reconcile reads the YAML files under the path at the source's artifact commit (every
//!   document of every `*.yaml`/`*.yml`, recursively; `kustomization.yaml` files are skipped and
//!   not interpreted: no patches, images, generators or `resources:` lists) and applies each
//!   object (Namespaces first): created if absent, else the manifest is merged into the live
//!   object (mappings key by key, lists and scalars replaced, `status` untouched) and written
//!   only when that changes something. Drift on fields the manifest sets is thus undone every
//!   interval, as Flux's server-side apply does; fields dropped from a manifest are left on the
//!   live object (no field-ownership bookkeeping). Applied objects carry Flux's ownership
//!   labels, the status keeps Flux's inventory, and with `prune: true` objects of the previous
//!   inventory missing from the new one are deleted (not when the Kustomization itself is
//!   deleted: there is no finalizer). A YAML error fails the whole build (Ready False
//!   `BuildFailed`, nothing applied); an object the API server rejects fails the reconcile
//!   (Ready False `ReconciliationFailed`) but the others are still applied.
//!
//! Both reconcile when their interval has passed on the sandbox clock, when their spec changes
//! (`generation` ≠ `status.observedGeneration`), and when the annotation
//! `reconcile.fluxcd.io/requestedAt` differs from `status.lastHandledReconcileAt` (what
//! `flux reconcile` sets); a Kustomization also when its source's artifact revision differs from
//! its `status.lastAttemptedRevision`. Next-due times are kept in memory ([`FluxState`]), so
//! nothing is read from Git when nothing is due.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::super::Sandbox;
use super::super::clock::format_time;
use super::super::resources::{RESOURCES, ResourceType};
use super::super::store::{WriteOpts, meta_str, metadata_mut, name_of};
use super::{
    Note, annotation, emit_event, gitrepositories, i64_at, kustomizations, log_err, uid_of,
};
use crate::gitops::read::{self, ReadError};

/// Field manager and event source of the GitRepository controller.
pub const SOURCE_MANAGER: &str = "source-controller";
/// Field manager and event source of the Kustomization controller.
pub const KUSTOMIZE_MANAGER: &str = "kustomize-controller";
/// What `flux reconcile` sets to ask for a reconcile now.
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
/// Flux's ownership labels on what a Kustomization applied.
pub const NAME_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";
pub const NAMESPACE_LABEL: &str = "kustomize.toolkit.fluxcd.io/namespace";
/// `disabled` on a live object: the Kustomization leaves it alone.
const RECONCILE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/reconcile";
/// `disabled` on a live object: never pruned.
const PRUNE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/prune";
/// Flux's GitRepository default branch.
const DEFAULT_BRANCH: &str = "master";
/// When `spec.interval` is missing or unparseable (Flux requires it).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Shortest interval honoured, so that a `0s` cannot spin the controller loop.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The controllers' memory between passes: when each object (by uid) is next due.
#[derive(Debug, Default)]
pub struct FluxState {
    next_due: Mutex<HashMap<String, Timestamp>>,
}

impl FluxState {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Timestamp>> {
        self.next_due.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn interval_passed(&self, uid: &str, now: Timestamp) -> bool {
        self.lock().get(uid).is_none_or(|t| now >= *t)
    }

    fn schedule(&self, uid: &str, at: Timestamp) {
        let mut m = self.lock();
        // Objects come and go; forget the long-overdue ones (deleted objects among them).
        if m.len() > 4096 {
            m.retain(|_, t| *t > at - SignedDuration::from_hours(24));
        }
        m.insert(uid.to_string(), at);
    }
}

/// A Go duration (`time.ParseDuration`): `1m`, `30s`, `500ms`, `1h30m`, `1.5h`, `0`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let n: f64 = num.parse().ok()?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * scale;
        rest = after;
    }
    Duration::try_from_secs_f64(total).ok()
}

fn interval_of(obj: &Value) -> Duration {
    obj.pointer("/spec/interval")
        .and_then(Value::as_str)
        .and_then(parse_duration)
        .unwrap_or(DEFAULT_INTERVAL)
        .max(MIN_INTERVAL)
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn add(now: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(now)
}

/// Whether a Flux object is to be reconciled now (suspended ones never are).
fn due(sb: &Sandbox, obj: &Value, now: Timestamp) -> bool {
    if obj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return false;
    }
    let generation = i64_at(obj, "/metadata/generation");
    let observed = obj
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    if observed != Some(generation) {
        return true;
    }
    if let Some(req) = annotation(obj, REQUESTED_AT)
        && Some(req) != str_at(obj, "/status/lastHandledReconcileAt")
    {
        return true;
    }
    sb.flux.interval_passed(uid_of(obj), now)
}

/// Both controllers over one namespace: sources first, so that a Kustomization sees a new
/// artifact in the same pass.
pub fn reconcile(sb: &Sandbox, ns: &str, now: Timestamp) {
    for repo in sb.store.list(gitrepositories(), Some(ns)).0 {
        if due(sb, &repo, now) {
            reconcile_source(sb, ns, &repo, now);
            sb.flux
                .schedule(uid_of(&repo), add(now, interval_of(&repo)));
        }
    }
    for ks in sb.store.list(kustomizations(), Some(ns)).0 {
        let new_artifact = source_revision(sb, ns, &ks).is_some_and(|rev| {
            ks.pointer("/status/lastAttemptedRevision")
                .and_then(Value::as_str)
                != Some(rev.as_str())
        }) && ks.pointer("/spec/suspend").and_then(Value::as_bool) != Some(true);
        if new_artifact || due(sb, &ks, now) {
            reconcile_kustomization(sb, ns, &ks, now);
            sb.flux.schedule(uid_of(&ks), add(now, interval_of(&ks)));
        }
    }
}

// ---------- conditions and status ----------

/// A condition as Flux writes it, keeping the old `lastTransitionTime` when the status is the
/// same as before.
fn condition(
    old: &Value,
    ty: &str,
    ok: bool,
    reason: &str,
    message: &str,
    generation: i64,
    now: Timestamp,
) -> Value {
    let status = if ok { "True" } else { "False" };
    let since = old
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter().find(|c| {
                c.get("type").and_then(Value::as_str) == Some(ty)
                    && c.get("status").and_then(Value::as_str) == Some(status)
            })
        })
        .and_then(|c| c.get("lastTransitionTime"))
        .cloned()
        .unwrap_or_else(|| json!(format_time(now)));
    json!({
        "lastTransitionTime": since,
        "message": message,
        "observedGeneration": generation,
        "reason": reason,
        "status": status,
        "type": ty,
    })
}

fn ready_of(obj: &Value) -> Option<(&str, &str)> {
    let c = obj
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))?;
    Some((
        c.get("status").and_then(Value::as_str).unwrap_or_default(),
        c.get("message").and_then(Value::as_str).unwrap_or_default(),
    ))
}

/// The status fields every Flux object carries: `observedGeneration` and
/// `lastHandledReconcileAt` (the request just handled, else the last one).
fn base_status(obj: &Value) -> Map<String, Value> {
    let mut st = Map::new();
    st.insert(
        "observedGeneration".into(),
        json!(i64_at(obj, "/metadata/generation")),
    );
    if let Some(req) =
        annotation(obj, REQUESTED_AT).or_else(|| str_at(obj, "/status/lastHandledReconcileAt"))
    {
        st.insert("lastHandledReconcileAt".into(), json!(req));
    }
    st
}

/// Write `status` through the status subresource, unless it is what is stored already.
fn write_status(
    sb: &Sandbox,
    rt: &ResourceType,
    ns: &str,
    obj: &Value,
    status: Map<String, Value>,
    manager: &str,
) {
    let status = Value::Object(status);
    if obj.get("status") == Some(&status) {
        return;
    }
    log_err(
        "flux status",
        sb.store
            .modify(rt, ns, name_of(obj), &WriteOpts::status(manager), |o| {
                if let Some(m) = o.as_object_mut() {
                    m.insert("status".into(), status);
                }
                Ok(())
            }),
    );
}

/// A Warning Event for a failure, once per distinct message (not every interval).
fn warn_once(sb: &Sandbox, obj: &Value, component: &str, reason: &str, msg: &str, now: Timestamp) {
    if ready_of(obj) != Some(("False", msg)) {
        emit_event(
            sb,
            obj,
            Note::warning(component, reason, msg.to_string()),
            now,
        );
    }
}

// ---------- GitRepository ----------

/// The branch a GitRepository follows, or why it cannot be followed.
fn branch_of(repo: &Value) -> Result<String, String> {
    let Some(r) = repo.pointer("/spec/ref").filter(|r| !r.is_null()) else {
        return Ok(DEFAULT_BRANCH.into());
    };
    for other in ["tag", "semver", "name", "commit"] {
        if r.get(other)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            return Err(format!(
                "spec.ref.{other} is not supported by the sandbox's source-controller: use spec.ref.branch"
            ));
        }
    }
    Ok(r.get("branch")
        .and_then(Value::as_str)
        .filter(|b| !b.is_empty())
        .unwrap_or(DEFAULT_BRANCH)
        .to_string())
}

fn reconcile_source(sb: &Sandbox, ns: &str, repo: &Value, now: Timestamp) {
    let generation = i64_at(repo, "/metadata/generation");
    let url = str_at(repo, "/spec/url").unwrap_or_default();
    let head = branch_of(repo).and_then(|branch| {
        read::resolve_branch(url, &branch)
            .map(|h| (branch, h))
            .map_err(|e| format!("failed to checkout and determine revision: {e}"))
    });
    let mut st = base_status(repo);
    let old_artifact = repo.pointer("/status/artifact").cloned();
    match head {
        Ok((branch, head)) => {
            let revision = format!("{branch}@sha1:{}", head.commit);
            let msg = format!("stored artifact for revision '{revision}'");
            let unchanged = old_artifact
                .as_ref()
                .and_then(|a| a.get("revision"))
                .and_then(Value::as_str)
                == Some(revision.as_str());
            let artifact = match old_artifact {
                Some(a) if unchanged => a,
                _ => {
                    let path = format!(
                        "gitrepository/{ns}/{}/{}.tar.gz",
                        name_of(repo),
                        head.commit
                    );
                    json!({
                        "lastUpdateTime": format_time(now),
                        "path": path,
                        "revision": revision,
                        "url": format!("http://source-controller.flux-system.svc.cluster.local./{path}"),
                    })
                }
            };
            st.insert("artifact".into(), artifact);
            st.insert(
                "conditions".into(),
                json!([
                    condition(repo, "Ready", true, "Succeeded", &msg, generation, now),
                    condition(
                        repo,
                        "ArtifactInStorage",
                        true,
                        "Succeeded",
                        &msg,
                        generation,
                        now
                    ),
                ]),
            );
            if !unchanged {
                emit_event(
                    sb,
                    repo,
                    Note::normal(
                        SOURCE_MANAGER,
                        "NewArtifact",
                        format!("stored artifact for commit '{}'", head.summary),
                    ),
                    now,
                );
            }
        }
        Err(msg) => {
            let mut conditions = vec![
                condition(
                    repo,
                    "Ready",
                    false,
                    "GitOperationFailed",
                    &msg,
                    generation,
                    now,
                ),
                condition(
                    repo,
                    "FetchFailed",
                    true,
                    "GitOperationFailed",
                    &msg,
                    generation,
                    now,
                ),
            ];
            if let Some(a) = old_artifact {
                // The last good artifact stays served.
                let stored = format!(
                    "stored artifact for revision '{}'",
                    a.get("revision")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                );
                conditions.push(condition(
                    repo,
                    "ArtifactInStorage",
                    true,
                    "Succeeded",
                    &stored,
                    generation,
                    now,
                ));
                st.insert("artifact".into(), a);
            }
            st.insert("conditions".into(), Value::Array(conditions));
            warn_once(sb, repo, SOURCE_MANAGER, "GitOperationFailed", &msg, now);
        }
    }
    write_status(sb, gitrepositories(), ns, repo, st, SOURCE_MANAGER);
}

// ---------- Kustomization ----------

/// `(namespace, name)` of a Kustomization's source, or why there is none to use.
fn source_ref(ns: &str, ks: &Value) -> Result<(String, String), String> {
    let kind = str_at(ks, "/spec/sourceRef/kind").unwrap_or("GitRepository");
    let name = str_at(ks, "/spec/sourceRef/name").unwrap_or_default();
    let src_ns = str_at(ks, "/spec/sourceRef/namespace")
        .filter(|n| !n.is_empty())
        .unwrap_or(ns);
    if kind != "GitRepository" {
        return Err(format!(
            "source '{kind}/{src_ns}/{name}': only GitRepository sources are supported by the sandbox"
        ));
    }
    Ok((src_ns.to_string(), name.to_string()))
}

/// The artifact revision of a Kustomization's source, when it has one.
fn source_revision(sb: &Sandbox, ns: &str, ks: &Value) -> Option<String> {
    let (src_ns, name) = source_ref(ns, ks).ok()?;
    let src = sb.store.get(gitrepositories(), &src_ns, &name)?;
    str_at(&src, "/status/artifact/revision").map(str::to_string)
}

/// The commit of an artifact revision: `main@sha1:<hex>` (Flux v1) or `main/<hex>` (older).
fn revision_commit(rev: &str) -> &str {
    rev.rsplit_once("sha1:")
        .or_else(|| rev.rsplit_once('/'))
        .map_or(rev, |(_, c)| c)
}

/// One object to apply: its type, namespace (empty when cluster-scoped) and manifest.
struct Planned {
    rt: &'static ResourceType,
    ns: String,
    name: String,
    obj: Value,
}

impl Planned {
    fn id(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.ns, self.name, self.rt.group, self.rt.kind
        )
    }
    fn describe(&self) -> String {
        if self.ns.is_empty() {
            format!("{}/{}", self.rt.kind, self.name)
        } else {
            format!("{}/{}/{}", self.rt.kind, self.ns, self.name)
        }
    }
}

/// A served, storable type by apiVersion and kind.
fn type_of(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind && !r.create_only)
}

fn is_kustomize_config(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    matches!(
        base,
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    )
}

/// Every object document of the files, as JSON (empty documents skipped), or the first YAML
/// error naming its file.
pub fn parse_manifests(files: &[(String, String)]) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    for (path, text) in files.iter().filter(|(p, _)| !is_kustomize_config(p)) {
        for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let v = Value::deserialize(doc).map_err(|e| format!("{path}: {e}"))?;
            match v {
                Value::Null => {}
                Value::Object(_) => out.push((path.clone(), v)),
                _ => {
                    return Err(format!(
                        "{path}: document {} is not a Kubernetes object",
                        i + 1
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// What the build of a Kustomization's manifests yields: objects to apply, or errors.
struct Build {
    planned: Vec<Planned>,
    /// Objects of kinds the API server does not serve (applied as failures, like a rejection).
    unknown: Vec<String>,
}

fn build(ks_ns: &str, ks: &Value, docs: Vec<(String, Value)>) -> Result<Build, String> {
    let target = str_at(ks, "/spec/targetNamespace").filter(|t| !t.is_empty());
    let mut planned: Vec<Planned> = Vec::new();
    let mut unknown = Vec::new();
    let mut seen = HashSet::new();
    for (path, mut obj) in docs {
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        if api_version.is_empty() || kind.is_empty() {
            return Err(format!("{path}: an object has no apiVersion or kind"));
        }
        if api_version.starts_with("kustomize.config.k8s.io/") {
            continue;
        }
        let name = name_of(&obj).to_string();
        if name.is_empty() {
            return Err(format!("{path}: {kind} has no metadata.name"));
        }
        let Some(rt) = type_of(api_version, kind) else {
            unknown.push(format!(
                "{kind}/{name}: no matches for kind \"{kind}\" in version \"{api_version}\""
            ));
            continue;
        };
        let ns = if rt.namespaced {
            target
                .or_else(|| meta_str(&obj, "namespace").filter(|n| !n.is_empty()))
                .unwrap_or(ks_ns)
                .to_string()
        } else {
            String::new()
        };
        strip_server_fields(&mut obj);
        let meta = metadata_mut(&mut obj);
        if rt.namespaced {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        if let Some(l) = labels.as_object_mut() {
            l.insert(NAME_LABEL.into(), json!(name_of(ks)));
            l.insert(NAMESPACE_LABEL.into(), json!(ks_ns));
        }
        let p = Planned { rt, ns, name, obj };
        if !seen.insert(p.id()) {
            return Err(format!(
                "{path}: {} is defined more than once",
                p.describe()
            ));
        }
        planned.push(p);
    }
    // Namespaces first, as Flux applies cluster definitions before what lives in them.
    planned.sort_by_key(|p| p.rt.kind != "Namespace");
    Ok(Build { planned, unknown })
}

/// What the API server owns in an object: never applied from a manifest.
fn strip_server_fields(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        m.remove("status");
    }
    let meta = metadata_mut(obj);
    for f in [
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    ] {
        meta.remove(f);
    }
}

/// Merge `manifest` into `live`: mappings key by key (recursively), anything else (lists,
/// scalars) replaced; a `null` in the manifest removes the key, as with `kubectl apply`.
pub fn merge(live: &mut Value, manifest: &Value) {
    match (live, manifest) {
        (Value::Object(l), Value::Object(m)) => {
            for (k, v) in m {
                if v.is_null() {
                    l.remove(k);
                } else if let Some(x) = l.get_mut(k) {
                    merge(x, v);
                } else {
                    l.insert(k.clone(), v.clone());
                }
            }
        }
        (l, m) => *l = m.clone(),
    }
}

/// The merge, less `null`s: what a new object is created from.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), without_nulls(x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn owned_by(obj: &Value, ks_ns: &str, ks_name: &str) -> bool {
    let label = |k: &str| {
        obj.pointer("/metadata/labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
    };
    label(NAME_LABEL) == Some(ks_name) && label(NAMESPACE_LABEL) == Some(ks_ns)
}

/// The outcome of applying a build: change lines, errors, and the inventory applied.
#[derive(Default)]
struct Applied {
    changes: Vec<String>,
    errors: Vec<String>,
    inventory: Vec<(String, String)>,
}

fn apply_all(sb: &Sandbox, planned: &[Planned]) -> Applied {
    let mut out = Applied::default();
    let opts = WriteOpts {
        manager: KUSTOMIZE_MANAGER.into(),
        apply: true,
        force: true,
        ..Default::default()
    };
    for p in planned {
        let live = sb.store.get(p.rt, &p.ns, &p.name);
        let result = match &live {
            None => sb
                .store
                .create(p.rt, &p.ns, without_nulls(&p.obj), &opts)
                .map(|_| Some("created")),
            Some(live) if annotation(live, RECONCILE_ANNOTATION) == Some("disabled") => Ok(None),
            Some(live) => {
                let mut merged = (**live).clone();
                merge(&mut merged, &p.obj);
                if merged == **live {
                    Ok(None)
                } else {
                    let before = meta_str(live, "resourceVersion").map(str::to_string);
                    sb.store
                        .modify(p.rt, &p.ns, &p.name, &opts, |o| {
                            merge(o, &p.obj);
                            Ok(())
                        })
                        .map(|new| {
                            // The server's defaults can make a merge that differs a no-op.
                            (meta_str(&new, "resourceVersion").map(str::to_string) != before)
                                .then_some("configured")
                        })
                }
            }
        };
        match result {
            Ok(change) => {
                if let Some(c) = change {
                    out.changes.push(format!("{} {c}", p.describe()));
                }
                out.inventory.push((p.id(), p.rt.version.to_string()));
            }
            Err(e) => out.errors.push(format!("{} {}", p.describe(), e.message)),
        }
    }
    out
}

/// Delete what the previous inventory had and the new one has not (ours only).
fn prune(
    sb: &Sandbox,
    ks_ns: &str,
    ks_name: &str,
    old: &[(String, String)],
    keep: &HashSet<&str>,
) -> Vec<String> {
    let mut changes = Vec::new();
    for (id, version) in old.iter().filter(|(id, _)| !keep.contains(id.as_str())) {
        let parts: Vec<&str> = id.split('_').collect();
        let [ns, name, group, kind] = parts[..] else {
            continue;
        };
        let Some(rt) = RESOURCES
            .iter()
            .find(|r| r.group == group && r.kind == kind && r.version == version)
            .or_else(|| super::super::resources::by_kind(group, kind))
        else {
            continue;
        };
        let Some(live) = sb.store.get(rt, ns, name) else {
            continue;
        };
        if !owned_by(&live, ks_ns, ks_name)
            || annotation(&live, PRUNE_ANNOTATION) == Some("disabled")
        {
            continue;
        }
        if sb.store.delete(rt, ns, name, None, None, false).is_ok() {
            let what = if ns.is_empty() {
                format!("{kind}/{name}")
            } else {
                format!("{kind}/{ns}/{name}")
            };
            changes.push(format!("{what} deleted"));
        }
    }
    changes
}

fn inventory_of(ks: &Value) -> Vec<(String, String)> {
    ks.pointer("/status/inventory/entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e.get("id")?.as_str()?.to_string(),
                e.get("v")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ))
        })
        .collect()
}

fn inventory_json(mut entries: Vec<(String, String)>) -> Value {
    entries.sort();
    entries.dedup();
    json!({"entries": entries.into_iter().map(|(id, v)| json!({"id": id, "v": v})).collect::<Vec<_>>()})
}

fn reconcile_kustomization(sb: &Sandbox, ns: &str, ks: &Value, now: Timestamp) {
    let generation = i64_at(ks, "/metadata/generation");
    let ks_name = name_of(ks);
    let mut st = base_status(ks);
    for keep in ["lastAppliedRevision", "lastAttemptedRevision", "inventory"] {
        if let Some(v) = ks.pointer(&format!("/status/{keep}")) {
            st.insert(keep.into(), v.clone());
        }
    }
    let fail = |mut st: Map<String, Value>, reason: &str, msg: String| {
        st.insert(
            "conditions".into(),
            json!([condition(ks, "Ready", false, reason, &msg, generation, now)]),
        );
        warn_once(sb, ks, KUSTOMIZE_MANAGER, reason, &msg, now);
        write_status(sb, kustomizations(), ns, ks, st, KUSTOMIZE_MANAGER);
    };

    let (src_ns, src_name) = match source_ref(ns, ks) {
        Ok(r) => r,
        Err(msg) => return fail(st, "ArtifactFailed", msg),
    };
    let Some(src) = sb.store.get(gitrepositories(), &src_ns, &src_name) else {
        let msg = format!("Source 'GitRepository/{src_ns}/{src_name}' not found");
        return fail(st, "ArtifactFailed", msg);
    };
    let Some(revision) = str_at(&src, "/status/artifact/revision").map(str::to_string) else {
        let msg = format!(
            "Source artifact not found, retrying in {}s",
            interval_of(ks).as_secs().max(1)
        );
        return fail(st, "ArtifactFailed", msg);
    };
    st.insert("lastAttemptedRevision".into(), json!(revision));
    let url = str_at(&src, "/spec/url").unwrap_or_default();
    let path = str_at(ks, "/spec/path").unwrap_or_default();
    let snapshot = match read::read_commit(url, revision_commit(&revision), path) {
        Ok(s) => s,
        Err(e @ ReadError::PathMissing { .. }) => {
            return fail(
                st,
                "ArtifactFailed",
                format!("kustomization path not found: {e}"),
            );
        }
        Err(e) => return fail(st, "ArtifactFailed", e.to_string()),
    };
    let built = parse_manifests(&snapshot.files).and_then(|docs| build(ns, ks, docs));
    let built = match built {
        Ok(b) => b,
        Err(msg) => return fail(st, "BuildFailed", format!("kustomize build failed: {msg}")),
    };
    let mut applied = apply_all(sb, &built.planned);
    applied.errors.extend(built.unknown);
    let old_inventory = inventory_of(ks);
    if !applied.errors.is_empty() {
        // Keep track of everything ever applied, so that a later prune still finds it.
        let mut inv = old_inventory;
        inv.extend(applied.inventory);
        st.insert("inventory".into(), inventory_json(inv));
        if !applied.changes.is_empty() {
            emit_event(
                sb,
                ks,
                Note::normal(KUSTOMIZE_MANAGER, "Progressing", applied.changes.join("\n")),
                now,
            );
        }
        return fail(st, "ReconciliationFailed", applied.errors.join("\n"));
    }
    if ks.pointer("/spec/prune").and_then(Value::as_bool) == Some(true) {
        let keep: HashSet<&str> = applied
            .inventory
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        let pruned = prune(sb, ns, ks_name, &old_inventory, &keep);
        applied.changes.extend(pruned);
    }
    st.insert("inventory".into(), inventory_json(applied.inventory));
    st.insert("lastAppliedRevision".into(), json!(revision));
    let msg = format!("Applied revision: {revision}");
    st.insert(
        "conditions".into(),
        json!([condition(
            ks,
            "Ready",
            true,
            "ReconciliationSucceeded",
            &msg,
            generation,
            now
        )]),
    );
    if !applied.changes.is_empty() {
        emit_event(
            sb,
            ks,
            Note::normal(KUSTOMIZE_MANAGER, "Progressing", applied.changes.join("\n")),
            now,
        );
    }
    let newly_applied = ks
        .pointer("/status/lastAppliedRevision")
        .and_then(Value::as_str)
        != Some(&revision);
    if newly_applied || ready_of(ks).is_some_and(|(s, _)| s != "True") {
        emit_event(
            sb,
            ks,
            Note::normal(KUSTOMIZE_MANAGER, "ReconciliationSucceeded", msg.clone()),
            now,
        );
    }
    write_status(sb, kustomizations(), ns, ks, st, KUSTOMIZE_MANAGER);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let d = |s| parse_duration(s);
        assert_eq!(d("1m"), Some(Duration::from_secs(60)));
        assert_eq!(d("30s"), Some(Duration::from_secs(30)));
        assert_eq!(d("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(d("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(d("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(d("2m0s"), Some(Duration::from_secs(120)));
        assert_eq!(d("0"), Some(Duration::ZERO));
        assert_eq!(d("10us"), Some(Duration::from_micros(10)));
        for bad in ["", "5", "1d", "-1s", "s", "1.2.3s", ".s", "1m x"] {
            assert_eq!(d(bad), None, "{bad:?}");
        }
        assert_eq!(
            interval_of(&json!({"spec": {"interval": "10m"}})),
            Duration::from_secs(600)
        );
        assert_eq!(interval_of(&json!({"spec": {}})), DEFAULT_INTERVAL);
        assert_eq!(
            interval_of(&json!({"spec": {"interval": "0s"}})),
            MIN_INTERVAL
        );
    }

    #[test]
    fn merge_merges_mappings_and_replaces_lists_and_scalars() {
        let mut live = json!({
            "metadata": {"name": "web", "labels": {"app": "web", "team": "a"},
                         "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {
                "replicas": 5,
                "template": {"spec": {"containers": [
                    {"name": "web", "image": "web:2", "imagePullPolicy": "IfNotPresent"},
                    {"name": "sidecar", "image": "proxy:1"}
                ]}},
                "strategy": {"type": "RollingUpdate"}
            },
            "status": {"replicas": 5}
        });
        let manifest = json!({
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
            "spec": {
                "replicas": 3,
                "template": {"spec": {"containers": [{"name": "web", "image": "web:1"}]}},
                "strategy": null
            }
        });
        merge(&mut live, &manifest);
        assert_eq!(
            live,
            json!({
                "metadata": {"name": "web", "labels": {"app": "web", "team": "a", "tier": "front"},
                             "annotations": {"deployment.kubernetes.io/revision": "3"}},
                "spec": {
                    "replicas": 3,
                    "template": {"spec": {"containers": [{"name": "web", "image": "web:1"}]}}
                },
                "status": {"replicas": 5}
            })
        );
        // Merging again changes nothing; a scalar replaces a mapping and the other way round.
        let again = live.clone();
        merge(&mut live, &manifest);
        assert_eq!(live, again);
        let mut v = json!({"a": {"b": 1}, "c": 2});
        merge(&mut v, &json!({"a": 7, "c": {"d": 1}}));
        assert_eq!(v, json!({"a": 7, "c": {"d": 1}}));
        assert_eq!(
            without_nulls(&json!({"a": null, "b": {"c": null, "d": [null]}})),
            json!({"b": {"d": [null]}})
        );
    }

    #[test]
    fn manifests_parse_per_document_and_errors_name_the_file() {
        let files = vec![
            (
                "apps/web/all.yaml".to_string(),
                "# comment only\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web # trailing\n---\n---\n# nothing\n"
                    .to_string(),
            ),
            (
                "apps/web/kustomization.yaml".to_string(),
                "resources: [all.yaml]\n".to_string(),
            ),
        ];
        let docs = parse_manifests(&files).expect("parses");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].1["metadata"]["name"], "web");
        let bad = vec![(
            "apps/web/broken.yaml".to_string(),
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: [web\n".to_string(),
        )];
        let err = parse_manifests(&bad).unwrap_err();
        assert!(err.starts_with("apps/web/broken.yaml: "), "{err}");
        let scalar = vec![("a.yaml".to_string(), "just text\n".to_string())];
        assert!(parse_manifests(&scalar).unwrap_err().contains("a.yaml"));
    }

    #[test]
    fn build_places_objects_and_labels_them() {
        let ks = json!({"metadata": {"name": "web", "namespace": "flux-system"},
                        "spec": {"targetNamespace": "apps"}});
        let docs = vec![
            (
                "d.yaml".to_string(),
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "elsewhere", "uid": "x"}, "status": {"a": 1}}),
            ),
            (
                "n.yaml".to_string(),
                json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "apps", "namespace": "ignored"}}),
            ),
            (
                "h.yaml".to_string(),
                json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "web"}}),
            ),
        ];
        let b = build("flux-system", &ks, docs).expect("builds");
        assert_eq!(b.planned.len(), 2);
        assert_eq!(b.planned[0].id(), "_apps__Namespace");
        assert_eq!(b.planned[1].id(), "apps_web_apps_Deployment");
        let d = &b.planned[1].obj;
        assert_eq!(d["metadata"]["namespace"], "apps");
        assert_eq!(d["metadata"]["labels"][NAME_LABEL], "web");
        assert_eq!(d["metadata"]["labels"][NAMESPACE_LABEL], "flux-system");
        assert!(d.get("status").is_none() && d["metadata"].get("uid").is_none());
        assert!(b.planned[0].obj["metadata"].get("namespace").is_none());
        assert_eq!(b.unknown.len(), 1);
        assert!(
            b.unknown[0].contains("HorizontalPodAutoscaler"),
            "{:?}",
            b.unknown
        );
        let twice = vec![
            (
                "a.yaml".to_string(),
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}),
            ),
            (
                "b.yaml".to_string(),
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}),
            ),
        ];
        let err = build("ns", &json!({"metadata": {"name": "k"}}), twice)
            .err()
            .expect("dup");
        assert!(
            err.contains("b.yaml") && err.contains("Service/ns/s"),
            "{err}"
        );
    }

    /// Commit `files` on `main` of the working repo at `work` and push to its `origin`.
    fn commit_push(work: &git2::Repository, files: &[(&str, &str)], msg: &str) -> String {
        let root = work.workdir().expect("work tree").to_path_buf();
        for (path, text) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        let mut index = work.index().expect("index");
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .expect("add");
        index.write().expect("index");
        let tree = work
            .find_tree(index.write_tree().expect("tree"))
            .expect("tree");
        let sig = git2::Signature::now("t", "t@example.com").expect("sig");
        let parent = work.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let oid = work
            .commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents)
            .expect("commit");
        work.find_remote("origin")
            .expect("origin")
            .push(&["refs/heads/main:refs/heads/main"], None)
            .expect("push");
        oid.to_string()
    }

    fn cm(value: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  value: {value:?}\n"
        )
    }

    #[test]
    fn reconciles_on_the_sandbox_clock_only_when_due() {
        use crate::sandbox::test_fixtures::{run_for, sandbox};
        let dir = tempfile::tempdir().expect("tempdir");
        let bare = dir.path().join("repo.git");
        git2::Repository::init_bare(&bare).expect("bare");
        let work = git2::Repository::init(dir.path().join("work")).expect("work");
        work.set_head("refs/heads/main").expect("head");
        work.remote("origin", bare.to_str().expect("utf-8"))
            .expect("remote");
        let c1 = commit_push(&work, &[("cfg/settings.yaml", &cm("one"))], "one");

        let sb = sandbox(false);
        let kubectl = WriteOpts::controller("kubectl");
        let ns_rt = super::super::namespaces();
        sb.store
            .create(ns_rt, "", json!({"metadata": {"name": "apps"}}), &kubectl)
            .expect("namespace");
        sb.store
            .create(
                gitrepositories(),
                "apps",
                json!({"metadata": {"name": "repo"}, "spec": {
                    "interval": "10s", "url": bare.to_str(), "ref": {"branch": "main"}}}),
                &kubectl,
            )
            .expect("gitrepository");
        sb.store
            .create(
                kustomizations(),
                "apps",
                json!({"metadata": {"name": "cfg"}, "spec": {
                    "interval": "1h", "path": "cfg", "prune": true,
                    "sourceRef": {"kind": "GitRepository", "name": "repo"}}}),
                &kubectl,
            )
            .expect("kustomization");
        let configmaps = super::super::rt("", "configmaps");
        let value = |sb: &Sandbox| {
            sb.store.get(configmaps, "apps", "settings").and_then(|c| {
                c.pointer("/data/value")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
        };
        run_for(&sb, 1);
        assert_eq!(value(&sb).as_deref(), Some("one"));
        let ks = sb.store.get(kustomizations(), "apps", "cfg").expect("ks");
        assert_eq!(
            ks.pointer("/status/lastAppliedRevision"),
            Some(&json!(format!("main@sha1:{c1}")))
        );
        let rv = sb.store.current_rv();

        // Quiet passes write nothing at all.
        run_for(&sb, 5);
        assert_eq!(sb.store.current_rv(), rv);

        // A new commit is fetched at the source's interval (10 s), then applied at once, even
        // though the Kustomization's own interval is an hour.
        let c2 = commit_push(&work, &[("cfg/settings.yaml", &cm("two"))], "two");
        run_for(&sb, 3);
        assert_eq!(value(&sb).as_deref(), Some("one"), "not due yet");
        run_for(&sb, 3);
        assert_eq!(value(&sb).as_deref(), Some("two"));
        let ks = sb.store.get(kustomizations(), "apps", "cfg").expect("ks");
        assert_eq!(
            ks.pointer("/status/lastAppliedRevision"),
            Some(&json!(format!("main@sha1:{c2}")))
        );

        // Drift waits for the Kustomization's interval, or for a requested reconcile.
        sb.store
            .modify(configmaps, "apps", "settings", &kubectl, |o| {
                o["data"]["value"] = json!("drift");
                Ok(())
            })
            .expect("drift");
        run_for(&sb, 2);
        assert_eq!(value(&sb).as_deref(), Some("drift"));
        sb.store
            .modify(kustomizations(), "apps", "cfg", &kubectl, |o| {
                metadata_mut(o).insert("annotations".into(), json!({REQUESTED_AT: "now"}));
                Ok(())
            })
            .expect("annotate");
        run_for(&sb, 1);
        assert_eq!(value(&sb).as_deref(), Some("two"));
        let ks = sb.store.get(kustomizations(), "apps", "cfg").expect("ks");
        assert_eq!(
            ks.pointer("/status/lastHandledReconcileAt"),
            Some(&json!("now"))
        );

        // Suspended: nothing happens, however long.
        sb.store
            .modify(kustomizations(), "apps", "cfg", &kubectl, |o| {
                o["spec"]["suspend"] = json!(true);
                Ok(())
            })
            .expect("suspend");
        sb.store
            .modify(configmaps, "apps", "settings", &kubectl, |o| {
                o["data"]["value"] = json!("manual");
                Ok(())
            })
            .expect("drift");
        sb.store.clock.advance(Duration::from_secs(7200));
        run_for(&sb, 1);
        assert_eq!(value(&sb).as_deref(), Some("manual"));
    }

    #[test]
    fn revisions_name_their_commit() {
        assert_eq!(revision_commit("main@sha1:abc123"), "abc123");
        assert_eq!(revision_commit("main/abc123"), "abc123");
        assert_eq!(revision_commit("abc123"), "abc123");
        assert_eq!(branch_of(&json!({"spec": {}})), Ok("master".to_string()));
        assert_eq!(
            branch_of(&json!({"spec": {"ref": {"branch": "main"}}})),
            Ok("main".to_string())
        );
        assert!(branch_of(&json!({"spec": {"ref": {"tag": "v1"}}})).is_err());
    }
}
