//! Errors in configuration files and flags. A broken file is reported as `path:line:column:
//! message` (1-based, like compilers), so the operator can jump straight to the mistake.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::paths::display_path;

/// What went wrong while reading configuration, and where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read {}: {source}", display_path(path))]
    Io { path: PathBuf, source: io::Error },
    /// A file was read but is wrong: TOML syntax, an unknown key, a bad value.
    #[error("{}:{line}:{column}: {message}", display_path(path))]
    Invalid {
        path: PathBuf,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column (in characters) of the offending text.
        column: usize,
        message: String,
    },
    /// A value given outside any file: a command-line flag such as `--env`, or a theme name.
    #[error("{what} {value:?}: {message}")]
    Value {
        what: &'static str,
        value: String,
        message: String,
    },
}

/// A configuration file's path and text, to turn byte spans into located errors.
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// Deserialize the whole file; TOML and serde errors keep their location.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(self.text).map_err(|e| self.error(e.span().unwrap_or(0..0), e.message()))
    }

    /// An error at the start of `span` (a byte range of the text).
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = self.line_col(span.start);
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let bytes = self.text.as_bytes();
        let before = &bytes[..offset.min(bytes.len())];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        // Count characters, not bytes: skip UTF-8 continuation bytes.
        let column = before[line_start..]
            .iter()
            .filter(|&&b| b & 0xC0 != 0x80)
            .count()
            + 1;
        (line, column)
    }
}

/// ` (did you mean "x"?)` when one of `candidates` is a plausible typo of `word`, else "".
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| format!(" (did you mean {c:?}?)"))
        .unwrap_or_default()
}

/// Edit distance over characters, a swap of neighbours counting as one edit ("drak" → "dark").
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let src = Source {
            path: Path::new("x.toml"),
            text: "a = 1\nné = \"x\"\n",
        };
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(6), (2, 1));
        // "né = " is 6 bytes but 5 characters.
        assert_eq!(src.line_col(12), (2, 6));
        assert_eq!(src.line_col(10_000), (3, 1));
    }

    #[test]
    fn error_display_is_file_line_column_message() {
        let src = Source {
            path: Path::new("k.toml"),
            text: "[keys]\npromte = \"p\"\n",
        };
        let e = src.error(7..13, "unknown action");
        assert_eq!(e.to_string(), "k.toml:2:1: unknown action");
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        let names = ["promote", "promote_full", "quit"];
        assert_eq!(
            did_you_mean("promte", names),
            " (did you mean \"promote\"?)"
        );
        assert_eq!(did_you_mean("qiut", names), " (did you mean \"quit\"?)");
        assert_eq!(did_you_mean("zzzzzz", names), "");
        assert_eq!(
            did_you_mean("drak", ["dark", "light"]),
            " (did you mean \"dark\"?)"
        );
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
