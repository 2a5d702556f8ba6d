//! Colours: a [`Theme`] names a style for every part of the screen. Built-in themes live in
//! `themes/*.toml` (compiled in); a user theme file patches one of them. [`Theme::adapt`] fits a
//! theme to what the terminal can show ([`ColorEnv`]: `NO_COLOR`, `COLORTERM`, `TERM`).

use std::path::Path;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::error::{ConfigError, Source, did_you_mean};
use super::paths::{expand_tilde, read};

/// Styles for every part of the cockpit.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    /// Default text on the default background.
    pub base: Style,
    /// Secondary text (ages, labels, hints).
    pub dim: Style,
    pub border: Style,
    pub border_focused: Style,
    pub title: Style,
    /// Header tab and frame of a staging (non-production) environment: a plain coloured line,
    /// so that production's frame is the one that stands out.
    pub staging: Style,
    /// Header tab and frame of a production environment: impossible to miss.
    pub production: Style,
    pub sandbox_badge: Style,
    pub read_only_badge: Style,
    /// The selected row, drawn under the cells' own styles: a background (or a modifier) that
    /// keeps coloured text readable.
    pub selected: Style,
    pub ok: Style,
    pub warn: Style,
    pub error: Style,
    /// Chart series: the old (stable/active) version and the new (canary/idle) one.
    pub stable: Style,
    pub canary: Style,
    /// Threshold lines on charts.
    pub threshold: Style,
    /// Colours given to pods in the logs pane (by a stable hash of the pod name).
    pub log_palette: Vec<Color>,
}

impl Default for Theme {
    /// The dark theme, as in `themes/dark.toml`.
    fn default() -> Self {
        Theme {
            name: "dark".into(),
            base: Style::default(),
            dim: Style::default().fg(Color::DarkGray),
            border: Style::default().fg(Color::DarkGray),
            border_focused: Style::default().fg(Color::Cyan),
            title: Style::default().add_modifier(Modifier::BOLD),
            staging: Style::default().fg(Color::Cyan),
            production: Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
            sandbox_badge: Style::default().fg(Color::Black).bg(Color::Yellow),
            read_only_badge: Style::default().fg(Color::Black).bg(Color::Green),
            selected: Style::default().bg(Color::Rgb(0x3a, 0x3a, 0x4a)),
            ok: Style::default().fg(Color::Green),
            warn: Style::default().fg(Color::Yellow),
            error: Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            stable: Style::default().fg(Color::Blue),
            canary: Style::default().fg(Color::Magenta),
            threshold: Style::default().fg(Color::Red),
            log_palette: [
                0x5fafff, 0x87d75f, 0xffaf5f, 0xd787ff, 0x00d7af, 0xffff87, 0xff87af, 0xafafaf,
            ]
            .map(Color::from_u32)
            .to_vec(),
        }
    }
}

/// The styles of a theme file, each optional: a file patches its base theme field by field.
/// Listing the fields once keeps the file format, patching and colour adaptation in step.
macro_rules! theme_styles {
    ($($field:ident),* $(,)?) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ThemeFile {
            /// A built-in theme to patch (default: dark).
            extends: Option<Spanned<String>>,
            name: Option<String>,
            log_palette: Option<Spanned<Vec<ColorSpec>>>,
            $($field: Option<StyleSpec>,)*
        }

        impl ThemeFile {
            fn patch_styles(&mut self, theme: &mut Theme) {
                $(if let Some(style) = self.$field.take() {
                    theme.$field = style.into();
                })*
            }
        }

        impl Theme {
            fn styles_mut(&mut self) -> Vec<&mut Style> {
                vec![$(&mut self.$field),*]
            }
        }
    };
}

theme_styles!(
    base,
    dim,
    border,
    border_focused,
    title,
    staging,
    production,
    sandbox_badge,
    read_only_badge,
    selected,
    ok,
    warn,
    error,
    stable,
    canary,
    threshold,
);

