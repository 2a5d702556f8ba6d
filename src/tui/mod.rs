//! The running cockpit: connects the environments, owns the terminal, and runs the loop that
//! feeds messages to the core and draws a frame when the state changed.

pub mod releases;
pub mod run;
pub mod terminal;

pub use run::{EnvSpec, Options, run};
