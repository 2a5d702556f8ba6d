//! Label and field selectors as kube-apiserver 1.26 parses and applies them: the
//! `labelSelector`/`fieldSelector` query parameters (with the server's 400 messages), the
//! `metav1.LabelSelector` objects of workloads and the plain selector maps of Services.

use std::fmt;

use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};

/// A label selector: requirements that must all hold. The default (no requirements) matches
/// everything; [`LabelSelector::from_map`] of an empty Service selector matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    /// Sorted, deduplicated.
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

impl LabelSelector {
    /// Parses the `labelSelector` syntax (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
    /// `a`, `!a`, `a>1`, `a<1`, comma-separated), failing with the server's 400 BadRequest.
    pub fn parse(s: &str) -> ApiResult<LabelSelector> {
        let mut requirements = Parser::new(s).parse().map_err(ApiError::bad_request)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// A `metav1.LabelSelector` (`matchLabels` + `matchExpressions`), as a workload's
    /// `spec.selector`. `null` selects nothing, `{}` everything; `None` when it is malformed.
    pub fn from_label_selector_object(v: &Value) -> Option<LabelSelector> {
        let object = match v {
            Value::Null => return Some(LabelSelector::nothing()),
            Value::Object(object) => object,
            _ => return None,
        };
        let mut requirements = Vec::new();
        if let Some(labels) = object.get("matchLabels").filter(|l| !l.is_null()) {
            for (key, value) in labels.as_object()? {
                requirements.push(
                    Requirement::new(key, Op::Equals, vec![value.as_str()?.to_string()]).ok()?,
                );
            }
        }
        if let Some(expressions) = object.get("matchExpressions").filter(|e| !e.is_null()) {
            for expression in expressions.as_array()? {
                let op = match expression.get("operator")?.as_str()? {
                    "In" => Op::In,
                    "NotIn" => Op::NotIn,
                    "Exists" => Op::Exists,
                    "DoesNotExist" => Op::DoesNotExist,
                    _ => return None,
                };
                let values = match expression.get("values") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(values) => values
                        .as_array()?
                        .iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()?,
                };
                let key = expression.get("key")?.as_str()?;
                requirements.push(Requirement::new(key, op, values).ok()?);
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Some(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// A Service's `spec.selector` map: every pair must match. An empty map selects nothing
    /// (such a Service gets no endpoints); use [`LabelSelector::nothing`] for an absent one.
    pub fn from_map(map: &Map<String, Value>) -> LabelSelector {
        if map.is_empty() {
            return LabelSelector::nothing();
        }
        let mut requirements: Vec<Requirement> = map
            .iter()
            .map(|(key, value)| Requirement {
                key: key.clone(),
                op: Op::Equals,
                values: vec![
                    value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_string),
                ],
            })
            .collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// The selector that matches no object (`labels.Nothing()`).
    pub fn nothing() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Whether an object with these `metadata.labels` is selected.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True when the selector does not restrict anything (matches every object).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }
}

/// The canonical string form (`app=checkout,track in (canary,stable)`), as the server writes
/// it e.g. in a Scale's `status.selector`. Empty for both "everything" and "nothing".
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.op == Op::DoesNotExist {
                f.write_str("!")?;
            }
            f.write_str(&r.key)?;
            let values = r.values.join(",");
            match r.op {
                Op::Equals => write!(f, "={values}")?,
                Op::DoubleEquals => write!(f, "=={values}")?,
                Op::NotEquals => write!(f, "!={values}")?,
                Op::In => write!(f, " in ({values})")?,
                Op::NotIn => write!(f, " notin ({values})")?,
                Op::GreaterThan => write!(f, ">{values}")?,
                Op::LessThan => write!(f, "<{values}")?,
                Op::Exists | Op::DoesNotExist => {}
            }
        }
        Ok(())
    }
}