impl Theme {
    /// Names of the built-in themes (`themes/*.toml`, compiled in).
    pub const BUILTIN: &'static [&'static str] = &["dark", "light", "high-contrast", "monochrome"];

    /// A built-in theme by name, before any adaptation to the terminal.
    pub fn builtin(name: &str) -> Option<Theme> {
        builtin(name)?.ok()
    }

    /// The theme to draw with: a built-in name or a path to a theme file (default: dark),
    /// adapted to the terminal's colours.
    pub fn load(name_or_path: Option<&str>, env: &ColorEnv) -> Result<Theme, ConfigError> {
        let mut theme = match name_or_path {
            None => Theme::default(),
            Some(name) => match builtin(name) {
                Some(theme) => theme?,
                None => {
                    let fail = |message: String| ConfigError::Value {
                        what: "theme",
                        value: name.into(),
                        message,
                    };
                    check_theme_name(name).map_err(fail)?;
                    let path = expand_tilde(name).ok_or_else(|| {
                        fail("cannot expand `~`: the home directory is unknown".into())
                    })?;
                    Theme::parse(&path, &read(&path)?)?
                }
            },
        };
        theme.adapt(env);
        Ok(theme)
    }

    /// A user theme file's text patched over its `extends` theme (default: dark). The name is
    /// the file's `name`, else its file stem; `path` is also used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Theme, ConfigError> {
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        parse_theme(
            &Source { path, text },
            true,
            stem.as_deref().unwrap_or("custom"),
        )
    }

    /// Fit the colours to the terminal. Mono (or `NO_COLOR`): no colours at all, but coloured
    /// bars become reversed and production is always REVERSED|BOLD, so it stays unmistakable.
    /// Ansi16: every RGB or indexed colour becomes the nearest of the 16 named colours. Ansi256:
    /// RGB becomes the nearest xterm-256 colour. TrueColor: unchanged.
    pub fn adapt(&mut self, env: &ColorEnv) {
        let depth = if env.no_color {
            ColorDepth::Mono
        } else {
            env.depth
        };
        match depth {
            ColorDepth::Mono => self.strip_colors(),
            ColorDepth::Ansi16 => self.map_colors(to_ansi16),
            ColorDepth::Ansi256 => self.map_colors(to_ansi256),
            ColorDepth::TrueColor => {}
        }
    }

    fn map_colors(&mut self, f: fn(Color) -> Color) {
        for style in self.styles_mut() {
            style.fg = style.fg.map(f);
            style.bg = style.bg.map(f);
            style.underline_color = style.underline_color.map(f);
        }
        self.log_palette.iter_mut().for_each(|c| *c = f(*c));
    }

    fn strip_colors(&mut self) {
        for style in self.styles_mut() {
            // A header or badge drawn as a coloured bar stays a bar.
            if style.bg.is_some_and(|c| c != Color::Reset) {
                style.add_modifier |= Modifier::REVERSED;
            }
            style.fg = None;
            style.bg = None;
            style.underline_color = None;
        }
        let loud = Modifier::REVERSED | Modifier::BOLD;
        self.production.add_modifier |= loud;
        self.production.sub_modifier -= loud;
        if self.staging.add_modifier == self.production.add_modifier {
            self.staging.add_modifier -= Modifier::BOLD;
        }
        if self.selected.add_modifier.is_empty() {
            self.selected.add_modifier = Modifier::REVERSED;
        }
        self.log_palette = vec![Color::Reset];
    }
}

/// `Ok` for a built-in theme's name or anything that looks like a path to a theme file (which
/// is only read when the theme loads); else why not.
pub(crate) fn check_theme_name(name: &str) -> Result<(), String> {
    let path_like = name.contains('/') || name.ends_with(".toml") || name.starts_with('~');
    if path_like || Theme::BUILTIN.contains(&name) {
        return Ok(());
    }
    Err(format!(
        "not a built-in theme{}: use one of {} or a path to a .toml file",
        did_you_mean(name, Theme::BUILTIN.iter().copied()),
        Theme::BUILTIN.join(", ")
    ))
}

