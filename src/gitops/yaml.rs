//! A comment- and format-preserving editor for Kubernetes manifests. The file is parsed as
//! YAML (saphyr's event parser, which gives every node its span); a change replaces exactly
//! the bytes of the targeted scalar (or inserts one `key: value` line into an existing block
//! mapping), so comments, blank lines, quoting, key order and the other documents of the file
//! survive byte for byte. Every edit is then verified: the edited file, parsed again, must
//! equal the original with only that field changed — never an edit that changed anything else.

use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::Value;

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
    /// The list item whose mapping has `key` == `value` (`containers[name=app]`).
    Match {
        key: String,
        value: String,
    },
}

/// A path into a document: `spec.template.spec.containers[name=app].image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

fn plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if plain_key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Key(k) => write!(f, "[{}]", serde_json::to_string(k).unwrap_or_default())?,
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Match { key, value } => write!(f, "[{key}={value}]")?,
            }
        }
        Ok(())
    }
}

impl FieldPath {
    /// The inverse of `Display`.
    pub fn parse(s: &str) -> Result<FieldPath, YamlError> {
        let bad = |m: &str| YamlError::Unsupported(format!("field path {s:?}: {m}"));
        let mut out = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                rest = r;
                continue;
            }
            if let Some(r) = rest.strip_prefix('[') {
                if let Some(r2) = r.strip_prefix('"') {
                    // A quoted key: find the closing quote (JSON escapes).
                    let mut end = None;
                    let mut esc = false;
                    for (i, c) in r2.char_indices() {
                        match (esc, c) {
                            (true, _) => esc = false,
                            (false, '\\') => esc = true,
                            (false, '"') => {
                                end = Some(i);
                                break;
                            }
                            _ => {}
                        }
                    }
                    let end = end.ok_or_else(|| bad("unclosed quote"))?;
                    let key: String = serde_json::from_str(&format!("\"{}\"", &r2[..end]))
                        .map_err(|e| bad(&e.to_string()))?;
                    out.push(Seg::Key(key));
                    rest = r2[end + 1..]
                        .strip_prefix(']')
                        .ok_or_else(|| bad("missing ]"))?;
                } else {
                    let end = r.find(']').ok_or_else(|| bad("missing ]"))?;
                    let inner = &r[..end];
                    match inner.split_once('=') {
                        Some((k, v)) => out.push(Seg::Match {
                            key: k.to_string(),
                            value: v.to_string(),
                        }),
                        None => out.push(Seg::Index(
                            inner.parse().map_err(|_| bad("index is not a number"))?,
                        )),
                    }
                    rest = &r[end + 1..];
                }
                continue;
            }
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out.push(Seg::Key(rest[..end].to_string()));
            rest = &rest[end..];
        }
        Ok(FieldPath(out))
    }
}

/// What went wrong; lines are 1-based.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum YamlError {
    #[error("line {line}, column {col}: not valid YAML: {message}")]
    Parse {
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{path}: not found ({detail})")]
    NotFound { path: String, detail: String },
    #[error("{path} (line {line}) is not a scalar value")]
    NotScalar { path: String, line: usize },
    #[error("{0}")]
    Unsupported(String),
    #[error("the edit would change more than {0}; refused")]
    Verify(String),
}

/// A scalar as found.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// Typed as the YAML core schema reads it.
    pub value: Value,
    /// As written (quotes included).
    pub raw: String,
    pub line: usize,
    pub col: usize,
}

/// A change made.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    /// The whole new file.
    pub text: String,
    /// 1-based line of the changed value.
    pub line: usize,
    /// The value before (None: inserted).
    pub old: Option<Value>,
}

#[derive(Debug, Clone)]
enum Kind {
    Scalar { value: String, style: ScalarStyle },
    Map(Vec<(Node, Node)>),
    Seq(Vec<Node>),
    Alias,
}

#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    /// Char offsets of the node (scalars: the scalar's own span).
    start: usize,
    end: usize,
    line: usize,
    col: usize,
    /// Written in flow style (`{…}`, `[…]`).
    flow: bool,
    anchored: bool,
}

