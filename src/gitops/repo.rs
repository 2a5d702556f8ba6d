//! The Git side of GitOps "forward rollback".
//!
//! For apps managed by Argo CD or Flux, a rollback or promote is not patched
//! into the cluster: it is written to a manifest in a local checkout of the
//! GitOps repository, committed with a message naming the operator, the reason
//! and the previous value, and pushed to the configured remote. The GitOps
//! controller then rolls the cluster forward to that commit.
//!
//! The repository is only ever touched through libgit2 ([`git2`]):
//!
//! 1. [`Checkout::open`] finds the work tree and the current branch (a detached
//!    HEAD or a bare repository is refused).
//! 2. [`Checkout::prepare`] refuses a dirty, busy (mid-merge/rebase), ahead or
//!    diverged checkout, fetches the remote branch, and fast-forwards a checkout
//!    that is merely behind (like `git pull --ff-only`).
//! 3. [`Checkout::commit_file`] writes one file, stages only that path and
//!    commits it on the current branch.
//! 4. [`Checkout::push`] pushes without force; a remote that moved since
//!    `prepare` yields [`GitError::PushRejected`], after which
//!    [`Checkout::undo_commit`] puts the branch and the touched files back.
//!
//! Network timeouts: libgit2 only offers process-wide settings. The first
//! fetch or push sets a connect timeout of [`CONNECT_TIMEOUT_MS`] and a
//! read/write timeout of [`IO_TIMEOUT_MS`] (they apply to the http(s) and ssh
//! socket transports; local paths and `file://` remotes have none).

use std::cell::RefCell;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::Once;

use git2::build::{CheckoutBuilder, TreeUpdateBuilder};
use git2::{
    AutotagOption, CheckoutNotificationType, Cred, CredentialType, DiffFormat, ErrorCode,
    FetchOptions, FileMode, ObjectType, Oid, ProxyOptions, PushOptions, RemoteCallbacks,
    Repository, RepositoryState, Signature, StatusOptions,
};

/// Connect timeout for network remotes, in milliseconds.
pub const CONNECT_TIMEOUT_MS: i32 = 15_000;
/// Read/write (server) timeout for network remotes, in milliseconds.
pub const IO_TIMEOUT_MS: i32 = 60_000;
/// How many times the credential callback answers before giving up (libgit2
/// calls it again after every rejected credential).
const MAX_CREDENTIAL_ATTEMPTS: u32 = 5;
/// How many file names a [`GitError::Dirty`] message spells out.
const LISTED_FILES: usize = 10;

/// Everything that can go wrong while reading, committing to or pushing a
/// GitOps checkout. Every refusal happens before anything is written.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The path is not inside a git work tree (or is a bare repository).
    #[error("{path} is not a usable git checkout: {message}")]
    NotARepo {
        /// The path that was given.
        path: PathBuf,
        /// Why (libgit2's message, or "bare repository").
        message: String,
    },
    /// HEAD does not point at a branch.
    #[error(
        "the checkout {path} has a detached HEAD (not on a branch); check out the branch the GitOps controller watches first — nothing was written"
    )]
    Detached {
        /// The work tree.
        path: PathBuf,
    },
    /// The current branch has no commit yet.
    #[error(
        "the checkout {path} is on branch {branch}, which has no commits yet — nothing was written"
    )]
    Unborn {
        /// The work tree.
        path: PathBuf,
        /// The unborn branch.
        branch: String,
    },
    /// A merge, rebase, cherry-pick, … is in progress.
    #[error(
        "the checkout {path} is in the middle of a {operation}; finish or abort it first — nothing was written"
    )]
    Busy {
        /// The work tree.
        path: PathBuf,
        /// What is in progress ("merge", "rebase", …).
        operation: String,
    },
    /// Tracked files are modified, staged, deleted or conflicted.
    #[error(
        "the checkout {path} has uncommitted changes ({}); commit or stash them first — nothing was written",
        list_files(.files)
    )]
    Dirty {
        /// The work tree.
        path: PathBuf,
        /// The changed paths, relative to the work tree.
        files: Vec<String>,
    },
    /// The fast-forward would overwrite local (untracked) files.
    #[error(
        "fast-forwarding the checkout {path} would overwrite local files ({}); move them away first — nothing was written",
        list_files(.files)
    )]
    FastForwardBlocked {
        /// The work tree.
        path: PathBuf,
        /// The paths in the way.
        files: Vec<String>,
    },
    /// The local branch has commits the remote does not: pushing would publish them.
    #[error(
        "branch {branch} has {commits} local commit(s) that are not on {remote_branch}; pushing would publish them too — push or drop them first, nothing was written"
    )]
    Ahead {
        /// The local branch.
        branch: String,
        /// The remote branch, as `remote/branch`.
        remote_branch: String,
        /// How many local commits are not on the remote.
        commits: usize,
    },
    /// Local and remote both have commits the other lacks.
    #[error(
        "branch {branch} and {remote_branch} have diverged ({ahead} local and {behind} remote commit(s)); reconcile them first — nothing was written"
    )]
    Diverged {
        /// The local branch.
        branch: String,
        /// The remote branch, as `remote/branch`.
        remote_branch: String,
        /// Local commits not on the remote.
        ahead: usize,
        /// Remote commits not in the local branch.
        behind: usize,
    },
    /// No remote of that name is configured.
    #[error("the checkout has no remote named {name:?}")]
    NoRemote {
        /// The remote name asked for.
        name: String,
    },
    /// The remote has no such branch.
    #[error("remote {remote} has no branch {branch}")]
    NoRemoteBranch {
        /// The remote name.
        remote: String,
        /// The missing branch.
        branch: String,
    },
    /// Fetching failed (network, authentication, …).
    #[error("fetching from {remote} failed: {message}")]
    Fetch {
        /// The remote name.
        remote: String,
        /// libgit2's message.
        message: String,
    },
    /// The remote refused the update (typically: someone pushed first).
    #[error(
        "pushing {branch} to {remote} was rejected: {message} (the remote moved, probably someone pushed first; undo, prepare again and retry)"
    )]
    PushRejected {
        /// The remote name.
        remote: String,
        /// The branch pushed.
        branch: String,
        /// The rejection reason.
        message: String,
    },
    /// Pushing failed for another reason (network, authentication, …).
    #[error("pushing {branch} to {remote} failed: {message}")]
    Push {
        /// The remote name.
        remote: String,
        /// The branch pushed.
        branch: String,
        /// libgit2's message.
        message: String,
    },
    /// A path argument is unusable (absolute, `..`, inside `.git`, through a symlink, ignored, …).
    #[error("cannot use the path {path}: {reason}")]
    BadPath {
        /// The path given.
        path: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// The file is not tracked at HEAD.
    #[error("{path} is not tracked at HEAD")]
    NotTracked {
        /// The path, relative to the work tree.
        path: PathBuf,
    },
    /// The file already has exactly the requested contents.
    #[error("{path} already has that content; nothing to commit")]
    Unchanged {
        /// The path, relative to the work tree.
        path: PathBuf,
    },
    /// `undo_commit` was asked to drop commits that are already on the remote.
    #[error(
        "refusing to undo: {branch} at {head} is already on {remote_branch}; use a new commit instead"
    )]
    AlreadyPushed {
        /// The local branch.
        branch: String,
        /// The remote branch, as `remote/branch`.
        remote_branch: String,
        /// The current HEAD.
        head: String,
    },
    /// Reading or writing a work-tree file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Any other libgit2 failure.
    #[error("git: {0}")]
    Git(String),
}

