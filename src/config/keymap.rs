//! Key bindings: `keymap.toml` maps action names to keys. The defaults (`/keymap.toml`) are
//! compiled in; a user file patches them action by action. Unknown actions, unparsable keys and
//! a key bound to two actions are errors with file and line.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::error::{ConfigError, Source, did_you_mean};
use super::paths::{config_file, read, read_if_exists};
use crate::app::Action;

const DEFAULTS: &str = include_str!("../../keymap.toml");

/// Which action each key triggers, and the keys of each action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    keys: BTreeMap<Action, Vec<Key>>,
    actions: HashMap<Key, Action>,
}

/// `$XDG_CONFIG_HOME/kockpit/keymap.toml`, else `~/.config/kockpit/keymap.toml`.
pub fn default_keymap_path() -> Option<PathBuf> {
    config_file("keymap.toml")
}

impl Keymap {
    /// The compiled-in defaults patched by the user's file: an explicit `user` path must
    /// exist; without one the default path is used if there is a file there.
    pub fn load(user: Option<&Path>) -> Result<Keymap, ConfigError> {
        let (path, text) = match user {
            Some(path) => (path.to_path_buf(), read(path)?),
            None => match default_keymap_path() {
                Some(path) => match read_if_exists(&path)? {
                    Some(text) => (path, text),
                    None => return Keymap::defaults(),
                },
                None => return Keymap::defaults(),
            },
        };
        Keymap::parse(&path, &text)
    }

    /// The compiled-in bindings only.
    pub fn defaults() -> Result<Keymap, ConfigError> {
        build(&bindings(&defaults_source(), false)?, &[])
    }

    /// The defaults patched by a user keymap's text; `path` is used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Keymap, ConfigError> {
        let src = Source { path, text };
        build(
            &bindings(&defaults_source(), false)?,
            &bindings(&src, true)?,
        )
    }

    /// The action bound to a key press (or repeat; releases are ignored).
    pub fn action_for(&self, key: &KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        self.actions
            .get(&Key::new(key.code, key.modifiers))
            .copied()
    }

    /// The keys bound to an action, as written in `keymap.toml` (`q`, `ctrl-c`, `pageup`).
    pub fn keys_for(&self, action: Action) -> Vec<String> {
        self.keys
            .get(&action)
            .map(|keys| keys.iter().map(Key::to_string).collect())
            .unwrap_or_default()
    }

    /// Help lines, in [`Action::ALL`] order: ("k, up", "move up"). Unbound actions are left out.
    pub fn help(&self) -> Vec<(String, String)> {
        Action::ALL
            .iter()
            .map(|&a| (self.keys_for(a).join(", "), a.describe().to_string()))
            .filter(|(keys, _)| !keys.is_empty())
            .collect()
    }
}

fn defaults_source() -> Source<'static> {
    Source {
        path: Path::new("(built-in) keymap.toml"),
        text: DEFAULTS,
    }
}

/// An action's keys from one file, with where each key was written.
struct Binding<'s> {
    action: Action,
    keys: Vec<(Key, Range<usize>)>,
    src: &'s Source<'s>,
    user: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    #[serde(default)]
    keys: BTreeMap<Spanned<String>, Spanned<KeyList>>,
}

/// `"k"` or `["k", "up"]`.
enum KeyList {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for KeyList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyListVisitor;
        impl<'de> Visitor<'de> for KeyListVisitor {
            type Value = KeyList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key or a list of keys, like \"k\" or [\"k\", \"up\"]")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<KeyList, E> {
                Ok(KeyList::One(s.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyList, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = seq.next_element()? {
                    keys.push(key);
                }
                Ok(KeyList::Many(keys))
            }
        }
        d.deserialize_any(KeyListVisitor)
    }
}

