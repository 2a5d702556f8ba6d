//! The object store: every object the sandbox serves, a global resourceVersion, and a bounded
//! history of changes from which watches are served (and past which they get 410 Gone).
//!
//! Objects are JSON values kept in the key order the real server writes. All writes, from the
//! HTTP API and from the simulated controllers alike, go through [`Store::create`],
//! [`Store::update`], [`Store::modify`] and [`Store::delete`], which enforce optimistic
//! concurrency, subresource rules and generation bookkeeping.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};

use super::admission;
use super::clock::{Clock, format_time};
use super::error::{ApiError, ApiResult};
use super::resources::{RESOURCES, ResourceType, index_of, storage_of};

/// The kind of change a watch event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as kept in the history and sent to watchers.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub res: usize,
    pub namespace: String,
    pub event: EventType,
    pub object: Arc<Value>,
    /// The object before the change (for MODIFIED and DELETED), so selector-filtered watches
    /// can turn a change into ADDED or DELETED as the real server does.
    pub previous: Option<Arc<Value>>,
}

/// Options every write carries.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    /// `dryRun=All`: validate and return the would-be object, store nothing.
    pub dry_run: bool,
    /// `status` or `scale` when writing a subresource.
    pub subresource: Option<String>,
    /// Field manager name (from `fieldManager` or the User-Agent).
    pub manager: String,
    /// `Update` or `Apply`.
    pub apply: bool,
    /// Server-side apply with `force=true`: take fields from other managers.
    pub force: bool,
}

impl WriteOpts {
    pub fn controller(manager: &str) -> Self {
        WriteOpts {
            manager: manager.into(),
            ..Default::default()
        }
    }
    pub fn status(manager: &str) -> Self {
        WriteOpts {
            manager: manager.into(),
            subresource: Some("status".into()),
            ..Default::default()
        }
    }
}

/// What a delete did.
#[derive(Debug)]
pub enum Deleted {
    /// Gone (the object as it was last).
    Gone(Arc<Value>),
    /// Marked for graceful deletion (the object now carrying `deletionTimestamp`).
    Terminating(Arc<Value>),
}

/// Which manager last set each field of an object (by field path), for server-side apply.
type Owners = std::collections::HashMap<(usize, String, String), BTreeMap<String, String>>;

struct Inner {
    owners: Owners,
    rv: u64,
    objects: Vec<BTreeMap<(String, String), Arc<Value>>>,
    history: VecDeque<Arc<Change>>,
    rng: SmallRng,
}

/// The sandbox's object store.
pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Change>>,
    /// Woken on every change, so the controllers react at once.
    pub changed: Notify,
    pub clock: Arc<Clock>,
    history_limit: usize,
}

type Key = (String, String);

/// What a watch starts from: the changes it missed, and a receiver for those to come.
pub type WatchStart = (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>);

fn key(ns: &str, name: &str) -> Key {
    (ns.to_string(), name.to_string())
}

/// `metadata.<field>` as a string.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name_of(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or_default()
}

pub fn rv_of(obj: &Value) -> u64 {
    meta_str(obj, "resourceVersion")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Mutable access to `metadata`, creating it (and making `obj` an object) if needed.
pub fn metadata_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(serde_json::Map::new());
    }
    let Value::Object(root) = obj else {
        unreachable!("made an object above")
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(serde_json::Map::new());
    }
    let Value::Object(m) = meta else {
        unreachable!("made an object above")
    };
    m
}

const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

