//! Cluster I/O: kube-runtime watchers and pod log streams that report to the core as
//! messages, and (later) the actions that change a cluster.

pub mod actions;
pub mod client;
pub mod convert;
pub mod logs;
pub mod watch;
