//! Making cluster strings safe to draw, and fitting them into columns.
//!
//! Everything that came from a cluster (names, images, messages, log lines) may hold escape
//! sequences; [`sanitize`] makes them visible and inert before they reach a `Span`, so nothing
//! can move the cursor, retitle the window, open a hyperlink or recolour the terminal.

use std::borrow::Cow;
use std::fmt::Write as _;

use ratatui::text::Span;

/// Where a tab stops: tabs become spaces up to the next multiple of this column.
const TAB: usize = 4;

/// Makes `s` safe for the terminal: SGR colour sequences (`ESC [ … m`) are removed, tabs become
/// spaces, and every other control character is shown inertly: ESC as `␛` (what followed it then
/// reads as plain text), C0 and DEL in caret notation (`^G`, `^?`), C1 and bidi overrides as
/// `\u{9b}`. Returns the input unchanged (borrowed) when there is nothing to do.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_special) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut col = 0;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let mut len = c.len_utf8();
        match c {
            '\t' => {
                let n = TAB - col % TAB;
                out.extend(std::iter::repeat_n(' ', n));
                col += n;
            }
            '\x1b' => match sgr_len(rest) {
                Some(n) => len = n,
                None => {
                    out.push('␛');
                    col += 1;
                }
            },
            '\0'..='\x1f' | '\x7f' => {
                out.push('^');
                out.push(char::from((c as u8) ^ 0x40));
                col += 2;
            }
            c if is_special(c) => {
                let before = out.len();
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
                col += out.len() - before;
            }
            c => {
                out.push(c);
                col += 1;
            }
        }
        rest = &rest[len..];
    }
    Cow::Owned(out)
}

/// Characters that [`sanitize`] must not pass through.
fn is_special(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\x7f' | '\u{80}'..='\u{9f}')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The length in bytes of the SGR sequence (`ESC [ params m`) that `s` starts with, if it does.
fn sgr_len(s: &str) -> Option<usize> {
    let params = s.strip_prefix("\x1b[")?;
    let n = params
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';' || *b == b':')
        .count();
    (params.as_bytes().get(n) == Some(&b'm')).then_some(2 + n + 1)
}

/// Display width of `s` in terminal columns.
pub(crate) fn width(s: &str) -> usize {
    Span::raw(s).width()
}

/// Shortens `s` to at most `max` characters by replacing its middle with `…`, keeping both ends
/// (a pod name's unique suffix survives).
pub(crate) fn ellipsize_middle(s: &str, max: usize) -> Cow<'_, str> {
    let n = s.chars().count();
    if n <= max {
        return Cow::Borrowed(s);
    }
    if max == 0 {
        return Cow::Borrowed("");
    }
    let tail = (max - 1) / 2;
    let head = max - 1 - tail;
    let mut out: String = s.chars().take(head).collect();
    out.push('…');
    out.extend(s.chars().skip(n - tail));
    Cow::Owned(out)
}

/// Cuts `s` to at most `max` columns, ending with `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    if width(s) <= max {
        return Cow::Borrowed(s);
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = width(c.encode_utf8(&mut [0; 4]));
        if used + w + 1 > max {
            break;
        }
        out.push(c);
        used += w;
    }
    if max > 0 {
        out.push('…');
    }
    Cow::Owned(out)
}

/// Narrows the `widths` of columns set one space apart, the last first, until they fit in
/// `room` columns; each keeps at least one column (for its `…`).
pub(crate) fn fit_columns(widths: &mut [usize], room: usize) {
    let used = widths.iter().sum::<usize>() + widths.len().saturating_sub(1);
    let mut over = used.saturating_sub(room);
    for w in widths.iter_mut().rev() {
        let cut = over.min(w.saturating_sub(1));
        *w -= cut;
        over -= cut;
    }
}

/// Shortens `s` to at most `max` columns by replacing its start with `…`, keeping the end
/// (where a generated name is unique).
pub(crate) fn ellipsize_start(s: &str, max: usize) -> Cow<'_, str> {
    if width(s) <= max {
        return Cow::Borrowed(s);
    }
    if max == 0 {
        return Cow::Borrowed("");
    }
    let mut used = 1;
    let start = s
        .char_indices()
        .rev()
        .take_while(|(_, c)| {
            used += width(c.encode_utf8(&mut [0; 4]));
            used <= max
        })
        .last()
        .map_or(s.len(), |(i, _)| i);
    Cow::Owned(format!("…{}", &s[start..]))
}