/// Every action's binding in a file, in file order.
fn bindings<'s>(src: &'s Source<'s>, user: bool) -> Result<Vec<Binding<'s>>, ConfigError> {
    let file: KeymapFile = src.parse()?;
    let names: Vec<(String, Action)> = Action::ALL.iter().map(|&a| (action_name(a), a)).collect();
    let mut entries: Vec<_> = file.keys.into_iter().collect();
    entries.sort_by_key(|(name, _)| name.span().start);
    entries
        .into_iter()
        .map(|(name, list)| {
            let Some(&(_, action)) = names.iter().find(|(n, _)| n == name.get_ref()) else {
                let hint = did_you_mean(name.get_ref(), names.iter().map(|(n, _)| n.as_str()));
                return Err(src.error(
                    name.span(),
                    format!("unknown action {:?}{hint}", name.get_ref()),
                ));
            };
            let span = list.span();
            let written = match list.into_inner() {
                KeyList::One(key) => vec![Spanned::new(span, key)],
                KeyList::Many(keys) => keys,
            };
            let keys = written
                .iter()
                .map(|k| match k.get_ref().parse::<Key>() {
                    Ok(key) => Ok((key, k.span())),
                    Err(message) => Err(src.error(k.span(), message)),
                })
                .collect::<Result<_, _>>()?;
            Ok(Binding {
                action,
                keys,
                src,
                user,
            })
        })
        .collect()
}

/// The defaults, with each action the user lists replaced; then every key must have one action.
fn build(defaults: &[Binding], user: &[Binding]) -> Result<Keymap, ConfigError> {
    let replaced: HashSet<Action> = user.iter().map(|b| b.action).collect();
    let kept = defaults.iter().filter(|b| !replaced.contains(&b.action));
    let mut owners: HashMap<Key, (&Binding, &Range<usize>)> = HashMap::new();
    let mut keys: BTreeMap<Action, Vec<Key>> = BTreeMap::new();
    for binding in user.iter().chain(kept) {
        let list = keys.entry(binding.action).or_default();
        for (key, span) in &binding.keys {
            match owners.get(key) {
                Some((owner, _)) if owner.action == binding.action => continue,
                Some(&(owner, owner_span)) => {
                    return Err(conflict(*key, (binding, span), (owner, owner_span)));
                }
                None => {
                    owners.insert(*key, (binding, span));
                    list.push(*key);
                }
            }
        }
    }
    let actions = owners
        .into_iter()
        .map(|(key, (b, _))| (key, b.action))
        .collect();
    Ok(Keymap { keys, actions })
}

/// A key bound twice, reported where the user wrote it (user bindings are seen first, so a
/// clash with a default is reported at the user's line).
fn conflict(
    key: Key,
    later: (&Binding, &Range<usize>),
    earlier: (&Binding, &Range<usize>),
) -> ConfigError {
    let ((here, at), (there, there_at)) = if later.0.user || !earlier.0.user {
        (later, earlier)
    } else {
        (earlier, later)
    };
    let (this, other) = (action_name(here.action), action_name(there.action));
    let mut message = format!("key \"{key}\" is bound to both {this} and {other}");
    if here.user && !there.user {
        message += &format!(" (a default): bind {other} to another key too, or choose another key");
    } else {
        let (line, _) = there.src.line_col(there_at.start);
        message += &format!(" (line {line})");
    }
    here.src.error(at.clone(), message)
}

/// The name `keymap.toml` uses for an action (its serde name).
fn action_name(action: Action) -> String {
    match serde_json::to_value(action) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{action:?}"),
    }
}

/// A key with its modifiers, normalised the way crossterm reports it: shift is part of a
/// character's case, ctrl with a letter ignores case, shift-tab is backtab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    code: KeyCode,
    mods: KeyModifiers,
}