impl From<git2::Error> for GitError {
    fn from(e: git2::Error) -> Self {
        GitError::Git(e.message().to_string())
    }
}

/// "a, b, c" — at most [`LISTED_FILES`] names, then "and N more".
fn list_files(files: &[String]) -> String {
    let mut out = files
        .iter()
        .take(LISTED_FILES)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if files.len() > LISTED_FILES {
        out.push_str(&format!(" and {} more", files.len() - LISTED_FILES));
    }
    out
}

/// The outcome of a successful [`Checkout::prepare`]: the checkout is clean and
/// its branch equals the remote branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// The branch tip (oid hex) after any fast-forward; pass it to
    /// [`Checkout::undo_commit`] if the push is rejected.
    pub head: String,
    /// How many remote commits were fast-forwarded into the branch (0 when it
    /// was already up to date).
    pub fast_forwarded: usize,
    /// The remote branch compared with, as `remote/branch`.
    pub remote_branch: String,
}

/// The remote branch `prepare` checked against; `push` targets it.
#[derive(Debug, Clone)]
struct Upstream {
    remote: String,
    branch: String,
}

/// A non-bare git checkout of a GitOps repository, on a branch.
pub struct Checkout {
    repo: Repository,
    workdir: PathBuf,
    branch: String,
    upstream: Option<Upstream>,
}