impl Requirement {
    /// apimachinery's `NewRequirement`: validates key, values and their count.
    fn new(key: &str, op: Op, mut values: Vec<String>) -> Result<Requirement, String> {
        values.sort();
        values.dedup();
        let mut errors = Vec::new();
        if let Some(e) = key_error(key, "key") {
            errors.push(e);
        }
        let count_error = match op {
            Op::In | Op::NotIn if values.is_empty() => {
                Some("for 'in', 'notin' operators, values set can't be empty")
            }
            Op::Equals | Op::DoubleEquals | Op::NotEquals if values.len() != 1 => {
                Some("exact-match compatibility requires one single value")
            }
            Op::Exists | Op::DoesNotExist if !values.is_empty() => {
                Some("values set must be empty for exists and does not exist")
            }
            Op::GreaterThan | Op::LessThan if values.len() != 1 => {
                Some("for 'Gt', 'Lt' operators, exactly one value is required")
            }
            _ => None,
        };
        if let Some(detail) = count_error {
            errors.push(format!(
                "values: Invalid value: {}: {detail}",
                go_string_slice(&values)
            ));
        }
        for (i, value) in values.iter().enumerate() {
            if matches!(op, Op::GreaterThan | Op::LessThan) && value.parse::<i64>().is_err() {
                errors.push(invalid(
                    &format!("values[{i}]"),
                    value,
                    "for 'Gt', 'Lt' operators, the value must be an integer",
                ));
            }
        }
        for (i, value) in values.iter().enumerate() {
            let problems = label_value_errors(value);
            if !problems.is_empty() {
                errors.push(invalid(
                    &format!("values[{i}][{key}]"),
                    value,
                    &problems.join("; "),
                ));
            }
        }
        match errors.len() {
            0 => Ok(Requirement {
                key: key.to_string(),
                op,
                values,
            }),
            1 => Err(errors.remove(0)),
            _ => Err(format!("[{}]", errors.join(", "))),
        }
    }

    fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let value = labels
            .and_then(|l| l.get(&self.key))
            .and_then(Value::as_str);
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.op {
            Op::In | Op::Equals | Op::DoubleEquals => value.is_some_and(has),
            Op::NotIn | Op::NotEquals => !value.is_some_and(has),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let (Some(actual), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == Op::GreaterThan {
                    actual > bound
                } else {
                    actual < bound
                }
            }
        }
    }
}

/// A `field.Invalid` error string: `path: Invalid value: "v": detail`.
fn invalid(path: &str, value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {}: {detail}", go_quote(value))
}

/// Go's `%#v` of a `[]string`, as field errors print a value list.
fn go_string_slice(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// Go's `%q` of a string.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const DNS_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    matches!((b.first(), b.last()), (Some(f), Some(l)) if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`
fn is_dns_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        let end_ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        b.first().is_some_and(end_ok)
            && b.last().is_some_and(end_ok)
            && b.iter().all(|c| end_ok(c) || *c == b'-')
    })
}

/// apimachinery's `IsQualifiedName` messages for a label key.
fn qualified_name_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let name = match key.split_once('/') {
        None => key,
        Some((_, name)) if name.contains('/') => {
            return vec![format!(
                "a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
        Some((prefix, name)) => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                if prefix.len() > 253 {
                    errors.push("prefix part must be no more than 253 characters".to_string());
                }
                if !is_dns_subdomain(prefix) {
                    errors.push(format!("prefix part {DNS_SUBDOMAIN_MSG}"));
                }
            }
            name
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(name) {
        errors.push(format!("name part {QUALIFIED_NAME_MSG}"));
    }
    errors
}

fn key_error(key: &str, path: &str) -> Option<String> {
    let errors = qualified_name_errors(key);
    (!errors.is_empty()).then(|| invalid(path, key, &errors.join("; ")))
}

fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 characters".to_string());
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errors.push(LABEL_VALUE_MSG.to_string());
    }
    errors
}

// --- label selector parser (a port of apimachinery's labels.Parser) -----------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    End,
    ClosePar,
    Comma,
    Not,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// Whether the parser reads keys/operators (`in`, `notin` are keywords) or values (they are