impl Store {
    pub fn new(clock: Arc<Clock>, seed: u64, history_limit: usize) -> Self {
        let (tx, _) = broadcast::channel(65_536);
        Store {
            inner: Mutex::new(Inner {
                owners: Owners::new(),
                rv: 1,
                objects: RESOURCES.iter().map(|_| BTreeMap::new()).collect(),
                history: VecDeque::new(),
                rng: SmallRng::seed_from_u64(seed),
            }),
            tx,
            changed: Notify::new(),
            clock,
            history_limit: history_limit.max(16),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// A fresh random suffix of `n` characters, as generateName uses.
    pub fn random_suffix(&self, n: usize) -> String {
        let mut inner = self.lock();
        (0..n)
            .map(|_| NAME_CHARS[inner.rng.random_range(0..NAME_CHARS.len())] as char)
            .collect()
    }

    /// A random number from the store's seeded generator.
    pub fn random_u64(&self) -> u64 {
        self.lock().rng.random()
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.lock().objects[index_of(rt)]
            .get(&key(ns, name))
            .cloned()
    }

    /// All objects of a type (in one namespace, or all), sorted by namespace then name, and
    /// the resourceVersion of the list.
    pub fn list(&self, rt: &ResourceType, ns: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.lock();
        let map = &inner.objects[index_of(rt)];
        let items = match ns {
            Some(ns) => map
                .range(key(ns, "")..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
            None => map.values().cloned().collect(),
        };
        (items, inner.rv)
    }

    /// The oldest resourceVersion a watch or a consistent list can still start from.
    pub fn oldest_rv(&self) -> u64 {
        let inner = self.lock();
        inner
            .history
            .front()
            .map(|c| c.rv.saturating_sub(1))
            .unwrap_or(inner.rv)
    }

    /// Changes after `rv` (for a watch), plus a receiver for those still to come, taken
    /// together so that nothing is missed or sent twice. 410 when `rv` is older than history.
    pub fn watch_from(&self, rv: u64) -> ApiResult<WatchStart> {
        let inner = self.lock();
        let oldest = inner
            .history
            .front()
            .map(|c| c.rv.saturating_sub(1))
            .unwrap_or(inner.rv);
        if rv < oldest {
            return Err(ApiError::gone(format!(
                "too old resource version: {rv} ({oldest})"
            )));
        }
        let start = inner.history.partition_point(|c| c.rv <= rv);
        let backlog = inner.history.range(start..).cloned().collect();
        Ok((backlog, self.tx.subscribe()))
    }

    /// Subscribe to changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }

    fn record(
        &self,
        inner: &mut Inner,
        rt: &ResourceType,
        ns: &str,
        event: EventType,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) {
        let change = Arc::new(Change {
            rv: inner.rv,
            res: index_of(rt),
            namespace: ns.to_string(),
            event,
            object,
            previous,
        });
        inner.history.push_back(change.clone());
        while inner.history.len() > self.history_limit {
            inner.history.pop_front();
        }
        // No receivers is fine.
        let _ = self.tx.send(change);
        self.changed.notify_one();
    }

    fn new_uid(inner: &mut Inner) -> String {
        let b: [u8; 16] = inner.rng.random();
        let h = hex::encode(b);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    /// Create an object (POST). `ns` is empty for cluster-scoped types.
    pub fn create(
        &self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        opts: &WriteOpts,
    ) -> ApiResult<Arc<Value>> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the object provided is not a JSON object",
            ));
        }
        let now = self.clock.now();
        let mut inner = self.lock();
        {
            let meta = metadata_mut(&mut obj);
            let has_name = meta
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if !has_name && let Some(prefix) = meta.get("generateName").and_then(Value::as_str) {
                let prefix = prefix.to_string();
                let suffix: String = (0..5)
                    .map(|_| NAME_CHARS[inner.rng.random_range(0..NAME_CHARS.len())] as char)
                    .collect();
                meta.insert("name".into(), json!(format!("{prefix}{suffix}")));
            }
        }
        let name = name_of(&obj).to_string();
        if name.is_empty() {
            return Err(ApiError::invalid(
                rt.kind,
                rt.group,
                "",
                vec![super::error::Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value: name or generateName is required".into(),
                    field: Some("metadata.name".into()),
                }],
            ));
        }
        let idx = index_of(rt);
        if inner.objects[idx].contains_key(&key(ns, &name)) {
            return Err(ApiError::already_exists(rt.plural, rt.group, &name));
        }
        if rt.namespaced && self_ns_missing(&inner, ns) {
            return Err(ApiError::not_found("namespaces", "", ns));
        }
        let uid = Self::new_uid(&mut inner);
        {
            if let Some(m) = obj.as_object_mut() {
                m.insert("apiVersion".into(), json!(storage_of(rt).api_version()));
                m.insert("kind".into(), json!(rt.kind));
            }
            let meta = metadata_mut(&mut obj);
            if rt.namespaced {
                meta.insert("namespace".into(), json!(ns));
            } else {
                meta.remove("namespace");
            }
            meta.insert("uid".into(), json!(uid));
            if has_generation(rt) {
                meta.insert("generation".into(), json!(1));
            }
            meta.insert("creationTimestamp".into(), json!(format_time(now)));
            meta.remove("deletionTimestamp");
            meta.remove("resourceVersion");
            meta.remove("selfLink");
        }
        // The server decides a new object's status (nodes post their own).
        if let (true, Some(m)) = (
            rt.has_status() && rt.kind != "Node" && !rt.custom,
            obj.as_object_mut(),
        ) {
            m.remove("status");
        }
        admission::admit(rt, &mut obj, None, opts)?;
        set_managed_fields(&mut obj, None, rt, opts, now);
        if opts.dry_run {
            metadata_mut(&mut obj).insert("resourceVersion".into(), json!(""));
            return Ok(Arc::new(obj));
        }
        inner.rv += 1;
        let rv = inner.rv;
        metadata_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        admission::order(rt, &mut obj);
        let obj = Arc::new(obj);
        track_owners(&mut inner.owners, rt, ns, &name, None, &obj, opts);
        inner.objects[idx].insert(key(ns, &name), obj.clone());
        self.record(&mut inner, rt, ns, EventType::Added, obj.clone(), None);
        Ok(obj)
    }

    /// Replace an object (PUT). A non-empty `metadata.resourceVersion` in `obj` must match.
    pub fn update(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        obj: Value,
        opts: &WriteOpts,
    ) -> ApiResult<Arc<Value>> {
        let mut inner = self.lock();
        let old = inner.objects[index_of(rt)]
            .get(&key(ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt.plural, rt.group, name))?;
        self.commit(&mut inner, rt, ns, name, obj, old, opts)
    }

    /// Read-modify-write under the store lock (PATCH, and the controllers' own updates).
    /// A `metadata.resourceVersion` left in the result by `f` that differs from the stored
    /// one is a conflict, as with PUT.
    pub fn modify(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        opts: &WriteOpts,
        f: impl FnOnce(&mut Value) -> ApiResult<()>,
    ) -> ApiResult<Arc<Value>> {
        let mut inner = self.lock();
        let old = inner.objects[index_of(rt)]
            .get(&key(ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt.plural, rt.group, name))?;
        let mut new = (*old).clone();
        f(&mut new)?;
        self.commit(&mut inner, rt, ns, name, new, old, opts)
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        inner: &mut Inner,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut new: Value,
        old: Arc<Value>,
        opts: &WriteOpts,
    ) -> ApiResult<Arc<Value>> {
        if !new.is_object() {
            return Err(ApiError::bad_request(
                "the object provided is not a JSON object",
            ));
        }
        if let Some(rv) = meta_str(&new, "resourceVersion")
            && !rv.is_empty()
            && rv != meta_str(&old, "resourceVersion").unwrap_or_default()
        {
            return Err(ApiError::conflict(rt.plural, rt.group, name));
        }
        if let Some(n) = meta_str(&new, "name")
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        let now = self.clock.now();
        let status_write = opts.subresource.as_deref() == Some("status");
        if rt.has_status() {
            if status_write {
                // Only status changes through /status; the rest stays as stored.
                let status = new.get("status").cloned();
                new = (*old).clone();
                if let Some(m) = new.as_object_mut() {
                    match status {
                        Some(s) => m.insert("status".into(), s),
                        None => m.remove("status"),
                    };
                }
            } else if let Some(m) = new.as_object_mut() {
                // The main resource ignores status changes.
                match old.get("status") {
                    Some(s) => m.insert("status".into(), s.clone()),
                    None => m.remove("status"),
                };
            }
        }
        // What the client may not change.
        {
            let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
            if let Some(m) = new.as_object_mut() {
                m.insert("apiVersion".into(), json!(storage_of(rt).api_version()));
                m.insert("kind".into(), json!(rt.kind));
            }
            let meta = metadata_mut(&mut new);
            for f in [
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "namespace",
                "managedFields",
            ] {
                match old_meta.get(f) {
                    Some(v) => meta.insert(f.into(), v.clone()),
                    None => meta.remove(f),
                };
            }
            meta.remove("selfLink");
        }
        admission::admit(rt, &mut new, Some(&old), opts)?;
        // Generation counts spec changes (for types without a spec: any non-metadata change).
        let changed_spec = match (old.get("spec"), new.get("spec")) {
            (None, None) => strip_meta_status(&old) != strip_meta_status(&new),
            (a, b) => a != b,
        };
        if changed_spec && !status_write && has_generation(rt) {
            let g = old
                .get("metadata")
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(1);
            metadata_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
        metadata_mut(&mut new).insert(
            "resourceVersion".into(),
            json!(meta_str(&old, "resourceVersion").unwrap_or_default()),
        );
        set_managed_fields(&mut new, Some(&old), rt, opts, now);
        admission::order(rt, &mut new);
        if same_ignoring_managed(&new, &old) {
            // A no-op write changes nothing, not even the resourceVersion.
            return Ok(old);
        }
        if opts.dry_run {
            return Ok(Arc::new(new));
        }
        inner.rv += 1;
        let rv = inner.rv;
        metadata_mut(&mut new).insert("resourceVersion".into(), json!(rv.to_string()));
        let new = Arc::new(new);
        if !status_write {
            track_owners(&mut inner.owners, rt, ns, name, Some(&old), &new, opts);
        }
        inner.objects[index_of(rt)].insert(key(ns, name), new.clone());
        self.record(inner, rt, ns, EventType::Modified, new.clone(), Some(old));
        Ok(new)
    }

    /// Delete an object. Pods with a grace period (given, or their spec's) are marked
    /// Terminating; the simulated kubelet removes them later with [`Store::remove`].
    pub fn delete(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        grace_seconds: Option<i64>,
        precondition_uid: Option<&str>,
        dry_run: bool,
    ) -> ApiResult<Deleted> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let old = inner.objects[index_of(rt)]
            .get(&key(ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt.plural, rt.group, name))?;
        if let Some(uid) = precondition_uid
            && meta_str(&old, "uid") != Some(uid)
        {
            return Err(ApiError::conflict(rt.plural, rt.group, name));
        }
        let grace = if rt.kind == "Pod" {
            grace_seconds.unwrap_or_else(|| {
                old.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(30)
            })
        } else {
            0
        };
        if grace > 0 {
            if meta_str(&old, "deletionTimestamp").is_some() {
                return Ok(Deleted::Terminating(old));
            }
            let mut new = (*old).clone();
            let when = now
                .checked_add(jiff::SignedDuration::from_secs(grace))
                .unwrap_or(now);
            let meta = metadata_mut(&mut new);
            meta.insert("deletionTimestamp".into(), json!(format_time(when)));
            meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
            admission::order(rt, &mut new);
            if dry_run {
                return Ok(Deleted::Terminating(Arc::new(new)));
            }
            inner.rv += 1;
            let rv = inner.rv;
            metadata_mut(&mut new).insert("resourceVersion".into(), json!(rv.to_string()));
            let new = Arc::new(new);
            inner.objects[index_of(rt)].insert(key(ns, name), new.clone());
            self.record(
                &mut inner,
                rt,
                ns,
                EventType::Modified,
                new.clone(),
                Some(old),
            );
            return Ok(Deleted::Terminating(new));
        }
        if dry_run {
            return Ok(Deleted::Gone(old));
        }
        Ok(Deleted::Gone(
            self.remove_locked(&mut inner, rt, ns, name, old),
        ))
    }

    /// Server-side apply conflicts: fields the applied configuration would change that
    /// another manager set last, as (field path, manager).
    pub fn apply_conflicts(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        applied: &Value,
        manager: &str,
    ) -> Vec<(String, String)> {
        let inner = self.lock();
        let Some(current) = inner.objects[index_of(rt)].get(&key(ns, name)) else {
            return Vec::new();
        };
        let Some(owners) = inner
            .owners
            .get(&(index_of(rt), ns.to_string(), name.to_string()))
        else {
            return Vec::new();
        };
        let mine = leaves(current);
        let mut out = Vec::new();
        for (path, v) in leaves(applied) {
            if matches!(
                path.as_str(),
                ".apiVersion" | ".kind" | ".metadata.name" | ".metadata.namespace"
            ) {
                continue;
            }
            let differs = mine.get(&path) != Some(&v);
            match owners.get(&path) {
                Some(owner) if differs && owner != manager => out.push((path, owner.clone())),
                _ => {}
            }
        }
        out
    }

    /// Remove an object at once (garbage collection, the kubelet finishing a termination).
    pub fn remove(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        let mut inner = self.lock();
        let old = inner.objects[index_of(rt)].get(&key(ns, name)).cloned()?;
        Some(self.remove_locked(&mut inner, rt, ns, name, old))
    }

    fn remove_locked(
        &self,
        inner: &mut Inner,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        old: Arc<Value>,
    ) -> Arc<Value> {
        inner.objects[index_of(rt)].remove(&key(ns, name));
        inner
            .owners
            .remove(&(index_of(rt), ns.to_string(), name.to_string()));
        inner.rv += 1;
        let mut last = (*old).clone();
        metadata_mut(&mut last).insert("resourceVersion".into(), json!(inner.rv.to_string()));
        let last = Arc::new(last);
        self.record(inner, rt, ns, EventType::Deleted, last.clone(), Some(old));
        last
    }
}

