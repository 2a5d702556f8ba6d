//! Comment- and format-preserving edits of Kubernetes manifests (YAML).
//!
//! A rollback or a promotion written as a Git commit must change *one* field of a manifest and
//! nothing else: comments, blank lines, indentation, key order, quoting, other documents of the
//! file, the trailing newline and CRLF line endings all survive. This module parses the file with
//! an event parser that reports source spans ([`saphyr_parser`]), locates the targeted node and
//! splices new bytes into the original text:
//!
//! * an existing scalar is replaced in place, keeping its quoting style where the new value allows
//!   it (plain values that would re-read as another type get double-quoted);
//! * missing trailing keys are inserted as new lines into the nearest existing block mapping
//!   (creating nested block mappings for missing intermediate keys).
//!
//! Every edit is then *verified*: the original and the edited file are loaded with an independent
//! YAML loader (`serde_yaml`), the intended change is applied to the original's data, and the
//! result must equal the edited file's data, document by document and key order included.
//! An edit that would change anything else is refused with [`YamlError::Verify`].
//!
//! Not supported (reported as [`YamlError::Unsupported`]): block scalars (`|`, `>`) as the
//! target, targets or parents carrying an anchor (`&x`) or reached through an alias (`*x`),
//! tagged target scalars (`!!str 10`), and insertions into flow collections (`{a: 1}`, `{}`) or
//! under an explicit `null`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde::Deserialize;
use serde_json::Value as Json;
use serde_yaml::Value as YValue;

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A key of a mapping.
    Key(String),
    /// The n-th (0-based) item of a sequence.
    Index(usize),
    /// The sequence item whose mapping has `key == value` (e.g. `containers[name=app]`).
    Match {
        /// The key looked up in each item's mapping (e.g. `name`).
        key: String,
        /// The scalar value that key must have, compared as written (e.g. `app`).
        value: String,
    },
}

/// A path into a YAML document, e.g. `spec.template.spec.containers[name=app].image`.
///
/// Its [`Display`](fmt::Display) form writes simple keys (ASCII letters, digits, `_`, `-`) after
/// dots and other keys as JSON strings in brackets
/// (`metadata.annotations["kubernetes.io/change-cause"]`), indices as `[0]` and matches as
/// `[name=app]` (`[name="a b"]` when the value needs quoting). [`FieldPath::parse`] reads that
/// form back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath(pub Vec<Seg>);

/// Errors of the manifest editor. Line and column numbers are 1-based.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum YamlError {
    /// The text is not valid YAML.
    #[error("YAML syntax error at line {line}, column {col}: {message}")]
    Parse {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        col: usize,
        /// What the parser complained about.
        message: String,
    },
    /// The requested document index is past the end of the file.
    #[error("document index {doc} does not exist: the file has {count} document(s)")]
    NoDocument {
        /// The requested 0-based document index.
        doc: usize,
        /// How many documents the file has.
        count: usize,
    },
    /// A list item (or, for [`set`], a non-insertable key) on the path does not exist.
    #[error("{path}: not found: {detail}")]
    NotFound {
        /// The full path that was looked up.
        path: String,
        /// What is missing, where, and what exists instead.
        detail: String,
    },
    /// The path leads to a mapping or a sequence, not to a single value.
    #[error("{path} (line {line}) is {found}, not a single value")]
    NotScalar {
        /// The full path that was looked up.
        path: String,
        /// 1-based line of the node found.
        line: usize,
        /// What was found ("a mapping", "a sequence").
        found: String,
    },
    /// The edit is valid YAML-wise but cannot be done safely by this editor.
    #[error("cannot edit this automatically: {0}")]
    Unsupported(String),
    /// A field path string could not be parsed.
    #[error("invalid field path {input:?}: {message}")]
    BadPath {
        /// The text given.
        input: String,
        /// What is wrong with it.
        message: String,
    },
    /// The value to write is not a scalar.
    #[error("invalid value for {path}: {message}")]
    BadValue {
        /// The targeted path.
        path: String,
        /// What is wrong with the value.
        message: String,
    },
    /// The cross-check of the edit failed: nothing is written.
    #[error("refusing to write the edit: {0}")]
    Verify(String),
}

/// A scalar read from a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// The value typed as the YAML 1.2 core schema reads it: null, bool, int, float or string.
    /// Quoted and block scalars are strings; `.inf`/`.nan` (not representable in JSON) are
    /// returned as strings of their text.
    pub value: Json,
    /// The value's source text as written (quotes included; anchors/tags included if present).
    pub raw: String,
    /// 1-based line of the value.
    pub line: usize,
    /// 1-based column (in characters) of the value.
    pub col: usize,
}

/// The result of [`set`].
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    /// The whole new file.
    pub text: String,
    /// 1-based line of the written value.
    pub line: usize,
    /// The previous value (typed like [`Scalar::value`]); `None` when the key was inserted.
    pub old: Option<Json>,
}

// ---------------------------------------------------------------------------------------------
// FieldPath
// ---------------------------------------------------------------------------------------------

fn is_simple_key(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_bare_match_part(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('\'')
        && s.chars()
            .all(|c| !matches!(c, '[' | ']' | '=' | '"') && !c.is_whitespace() && !c.is_control())
}

fn json_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

impl fmt::Display for Seg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seg::Key(k) if is_simple_key(k) => f.write_str(k),
            Seg::Key(k) => write!(f, "[{}]", json_quote(k)),
            Seg::Index(i) => write!(f, "[{i}]"),
            Seg::Match { key, value } => {
                let part = |s: &str| {
                    if is_bare_match_part(s) {
                        s.to_string()
                    } else {
                        json_quote(s)
                    }
                };
                write!(f, "[{}={}]", part(key), part(value))
            }
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            if i > 0 && matches!(seg, Seg::Key(k) if is_simple_key(k)) {
                f.write_str(".")?;
            }
            write!(f, "{seg}")?;
        }
        Ok(())
    }
}

impl FromStr for FieldPath {
    type Err = YamlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldPath::parse(s)
    }
}

/// A tiny cursor over a field path string.
struct PathReader<'a> {
    input: &'a str,
    pos: usize,
}

impl PathReader<'_> {
    fn err(&self, message: impl Into<String>) -> YamlError {
        YamlError::BadPath {
            input: self.input.to_string(),
            message: message.into(),
        }
    }

    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// A bare key after a dot (or at the start): up to the next `.` or `[`.
    fn bare_key(&mut self) -> Result<String, YamlError> {
        let rest = self.rest();
        let len = rest.find(['.', '[', ']', '"']).unwrap_or(rest.len());
        let key = rest[..len].to_string();
        if key.is_empty() {
            return Err(self.err(format!("empty key at character {}", self.pos + 1)));
        }
        if key.chars().any(|c| c.is_whitespace() || c == '=') {
            return Err(self.err(format!(
                "key {key:?} must be quoted: write [{}]",
                json_quote(&key)
            )));
        }
        self.pos += len;
        Ok(key)
    }

    /// A quoted string (`"..."` with JSON escapes, or `'...'` with `''` for a quote).
    fn quoted(&mut self) -> Result<String, YamlError> {
        let start = self.pos;
        match self.bump() {
            Some('"') => {
                let mut escaped = false;
                loop {
                    match self.bump() {
                        None => return Err(self.err("unterminated \"...\" string")),
                        Some('\\') if !escaped => escaped = true,
                        Some('"') if !escaped => break,
                        Some(_) => escaped = false,
                    }
                }
                serde_json::from_str::<String>(&self.input[start..self.pos])
                    .map_err(|e| self.err(format!("bad quoted string: {e}")))
            }
            Some('\'') => {
                let mut out = String::new();
                loop {
                    match self.bump() {
                        None => return Err(self.err("unterminated '...' string")),
                        Some('\'') if self.peek() == Some('\'') => {
                            self.bump();
                            out.push('\'');
                        }
                        Some('\'') => break,
                        Some(c) => out.push(c),
                    }
                }
                Ok(out)
            }
            _ => Err(self.err("expected a quoted string")),
        }
    }

    /// One part of a bracket: a quoted string or bare text up to `=` or `]`.
    fn bracket_part(&mut self) -> Result<(String, bool), YamlError> {
        if matches!(self.peek(), Some('"' | '\'')) {
            return Ok((self.quoted()?, true));
        }
        let rest = self.rest();
        let len = rest.find(['=', ']']).unwrap_or(rest.len());
        let part = rest[..len].to_string();
        self.pos += len;
        Ok((part, false))
    }

    fn bracket(&mut self) -> Result<Seg, YamlError> {
        // The opening '[' is already consumed.
        let (first, quoted) = self.bracket_part()?;
        match self.bump() {
            Some(']') => {
                if quoted {
                    Ok(Seg::Key(first))
                } else if !first.is_empty() && first.chars().all(|c| c.is_ascii_digit()) {
                    first
                        .parse()
                        .map(Seg::Index)
                        .map_err(|_| self.err(format!("index {first} is too large")))
                } else {
                    Err(self.err(format!(
                        "[{first}] is neither an index, a quoted key nor key=value"
                    )))
                }
            }
            Some('=') => {
                if first.is_empty() {
                    return Err(self.err("empty key in [key=value]"));
                }
                let (value, _) = self.bracket_part()?;
                if self.bump() != Some(']') {
                    return Err(self.err("missing ']' after key=value"));
                }
                Ok(Seg::Match { key: first, value })
            }
            _ => Err(self.err("missing ']'")),
        }
    }
}