/// Named keys, as written in `keymap.toml`.
const NAMED: &[(&str, KeyCode)] = &[
    ("enter", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("space", KeyCode::Char(' ')),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("pageup", KeyCode::PageUp),
    ("pagedown", KeyCode::PageDown),
    ("delete", KeyCode::Delete),
    ("backspace", KeyCode::Backspace),
];

const MODIFIERS: [(&str, KeyModifiers); 3] = [
    ("ctrl-", KeyModifiers::CONTROL),
    ("alt-", KeyModifiers::ALT),
    ("shift-", KeyModifiers::SHIFT),
];

impl Key {
    fn new(code: KeyCode, mut mods: KeyModifiers) -> Key {
        let shift = mods.contains(KeyModifiers::SHIFT);
        let code = match code {
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                let c = if shift { c.to_ascii_uppercase() } else { c };
                let ctrl = mods.contains(KeyModifiers::CONTROL);
                KeyCode::Char(if ctrl { c.to_ascii_lowercase() } else { c })
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            KeyCode::Tab if shift => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Key { code, mods }
    }
}

impl std::str::FromStr for Key {
    type Err = String;

    fn from_str(s: &str) -> Result<Key, String> {
        let bad = |why: &str| {
            Err(format!(
                "bad key {s:?}: {why}; use a character, a name (enter, esc, tab, backtab, space, \
                 up, down, left, right, home, end, pageup, pagedown, delete, backspace, f1..f12) \
                 with optional ctrl-, alt-, shift-"
            ))
        };
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        'prefixes: loop {
            for (prefix, m) in MODIFIERS {
                let Some(head) = rest.get(..prefix.len()) else {
                    continue;
                };
                if head.eq_ignore_ascii_case(prefix) && rest.len() > prefix.len() {
                    if mods.contains(m) {
                        return bad(&format!("{prefix} is given twice"));
                    }
                    mods |= m;
                    rest = &rest[prefix.len()..];
                    continue 'prefixes;
                }
            }
            break;
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(c),
            _ => {
                let name = rest.to_ascii_lowercase();
                let function = name.strip_prefix('f').and_then(|n| n.parse::<u8>().ok());
                match (NAMED.iter().find(|(n, _)| *n == name), function) {
                    (Some(&(_, code)), _) => code,
                    (None, Some(n @ 1..=12)) => KeyCode::F(n),
                    _ => return bad("unknown key name"),
                }
            }
        };
        if mods.contains(KeyModifiers::SHIFT)
            && matches!(code, KeyCode::Char(c) if !c.is_ascii_alphabetic())
        {
            return bad("shift- goes with letters and names; write the shifted character itself");
        }
        Ok(Key::new(code, mods))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (prefix, m) in MODIFIERS {
            if self.mods.contains(m) {
                f.write_str(prefix)?;
            }
        }
        match (NAMED.iter().find(|(_, code)| *code == self.code), self.code) {
            (Some((name, _)), _) => f.write_str(name),
            (None, KeyCode::Char(c)) => write!(f, "{c}"),
            (None, KeyCode::F(n)) => write!(f, "f{n}"),
            (None, other) => write!(f, "{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    fn user(text: &str) -> Result<Keymap, ConfigError> {
        Keymap::parse(Path::new("keymap.toml"), text)
    }

    fn error(text: &str) -> String {
        match user(text) {
            Ok(_) => panic!("{text:?} should be an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_bind_every_action_and_each_key_back_to_it() {
        let km = Keymap::defaults().unwrap();
        for &action in Action::ALL {
            let keys = km.keys_for(action);
            assert!(!keys.is_empty(), "{action:?} has no key");
            for key in keys {
                let key: Key = key.parse().unwrap();
                assert_eq!(km.action_for(&press(key.code, key.mods)), Some(action));
            }
        }
        assert_eq!(km.keys_for(Action::Quit), ["q", "ctrl-c"]);
        assert_eq!(km.keys_for(Action::PauseLogs), ["space"]);
        assert_eq!(km.help().len(), Action::ALL.len());
        assert_eq!(km.help()[0], ("k, up".to_string(), "move up".to_string()));
    }

    #[test]
    fn key_events_are_normalised_like_crossterm_reports_them() {
        let km = Keymap::defaults().unwrap();
        let action = |code, mods| km.action_for(&press(code, mods));
        let (none, shift, ctrl) = (
            KeyModifiers::NONE,
            KeyModifiers::SHIFT,
            KeyModifiers::CONTROL,
        );
        assert_eq!(action(KeyCode::Char('G'), shift), Some(Action::Bottom));
        assert_eq!(action(KeyCode::Char('G'), none), Some(Action::Bottom));
        // Terminals with the kitty protocol report shift-g as 'g' with SHIFT.
        assert_eq!(action(KeyCode::Char('g'), shift), Some(Action::Bottom));
        assert_eq!(action(KeyCode::Char('g'), none), Some(Action::Top));
        assert_eq!(action(KeyCode::Char('c'), ctrl), Some(Action::Quit));
        assert_eq!(action(KeyCode::Char('C'), ctrl | shift), Some(Action::Quit));
        assert_eq!(action(KeyCode::Char('c'), none), None);
        assert_eq!(action(KeyCode::BackTab, shift), Some(Action::PrevPane));
        assert_eq!(action(KeyCode::Tab, shift), Some(Action::PrevPane));
        assert_eq!(action(KeyCode::Char(' '), none), Some(Action::PauseLogs));
        assert_eq!(action(KeyCode::Char('+'), shift), Some(Action::ZoomIn));
        assert_eq!(action(KeyCode::Char('q'), KeyModifiers::ALT), None);
        assert_eq!(action(KeyCode::F(5), none), None);
        let mut release = press(KeyCode::Char('q'), none);
        release.kind = KeyEventKind::Release;
        assert_eq!(km.action_for(&release), None);
        let mut repeat = press(KeyCode::Char('j'), none);
        repeat.kind = KeyEventKind::Repeat;
        assert_eq!(km.action_for(&repeat), Some(Action::Down));
    }

    #[test]
    fn key_syntax() {
        let key = |s: &str| s.parse::<Key>().map(|k| k.to_string());
        assert_eq!(key("G"), Ok("G".into()));
        assert_eq!(key("shift-g"), Ok("G".into()));
        assert_eq!(key("Ctrl-C"), Ok("ctrl-c".into()));
        assert_eq!(key("alt-ctrl-x"), Ok("ctrl-alt-x".into()));
        assert_eq!(key("shift-tab"), Ok("backtab".into()));
        assert_eq!(key("shift-up"), Ok("shift-up".into()));
        assert_eq!(key("F12"), Ok("f12".into()));
        assert_eq!(key("ctrl--"), Ok("ctrl--".into()));
        assert_eq!(key("-"), Ok("-".into()));
        assert_eq!(key(" "), Ok("space".into()));
        assert_eq!(key("é"), Ok("é".into()));
        for bad in [
            "",
            "ctrl-",
            "f13",
            "f0",
            "enterr",
            "ctrl-ctrl-x",
            "shift-1",
            "pgup",
        ] {
            assert!(key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_file_patches_actions_it_lists() {
        let km = user("[keys]\nup = \"w\"\ndown = [\"s\", \"down\"]\nhelp = []\n").unwrap();
        assert_eq!(km.keys_for(Action::Up), ["w"]);
        assert_eq!(km.keys_for(Action::Down), ["s", "down"]);
        assert!(km.keys_for(Action::Help).is_empty());
        assert_eq!(km.keys_for(Action::Quit), ["q", "ctrl-c"]);
        let up = press(KeyCode::Char('k'), KeyModifiers::NONE);
        assert_eq!(km.action_for(&up), None);
        assert!(km.help().iter().all(|(_, d)| d != Action::Help.describe()));
        // Moving a key between actions works when both are rebound.
        let km = user("[keys]\ndrill = \"D\"\nrollback = [\"d\", \"r\"]\n").unwrap();
        let d = press(KeyCode::Char('d'), KeyModifiers::NONE);
        assert_eq!(km.action_for(&d), Some(Action::Rollback));
        assert_eq!(user("").unwrap(), Keymap::defaults().unwrap());
    }

    #[test]
    fn mistakes_are_reported_at_their_line() {
        let cases = [
            (
                "[keys]\npromte = \"x\"",
                "keymap.toml:2:1: unknown action \"promte\" (did you mean \"promote\"?)",
            ),
            (
                "[keys]\nup = [\"k\", \"ctlr-k\"]",
                "keymap.toml:2:12: bad key \"ctlr-k\": unknown key name",
            ),
            ("[keys]\nup = \"\"", "keymap.toml:2:6: bad key \"\""),
            (
                "[keys]\nrollback = \"d\"",
                "keymap.toml:2:12: key \"d\" is bound to both rollback and drill (a default): bind drill",
            ),
            (
                "[keys]\nup = \"x\"\ndown = [\"j\", \"x\"]",
                "keymap.toml:3:14: key \"x\" is bound to both down and up (line 2)",
            ),
            (
                "[keys]\nquit = 1",
                "keymap.toml:2:8: invalid type: integer `1`, expected a key or a list",
            ),
            (
                "[bindings]\nquit = \"q\"",
                "keymap.toml:1:2: unknown field `bindings`",
            ),
            ("[keys\n", "keymap.toml:1:6: "),
        ];
        for (text, expected) in cases {
            let e = error(text);
            assert!(
                e.starts_with(expected),
                "{text:?}\n  got:      {e}\n  expected: {expected}"
            );
        }
    }

    #[test]
    fn explicit_missing_keymap_is_an_error() {
        let e = Keymap::load(Some(Path::new("/nonexistent/keymap.toml"))).unwrap_err();
        assert!(matches!(e, ConfigError::Io { .. }));
        if let Some(p) = default_keymap_path() {
            assert!(p.ends_with("kockpit/keymap.toml"));
        }
    }
}