fn builtin_text(name: &str) -> Option<&'static str> {
    Some(match name {
        "dark" => include_str!("../../themes/dark.toml"),
        "light" => include_str!("../../themes/light.toml"),
        "high-contrast" => include_str!("../../themes/high-contrast.toml"),
        "monochrome" => include_str!("../../themes/monochrome.toml"),
        _ => return None,
    })
}

/// A built-in theme file, parsed; `None` if there is no such built-in.
fn builtin(name: &str) -> Option<Result<Theme, ConfigError>> {
    let text = builtin_text(name)?;
    let path = format!("(built-in) themes/{name}.toml");
    Some(parse_theme(
        &Source {
            path: Path::new(&path),
            text,
        },
        false,
        name,
    ))
}

fn parse_theme(src: &Source, may_extend: bool, name: &str) -> Result<Theme, ConfigError> {
    let mut file: ThemeFile = src.parse()?;
    let mut theme = match &file.extends {
        None => Theme::default(),
        Some(base) if !may_extend => {
            return Err(src.error(base.span(), "a built-in theme cannot extend another"));
        }
        Some(base) => builtin(base.get_ref()).ok_or_else(|| {
            src.error(
                base.span(),
                format!(
                    "cannot extend {:?}{}: `extends` names a built-in theme: {}",
                    base.get_ref(),
                    did_you_mean(base.get_ref(), Theme::BUILTIN.iter().copied()),
                    Theme::BUILTIN.join(", ")
                ),
            )
        })??,
    };
    theme.name = file.name.take().unwrap_or_else(|| name.to_string());
    if let Some(palette) = file.log_palette.take() {
        if palette.get_ref().is_empty() {
            return Err(src.error(palette.span(), "log_palette needs at least one colour"));
        }
        theme.log_palette = palette.into_inner().into_iter().map(|c| c.0).collect();
    }
    file.patch_styles(&mut theme);
    Ok(theme)
}

/// A ratatui [`Style`] as a theme file writes it. The same fields as `Style`'s own serde form,
/// but unknown keys are errors and bad values say what is accepted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleSpec {
    fg: Option<ColorSpec>,
    bg: Option<ColorSpec>,
    underline_color: Option<ColorSpec>,
    #[serde(default)]
    add_modifier: ModifierSpec,
    #[serde(default)]
    sub_modifier: ModifierSpec,
}

impl From<StyleSpec> for Style {
    fn from(spec: StyleSpec) -> Style {
        let mut style = Style::new();
        style.add_modifier = spec.add_modifier.0;
        style.sub_modifier = spec.sub_modifier.0;
        style.fg = spec.fg.map(|c| c.0);
        style.bg = spec.bg.map(|c| c.0);
        style.underline_color = spec.underline_color.map(|c| c.0);
        style
    }
}

/// A colour, parsed by ratatui: a string (name, `#rrggbb`, index) or ratatui's older table forms.
struct ColorSpec(Color);

impl<'de> Deserialize<'de> for ColorSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) => Color::from_str(&s).map(ColorSpec).map_err(|_| {
                D::Error::custom(format!(
                    "unknown colour {s:?}: use a name (\"red\", \"light-blue\", \"dark-gray\", \
                     \"reset\"), \"#rrggbb\" or an xterm index \"0\"..\"255\""
                ))
            }),
            toml::Value::Integer(i) => Err(D::Error::custom(format!(
                "write colour indexes as strings: \"{i}\""
            ))),
            other => Color::deserialize(other)
                .map(ColorSpec)
                .map_err(D::Error::custom),
        }
    }
}

/// Modifiers, parsed by ratatui (bitflags): upper-case names joined by `|`.
#[derive(Default)]
struct ModifierSpec(Modifier);

impl<'de> Deserialize<'de> for ModifierSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = toml::Value::deserialize(d)?;
        let shown = value.to_string();
        Modifier::deserialize(value).map(ModifierSpec).map_err(|_| {
            D::Error::custom(format!(
                "bad modifiers {shown}: use upper-case names joined by `|`, from BOLD, DIM, \
                 ITALIC, UNDERLINED, SLOW_BLINK, RAPID_BLINK, REVERSED, HIDDEN, CROSSED_OUT"
            ))
        })
    }
}