/// plain identifiers).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits a selector into tokens; a NUL byte ends the input, as in Go's lexer.
fn lex(s: &str) -> Vec<(Token, String)> {
    let bytes = s.as_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let bytes = &bytes[..end];
    let mut tokens = Vec::new();
    let mut i = 0;
    loop {
        while bytes.get(i).copied().is_some_and(is_space) {
            i += 1;
        }
        let Some(&first) = bytes.get(i) else {
            tokens.push((Token::End, String::new()));
            return tokens;
        };
        let start = i;
        let token = if is_special(first) {
            i += 1;
            match (first, bytes.get(i)) {
                (b'!', Some(b'=')) | (b'=', Some(b'=')) => {
                    i += 1;
                    if first == b'!' {
                        Token::NotEquals
                    } else {
                        Token::DoubleEquals
                    }
                }
                (b'!', _) => Token::Not,
                (b'=', _) => Token::Equals,
                (b'(', _) => Token::OpenPar,
                (b')', _) => Token::ClosePar,
                (b',', _) => Token::Comma,
                (b'>', _) => Token::GreaterThan,
                _ => Token::LessThan,
            }
        } else {
            while bytes
                .get(i)
                .is_some_and(|&b| !is_special(b) && !is_space(b))
            {
                i += 1;
            }
            match &bytes[start..i] {
                b"in" => Token::In,
                b"notin" => Token::NotIn,
                _ => Token::Identifier,
            }
        };
        tokens.push((
            token,
            String::from_utf8_lossy(&bytes[start..i]).into_owned(),
        ));
    }
}

struct Parser {
    tokens: Vec<(Token, String)>,
    position: usize,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl Parser {
    fn new(s: &str) -> Parser {
        Parser {
            tokens: lex(s),
            position: 0,
        }
    }

    fn lookahead(&self, context: Context) -> (Token, String) {
        let (token, literal) = self
            .tokens
            .get(self.position)
            .cloned()
            .unwrap_or((Token::End, String::new()));
        match token {
            Token::In | Token::NotIn if context == Context::Values => (Token::Identifier, literal),
            _ => (token, literal),
        }
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let item = self.lookahead(context);
        self.position = (self.position + 1).min(self.tokens.len());
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::Not => {
                    let requirement = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::End => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::Not {
                                return Err(format!(
                                    "found '{literal}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!(
                                "found '{literal}', expected: ',' or 'end of string'"
                            ));
                        }
                    }
                }
                Token::End => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (mut token, mut key) = self.consume(Context::Values);
        let negated = token == Token::Not;
        if negated {
            (token, key) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{key}', expected: identifier"));
        }
        if let Some(e) = key_error(&key, "<nil>") {
            return Err(e);
        }
        let (next, _) = self.lookahead(Context::Values);
        if negated || next == Token::End || next == Token::Comma {
            let op = if negated {
                Op::DoesNotExist
            } else {
                Op::Exists
            };
            return Requirement::new(&key, op, Vec::new());
        }
        let (token, literal) = self.consume(Context::KeyAndOperator);
        let op = match token {
            Token::In => Op::In,
            Token::NotIn => Op::NotIn,
            Token::Equals => Op::Equals,
            Token::DoubleEquals => Op::DoubleEquals,
            Token::NotEquals => Op::NotEquals,
            Token::GreaterThan => Op::GreaterThan,
            Token::LessThan => Op::LessThan,
            _ => return Err(format!("found '{literal}', expected: {BINARY_OPERATORS}")),
        };
        let values = match op {
            Op::In | Op::NotIn => self.value_set()?,
            _ => self.exact_value()?,
        };
        Requirement::new(&key, op, values)
    }