impl FieldPath {
    /// Parses the [`Display`](fmt::Display) form of a path, e.g.
    /// `spec.template.spec.containers[name=app].image` or
    /// `metadata.annotations["kubernetes.io/change-cause"]`. The empty string is the empty path.
    ///
    /// # Errors
    /// [`YamlError::BadPath`] when the text is not a valid path.
    pub fn parse(s: &str) -> Result<FieldPath, YamlError> {
        let mut r = PathReader { input: s, pos: 0 };
        let mut segs = Vec::new();
        while let Some(c) = r.peek() {
            match c {
                '[' => {
                    r.bump();
                    segs.push(r.bracket()?);
                }
                '.' if !segs.is_empty() => {
                    r.bump();
                    if r.peek() == Some('[') {
                        r.bump();
                        segs.push(r.bracket()?);
                    } else {
                        segs.push(Seg::Key(r.bare_key()?));
                    }
                }
                _ if segs.is_empty() => segs.push(Seg::Key(r.bare_key()?)),
                _ => {
                    return Err(r.err(format!(
                        "unexpected {c:?} at character {}: expected '.' or '['",
                        r.pos + 1
                    )));
                }
            }
        }
        Ok(FieldPath(segs))
    }

    /// The path made of the first `n` segments, displayed ("the document root" when empty).
    fn prefix(&self, n: usize) -> String {
        if n == 0 {
            "the document root".to_string()
        } else {
            FieldPath(self.0[..n].to_vec()).to_string()
        }
    }
}

impl From<Vec<Seg>> for FieldPath {
    fn from(segs: Vec<Seg>) -> Self {
        FieldPath(segs)
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax tree with byte spans
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Kind {
    Scalar {
        value: String,
        style: ScalarStyle,
    },
    Alias,
    Map {
        entries: Vec<(Node, Node)>,
        flow: bool,
    },
    Seq {
        items: Vec<Node>,
        flow: bool,
    },
}

/// A node of a document, with byte offsets into the text.
#[derive(Debug)]
struct Node {
    kind: Kind,
    anchor: bool,
    tag: Option<String>,
    /// Byte offset of the node's first character (for block mappings: of the first key).
    start: usize,
    /// Byte offset just past the node (for block collections: past their last content).
    end: usize,
    /// 1-based line of `start`.
    line: usize,
    /// 0-based column (in characters) of `start`.
    col: usize,
}

impl Node {
    fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { .. } => "a single value",
            Kind::Alias => "an alias",
            Kind::Map { .. } => "a mapping",
            Kind::Seq { .. } => "a sequence",
        }
    }

    fn is_flow(&self) -> bool {
        matches!(
            self.kind,
            Kind::Map { flow: true, .. } | Kind::Seq { flow: true, .. }
        )
    }

    /// A plain, untagged, empty scalar: an implicit null (`key:` with nothing after it).
    fn is_implicit_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, style: ScalarStyle::Plain } if value.is_empty())
            && self.tag.is_none()
    }

    fn scalar_text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    fn map_get(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.kind {
            Kind::Map { entries, .. } => entries
                .iter()
                .find(|(k, _)| k.scalar_text() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }
}

/// Converts the parser's character indices to byte offsets.
struct CharMap {
    offsets: Option<Vec<usize>>,
    len: usize,
}

impl CharMap {
    fn new(text: &str) -> CharMap {
        let offsets = if text.is_ascii() {
            None
        } else {
            Some(text.char_indices().map(|(b, _)| b).collect())
        };
        CharMap {
            offsets,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.offsets {
            None => char_index.min(self.len),
            Some(v) => v.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

/// Byte offset just past the closing quote of the quoted scalar whose opening quote `q` is the
/// first one at or after `from`.
fn quoted_end(text: &str, from: usize, q: char) -> Option<usize> {
    let open = from + text.get(from..)?.find(q)?;
    let mut chars = text[open + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        if q == '"' && c == '\\' {
            chars.next();
        } else if c == q {
            if q == '\'' && text[open + 1 + i + 1..].starts_with('\'') {
                chars.next();
            } else {
                return Some(open + 1 + i + 1);
            }
        }
    }
    None
}

enum Frame {
    Map {
        node: Node,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        /// Scalar keys seen so far, with their line (to report duplicates).
        seen: HashMap<String, usize>,
    },
    Seq {
        node: Node,
        items: Vec<Node>,
    },
}

struct Builder<'t> {
    text: &'t str,
    chars: CharMap,
    stack: Vec<Frame>,
    root: Option<Node>,
}

impl Builder<'_> {
    fn node(&self, kind: Kind, span: Span, anchor: usize, tag: Option<String>) -> Node {
        let start = self.chars.byte(span.start.index());
        let mut end = self.chars.byte(span.end.index());
        if let Kind::Scalar { style, .. } = &kind {
            // The parser's span of a quoted scalar may run over trailing blanks and a comment
            // on the same line: find the closing quote ourselves.
            let quote = match style {
                ScalarStyle::SingleQuoted => Some('\''),
                ScalarStyle::DoubleQuoted => Some('"'),
                _ => None,
            };
            if let Some(close) = quote.and_then(|q| quoted_end(self.text, start, q)) {
                end = close;
            }
        }
        Node {
            kind,
            anchor: anchor != 0,
            tag,
            start,
            end,
            line: span.start.line(),
            col: span.start.col(),
        }
    }

    fn complete(&mut self, node: Node) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries, key, seen, ..
            }) => match key.take() {
                None => {
                    if let Some(k) = node.scalar_text() {
                        if let Some(first) = seen.get(k) {
                            return Err(YamlError::Parse {
                                line: node.line,
                                col: node.col + 1,
                                message: format!(
                                    "duplicate key {k:?} (first defined at line {first})"
                                ),
                            });
                        }
                        seen.insert(k.to_string(), node.line);
                    }
                    *key = Some(node);
                }
                Some(k) => {
                    let mut v = node;
                    if v.is_implicit_null() {
                        // The parser places empty values at odd spots (the next token); anchor
                        // them right after their key instead.
                        v.start = k.end;
                        v.end = k.end;
                        v.line = k.line;
                        v.col = k.col + self.text[k.start..k.end].chars().count();
                    }
                    entries.push((k, v));
                }
            },
        }
        Ok(())
    }

    /// Opens a collection; `opener` is `{` or `[` (used to tell flow from block style).
    fn open(&self, span: Span, anchor: usize, tag: Option<String>, opener: char) -> Node {
        let end = self.chars.byte(span.end.index());
        let flow = self.text[..end].ends_with(opener);
        let start = if flow { end - 1 } else { end };
        // The opener (flow) or the first key (block) is at or just before the span's end.
        let (line, col) = (
            span.end.line(),
            span.end.col().saturating_sub(usize::from(flow)),
        );
        let kind = if opener == '{' {
            Kind::Map {
                entries: Vec::new(),
                flow,
            }
        } else {
            Kind::Seq {
                items: Vec::new(),
                flow,
            }
        };
        Node {
            kind,
            anchor: anchor != 0,
            tag,
            start,
            end,
            line,
            col,
        }
    }

    fn close(&mut self, span: Span) -> Option<Node> {
        let (mut node, last_end, first) = match self.stack.pop()? {
            Frame::Map {
                mut node,
                entries,
                key,
                ..
            } => {
                let last_end = entries
                    .last()
                    .map(|(k, v)| k.end.max(v.end))
                    .or(key.as_ref().map(|k| k.end));
                let first = entries.first().map(|(k, _)| (k.start, k.line, k.col));
                if let Kind::Map { entries: e, .. } = &mut node.kind {
                    *e = entries;
                }
                (node, last_end, first)
            }
            Frame::Seq { mut node, items } => {
                let last_end = items.last().map(|n| n.end);
                if let Kind::Seq { items: i, .. } = &mut node.kind {
                    *i = items;
                }
                (node, last_end, None)
            }
        };
        if node.is_flow() {
            node.end = self.chars.byte(span.end.index());
        } else {
            if let Some((start, line, col)) = first {
                (node.start, node.line, node.col) = (start, line, col);
            }
            node.end = last_end.unwrap_or(node.start);
        }
        Some(node)
    }
}

fn tag_string(tag: Option<&saphyr_parser::Tag>) -> Option<String> {
    tag.map(|t| format!("{}{}", t.handle, t.suffix))
}