/// Case-insensitive substring test; `needle` must already be lower case. Allocation-free when
/// the needle is ASCII (the usual case for log filters).
pub(crate) fn contains_ci(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if needle.is_ascii() {
        let n = needle.as_bytes();
        return haystack
            .as_bytes()
            .windows(n.len())
            .any(|w| w.eq_ignore_ascii_case(n));
    }
    haystack.to_lowercase().contains(needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(input: &str) -> String {
        sanitize(input).into_owned()
    }

    fn assert_inert(out: &str) {
        assert!(!out.chars().any(is_special), "control char left in {out:?}");
    }

    #[test]
    fn plain_text_is_borrowed() {
        for input in [
            "",
            "checkout-7d9f8b6c5-x2x9k",
            "héllo wörld → ✓ 日本語",
            "a ␛ b",
        ] {
            assert!(matches!(sanitize(input), Cow::Borrowed(_)), "{input:?}");
        }
    }

    #[test]
    fn sgr_colours_are_stripped() {
        assert_eq!(s("\x1b[31mred\x1b[0m plain"), "red plain");
        assert_eq!(s("\x1b[1;38;2;255;0;0mx\x1b[m"), "x");
        assert_eq!(s("\x1b[38:5:196mx"), "x");
    }

    #[test]
    fn cursor_moves_and_clear_screen_are_visible() {
        assert_eq!(s("a\x1b[2Jb"), "a␛[2Jb");
        assert_eq!(s("\x1b[H\x1b[10;20H"), "␛[H␛[10;20H");
        assert_eq!(s("\x1b[1A\x1b[K"), "␛[1A␛[K");
        // An SGR-looking prefix with a non-SGR final byte is not stripped.
        assert_eq!(s("\x1b[31Hx"), "␛[31Hx");
    }

    #[test]
    fn osc_title_and_hyperlinks_are_inert() {
        assert_eq!(s("\x1b]0;pwned\x07rest"), "␛]0;pwned^Grest");
        let link = "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\";
        let out = s(link);
        assert_eq!(out, "␛]8;;https://evil.example␛\\click␛]8;;␛\\");
        assert_inert(&out);
    }

    #[test]
    fn dcs_and_lone_escape() {
        assert_eq!(s("\x1bP1$r\x1b\\"), "␛P1$r␛\\");
        assert_eq!(s("\x1b"), "␛");
        assert_eq!(s("end\x1b"), "end␛");
        assert_eq!(s("\x1b["), "␛[");
        assert_eq!(s("\x1b[12"), "␛[12");
    }

    #[test]
    fn c0_del_and_c1_use_visible_notation() {
        assert_eq!(s("a\0b\x07c\x08d\re\nf\x7f"), "a^@b^Gc^Hd^Me^Jf^?");
        assert_eq!(s("\u{9b}2J"), "\\u{9b}2J");
        assert_eq!(s("\u{9d}0;t\u{9c}"), "\\u{9d}0;t\\u{9c}");
        assert_eq!(s("\u{85}"), "\\u{85}");
    }

    #[test]
    fn bidi_overrides_are_visible() {
        assert_eq!(s("abc\u{202e}fed\u{202c}"), "abc\\u{202e}fed\\u{202c}");
        assert_eq!(s("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
        // Ordinary right-to-left text is untouched.
        assert!(matches!(sanitize("שלום"), Cow::Borrowed(_)));
    }

    #[test]
    fn tabs_expand_to_multiples_of_four() {
        assert_eq!(s("\tx"), "    x");
        assert_eq!(s("ab\tc"), "ab  c");
        assert_eq!(s("abcd\te"), "abcd    e");
        // Columns count what is written, including the notation of earlier controls.
        assert_eq!(s("\x07\tx"), "^G  x");
        assert_eq!(s("\x1b[1mab\tc"), "ab  c");
    }

    #[test]
    fn mixed_utf8_survives_around_escapes() {
        let out = s("日本\x1b[32m語\x1b[0m → ✓ é\x1b]2;t\x07");
        assert_eq!(out, "日本語 → ✓ é␛]2;t^G");
        assert_inert(&out);
    }

    #[test]
    fn every_single_char_is_inert() {
        for c in ('\0'..='\u{3000}').chain(['\u{feff}', '\u{1f600}']) {
            let input = format!("x{c}y");
            assert_inert(&sanitize(&input));
        }
    }

    #[test]
    fn ellipsis_keeps_both_ends() {
        assert_eq!(
            ellipsize_middle("checkout-7d9f8b6c5-x2x9k", 12),
            "checko…x2x9k"
        );
        assert_eq!(ellipsize_middle("short", 12), "short");
        assert_eq!(ellipsize_middle("abc", 1), "…");
        assert_eq!(ellipsize_middle("abc", 0), "");
    }

    #[test]
    fn start_ellipsis_keeps_the_end() {
        assert_eq!(ellipsize_start("frontend-52vv9kj87b", 12), "…-52vv9kj87b");
        assert_eq!(ellipsize_start("short", 5), "short");
        assert_eq!(ellipsize_start("日本語", 4), "…語");
        assert_eq!(ellipsize_start("abc", 1), "…");
        assert_eq!(ellipsize_start("abc", 0), "");
    }

    #[test]
    fn columns_narrow_from_the_right() {
        let mut w = [10, 5, 8];
        fit_columns(&mut w, 25);
        assert_eq!(w, [10, 5, 8]);
        fit_columns(&mut w, 20);
        assert_eq!(w, [10, 5, 3]);
        fit_columns(&mut w, 12);
        assert_eq!(w, [8, 1, 1]);
        fit_columns(&mut w, 0);
        assert_eq!(w, [1, 1, 1]);
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("deadline exceeded", 10), "deadline …");
        assert_eq!(truncate("short", 5), "short");
        assert_eq!(truncate("日本語", 5), "日本…");
        assert_eq!(truncate("abc", 0), "");
    }

    #[test]
    fn case_insensitive_contains() {
        assert!(contains_ci("java.lang.NullPointerException", "nullpointer"));
        assert!(contains_ci("ERROR: missing key", "error"));
        assert!(!contains_ci("all good", "error"));
        assert!(contains_ci("ÉCHEC total", "échec"));
        assert!(contains_ci("anything", ""));
    }
}