impl std::fmt::Debug for Checkout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkout")
            .field("workdir", &self.workdir)
            .field("branch", &self.branch)
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl Checkout {
    /// Open a non-bare checkout (the path may be any directory inside the work tree).
    pub fn open(path: &Path) -> Result<Checkout, GitError> {
        let repo = Repository::discover(path).map_err(|e| GitError::NotARepo {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })?;
        let Some(workdir) = repo.workdir().map(Path::to_path_buf) else {
            return Err(GitError::NotARepo {
                path: path.to_path_buf(),
                message: "a bare repository has no work tree; a checkout is needed".into(),
            });
        };
        let branch = current_branch(&repo, &workdir)?;
        if let Err(e) = repo.head() {
            return Err(if e.code() == ErrorCode::UnbornBranch {
                GitError::Unborn {
                    path: workdir,
                    branch,
                }
            } else {
                e.into()
            });
        }
        Ok(Checkout {
            repo,
            workdir,
            branch,
            upstream: None,
        })
    }

    /// The root of the work tree.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// The branch HEAD was on when the checkout was opened (e.g. `main`).
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The current branch tip, as oid hex.
    pub fn head(&self) -> Result<String, GitError> {
        self.ensure_on_branch()?;
        Ok(self.repo.head()?.peel_to_commit()?.id().to_string())
    }

    /// Fetch `remote`'s `branch` (default: the current branch) and make sure
    /// the checkout can take a commit.
    ///
    /// Refused (nothing written): a merge/rebase/… in progress
    /// ([`GitError::Busy`]); modified, staged, deleted or conflicted tracked
    /// files ([`GitError::Dirty`]; untracked and ignored files do not count
    /// and are never committed); local commits not on the remote
    /// ([`GitError::Ahead`]); both sides with new commits
    /// ([`GitError::Diverged`]). When the remote merely has new commits, the
    /// branch and the work tree are fast-forwarded (like `git pull --ff-only`)
    /// and [`Ready::fast_forwarded`] says by how many commits.
    pub fn prepare(&mut self, remote: &str, branch: Option<&str>) -> Result<Ready, GitError> {
        let local_ref = self.ensure_on_branch()?;
        self.ensure_idle()?;
        self.ensure_clean()?;
        let remote_branch = branch.unwrap_or(&self.branch).to_string();
        if !git2::Reference::is_valid_name(&format!("refs/heads/{remote_branch}")) {
            return Err(GitError::Git(format!(
                "{remote_branch:?} is not a valid branch name"
            )));
        }
        let remote_tip = self.fetch(remote, &remote_branch)?;
        let shown = format!("{remote}/{remote_branch}");
        let local_tip = self.repo.refname_to_id(&local_ref)?;
        let (ahead, behind) = self.repo.graph_ahead_behind(local_tip, remote_tip)?;
        match (ahead, behind) {
            (0, 0) => {}
            (0, _) => self.fast_forward(&local_ref, remote_tip, &shown)?,
            (commits, 0) => {
                return Err(GitError::Ahead {
                    branch: self.branch.clone(),
                    remote_branch: shown,
                    commits,
                });
            }
            (ahead, behind) => {
                return Err(GitError::Diverged {
                    branch: self.branch.clone(),
                    remote_branch: shown,
                    ahead,
                    behind,
                });
            }
        }
        self.upstream = Some(Upstream {
            remote: remote.to_string(),
            branch: remote_branch,
        });
        Ok(Ready {
            head: self.repo.refname_to_id(&local_ref)?.to_string(),
            fast_forwarded: behind,
            remote_branch: shown,
        })
    }

    /// Read a tracked file at HEAD (path relative to the work tree root).
    pub fn read(&self, rel: &Path) -> Result<String, GitError> {
        let rel_str = repo_path(rel)?;
        let tree = self.repo.head()?.peel_to_tree()?;
        let entry = tree
            .get_path(Path::new(&rel_str))
            .map_err(|_| GitError::NotTracked {
                path: PathBuf::from(&rel_str),
            })?;
        if entry.kind() != Some(ObjectType::Blob) {
            return Err(GitError::BadPath {
                path: PathBuf::from(&rel_str),
                reason: "not a file at HEAD".into(),
            });
        }
        let blob = self.repo.find_blob(entry.id())?;
        String::from_utf8(blob.content().to_vec()).map_err(|_| GitError::BadPath {
            path: PathBuf::from(&rel_str),
            reason: "not UTF-8 text".into(),
        })
    }

    /// Write `contents` to `rel`, stage only that path, commit on the current
    /// branch with `message`, author and committer = (`name`, `email`).
    /// Returns the new commit's oid hex.
    ///
    /// The commit's tree is HEAD's tree with only `rel` replaced, so nothing
    /// else (staged, untracked or ignored) can slip in. The message is cleaned
    /// up like `git commit` does (trailing whitespace, final newline). A new
    /// file may be created, but not one matched by `.gitignore`; symlinks,
    /// directories, `..` and `.git` are refused. Identical contents →
    /// [`GitError::Unchanged`] and no commit. If committing fails after the
    /// file was written, the file and its index entry are put back.
    pub fn commit_file(
        &self,
        rel: &Path,
        contents: &str,
        message: &str,
        name: &str,
        email: &str,
    ) -> Result<String, GitError> {
        let rel_str = repo_path(rel)?;
        let rel_path = PathBuf::from(&rel_str);
        let message = git2::message_prettify(message, None)?;
        if message.trim().is_empty() {
            return Err(GitError::Git("empty commit message".into()));
        }
        let sig = Signature::now(name, email).map_err(|e| {
            GitError::Git(format!(
                "invalid author {name:?} <{email}>: {}",
                e.message()
            ))
        })?;
        let branch_ref = self.ensure_on_branch()?;
        let parent = self.repo.head()?.peel_to_commit()?;
        let parent_tree = parent.tree()?;
        let existing = parent_tree.get_path(&rel_path).ok();
        match existing.as_ref().map(|e| e.filemode()) {
            None => {
                if self.repo.is_path_ignored(&rel_path)? {
                    return Err(GitError::BadPath {
                        path: rel_path,
                        reason: "it is ignored by .gitignore".into(),
                    });
                }
            }
            Some(0o100644 | 0o100755) => {}
            Some(0o120000) => {
                return Err(GitError::BadPath {
                    path: rel_path,
                    reason: "it is a symlink in the repository".into(),
                });
            }
            Some(_) => {
                return Err(GitError::BadPath {
                    path: rel_path,
                    reason: "it is a directory or submodule in the repository".into(),
                });
            }
        }
        self.refuse_symlinks(&rel_str)?;
        let new_id = Oid::hash_object(ObjectType::Blob, contents.as_bytes())?;
        if existing.as_ref().map(|e| e.id()) == Some(new_id) {
            return Err(GitError::Unchanged { path: rel_path });
        }

        let full = self.workdir.join(&rel_path);
        if let Some(dir) = full.parent() {
            fs::create_dir_all(dir).map_err(|source| GitError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        fs::write(&full, contents).map_err(|source| GitError::Io {
            path: full.clone(),
            source,
        })?;

        let committed = (|| -> Result<Oid, GitError> {
            let mut index = self.repo.index()?;
            index.read(false)?;
            index.add_path(&rel_path)?;
            let entry = index
                .get_path(&rel_path, 0)
                .ok_or_else(|| GitError::Git(format!("{rel_str} vanished from the index")))?;
            let mode = if entry.mode == 0o100755 {
                FileMode::BlobExecutable
            } else {
                FileMode::Blob
            };
            let tree_id = TreeUpdateBuilder::new()
                .upsert(rel_str.as_str(), entry.id, mode)
                .create_updated(&self.repo, &parent_tree)?;
            if tree_id == parent_tree.id() {
                return Err(GitError::Unchanged {
                    path: rel_path.clone(),
                });
            }
            let tree = self.repo.find_tree(tree_id)?;
            index.write()?;
            Ok(self
                .repo
                .commit(Some(&branch_ref), &sig, &sig, &message, &tree, &[&parent])?)
        })();
        match committed {
            Ok(oid) => Ok(oid.to_string()),
            Err(e) => {
                // Best effort: put the file and its index entry back as at HEAD.
                let _ = self.restore_from_head(&rel_str, existing.is_some());
                Err(e)
            }
        }
    }

    /// Push the current branch to `remote` without force: to the branch
    /// [`prepare`](Self::prepare) checked when it was run for this remote,
    /// else to the branch of the same name.
    ///
    /// A rejected update (non-fast-forward: the remote moved since `prepare`,
    /// or a server-side refusal reported through `push_update_reference`) is
    /// [`GitError::PushRejected`]; other failures are [`GitError::Push`].
    pub fn push(&self, remote: &str) -> Result<(), GitError> {
        let local_ref = self.ensure_on_branch()?;
        let target = match &self.upstream {
            Some(up) if up.remote == remote => up.branch.clone(),
            _ => self.branch.clone(),
        };
        let mut handle = self.find_remote(remote)?;
        init_network_timeouts();
        let config = self.repo.config()?;
        let rejected: RefCell<Vec<String>> = RefCell::new(Vec::new());
        let mut callbacks = remote_callbacks(&config);
        callbacks.push_update_reference(|refname, status| {
            if let Some(status) = status {
                rejected.borrow_mut().push(format!("{refname}: {status}"));
            }
            Ok(())
        });
        let mut proxy = ProxyOptions::new();
        proxy.auto();
        let mut opts = PushOptions::new();
        opts.remote_callbacks(callbacks).proxy_options(proxy);
        let refspec = format!("{local_ref}:refs/heads/{target}");
        let result = handle.push(&[refspec.as_str()], Some(&mut opts));
        drop(opts);
        match result {
            Err(e) if e.code() == ErrorCode::NotFastForward => Err(GitError::PushRejected {
                remote: remote.to_string(),
                branch: target,
                message: e.message().to_string(),
            }),
            Err(e) => Err(GitError::Push {
                remote: remote.to_string(),
                branch: target,
                message: e.message().to_string(),
            }),
            Ok(()) => {
                let rejected = rejected.into_inner();
                if rejected.is_empty() {
                    Ok(())
                } else {
                    Err(GitError::PushRejected {
                        remote: remote.to_string(),
                        branch: target,
                        message: rejected.join("; "),
                    })
                }
            }
        }
    }

    /// Undo our unpushed commit(s) after a failed push: move the branch back to
    /// `to` (oid hex, normally [`Ready::head`]) and restore the work tree and
    /// index for the files those commits touched — like `git reset --hard to`
    /// limited to those paths, which is only right because
    /// [`prepare`](Self::prepare) guaranteed the checkout was clean before.
    ///
    /// Refused when `to` is not an ancestor of HEAD, or when HEAD is already on
    /// the remote branch `prepare` fetched (the commit was published).
    pub fn undo_commit(&self, to: &str) -> Result<(), GitError> {
        let to_oid =
            Oid::from_str(to).map_err(|_| GitError::Git(format!("{to:?} is not a commit id")))?;
        let branch_ref = self.ensure_on_branch()?;
        let head = self.repo.head()?.peel_to_commit()?;
        if head.id() == to_oid {
            return Ok(());
        }
        if !self.repo.graph_descendant_of(head.id(), to_oid)? {
            return Err(GitError::Git(format!(
                "{to} is not an ancestor of {} ({}); refusing to move the branch",
                self.branch,
                head.id()
            )));
        }
        if let Some(up) = &self.upstream {
            let tracking = format!("refs/remotes/{}/{}", up.remote, up.branch);
            if let Ok(remote_tip) = self.repo.refname_to_id(&tracking)
                && (remote_tip == head.id()
                    || self.repo.graph_descendant_of(remote_tip, head.id())?)
            {
                return Err(GitError::AlreadyPushed {
                    branch: self.branch.clone(),
                    remote_branch: format!("{}/{}", up.remote, up.branch),
                    head: head.id().to_string(),
                });
            }
        }
        let target = self.repo.find_commit(to_oid)?;
        let diff = self
            .repo
            .diff_tree_to_tree(Some(&target.tree()?), Some(&head.tree()?), None)?;
        let mut paths: Vec<PathBuf> = Vec::new();
        for delta in diff.deltas() {
            for file in [delta.old_file(), delta.new_file()] {
                if let Some(p) = file.path()
                    && !paths.iter().any(|q| q == p)
                {
                    paths.push(p.to_path_buf());
                }
            }
        }
        if !paths.is_empty() {
            let mut co = CheckoutBuilder::new();
            co.force().disable_pathspec_match(true);
            for p in &paths {
                co.path(p.as_path());
            }
            self.repo.checkout_tree(target.as_object(), Some(&mut co))?;
        }
        self.repo
            .find_reference(&branch_ref)?
            .set_target(to_oid, "kockpit: undo unpushed commit")?;
        Ok(())
    }

    /// Diff of a commit against its (first) parent as unified text.
    pub fn commit_diff(&self, oid: &str) -> Result<String, GitError> {
        let oid =
            Oid::from_str(oid).map_err(|_| GitError::Git(format!("{oid:?} is not a commit id")))?;
        let commit = self.repo.find_commit(oid)?;
        let parent_tree = match commit.parent_count() {
            0 => None,
            _ => Some(commit.parent(0)?.tree()?),
        };
        let diff =
            self.repo
                .diff_tree_to_tree(parent_tree.as_ref(), Some(&commit.tree()?), None)?;
        let mut out = String::new();
        diff.print(DiffFormat::Patch, |_, _, line| {
            if matches!(line.origin(), '+' | '-' | ' ') {
                out.push(line.origin());
            }
            out.push_str(&String::from_utf8_lossy(line.content()));
            true
        })?;
        Ok(out)
    }

    // ---- internals -------------------------------------------------------

    /// HEAD must still point at the branch seen by `open`; returns its ref name.
    fn ensure_on_branch(&self) -> Result<String, GitError> {
        let now = current_branch(&self.repo, &self.workdir)?;
        if now != self.branch {
            return Err(GitError::Git(format!(
                "the checkout {} switched from branch {} to {now} since it was opened; nothing was written",
                self.workdir.display(),
                self.branch
            )));
        }
        Ok(format!("refs/heads/{now}"))
    }

    fn ensure_idle(&self) -> Result<(), GitError> {
        let operation = match self.repo.state() {
            RepositoryState::Clean => return Ok(()),
            RepositoryState::Merge => "merge",
            RepositoryState::Revert | RepositoryState::RevertSequence => "revert",
            RepositoryState::CherryPick | RepositoryState::CherryPickSequence => "cherry-pick",
            RepositoryState::Bisect => "bisect",
            RepositoryState::Rebase
            | RepositoryState::RebaseInteractive
            | RepositoryState::RebaseMerge => "rebase",
            RepositoryState::ApplyMailbox | RepositoryState::ApplyMailboxOrRebase => "git am",
        };
        Err(GitError::Busy {
            path: self.workdir.clone(),
            operation: operation.into(),
        })
    }

    /// No modified, staged, deleted, renamed, type-changed or conflicted tracked file.
    fn ensure_clean(&self) -> Result<(), GitError> {
        let mut opts = StatusOptions::new();
        opts.include_untracked(false)
            .include_ignored(false)
            .renames_head_to_index(false);
        let statuses = self.repo.statuses(Some(&mut opts))?;
        let files: Vec<String> = statuses
            .iter()
            .filter(|s| {
                let st = s.status();
                !st.is_empty() && !st.is_ignored() && st != git2::Status::WT_NEW
            })
            .map(|s| String::from_utf8_lossy(s.path_bytes()).into_owned())
            .collect();
        if files.is_empty() {
            Ok(())
        } else {
            Err(GitError::Dirty {
                path: self.workdir.clone(),
                files,
            })
        }
    }

    fn find_remote(&self, name: &str) -> Result<git2::Remote<'_>, GitError> {
        self.repo.find_remote(name).map_err(|e| match e.code() {
            ErrorCode::NotFound | ErrorCode::InvalidSpec => GitError::NoRemote {
                name: name.to_string(),
            },
            _ => e.into(),
        })
    }

    /// Fetch `branch` from `remote` into `refs/remotes/<remote>/<branch>` and
    /// return the tip the remote advertised.
    fn fetch(&self, remote: &str, branch: &str) -> Result<Oid, GitError> {
        let mut handle = self.find_remote(remote)?;
        init_network_timeouts();
        let config = self.repo.config()?;
        let fetch_err = |e: git2::Error| GitError::Fetch {
            remote: remote.to_string(),
            message: e.message().to_string(),
        };
        let mut proxy = ProxyOptions::new();
        proxy.auto();
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(remote_callbacks(&config))
            .proxy_options(proxy)
            .download_tags(AutotagOption::None);
        let refspec = format!("+refs/heads/{branch}:refs/remotes/{remote}/{branch}");
        handle
            .fetch(&[refspec.as_str()], Some(&mut opts), Some("kockpit: fetch"))
            .map_err(fetch_err)?;
        let wanted = format!("refs/heads/{branch}");
        let heads = handle.list().map_err(fetch_err)?;
        heads
            .iter()
            .find(|h| h.name() == wanted)
            .map(|h| h.oid())
            .ok_or_else(|| GitError::NoRemoteBranch {
                remote: remote.to_string(),
                branch: branch.to_string(),
            })
    }

    /// Fast-forward the (clean) branch and work tree to `to`.
    fn fast_forward(&self, local_ref: &str, to: Oid, shown: &str) -> Result<(), GitError> {
        let target = self.repo.find_commit(to)?;
        let blocked: RefCell<Vec<String>> = RefCell::new(Vec::new());
        let mut co = CheckoutBuilder::new();
        co.safe()
            .notify_on(CheckoutNotificationType::CONFLICT)
            .notify(|_, path, _, _, _| {
                if let Some(p) = path {
                    blocked.borrow_mut().push(p.to_string_lossy().into_owned());
                }
                true
            });
        let result = self.repo.checkout_tree(target.as_object(), Some(&mut co));
        drop(co);
        if let Err(e) = result {
            let files = blocked.into_inner();
            return Err(if files.is_empty() {
                e.into()
            } else {
                GitError::FastForwardBlocked {
                    path: self.workdir.clone(),
                    files,
                }
            });
        }
        self.repo
            .find_reference(local_ref)?
            .set_target(to, &format!("kockpit: fast-forward to {shown}"))?;
        Ok(())
    }

    /// Refuse to write through a symlink anywhere along `rel` in the work tree.
    fn refuse_symlinks(&self, rel: &str) -> Result<(), GitError> {
        let mut at = self.workdir.clone();
        for part in rel.split('/') {
            at.push(part);
            if fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(GitError::BadPath {
                    path: PathBuf::from(rel),
                    reason: format!("{} is a symlink", at.display()),
                });
            }
        }
        Ok(())
    }

    /// Put `rel` back as it is at HEAD in the work tree and index (or remove
    /// it when HEAD does not have it), after a failed commit.
    fn restore_from_head(&self, rel: &str, tracked: bool) -> Result<(), GitError> {
        let full = self.workdir.join(rel);
        // Drop our unsaved staging of `rel`, if the index was not written.
        let mut index = self.repo.index()?;
        index.read(true)?;
        if tracked {
            let mut co = CheckoutBuilder::new();
            co.force().disable_pathspec_match(true).path(rel);
            if let Err(e) = self.repo.checkout_head(Some(&mut co)) {
                // E.g. the index is locked: at least put the file back.
                let blob = self
                    .repo
                    .head()?
                    .peel_to_tree()?
                    .get_path(Path::new(rel))?
                    .to_object(&self.repo)?
                    .peel_to_blob()?;
                fs::write(&full, blob.content()).map_err(|source| GitError::Io {
                    path: full.clone(),
                    source,
                })?;
                return Err(e.into());
            }
        } else {
            if index.get_path(Path::new(rel), 0).is_some() {
                index.remove_path(Path::new(rel))?;
                index.write()?;
            }
            fs::remove_file(&full).map_err(|source| GitError::Io { path: full, source })?;
        }
        Ok(())
    }
}

