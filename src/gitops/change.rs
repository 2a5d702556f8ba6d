//! GitOps forward actions: a promote, abort, flip or rollback of an app that Argo CD or Flux
//! manage is written to its manifest in the GitOps repository (configured per app and
//! environment, `[apps.NAME.gitops.ENV]`), committed and pushed — not patched into the cluster,
//! where the controller would revert it at its next sync.
//!
//! [`translate`] turns the action's cluster patches into field changes of the manifest: it
//! applies each patch to the live object locally, compares the two field by field (list items
//! matched by `name`), finds the object's document in the manifests (`kind` and
//! `metadata.name`), and edits only those fields with the comment- and format-preserving
//! [`super::yaml`] editor. Fields the manifest does not carry under `annotations`/`labels`
//! (cluster-side stamps such as `kubectl.kubernetes.io/restartedAt`) are left out and said so.
//! [`commit_and_push`] refuses a dirty, ahead or diverged checkout, fast-forwards one that is
//! only behind, re-does the edit on the fresh file, commits (message: operator, reason,
//! previous values) and pushes; a rejected push undoes the local commit.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::repo::{Checkout, GitError};
use super::yaml::{self, FieldPath, Seg};
use crate::config::file::GitopsConfig;

/// One field of one manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldEdit {
    /// `Deployment/checkout`.
    pub object: String,
    pub kind: String,
    pub name: String,
    pub path: FieldPath,
    /// As the manifest has it now (None: absent, inserted).
    pub old: Option<Value>,
    pub new: Value,
    /// Manifest file (relative to the checkout's root) and 1-based line of the value.
    pub file: PathBuf,
    pub line: usize,
}

impl FieldEdit {
    /// `apps/checkout/canary.yaml:31 Deployment/checkout-canary spec.replicas: 1 → 0`.
    pub fn describe(&self) -> String {
        format!(
            "{}:{} {} {}: {} → {}",
            self.file.display(),
            self.line,
            self.object,
            self.path,
            self.old
                .as_ref()
                .map(scalar)
                .unwrap_or_else(|| "(absent)".into()),
            scalar(&self.new)
        )
    }
}

/// A JSON scalar as YAML would show it.
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The change as it will be committed.
#[derive(Debug, Clone, PartialEq)]
pub struct GitChange {
    pub repo: PathBuf,
    pub remote: String,
    pub branch: Option<String>,
    pub edits: Vec<FieldEdit>,
    /// Cluster-side fields the manifest does not carry, left out (`Deployment/x
    /// spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]`).
    pub skipped: Vec<String>,
    /// Who applies it: `Flux Kustomization flux-system/apps`.
    pub controller: String,
}

/// What went wrong; every message says nothing was written where that is so.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChangeError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Git(String),
}

impl From<GitError> for ChangeError {
    fn from(e: GitError) -> Self {
        match e {
            GitError::PushRejected { .. } | GitError::Push { .. } | GitError::Fetch { .. } => {
                ChangeError::Git(e.to_string())
            }
            other => ChangeError::Refused(other.to_string()),
        }
    }
}

/// Paths (JSON pointers) never written to Git: server-side bookkeeping.
fn ignored(ptr: &str) -> bool {
    ptr.starts_with("/status")
        || ptr.starts_with("/metadata/managedFields")
        || matches!(
            ptr,
            "/metadata/resourceVersion"
                | "/metadata/generation"
                | "/metadata/uid"
                | "/metadata/creationTimestamp"
                | "/metadata/annotations/deployment.kubernetes.io~1revision"
                | "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration"
        )
}

