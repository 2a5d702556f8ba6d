//! Configuration the operator controls: environments (`config.toml` and flags), key bindings
//! (`keymap.toml`) and colours (`themes/`). Built-in defaults are compiled in; user files
//! patch them, and a broken file is reported with its path and line.

pub mod error;
pub mod file;
pub mod keymap;
mod paths;
pub mod theme;

pub use error::ConfigError;
