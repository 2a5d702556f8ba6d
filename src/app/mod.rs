//! The cockpit's core: the state it owns, the messages that change it, and the update
//! function that is the only place where it changes.

pub mod action;
pub mod state;

pub use action::Action;
pub use state::AppState;
