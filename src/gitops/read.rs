//! Reading manifests out of a GitOps repository, straight from its object database: the
//! commit a branch points at and every YAML file under a directory of that commit's tree.
//!
//! Only local repositories are read (a `file://` URL or a plain path, bare or with a working
//! tree); nothing is checked out or cloned, so a bare repository that pushes land in works as
//! well as a working clone, and what is read is exactly what was committed (never uncommitted
//! edits in a working tree). The sandbox's Flux controller reads its GitRepositories this way.

use std::path::{Path, PathBuf};

use git2::{ErrorCode, ObjectType, Oid, Repository, Tree};

/// The YAML files under a directory at one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The commit read, as a full hex object id.
    pub commit: String,
    /// `(path relative to the repository root, contents)`, sorted by path.
    pub files: Vec<(String, String)>,
}

/// The commit a branch points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Full hex object id.
    pub commit: String,
    /// The first line of the commit message.
    pub summary: String,
}

/// Why a repository could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error(
        "cannot read repository '{url}': only local repositories (file:// URLs or paths) can be read"
    )]
    Unsupported { url: String },
    #[error("repository '{url}' not found: {message}")]
    RepoMissing { url: String, message: String },
    #[error("branch '{branch}' not found in repository '{url}'")]
    BranchMissing { url: String, branch: String },
    #[error("commit '{commit}' not found in repository '{url}'")]
    CommitMissing { url: String, commit: String },
    #[error("path '{path}' not found in repository '{url}' at commit {commit}")]
    PathMissing {
        url: String,
        path: String,
        commit: String,
    },
    #[error("file '{path}' at commit {commit} is not UTF-8 text")]
    NotUtf8 { path: String, commit: String },
    #[error("reading repository '{url}': {message}")]
    Git { url: String, message: String },
}

/// Every `*.yaml`/`*.yml` file under `subpath` (recursively; `""`, `"."` or `"./"` is the
/// root) at the head of `refs/heads/<branch>` of the repository at `url`.
pub fn read_branch(url: &str, branch: &str, subpath: &str) -> Result<Snapshot, ReadError> {
    let repo = open(url)?;
    let oid = branch_oid(&repo, url, branch)?;
    snapshot(&repo, url, oid, subpath)
}

/// Like [`read_branch`], at a given commit (full or abbreviated hex id).
pub fn read_commit(url: &str, commit: &str, subpath: &str) -> Result<Snapshot, ReadError> {
    let repo = open(url)?;
    let missing = || ReadError::CommitMissing {
        url: url.to_string(),
        commit: commit.to_string(),
    };
    let oid = repo
        .revparse_single(commit)
        .and_then(|o| o.peel_to_commit())
        .map_err(|_| missing())?
        .id();
    snapshot(&repo, url, oid, subpath)
}

/// The commit `refs/heads/<branch>` points at, without reading any tree.
pub fn resolve_branch(url: &str, branch: &str) -> Result<Head, ReadError> {
    let repo = open(url)?;
    let oid = branch_oid(&repo, url, branch)?;
    let commit = repo.find_commit(oid).map_err(|e| git(url, &e))?;
    Ok(Head {
        commit: oid.to_string(),
        summary: commit
            .summary()
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_string(),
    })
}

/// The filesystem path of a repository URL: `file://` URLs are decoded, anything without a
/// scheme is a path; other schemes (https, ssh) are not read.
pub fn repo_path(url: &str) -> Result<PathBuf, ReadError> {
    let unsupported = || ReadError::Unsupported {
        url: url.to_string(),
    };
    if url.starts_with("file:") {
        let parsed = url::Url::parse(url).map_err(|_| unsupported())?;
        return parsed.to_file_path().map_err(|_| unsupported());
    }
    if url.is_empty() || url.contains("://") || scp_like(url) {
        return Err(unsupported());
    }
    Ok(PathBuf::from(url))
}

/// `git@host:org/repo.git`: an ssh remote in scp syntax (a colon before any slash).
fn scp_like(url: &str) -> bool {
    match (url.find(':'), url.find('/')) {
        (Some(c), Some(s)) => c < s && c > 1,
        (Some(c), None) => c > 1,
        _ => false,
    }
}

fn git(url: &str, e: &git2::Error) -> ReadError {
    ReadError::Git {
        url: url.to_string(),
        message: e.message().to_string(),
    }
}