    fn value_set(&mut self) -> Result<Vec<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.identifiers()?;
                if self.consume(Context::Values).0 != Token::ClosePar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosePar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            )),
        }
    }

    fn identifiers(&mut self) -> Result<Vec<String>, String> {
        let mut values = Vec::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    values.push(literal);
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => {}
                        Token::ClosePar => return Ok(values),
                        _ => return Err(format!("found '{literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    match self.lookahead(Context::Values).0 {
                        Token::ClosePar => {
                            values.push(String::new());
                            return Ok(values);
                        }
                        Token::Comma => {
                            self.consume(Context::Values);
                            values.push(String::new());
                        }
                        _ => {}
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        let (token, _) = self.lookahead(Context::Values);
        if token == Token::End || token == Token::Comma {
            return Ok(vec![String::new()]);
        }
        match self.consume(Context::Values) {
            (Token::Identifier, literal) => Ok(vec![literal]),
            (_, literal) => Err(format!("found '{literal}', expected: identifier")),
        }
    }
}

// --- field selectors ------------------------------------------------------------------------

/// A field selector: `field=value`, `field==value`, `field!=value` terms that must all hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<Term>,
    fields: Fields,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    field: String,
    value: String,
    negated: bool,
}

/// Which field set a resource supports (its field label conversion on the server).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Fields {
    /// Only `metadata.name` and `metadata.namespace`.
    #[default]
    Meta,
    Pod,
    Node,
    Replicas,
    Event,
    Namespace,
    Secret,
}

impl Fields {
    fn for_resource(resource: &str, group: &str) -> Fields {
        match (group, resource) {
            ("", "pods") => Fields::Pod,
            ("", "nodes") => Fields::Node,
            ("", "replicationcontrollers") | ("apps" | "extensions", "replicasets") => {
                Fields::Replicas
            }
            ("", "events") => Fields::Event,
            ("", "namespaces") => Fields::Namespace,
            ("", "secrets") => Fields::Secret,
            _ => Fields::Meta,
        }
    }

    /// The supported field names, `None` for the default pair.
    fn supported(self) -> Option<&'static [&'static str]> {
        Some(match self {
            Fields::Meta => return None,
            Fields::Pod => &[
                "metadata.name",
                "metadata.namespace",
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
            ],
            Fields::Node => &["metadata.name", "spec.unschedulable"],
            Fields::Replicas => &["metadata.name", "metadata.namespace", "status.replicas"],
            Fields::Event => &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
                "metadata.namespace",
                "metadata.name",
            ],
            Fields::Namespace => &["status.phase", "metadata.name"],
            Fields::Secret => &["type", "metadata.namespace", "metadata.name"],
        })
    }

    /// The server's field label conversion: the canonical field name, or its error.
    fn convert(self, field: &str) -> Result<String, String> {
        match self.supported() {
            None if field == "metadata.name" || field == "metadata.namespace" => {
                Ok(field.to_string())
            }
            None => Err(format!(
                "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                go_quote(field)
            )),
            Some(_) if self == Fields::Pod && field == "spec.host" => {
                Ok("spec.nodeName".to_string())
            }
            Some(supported) if supported.contains(&field) => Ok(field.to_string()),
            Some(_) => Err(format!("field label not supported: {field}")),
        }
    }

    /// The value the server's `ToSelectableFields` gives `field` for `object`.
    fn value(self, object: &Value, field: &str) -> String {
        let at = |path: &str| {
            path.split('.')
                .try_fold(object, |v, part| v.get(part))
                .and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
                    _ => None,
                })
        };
        let value = match (self, field) {
            (Fields::Event, "source") => at("source.component")
                .filter(|s| !s.is_empty())
                .or_else(|| at("reportingComponent")),
            (Fields::Pod, "spec.hostNetwork") | (Fields::Node, "spec.unschedulable") => {
                Some(at(field).unwrap_or_else(|| "false".to_string()))
            }
            (Fields::Replicas, "status.replicas") => {
                Some(at(field).unwrap_or_else(|| "0".to_string()))
            }
            _ => at(field),
        };
        value.unwrap_or_default()
    }
}