fn esc(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// Field-by-field differences between `before` and `after`: (path, pointer, new value).
/// Lists of mappings with a `name` are matched by name; other lists by position when their
/// lengths agree. A list that changes otherwise is an error (not expressible as field edits).
pub fn diff(before: &Value, after: &Value) -> Result<Vec<(FieldPath, Value)>, ChangeError> {
    let mut out = Vec::new();
    walk(before, after, &mut Vec::new(), &mut String::new(), &mut out)?;
    Ok(out)
}

fn named(items: &[Value]) -> Option<Vec<&str>> {
    items
        .iter()
        .map(|i| i.get("name").and_then(Value::as_str))
        .collect()
}

fn walk(
    a: &Value,
    b: &Value,
    path: &mut Vec<Seg>,
    ptr: &mut String,
    out: &mut Vec<(FieldPath, Value)>,
) -> Result<(), ChangeError> {
    if ignored(ptr) || a == b {
        return Ok(());
    }
    match (a, b) {
        (Value::Object(ma), Value::Object(mb)) => {
            let mut keys: Vec<&String> = ma.keys().chain(mb.keys()).collect();
            keys.dedup();
            let mut seen = std::collections::BTreeSet::new();
            for k in keys {
                if !seen.insert(k) {
                    continue;
                }
                let (va, vb) = (
                    ma.get(k).unwrap_or(&Value::Null),
                    mb.get(k).unwrap_or(&Value::Null),
                );
                let len = ptr.len();
                ptr.push('/');
                ptr.push_str(&esc(k));
                path.push(Seg::Key(k.clone()));
                walk(va, vb, path, ptr, out)?;
                path.pop();
                ptr.truncate(len);
            }
            Ok(())
        }
        (Value::Array(la), Value::Array(lb)) => {
            if let (Some(na), Some(nb)) = (named(la), named(lb)) {
                let (mut sa, mut sb) = (na.clone(), nb.clone());
                sa.sort_unstable();
                sb.sort_unstable();
                if sa == sb {
                    for (i, n) in na.iter().enumerate() {
                        let j = nb.iter().position(|m| m == n).unwrap_or(i);
                        let len = ptr.len();
                        ptr.push_str(&format!("/{i}"));
                        path.push(Seg::Match {
                            key: "name".into(),
                            value: n.to_string(),
                        });
                        walk(&la[i], &lb[j], path, ptr, out)?;
                        path.pop();
                        ptr.truncate(len);
                    }
                    return Ok(());
                }
            } else if la.len() == lb.len() {
                for (i, (x, y)) in la.iter().zip(lb).enumerate() {
                    let len = ptr.len();
                    ptr.push_str(&format!("/{i}"));
                    path.push(Seg::Index(i));
                    walk(x, y, path, ptr, out)?;
                    path.pop();
                    ptr.truncate(len);
                }
                return Ok(());
            }
            Err(ChangeError::Refused(format!(
                "the change adds or removes items of the list {}: not written to Git field by field; change the manifest by hand",
                FieldPath(path.clone())
            )))
        }
        (_, Value::Object(_) | Value::Array(_)) | (Value::Object(_) | Value::Array(_), _) => {
            if a.is_null() || b.is_null() {
                // A whole mapping appears or goes: its scalar leaves, one by one.
                let empty = if a.is_null() { b } else { a };
                let blank = match empty {
                    Value::Object(_) => Value::Object(Default::default()),
                    _ => Value::Array(Vec::new()),
                };
                let (x, y) = if a.is_null() {
                    (&blank, b)
                } else {
                    (a, &blank)
                };
                return walk(x, y, path, ptr, out);
            }
            Err(ChangeError::Refused(format!(
                "{} changes shape (scalar ↔ mapping/list): change the manifest by hand",
                FieldPath(path.clone())
            )))
        }
        _ => {
            out.push((FieldPath(path.clone()), b.clone()));
            Ok(())
        }
    }
}

/// Manifest files under `path` of the checkout (a file, or every `*.yaml`/`*.yml` below a
/// directory), relative to the checkout's root, sorted.
pub fn manifest_files(root: &Path, path: &Path) -> Result<Vec<PathBuf>, ChangeError> {
    let full = root.join(path);
    if full.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !full.is_dir() {
        return Err(ChangeError::Refused(format!(
            "{} does not exist in the GitOps checkout {}",
            path.display(),
            root.display()
        )));
    }
    let mut out = Vec::new();
    let mut stack = vec![full];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| ChangeError::Refused(format!("reading {}: {e}", dir.display())))?;
        for e in entries.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                && let Ok(rel) = p.strip_prefix(root)
            {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The document of `kind`/`name` among `files`: (file, its text, document index).
fn locate(
    root: &Path,
    files: &[PathBuf],
    kind: &str,
    name: &str,
) -> Result<Option<(PathBuf, String, usize)>, ChangeError> {
    for f in files {
        let text = std::fs::read_to_string(root.join(f))
            .map_err(|e| ChangeError::Refused(format!("reading {}: {e}", f.display())))?;
        match yaml::find_object(&text, kind, name) {
            Ok(Some(doc)) => return Ok(Some((f.clone(), text, doc))),
            Ok(None) => {}
            Err(e) => {
                return Err(ChangeError::Refused(format!(
                    "{}: {e} (fix the manifest; nothing was written)",
                    f.display()
                )));
            }
        }
    }
    Ok(None)
}

/// One object's change: the live object and the object as the action would leave it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectChange {
    /// Its resource type (`res.kind` finds it in the manifests).
    pub res: crate::cluster::actions::Res,
    pub name: String,
    pub before: Value,
    pub after: Value,
}

/// The edits, the new text of each touched file, and what was left out.
pub type Edits = (Vec<FieldEdit>, Vec<(PathBuf, String)>, Vec<String>);

/// Work out the field edits for `objects` against the manifests in the checkout's work tree.
/// Returns the edits (with the new text of each touched file) and what was left out.
pub fn edits_for(
    root: &Path,
    manifests: &Path,
    objects: &[ObjectChange],
) -> Result<Edits, ChangeError> {
    let files = manifest_files(root, manifests)?;
    let mut texts: Vec<(PathBuf, String)> = Vec::new();
    let mut edits = Vec::new();
    let mut skipped = Vec::new();
    for o in objects {
        let object = format!("{}/{}", o.res.kind, o.name);
        let changes = diff(&o.before, &o.after)?;
        if changes.is_empty() {
            continue;
        }
        let Some((file, text, doc)) = locate(root, &files, o.res.kind, &o.name)? else {
            return Err(ChangeError::Refused(format!(
                "{object} is not in {} of the GitOps checkout {}: cannot write the change to Git (check [apps.…gitops] path); nothing was written",
                manifests.display(),
                root.display()
            )));
        };
        // Edit the latest text of the file when an earlier object already changed it.
        let mut text = texts
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, t)| t.clone())
            .unwrap_or(text);
        for (path, new) in changes {
            let current = yaml::get(&text, doc, &path).map_err(|e| {
                ChangeError::Refused(format!("{}: {e}; nothing was written", file.display()))
            })?;
            match current {
                Some(s) if s.value == new => continue,
                None if new.is_null() => continue,
                None if path
                    .0
                    .iter()
                    .any(|s| matches!(s, Seg::Key(k) if k == "annotations" || k == "labels")) =>
                {
                    skipped.push(format!("{object} {path}"));
                    continue;
                }
                _ => {}
            }
            if new.is_null() {
                return Err(ChangeError::Refused(format!(
                    "{object} {path} would be removed: not written to Git field by field; change the manifest by hand"
                )));
            }
            let edit = yaml::set(&text, doc, &path, &new).map_err(|e| {
                ChangeError::Refused(format!("{}: {e}; nothing was written", file.display()))
            })?;
            edits.push(FieldEdit {
                object: object.clone(),
                kind: o.res.kind.to_string(),
                name: o.name.clone(),
                path: path.clone(),
                old: edit.old.clone(),
                new: new.clone(),
                file: file.clone(),
                line: edit.line,
            });
            text = edit.text;
        }
        match texts.iter_mut().find(|(f, _)| *f == file) {
            Some(slot) => slot.1 = text,
            None => texts.push((file, text)),
        }
    }
    Ok((edits, texts, skipped))
}