/// What the terminal can show, from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColorEnv {
    /// `NO_COLOR` is set (and not empty): no colours at all.
    pub no_color: bool,
    pub depth: ColorDepth,
}

/// How many colours the terminal has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ColorDepth {
    /// No colours: modifiers only.
    Mono,
    /// The 16 named ANSI colours.
    Ansi16,
    /// The xterm 256-colour palette.
    Ansi256,
    /// 24-bit RGB.
    TrueColor,
}

impl ColorEnv {
    /// From this process's `NO_COLOR`, `COLORTERM` and `TERM`.
    pub fn detect() -> ColorEnv {
        let var = |k: &str| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned());
        Self::from_vars(
            var("NO_COLOR").as_deref(),
            var("COLORTERM").as_deref(),
            var("TERM").as_deref(),
        )
    }

    /// `NO_COLOR` present and non-empty → no colour (no-color.org); `TERM=dumb` → Mono;
    /// `COLORTERM=truecolor|24bit` or `TERM=*-direct` → TrueColor; `TERM=*256color*` → Ansi256;
    /// anything else (`xterm`, `screen`, `tmux`, `linux`, unset) → Ansi16.
    pub fn from_vars(
        no_color: Option<&str>,
        colorterm: Option<&str>,
        term: Option<&str>,
    ) -> ColorEnv {
        if no_color.is_some_and(|v| !v.is_empty()) {
            return ColorEnv {
                no_color: true,
                depth: ColorDepth::Mono,
            };
        }
        let term = term.unwrap_or_default().to_ascii_lowercase();
        let truecolor = colorterm.is_some_and(|c| {
            c.eq_ignore_ascii_case("truecolor") || c.eq_ignore_ascii_case("24bit")
        });
        let depth = if term == "dumb" {
            ColorDepth::Mono
        } else if truecolor || term.ends_with("-direct") {
            ColorDepth::TrueColor
        } else if term.contains("256color") {
            ColorDepth::Ansi256
        } else {
            ColorDepth::Ansi16
        };
        ColorEnv {
            no_color: false,
            depth,
        }
    }
}

/// The 16 named colours in ANSI index order, with xterm's default RGB values.
const ANSI16: [(Color, (u8, u8, u8)); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (205, 0, 0)),
    (Color::Green, (0, 205, 0)),
    (Color::Yellow, (205, 205, 0)),
    (Color::Blue, (0, 0, 238)),
    (Color::Magenta, (205, 0, 205)),
    (Color::Cyan, (0, 205, 205)),
    (Color::Gray, (229, 229, 229)),
    (Color::DarkGray, (127, 127, 127)),
    (Color::LightRed, (255, 0, 0)),
    (Color::LightGreen, (0, 255, 0)),
    (Color::LightYellow, (255, 255, 0)),
    (Color::LightBlue, (92, 92, 255)),
    (Color::LightMagenta, (255, 0, 255)),
    (Color::LightCyan, (0, 255, 255)),
    (Color::White, (255, 255, 255)),
];

fn to_ansi16(color: Color) -> Color {
    let rgb = match color {
        Color::Indexed(i) if i < 16 => return ANSI16[usize::from(i)].0,
        Color::Indexed(i) => xterm_rgb(i),
        Color::Rgb(r, g, b) => (r, g, b),
        named => return named,
    };
    let target = lab(rgb);
    ANSI16
        .iter()
        .map(|&(named, candidate)| (named, distance(lab(candidate), target)))
        .min_by(|(_, x), (_, y)| x.total_cmp(y))
        .map_or(color, |(named, _)| named)
}

/// RGB to the nearest colour of xterm's 6×6×6 cube and grey ramp (16..=255); indexes 0..=15
/// are left out because terminals redefine them.
fn to_ansi256(color: Color) -> Color {
    let Color::Rgb(r, g, b) = color else {
        return color;
    };
    let target = lab((r, g, b));
    (16..=255u8)
        .map(|i| (i, distance(lab(xterm_rgb(i)), target)))
        .min_by(|(_, x), (_, y)| x.total_cmp(y))
        .map_or(color, |(i, _)| Color::Indexed(i))
}

