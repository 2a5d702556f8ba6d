//! Colours: a [`Theme`] names a style for every part of the screen. Built-in themes live in
//! `themes/*.toml` (compiled in); a user theme file patches one of them.

use ratatui::style::{Color, Modifier, Style};

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
    /// Header bar and frame accent of a staging (non-production) environment.
    pub staging: Style,
    /// Header bar and frame accent of a production environment: impossible to miss.
    pub production: Style,
    pub sandbox_badge: Style,
    pub read_only_badge: Style,
    /// The selected row.
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
            staging: Style::default().fg(Color::Black).bg(Color::Cyan),
            production: Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
            sandbox_badge: Style::default().fg(Color::Black).bg(Color::Yellow),
            read_only_badge: Style::default().fg(Color::Black).bg(Color::Green),
            selected: Style::default().add_modifier(Modifier::REVERSED),
            ok: Style::default().fg(Color::Green),
            warn: Style::default().fg(Color::Yellow),
            error: Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            stable: Style::default().fg(Color::Blue),
            canary: Style::default().fg(Color::Magenta),
            threshold: Style::default().fg(Color::Red),
            log_palette: vec![
                Color::Cyan,
                Color::Green,
                Color::Yellow,
                Color::Blue,
                Color::Magenta,
                Color::LightCyan,
                Color::LightGreen,
                Color::LightBlue,
            ],
        }
    }
}