impl Node {
    fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(es) => es
                .iter()
                .find(|(k, _)| k.scalar() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

struct Doc {
    root: Option<Node>,
}

struct Parsed {
    docs: Vec<Doc>,
    /// Byte offset of every char index (and of the end).
    bytes: Vec<usize>,
}

impl Parsed {
    fn byte(&self, ch: usize) -> usize {
        self.bytes
            .get(ch)
            .copied()
            .unwrap_or_else(|| self.bytes.last().copied().unwrap_or(0))
    }
}

fn parse(text: &str) -> Result<Parsed, YamlError> {
    let mut bytes: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    bytes.push(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut docs = Vec::new();
    // Stack of open collections: (node, pending key for maps).
    let mut stack: Vec<(Node, Option<Node>)> = Vec::new();
    let mut root: Option<Node> = None;
    let mut in_doc = false;
    for ev in Parser::new_from_str(text) {
        let (ev, span): (Event, Span) = ev.map_err(|e| YamlError::Parse {
            line: e.marker().line(),
            col: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        let (s, e) = (span.start.index(), span.end.index());
        let at = |kind: Kind, anchored: bool| Node {
            flow: matches!(&kind, Kind::Map(_) | Kind::Seq(_))
                && matches!(chars.get(s), Some('{') | Some('[')),
            kind,
            start: s,
            end: e,
            line: span.start.line(),
            col: span.start.col(),
            anchored,
        };
        let done: Option<Node> = match ev {
            Event::DocumentStart(_) => {
                in_doc = true;
                root = None;
                None
            }
            Event::DocumentEnd => {
                if in_doc {
                    docs.push(Doc { root: root.take() });
                }
                in_doc = false;
                None
            }
            Event::Scalar(v, style, anchor, _) => Some(at(
                Kind::Scalar {
                    value: v.to_string(),
                    style,
                },
                anchor != 0,
            )),
            Event::Alias(_) => Some(at(Kind::Alias, true)),
            Event::MappingStart(anchor, _) => {
                stack.push((at(Kind::Map(Vec::new()), anchor != 0), None));
                None
            }
            Event::SequenceStart(anchor, _) => {
                stack.push((at(Kind::Seq(Vec::new()), anchor != 0), None));
                None
            }
            Event::MappingEnd | Event::SequenceEnd => stack.pop().map(|(mut n, _)| {
                if n.flow {
                    n.end = n.end.max(e);
                }
                n
            }),
            _ => None,
        };
        if let Some(node) = done {
            match stack.last_mut() {
                None => root = Some(node),
                Some((parent, pending)) => {
                    parent.end = parent.end.max(node.end);
                    match &mut parent.kind {
                        Kind::Map(es) => match pending.take() {
                            None => *pending = Some(node),
                            Some(k) => es.push((k, node)),
                        },
                        Kind::Seq(items) => items.push(node),
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(Parsed { docs, bytes })
}

fn is_empty_doc(d: &Doc) -> bool {
    match &d.root {
        None => true,
        Some(n) => {
            matches!(&n.kind, Kind::Scalar { value, style: ScalarStyle::Plain } if value.is_empty() || value == "~" || value == "null")
        }
    }
}

/// The document of a (possibly multi-document) file that is the object `kind`/`name`.
pub fn find_object(text: &str, kind: &str, name: &str) -> Result<Option<usize>, YamlError> {
    let p = parse(text)?;
    Ok(p.docs.iter().position(|d| {
        !is_empty_doc(d)
            && d.root.as_ref().is_some_and(|r| {
                r.get("kind").and_then(Node::scalar) == Some(kind)
                    && r.get("metadata")
                        .and_then(|m| m.get("name"))
                        .and_then(Node::scalar)
                        == Some(name)
            })
    }))
}

/// Walk `path` from `root`: Ok(node) or Err(index of the first missing segment, the deepest
/// node found).
fn walk<'a>(root: &'a Node, path: &FieldPath) -> Result<&'a Node, (usize, &'a Node)> {
    let mut cur = root;
    for (i, s) in path.0.iter().enumerate() {
        let next = match (s, &cur.kind) {
            (Seg::Key(k), Kind::Map(_)) => cur.get(k),
            (Seg::Index(n), Kind::Seq(items)) => items.get(*n),
            (Seg::Match { key, value }, Kind::Seq(items)) => items
                .iter()
                .find(|it| it.get(key).and_then(Node::scalar) == Some(value.as_str())),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return Err((i, cur)),
        }
    }
    Ok(cur)
}

fn doc_root<'a>(p: &'a Parsed, doc: usize) -> Result<&'a Node, YamlError> {
    p.docs
        .get(doc)
        .and_then(|d| d.root.as_ref())
        .ok_or_else(|| YamlError::NotFound {
            path: format!("document {doc}"),
            detail: format!("the file has {} documents", p.docs.len()),
        })
}

/// A scalar typed as YAML reads it.
fn typed(value: &str, style: &ScalarStyle, raw: &str) -> Value {
    match style {
        ScalarStyle::Plain => serde_yaml::from_str::<Value>(raw)
            .ok()
            .filter(|v| !v.is_object() && !v.is_array())
            .unwrap_or_else(|| Value::String(value.to_string())),
        _ => Value::String(value.to_string()),
    }
}

fn raw_of<'a>(text: &'a str, p: &Parsed, n: &Node) -> &'a str {
    &text[p.byte(n.start)..p.byte(n.end)]
}

/// The scalar at `path` in document `doc`: None if absent.
pub fn get(text: &str, doc: usize, path: &FieldPath) -> Result<Option<Scalar>, YamlError> {
    let p = parse(text)?;
    let root = doc_root(&p, doc)?;
    match walk(root, path) {
        Err(_) => Ok(None),
        Ok(n) => match &n.kind {
            Kind::Scalar { value, style } => {
                let raw = raw_of(text, &p, n).to_string();
                Ok(Some(Scalar {
                    value: typed(value, style, &raw),
                    raw,
                    line: n.line,
                    col: n.col + 1,
                }))
            }
            _ => Err(YamlError::NotScalar {
                path: path.to_string(),
                line: n.line,
            }),
        },
    }
}

/// Whether `s` written plain reads back as the same string.
fn plain_ok(s: &str) -> bool {
    if s.is_empty()
        || s.trim() != s
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.contains('\n')
        || s.starts_with([
            '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%',
            '@', '`',
        ])
    {
        return false;
    }
    matches!(serde_yaml::from_str::<Value>(s), Ok(Value::String(r)) if r == s)
}

fn double_quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// `value` written in the style of the scalar it replaces.
fn render(value: &Value, style: Option<&ScalarStyle>) -> Result<String, YamlError> {
    match value {
        Value::String(s) => Ok(match style {
            Some(ScalarStyle::SingleQuoted) if !s.contains('\n') => {
                format!("'{}'", s.replace('\'', "''"))
            }
            Some(ScalarStyle::DoubleQuoted) | Some(ScalarStyle::SingleQuoted) => double_quoted(s),
            _ if plain_ok(s) => s.clone(),
            _ => double_quoted(s),
        }),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok("null".into()),
        _ => Err(YamlError::Unsupported(
            "only scalar values (strings, numbers, booleans) can be written".into(),
        )),
    }
}

fn render_key(k: &str) -> String {
    if plain_ok(k) {
        k.to_string()
    } else {
        double_quoted(k)
    }
}

/// Set `path` in the JSON document `v` (creating mappings on the way).
fn json_set(v: &mut Value, path: &[Seg], new: Value) -> bool {
    let Some((first, rest)) = path.split_first() else {
        *v = new;
        return true;
    };
    let next = match first {
        Seg::Key(k) => {
            if v.is_null() {
                *v = Value::Object(Default::default());
            }
            match v.as_object_mut() {
                Some(m) => m.entry(k.clone()).or_insert(Value::Null),
                None => return false,
            }
        }
        Seg::Index(i) => match v.get_mut(*i) {
            Some(x) => x,
            None => return false,
        },
        Seg::Match { key, value } => match v.as_array_mut().and_then(|a| {
            a.iter_mut()
                .find(|it| it.get(key).and_then(Value::as_str) == Some(value.as_str()))
        }) {
            Some(x) => x,
            None => return false,
        },
    };
    json_set(next, rest, new)
}

fn all_docs(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for d in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(d).map_err(|e| e.to_string())?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// The edited text parses to the original with only `path` of object `kind`/`name` changed.
fn verify(
    before: &str,
    after: &str,
    target: &Node,
    path: &FieldPath,
    value: &Value,
) -> Result<(), YamlError> {
    let fail = |m: String| YamlError::Verify(format!("{path} ({m})"));
    let mut want = all_docs(before).map_err(|e| fail(format!("the original: {e}")))?;
    let got = all_docs(after).map_err(|e| fail(format!("the edited file: {e}")))?;
    let kind = target.get("kind").and_then(Node::scalar);
    let name = target
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Node::scalar);
    let Some(doc) = want.iter_mut().find(|d| {
        d.get("kind").and_then(Value::as_str) == kind
            && d.pointer("/metadata/name").and_then(Value::as_str) == name
    }) else {
        return Err(fail("the object is not in the parsed file".into()));
    };
    if !json_set(doc, &path.0, value.clone()) {
        return Err(fail("cannot apply it to the parsed original".into()));
    }
    if want != got {
        return Err(fail("the re-parsed file differs elsewhere".into()));
    }
    Ok(())
}

/// Set the scalar at `path` of document `doc` to `value` (see the module docs).
pub fn set(text: &str, doc: usize, path: &FieldPath, value: &Value) -> Result<Edit, YamlError> {
    let p = parse(text)?;
    let root = doc_root(&p, doc)?;
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let (out, line, old) = match walk(root, path) {
        Ok(n) => {
            if n.anchored {
                return Err(YamlError::Unsupported(format!(
                    "{path} (line {}) is an anchor or an alias: change it by hand",
                    n.line
                )));
            }
            let Kind::Scalar { value: old, style } = &n.kind else {
                return Err(YamlError::NotScalar {
                    path: path.to_string(),
                    line: n.line,
                });
            };
            if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
                return Err(YamlError::Unsupported(format!(
                    "{path} (line {}) is a block scalar (| or >): change it by hand",
                    n.line
                )));
            }
            let raw = raw_of(text, &p, n);
            let old_value = typed(old, style, raw);
            let rendered = render(value, Some(style))?;
            let (a, b) = (p.byte(n.start), p.byte(n.end));
            let out = format!("{}{rendered}{}", &text[..a], &text[b..]);
            (out, n.line, Some(old_value))
        }
        Err((i, parent)) => {
            let missing = &path.0[i..];
            if !missing.iter().all(|s| matches!(s, Seg::Key(_))) {
                let what = match &parent.kind {
                    Kind::Seq(items) => {
                        let key = match &missing[0] {
                            Seg::Match { key, .. } => key.as_str(),
                            _ => "name",
                        };
                        let names: Vec<&str> = items
                            .iter()
                            .filter_map(|it| it.get(key).and_then(Node::scalar))
                            .collect();
                        format!("{} items; {key}s: {}", items.len(), names.join(", "))
                    }
                    _ => "the parent is not a list".into(),
                };
                return Err(YamlError::NotFound {
                    path: FieldPath(path.0[..=i].to_vec()).to_string(),
                    detail: what,
                });
            }
            let Kind::Map(entries) = &parent.kind else {
                return Err(YamlError::Unsupported(format!(
                    "{} (line {}) is not a mapping: cannot add {}",
                    FieldPath(path.0[..i].to_vec()),
                    parent.line,
                    path
                )));
            };
            if parent.flow || parent.anchored || entries.is_empty() {
                return Err(YamlError::Unsupported(format!(
                    "{} (line {}) is written in flow style or is empty: add {path} by hand",
                    FieldPath(path.0[..i].to_vec()),
                    parent.line
                )));
            }
            let indent = entries[0].0.col;
            let step = entries
                .iter()
                .find_map(|(_, v)| match &v.kind {
                    Kind::Map(es) if !v.flow && !es.is_empty() => {
                        es[0].0.col.checked_sub(indent).filter(|s| *s > 0)
                    }
                    _ => None,
                })
                .unwrap_or(2);
            // After the line holding the end of the mapping's last entry.
            let last_end = p.byte(parent.end);
            let at = match text[last_end..].find('\n') {
                Some(i) => last_end + i + 1,
                None => text.len(),
            };
            let mut ins = String::new();
            if at == text.len() && !text.ends_with('\n') && !text.is_empty() {
                ins.push_str(newline);
            }
            for (j, s) in missing.iter().enumerate() {
                let Seg::Key(k) = s else { continue };
                ins.push_str(&" ".repeat(indent + j * step));
                ins.push_str(&render_key(k));
                ins.push(':');
                if j + 1 == missing.len() {
                    ins.push(' ');
                    ins.push_str(&render(value, None)?);
                }
                ins.push_str(newline);
            }
            let line = text[..at].matches('\n').count()
                + missing.len()
                + usize::from(at == text.len() && !text.ends_with('\n'));
            let out = format!("{}{ins}{}", &text[..at], &text[at..]);
            (out, line, None)
        }
    };
    verify(text, &out, root, path, value)?;
    Ok(Edit {
        text: out,
        line,
        old,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEPLOY: &str = "\
# checkout, production
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout   # the stable one
  labels:
    app: checkout
spec:
  replicas: 3
  template:
    metadata:
      labels: {app: checkout}
    spec:
      containers:
        # the app
        - name: app
          image: registry.example.com/shop/checkout:1.4.2  # pinned
          ports:
            - containerPort: 8080
        - name: proxy
          image: 'envoyproxy/envoy:v1.30'
";

    fn p(s: &str) -> FieldPath {
        FieldPath::parse(s).expect("path")
    }

    fn changed_lines(a: &str, b: &str) -> Vec<(usize, String)> {
        a.lines()
            .zip(b.lines())
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .map(|(i, (_, y))| (i + 1, y.to_string()))
            .collect()
    }

    #[test]
    fn an_image_changes_on_its_line_and_nothing_else() {
        let doc = find_object(DEPLOY, "Deployment", "checkout").expect("parse");
        assert_eq!(doc, Some(0));
        let path = p("spec.template.spec.containers[name=app].image");
        let got = get(DEPLOY, 0, &path).expect("get").expect("found");
        assert_eq!(got.value, json!("registry.example.com/shop/checkout:1.4.2"));
        assert_eq!(got.line, 17);
        let e = set(
            DEPLOY,
            0,
            &path,
            &json!("registry.example.com/shop/checkout:1.4.1"),
        )
        .expect("set");
        assert_eq!(e.line, 17);
        assert_eq!(
            e.old,
            Some(json!("registry.example.com/shop/checkout:1.4.2"))
        );
        assert_eq!(
            changed_lines(DEPLOY, &e.text),
            vec![(
                17,
                "          image: registry.example.com/shop/checkout:1.4.1  # pinned".to_string()
            )]
        );
        assert_eq!(DEPLOY.lines().count(), e.text.lines().count());
        // A single-quoted value stays single-quoted; a number stays plain.
        let e = set(
            DEPLOY,
            0,
            &p("spec.template.spec.containers[name=proxy].image"),
            &json!("envoyproxy/envoy:v1.31"),
        )
        .expect("set");
        assert!(e.text.contains("image: 'envoyproxy/envoy:v1.31'"));
        let e = set(DEPLOY, 0, &p("spec.replicas"), &json!(0)).expect("set");
        assert_eq!(
            changed_lines(DEPLOY, &e.text),
            vec![(9, "  replicas: 0".to_string())]
        );
        assert_eq!(e.old, Some(json!(3)));
    }

    const MULTI: &str = "\
# the checkout app
apiVersion: v1
kind: Service
metadata:
  name: checkout
spec:
  selector:
    app: checkout
    color: blue   # live colour
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: checkout
  annotations:
    \"nginx.ingress.kubernetes.io/canary-weight\": \"10\"
spec:
  rules:
  - backendRefs:
    - name: checkout-stable
      port: 80
      weight: 90
    - name: checkout-canary
      port: 80
      weight: 10
...
---
kind: Deployment
metadata:
  name: weird
  annotations:
    note: plain
";

    #[test]
    fn multi_document_files_change_one_field_of_one_document() {
        let route = find_object(MULTI, "HTTPRoute", "checkout")
            .expect("p")
            .expect("found");
        assert_eq!(route, 1);
        let e = set(
            MULTI,
            route,
            &p("spec.rules[0].backendRefs[name=checkout-canary].weight"),
            &json!(25),
        )
        .expect("set");
        assert_eq!(
            changed_lines(MULTI, &e.text),
            vec![(25, "      weight: 25".to_string())]
        );
        let e = set(
            MULTI,
            route,
            &p("spec.rules[0].backendRefs[name=checkout-stable].weight"),
            &json!(75),
        )
        .expect("set");
        assert_eq!(e.line, 22);
        // A quoted annotation key, a quoted string value stays quoted.
        let ann = p("metadata.annotations[\"nginx.ingress.kubernetes.io/canary-weight\"]");
        assert_eq!(
            ann.to_string(),
            "metadata.annotations[\"nginx.ingress.kubernetes.io/canary-weight\"]"
        );
        let e = set(MULTI, route, &ann, &json!("25")).expect("set");
        assert!(
            e.text
                .contains("\"nginx.ingress.kubernetes.io/canary-weight\": \"25\"")
        );
        // A plain string value that would read as a number gets quoted.
        let weird = find_object(MULTI, "Deployment", "weird")
            .expect("p")
            .expect("found");
        let e = set(MULTI, weird, &p("metadata.annotations.note"), &json!("25")).expect("set");
        assert!(e.text.ends_with("    note: \"25\"\n"), "{}", e.text);
        let e = set(MULTI, 0, &p("spec.selector.color"), &json!("green")).expect("set");
        assert_eq!(
            changed_lines(MULTI, &e.text),
            vec![(9, "    color: green   # live colour".to_string())]
        );
    }

    #[test]
    fn missing_keys_are_inserted_into_block_mappings() {
        let e = set(DEPLOY, 0, &p("spec.paused"), &json!(true)).expect("insert");
        assert_eq!(e.old, None);
        assert!(
            e.text
                .ends_with("          image: 'envoyproxy/envoy:v1.30'\n  paused: true\n"),
            "{}",
            e.text
        );
        assert_eq!(e.line, 22);
        let e = set(
            DEPLOY,
            0,
            &p("metadata.annotations[\"kubernetes.io/change-cause\"]"),
            &json!("rollback: bad 1.4.2"),
        )
        .expect("nested insert");
        assert!(
            e.text.contains("    app: checkout\n  annotations:\n    kubernetes.io/change-cause: \"rollback: bad 1.4.2\"\nspec:"),
            "{}",
            e.text
        );
        let four =
            "kind: Deployment\nmetadata:\n    name: x\nspec:\n    template:\n        spec: {}\n";
        let e = set(four, 0, &p("spec.replicas"), &json!(2)).expect("insert");
        assert_eq!(
            e.text,
            "kind: Deployment\nmetadata:\n    name: x\nspec:\n    template:\n        spec: {}\n    replicas: 2\n"
        );
    }

    #[test]
    fn crlf_non_ascii_and_trailing_comments_survive() {
        let text = "# café ☕ déploiement\r\nkind: Deployment\r\nmetadata:\r\n  name: x # ünïcode\r\nspec:\r\n  replicas: 1 # one\r\n";
        let e = set(text, 0, &p("spec.replicas"), &json!(4)).expect("set");
        assert_eq!(e.text, text.replace("replicas: 1 #", "replicas: 4 #"));
        let e = set(text, 0, &p("spec.paused"), &json!(false)).expect("insert");
        assert!(
            e.text
                .ends_with("  replicas: 1 # one\r\n  paused: false\r\n"),
            "{:?}",
            e.text
        );
    }

    #[test]
    fn what_cannot_be_edited_safely_is_refused_with_the_reason() {
        assert!(matches!(
            set(DEPLOY, 0, &p("spec.template.spec.containers[name=web].image"), &json!("x")),
            Err(YamlError::NotFound { detail, .. }) if detail.contains("app, proxy")
        ));
        assert!(matches!(
            set(DEPLOY, 0, &p("spec.template.metadata.labels.tier"), &json!("x")),
            Err(YamlError::Unsupported(m)) if m.contains("flow style")
        ));
        let block = "kind: ConfigMap\nmetadata:\n  name: c\ndata:\n  x: |\n    hello\n";
        assert!(
            matches!(set(block, 0, &p("data.x"), &json!("y")), Err(YamlError::Unsupported(m)) if m.contains("block scalar"))
        );
        let alias = "kind: D\nmetadata:\n  name: d\nbase: &b 1\nother: *b\n";
        assert!(matches!(
            set(alias, 0, &p("other"), &json!(2)),
            Err(YamlError::Unsupported(_))
        ));
        assert!(matches!(
            set(alias, 0, &p("base"), &json!(2)),
            Err(YamlError::Unsupported(_))
        ));
        let broken = "kind: D\nmetadata:\n  name: [x\n";
        assert!(
            matches!(find_object(broken, "D", "x"), Err(YamlError::Parse { line, .. }) if line >= 3)
        );
        assert!(matches!(
            set(DEPLOY, 0, &p("spec.template"), &json!("x")),
            Err(YamlError::NotScalar { .. })
        ));
    }

    #[test]
    fn paths_round_trip() {
        for s in [
            "spec.template.spec.containers[name=app].image",
            "spec.rules[0].backendRefs[1].weight",
            "metadata.annotations[\"kubectl.kubernetes.io/restartedAt\"]",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
    }
}
