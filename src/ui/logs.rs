//! The logs pane: the newest lines of the followed app's pods, each prefixed by its pod name in
//! a colour stable across frames and runs. The filter (case-insensitive) and the scroll
//! position apply here, over the visible lines only.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::EnvView;
use super::text::{contains_ci, ellipsize_middle, sanitize, truncate, width};
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
        Span::raw(" following")
    });
    if logs.scroll > 0 {
        title.push(Span::raw(format!(" ↑{}", logs.scroll)));
    }
    if logs.dropped > 0 {
        title.push(Span::raw(format!(" · {} dropped", logs.dropped)));
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
    let text_width = usize::from(inner.width).saturating_sub(pod_width + 1);
    let colours = PodColours::new(&logs.pods, t.log_palette.len());
    let text: Vec<Line> = lines
        .iter()
        .zip(&pods)
        .map(|(l, pod)| {
            let pod = format!("{:<pod_width$} ", ellipsize_middle(pod, pod_width));
            Line::from(vec![
                Span::styled(pod, colours.style(&l.pod, t)),
                Span::raw(truncate(&sanitize(&l.text), text_width).into_owned()),
            ])
        })
        .collect();
    Paragraph::new(text).style(t.base).render(inner, buf);
}

/// Pods' colours: an FNV-1a hash of the name into the palette, the same on every run. When the
/// followed pods fit in the palette, a pod whose colour another (earlier by name) already has
/// takes the next free one, so that no two of them look alike.
struct PodColours<'a> {
    assigned: Vec<(&'a str, usize)>,
    len: usize,
}

impl<'a> PodColours<'a> {
    fn new(followed: &'a [String], len: usize) -> Self {
        let mut assigned = Vec::new();
        if followed.len() <= len {
            let mut pods: Vec<&str> = followed.iter().map(String::as_str).collect();
            pods.sort_unstable();
            let mut taken = vec![false; len];
            for pod in pods {
                let mut i = hash_index(pod, len);
                while taken[i] {
                    i = (i + 1) % len;
                }
                taken[i] = true;
                assigned.push((pod, i));
            }
        }
        PodColours { assigned, len }
    }

    fn style(&self, pod: &str, t: &Theme) -> Style {
        if self.len == 0 {
            return t.dim;
        }
        let i = self
            .assigned
            .iter()
            .find(|(p, _)| *p == pod)
            .map_or_else(|| hash_index(pod, self.len), |(_, i)| *i);
        Style::new().fg(t.log_palette[i])
    }
}

fn hash_index(pod: &str, len: usize) -> usize {
    let hash = pod.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % len as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followed_pods_get_distinct_colours_while_they_fit() {
        let t = Theme::default();
        let pods: Vec<String> = (0..8).map(|i| format!("checkout-7d9f8b6c5-p{i}")).collect();
        let colours = PodColours::new(&pods, t.log_palette.len());
        let mut seen: Vec<_> = pods.iter().map(|p| colours.style(p, &t).fg).collect();
        seen.sort_by_key(|c| format!("{c:?}"));
        seen.dedup();
        assert_eq!(seen.len(), 8);
        // The same pods, the same colours; a pod not followed (any more) keeps its hash's.
        let again = PodColours::new(&pods, t.log_palette.len());
        assert!(
            pods.iter()
                .all(|p| colours.style(p, &t) == again.style(p, &t))
        );
        let gone = "checkout-7d9f8b6c5-old";
        assert_eq!(
            colours.style(gone, &t).fg,
            Some(t.log_palette[hash_index(gone, 8)])
        );
    }
}