/// Author and committer: the checkout's `user.name`/`user.email`, else the operator.
pub fn signature(repo: &Path, os_user: &str) -> (String, String) {
    let cfg = git2::Repository::open(repo)
        .ok()
        .and_then(|r| r.config().ok())
        .and_then(|mut c| c.snapshot().ok());
    let get = |k: &str| cfg.as_ref().and_then(|c| c.get_string(k).ok());
    (
        get("user.name").unwrap_or_else(|| os_user.to_string()),
        get("user.email").unwrap_or_else(|| format!("{os_user}@kockpit.invalid")),
    )
}

/// What [`commit_and_push`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    /// Commit ids, one per touched file, oldest first.
    pub commits: Vec<String>,
    pub remote_branch: String,
    /// Commits the checkout was fast-forwarded by first.
    pub fast_forwarded: usize,
    /// The edits as made on the fresh checkout.
    pub edits: Vec<FieldEdit>,
}

/// Prepare the checkout, make the edits on its fresh files, commit each file and push once.
pub fn commit_and_push(
    cfg: &GitopsConfig,
    objects: &[ObjectChange],
    message: &dyn Fn(&[FieldEdit]) -> String,
    author: (&str, &str),
) -> Result<Pushed, ChangeError> {
    let mut checkout = Checkout::open(&cfg.repo)?;
    let ready = checkout.prepare(&cfg.remote, cfg.branch.as_deref())?;
    let root = checkout.workdir().to_path_buf();
    let (edits, texts, _) = edits_for(&root, &cfg.path, objects)?;
    if edits.is_empty() {
        return Err(ChangeError::Refused(format!(
            "the manifests in {} already say this (commit {}): nothing to commit; the controller has not applied it yet",
            cfg.path.display(),
            &ready.head.get(..12).unwrap_or(&ready.head)
        )));
    }
    let msg = message(&edits);
    let base = ready.head.clone();
    let mut commits = Vec::new();
    for (file, text) in &texts {
        match checkout.commit_file(file, text, &msg, author.0, author.1) {
            Ok(id) => commits.push(id),
            Err(e) => {
                if !commits.is_empty() {
                    let _ = checkout.undo_commit(&base);
                }
                return Err(e.into());
            }
        }
    }
    if let Err(e) = checkout.push(&cfg.remote) {
        let undo = checkout.undo_commit(&base);
        let mut err: ChangeError = e.into();
        if let (ChangeError::Git(m), Err(u)) = (&err, undo) {
            err = ChangeError::Git(format!("{m}; undoing the local commit failed too: {u}"));
        }
        return Err(err);
    }
    Ok(Pushed {
        commits,
        remote_branch: ready.remote_branch,
        fast_forwarded: ready.fast_forwarded,
        edits,
    })
}