/// The RGB value of an xterm-256 palette index.
fn xterm_rgb(i: u8) -> (u8, u8, u8) {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    match i {
        0..=15 => ANSI16[usize::from(i)].1,
        16..=231 => {
            let n = usize::from(i - 16);
            (LEVELS[n / 36], LEVELS[n / 6 % 6], LEVELS[n % 6])
        }
        _ => {
            let v = 8 + 10 * (i - 232);
            (v, v, v)
        }
    }
}

/// sRGB to CIELAB (D65): distances there follow what eyes see, so a salmon `#ff5f5f` maps to
/// light red rather than to the grey that is nearer in raw RGB.
fn lab((r, g, b): (u8, u8, u8)) -> [f64; 3] {
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let (r, g, b) = (linear(r), linear(g), linear(b));
    let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
    let f = |t: f64| {
        if t > 0.008856 {
            t.cbrt()
        } else {
            7.787 * t + 16.0 / 116.0
        }
    };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// Squared CIE76 colour difference.
fn distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUECOLOR: ColorEnv = ColorEnv {
        no_color: false,
        depth: ColorDepth::TrueColor,
    };

    fn colors(theme: &mut Theme) -> Vec<Color> {
        let mut all: Vec<Color> = theme
            .styles_mut()
            .into_iter()
            .flat_map(|s| [s.fg, s.bg, s.underline_color])
            .flatten()
            .collect();
        all.extend(&theme.log_palette);
        all
    }

    #[test]
    fn dark_file_is_the_default_theme() {
        assert_eq!(Theme::builtin("dark"), Some(Theme::default()));
        assert_eq!(Theme::load(None, &TRUECOLOR).unwrap(), Theme::default());
    }

    #[test]
    fn every_builtin_loads_sets_every_part_and_differs() {
        let themes: Vec<Theme> = Theme::BUILTIN
            .iter()
            .map(|name| Theme::load(Some(name), &TRUECOLOR).unwrap())
            .collect();
        for (theme, name) in themes.iter().zip(Theme::BUILTIN) {
            assert_eq!(theme.name, *name);
            assert!(!theme.log_palette.is_empty());
            assert_ne!(theme.production, theme.staging, "{name}");
            assert_ne!(theme.production, theme.base, "{name}");
            // Every built-in file spells out every part, so none silently inherits dark's.
            let file = match builtin_text(name) {
                Some(text) => text.parse::<toml::Table>().unwrap(),
                None => panic!("no file for {name}"),
            };
            assert_eq!(
                file.len(),
                17,
                "{name} sets {:?}",
                file.keys().collect::<Vec<_>>()
            );
        }
        for (i, a) in themes.iter().enumerate() {
            for b in &themes[i + 1..] {
                assert_ne!(a, b, "{} and {} are the same", a.name, b.name);
            }
        }
        assert_eq!(Theme::builtin("solarized"), None);
    }

    #[test]
    fn monochrome_has_no_colours_and_a_loud_production() {
        let mut mono = Theme::builtin("monochrome").unwrap();
        assert!(colors(&mut mono).iter().all(|c| *c == Color::Reset));
        assert!(
            mono.production
                .add_modifier
                .contains(Modifier::REVERSED | Modifier::BOLD)
        );
        assert_ne!(mono.production, mono.staging);
        assert_ne!(mono.selected, Style::default());
    }

    #[test]
    fn no_color_strips_every_colour_but_production_still_stands_out() {
        let env = ColorEnv::from_vars(Some("1"), Some("truecolor"), Some("xterm-256color"));
        assert!(env.no_color);
        for name in Theme::BUILTIN {
            let mut theme = Theme::load(Some(name), &env).unwrap();
            assert!(
                colors(&mut theme).iter().all(|c| *c == Color::Reset),
                "{name}"
            );
            let loud = Modifier::REVERSED | Modifier::BOLD;
            assert!(theme.production.add_modifier.contains(loud), "{name}");
            assert!(!theme.production.sub_modifier.intersects(loud), "{name}");
            assert_ne!(theme.production, theme.staging, "{name}");
            assert!(!theme.selected.add_modifier.is_empty(), "{name}");
        }
        // Staging is a plain line in every theme: production's bar is the only bar.
        let dark = Theme::load(None, &env).unwrap();
        assert!(!dark.staging.add_modifier.contains(Modifier::REVERSED));
        // The selection stays visible without its background.
        assert_eq!(dark.selected.add_modifier, Modifier::REVERSED);
    }

    #[test]
    fn color_env_from_variables() {
        let env = |n, c, t| ColorEnv::from_vars(n, c, t);
        let depth = |n, c, t| env(n, c, t).depth;
        assert_eq!(
            env(Some(""), None, Some("xterm")),
            ColorEnv {
                no_color: false,
                depth: ColorDepth::Ansi16
            }
        );
        assert_eq!(
            depth(None, Some("truecolor"), Some("xterm-256color")),
            ColorDepth::TrueColor
        );
        assert_eq!(
            depth(None, Some("24bit"), Some("xterm")),
            ColorDepth::TrueColor
        );
        assert_eq!(
            depth(None, None, Some("xterm-direct")),
            ColorDepth::TrueColor
        );
        assert_eq!(
            depth(None, None, Some("xterm-256color")),
            ColorDepth::Ansi256
        );
        assert_eq!(
            depth(None, None, Some("tmux-256color")),
            ColorDepth::Ansi256
        );
        for term in ["xterm", "screen", "tmux", "linux", "vt100"] {
            assert_eq!(depth(None, None, Some(term)), ColorDepth::Ansi16, "{term}");
        }
        assert_eq!(depth(None, None, None), ColorDepth::Ansi16);
        assert_eq!(
            depth(None, Some("truecolor"), Some("dumb")),
            ColorDepth::Mono
        );
        assert!(!env(None, None, Some("dumb")).no_color);
    }

    #[test]
    fn truecolor_keeps_colours_as_written() {
        let light = Theme::load(Some("light"), &TRUECOLOR).unwrap();
        assert_eq!(light.production.bg, Some(Color::Rgb(0xd7, 0, 0)));
        assert_eq!(light, Theme::builtin("light").unwrap());
    }

    #[test]
    fn ansi256_maps_rgb_to_the_nearest_xterm_colour() {
        let env = ColorEnv {
            no_color: false,
            depth: ColorDepth::Ansi256,
        };
        let mut light = Theme::load(Some("light"), &env).unwrap();
        assert_eq!(light.production.bg, Some(Color::Indexed(160)));
        assert_eq!(light.dim.fg, Some(Color::Indexed(240)));
        assert!(
            colors(&mut light)
                .iter()
                .all(|c| !matches!(c, Color::Rgb(..)))
        );
        assert_eq!(to_ansi256(Color::Rgb(255, 95, 95)), Color::Indexed(203));
        assert_eq!(to_ansi256(Color::Rgb(0, 0, 0)), Color::Indexed(16));
        assert_eq!(to_ansi256(Color::Rgb(128, 128, 128)), Color::Indexed(244));
        assert_eq!(to_ansi256(Color::Rgb(250, 2, 3)), Color::Indexed(196));
        assert_eq!(to_ansi256(Color::Indexed(3)), Color::Indexed(3));
        assert_eq!(to_ansi256(Color::Red), Color::Red);
    }

    #[test]
    fn ansi16_maps_every_colour_to_a_named_one() {
        let env = ColorEnv {
            no_color: false,
            depth: ColorDepth::Ansi16,
        };
        let mut light = Theme::load(Some("light"), &env).unwrap();
        assert!(
            colors(&mut light)
                .iter()
                .all(|c| !matches!(c, Color::Rgb(..) | Color::Indexed(_)))
        );
        assert_eq!(light.production.bg, Some(Color::Red));
        assert_eq!(to_ansi16(Color::Rgb(255, 95, 95)), Color::Red);
        assert_eq!(to_ansi16(Color::Rgb(10, 10, 10)), Color::Black);
        assert_eq!(to_ansi16(Color::Indexed(1)), Color::Red);
        assert_eq!(to_ansi16(Color::Indexed(196)), Color::LightRed);
        assert_eq!(to_ansi16(Color::Indexed(244)), Color::DarkGray);
        assert_eq!(to_ansi16(Color::Magenta), Color::Magenta);
    }

    #[test]
    fn xterm_palette() {
        assert_eq!(xterm_rgb(16), (0, 0, 0));
        assert_eq!(xterm_rgb(203), (255, 95, 95));
        assert_eq!(xterm_rgb(231), (255, 255, 255));
        assert_eq!(xterm_rgb(232), (8, 8, 8));
        assert_eq!(xterm_rgb(255), (238, 238, 238));
    }

    fn parse(text: &str) -> Result<Theme, ConfigError> {
        Theme::parse(Path::new("mine.toml"), text)
    }

    #[test]
    fn user_file_patches_its_base() {
        let t =
            parse("extends = \"light\"\nproduction = { fg = \"#FFFFFF\", bg = \"88\" }\n").unwrap();
        let light = Theme::builtin("light").unwrap();
        assert_eq!(t.name, "mine");
        assert_eq!(
            t.production,
            Style::new()
                .fg(Color::Rgb(255, 255, 255))
                .bg(Color::Indexed(88))
        );
        assert_eq!(
            Theme {
                name: light.name.clone(),
                production: light.production,
                ..t
            },
            light
        );
        let t = parse(
            "name = \"x\"\nok = { fg = { Rgb = [1, 2, 3] } }\nlog_palette = [\"Bright Red\"]",
        )
        .unwrap();
        assert_eq!((t.name.as_str(), t.ok.fg), ("x", Some(Color::Rgb(1, 2, 3))));
        assert_eq!(t.log_palette, [Color::LightRed]);
        assert_eq!(t.base, Theme::default().base);
        let t = parse(
            "selected = { add_modifier = \"BOLD | UNDERLINED\", sub_modifier = \"REVERSED\" }",
        )
        .unwrap();
        assert_eq!(
            t.selected.add_modifier,
            Modifier::BOLD | Modifier::UNDERLINED
        );
        assert_eq!(t.selected.sub_modifier, Modifier::REVERSED);
    }

    #[test]
    fn bad_theme_files_say_where_and_why() {
        let cases = [
            ("prodution = {}", "mine.toml:1:1: unknown field `prodution`"),
            (
                "ok = { fg = \"gren\" }",
                "mine.toml:1:13: unknown colour \"gren\"",
            ),
            (
                "ok = { fg = 42 }",
                "mine.toml:1:13: write colour indexes as strings: \"42\"",
            ),
            (
                "ok = { bold = true }",
                "mine.toml:1:8: unknown field `bold`",
            ),
            (
                "ok = { add_modifier = \"bold\" }",
                "mine.toml:1:23: bad modifiers \"bold\"",
            ),
            (
                "extends = \"drak\"",
                "mine.toml:1:11: cannot extend \"drak\" (did you mean \"dark\"?)",
            ),
            (
                "log_palette = []",
                "mine.toml:1:15: log_palette needs at least one colour",
            ),
            (
                "ok = \"green\"",
                "mine.toml:1:6: invalid type: string \"green\"",
            ),
        ];
        for (text, expected) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(
                e.starts_with(expected),
                "{text}\n  got:      {e}\n  expected: {expected}"
            );
        }
    }

    #[test]
    fn unknown_theme_names_suggest_a_builtin() {
        let e = Theme::load(Some("hight-contrast"), &TRUECOLOR)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "theme \"hight-contrast\": not a built-in theme (did you mean \"high-contrast\"?)"
            ),
            "{e}"
        );
        let e = Theme::load(Some("/nonexistent/mine.toml"), &TRUECOLOR).unwrap_err();
        assert!(matches!(e, ConfigError::Io { .. }));
    }
}