/// Parses every document of `text` (documents without content are implicit-null scalars).
fn parse_docs(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut b = Builder {
        text,
        chars: CharMap::new(text),
        stack: Vec::new(),
        root: None,
    };
    let mut docs = Vec::new();
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| YamlError::Parse {
            line: e.marker().line(),
            col: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        match event {
            Event::DocumentStart(_) => b.root = None,
            Event::DocumentEnd => {
                let root = b.root.take().unwrap_or_else(|| {
                    let start = b.chars.byte(span.start.index());
                    let (line, col) = (span.start.line(), span.start.col());
                    Node {
                        kind: Kind::Scalar {
                            value: String::new(),
                            style: ScalarStyle::Plain,
                        },
                        anchor: false,
                        tag: None,
                        start,
                        end: start,
                        line,
                        col,
                    }
                });
                docs.push(root);
            }
            Event::Scalar(value, style, anchor, tag) => {
                let node = b.node(
                    Kind::Scalar {
                        value: value.into_owned(),
                        style,
                    },
                    span,
                    anchor,
                    tag_string(tag.as_deref()),
                );
                b.complete(node)?;
            }
            Event::Alias(_) => {
                let node = b.node(Kind::Alias, span, 0, None);
                b.complete(node)?;
            }
            Event::MappingStart(anchor, tag) => {
                let node = b.open(span, anchor, tag_string(tag.as_deref()), '{');
                b.stack.push(Frame::Map {
                    node,
                    entries: Vec::new(),
                    key: None,
                    seen: HashMap::new(),
                });
            }
            Event::SequenceStart(anchor, tag) => {
                let node = b.open(span, anchor, tag_string(tag.as_deref()), '[');
                b.stack.push(Frame::Seq {
                    node,
                    items: Vec::new(),
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(node) = b.close(span) {
                    b.complete(node)?;
                }
            }
            Event::StreamEnd => break,
            Event::StreamStart | Event::Nothing => {}
        }
    }
    Ok(docs)
}

fn doc_root(docs: &[Node], doc: usize) -> Result<&Node, YamlError> {
    docs.get(doc).ok_or(YamlError::NoDocument {
        doc,
        count: docs.len(),
    })
}

// ---------------------------------------------------------------------------------------------
// Typing scalars (YAML 1.2 core schema)
// ---------------------------------------------------------------------------------------------

fn is_core_int(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        || s.strip_prefix("0o")
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        || s.strip_prefix("0x")
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_core_float(s: &str) -> bool {
    // [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && all_digits(frac),
        Some((int, frac)) => !int.is_empty() && all_digits(int) && all_digits(frac),
        None => !mantissa.is_empty() && all_digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok
}

fn json_float(f: f64, raw: &str) -> Json {
    serde_json::Number::from_f64(f).map_or_else(|| Json::String(raw.to_string()), Json::Number)
}

/// Types a plain scalar as the YAML 1.2 core schema does.
fn resolve_plain(s: &str) -> Json {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Json::Null,
        "true" | "True" | "TRUE" => return Json::Bool(true),
        "false" | "False" | "FALSE" => return Json::Bool(false),
        _ => {}
    }
    if is_core_int(s) {
        let parsed = if let Some(oct) = s.strip_prefix("0o") {
            u64::from_str_radix(oct, 8).ok().map(Json::from)
        } else if let Some(hex) = s.strip_prefix("0x") {
            u64::from_str_radix(hex, 16).ok().map(Json::from)
        } else {
            let unsigned = s.strip_prefix('+').unwrap_or(s);
            unsigned
                .parse::<i64>()
                .ok()
                .map(Json::from)
                .or_else(|| unsigned.parse::<u64>().ok().map(Json::from))
        };
        return parsed.unwrap_or_else(|| json_float(s.parse().unwrap_or(f64::NAN), s));
    }
    if is_core_float(s) {
        return json_float(s.parse().unwrap_or(f64::NAN), s);
    }
    // Everything else is a string, and so are `.inf`/`.nan` here: JSON has no such numbers.
    Json::String(s.to_string())
}

/// `.inf`, `-.inf`, `.nan` and their case variants: floats in YAML, not representable in JSON.
fn is_special_float(s: &str) -> bool {
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN")
}

fn typed_value(node: &Node) -> Json {
    let Kind::Scalar { value, style } = &node.kind else {
        return Json::Null;
    };
    let core_tag = node
        .tag
        .as_deref()
        .and_then(|t| t.strip_prefix("tag:yaml.org,2002:"));
    match (style, core_tag, &node.tag) {
        (_, Some("str"), _) => Json::String(value.clone()),
        (_, Some("int" | "float" | "bool" | "null"), _) => resolve_plain(value),
        (_, _, Some(_)) => Json::String(value.clone()),
        (ScalarStyle::Plain, _, None) => resolve_plain(value),
        _ => Json::String(value.clone()),
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering scalars
// ---------------------------------------------------------------------------------------------

fn is_break_or_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}')
}

/// Whether a string could be read as something other than a string by a YAML 1.1 reader
/// (Kubernetes' own YAML library) even when YAML 1.2 reads it as a string.
fn yaml11_special(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "yes", "n", "no", "on", "off", "true", "false", "null", "~",
    ];
    if WORDS.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        return true;
    }
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    let compact = unsigned.replace('_', "");
    if compact.parse::<f64>().is_ok() {
        return true;
    }
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(r) = compact.strip_prefix(prefix)
            && u64::from_str_radix(r, radix).is_ok()
        {
            return true;
        }
    }
    // Sexagesimal numbers (1:30) and timestamps (2024-01-31).
    let starts_with_digit = unsigned.starts_with(|c: char| c.is_ascii_digit());
    if starts_with_digit
        && unsigned.contains(':')
        && unsigned
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ':' | '.' | '_'))
    {
        return true;
    }
    let b = s.as_bytes();
    b.len() >= 8 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[5].is_ascii_digit()
}

/// Whether `s` can be written as a plain scalar and read back as the same string.
fn plain_ok(s: &str, in_flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.trim() != s
        || s.starts_with("---")
        || s.starts_with("...")
        || "?:,[]{}#&*!|>'\"%@`".contains(first)
        || (first == '-' && s.chars().nth(1).is_none_or(char::is_whitespace))
        || s.chars().any(is_break_or_control)
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || (in_flow && s.contains([',', '[', ']', '{', '}', ':']))
    {
        return false;
    }
    if !matches!(resolve_plain(s), Json::String(_)) || is_special_float(s) || yaml11_special(s) {
        return false;
    }
    matches!(serde_yaml::from_str::<YValue>(s), Ok(YValue::String(t)) if t == s)
}

