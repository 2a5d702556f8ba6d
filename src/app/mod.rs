//! The cockpit's core: the state it owns, the messages that change it, and the update
//! function that is the only place where it changes.

pub mod action;
pub mod derive;
pub mod dialog;
pub mod msg;
pub mod release;
pub mod state;
pub mod update;

pub use action::Action;
pub use msg::{Change, ClusterEvent, Cmd, Msg};
pub use state::AppState;
pub use update::{Outcome, update};