impl FieldSelector {
    /// Parses a `fieldSelector` for `resource` (plural) in API `group` ("" for core), failing
    /// with the server's 400 BadRequest for bad syntax or fields the resource does not support.
    pub fn parse(s: &str, resource: &str, group: &str) -> ApiResult<FieldSelector> {
        let fields = Fields::for_resource(resource, group);
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let (field, op, value) = split_term(part).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ))
            })?;
            terms.push(Term {
                field: field.to_string(),
                value: unescape_field_value(value).map_err(ApiError::bad_request)?,
                negated: op == "!=",
            });
        }
        for term in &mut terms {
            term.field = fields.convert(&term.field).map_err(ApiError::bad_request)?;
        }
        Ok(FieldSelector { terms, fields })
    }

    /// Whether `object` satisfies every term (a missing field counts as `""`).
    pub fn matches(&self, object: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| (self.fields.value(object, &t.field) == t.value) != t.negated)
    }

    /// The name required by a `metadata.name=X` term, letting the server skip the scan.
    pub fn exact_name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| !t.negated && t.field == "metadata.name")
            .map(|t| t.value.as_str())
    }

    /// True when the selector has no terms (matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// Splits on commas not escaped by a backslash.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at its first operator (`!=`, `==` or `=`).
fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    term.char_indices().find_map(|(i, _)| {
        ["!=", "==", "="]
            .into_iter()
            .find(|op| term[i..].starts_with(op))
            .map(|op| (&term[..i], op, &term[i + op.len()..]))
    })
}

