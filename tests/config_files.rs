//! Every file in `tests/valid_configs/` loads, and every file in `tests/invalid_configs/` fails
//! with the `file:line:column: message` its first line announces (`# expect: …`). The file
//! name's prefix says what it is: `config-`, `keymap-` or `theme-`.

use std::fs;
use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use kockpit::app::Action;
use kockpit::config::ConfigError;
use kockpit::config::file;
use kockpit::config::keymap::Keymap;
use kockpit::config::theme::{ColorDepth, ColorEnv, Theme};
use ratatui::style::{Color, Modifier};

const TRUECOLOR: ColorEnv = ColorEnv {
    no_color: false,
    depth: ColorDepth::TrueColor,
};

/// The fixture files of a directory, sorted; paths relative to the crate (cargo's test cwd).
fn fixtures(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(Path::new("tests").join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "too few fixtures in {dir}: {files:?}");
    files
}

fn load(path: &Path) -> Result<(), ConfigError> {
    let name = path.file_name().unwrap().to_string_lossy();
    match name.split('-').next() {
        Some("config") => file::load(Some(path)).map(|c| assert!(c.is_some())),
        Some("keymap") => Keymap::load(Some(path)).map(drop),
        Some("theme") => Theme::load(Some(path.to_str().unwrap()), &TRUECOLOR).map(drop),
        _ => panic!("{name}: fixture names start with config-, keymap- or theme-"),
    }
}

#[test]
fn valid_configs_load() {
    for path in fixtures("valid_configs") {
        if let Err(e) = load(&path) {
            panic!("{}: {e}", path.display());
        }
    }
}

#[test]
fn invalid_configs_report_file_and_line() {
    let mut failures = Vec::new();
    for path in fixtures("invalid_configs") {
        let text = fs::read_to_string(&path).unwrap();
        let Some(expected) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
        else {
            failures.push(format!(
                "{}: first line must be `# expect: …`",
                path.display()
            ));
            continue;
        };
        match load(&path).map_err(|e| e.to_string()) {
            Err(e) if e.starts_with(expected) => {}
            Err(e) => failures.push(format!("{e}\n  expected: {expected}")),
            Ok(()) => failures.push(format!("{} loaded; expected: {expected}", path.display())),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn full_config_reads_every_field() {
    let config = file::load(Some(Path::new("tests/valid_configs/config-full.toml")))
        .unwrap()
        .unwrap();
    assert_eq!(config.envs.len(), 2);
    let (staging, production) = (&config.envs[0], &config.envs[1]);
    assert_eq!(staging.context.as_deref(), Some("stg"));
    assert!(!staging.production && production.production);
    assert_eq!(
        production.prometheus.as_deref(),
        Some("http://prometheus.prd:9090")
    );
    assert!(config.kubeconfig.is_some_and(|p| !p.starts_with("~")));
    assert_eq!(config.canary_steps, [5, 10, 25, 50, 100]);
    assert_eq!(config.thresholds, file::Thresholds::default());
}

#[test]
fn keymap_patch_swaps_promote_keys() {
    let km = Keymap::load(Some(Path::new("tests/valid_configs/keymap-swap.toml"))).unwrap();
    let press = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    assert_eq!(km.action_for(&press('p')), Some(Action::PromoteFull));
    assert_eq!(km.action_for(&press('P')), Some(Action::Promote));
    assert_eq!(km.action_for(&press('d')), Some(Action::Rollback));
    assert_eq!(km.keys_for(Action::Drill), ["ctrl-d"]);
    assert_eq!(km.keys_for(Action::Quit), ["q", "ctrl-c"]);
}

#[test]
fn theme_patch_keeps_the_rest_of_its_base() {
    let path = "tests/valid_configs/theme-patch.toml";
    let patched = Theme::load(Some(path), &TRUECOLOR).unwrap();
    let light = Theme::builtin("light").unwrap();
    assert_eq!(patched.name, "theme-patch");
    assert_eq!(patched.production.bg, Some(Color::Rgb(0x87, 0, 0)));
    assert_eq!(patched.selected, light.selected);
    assert_eq!(patched.log_palette, light.log_palette);
    // NO_COLOR still wins over a user theme, and production still stands out.
    let mono = Theme::load(Some(path), &ColorEnv::from_vars(Some("1"), None, None)).unwrap();
    assert_eq!(mono.production.bg, None);
    assert!(
        mono.production
            .add_modifier
            .contains(Modifier::REVERSED | Modifier::BOLD)
    );
}