/// The value at `path` in a JSON object (list items by index or by a key's value).
pub fn json_at<'a>(v: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    let mut cur = v;
    for s in &path.0 {
        cur = match s {
            Seg::Key(k) => cur.get(k)?,
            Seg::Index(i) => cur.get(*i)?,
            Seg::Match { key, value } => cur
                .as_array()?
                .iter()
                .find(|i| i.get(key).and_then(Value::as_str) == Some(value.as_str()))?,
        };
    }
    Some(cur)
}

/// Whether every edited field is live in the cluster as committed.
pub async fn converged(
    client: &kube::Client,
    ns: &str,
    objects: &[ObjectChange],
    edits: &[FieldEdit],
) -> bool {
    for o in objects {
        let Ok(live) = crate::cluster::actions::get(client, ns, &o.res, &o.name).await else {
            return false;
        };
        for e in edits
            .iter()
            .filter(|e| e.kind == o.res.kind && e.name == o.name)
        {
            if json_at(&live, &e.path) != Some(&e.new) {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_matches_named_list_items_and_skips_bookkeeping() {
        let before = json!({"metadata": {"resourceVersion": "1", "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "app", "image": "r/checkout:1.5.0"}, {"name": "proxy", "image": "envoy:1"}]}}}});
        let mut after = before.clone();
        after["metadata"]["resourceVersion"] = json!("2");
        after["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("4");
        after["spec"]["template"]["spec"]["containers"] = json!([
            {"name": "proxy", "image": "envoy:1"}, {"name": "app", "image": "r/checkout:1.4.2"}]);
        let d = diff(&before, &after).expect("diff");
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            d[0].0.to_string(),
            "spec.template.spec.containers[name=app].image"
        );
        assert_eq!(d[0].1, json!("r/checkout:1.4.2"));
    }

    #[test]
    fn list_items_added_or_removed_are_refused() {
        let before = json!({"spec": {"env": [{"name": "A", "value": "1"}]}});
        let after =
            json!({"spec": {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}});
        assert!(
            matches!(diff(&before, &after), Err(ChangeError::Refused(m)) if m.contains("spec.env"))
        );
    }
}
