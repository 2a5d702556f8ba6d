//! GitOps: forward actions written to the GitOps repository ([`change`]) with a git library
//! ([`repo`]) and a comment-preserving YAML editor ([`yaml`]); the controller's sync state
//! ([`sync`]); and reading a repository's branch ([`read`], for the sandbox's Flux).

pub mod change;
pub mod read;
pub mod repo;
pub mod sync;
pub mod yaml;