fn double_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if is_break_or_control(c) => {
                let n = u32::from(c);
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{n:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn single_quote(s: &str) -> Option<String> {
    if s.chars().any(is_break_or_control) {
        return None;
    }
    Some(format!("'{}'", s.replace('\'', "''")))
}

/// Renders `value` for a scalar previously written in `style`.
fn render(
    value: &Json,
    style: ScalarStyle,
    in_flow: bool,
    path: &FieldPath,
) -> Result<String, YamlError> {
    match value {
        Json::Null => Ok("null".to_string()),
        Json::Bool(b) => Ok(b.to_string()),
        Json::Number(n) => Ok(n.to_string()),
        Json::String(s) => Ok(match style {
            ScalarStyle::SingleQuoted => single_quote(s).unwrap_or_else(|| double_quote(s)),
            ScalarStyle::Plain if plain_ok(s, in_flow) => s.clone(),
            _ => double_quote(s),
        }),
        Json::Array(_) | Json::Object(_) => Err(YamlError::BadValue {
            path: path.to_string(),
            message: "only a single value (string, number, bool or null) can be written, not a \
                      list or an object"
                .to_string(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Navigation
// ---------------------------------------------------------------------------------------------

enum Nav<'n> {
    /// The node at the path.
    Found {
        node: &'n Node,
        key: Option<&'n Node>,
        in_flow: bool,
    },
    /// `path[at]` does not exist in `parent` (`parent_key` is the key whose value it is).
    Missing {
        parent: &'n Node,
        parent_key: Option<&'n Node>,
        at: usize,
        reason: String,
    },
}

struct Walk<'n> {
    nav: Nav<'n>,
    /// 1-based line of the first anchored node met on the way (target included).
    anchor_line: Option<usize>,
}

fn seg_noun(seg: &Seg) -> String {
    match seg {
        Seg::Key(k) => format!("key {k:?}"),
        Seg::Index(i) => format!("item [{i}]"),
        Seg::Match { key, value } => format!("item with {key}={value}"),
    }
}

fn navigate<'n>(root: &'n Node, path: &FieldPath) -> Result<Walk<'n>, YamlError> {
    let mut cur = root;
    let mut cur_key: Option<&Node> = None;
    let mut in_flow = false;
    let mut anchor_line = None;
    for (i, seg) in path.0.iter().enumerate() {
        if cur.anchor {
            anchor_line.get_or_insert(cur.line);
        }
        in_flow |= cur.is_flow();
        let here = path.prefix(i);
        // Point at the key line (`spec:`) rather than at the first child.
        let line = cur_key.map_or(cur.line, |k| k.line);
        let missing = |reason: String| Walk {
            nav: Nav::Missing {
                parent: cur,
                parent_key: cur_key,
                at: i,
                reason,
            },
            anchor_line,
        };
        match (seg, &cur.kind) {
            (_, Kind::Alias) => {
                return Err(YamlError::Unsupported(format!(
                    "{path}: {here} (line {}) is an alias (*name) of content defined elsewhere; \
                     edit the anchored original by hand",
                    line
                )));
            }
            (Seg::Key(k), Kind::Map { entries, .. }) => {
                match entries.iter().find(|(kn, _)| kn.scalar_text() == Some(k)) {
                    Some((kn, vn)) => {
                        cur_key = Some(kn);
                        cur = vn;
                    }
                    None => {
                        let keys: Vec<&str> = entries
                            .iter()
                            .filter_map(|(k, _)| k.scalar_text())
                            .collect();
                        let has = if keys.is_empty() {
                            "it is empty".to_string()
                        } else {
                            format!("it has: {}", keys.join(", "))
                        };
                        return Ok(missing(format!(
                            "no key {k:?} in {here} (line {}); {has}",
                            line
                        )));
                    }
                }
            }
            (Seg::Key(k), Kind::Scalar { .. }) if cur.is_implicit_null() => {
                return Ok(missing(format!(
                    "no key {k:?}: {here} (line {}) is empty",
                    line
                )));
            }
            (Seg::Index(n), Kind::Seq { items, .. }) => match items.get(*n) {
                Some(item) => {
                    cur_key = None;
                    cur = item;
                }
                None => {
                    return Ok(missing(format!(
                        "{here} (line {}) has only {} item(s)",
                        line,
                        items.len()
                    )));
                }
            },
            (Seg::Match { key, value }, Kind::Seq { items, .. }) => {
                let found = items.iter().find(|item| {
                    item.map_get(key)
                        .and_then(|(_, v)| v.scalar_text())
                        .is_some_and(|v| v == value)
                });
                match found {
                    Some(item) => {
                        cur_key = None;
                        cur = item;
                    }
                    None => {
                        let list = match i.checked_sub(1).map(|j| &path.0[j]) {
                            Some(Seg::Key(k)) => k.clone(),
                            _ => here.clone(),
                        };
                        let existing: Vec<&str> = items
                            .iter()
                            .filter_map(|item| item.map_get(key).and_then(|(_, v)| v.scalar_text()))
                            .collect();
                        let there = if existing.is_empty() {
                            format!("no item there has a {key:?} key")
                        } else {
                            format!("there are: {}", existing.join(", "))
                        };
                        return Ok(missing(format!(
                            "no {list} item with {key}={value} (list at line {}); {there}",
                            line
                        )));
                    }
                }
            }
            (seg, _) => {
                return Err(YamlError::NotFound {
                    path: path.to_string(),
                    detail: format!(
                        "{here} (line {}) is {}, so it has no {}",
                        line,
                        cur.describe(),
                        seg_noun(seg)
                    ),
                });
            }
        }
    }
    if cur.anchor {
        anchor_line.get_or_insert(cur.line);
    }
    if matches!(cur.kind, Kind::Alias) {
        return Err(YamlError::Unsupported(format!(
            "{path} (line {}) is an alias (*name) of a value defined elsewhere; edit the anchored \
             original by hand",
            cur.line
        )));
    }
    Ok(Walk {
        nav: Nav::Found {
            node: cur,
            key: cur_key,
            in_flow,
        },
        anchor_line,
    })
}

// ---------------------------------------------------------------------------------------------
// Public read API
// ---------------------------------------------------------------------------------------------

/// The index of the first document of `text` (a possibly multi-document, `---`-separated file)
/// whose top-level `kind` is `kind` (compared ignoring ASCII case) and whose `metadata.name` is
/// `name`. Empty documents and documents that are not mappings are skipped.
///
/// # Errors
/// [`YamlError::Parse`] when the file is not valid YAML.
pub fn find_object(text: &str, kind: &str, name: &str) -> Result<Option<usize>, YamlError> {
    let docs = parse_docs(text)?;
    Ok(docs.iter().position(|root| {
        let kind_ok = root
            .map_get("kind")
            .and_then(|(_, v)| v.scalar_text())
            .is_some_and(|k| k.eq_ignore_ascii_case(kind));
        let name_ok = root
            .map_get("metadata")
            .and_then(|(_, m)| m.map_get("name"))
            .and_then(|(_, v)| v.scalar_text())
            .is_some_and(|n| n == name);
        kind_ok && name_ok
    }))
}

/// The scalar at `path` in document `doc` (0-based) of `text`; `None` when a key or list item
/// on the path is absent.
///
/// # Errors
/// [`YamlError::Parse`] for invalid YAML, [`YamlError::NoDocument`] for a bad `doc`,
/// [`YamlError::NotFound`] when the path crosses a value of the wrong shape (e.g. a key under a
/// string), [`YamlError::NotScalar`] when the path leads to a mapping or sequence, and
/// [`YamlError::Unsupported`] when it goes through an alias.
pub fn get(text: &str, doc: usize, path: &FieldPath) -> Result<Option<Scalar>, YamlError> {
    let docs = parse_docs(text)?;
    let root = doc_root(&docs, doc)?;
    let walk = navigate(root, path)?;
    let Nav::Found { node, key, .. } = walk.nav else {
        return Ok(None);
    };
    if !matches!(node.kind, Kind::Scalar { .. }) {
        return Err(YamlError::NotScalar {
            path: path.to_string(),
            line: key.map_or(node.line, |k| k.line),
            found: node.describe().to_string(),
        });
    }
    Ok(Some(Scalar {
        value: typed_value(node),
        raw: text[node.start..node.end].to_string(),
        line: node.line,
        col: node.col + 1,
    }))
}

/// Converts operator input to a value of the same type as `old` (e.g. the `value` of a
/// [`Scalar`] read with [`get`]): a string stays a string even if it looks like a number
/// (`"25"` for a quoted annotation), a number stays a number when `input` is one, a bool stays a
/// bool. Without an old value (or when `input` does not fit the old type) the input is typed
/// like a plain YAML scalar would be.
#[must_use]
pub fn value_like(old: Option<&Json>, input: &str) -> Json {
    match old {
        Some(Json::String(_)) => Json::String(input.to_string()),
        Some(Json::Number(_)) => match resolve_plain(input) {
            n @ Json::Number(_) => n,
            _ => Json::String(input.to_string()),
        },
        Some(Json::Bool(_)) => match input {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            _ => Json::String(input.to_string()),
        },
        _ => match resolve_plain(input) {
            v @ (Json::Number(_) | Json::Bool(_)) => v,
            _ => Json::String(input.to_string()),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Editing
// ---------------------------------------------------------------------------------------------

/// The innermost last node of a block collection (where its text ends).
fn last_leaf(node: &Node) -> &Node {
    match &node.kind {
        Kind::Map {
            entries,
            flow: false,
        } => entries.last().map_or(node, |(_, v)| last_leaf(v)),
        Kind::Seq { items, flow: false } => items.last().map_or(node, last_leaf),
        _ => node,
    }
}

/// The most common indentation step of block mappings nested in block mappings (default 2).
fn indent_step(root: &Node) -> usize {
    fn walk(node: &Node, counts: &mut BTreeMap<usize, usize>) {
        match &node.kind {
            Kind::Map {
                entries,
                flow: false,
            } => {
                for (k, v) in entries {
                    if let Kind::Map {
                        entries: inner,
                        flow: false,
                    } = &v.kind
                        && let Some((first, _)) = inner.first()
                        && first.col > k.col
                        && first.line > k.line
                    {
                        *counts.entry(first.col - k.col).or_default() += 1;
                    }
                    walk(v, counts);
                }
            }
            Kind::Seq { items, flow: false } => items.iter().for_each(|i| walk(i, counts)),
            _ => {}
        }
    }
    let mut counts = BTreeMap::new();
    walk(root, &mut counts);
    counts
        .into_iter()
        .max_by_key(|&(step, n)| (n, Reverse(step)))
        .map_or(2, |(step, _)| step)
}

/// Byte offset of the start of the line after the one containing `pos`; `None` at the last
/// line when the file does not end with a newline.
fn next_line_start(text: &str, pos: usize) -> Option<usize> {
    text[pos..].find('\n').map(|i| pos + i + 1)
}

/// Where to insert new lines after `node` (the last leaf of a block mapping): the byte offset,
/// and whether a newline must be written first (end of file without a final newline).
fn insertion_point(text: &str, node: &Node) -> Result<(usize, bool), YamlError> {
    let end = node.end.min(text.len());
    let block = matches!(
        node.kind,
        Kind::Scalar {
            style: ScalarStyle::Literal | ScalarStyle::Folded,
            ..
        }
    );
    if block {
        // A block scalar's span ends on the next content line (after its indentation).
        let line_start = text[..end].rfind('\n').map_or(0, |i| i + 1);
        if text[line_start..end].chars().all(|c| c == ' ' || c == '\t') && line_start > 0 {
            return Ok((line_start, false));
        }
    }
    match next_line_start(text, end) {
        Some(p) => Ok((p, false)),
        None if block => Err(YamlError::Unsupported(format!(
            "the block scalar (| or >) at line {} ends the file without a final newline: a line \
             added after it would change its value; add a newline at the end of the file first",
            node.line
        ))),
        None => Ok((text.len(), true)),
    }
}

fn render_key(key: &str) -> String {
    if plain_ok(key, false) {
        key.to_string()
    } else {
        double_quote(key)
    }
}

/// Sets the scalar at `path` in document `doc` (0-based) of `text` to `value` (a string, number,
/// bool or null), changing nothing else in the file.
///
/// An existing scalar is replaced in place, keeping its quoting style when the value allows it:
/// a plain value that would read back as another type (`"25"`, `"true"`, `""`) gets
/// double-quoted; numbers, bools and null are always written plain, so the written value has
/// exactly the JSON type of `value`. When the last keys of the path do not exist, they are
/// inserted after the last entry of the nearest existing block mapping, at its children's
/// indentation (nested mappings use the file's indentation step).
///
/// # Errors
/// [`YamlError::Parse`] for invalid YAML; [`YamlError::NoDocument`]; [`YamlError::NotFound`]
/// for a missing list item (naming the existing ones) or a path through a value of the wrong
/// shape; [`YamlError::NotScalar`] when the target is a mapping or a sequence;
/// [`YamlError::Unsupported`] for block-scalar, tagged, anchored or aliased targets and for
/// insertions into flow collections; [`YamlError::BadValue`] for an array/object value;
/// [`YamlError::Verify`] when the cross-check finds that the edit would change anything else.
pub fn set(text: &str, doc: usize, path: &FieldPath, value: &Json) -> Result<Edit, YamlError> {
    if matches!(value, Json::Array(_) | Json::Object(_)) {
        return Err(YamlError::BadValue {
            path: path.to_string(),
            message: "only a single value (string, number, bool or null) can be written, not a \
                      list or an object"
                .to_string(),
        });
    }
    let docs = parse_docs(text)?;
    let root = doc_root(&docs, doc)?;
    let walk = navigate(root, path)?;
    if let Some(line) = walk.anchor_line {
        return Err(YamlError::Unsupported(format!(
            "{path}: the value or one of its parents carries an anchor (&name) at line {line} \
             that aliases (*name) elsewhere may share; edit it by hand"
        )));
    }
    let edit = match walk.nav {
        Nav::Found { node, key, in_flow } => replace(text, path, node, key, in_flow, value)?,
        Nav::Missing {
            parent,
            parent_key,
            at,
            reason,
        } => {
            let keys: Option<Vec<&str>> = path.0[at..]
                .iter()
                .map(|s| match s {
                    Seg::Key(k) => Some(k.as_str()),
                    _ => None,
                })
                .collect();
            let Some(keys) = keys else {
                return Err(YamlError::NotFound {
                    path: path.to_string(),
                    detail: reason,
                });
            };
            insert(text, root, path, parent, parent_key, at, &keys, value)?
        }
    };
    verify(text, &edit.text, docs.len(), doc, path, value)?;
    Ok(edit)
}

fn replace(
    text: &str,
    path: &FieldPath,
    node: &Node,
    key: Option<&Node>,
    in_flow: bool,
    value: &Json,
) -> Result<Edit, YamlError> {
    let Kind::Scalar { style, .. } = &node.kind else {
        return Err(YamlError::NotScalar {
            path: path.to_string(),
            line: key.map_or(node.line, |k| k.line),
            found: node.describe().to_string(),
        });
    };
    if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
        return Err(YamlError::Unsupported(format!(
            "{path} (line {}) is a block scalar (| or >); edit it by hand",
            key.map_or(node.line, |k| k.line)
        )));
    }
    if let Some(tag) = &node.tag {
        return Err(YamlError::Unsupported(format!(
            "{path} (line {}) carries an explicit tag ({tag}); edit it by hand",
            node.line
        )));
    }
    let old = typed_value(node);
    let rendered = render(value, *style, in_flow, path)?;
    let (start, end, new) = if node.is_implicit_null() {
        // `key:` with nothing after it: write ` value` right after the colon.
        let Some(key) = key else {
            return Err(YamlError::Unsupported(format!(
                "{path} (line {}) is an empty list item; edit it by hand",
                node.line
            )));
        };
        let after_key = &text[key.end..];
        let colon = after_key
            .find(|c: char| c != ' ' && c != '\t')
            .filter(|&i| after_key[i..].starts_with(':'));
        let Some(colon) = colon else {
            return Err(YamlError::Unsupported(format!(
                "{path} (line {}): cannot locate the ':' after the key",
                node.line
            )));
        };
        let at = key.end + colon + 1;
        (at, at, format!(" {rendered}"))
    } else {
        (node.start, node.end, rendered)
    };
    let mut out = String::with_capacity(text.len() + new.len());
    out.push_str(&text[..start]);
    out.push_str(&new);
    out.push_str(&text[end..]);
    Ok(Edit {
        text: out,
        line: node.line,
        old: Some(old),
    })
}

#[allow(clippy::too_many_arguments)]
fn insert(
    text: &str,
    root: &Node,
    path: &FieldPath,
    parent: &Node,
    parent_key: Option<&Node>,
    at: usize,
    keys: &[&str],
    value: &Json,
) -> Result<Edit, YamlError> {
    let here = path.prefix(at);
    let step = indent_step(root);
    let line = parent_key.map_or(parent.line, |k| k.line);
    let (indent, (pos, lead_newline)) = match &parent.kind {
        Kind::Map { flow: true, .. } => {
            return Err(YamlError::Unsupported(format!(
                "{path}: {here} (line {}) is written in flow style ({{...}}); rewrite it as a \
                 block mapping (one key per line) to let keys be added",
                line
            )));
        }
        Kind::Map { entries, .. } => {
            let Some((first, _)) = entries.first() else {
                return Err(YamlError::Unsupported(format!(
                    "{path}: {here} (line {}) is an empty mapping",
                    line
                )));
            };
            (first.col, insertion_point(text, last_leaf(parent))?)
        }
        Kind::Scalar { .. } if parent.is_implicit_null() => {
            let Some(pk) = parent_key else {
                return Err(YamlError::Unsupported(format!(
                    "{path}: {here} is an empty document or list item"
                )));
            };
            let pos = match next_line_start(text, pk.end) {
                Some(p) => (p, false),
                None => (text.len(), true),
            };
            (pk.col + step, pos)
        }
        _ => {
            return Err(YamlError::NotFound {
                path: path.to_string(),
                detail: format!("{here} (line {}) is {}", line, parent.describe()),
            });
        }
    };
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let rendered = render(value, ScalarStyle::Plain, false, path)?;
    let mut block = String::new();
    if lead_newline {
        block.push_str(nl);
    }
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            block.push_str(nl);
        }
        block.push_str(&" ".repeat(indent + i * step));
        block.push_str(&render_key(key));
        block.push(':');
        if i + 1 == keys.len() {
            block.push(' ');
            block.push_str(&rendered);
        }
    }
    if !lead_newline {
        block.push_str(nl);
    }
    let line = text[..pos].matches('\n').count() + usize::from(lead_newline) + keys.len();
    let mut out = String::with_capacity(text.len() + block.len());
    out.push_str(&text[..pos]);
    out.push_str(&block);
    out.push_str(&text[pos..]);
    Ok(Edit {
        text: out,
        line,
        old: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Verification with an independent loader
// ---------------------------------------------------------------------------------------------

/// Loads every document with `serde_yaml` (stopping at the first error: its document iterator
/// never ends after one).
fn load_all(text: &str) -> Result<Vec<YValue>, serde_yaml::Error> {
    let mut docs = Vec::new();
    for de in serde_yaml::Deserializer::from_str(text) {
        docs.push(YValue::deserialize(de)?);
    }
    Ok(docs)
}

fn yaml_scalar_text(v: &YValue) -> Option<String> {
    match v {
        YValue::String(s) => Some(s.clone()),
        YValue::Number(n) => Some(n.to_string()),
        YValue::Bool(b) => Some(b.to_string()),
        YValue::Tagged(t) => yaml_scalar_text(&t.value),
        _ => None,
    }
}

fn untag(v: &YValue) -> &YValue {
    match v {
        YValue::Tagged(t) => untag(&t.value),
        v => v,
    }
}

fn untag_mut(v: &mut YValue) -> &mut YValue {
    match v {
        YValue::Tagged(t) => untag_mut(&mut t.value),
        v => v,
    }
}

fn yaml_get<'v>(v: &'v YValue, segs: &[Seg]) -> Option<&'v YValue> {
    let Some((seg, rest)) = segs.split_first() else {
        return Some(v);
    };
    let next = match (seg, untag(v)) {
        (Seg::Key(k), YValue::Mapping(m)) => m
            .iter()
            .find(|(mk, _)| yaml_scalar_text(mk).as_deref() == Some(k))
            .map(|(_, mv)| mv),
        (Seg::Index(i), YValue::Sequence(s)) => s.get(*i),
        (Seg::Match { key, value }, YValue::Sequence(s)) => s.iter().find(|item| {
            yaml_get(item, &[Seg::Key(key.clone())])
                .and_then(yaml_scalar_text)
                .is_some_and(|t| &t == value)
        }),
        _ => None,
    }?;
    yaml_get(next, rest)
}

/// Applies the intended change to loaded data: sets the value, creating missing keys.
fn yaml_set(v: &mut YValue, segs: &[Seg], new: YValue) -> Result<(), String> {
    let Some((seg, rest)) = segs.split_first() else {
        *v = new;
        return Ok(());
    };
    let v = untag_mut(v);
    if v.is_null() && matches!(seg, Seg::Key(_)) {
        *v = YValue::Mapping(serde_yaml::Mapping::new());
    }
    let next = match (seg, v) {
        (Seg::Key(k), YValue::Mapping(m)) => {
            let existing = m
                .iter()
                .position(|(mk, _)| yaml_scalar_text(mk).as_deref() == Some(k));
            match existing {
                Some(i) => m.iter_mut().nth(i).map(|(_, mv)| mv),
                None => {
                    let fresh = if rest.is_empty() {
                        YValue::Null
                    } else {
                        YValue::Mapping(serde_yaml::Mapping::new())
                    };
                    m.insert(YValue::String(k.clone()), fresh);
                    m.get_mut(YValue::String(k.clone()))
                }
            }
        }
        (Seg::Index(i), YValue::Sequence(s)) => s.get_mut(*i),
        (Seg::Match { key, value }, YValue::Sequence(s)) => s.iter_mut().find(|item| {
            yaml_get(item, &[Seg::Key(key.clone())])
                .and_then(yaml_scalar_text)
                .is_some_and(|t| &t == value)
        }),
        _ => None,
    };
    match next {
        Some(n) => yaml_set(n, rest, new),
        None => Err(format!("{seg} does not exist in the loaded data")),
    }
}

/// Deep equality that also requires mapping keys in the same order.
fn same(a: &YValue, b: &YValue) -> bool {
    match (a, b) {
        (YValue::Mapping(x), YValue::Mapping(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((ka, va), (kb, vb))| same(ka, kb) && same(va, vb))
        }
        (YValue::Sequence(x), YValue::Sequence(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (YValue::Tagged(x), YValue::Tagged(y)) => x.tag == y.tag && same(&x.value, &y.value),
        _ => a == b,
    }
}

fn verify(
    original: &str,
    edited: &str,
    doc_count: usize,
    doc: usize,
    path: &FieldPath,
    value: &Json,
) -> Result<(), YamlError> {
    let before = load_all(original).map_err(|e| {
        let (line, col) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        YamlError::Parse {
            line,
            col,
            message: e.to_string(),
        }
    })?;
    let after = load_all(edited)
        .map_err(|e| YamlError::Verify(format!("the edited file would not load: {e}")))?;
    if before.len() != doc_count || after.len() != before.len() {
        return Err(YamlError::Verify(format!(
            "the file has {doc_count} document(s) but the loaders see {} before and {} after \
             the edit",
            before.len(),
            after.len()
        )));
    }
    let new = serde_yaml::to_value(value)
        .map_err(|e| YamlError::Verify(format!("cannot convert the value: {e}")))?;
    let mut expected = before;
    let target = expected.get_mut(doc).ok_or(YamlError::NoDocument {
        doc,
        count: doc_count,
    })?;
    yaml_set(target, &path.0, new.clone()).map_err(|e| {
        YamlError::Verify(format!(
            "{path}: cannot apply the change to the loaded data: {e}"
        ))
    })?;
    if let Some(i) = (0..after.len()).find(|&i| !same(&expected[i], &after[i])) {
        return Err(YamlError::Verify(format!(
            "the edit of {path} would change more than that field (document index {i} differs \
             from the expected result); the file was left untouched"
        )));
    }
    match yaml_get(&after[doc], &path.0) {
        Some(v) if same(v, &new) => Ok(()),
        other => Err(YamlError::Verify(format!(
            "{path} reads back as {} instead of the value written",
            other.map_or_else(|| "nothing".to_string(), |v| format!("{v:?}"))
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEPLOYMENT: &str = r#"# Checkout service: production deployment
# Managed by GitOps; edit through kockpit or a PR.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout   # the service name
  namespace: shop
  labels:
    app: checkout
    tier: backend
spec:
  replicas: 4 # scaled by the HPA anyway
  selector:
    matchLabels:
      app: checkout

  template:
    metadata:
      labels:
        app: checkout
      annotations:
        prometheus.io/scrape: "true"
    spec:
      # main container first
      containers:
        - name: app
          image: registry.example.com/shop/checkout:1.4.2 # pinned by release
          ports:
            - containerPort: 8080
              name: http
          env:
            - name: LOG_LEVEL
              value: info
        - name: sidecar
          image: registry.example.com/mesh/proxy:2.0.0
          args: ["--port", "15001"]
# end of file
"#;

    const MULTI: &str = r#"# Checkout: service, deployment and canary route.
# Generated once, then edited by hand.
---
apiVersion: v1
kind: Service
metadata:
  name: checkout
spec:
  selector:
    app: checkout
  ports:
    - port: 80
      targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: app
          image: registry.example.com/shop/checkout:1.4.2
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: checkout
spec:
  parentRefs:
    - name: public-gateway
  rules:
    - backendRefs:
        - name: checkout-stable
          port: 80
          weight: 90
        - name: checkout-canary # the canary
          port: 80
          weight: 10
"#;

    fn p(s: &str) -> FieldPath {
        FieldPath::parse(s).expect("valid path")
    }

    /// The lines that differ between two texts with the same number of lines.
    fn changed_lines(a: &str, b: &str) -> Vec<(usize, String, String)> {
        let (la, lb): (Vec<&str>, Vec<&str>) = (a.split('\n').collect(), b.split('\n').collect());
        assert_eq!(la.len(), lb.len(), "line count changed:\n{b}");
        la.iter()
            .zip(&lb)
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .map(|(i, (x, y))| (i + 1, (*x).to_string(), (*y).to_string()))
            .collect()
    }

    /// Lines present in `b` but not in `a`, when `b` only adds lines to `a`.
    fn added_lines(a: &str, b: &str) -> Vec<(usize, String)> {
        let la: Vec<&str> = a.split('\n').collect();
        let lb: Vec<&str> = b.split('\n').collect();
        let mut out = Vec::new();
        let mut i = 0;
        for (j, line) in lb.iter().enumerate() {
            if i < la.len() && la[i] == *line {
                i += 1;
            } else {
                out.push((j + 1, (*line).to_string()));
            }
        }
        assert_eq!(
            i,
            la.len(),
            "lines were changed or removed, not only added:\n{b}"
        );
        out
    }

    #[test]
    fn deployment_image_change_is_one_line() {
        let path = p("spec.template.spec.containers[name=app].image");
        let edit = set(
            DEPLOYMENT,
            0,
            &path,
            &json!("registry.example.com/shop/checkout:1.4.1"),
        )
        .unwrap();
        let changes = changed_lines(DEPLOYMENT, &edit.text);
        assert_eq!(
            changes,
            vec![(
                27,
                "          image: registry.example.com/shop/checkout:1.4.2 # pinned by release"
                    .to_string(),
                "          image: registry.example.com/shop/checkout:1.4.1 # pinned by release"
                    .to_string()
            )]
        );
        assert_eq!(edit.line, 27);
        assert_eq!(
            edit.old,
            Some(json!("registry.example.com/shop/checkout:1.4.2"))
        );
        for comment in [
            "# Checkout service",
            "# the service name",
            "# main container first",
            "# end of file",
        ] {
            assert!(edit.text.contains(comment), "{comment} lost");
        }
        let got = get(&edit.text, 0, &path).unwrap().unwrap();
        assert_eq!(got.value, json!("registry.example.com/shop/checkout:1.4.1"));
        assert_eq!((got.line, got.col), (27, 18));
        // The sidecar is untouched.
        let sidecar = get(
            &edit.text,
            0,
            &p("spec.template.spec.containers[name=sidecar].image"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(sidecar.raw, "registry.example.com/mesh/proxy:2.0.0");
    }

    #[test]
    fn multi_document_httproute_weight() {
        assert_eq!(
            find_object(MULTI, "HTTPRoute", "checkout").unwrap(),
            Some(2)
        );
        assert_eq!(
            find_object(MULTI, "Deployment", "checkout").unwrap(),
            Some(1)
        );
        assert_eq!(find_object(MULTI, "Service", "checkout").unwrap(), Some(0));
        assert_eq!(find_object(MULTI, "Service", "payments").unwrap(), None);
        let path = p("spec.rules[0].backendRefs[name=checkout-canary].weight");
        let edit = set(MULTI, 2, &path, &json!(25)).unwrap();
        assert_eq!(edit.old, Some(json!(10)));
        assert_eq!(edit.line, 41);
        let changes = changed_lines(MULTI, &edit.text);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].2, "          weight: 25");
        let before: Vec<&str> = MULTI.split("\n---\n").collect();
        let after: Vec<&str> = edit.text.split("\n---\n").collect();
        assert_eq!(before.len(), 4);
        assert_eq!(
            before[..3],
            after[..3],
            "other documents must be byte-identical"
        );
        assert_eq!(get(&edit.text, 2, &path).unwrap().unwrap().value, json!(25));
        let stable = get(&edit.text, 2, &p("spec.rules[0].backendRefs[0].weight")).unwrap();
        assert_eq!(stable.unwrap().value, json!(90));
    }

    #[test]
    fn ingress_annotations_keep_and_add_quotes() {
        let text = r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: checkout-canary
  annotations:
    nginx.ingress.kubernetes.io/canary: "true"
    "nginx.ingress.kubernetes.io/canary-weight": "10"
    kubernetes.io/change-cause: promote canary
spec:
  ingressClassName: nginx
"#;
        let weight = p(r#"metadata.annotations["nginx.ingress.kubernetes.io/canary-weight"]"#);
        let edit = set(text, 0, &weight, &json!("25")).unwrap();
        let changes = changed_lines(text, &edit.text);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].2,
            r#"    "nginx.ingress.kubernetes.io/canary-weight": "25""#
        );
        assert_eq!(edit.old, Some(json!("10")));

        let cause = p(r#"metadata.annotations["kubernetes.io/change-cause"]"#);
        let cases = [
            ("42", r#""42""#),
            ("true", r#""true""#),
            ("rollback to 1.4.1", "rollback to 1.4.1"),
            ("1.4", r#""1.4""#),
            ("say: hi", r#""say: hi""#),
        ];
        for (value, written) in cases {
            let edit = set(text, 0, &cause, &json!(value)).unwrap();
            let changes = changed_lines(text, &edit.text);
            assert_eq!(
                changes[0].2,
                format!("    kubernetes.io/change-cause: {written}"),
                "{value}"
            );
            assert_eq!(
                get(&edit.text, 0, &cause).unwrap().unwrap().value,
                json!(value)
            );
        }
    }

    #[test]
    fn service_selector_color() {
        let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: checkout\nspec:\n  selector:\n    app: checkout\n    color: blue   # blue/green switch\n  ports:\n  - port: 80\n";
        let edit = set(text, 0, &p("spec.selector.color"), &json!("green")).unwrap();
        assert_eq!(
            edit.text,
            text.replace("color: blue   #", "color: green   #")
        );
        assert_eq!(edit.line, 8);
        assert_eq!(edit.old, Some(json!("blue")));
    }

    #[test]
    fn insert_replicas_and_paused() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels:\n      app: web\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n\n# trailing comment\n";
        let edit = set(text, 0, &p("spec.replicas"), &json!(3)).unwrap();
        assert_eq!(
            added_lines(text, &edit.text),
            vec![(14, "  replicas: 3".to_string())]
        );
        assert_eq!(edit.line, 14);
        assert_eq!(edit.old, None);
        assert_eq!(
            get(&edit.text, 0, &p("spec.replicas"))
                .unwrap()
                .unwrap()
                .value,
            json!(3)
        );

        let edit = set(text, 0, &p("spec.paused"), &json!(true)).unwrap();
        assert_eq!(
            added_lines(text, &edit.text),
            vec![(14, "  paused: true".to_string())]
        );
        assert_eq!(
            get(&edit.text, 0, &p("spec.paused"))
                .unwrap()
                .unwrap()
                .value,
            json!(true)
        );
    }

    #[test]
    fn insert_into_four_space_map_creates_nested_mapping() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n    name: web\n    labels:\n        app: web\nspec:\n    replicas: 2\n";
        let path = p(r#"metadata.annotations["kubernetes.io/change-cause"]"#);
        let edit = set(text, 0, &path, &json!("kockpit rollback to 1.4.1")).unwrap();
        assert_eq!(
            added_lines(text, &edit.text),
            vec![
                (7, "    annotations:".to_string()),
                (
                    8,
                    "        kubernetes.io/change-cause: kockpit rollback to 1.4.1".to_string()
                ),
            ]
        );
        assert_eq!(edit.line, 8);
        assert_eq!(edit.old, None);
    }

    #[test]
    fn create_annotations_when_missing() {
        let path = p(r#"metadata.annotations["kubernetes.io/change-cause"]"#);
        let edit = set(DEPLOYMENT, 0, &path, &json!("rollback")).unwrap();
        assert_eq!(
            added_lines(DEPLOYMENT, &edit.text),
            vec![
                (11, "  annotations:".to_string()),
                (12, "    kubernetes.io/change-cause: rollback".to_string()),
            ]
        );
        assert_eq!(edit.line, 12);
    }

    #[test]
    fn insert_after_nested_content_of_last_entry() {
        // spec.template.spec's last entry (containers) ends with the sidecar's args line.
        let path = p("spec.template.spec.serviceAccountName");
        let edit = set(DEPLOYMENT, 0, &path, &json!("checkout")).unwrap();
        assert_eq!(
            added_lines(DEPLOYMENT, &edit.text),
            vec![(37, "      serviceAccountName: checkout".to_string())]
        );
        // Into a list item's mapping: after its nested env list.
        let path = p("spec.template.spec.containers[name=app].imagePullPolicy");
        let edit = set(DEPLOYMENT, 0, &path, &json!("IfNotPresent")).unwrap();
        assert_eq!(
            added_lines(DEPLOYMENT, &edit.text),
            vec![(34, "          imagePullPolicy: IfNotPresent".to_string())]
        );
        // Under an empty (implicit null) mapping.
        let text = "metadata:\n  name: web\n  annotations:\n  labels:\n    app: web\n";
        let edit = set(text, 0, &p("metadata.annotations.owner"), &json!("team-a")).unwrap();
        assert_eq!(
            added_lines(text, &edit.text),
            vec![(4, "    owner: team-a".to_string())]
        );
    }

    #[test]
    fn insert_after_block_scalar_and_at_eof_without_newline() {
        let text = "data:\n  script: |\n    echo hi\n    exit 0\n\nkind: ConfigMap\n";
        let edit = set(text, 0, &p("data.mode"), &json!("fast")).unwrap();
        assert!(
            edit.text
                .contains("    exit 0\n\n  mode: fast\nkind: ConfigMap\n"),
            "{}",
            edit.text
        );
        // A block scalar ending the file without a final newline would gain one (its value
        // changes from "x\ny" to "x\ny\n"): the cross-check refuses that edit.
        let text = "a:\n  b: |\n    x\n    y";
        let err = set(text, 0, &p("a.c"), &json!(1)).unwrap_err();
        assert!(
            matches!(err, YamlError::Unsupported(ref m) if m.contains("line 3")),
            "{err:?}"
        );
        let edit = set(text, 0, &p("d"), &json!(1));
        assert!(matches!(edit, Err(YamlError::Unsupported(_))), "{edit:?}");
        let text = "spec:\n  replicas: 1";
        let edit = set(text, 0, &p("spec.paused"), &json!(false)).unwrap();
        assert_eq!(edit.text, "spec:\n  replicas: 1\n  paused: false");
    }

    #[test]
    fn crlf_is_preserved() {
        let text =
            "kind: Deployment\r\nmetadata:\r\n  name: web # web\r\nspec:\r\n  replicas: 2\r\n";
        let edit = set(text, 0, &p("spec.replicas"), &json!(5)).unwrap();
        assert_eq!(edit.text, text.replace("replicas: 2", "replicas: 5"));
        let edit = set(text, 0, &p("metadata.labels.app"), &json!("web")).unwrap();
        assert_eq!(
            edit.text,
            "kind: Deployment\r\nmetadata:\r\n  name: web # web\r\n  labels:\r\n    app: web\r\nspec:\r\n  replicas: 2\r\n"
        );
        assert_eq!(edit.line, 5);
    }

    #[test]
    fn non_ascii_text_before_target() {
        let text = "\u{feff}# Größe — Ünïcödé ✓ 日本語\nkind: Deployment\nmetadata:\n  name: café # «prod»\n  labels:\n    owner: \"Zoë\"\nspec:\n  image: app:v1 # ✓ pinned\n";
        let edit = set(text, 0, &p("spec.image"), &json!("app:v2")).unwrap();
        assert_eq!(edit.text, text.replace("app:v1", "app:v2"));
        assert_eq!(edit.line, 8);
        let edit = set(text, 0, &p("metadata.labels.owner"), &json!("Zoë Ångström")).unwrap();
        assert_eq!(edit.text, text.replace("\"Zoë\"", "\"Zoë Ångström\""));
        let owner = get(text, 0, &p("metadata.labels.owner")).unwrap().unwrap();
        assert_eq!(
            (owner.raw.as_str(), owner.line, owner.col),
            ("\"Zoë\"", 6, 12)
        );
        assert_eq!(find_object(text, "Deployment", "café").unwrap(), Some(0));
        let edit = set(text, 0, &p("spec.tier"), &json!("gold")).unwrap();
        assert!(
            edit.text
                .ends_with("  image: app:v1 # ✓ pinned\n  tier: gold\n")
        );
    }

    #[test]
    fn explicit_document_markers() {
        let text = "# header\n---\nkind: A\nmetadata:\n  name: a\nvalue: 1\n...\n---\nkind: B\nmetadata:\n  name: b\nvalue: 2\n...\n";
        assert_eq!(find_object(text, "B", "b").unwrap(), Some(1));
        let edit = set(text, 1, &p("value"), &json!(3)).unwrap();
        assert_eq!(edit.text, text.replace("value: 2", "value: 3"));
        let edit = set(text, 0, &p("extra"), &json!("x")).unwrap();
        assert_eq!(
            edit.text,
            text.replace("value: 1\n...", "value: 1\nextra: x\n...")
        );
        // Empty documents are skipped but still counted.
        let text = "---\n# nothing here\n---\nkind: C\nmetadata:\n  name: c\n";
        assert_eq!(find_object(text, "c", "c").unwrap(), Some(1));
        assert!(get(text, 0, &p("kind")).unwrap().is_none());
    }

    #[test]
    fn trailing_comment_and_single_quotes() {
        let text = "spec:\n  image: 'app:v2'  # pinned\n  tag: 'v1'\n";
        let edit = set(text, 0, &p("spec.image"), &json!("app:v3")).unwrap();
        assert_eq!(
            edit.text,
            "spec:\n  image: 'app:v3'  # pinned\n  tag: 'v1'\n"
        );
        let edit = set(text, 0, &p("spec.tag"), &json!("it's")).unwrap();
        assert_eq!(
            edit.text,
            "spec:\n  image: 'app:v2'  # pinned\n  tag: 'it''s'\n"
        );
        let edit = set(text, 0, &p("spec.tag"), &json!("two\nlines")).unwrap();
        assert!(edit.text.contains("  tag: \"two\\nlines\"\n"));
        assert_eq!(
            get(&edit.text, 0, &p("spec.tag")).unwrap().unwrap().value,
            json!("two\nlines")
        );
    }

    #[test]
    fn double_quotes_are_escaped() {
        let text = "a: \"x\"\n";
        let edit = set(text, 0, &p("a"), &json!("say \"hi\" \\ bye\t!")).unwrap();
        assert_eq!(edit.text, "a: \"say \\\"hi\\\" \\\\ bye\\t!\"\n");
    }

    #[test]
    fn plain_values_are_quoted_when_they_would_change_type() {
        let text = "a: 10\nb: hello\n";
        for value in [
            "25",
            "true",
            "null",
            "1e3",
            "0x1F",
            "~",
            "",
            "yes",
            "Off",
            "0755",
            "1_000",
            "12:30",
            "2024-01-31",
            "-",
            "#tag",
            "*star",
            " padded",
            "a: b",
            "x #y",
            "@at",
            ".inf",
        ] {
            let edit = set(text, 0, &p("b"), &json!(value)).unwrap();
            let line = edit.text.lines().nth(1).unwrap().to_string();
            assert!(line.starts_with("b: \""), "{value:?} written as {line}");
            assert_eq!(
                get(&edit.text, 0, &p("b")).unwrap().unwrap().value,
                json!(value)
            );
        }
        for value in [
            "1.4.1",
            "v25",
            "app:v1",
            "http://example.com/x",
            "-flag",
            "a b c",
            "ünï",
        ] {
            let edit = set(text, 0, &p("b"), &json!(value)).unwrap();
            assert_eq!(edit.text, format!("a: 10\nb: {value}\n"));
        }
        // A number stays plain, even where a string was; a string where a number was is quoted.
        let edit = set(text, 0, &p("b"), &json!(2.5)).unwrap();
        assert_eq!(edit.text, "a: 10\nb: 2.5\n");
        let edit = set(text, 0, &p("a"), &json!("25")).unwrap();
        assert_eq!(edit.text, "a: \"25\"\nb: hello\n");
        let quoted = "a: \"10\"\n";
        let edit = set(quoted, 0, &p("a"), &json!(25)).unwrap();
        assert_eq!(edit.text, "a: 25\n");
    }

    #[test]
    fn flow_sequence_items() {
        let text = "args: [\"--port\", \"15001\"]\nhosts: [a.example.com, b.example.com]\n";
        let edit = set(text, 0, &p("args[1]"), &json!("15002")).unwrap();
        assert_eq!(edit.text, text.replace("15001", "15002"));
        let edit = set(text, 0, &p("hosts[0]"), &json!("c.example.com")).unwrap();
        assert_eq!(edit.text, text.replace("a.example.com", "c.example.com"));
        let edit = set(text, 0, &p("hosts[1]"), &json!("x,y")).unwrap();
        assert_eq!(edit.text, text.replace("b.example.com", "\"x,y\""));
    }

    #[test]
    fn implicit_null_target() {
        let text = "spec:\n  paused:   # set me\n  replicas: 1\n";
        let edit = set(text, 0, &p("spec.paused"), &json!(true)).unwrap();
        assert_eq!(
            edit.text,
            "spec:\n  paused: true   # set me\n  replicas: 1\n"
        );
        assert_eq!(edit.old, Some(Json::Null));
    }

    #[test]
    fn get_types_values_like_yaml_1_2() {
        let text = "i: 42\nn: -7\nh: 0x1F\no: 0o17\nf: 2.5\ne: 1e3\nb: True\nz: ~\nq: \"42\"\ns: '1.0'\nv: 1.4.1\nnan: .nan\nblock: |\n  line\n";
        let cases = [
            ("i", json!(42)),
            ("n", json!(-7)),
            ("h", json!(31)),
            ("o", json!(15)),
            ("f", json!(2.5)),
            ("e", json!(1000.0)),
            ("b", json!(true)),
            ("z", Json::Null),
            ("q", json!("42")),
            ("s", json!("1.0")),
            ("v", json!("1.4.1")),
            ("nan", json!(".nan")),
            ("block", json!("line\n")),
        ];
        for (key, want) in cases {
            assert_eq!(get(text, 0, &p(key)).unwrap().unwrap().value, want, "{key}");
        }
        assert_eq!(get(text, 0, &p("q")).unwrap().unwrap().raw, "\"42\"");
        assert_eq!(get(text, 0, &p("missing")).unwrap(), None);
        assert_eq!(
            get(
                DEPLOYMENT,
                0,
                &p("spec.template.spec.containers[name=web].image")
            )
            .unwrap(),
            None
        );
        assert!(matches!(
            get(DEPLOYMENT, 0, &p("spec.selector")),
            Err(YamlError::NotScalar { line: 13, .. })
        ));
        assert!(matches!(
            get(DEPLOYMENT, 0, &p("spec.replicas.foo")),
            Err(YamlError::NotFound { .. })
        ));
    }

    #[test]
    fn error_missing_list_item() {
        let path = p("spec.template.spec.containers[name=web].image");
        let err = set(DEPLOYMENT, 0, &path, &json!("x")).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, YamlError::NotFound { .. }), "{err:?}");
        assert!(msg.contains("no containers item with name=web"), "{msg}");
        assert!(msg.contains("there are: app, sidecar"), "{msg}");
        assert!(msg.contains("list at line 25"), "{msg}");
        let err = set(
            DEPLOYMENT,
            0,
            &p("spec.template.spec.containers[5].image"),
            &json!("x"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("has only 2 item(s)"), "{err}");
        // A missing key followed by a list step cannot be created.
        let err = set(
            DEPLOYMENT,
            0,
            &p("spec.template.spec.initContainers[0].image"),
            &json!("x"),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("no key \"initContainers\""),
            "{err}"
        );
    }

    #[test]
    fn error_flow_parents() {
        let text = "metadata:\n  name: web\n  labels: {app: web}\n  annotations: {}\n";
        let err = set(text, 0, &p("metadata.labels.tier"), &json!("x")).unwrap_err();
        assert!(matches!(err, YamlError::Unsupported(_)), "{err:?}");
        assert!(err.to_string().contains("line 3"), "{err}");
        let err = set(text, 0, &p("metadata.annotations.a"), &json!("x")).unwrap_err();
        assert!(matches!(err, YamlError::Unsupported(_)), "{err:?}");
        // Replacing a value inside a flow mapping works.
        let edit = set(text, 0, &p("metadata.labels.app"), &json!("api")).unwrap();
        assert_eq!(edit.text, text.replace("{app: web}", "{app: api}"));
    }

    #[test]
    fn error_block_scalar_alias_anchor_tag() {
        let text = "defaults: &defaults\n  image: app:v1\nweb:\n  <<: *defaults\n  base: *defaults\nconfig: |\n  key=value\nlabel: &l blue\nother: *l\ntagged: !!str 25\n";
        let cases = [
            ("config", "block scalar"),
            ("other", "alias"),
            ("web.base.image", "alias"),
            ("label", "anchor"),
            ("defaults.image", "anchor"),
            ("tagged", "tag"),
        ];
        for (path, what) in cases {
            let err = set(text, 0, &p(path), &json!("x")).unwrap_err();
            assert!(matches!(err, YamlError::Unsupported(_)), "{path}: {err:?}");
            assert!(err.to_string().contains(what), "{path}: {err}");
        }
        assert_eq!(
            get(text, 0, &p("tagged")).unwrap().unwrap().value,
            json!("25")
        );
    }

    #[test]
    fn error_malformed_yaml_has_line_numbers() {
        let text = "kind: Deployment\nmetadata:\n  name: web\n  labels: [a, b\nspec: {}\n";
        let err = set(text, 0, &p("metadata.name"), &json!("x")).unwrap_err();
        assert!(matches!(err, YamlError::Parse { line: 5, .. }), "{err:?}");
        assert!(err.to_string().contains("line 5"), "{err}");
        assert!(matches!(
            find_object(text, "Deployment", "web"),
            Err(YamlError::Parse { .. })
        ));
        let err = get("a: 1\n b: 2\n", 0, &p("a")).unwrap_err();
        assert!(matches!(err, YamlError::Parse { line: 2, .. }), "{err:?}");
        // Duplicate keys are invalid in Kubernetes manifests.
        let err = set("a: 1\nb:\n  c: 1\n  c: 2\n", 0, &p("a"), &json!(3)).unwrap_err();
        assert!(
            matches!(
                err,
                YamlError::Parse {
                    line: 4,
                    col: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("first defined at line 3"), "{err}");
        let err = set("a: 1\n", 3, &p("a"), &json!(3)).unwrap_err();
        assert_eq!(err, YamlError::NoDocument { doc: 3, count: 1 });
        let err = set("a: 1\n", 0, &p("a"), &json!([1])).unwrap_err();
        assert!(matches!(err, YamlError::BadValue { .. }), "{err:?}");
    }

    #[test]
    fn verify_rejects_collateral_changes() {
        let original = "a: 1\nb: 2\n";
        let path = p("a");
        assert!(verify(original, "a: 5\nb: 2\n", 1, 0, &path, &json!(5)).is_ok());
        let err = verify(original, "a: 5\nb: 3\n", 1, 0, &path, &json!(5)).unwrap_err();
        assert!(matches!(err, YamlError::Verify(_)), "{err:?}");
        let err = verify(original, "b: 2\na: 5\n", 1, 0, &path, &json!(5)).unwrap_err();
        assert!(matches!(err, YamlError::Verify(_)), "key order: {err:?}");
        let err = verify(original, "a: \"5\"\nb: 2\n", 1, 0, &path, &json!(5)).unwrap_err();
        assert!(matches!(err, YamlError::Verify(_)), "type: {err:?}");
        let err = verify(original, "a: [5\n", 1, 0, &path, &json!(5)).unwrap_err();
        assert!(matches!(err, YamlError::Verify(_)), "{err:?}");
    }

    #[test]
    fn indent_step_is_detected() {
        let four = parse_docs("a:\n    b:\n        c: 1\n    d: 2\n").unwrap();
        assert_eq!(indent_step(&four[0]), 4);
        let flat = parse_docs("a: 1\nb: 2\n").unwrap();
        assert_eq!(indent_step(&flat[0]), 2);
        let edit = set("a:\n    b: 1\n", 0, &p("c.d.e"), &json!(1)).unwrap();
        assert_eq!(edit.text, "a:\n    b: 1\nc:\n    d:\n        e: 1\n");
        assert_eq!(edit.line, 5);
    }

    #[test]
    fn field_path_display_and_parse_round_trip() {
        let cases = [
            "spec.template.spec.containers[name=app].image",
            r#"metadata.annotations["kubernetes.io/change-cause"]"#,
            r#"metadata.annotations["nginx.ingress.kubernetes.io/canary-weight"]"#,
            "spec.rules[0].backendRefs[name=checkout-canary].weight",
            "spec.ports[port=80].targetPort",
            r#"a[" spaced \"key\" "][k="v w"]["[0]"][0][12]"#,
            r#"["kubernetes.io/x"].y"#,
            "",
        ];
        for s in cases {
            let path = FieldPath::parse(s).unwrap();
            assert_eq!(path.to_string(), s, "{path:?}");
            assert_eq!(FieldPath::parse(&path.to_string()).unwrap(), path);
        }
        let path = FieldPath(vec![
            Seg::Key("spec".into()),
            Seg::Key("a.b".into()),
            Seg::Index(3),
            Seg::Match {
                key: "name".into(),
                value: "x]=\"".into(),
            },
            Seg::Key("ünï code".into()),
        ]);
        assert_eq!(FieldPath::parse(&path.to_string()).unwrap(), path);
        assert_eq!(
            p("containers[name=app]").0,
            vec![
                Seg::Key("containers".into()),
                Seg::Match {
                    key: "name".into(),
                    value: "app".into()
                }
            ]
        );
        assert_eq!(p("a.[\"b.c\"]"), p("a[\"b.c\"]"));
        assert_eq!(p("a['it''s']").0[1], Seg::Key("it's".into()));
        assert_eq!("a.b".parse::<FieldPath>().unwrap(), p("a.b"));
        for bad in [
            "a..b", "a[", "a[x]", "a]", "a.b c", "[=v]", "a[\"x", ".a", "a[1]b",
        ] {
            assert!(
                matches!(FieldPath::parse(bad), Err(YamlError::BadPath { .. })),
                "{bad} should not parse"
            );
        }
    }

    #[test]
    fn indentless_lists_numeric_matches_and_document_boundaries() {
        let text = "spec:\n  containers:\n  - name: web\n    image: nginx:1.27\n  - name: log\n    image: fluent:2\n  ports:\n  - port: 80\n    targetPort: 8080\n---\nkind: Other\n";
        let edit = set(
            text,
            0,
            &p("spec.containers[name=web].imagePullPolicy"),
            &json!("Always"),
        )
        .unwrap();
        assert_eq!(
            added_lines(text, &edit.text),
            vec![(5, "    imagePullPolicy: Always".to_string())]
        );
        let edit = set(text, 0, &p("spec.ports[port=80].targetPort"), &json!(9090)).unwrap();
        assert_eq!(edit.text, text.replace("8080", "9090"));
        assert_eq!(edit.old, Some(json!(8080)));
        // A key added to a document lands before the next document's `---`.
        let edit = set(text, 0, &p("spec.paused"), &json!(true)).unwrap();
        assert!(
            edit.text
                .contains("    targetPort: 8080\n  paused: true\n---\nkind: Other\n")
        );
        let edit = set(MULTI, 0, &p("metadata.labels.app"), &json!("checkout")).unwrap();
        assert_eq!(
            added_lines(MULTI, &edit.text),
            vec![
                (8, "  labels:".to_string()),
                (9, "    app: checkout".to_string())
            ]
        );
    }

    #[test]
    fn large_files_are_handled_quickly() {
        let mut text = String::from("# big ✓\n");
        for i in 0..2000 {
            text.push_str(&format!(
                "---\nkind: ConfigMap\nmetadata:\n  name: cm-{i} # é\n  labels: {{a: b}}\ndata:\n  k: \"v{i}\"\n  list: [1, 2]\n"
            ));
        }
        let started = std::time::Instant::now();
        let doc = find_object(&text, "ConfigMap", "cm-1999").unwrap().unwrap();
        let edit = set(&text, doc, &p("data.k"), &json!("new")).unwrap();
        assert_eq!(changed_lines(&text, &edit.text).len(), 1);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn value_like_keeps_the_old_type() {
        assert_eq!(value_like(Some(&json!("10")), "25"), json!("25"));
        assert_eq!(value_like(Some(&json!(10)), "25"), json!(25));
        assert_eq!(value_like(Some(&json!(10)), "abc"), json!("abc"));
        assert_eq!(value_like(Some(&json!(false)), "true"), json!(true));
        assert_eq!(value_like(None, "3"), json!(3));
        assert_eq!(value_like(None, "app:v1"), json!("app:v1"));
    }
}