/// Resolves `\\`, `\,` and `\=` escapes; unescaped `,` or `=` are errors.
fn unescape_field_value(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{e}"
                    ));
                }
                None => {
                    return Err("invalid field selector: invalid escape sequence: \\".to_string());
                }
            },
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {c}"
                ));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::sandbox::test_fixtures::fixture_json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap()
    }

    fn parse_error(s: &str) -> String {
        let err = LabelSelector::parse(s).unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
        err.message
    }

    fn item_names(list: &Value) -> Vec<&str> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect()
    }

    // --- label selectors ------------------------------------------------------------------

    #[test]
    fn label_selector_fixture_error() {
        let err = LabelSelector::parse("app===checkout").unwrap_err();
        assert_eq!(
            err.to_status(),
            fixture_json("05-errors/400-invalid-label-selector.json")
        );
    }

    #[test]
    fn label_selectors_select_like_the_recorded_lists() {
        let pods = fixture_json("02-lists/pods.json");
        for (selector, file) in [
            (
                "app=checkout",
                "02-lists/pods-labelselector-app-checkout.json",
            ),
            (
                "app=checkout,track in (canary)",
                "02-lists/pods-labelselector-set.json",
            ),
        ] {
            let s = sel(selector);
            let selected: Vec<&str> = pods["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| s.matches(p["metadata"]["labels"].as_object()))
                .map(|p| p["metadata"]["name"].as_str().unwrap())
                .collect();
            assert_eq!(selected, item_names(&fixture_json(file)), "{selector}");
        }
    }

    #[test]
    fn label_selector_operators() {
        let l = labels(json!({"app":"web","tier":"front","n":"5","in":"notin"}));
        let yes = [
            "",
            "app=web",
            "app==web",
            "app!=db",
            "missing!=x",
            "app in (web,db)",
            "app notin (db)",
            "missing notin (x)",
            "app",
            "!missing",
            " app = web , tier in ( front ) ",
            "n>4",
            "n<6",
            "in=notin",
            "in in (notin)",
            "app in (web,)",
            "x notin ()",
            "app,tier",
        ];
        for s in yes {
            assert!(sel(s).matches(Some(&l)), "{s:?} should match");
        }
        let no = [
            "app=db",
            "app!=web",
            "app in (db)",
            "app notin (web)",
            "missing",
            "!app",
            "missing in (x)",
            "n>5",
            "n<5",
            "app>1",
            "app=web,tier=back",
        ];
        for s in no {
            assert!(!sel(s).matches(Some(&l)), "{s:?} should not match");
        }
        assert!(sel("!a").matches(None));
        assert!(!sel("a").matches(None));
        assert!(sel("").is_empty() && sel("").matches(None));
        assert!(!sel("a").is_empty());
        let empty_value = labels(json!({"a":""}));
        assert!(sel("a=").matches(Some(&empty_value)));
        assert!(sel("a in (,x)").matches(Some(&empty_value)));
    }

    #[test]
    fn label_selector_string_form() {
        assert_eq!(
            sel("track in (stable,canary), app=checkout,!old,x,y!=1,z notin (b,a),n>3").to_string(),
            "app=checkout,n>3,!old,track in (canary,stable),x,y!=1,z notin (a,b)"
        );
        assert_eq!(sel("a==b").to_string(), "a==b");
        assert_eq!(LabelSelector::default().to_string(), "");
    }

    #[test]
    fn label_selector_parse_errors() {
        let cases = [
            (
                "a b",
                "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
            ),
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
            ("a,", "found '', expected: identifier after ','"),
            ("a,,b", "found ',', expected: identifier after ','"),
            (
                "=a",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            (
                "!",
                "unable to parse requirement: found '', expected: identifier",
            ),
            ("!a=b", "found '=', expected: ',' or 'end of string'"),
            (
                "a in",
                "unable to parse requirement: found '' expected: '('",
            ),
            (
                "a in (b",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "a in (b,",
                "unable to parse requirement: found '', expected: ',', or identifier",
            ),
            (
                "a in (=)",
                "unable to parse requirement: found '=', expected: ',', ')' or identifier",
            ),
            (
                "a=(",
                "unable to parse requirement: found '(', expected: identifier",
            ),
            (
                "a>b",
                "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer",
            ),
        ];
        for (s, message) in cases {
            assert_eq!(parse_error(s), message, "{s:?}");
        }
    }

    #[test]
    fn label_selector_validation_errors() {
        assert_eq!(
            parse_error("-a=b"),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"-a\": name part {QUALIFIED_NAME_MSG}"
            )
        );
        assert_eq!(
            parse_error("Example.com/a"),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"Example.com/a\": prefix part {DNS_SUBDOMAIN_MSG}"
            )
        );
        assert_eq!(
            parse_error("a/"),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"a/\": name part must be non-empty; name part {QUALIFIED_NAME_MSG}"
            )
        );
        assert!(parse_error("a/b/c").contains("a qualified name must consist of"));
        assert!(
            parse_error(&"k".repeat(64)).contains("name part must be no more than 63 characters")
        );
        assert_eq!(
            parse_error("a=-x"),
            format!(
                "unable to parse requirement: values[0][a]: Invalid value: \"-x\": {LABEL_VALUE_MSG}"
            )
        );
        assert!(
            parse_error("a in (-x,y_)")
                .starts_with("unable to parse requirement: [values[0][a]: Invalid value: \"-x\"")
        );
        assert!(
            sel("example.com/app-name=v1.2_3")
                .matches(Some(&labels(json!({"example.com/app-name":"v1.2_3"}))))
        );
    }

    #[test]
    fn label_selector_objects() {
        let d = fixture_json("03-get/deployment-checkout.json");
        let s = LabelSelector::from_label_selector_object(&d["spec"]["selector"]).unwrap();
        assert_eq!(s.to_string(), "app=checkout,track=stable");
        assert!(s.matches(d["spec"]["template"]["metadata"]["labels"].as_object()));

        let s = LabelSelector::from_label_selector_object(&json!({
            "matchLabels":{"app":"a"},
            "matchExpressions":[{"key":"tier","operator":"In","values":["x","y"]},{"key":"old","operator":"DoesNotExist"},{"key":"env","operator":"NotIn","values":["dev"]}]
        })).unwrap();
        assert_eq!(s.to_string(), "app=a,env notin (dev),!old,tier in (x,y)");
        assert!(s.matches(Some(&labels(json!({"app":"a","tier":"y"})))));
        assert!(!s.matches(Some(&labels(json!({"app":"a","tier":"y","old":"1"})))));

        let everything = LabelSelector::from_label_selector_object(&json!({})).unwrap();
        assert!(everything.is_empty() && everything.matches(None));
        let nothing = LabelSelector::from_label_selector_object(&Value::Null).unwrap();
        assert!(!nothing.is_empty() && !nothing.matches(None));
        for bad in [
            json!("app=a"),
            json!({"matchLabels":{"app":1}}),
            json!({"matchExpressions":[{"key":"a","operator":"Gt","values":["1"]}]}),
            json!({"matchExpressions":[{"key":"a","operator":"In","values":[]}]}),
            json!({"matchExpressions":[{"key":"a","operator":"Exists","values":["x"]}]}),
            json!({"matchLabels":{"-bad":"x"}}),
        ] {
            assert!(
                LabelSelector::from_label_selector_object(&bad).is_none(),
                "{bad}"
            );
        }
    }

    #[test]
    fn service_selector_maps() {
        let svc = fixture_json("03-get/service-payments.json");
        let s = LabelSelector::from_map(svc["spec"]["selector"].as_object().unwrap());
        assert_eq!(s.to_string(), "app=payments,version=blue");
        assert!(s.matches(Some(&labels(
            json!({"app":"payments","version":"blue","pod-template-hash":"x"})
        ))));
        assert!(!s.matches(Some(&labels(json!({"app":"payments","version":"green"})))));
        for nothing in [
            LabelSelector::nothing(),
            LabelSelector::from_map(&Map::new()),
        ] {
            assert!(!nothing.matches(Some(&labels(json!({"app":"payments"})))));
            assert!(!nothing.matches(None));
            assert!(!nothing.is_empty());
        }
    }

    #[test]
    fn label_parser_never_panics() {
        let alphabet = [
            "a", "b", "=", "!", "(", ")", ",", " ", "in", "notin", ">", "<", "-", "/", "\0", "é",
            "1",
        ];
        let mut seed = 7u64;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..(seed % 9) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push_str(alphabet[((seed >> 33) % alphabet.len() as u64) as usize]);
            }
            if let Ok(selector) = LabelSelector::parse(&s) {
                let reparsed = LabelSelector::parse(&selector.to_string());
                assert!(reparsed.is_ok(), "{s:?} -> {selector}");
            }
            let _ = FieldSelector::parse(&s, "pods", "");
        }
    }

    // --- field selectors --------------------------------------------------------------------

    #[test]
    fn field_selector_fixture_error() {
        let err = FieldSelector::parse("spec.replicas=2", "deployments", "apps").unwrap_err();
        assert_eq!(
            err.to_status(),
            fixture_json("05-errors/400-invalid-field-selector.json")
        );
    }

    #[test]
    fn field_selector_errors() {
        let message = |s: &str, resource: &str, group: &str| {
            FieldSelector::parse(s, resource, group)
                .unwrap_err()
                .message
        };
        assert_eq!(
            message("spec.foo=1", "pods", ""),
            "field label not supported: spec.foo"
        );
        assert_eq!(
            message("metadata.namespace=x", "namespaces", ""),
            "field label not supported: metadata.namespace"
        );
        assert_eq!(
            message("source=x", "events", "events.k8s.io"),
            "\"source\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert_eq!(
            message("foo", "pods", ""),
            "invalid selector: 'foo'; can't understand 'foo'"
        );
        assert_eq!(
            message("a=b,foo", "pods", ""),
            "invalid selector: 'a=b,foo'; can't understand 'foo'"
        );
        assert_eq!(
            message("metadata.name=a=b", "pods", ""),
            "invalid field selector: unescaped character in value: ="
        );
        assert_eq!(
            message("metadata.name=a\\x", "pods", ""),
            "invalid field selector: invalid escape sequence: \\x"
        );
        assert_eq!(
            message("metadata.name=a\\", "pods", ""),
            "invalid field selector: invalid escape sequence: \\"
        );
        // Terms are checked in sorted order, syntax before field names.
        assert_eq!(
            message("z.b=1,a.b=1", "deployments", "apps"),
            "\"a.b\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert_eq!(
            message("a.b=1,zz", "deployments", "apps"),
            "invalid selector: 'a.b=1,zz'; can't understand 'zz'"
        );
        assert_eq!(
            message("metadata.name = x", "pods", ""),
            "field label not supported: metadata.name "
        );
    }

    #[test]
    fn field_selectors_on_pods() {
        let pod = fixture_json("03-get/pod-checkout-running.json");
        let matches = |s: &str| FieldSelector::parse(s, "pods", "").unwrap().matches(&pod);
        for s in [
            "",
            "status.phase=Running",
            "status.phase==Running",
            "spec.nodeName=refs-node-1",
            "spec.host=refs-node-1",
            "spec.hostNetwork=false",
            "status.podIP=10.244.0.8",
            "status.nominatedNodeName=",
            "status.phase!=Pending",
            "metadata.name=checkout-84685c5797-kkxsk,metadata.namespace=production",
            "spec.restartPolicy=Always",
            "spec.serviceAccountName=default",
            "spec.schedulerName=default-scheduler",
            "status.podIPs=",
        ] {
            assert!(matches(s), "{s:?}");
        }
        for s in [
            "status.phase=Pending",
            "spec.hostNetwork=true",
            "status.phase!=Running",
            "metadata.namespace=staging",
            "spec.nodeName=",
        ] {
            assert!(!matches(s), "{s:?}");
        }
    }

    #[test]
    fn field_selectors_on_other_resources() {
        let events = fixture_json("02-lists/events.json");
        let count = |s: &str| {
            let f = FieldSelector::parse(s, "events", "").unwrap();
            events["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| f.matches(e))
                .count()
        };
        assert_eq!(count("source=default-scheduler"), 32);
        assert_eq!(
            count("source=replicaset-controller,involvedObject.kind=ReplicaSet"),
            40
        );
        assert_eq!(count("type=Warning"), 3);
        assert_eq!(
            count("reportingComponent=deployment-controller,reason!=x"),
            22
        );

        let rs = fixture_json("03-get/replicaset-checkout.json");
        let replicas = rs["status"]["replicas"].to_string();
        assert!(
            FieldSelector::parse(
                &format!("status.replicas={replicas}"),
                "replicasets",
                "apps"
            )
            .unwrap()
            .matches(&rs)
        );
        assert!(
            FieldSelector::parse("status.replicas=0", "replicasets", "apps")
                .unwrap()
                .matches(&json!({"status":{}}))
        );
        let ns = fixture_json("03-get/namespace-production.json");
        assert!(
            FieldSelector::parse(
                "status.phase=Active,metadata.name=production",
                "namespaces",
                ""
            )
            .unwrap()
            .matches(&ns)
        );
        assert!(
            FieldSelector::parse("type=Opaque", "secrets", "")
                .unwrap()
                .matches(&json!({"type":"Opaque"}))
        );
        assert!(
            FieldSelector::parse("spec.unschedulable=false", "nodes", "")
                .unwrap()
                .matches(&fixture_json("03-get/node.json"))
        );
        let d = fixture_json("03-get/deployment-frontend.json");
        assert!(
            FieldSelector::parse("metadata.name=frontend", "deployments", "apps")
                .unwrap()
                .matches(&d)
        );
        assert!(
            FieldSelector::parse("metadata.name=a\\,b", "configmaps", "")
                .unwrap()
                .matches(&json!({"metadata":{"name":"a,b"}}))
        );
    }

    #[test]
    fn field_selector_exact_name() {
        let f = FieldSelector::parse("metadata.name=frontend", "deployments", "apps").unwrap();
        assert_eq!(f.exact_name(), Some("frontend"));
        let f = FieldSelector::parse("metadata.namespace=p,metadata.name==x", "pods", "").unwrap();
        assert_eq!(f.exact_name(), Some("x"));
        assert_eq!(
            FieldSelector::parse("metadata.name!=x", "pods", "")
                .unwrap()
                .exact_name(),
            None
        );
        let empty = FieldSelector::parse("", "pods", "").unwrap();
        assert!(empty.is_empty() && empty.exact_name().is_none() && empty.matches(&json!({})));
    }
}
