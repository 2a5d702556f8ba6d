//! Where configuration lives (`$XDG_CONFIG_HOME/kockpit/`), reading it, and `~` in paths.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use etcetera::BaseStrategy;

use super::error::ConfigError;

/// `$XDG_CONFIG_HOME/kockpit/<file>`, else `~/.config/kockpit/<file>`; `None` without a home.
pub(crate) fn config_file(file: &str) -> Option<PathBuf> {
    let xdg = etcetera::base_strategy::Xdg::new().ok()?;
    Some(xdg.config_dir().join("kockpit").join(file))
}

/// The file's text; a missing file is an error naming it.
pub(crate) fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The file's text, or `None` if it does not exist (other failures are errors).
pub(crate) fn read_if_exists(path: &Path) -> Result<Option<String>, ConfigError> {
    match read(path) {
        Err(ConfigError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => Ok(None),
        other => other.map(Some),
    }
}

/// `~` and `~/…` expanded to the home directory; `None` if the home directory is unknown.
pub(crate) fn expand_tilde(s: &str) -> Option<PathBuf> {
    match s.strip_prefix('~') {
        Some("") => etcetera::home_dir().ok(),
        Some(rest) if rest.starts_with('/') => Some(
            etcetera::home_dir()
                .ok()?
                .join(rest.trim_start_matches('/')),
        ),
        _ => Some(PathBuf::from(s)),
    }
}

/// The path as the user would type it: the home directory shown as `~`.
pub(crate) fn display_path(path: &Path) -> String {
    match etcetera::home_dir() {
        Ok(home) if path.is_absolute() && home.parent().is_some() => match path.strip_prefix(&home)
        {
            Ok(rest) if rest.as_os_str().is_empty() => "~".into(),
            Ok(rest) => format!("~/{}", rest.display()),
            Err(_) => path.display().to_string(),
        },
        _ => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_expands_to_home_and_back() {
        let Ok(home) = etcetera::home_dir() else {
            return;
        };
        assert_eq!(expand_tilde("~"), Some(home.clone()));
        let kube = home.join(".kube/config");
        assert_eq!(expand_tilde("~/.kube/config"), Some(kube.clone()));
        assert_eq!(expand_tilde("~other/x"), Some(PathBuf::from("~other/x")));
        assert_eq!(expand_tilde("/etc/k"), Some(PathBuf::from("/etc/k")));
        if home.parent().is_some() {
            assert_eq!(display_path(&kube), "~/.kube/config");
        }
        assert_eq!(display_path(Path::new("rel/x.toml")), "rel/x.toml");
    }

    #[test]
    fn missing_optional_file_is_none_but_missing_file_is_an_error() {
        let missing = Path::new("/nonexistent/kockpit/config.toml");
        assert!(matches!(read_if_exists(missing), Ok(None)));
        let e = read(missing).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read /nonexistent/kockpit/config.toml: ")
        );
    }

    #[test]
    fn config_files_live_under_kockpit() {
        if let Some(p) = config_file("config.toml") {
            assert!(p.ends_with("kockpit/config.toml"));
        }
    }
}