/// Types whose objects count spec changes in `metadata.generation` (in 1.26: the apps types
/// and custom resources; not pods, services, endpoints, namespaces, nodes, events).
fn has_generation(rt: &ResourceType) -> bool {
    rt.custom || rt.group == "apps"
}

fn self_ns_missing(inner: &Inner, ns: &str) -> bool {
    let idx = RESOURCES
        .iter()
        .position(|r| r.plural == "namespaces" && r.group.is_empty())
        .unwrap_or_default();
    !inner.objects[idx].contains_key(&key("", ns))
}

/// Kinds whose field ownership is tracked: what people apply, not what controllers churn.
fn tracks_owners(rt: &ResourceType) -> bool {
    rt.custom
        || matches!(
            rt.kind,
            "Deployment" | "Service" | "ConfigMap" | "Namespace"
        )
}

/// Record `opts.manager` as the owner of every field that changed from `old` to `new`.
fn track_owners(
    owners: &mut Owners,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    old: Option<&Value>,
    new: &Value,
    opts: &WriteOpts,
) {
    if !tracks_owners(rt) || opts.dry_run {
        return;
    }
    let before = old.map(leaves).unwrap_or_default();
    let after = leaves(new);
    let entry = owners
        .entry((index_of(rt), ns.to_string(), name.to_string()))
        .or_default();
    entry.retain(|path, _| after.contains_key(path));
    for (path, v) in &after {
        if before.get(path) != Some(v) || !entry.contains_key(path) {
            entry.insert(path.clone(), opts.manager.clone());
        }
    }
}