/// The branch HEAD points at (works for an unborn branch too).
fn current_branch(repo: &Repository, workdir: &Path) -> Result<String, GitError> {
    let head = repo.find_reference("HEAD")?;
    let target = head.symbolic_target()?.ok_or_else(|| GitError::Detached {
        path: workdir.to_path_buf(),
    })?;
    target
        .strip_prefix("refs/heads/")
        .map(str::to_string)
        .ok_or_else(|| GitError::Detached {
            path: workdir.to_path_buf(),
        })
}

/// Validate a work-tree-relative path and turn it into git's `a/b/c` form.
fn repo_path(rel: &Path) -> Result<String, GitError> {
    let bad = |reason: &str| GitError::BadPath {
        path: rel.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut parts: Vec<&str> = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(part) => {
                let part = part.to_str().ok_or_else(|| bad("not UTF-8"))?;
                if part.contains('\0') {
                    return Err(bad("contains a NUL byte"));
                }
                if part.eq_ignore_ascii_case(".git") {
                    return Err(bad("inside .git"));
                }
                parts.push(part);
            }
            Component::CurDir => {}
            Component::ParentDir => return Err(bad("must not contain ..")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad("must be relative to the work tree root"));
            }
        }
    }
    if parts.is_empty() {
        return Err(bad("empty path"));
    }
    Ok(parts.join("/"))
}

