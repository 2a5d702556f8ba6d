//! Where things go: the screen's rows, environments side by side or as tabs, and the height of
//! each pane inside an environment. Plain arithmetic, so it cannot panic at any size.

use ratatui::layout::Rect;

/// Narrowest usable environment column: the apps table needs about this much. Two environments
/// sit side by side from 120 columns (a common tmux window); below, they become tabs.
pub(crate) const MIN_ENV_COLUMN: u16 = 60;

/// The pods table never shows more rows than this (the logs get the room).
pub(crate) const MAX_POD_ROWS: usize = 10;

/// Environment blocks shorter than this have no bottom border (the footer closes them).
pub(crate) const FULL_FRAME: u16 = 30;

/// Header, body and footer rows.
pub(crate) fn screen(area: Rect) -> [Rect; 3] {
    let header = area.height.min(1);
    let footer = u16::from(area.height >= 2);
    let body = area.height - header - footer;
    [
        Rect {
            height: header,
            ..area
        },
        Rect {
            y: area.y + header,
            height: body,
            ..area
        },
        Rect {
            y: area.y + header + body,
            height: footer,
            ..area
        },
    ]
}

/// Whether `n` environments fit side by side in `width` columns.
pub(crate) fn side_by_side(width: u16, n: usize) -> bool {
    n > 1 && usize::from(width) >= n * usize::from(MIN_ENV_COLUMN)
}

/// The environments shown and their areas: all of them in equal columns when they fit, else
/// only the active one (the header's tabs name the others).
pub(crate) fn env_areas(body: Rect, n: usize, active: usize) -> Vec<(usize, Rect)> {
    if !side_by_side(body.width, n) {
        return if n == 0 {
            Vec::new()
        } else {
            vec![(active.min(n - 1), body)]
        };
    }
    let n16 = n as u16; // side_by_side bounds n by the width
    let (w, extra) = (body.width / n16, body.width % n16);
    (0..n16)
        .map(|i| {
            let x = body.x + i * w + i.min(extra);
            let width = w + u16::from(i < extra);
            (usize::from(i), Rect { x, width, ..body })
        })
        .collect()
}

/// What an environment has to show, for sizing its panes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Needs {
    /// A connection error line above the panes.
    pub banner: bool,
    /// Text lines of all app rows.
    pub app_lines: u16,
    /// Rows of the selected app's release (title and checklist items); 0 without one.
    pub release: u16,
    pub pods: usize,
    pub events: usize,
}

/// Heights of an environment's panes, top to bottom; 0 hides a pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Panes {
    pub banner: u16,
    pub apps: u16,
    pub release: u16,
    pub charts: u16,
    pub pods: u16,
    pub logs: u16,
    pub events: u16,
}

/// Shares `height` rows. Apps, pods and a few log lines come first; charts and then events
/// are dropped when there is no room for their minimum; spare rows grow charts, pods and
/// events to what they can use, and the logs take the rest.
pub(crate) fn panes(height: u16, needs: Needs) -> Panes {
    let mut left = height;
    let mut take = |want: u16, all_or_nothing: bool| {
        let got = if all_or_nothing && want > left {
            0
        } else {
            want.min(left)
        };
        left -= got;
        got
    };
    // Title and header rows, then content lines.
    let count = |n: usize, cap: u16| (n.max(1).min(usize::from(cap))) as u16;
    let apps_want = 2 + needs.app_lines.clamp(1, 12);
    let pods_want = 2 + count(needs.pods, MAX_POD_ROWS as u16);
    let events_want = 2 + count(needs.events, 8);
    let charts_want = 1 + (height / 4).clamp(3, 12);

    let mut p = Panes {
        banner: take(u16::from(needs.banner), false),
        apps: take(apps_want.min(2 + 4), false),
        // The release's title and its first items (failing ones first).
        release: take(needs.release.min(3), false),
        pods: take(2 + count(needs.pods, 3), false),
        logs: take(1 + 3, false),
        charts: take(1 + 3, true),
        events: take(2 + 2, true),
    };
    for (pane, want) in [
        (&mut p.apps, apps_want),
        (&mut p.release, needs.release),
        (&mut p.charts, charts_want),
        (&mut p.pods, pods_want),
        (&mut p.events, events_want),
    ] {
        if *pane > 0 {
            *pane += take(want.saturating_sub(*pane), false);
        }
    }
    p.logs += left;
    p
}

/// The panes' areas inside `area`, in drawing order: banner, apps, release, charts, pods,
/// logs, events.
pub(crate) fn stack(area: Rect, p: &Panes) -> [Rect; 7] {
    let mut y = area.y;
    [
        p.banner, p.apps, p.release, p.charts, p.pods, p.logs, p.events,
    ]
    .map(|h| {
        let h = h.min(area.bottom().saturating_sub(y));
        let r = Rect {
            y,
            height: h,
            ..area
        };
        y += h;
        r
    })
}

/// `area` less a column on each side, so text inside does not touch a frame.
pub(crate) fn padded(area: Rect) -> Rect {
    let pad = area.width.min(2) / 2;
    Rect {
        x: area.x + pad,
        width: area.width - 2 * pad,
        ..area
    }
}

/// A `width` × `height` rectangle centred in `area`, clipped to it.
pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let (width, height) = (width.min(area.width), height.min(area.height));
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEEDS: Needs = Needs {
        banner: false,
        app_lines: 5,
        release: 0,
        pods: 6,
        events: 5,
    };

    #[test]
    fn small_screens_keep_apps_pods_and_logs() {
        // 80x24 in tabs: 24 - header - footer - env border.
        let p = panes(20, NEEDS);
        assert_eq!(p.events, 0, "{p:?}");
        assert!(
            p.apps >= 6 && p.pods >= 5 && p.logs >= 4 && p.charts >= 4,
            "{p:?}"
        );
        assert_eq!(p.apps + p.charts + p.pods + p.logs, 20);
    }

    #[test]
    fn tall_screens_show_everything() {
        let p = panes(46, NEEDS);
        assert_eq!((p.apps, p.pods, p.events), (7, 8, 7), "{p:?}");
        assert!(p.charts >= 10 && p.logs >= 8, "{p:?}");
        assert_eq!(p.apps + p.charts + p.pods + p.logs + p.events, 46);
    }

    #[test]
    fn tiny_heights_never_overflow() {
        for h in 0..30 {
            let needs = Needs {
                banner: true,
                ..NEEDS
            };
            let p = panes(h, needs);
            let sum = p.banner + p.apps + p.charts + p.pods + p.logs + p.events;
            assert_eq!(sum, h, "{p:?}");
        }
    }

    #[test]
    fn columns_from_120_wide() {
        assert!(!side_by_side(119, 2));
        assert!(side_by_side(120, 2));
        assert!(!side_by_side(200, 1));
        let body = Rect::new(0, 1, 121, 10);
        let areas = env_areas(body, 2, 1);
        assert_eq!(
            areas,
            vec![(0, Rect::new(0, 1, 61, 10)), (1, Rect::new(61, 1, 60, 10))]
        );
        assert_eq!(
            env_areas(Rect::new(0, 1, 80, 10), 2, 7),
            vec![(1, Rect::new(0, 1, 80, 10))]
        );
        assert!(env_areas(body, 0, 0).is_empty());
    }
}