/// The leaf fields of an object as server-side apply names them (`.spec.replicas`,
/// `.spec.template.spec.containers[name="web"].image`), leaving out what the server owns.
fn leaves(v: &Value) -> BTreeMap<String, Value> {
    fn walk(v: &Value, path: String, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    walk(x, format!("{path}.{k}"), out);
                }
            }
            Value::Array(items)
                if items
                    .iter()
                    .all(|i| i.get("name").is_some_and(Value::is_string))
                    && !items.is_empty() =>
            {
                for i in items {
                    let n = i.get("name").and_then(Value::as_str).unwrap_or_default();
                    walk(i, format!("{path}[name=\"{n}\"]"), out);
                }
            }
            _ => {
                out.insert(path, v.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Value::Object(m) = v {
        for (k, x) in m {
            match k.as_str() {
                "status" => {}
                "metadata" => {
                    for f in ["labels", "annotations"] {
                        if let Some(x) = x.get(f) {
                            walk(x, format!(".metadata.{f}"), &mut out);
                        }
                    }
                }
                _ => walk(x, format!(".{k}"), &mut out),
            }
        }
    }
    out
}

fn strip_meta_status(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

fn same_ignoring_managed(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.pointer_mut("/metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
        v
    };
    strip(a) == strip(b)
}

/// One managedFields entry per manager and operation, as the real server keeps them
/// (without the fieldsV1 set, which no client we serve reads).
fn set_managed_fields(
    obj: &mut Value,
    old: Option<&Value>,
    rt: &ResourceType,
    opts: &WriteOpts,
    now: jiff::Timestamp,
) {
    if rt.create_only {
        return;
    }
    let manager = if opts.manager.is_empty() {
        "unknown"
    } else {
        &opts.manager
    };
    let operation = if opts.apply { "Apply" } else { "Update" };
    let mut entries: Vec<Value> = old
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    entries.retain(|e| {
        !(e.get("manager").and_then(Value::as_str) == Some(manager)
            && e.get("operation").and_then(Value::as_str) == Some(operation)
            && e.get("subresource").and_then(Value::as_str) == opts.subresource.as_deref())
    });
    let mut entry = serde_json::Map::new();
    entry.insert("manager".into(), json!(manager));
    entry.insert("operation".into(), json!(operation));
    entry.insert("apiVersion".into(), json!(rt.api_version()));
    entry.insert("time".into(), json!(format_time(now)));
    entry.insert("fieldsType".into(), json!("FieldsV1"));
    entry.insert("fieldsV1".into(), json!({}));
    if let Some(s) = &opts.subresource {
        entry.insert("subresource".into(), json!(s));
    }
    entries.push(Value::Object(entry));
    metadata_mut(obj).insert("managedFields".into(), Value::Array(entries));
}