/// Set libgit2's process-wide network timeouts, once.
fn init_network_timeouts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: these write plain ints in libgit2's global options without a
        // lock. They are read only when a network transport opens a socket, and
        // in kockpit every fetch/push goes through this module, which runs this
        // `Once` first: `call_once` orders the writes before any such read.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(CONNECT_TIMEOUT_MS);
            let _ = git2::opts::set_server_timeout_in_milliseconds(IO_TIMEOUT_MS);
        }
    });
}

/// Callbacks for fetch and push: credentials (see [`CredentialState`]).
fn remote_callbacks(config: &git2::Config) -> RemoteCallbacks<'_> {
    let mut state = CredentialState::default();
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(move |url, username, allowed| state.next(config, url, username, allowed));
    callbacks
}

/// Which credentials were offered already. libgit2 calls the credential
/// callback again after each rejected credential, so every source is tried
/// once and the total is capped at [`MAX_CREDENTIAL_ATTEMPTS`].
#[derive(Debug, Default)]
struct CredentialState {
    attempts: u32,
    tried_helper: bool,
    tried_agent: bool,
    tried_default: bool,
}

impl CredentialState {
    /// Next credential to offer: a user name if asked for one, then the git
    /// credential helper (user/password), then ssh-agent (ssh URLs), then the
    /// platform default (NTLM/Negotiate); then give up.
    fn next(
        &mut self,
        config: &git2::Config,
        url: &str,
        username: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        self.attempts += 1;
        if self.attempts > MAX_CREDENTIAL_ATTEMPTS {
            return Err(git2::Error::from_str(&format!(
                "authentication to {url} failed after {MAX_CREDENTIAL_ATTEMPTS} attempts"
            )));
        }
        let user = username.unwrap_or("git");
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(user);
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) && !self.tried_helper {
            self.tried_helper = true;
            if let Ok(cred) = Cred::credential_helper(config, url, username) {
                return Ok(cred);
            }
        }
        if allowed.contains(CredentialType::SSH_KEY) && !self.tried_agent {
            self.tried_agent = true;
            return Cred::ssh_key_from_agent(user);
        }
        if allowed.contains(CredentialType::DEFAULT) && !self.tried_default {
            self.tried_default = true;
            return Cred::default();
        }
        Err(git2::Error::from_str(&format!(
            "no (more) credentials for {url}: tried the git credential helper, ssh-agent and the default; configure one of them"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::RepositoryInitOptions;
    use git2::build::RepoBuilder;
    use tempfile::TempDir;

    const MANIFEST: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: checkout
          image: registry.example/checkout:1.4.2
";
    const APP: &str = "apps/checkout.yaml";

    fn rollback() -> String {
        MANIFEST.replace("checkout:1.4.2", "checkout:1.4.1")
    }

    struct Fixture {
        dir: TempDir,
        bare: PathBuf,
        mine: PathBuf,
        clones: usize,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let bare = dir.path().join("origin.git");
            let mut opts = RepositoryInitOptions::new();
            opts.bare(true).initial_head("main");
            let repo = Repository::init_opts(&bare, &opts).unwrap();
            let sig = Signature::now("Seed", "seed@example.com").unwrap();
            let blob_app = repo.blob(MANIFEST.as_bytes()).unwrap();
            let blob_readme = repo.blob(b"# gitops\n").unwrap();
            let empty = repo.find_tree(repo.treebuilder(None).unwrap().write().unwrap());
            let tree_id = TreeUpdateBuilder::new()
                .upsert(APP, blob_app, FileMode::Blob)
                .upsert("README.md", blob_readme, FileMode::Blob)
                .create_updated(&repo, &empty.unwrap())
                .unwrap();
            let tree = repo.find_tree(tree_id).unwrap();
            repo.commit(Some("refs/heads/main"), &sig, &sig, "initial\n", &tree, &[])
                .unwrap();
            repo.set_head("refs/heads/main").unwrap();
            let mut fx = Fixture {
                dir,
                bare,
                mine: PathBuf::new(),
                clones: 0,
            };
            fx.mine = fx.clone_repo();
            fx
        }

        fn clone_repo(&mut self) -> PathBuf {
            self.clones += 1;
            let into = self.dir.path().join(format!("clone-{}", self.clones));
            RepoBuilder::new()
                .branch("main")
                .clone(self.bare.to_str().unwrap(), &into)
                .unwrap();
            into
        }

        fn origin_main(&self) -> Oid {
            Repository::open_bare(&self.bare)
                .unwrap()
                .refname_to_id("refs/heads/main")
                .unwrap()
        }

        /// "Someone else" clones, commits `contents` to `rel` and pushes.
        fn someone_else_pushes(&mut self, rel: &str, contents: &str) -> String {
            let other = self.clone_repo();
            let mut co = Checkout::open(&other).unwrap();
            co.prepare("origin", None).unwrap();
            let oid = co
                .commit_file(
                    Path::new(rel),
                    contents,
                    "someone else's change",
                    "Other",
                    "other@example.com",
                )
                .unwrap();
            co.push("origin").unwrap();
            oid
        }

        fn open(&self) -> Checkout {
            Checkout::open(&self.mine).unwrap()
        }
    }

    fn disk(co: &Checkout, rel: &str) -> String {
        fs::read_to_string(co.workdir().join(rel)).unwrap()
    }

    fn commit_rollback(co: &Checkout) -> String {
        co.commit_file(
            Path::new(APP),
            &rollback(),
            "rollback checkout to 1.4.1\n\nOperator: alice\nReason: 5xx spike\nPrevious: 1.4.2",
            "Alice Operator",
            "alice@example.com",
        )
        .unwrap()
    }

    #[test]
    fn clean_clone_commit_and_push() {
        let fx = Fixture::new();
        let mut co = fx.open();
        assert_eq!(co.branch(), "main");
        assert_eq!(co.workdir(), fx.mine.canonicalize().unwrap());
        let ready = co.prepare("origin", None).unwrap();
        assert_eq!(ready.fast_forwarded, 0);
        assert_eq!(ready.remote_branch, "origin/main");
        assert_eq!(ready.head, fx.origin_main().to_string());
        assert_eq!(co.head().unwrap(), ready.head);
        assert_eq!(co.read(Path::new(APP)).unwrap(), MANIFEST);

        let oid = commit_rollback(&co);
        assert_eq!(co.head().unwrap(), oid);
        assert_eq!(disk(&co, APP), rollback());
        assert_eq!(co.read(Path::new(APP)).unwrap(), rollback());
        co.push("origin").unwrap();
        assert_eq!(fx.origin_main().to_string(), oid);

        let bare = Repository::open_bare(&fx.bare).unwrap();
        let commit = bare.find_commit(Oid::from_str(&oid).unwrap()).unwrap();
        assert_eq!(
            commit.message().unwrap(),
            "rollback checkout to 1.4.1\n\nOperator: alice\nReason: 5xx spike\nPrevious: 1.4.2\n"
        );
        assert_eq!(commit.author().name().unwrap(), "Alice Operator");
        assert_eq!(commit.author().email().unwrap(), "alice@example.com");
        assert_eq!(commit.committer().name().unwrap(), "Alice Operator");
        assert_eq!(commit.committer().email().unwrap(), "alice@example.com");
        assert_eq!(commit.parent_id(0).unwrap().to_string(), ready.head);

        let diff = co.commit_diff(&oid).unwrap();
        let removed: Vec<&str> = diff
            .lines()
            .filter(|l| l.starts_with('-') && !l.starts_with("---"))
            .collect();
        let added: Vec<&str> = diff
            .lines()
            .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
            .collect();
        assert_eq!(
            removed,
            ["-          image: registry.example/checkout:1.4.2"]
        );
        assert_eq!(added, ["+          image: registry.example/checkout:1.4.1"]);
        assert!(diff.contains("--- a/apps/checkout.yaml"), "{diff}");
        assert!(diff.contains("+++ b/apps/checkout.yaml"), "{diff}");

        // Pushed and clean: the next prepare is a no-op.
        let again = co.prepare("origin", None).unwrap();
        assert_eq!(again.fast_forwarded, 0);
        assert_eq!(again.head, oid);
    }

    #[test]
    fn modified_tracked_file_is_dirty() {
        let fx = Fixture::new();
        fs::write(fx.mine.join("README.md"), "# edited by hand\n").unwrap();
        let err = fx.open().prepare("origin", None).unwrap_err();
        match &err {
            GitError::Dirty { files, .. } => assert_eq!(files, &["README.md"]),
            other => panic!("expected Dirty, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("has uncommitted changes (README.md)"), "{msg}");
        assert!(msg.ends_with("commit or stash them first — nothing was written"));
    }

    #[test]
    fn deleted_and_several_files_are_dirty() {
        let fx = Fixture::new();
        fs::remove_file(fx.mine.join(APP)).unwrap();
        fs::write(fx.mine.join("README.md"), "x\n").unwrap();
        match fx.open().prepare("origin", None).unwrap_err() {
            GitError::Dirty { files, .. } => {
                assert_eq!(files.len(), 2);
                assert!(files.contains(&APP.to_string()));
                assert!(files.contains(&"README.md".to_string()));
            }
            other => panic!("expected Dirty, got {other:?}"),
        }
    }

    #[test]
    fn staged_change_is_dirty() {
        let fx = Fixture::new();
        fs::write(fx.mine.join("apps/new.yaml"), "kind: ConfigMap\n").unwrap();
        let repo = Repository::open(&fx.mine).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("apps/new.yaml")).unwrap();
        index.write().unwrap();
        match fx.open().prepare("origin", None).unwrap_err() {
            GitError::Dirty { files, .. } => assert_eq!(files, ["apps/new.yaml"]),
            other => panic!("expected Dirty, got {other:?}"),
        }
    }

    #[test]
    fn untracked_and_ignored_files_are_not_dirty_and_not_committed() {
        let fx = Fixture::new();
        fs::write(fx.mine.join("notes.txt"), "my notes\n").unwrap();
        fs::write(fx.mine.join("apps/scratch.yaml"), "kind: Secret\n").unwrap();
        let mut co = fx.open();
        co.prepare("origin", None).unwrap();
        let oid = commit_rollback(&co);
        let repo = Repository::open(&fx.mine).unwrap();
        let tree = repo
            .find_commit(Oid::from_str(&oid).unwrap())
            .unwrap()
            .tree()
            .unwrap();
        assert!(tree.get_path(Path::new("notes.txt")).is_err());
        assert!(tree.get_path(Path::new("apps/scratch.yaml")).is_err());
        assert!(tree.get_path(Path::new("README.md")).is_ok());
        assert!(fx.mine.join("notes.txt").exists());
        let diff = co.commit_diff(&oid).unwrap();
        assert!(
            !diff.contains("notes.txt") && !diff.contains("scratch"),
            "{diff}"
        );
        // Still untracked, and the checkout is clean for the next round.
        let status = repo.status_file(Path::new("notes.txt")).unwrap();
        assert!(status.is_wt_new());
        co.push("origin").unwrap();
        co.prepare("origin", None).unwrap();
    }

    #[test]
    fn staged_other_file_never_slips_into_the_commit() {
        // prepare saw a clean checkout; someone stages a file before commit_file.
        let fx = Fixture::new();
        let mut co = fx.open();
        co.prepare("origin", None).unwrap();
        fs::write(fx.mine.join("README.md"), "sneaky\n").unwrap();
        let repo = Repository::open(&fx.mine).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("README.md")).unwrap();
        index.write().unwrap();
        let oid = commit_rollback(&co);
        let diff = co.commit_diff(&oid).unwrap();
        assert!(!diff.contains("README.md"), "{diff}");
        assert_eq!(co.read(Path::new("README.md")).unwrap(), "# gitops\n");
    }

    #[test]
    fn local_unpushed_commit_is_ahead() {
        let fx = Fixture::new();
        let mut co = fx.open();
        co.prepare("origin", None).unwrap();
        commit_rollback(&co);
        match co.prepare("origin", None).unwrap_err() {
            GitError::Ahead {
                branch,
                remote_branch,
                commits,
            } => {
                assert_eq!(branch, "main");
                assert_eq!(remote_branch, "origin/main");
                assert_eq!(commits, 1);
            }
            other => panic!("expected Ahead, got {other:?}"),
        }
    }

    #[test]
    fn behind_and_clean_is_fast_forwarded() {
        let mut fx = Fixture::new();
        let theirs = fx.someone_else_pushes(APP, &rollback());
        let mut co = fx.open();
        assert_eq!(disk(&co, APP), MANIFEST);
        let ready = co.prepare("origin", None).unwrap();
        assert_eq!(ready.fast_forwarded, 1);
        assert_eq!(ready.head, theirs);
        assert_eq!(co.head().unwrap(), theirs);
        assert_eq!(disk(&co, APP), rollback());
        assert_eq!(co.read(Path::new(APP)).unwrap(), rollback());
        // Work tree and index agree with the new HEAD.
        let repo = Repository::open(&fx.mine).unwrap();
        assert!(
            repo.statuses(None)
                .unwrap()
                .iter()
                .all(|s| s.status().is_empty())
        );
    }

    #[test]
    fn fast_forward_over_an_untracked_file_is_refused() {
        let mut fx = Fixture::new();
        fx.someone_else_pushes("apps/new.yaml", "kind: ConfigMap\n");
        fs::write(fx.mine.join("apps/new.yaml"), "mine, untracked\n").unwrap();
        let mut co = fx.open();
        let before = co.head().unwrap();
        match co.prepare("origin", None).unwrap_err() {
            GitError::FastForwardBlocked { files, .. } => assert_eq!(files, ["apps/new.yaml"]),
            other => panic!("expected FastForwardBlocked, got {other:?}"),
        }
        assert_eq!(co.head().unwrap(), before);
        assert_eq!(disk(&co, "apps/new.yaml"), "mine, untracked\n");
    }

    #[test]
    fn local_and_remote_commits_are_diverged() {
        let mut fx = Fixture::new();
        let mut co = fx.open();
        co.prepare("origin", None).unwrap();
        commit_rollback(&co);
        fx.someone_else_pushes("README.md", "# changed upstream\n");
        match co.prepare("origin", None).unwrap_err() {
            GitError::Diverged {
                branch,
                remote_branch,
                ahead,
                behind,
            } => {
                assert_eq!(branch, "main");
                assert_eq!(remote_branch, "origin/main");
                assert_eq!((ahead, behind), (1, 1));
            }
            other => panic!("expected Diverged, got {other:?}"),
        }
    }

    #[test]
    fn push_after_someone_else_pushed_is_rejected_and_undone() {
        let mut fx = Fixture::new();
        let mut co = fx.open();
        let ready = co.prepare("origin", None).unwrap();
        let theirs = fx.someone_else_pushes("README.md", "# changed upstream\n");
        let ours = commit_rollback(&co);
        match co.push("origin").unwrap_err() {
            GitError::PushRejected { remote, branch, .. } => {
                assert_eq!(remote, "origin");
                assert_eq!(branch, "main");
            }
            other => panic!("expected PushRejected, got {other:?}"),
        }
        assert_eq!(fx.origin_main().to_string(), theirs);
        assert_ne!(theirs, ours);

        co.undo_commit(&ready.head).unwrap();
        assert_eq!(co.head().unwrap(), ready.head);
        assert_eq!(disk(&co, APP), MANIFEST);
        let repo = Repository::open(&fx.mine).unwrap();
        assert!(
            repo.statuses(None)
                .unwrap()
                .iter()
                .all(|s| s.status().is_empty())
        );
        assert_eq!(fx.origin_main().to_string(), theirs);

        // The retry path: prepare fast-forwards, commit and push succeed.
        let ready = co.prepare("origin", None).unwrap();
        assert_eq!(ready.fast_forwarded, 1);
        let ours = commit_rollback(&co);
        co.push("origin").unwrap();
        assert_eq!(fx.origin_main().to_string(), ours);
    }

    #[test]
    fn undo_removes_a_file_the_commit_created() {
        let fx = Fixture::new();
        let mut co = fx.open();
        let ready = co.prepare("origin", None).unwrap();
        co.commit_file(
            Path::new("apps/new/config.yaml"),
            "kind: ConfigMap\n",
            "add config",
            "A",
            "a@example.com",
        )
        .unwrap();
        assert!(fx.mine.join("apps/new/config.yaml").exists());
        co.undo_commit(&ready.head).unwrap();
        assert!(!fx.mine.join("apps/new/config.yaml").exists());
        assert_eq!(co.head().unwrap(), ready.head);
        co.prepare("origin", None).unwrap();
    }

    #[test]
    fn undo_refuses_pushed_commits_and_non_ancestors() {
        let fx = Fixture::new();
        let mut co = fx.open();
        let ready = co.prepare("origin", None).unwrap();
        commit_rollback(&co);
        co.push("origin").unwrap();
        assert!(matches!(
            co.undo_commit(&ready.head).unwrap_err(),
            GitError::AlreadyPushed { .. }
        ));
        assert!(matches!(
            co.undo_commit(&"1".repeat(40)).unwrap_err(),
            GitError::Git(_)
        ));
        assert!(co.undo_commit("not-an-oid").is_err());
    }

    #[test]
    fn merge_in_progress_is_busy() {
        let fx = Fixture::new();
        let head = fx.origin_main().to_string();
        fs::write(fx.mine.join(".git/MERGE_HEAD"), format!("{head}\n")).unwrap();
        let err = fx.open().prepare("origin", None).unwrap_err();
        match &err {
            GitError::Busy { operation, .. } => assert_eq!(operation, "merge"),
            other => panic!("expected Busy, got {other:?}"),
        }
        assert!(err.to_string().contains("in the middle of a merge"));
    }

    #[test]
    fn detached_head_is_refused() {
        let fx = Fixture::new();
        let repo = Repository::open(&fx.mine).unwrap();
        let head = repo.head().unwrap().target().unwrap();
        repo.set_head_detached(head).unwrap();
        let err = Checkout::open(&fx.mine).unwrap_err();
        assert!(matches!(err, GitError::Detached { .. }), "{err:?}");
        assert!(err.to_string().contains("detached HEAD"));
    }

    #[test]
    fn detaching_after_open_is_noticed() {
        let fx = Fixture::new();
        let mut co = fx.open();
        let repo = Repository::open(&fx.mine).unwrap();
        repo.set_head_detached(repo.head().unwrap().target().unwrap())
            .unwrap();
        assert!(matches!(
            co.prepare("origin", None).unwrap_err(),
            GitError::Detached { .. }
        ));
    }

    #[test]
    fn not_a_repo_and_bare_repo_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = Checkout::open(dir.path()).unwrap_err();
        assert!(matches!(err, GitError::NotARepo { .. }), "{err:?}");
        let fx = Fixture::new();
        let err = Checkout::open(&fx.bare).unwrap_err();
        assert!(matches!(err, GitError::NotARepo { .. }), "{err:?}");
    }

    #[test]
    fn open_from_a_subdirectory() {
        let fx = Fixture::new();
        let co = Checkout::open(&fx.mine.join("apps")).unwrap();
        assert_eq!(co.workdir(), fx.mine.canonicalize().unwrap());
        assert_eq!(co.read(Path::new("README.md")).unwrap(), "# gitops\n");
    }

    #[test]
    fn unknown_remote_and_branch() {
        let fx = Fixture::new();
        let mut co = fx.open();
        match co.prepare("upstream", None).unwrap_err() {
            GitError::NoRemote { name } => assert_eq!(name, "upstream"),
            other => panic!("expected NoRemote, got {other:?}"),
        }
        assert!(matches!(
            co.push("upstream").unwrap_err(),
            GitError::NoRemote { .. }
        ));
        match co.prepare("origin", Some("release")).unwrap_err() {
            GitError::NoRemoteBranch { remote, branch } => {
                assert_eq!((remote.as_str(), branch.as_str()), ("origin", "release"));
            }
            other => panic!("expected NoRemoteBranch, got {other:?}"),
        }
    }

    #[test]
    fn unreachable_remote_is_a_fetch_error() {
        let fx = Fixture::new();
        let repo = Repository::open(&fx.mine).unwrap();
        let missing = fx.dir.path().join("does-not-exist.git");
        repo.remote("broken", missing.to_str().unwrap()).unwrap();
        let mut co = fx.open();
        assert!(matches!(
            co.prepare("broken", None).unwrap_err(),
            GitError::Fetch { .. }
        ));
    }

    #[test]
    fn bad_paths_unchanged_and_untracked() {
        let fx = Fixture::new();
        let co = fx.open();
        let commit = |p: &str, c: &str| co.commit_file(Path::new(p), c, "m", "A", "a@example.com");
        for p in [
            "../outside.yaml",
            "/etc/passwd",
            ".git/config",
            "apps/../../x",
            "",
        ] {
            assert!(
                matches!(commit(p, "x").unwrap_err(), GitError::BadPath { .. }),
                "{p}"
            );
        }
        assert!(matches!(
            commit(APP, MANIFEST).unwrap_err(),
            GitError::Unchanged { .. }
        ));
        assert!(matches!(
            commit("apps", "x").unwrap_err(),
            GitError::BadPath { .. }
        ));
        assert!(matches!(
            co.read(Path::new("apps/missing.yaml")).unwrap_err(),
            GitError::NotTracked { .. }
        ));
        assert!(matches!(
            co.read(Path::new("apps")).unwrap_err(),
            GitError::BadPath { .. }
        ));
        // "./" prefixes are fine.
        assert_eq!(co.read(Path::new("./README.md")).unwrap(), "# gitops\n");
        assert_eq!(co.head().unwrap(), fx.origin_main().to_string());
    }

    #[test]
    fn ignored_and_symlinked_targets_are_refused() {
        let fx = Fixture::new();
        fs::write(fx.mine.join(".gitignore"), "*.secret\n").unwrap();
        let co = fx.open();
        assert!(matches!(
            co.commit_file(Path::new("db.secret"), "x", "m", "A", "a@example.com")
                .unwrap_err(),
            GitError::BadPath { .. }
        ));
        #[cfg(unix)]
        {
            let outside = fx.dir.path().join("outside");
            fs::create_dir(&outside).unwrap();
            std::os::unix::fs::symlink(&outside, fx.mine.join("linked")).unwrap();
            assert!(matches!(
                co.commit_file(Path::new("linked/x.yaml"), "x", "m", "A", "a@example.com")
                    .unwrap_err(),
                GitError::BadPath { .. }
            ));
            assert!(!outside.join("x.yaml").exists());
        }
    }

    #[test]
    fn failed_commit_restores_the_file() {
        let fx = Fixture::new();
        let co = fx.open();
        // An e-mail with '>' is rejected by libgit2 before anything is written.
        assert!(
            co.commit_file(Path::new(APP), &rollback(), "m", "A", "a>b")
                .is_err()
        );
        assert_eq!(disk(&co, APP), MANIFEST);
        assert!(
            co.commit_file(Path::new(APP), &rollback(), "  \n", "A", "a@example.com")
                .is_err()
        );
        assert_eq!(disk(&co, APP), MANIFEST);
        // A stale index lock makes the commit fail after the file was written.
        let lock = fx.mine.join(".git/index.lock");
        fs::write(&lock, "").unwrap();
        assert!(
            co.commit_file(Path::new(APP), &rollback(), "m", "A", "a@example.com")
                .is_err()
        );
        fs::remove_file(&lock).unwrap();
        assert_eq!(disk(&co, APP), MANIFEST);
        assert_eq!(co.head().unwrap(), fx.origin_main().to_string());
    }

    #[test]
    fn credential_callback_gives_up() {
        let config = git2::Config::new().unwrap();
        let mut state = CredentialState::default();
        let url = "https://git.example/gitops.git";
        let mut answered = 0;
        for _ in 0..20 {
            let allowed = CredentialType::USER_PASS_PLAINTEXT | CredentialType::DEFAULT;
            if state.next(&config, url, None, allowed).is_err() {
                break;
            }
            answered += 1;
        }
        // No helper configured: only the default credential is offered, once.
        assert_eq!(answered, 1);

        let mut state = CredentialState::default();
        let mut answered = 0;
        for _ in 0..20 {
            let allowed = CredentialType::USERNAME | CredentialType::SSH_KEY;
            if state
                .next(
                    &config,
                    "ssh://git@git.example/gitops.git",
                    Some("git"),
                    allowed,
                )
                .is_err()
            {
                break;
            }
            answered += 1;
        }
        assert_eq!(answered, MAX_CREDENTIAL_ATTEMPTS);
    }

    #[test]
    fn dirty_message_lists_at_most_ten_files() {
        let files: Vec<String> = (0..12).map(|i| format!("f{i}")).collect();
        let err = GitError::Dirty {
            path: PathBuf::from("/x"),
            files,
        };
        let msg = err.to_string();
        assert!(msg.starts_with("the checkout /x has uncommitted changes (f0, f1,"));
        assert!(msg.contains("f9 and 2 more)"), "{msg}");
    }
}