fn open(url: &str) -> Result<Repository, ReadError> {
    let path = repo_path(url)?;
    if !path.exists() {
        return Err(ReadError::RepoMissing {
            url: url.to_string(),
            message: format!("{} does not exist", path.display()),
        });
    }
    // Exactly this directory (bare, or a working tree with .git): never a parent's repository.
    Repository::open_ext(
        &path,
        git2::RepositoryOpenFlags::NO_SEARCH,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .map_err(|e| ReadError::RepoMissing {
        url: url.to_string(),
        message: e.message().to_string(),
    })
}

fn branch_oid(repo: &Repository, url: &str, branch: &str) -> Result<Oid, ReadError> {
    let missing = || ReadError::BranchMissing {
        url: url.to_string(),
        branch: branch.to_string(),
    };
    let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
    if branch.is_empty() {
        return Err(missing());
    }
    let reference = match repo.find_reference(&format!("refs/heads/{branch}")) {
        Ok(r) => r,
        Err(e) if matches!(e.code(), ErrorCode::NotFound | ErrorCode::InvalidSpec) => {
            return Err(missing());
        }
        Err(e) => return Err(git(url, &e)),
    };
    reference
        .peel_to_commit()
        .map(|c| c.id())
        .map_err(|e| git(url, &e))
}

/// `subpath` as tree path components: `./apps/web/`, `apps//web` and `/apps/web` are all
/// `apps/web`; `..` climbs (but never above the root).
fn components(url: &str, subpath: &str, commit: &str) -> Result<Vec<String>, ReadError> {
    let mut out: Vec<String> = Vec::new();
    for part in subpath.trim().split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(ReadError::PathMissing {
                        url: url.to_string(),
                        path: subpath.to_string(),
                        commit: commit.to_string(),
                    });
                }
            }
            p => out.push(p.to_string()),
        }
    }
    Ok(out)
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// Git's mode for a symbolic link: its blob is the link target, not a manifest.
const SYMLINK_MODE: i32 = 0o120000;

fn snapshot(repo: &Repository, url: &str, oid: Oid, subpath: &str) -> Result<Snapshot, ReadError> {
    let commit_hex = oid.to_string();
    let commit = repo.find_commit(oid).map_err(|e| git(url, &e))?;
    let root = commit.tree().map_err(|e| git(url, &e))?;
    let parts = components(url, subpath, &commit_hex)?;
    let prefix = parts.join("/");
    let mut files = Vec::new();
    if prefix.is_empty() {
        collect(repo, url, &commit_hex, &root, "", &mut files)?;
    } else {
        let missing = || ReadError::PathMissing {
            url: url.to_string(),
            path: subpath.to_string(),
            commit: commit_hex.clone(),
        };
        let entry = match root.get_path(Path::new(&prefix)) {
            Ok(e) => e,
            Err(e) if e.code() == ErrorCode::NotFound => return Err(missing()),
            Err(e) => return Err(git(url, &e)),
        };
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let tree = repo.find_tree(entry.id()).map_err(|e| git(url, &e))?;
                collect(repo, url, &commit_hex, &tree, &prefix, &mut files)?;
            }
            // A single file named directly is read whatever its extension.
            Some(ObjectType::Blob) if entry.filemode() != SYMLINK_MODE => {
                files.push((
                    prefix.clone(),
                    blob_text(repo, url, &commit_hex, &prefix, entry.id())?,
                ));
            }
            _ => return Err(missing()),
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Snapshot {
        commit: commit_hex,
        files,
    })
}

fn collect(
    repo: &Repository,
    url: &str,
    commit: &str,
    tree: &Tree<'_>,
    dir: &str,
    out: &mut Vec<(String, String)>,
) -> Result<(), ReadError> {
    for entry in tree.iter() {
        let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
        let path = if dir.is_empty() {
            name.clone()
        } else {
            format!("{dir}/{name}")
        };
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let sub = repo.find_tree(entry.id()).map_err(|e| git(url, &e))?;
                collect(repo, url, commit, &sub, &path, out)?;
            }
            Some(ObjectType::Blob) if is_yaml(&name) && entry.filemode() != SYMLINK_MODE => {
                let text = blob_text(repo, url, commit, &path, entry.id())?;
                out.push((path, text));
            }
            // Other files, symlinks and submodules (commits) are not manifests.
            _ => {}
        }
    }
    Ok(())
}

