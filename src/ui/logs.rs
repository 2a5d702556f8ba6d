//! The logs pane: the newest lines of the followed app's pods, each prefixed by its pod name in
//! a colour stable across frames and runs. The filter (case-insensitive) and the scroll
//! position apply here, over the visible lines only.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::EnvView;
use super::text::{contains_ci, ellipsize_middle, sanitize, width};
use crate::app::state::{LogLine, Pane};
use crate::config::theme::Theme;

pub(super) fn render(buf: &mut Buffer, area: Rect, v: &EnvView) {
    if area.height == 0 {
        return;
    }
    let t = v.theme();
    let logs = &v.env.logs;
    let mut title = vec![Span::raw(" Logs")];
    if let Some(app) = &logs.app {
        title.push(Span::raw(format!(" {}", sanitize(app))));
    }
    if let Some(f) = v.log_filter {
        title.push(Span::raw(format!(" /{}", sanitize(f))));
    }
    title.push(if logs.paused {
        Span::styled(" PAUSED", t.warn)
    } else {
        Span::styled(" following", t.dim)
    });
    if logs.scroll > 0 {
        title.push(Span::styled(format!(" ↑{}", logs.scroll), t.dim));
    }
    if logs.dropped > 0 {
        title.push(Span::styled(format!(" · {} dropped", logs.dropped), t.dim));
    }
    title.push(Span::raw(" "));
    let block = v.pane_block(Some(Pane::Logs), title);
    let inner = block.inner(area);
    block.render(area, buf);

    let needle = v
        .log_filter
        .filter(|f| !f.is_empty())
        .map(str::to_lowercase);
    let matches = |l: &&LogLine| needle.as_deref().is_none_or(|n| contains_ci(&l.text, n));
    let rows = usize::from(inner.height);
    let mut lines: Vec<&LogLine> = logs
        .lines
        .iter()
        .rev()
        .filter(matches)
        .skip(logs.scroll)
        .take(rows)
        .collect();
    lines.reverse();
    if lines.len() < rows && logs.scroll > 0 {
        // Scrolled past the oldest match: show the oldest page.
        lines = logs.lines.iter().filter(matches).take(rows).collect();
    }
    if lines.is_empty() {
        let msg = if logs.lines.is_empty() {
            "no log lines yet"
        } else {
            "no lines match the filter"
        };
        Paragraph::new(Line::styled(msg, t.dim)).render(inner, buf);
        return;
    }

    // Pod names without the app's prefix (the title names it), cut in the middle to at most
    // a quarter of the width so their unique suffix stays.
    let app = logs.app.as_deref().unwrap_or_default();
    let short = |pod: &'_ str| -> String {
        let rest = pod.strip_prefix(app).and_then(|r| r.strip_prefix('-'));
        sanitize(rest.filter(|r| !r.is_empty()).unwrap_or(pod)).into_owned()
    };
    let pods: Vec<String> = lines.iter().map(|l| short(&l.pod)).collect();
    let widest = pods.iter().map(|p| width(p)).max().unwrap_or(0);
    let pod_width = widest.min(usize::from(inner.width / 4).max(8));
    let text: Vec<Line> = lines
        .iter()
        .zip(&pods)
        .map(|(l, pod)| {
            let pod = format!("{:<pod_width$} ", ellipsize_middle(pod, pod_width));
            Line::from(vec![
                Span::styled(pod, pod_style(&l.pod, t)),
                Span::raw(sanitize(&l.text)),
            ])
        })
        .collect();
    Paragraph::new(text).style(t.base).render(inner, buf);
}

/// A pod's colour: an FNV-1a hash of its name into the palette, the same on every run.
fn pod_style(pod: &str, t: &Theme) -> Style {
    if t.log_palette.is_empty() {
        return t.dim;
    }
    let hash = pod.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Style::new().fg(t.log_palette[(hash % t.log_palette.len() as u64) as usize])
}
