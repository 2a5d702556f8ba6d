//! kockpit: a terminal cockpit for Kubernetes releases.
//!
//! Parts: `sandbox` (a simulated cluster speaking the Kubernetes API over loopback HTTP) and
//! `cli` (the command line). The cockpit, cluster actions, metrics, audit and drills build on
//! these.

pub mod app;
pub mod audit;
pub mod cli;
pub mod cluster;
pub mod command;
pub mod config;
pub mod drill;
pub mod gitops;
pub mod metrics;
pub mod release;
pub mod sandbox;
pub mod tui;
pub mod ui;