fn blob_text(
    repo: &Repository,
    url: &str,
    commit: &str,
    path: &str,
    id: Oid,
) -> Result<String, ReadError> {
    let blob = repo.find_blob(id).map_err(|e| git(url, &e))?;
    String::from_utf8(blob.content().to_vec()).map_err(|_| ReadError::NotUtf8 {
        path: path.to_string(),
        commit: commit.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare repository with one commit on `main` holding `files`, written through a
    /// temporary working clone; returns the temp dir, the bare repo's path and the commit.
    fn repo_with(files: &[(&str, &[u8])]) -> (tempfile::TempDir, PathBuf, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let bare = dir.path().join("origin.git");
        Repository::init_bare(&bare).expect("init bare");
        let work = dir.path().join("work");
        let repo = Repository::init(&work).expect("init");
        for (path, content) in files {
            let p = work.join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, content).expect("write");
        }
        let mut index = repo.index().expect("index");
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .expect("add");
        index.write().expect("write index");
        let tree = repo
            .find_tree(index.write_tree().expect("tree"))
            .expect("tree");
        let sig = git2::Signature::now("t", "t@example.com").expect("sig");
        let oid = repo
            .commit(
                Some("refs/heads/main"),
                &sig,
                &sig,
                "first\n\nbody",
                &tree,
                &[],
            )
            .expect("commit");
        let mut remote = repo
            .remote("origin", bare.to_str().expect("utf-8 path"))
            .expect("remote");
        remote
            .push(&["refs/heads/main:refs/heads/main"], None)
            .expect("push");
        (dir, bare, oid.to_string())
    }

    #[test]
    fn reads_yaml_under_a_subpath_from_a_bare_repo_by_url_or_path() {
        let (_dir, bare, oid) = repo_with(&[
            ("apps/web/deploy.yaml", b"kind: Deployment\n"),
            ("apps/web/nested/svc.yml", b"kind: Service\n"),
            ("apps/web/README.md", b"not a manifest"),
            ("apps/api/deploy.yaml", b"kind: Deployment\n"),
            ("root.yaml", b"kind: Namespace\n"),
        ]);
        let url = url::Url::from_file_path(&bare).expect("url").to_string();
        let snap = read_branch(&url, "main", "./apps/web").expect("read");
        assert_eq!(snap.commit, oid);
        assert_eq!(
            snap.files,
            vec![
                (
                    "apps/web/deploy.yaml".to_string(),
                    "kind: Deployment\n".to_string()
                ),
                (
                    "apps/web/nested/svc.yml".to_string(),
                    "kind: Service\n".to_string()
                ),
            ]
        );
        let path = bare.to_str().expect("utf-8");
        let all = read_branch(path, "main", "./").expect("read root");
        assert_eq!(all.files.len(), 4, "{:?}", all.files);
        assert_eq!(read_branch(path, "main", "").expect("root"), all);
        assert_eq!(read_branch(path, "main", "apps/web/").expect("slash"), snap);
        assert_eq!(
            read_commit(path, &oid[..10], "apps/web").expect("commit"),
            snap
        );
        let head = resolve_branch(&url, "main").expect("head");
        assert_eq!(head.commit, oid);
        assert_eq!(head.summary, "first");
    }

    #[test]
    fn errors_name_what_is_missing() {
        let (dir, bare, oid) = repo_with(&[
            ("apps/web/deploy.yaml", b"kind: Deployment\n"),
            ("apps/bin/blob.yaml", &[0xff, 0xfe, 0x00]),
        ]);
        let path = bare.to_str().expect("utf-8");
        let gone = dir.path().join("nope.git");
        let err = read_branch(gone.to_str().expect("utf-8"), "main", "").unwrap_err();
        assert!(matches!(err, ReadError::RepoMissing { .. }), "{err}");
        assert!(err.to_string().contains("nope.git"), "{err}");
        let not_repo = dir.path().join("plain");
        std::fs::create_dir_all(&not_repo).expect("mkdir");
        let err = read_branch(not_repo.to_str().expect("utf-8"), "main", "").unwrap_err();
        assert!(matches!(err, ReadError::RepoMissing { .. }), "{err}");

        let err = read_branch(path, "master", "").unwrap_err();
        assert_eq!(
            err,
            ReadError::BranchMissing {
                url: path.into(),
                branch: "master".into()
            }
        );
        assert_eq!(
            err.to_string(),
            format!("branch 'master' not found in repository '{path}'")
        );
        let err = read_branch(path, "main", "apps/api").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("path 'apps/api' not found in repository '{path}' at commit {oid}")
        );
        let err = read_branch(path, "main", "apps").unwrap_err();
        assert_eq!(
            err,
            ReadError::NotUtf8 {
                path: "apps/bin/blob.yaml".into(),
                commit: oid.clone()
            }
        );
        assert!(read_branch(path, "main", "apps/web").is_ok());
        let err = read_commit(path, "0123456789abcdef", "").unwrap_err();
        assert!(matches!(err, ReadError::CommitMissing { .. }), "{err}");
        for remote in [
            "https://github.com/org/repo",
            "ssh://git@github.com/org/repo",
            "git@github.com:org/repo.git",
        ] {
            let err = read_branch(remote, "main", "").unwrap_err();
            assert!(
                matches!(err, ReadError::Unsupported { .. }),
                "{remote}: {err}"
            );
        }
    }

    #[test]
    fn subpaths_are_normalised() {
        let c = |s: &str| components("u", s, "c");
        assert_eq!(c("./apps/web/").unwrap(), vec!["apps", "web"]);
        assert_eq!(c("/apps//web").unwrap(), vec!["apps", "web"]);
        assert_eq!(c("apps/x/../web").unwrap(), vec!["apps", "web"]);
        assert!(c("./").unwrap().is_empty());
        assert!(c("..").is_err());
    }
}
