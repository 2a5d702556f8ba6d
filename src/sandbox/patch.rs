//! PATCH bodies as kube-apiserver 1.26 treats them: choosing the patch flavour from the
//! `Content-Type` ([`PatchKind`]), decoding the body with the server's error messages
//! ([`decode_patch`]), and applying it: RFC 7386 JSON merge patch ([`json_merge_patch`]),
//! RFC 6902 JSON patch with Kubernetes' quirks ([`json_patch`]) and strategic merge patch for
//! the built-in kinds the sandbox serves ([`strategic_merge_patch`]).

use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult, Details};

/// The patch flavours, chosen by the request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json` (built-in kinds only).
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply; the body is YAML or JSON).
    Apply,
}

impl PatchKind {
    /// The flavour for a PATCH `Content-Type` (parameters such as `; charset=utf-8` ignored),
    /// or the 415 the real server answers: custom resources get the handler's message listing
    /// the accepted types (no strategic merge patch for them), built-in resources get
    /// go-restful's terse `415: Unsupported Media Type` with `details: {}`.
    pub fn from_content_type(ct: &str, is_custom_resource: bool) -> ApiResult<PatchKind> {
        let base = ct.split_once(';').map_or(ct, |(base, _)| base).trim();
        match base {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/apply-patch+yaml" => Ok(PatchKind::Apply),
            "application/strategic-merge-patch+json" if !is_custom_resource => {
                Ok(PatchKind::Strategic)
            }
            _ if is_custom_resource => Err(ApiError::unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            )),
            _ => Err(
                ApiError::unsupported_media_type("415: Unsupported Media Type")
                    .with_details(empty_details()),
            ),
        }
    }
}

fn empty_details() -> Details {
    Details {
        empty_object: true,
        ..Default::default()
    }
}

/// Decodes a PATCH body. JSON patches come back as an array of operations (checked the way the
/// server's `[]jsonPatchOp` decoding checks them), every other flavour as an object; a `null`
/// body is an empty (no-op) patch. Errors are the server's 400s, Go's JSON messages included.
pub fn decode_patch(body: &[u8], patch_kind: PatchKind) -> ApiResult<Value> {
    match patch_kind {
        PatchKind::Json => {
            let ops = parse_json(body).map_err(|m| decode_error(&m))?;
            check_json_patch_ops(&ops)?;
            Ok(if ops.is_null() {
                Value::Array(Vec::new())
            } else {
                ops
            })
        }
        PatchKind::Merge => object_or_empty(parse_json(body).map_err(|m| decode_error(&m))?)
            .map_err(|m| decode_error(&m)),
        PatchKind::Strategic => object_or_empty(parse_json(body).map_err(ApiError::bad_request)?)
            .map_err(ApiError::bad_request),
        PatchKind::Apply => {
            let value = match serde_json::from_slice(body) {
                Ok(value) => value,
                Err(_) => serde_yaml::from_slice(body).map_err(|e| {
                    ApiError::bad_request(format!(
                        "error decoding YAML: error converting YAML to JSON: yaml: {e}"
                    ))
                })?,
            };
            object_or_empty(value).map_err(|m| {
                ApiError::bad_request(format!(
                    "error decoding YAML: error unmarshaling JSON: while decoding JSON: {m}"
                ))
            })
        }
    }
}

fn decode_error(message: &str) -> ApiError {
    ApiError::bad_request(format!("error decoding patch: {message}"))
}

/// A patch that must be a JSON object (Go decodes it into a map): `null` is an empty map.
fn object_or_empty(value: Value) -> Result<Value, String> {
    match value {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(value),
        other => Err(unmarshal_error(&other, "map[string]interface {}")),
    }
}

fn unmarshal_error(value: &Value, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go value of type {go_type}",
        json_type(value)
    )
}

/// The JSON type name Go's decoder uses in its messages.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses JSON, describing a syntax error the way Go's `encoding/json` does.
fn parse_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| go_json_error(body, &e))
}

/// Translates a serde_json syntax error into Go's wording (`invalid character 'r' looking for
/// beginning of object key string`, `unexpected end of JSON input`, ...).
fn go_json_error(body: &[u8], error: &serde_json::Error) -> String {
    if error.is_eof() {
        return "unexpected end of JSON input".to_string();
    }
    let text = error.to_string();
    let what = text
        .split_once(" at line ")
        .map_or(text.as_str(), |(w, _)| w);
    let offset = byte_offset(body, error.line(), error.column());
    let Some(c) = offset.and_then(|o| char_at(body, o)) else {
        return what.to_string();
    };
    let context = match what {
        "expected value" => "looking for beginning of value".to_string(),
        "key must be a string" => "looking for beginning of object key string".to_string(),
        "expected `:`" => "after object key".to_string(),
        "expected `,` or `}`" => "after object key:value pair".to_string(),
        "expected `,` or `]`" => "after array element".to_string(),
        "trailing characters" => "after top-level value".to_string(),
        "trailing comma" if c == '}' => "looking for beginning of object key string".to_string(),
        "trailing comma" => "looking for beginning of value".to_string(),
        "expected ident" => offset.map_or_else(String::new, |o| literal_context(body, o)),
        "invalid number" | "number out of range" => "in numeric literal".to_string(),
        w if w.starts_with("control character") => "in string literal".to_string(),
        w if w.contains("escape") => "in string escape code".to_string(),
        _ => return what.to_string(),
    };
    format!("invalid character {} {context}", go_quote_char(c))
}

/// The byte offset of serde_json's 1-based (line, column); column 0 is the previous newline.
fn byte_offset(body: &[u8], line: usize, column: usize) -> Option<usize> {
    let line_start = if line <= 1 {
        0
    } else {
        body.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)?
            .0
            + 1
    };
    (line_start + column).checked_sub(1)
}

fn char_at(body: &[u8], offset: usize) -> Option<char> {
    let rest = body.get(offset..)?;
    String::from_utf8_lossy(&rest[..rest.len().min(4)])
        .chars()
        .next()
}

/// `in literal true (expecting 'e')` for a misspelt `true`/`false`/`null`.
fn literal_context(body: &[u8], offset: usize) -> String {
    let before = body.get(..offset).unwrap_or_default();
    let start = before
        .iter()
        .rposition(|b| !b.is_ascii_alphabetic())
        .map_or(0, |p| p + 1);
    let literal = match body.get(start) {
        Some(b't') => "true",
        Some(b'f') => "false",
        Some(b'n') => "null",
        _ => return "looking for beginning of value".to_string(),
    };
    match literal.chars().nth(offset - start) {
        Some(expected) => format!(
            "in literal {literal} (expecting {})",
            go_quote_char(expected)
        ),
        None => "looking for beginning of value".to_string(),
    }
}

/// Go's `quoteChar`: `'x'`, `'\n'`, `'\''`, `'"'`.
fn go_quote_char(c: char) -> String {
    match c {
        '"' => "'\"'".to_string(),
        '\'' => "'\\''".to_string(),
        '\n' => "'\\n'".to_string(),
        '\r' => "'\\r'".to_string(),
        '\t' => "'\\t'".to_string(),
        c if c.is_control() => format!("'\\x{:02x}'", u32::from(c)),
        c => format!("'{c}'"),
    }
}

/// RFC 7386: `null` deletes a key, objects merge recursively, anything else replaces.
pub fn json_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.shift_remove(key);
            } else {
                json_merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// The server refuses JSON patches with more operations than this.
const MAX_JSON_PATCH_OPS: usize = 10_000;

/// RFC 6902 JSON patch, applied atomically (on error `target` is untouched). As on the real
/// server, `replace` of a missing map key adds it, and every failure of an operation (failed
/// `test`, missing path, bad index, unknown op) is the same generic 422 with `details: {}`.
pub fn json_patch(target: &mut Value, ops: &Value) -> ApiResult<()> {
    check_json_patch_ops(ops)?;
    let ops = ops.as_array().map_or(&[][..], Vec::as_slice);
    if ops.len() > MAX_JSON_PATCH_OPS {
        return Err(ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!(
                "Request entity too large: The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPS}, got {}",
                ops.len()
            ),
        ));
    }
    let mut doc = target.clone();
    for op in ops {
        apply_op(&mut doc, op).map_err(|_| rejected())?;
    }
    *target = doc;
    Ok(())
}

/// The server's answer to a patch it cannot apply (`NewGenericServerResponse(422, ...)`),
/// which drops the underlying reason.
fn rejected() -> ApiError {
    ApiError::new(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
    )
    .with_details(empty_details())
}

/// The shape checks of the server's decoding into `[]handlers.jsonPatchOp`.
fn check_json_patch_ops(ops: &Value) -> ApiResult<()> {
    let list = match ops {
        Value::Null => return Ok(()),
        Value::Array(list) => list,
        other => {
            return Err(decode_error(&unmarshal_error(
                other,
                "[]handlers.jsonPatchOp",
            )));
        }
    };
    for op in list {
        match op {
            Value::Null => {}
            Value::Object(fields) => {
                let wrong = fields.iter().find(|(name, value)| {
                    matches!(name.as_str(), "op" | "path" | "from")
                        && !value.is_null()
                        && !value.is_string()
                });
                if let Some((name, value)) = wrong {
                    return Err(decode_error(&format!(
                        "json: cannot unmarshal {} into Go struct field jsonPatchOp.{name} of type string",
                        json_type(value)
                    )));
                }
            }
            other => {
                return Err(decode_error(&unmarshal_error(
                    other,
                    "handlers.jsonPatchOp",
                )));
            }
        }
    }
    Ok(())
}

/// One RFC 6902 operation; the error says why, in evanphx/json-patch's words.
fn apply_op(doc: &mut Value, op: &Value) -> Result<(), String> {
    let field = |name: &str| op.get(name).and_then(Value::as_str);
    let path = || field("path").ok_or_else(|| "operation missing path field".to_string());
    let from = || field("from").ok_or_else(|| "operation, missing from field".to_string());
    let value = || op.get("value").cloned().unwrap_or(Value::Null);
    match field("op").unwrap_or("unknown") {
        "add" => add(doc, path()?, value()),
        "remove" => remove(doc, path()?).map(drop),
        "replace" => replace(doc, path()?, value()),
        "move" => {
            let (from, path) = (from()?, path()?);
            let moved = remove(doc, from)?;
            add(doc, path, moved)
        }
        "copy" => {
            let from = from()?;
            let copied = lookup(doc, from)?
                .ok_or_else(|| {
                    format!("copy operation does not apply: doc is missing from path: {from}")
                })?
                .clone();
            add(doc, path()?, copied)
        }
        "test" => {
            let path = path()?;
            let expected = op.get("value").unwrap_or(&Value::Null);
            match lookup(doc, path)? {
                Some(actual) if *actual == *expected => Ok(()),
                None if expected.is_null() => Ok(()),
                _ => Err(format!("testing value {path} failed: test failed")),
            }
        }
        other => Err(format!("Unexpected kind: {other}")),
    }
}

/// Splits a JSON pointer into its unescaped parent tokens and last token. The root (`""`) has
/// no parent, and evanphx/json-patch refuses to operate on it.
fn split_pointer(path: &str) -> Result<(Vec<String>, String), String> {
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("doc is missing path: {path:?}"))?;
    let mut tokens: Vec<String> = rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let last = tokens.pop().unwrap_or_default();
    Ok((tokens, last))
}

/// The container holding the pointer's last token.
fn parent_mut<'a>(
    doc: &'a mut Value,
    tokens: &[String],
    path: &str,
) -> Result<&'a mut Value, String> {
    let mut current = doc;
    for token in tokens {
        current = match current {
            Value::Object(map) => map.get_mut(token),
            Value::Array(list) => token.parse::<usize>().ok().and_then(|i| list.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("doc is missing path: {path}"))?;
    }
    Ok(current)
}

/// An array index below `len`.
fn array_index(token: &str, len: usize) -> Result<usize, String> {
    match token.parse::<usize>() {
        Ok(i) if i < len => Ok(i),
        Ok(i) => Err(format!(
            "Unable to access invalid index: {i}: invalid index referenced"
        )),
        Err(_) => Err(format!("value was not a proper array index: '{token}'")),
    }
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let (parent, key) = split_pointer(path)?;
    match parent_mut(doc, &parent, path)? {
        Value::Object(map) => {
            map.insert(key, value);
        }
        Value::Array(list) => {
            let index = if key == "-" {
                list.len()
            } else {
                array_index(&key, list.len() + 1)?
            };
            list.insert(index, value);
        }
        _ => {
            return Err(format!(
                "add operation does not apply: doc is missing path: {path}"
            ));
        }
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, key) = split_pointer(path)?;
    match parent_mut(doc, &parent, path)? {
        Value::Object(map) => map
            .shift_remove(&key)
            .ok_or_else(|| format!("Unable to remove nonexistent key: {key}: missing value")),
        Value::Array(list) => Ok(list.remove(array_index(&key, list.len())?)),
        _ => Err(format!(
            "remove operation does not apply: doc is missing path: {path}"
        )),
    }
}

fn replace(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let (parent, key) = split_pointer(path)?;
    match parent_mut(doc, &parent, path)? {
        // Kubernetes' json-patch adds a missing map key instead of failing.
        Value::Object(map) => {
            map.insert(key, value);
        }
        Value::Array(list) => {
            let index = array_index(&key, list.len())?;
            if let Some(slot) = list.get_mut(index) {
                *slot = value;
            }
        }
        _ => {
            return Err(format!(
                "replace operation does not apply: doc is missing path: {path}"
            ));
        }
    }
    Ok(())
}

/// The value at `path`: `None` when its parent is an object without that key.
fn lookup<'a>(doc: &'a mut Value, path: &str) -> Result<Option<&'a mut Value>, String> {
    let (parent, key) = split_pointer(path)?;
    match parent_mut(doc, &parent, path)? {
        Value::Object(map) => Ok(map.get_mut(&key)),
        Value::Array(list) => {
            let index = array_index(&key, list.len())?;
            Ok(list.get_mut(index))
        }
        _ => Err(format!("doc is missing path: {path}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch

const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

const ERR_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const ERR_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";

/// Kubernetes strategic merge patch for the object's `kind`: maps merge, `null` deletes, lists
/// replace unless the field has a merge strategy (merge keys as in the Go types'
/// `patchMergeKey` tags, primitive `finalizers` as a set), and the `$patch`, `$retainKeys`,
/// `$deleteFromPrimitiveList/…` and `$setElementOrder/…` directives are applied and never
/// stored. Kinds without a schema here merge like a JSON merge patch (plus the `metadata`
/// rules every built-in kind shares). Atomic: on error `target` is untouched.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value, kind: &str) -> ApiResult<()> {
    let patch = match patch {
        Value::Null => return Ok(()),
        Value::Object(patch) => patch,
        other => {
            return Err(ApiError::bad_request(unmarshal_error(
                other,
                "map[string]interface {}",
            )));
        }
    };
    let original = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let merged = merge_map(original, patch, Schema::for_kind(kind)).map_err(SmpError::into_api)?;
    *target = Value::Object(merged);
    Ok(())
}

/// Why a strategic merge patch failed, sorted by how the server reports it.
#[derive(Debug)]
enum SmpError {
    /// One of mergepatch's format errors: 400 BadRequest.
    BadRequest(&'static str),
    /// Lists of lists: the generic 422.
    Rejected,
    /// Any other error of the merge code, which the server passes on as a bare 500.
    Internal(String),
}

impl SmpError {
    fn into_api(self) -> ApiError {
        match self {
            SmpError::BadRequest(message) => ApiError::bad_request(message),
            SmpError::Rejected => rejected(),
            SmpError::Internal(message) => ApiError::new(500, "", message),
        }
    }
}

type Smp<T> = Result<T, SmpError>;

/// Where in which built-in type a value sits: just enough of the Go types to know the
/// patch strategy of each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    Root(Kind),
    Meta,
    WorkloadSpec,
    PodTemplate,
    PodSpec,
    Container,
    ServiceSpec,
    PodStatus,
    /// A status whose `conditions` merge by `type`.
    Conditions,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Workload,
    Pod,
    Service,
    Namespace,
    Other,
}

/// How a field's lists combine with the live list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListMerge {
    /// No strategy: the patch's list replaces the live one.
    Replace,
    /// `patchStrategy:"merge"` on a list of primitives: set union.
    Union,
    /// `patchStrategy:"merge"` with a `patchMergeKey`: elements merge by that key.
    ByKey(&'static str),
}

impl ListMerge {
    fn key(self) -> Option<&'static str> {
        match self {
            ListMerge::ByKey(key) => Some(key),
            _ => None,
        }
    }
}

impl Schema {
    fn for_kind(kind: &str) -> Schema {
        Schema::Root(match kind {
            "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => Kind::Workload,
            "Pod" => Kind::Pod,
            "Service" => Kind::Service,
            "Namespace" => Kind::Namespace,
            _ => Kind::Other,
        })
    }

    /// The schema of field `key` (of its elements, for lists) and how its lists merge.
    fn field(self, key: &str) -> (Schema, ListMerge) {
        use ListMerge::{ByKey, Replace, Union};
        use Schema::*;
        match (self, key) {
            (Root(_) | PodTemplate, "metadata") => (Meta, Replace),
            (Root(Kind::Workload), "spec") => (WorkloadSpec, Replace),
            (Root(Kind::Pod) | PodTemplate, "spec") => (PodSpec, Replace),
            (Root(Kind::Service), "spec") => (ServiceSpec, Replace),
            (Root(Kind::Pod), "status") => (PodStatus, Replace),
            (Root(Kind::Workload | Kind::Service | Kind::Namespace), "status") => {
                (Conditions, Replace)
            }
            (WorkloadSpec, "template") => (PodTemplate, Replace),
            (Meta, "finalizers") => (Any, Union),
            (Meta, "ownerReferences") => (Any, ByKey("uid")),
            (PodSpec, "containers" | "initContainers" | "ephemeralContainers") => {
                (Container, ByKey("name"))
            }
            (PodSpec, "volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims") => {
                (Any, ByKey("name"))
            }
            (PodSpec, "hostAliases") => (Any, ByKey("ip")),
            (PodSpec, "topologySpreadConstraints") => (Any, ByKey("topologyKey")),
            (Container, "env") => (Any, ByKey("name")),
            (Container, "ports") => (Any, ByKey("containerPort")),
            (Container, "volumeMounts") => (Any, ByKey("mountPath")),
            (Container, "volumeDevices") => (Any, ByKey("devicePath")),
            (ServiceSpec, "ports") => (Any, ByKey("port")),
            (PodStatus, "podIPs") => (Any, ByKey("ip")),
            (PodStatus | Conditions, "conditions") => (Any, ByKey("type")),
            _ => (Any, Replace),
        }
    }
}

/// What a key of a patch map is.
enum PatchKey<'a> {
    /// `$patch` or `$retainKeys`, handled before the fields.
    Directive,
    DeleteFromPrimitiveList(&'a str),
    SetElementOrder(&'a str),
    Field,
}

fn classify(key: &str) -> Smp<PatchKey<'_>> {
    let parallel = |prefix: &str, error| {
        key.strip_prefix(prefix)
            .map(|rest| rest.strip_prefix('/').ok_or(SmpError::BadRequest(error)))
    };
    if key == PATCH_DIRECTIVE || key == RETAIN_KEYS {
        Ok(PatchKey::Directive)
    } else if let Some(field) = parallel(DELETE_FROM_PRIMITIVE_LIST, ERR_PRIMITIVE_LIST) {
        field.map(PatchKey::DeleteFromPrimitiveList)
    } else if let Some(field) = parallel(SET_ELEMENT_ORDER, ERR_SET_ELEMENT_ORDER) {
        field.map(PatchKey::SetElementOrder)
    } else {
        Ok(PatchKey::Field)
    }
}

/// Merges a patch map into a live map (apimachinery's `mergeMap`).
fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    schema: Schema,
) -> Smp<Map<String, Value>> {
    match patch.get(PATCH_DIRECTIVE).map(Value::as_str) {
        None | Some(Some("merge")) => {}
        Some(Some("replace")) => {
            let mut replacement = patch.clone();
            replacement.shift_remove(PATCH_DIRECTIVE);
            return merge_map(Map::new(), &replacement, schema);
        }
        Some(Some("delete")) => return Ok(Map::new()),
        Some(_) => return Err(bad_patch_type(patch)),
    }

    let mut deletions = Vec::new();
    let mut orders = Vec::new();
    let mut fields = Vec::new();
    for (key, value) in patch {
        match classify(key)? {
            PatchKey::Directive => {}
            PatchKey::DeleteFromPrimitiveList(field) => deletions.push((field, value)),
            PatchKey::SetElementOrder(field) => orders.push((field, value)),
            PatchKey::Field => fields.push((key.as_str(), value)),
        }
    }

    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let retain = retain
            .as_array()
            .ok_or(SmpError::BadRequest(ERR_RETAIN_KEYS))?;
        let listed = |key: &str| retain.iter().any(|k| k.as_str() == Some(key));
        if fields
            .iter()
            .any(|(key, value)| !value.is_null() && !listed(key))
        {
            return Err(SmpError::BadRequest(ERR_RETAIN_KEYS));
        }
        original.retain(|key, _| listed(key));
    }

    for (field, values) in deletions {
        let values = list_arg(values)?;
        if let Some(Value::Array(live)) = original.get_mut(field) {
            live.retain(|v| !values.contains(v));
        }
    }

    let mut ordered = Vec::new();
    for (field, order) in orders {
        let order = list_arg(order)?;
        let (element, lists) = schema.field(field);
        let patch_list = patch.get(field).map(list_arg).transpose()?;
        let live = match original.get(field) {
            None => None,
            Some(Value::Array(live)) => Some(live.clone()),
            Some(other) => return Err(expected_list(other)),
        };
        check_element_order(patch_list, order, lists.key())?;
        let merged = match (live.clone(), patch_list) {
            (Some(live), Some(patch_list)) => merge_list(live, patch_list, element, lists)?,
            (Some(live), None) => live,
            (None, Some(patch_list)) => merge_list(Vec::new(), patch_list, element, lists)?,
            (None, None) => continue,
        };
        let live = live.unwrap_or_default();
        let merged = normalize_order(merged, order, &live, lists.key());
        original.insert(field.to_string(), Value::Array(merged));
        ordered.push(field);
    }

    for (field, value) in fields {
        if ordered.contains(&field) {
            continue;
        }
        if value.is_null() {
            original.shift_remove(field);
            continue;
        }
        let (child, lists) = schema.field(field);
        match original.get_mut(field) {
            Some(slot) => merge_into(slot, value, child, lists)?,
            None => {
                original.insert(field.to_string(), fresh(value, child, lists)?);
            }
        }
    }
    Ok(original)
}

fn bad_patch_type(map: &Map<String, Value>) -> SmpError {
    let directive = map.get(PATCH_DIRECTIVE).cloned().unwrap_or(Value::Null);
    SmpError::Internal(format!(
        "unknown patch type: {directive} in map: {}",
        Value::Object(map.clone())
    ))
}

fn expected_list(actual: &Value) -> SmpError {
    SmpError::Internal(format!(
        "expected a []interface {{}}, but received a {}",
        json_type(actual)
    ))
}

/// A directive argument that must be a list.
fn list_arg(value: &Value) -> Smp<&[Value]> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| expected_list(value))
}

/// Merges a patch value into a live one of the same field.
fn merge_into(slot: &mut Value, patch: &Value, schema: Schema, lists: ListMerge) -> Smp<()> {
    *slot = match (std::mem::take(slot), patch) {
        (Value::Object(live), Value::Object(patch)) => {
            Value::Object(merge_map(live, patch, schema)?)
        }
        (Value::Array(live), Value::Array(patch)) => {
            Value::Array(merge_list(live, patch, schema, lists)?)
        }
        (_, patch) => fresh(patch, schema, lists)?,
    };
    Ok(())
}

/// A patch value with nothing to merge into, merged into an empty value of its own type so
/// that directives and `null`s inside it are resolved rather than stored.
fn fresh(patch: &Value, schema: Schema, lists: ListMerge) -> Smp<Value> {
    Ok(match patch {
        Value::Object(map) => Value::Object(merge_map(Map::new(), map, schema)?),
        Value::Array(list) => Value::Array(merge_list(Vec::new(), list, schema, lists)?),
        other => other.clone(),
    })
}

/// Merges a patch list into a live list (apimachinery's `mergeSlice`).
fn merge_list(
    live: Vec<Value>,
    patch: &[Value],
    schema: Schema,
    lists: ListMerge,
) -> Smp<Vec<Value>> {
    if lists == ListMerge::Replace {
        return patch
            .iter()
            .map(|v| fresh(v, schema, ListMerge::Replace))
            .collect();
    }
    if live.is_empty() && patch.is_empty() {
        return Ok(live);
    }
    match (of_maps(&live, patch)?, lists.key()) {
        (false, _) => Ok(merge_union(live, patch)),
        (true, Some(key)) => merge_by_key(live, patch, key, schema),
        (true, None) => Err(SmpError::Internal(
            "cannot merge lists without merge key for type map".to_string(),
        )),
    }
}

/// Go's `sliceElementType`: all elements must share one JSON type, which is not a list.
/// Returns whether they are maps.
fn of_maps(live: &[Value], patch: &[Value]) -> Smp<bool> {
    let mut types = live.iter().chain(patch).map(json_type);
    let first = types.next().unwrap_or("object");
    if first == "array" {
        return Err(SmpError::Rejected);
    }
    if types.any(|t| t != first) {
        return Err(SmpError::Internal(format!(
            "list element types are not identical: {}, {}",
            Value::Array(live.to_vec()),
            Value::Array(patch.to_vec())
        )));
    }
    Ok(first == "object")
}

fn merge_union(live: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    let mut merged: Vec<Value> = Vec::with_capacity(live.len() + patch.len());
    for value in live.iter().chain(patch) {
        if !merged.contains(value) {
            merged.push(value.clone());
        }
    }
    normalize_order(merged, patch, &live, None)
}

fn merge_by_key(
    mut live: Vec<Value>,
    patch: &[Value],
    key: &str,
    schema: Schema,
) -> Smp<Vec<Value>> {
    let no_merge_key = |element: &Map<String, Value>| {
        SmpError::Internal(format!(
            "map: {} does not contain declared merge key: {key}",
            Value::Object(element.clone())
        ))
    };
    let mut elements = Vec::with_capacity(patch.len());
    let mut replace = false;
    for element in patch.iter().filter_map(Value::as_object) {
        match element.get(PATCH_DIRECTIVE).map(Value::as_str) {
            None | Some(Some("merge")) => elements.push(element),
            Some(Some("delete")) => {
                let id = element.get(key).ok_or_else(|| no_merge_key(element))?;
                live.retain(|v| v.get(key) != Some(id));
            }
            Some(Some("replace")) => replace = true,
            Some(_) => return Err(bad_patch_type(element)),
        }
    }
    if replace {
        return elements
            .into_iter()
            .map(|element| merge_map(Map::new(), element, schema).map(Value::Object))
            .collect();
    }
    let server_order = live.clone();
    for element in elements {
        let id = element.get(key).ok_or_else(|| no_merge_key(element))?;
        match live.iter_mut().find(|v| v.get(key) == Some(id)) {
            Some(slot) => {
                let current = match std::mem::take(slot) {
                    Value::Object(current) => current,
                    _ => Map::new(),
                };
                *slot = Value::Object(merge_map(current, element, schema)?);
            }
            None => live.push(Value::Object(merge_map(Map::new(), element, schema)?)),
        }
    }
    Ok(normalize_order(live, patch, &server_order, Some(key)))
}

/// What identifies a list element when ordering: its merge key's value, or itself.
fn identity<'a>(value: &'a Value, key: Option<&str>) -> Option<&'a Value> {
    match key {
        Some(key) => value.get(key),
        None => Some(value),
    }
}

fn position(list: &[Value], value: &Value, key: Option<&str>) -> Option<usize> {
    let id = identity(value, key);
    list.iter().position(|v| identity(v, key) == id)
}

/// apimachinery's `normalizeElementOrder`: the elements named in `order` come in that order,
/// the others in their live order, and the two runs are interleaved by live position (an
/// element the live list lacks goes before the remaining live-only ones).
fn normalize_order(
    merged: Vec<Value>,
    order: &[Value],
    live: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let ranked = |list: Vec<Value>, by: &[Value]| {
        let mut ranked: Vec<(Option<usize>, Value)> = list
            .into_iter()
            .map(|v| (position(by, &v, key), v))
            .collect();
        ranked.sort_by_key(|(rank, _)| *rank);
        ranked.into_iter().map(|(_, v)| v)
    };
    let (named, rest): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|v| position(order, v, key).is_some());
    let mut rest = ranked(rest, live).peekable();
    let mut out = Vec::new();
    for item in ranked(named, order) {
        let item_rank = position(live, &item, key);
        while let Some(next) = rest
            .next_if(|r| matches!((position(live, r, key), item_rank), (Some(a), Some(b)) if a < b))
        {
            out.push(next);
        }
        out.push(item);
    }
    out.extend(rest);
    out
}

/// apimachinery's `validatePatchWithSetOrderList`: the patch's elements (deletions and other
/// directives aside) must appear in the `$setElementOrder` list, in the same relative order.
fn check_element_order(patch: Option<&[Value]>, order: &[Value], key: Option<&str>) -> Smp<()> {
    let Some(patch) = patch else { return Ok(()) };
    if order.is_empty() {
        return Ok(());
    }
    let mut rest = order;
    for element in patch.iter().filter(|v| v.get(PATCH_DIRECTIVE).is_none()) {
        let found = rest
            .iter()
            .position(|o| identity(o, key).is_some() && identity(o, key) == identity(element, key));
        match found {
            Some(i) => rest = rest.get(i + 1..).unwrap_or_default(),
            None => {
                return Err(SmpError::Internal(format!(
                    "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
                    Value::Array(patch.to_vec()),
                    Value::Array(order.to_vec())
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::sandbox::test_fixtures::{fixture, fixture_json};

    fn smp(target: &Value, patch: Value, kind: &str) -> Value {
        let mut out = target.clone();
        strategic_merge_patch(&mut out, &patch, kind).unwrap();
        out
    }

    fn smp_err(target: &Value, patch: Value, kind: &str) -> ApiError {
        let mut out = target.clone();
        let err = strategic_merge_patch(&mut out, &patch, kind).unwrap_err();
        assert_eq!(&out, target, "target must be untouched on error");
        err
    }

    /// True when no object key anywhere in `v` is a patch directive.
    fn directive_free(v: &Value) -> bool {
        match v {
            Value::Object(m) => m.iter().all(|(k, v)| {
                !(k == "$patch"
                    || k == "$retainKeys"
                    || k.starts_with("$setElementOrder")
                    || k.starts_with("$deleteFromPrimitiveList"))
                    && directive_free(v)
            }),
            Value::Array(a) => a.iter().all(directive_free),
            _ => true,
        }
    }

    fn names(list: &Value) -> Vec<&str> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect()
    }

    // --- content types ------------------------------------------------------------------

    #[test]
    fn content_types_map_to_kinds() {
        let cases = [
            ("application/json-patch+json", PatchKind::Json),
            (
                "application/merge-patch+json; charset=utf-8",
                PatchKind::Merge,
            ),
            (
                "application/strategic-merge-patch+json",
                PatchKind::Strategic,
            ),
            ("application/apply-patch+yaml", PatchKind::Apply),
        ];
        for (ct, kind) in cases {
            assert_eq!(
                PatchKind::from_content_type(ct, false).unwrap(),
                kind,
                "{ct}"
            );
        }
        assert_eq!(
            PatchKind::from_content_type("application/merge-patch+json", true).unwrap(),
            PatchKind::Merge
        );
        assert_eq!(
            PatchKind::from_content_type("application/apply-patch+yaml", true).unwrap(),
            PatchKind::Apply
        );
    }

    #[test]
    fn unsupported_content_types_match_fixtures() {
        for (ct, file) in [
            (
                "application/json",
                "05-errors/415-patch-application-json.json",
            ),
            ("text/plain", "05-errors/415-patch-text-plain.json"),
            ("", "05-errors/415-patch-text-plain.json"),
        ] {
            let err = PatchKind::from_content_type(ct, false).unwrap_err();
            assert_eq!(err.to_status(), fixture_json(file), "{ct}");
        }
        let err = PatchKind::from_content_type("application/strategic-merge-patch+json", true)
            .unwrap_err();
        assert_eq!(
            err.to_status(),
            fixture_json("05-errors/415-strategic-patch-on-custom-resource.json")
        );
        let err = PatchKind::from_content_type("application/json", true).unwrap_err();
        assert_eq!(err.code, 415);
        assert!(err.details.is_none());
    }

    // --- decoding -----------------------------------------------------------------------

    #[test]
    fn decode_errors_match_fixtures() {
        let cases = [
            (
                "05-errors/400-malformed-json-merge-patch.request.txt",
                PatchKind::Merge,
                "05-errors/400-malformed-json-merge-patch.json",
            ),
            (
                "05-errors/400-malformed-json-strategic-patch.request.txt",
                PatchKind::Strategic,
                "05-errors/400-malformed-json-strategic-patch.json",
            ),
            (
                "05-errors/400-malformed-json-patch.request.json",
                PatchKind::Json,
                "05-errors/400-malformed-json-patch.json",
            ),
        ];
        for (body, kind, expected) in cases {
            let err = decode_patch(fixture(body).trim_end().as_bytes(), kind).unwrap_err();
            assert_eq!(err.to_status(), fixture_json(expected), "{body}");
        }
    }

    #[test]
    fn decode_reproduces_go_json_messages() {
        let cases: &[(&str, &str)] = &[
            ("", "unexpected end of JSON input"),
            ("  ", "unexpected end of JSON input"),
            (
                "{\"a\":1,}",
                "invalid character '}' looking for beginning of object key string",
            ),
            (
                "{\"a\":[1,]}",
                "invalid character ']' looking for beginning of value",
            ),
            ("{\"a\" 1}", "invalid character '1' after object key"),
            (
                "{\"a\":1 \"b\":2}",
                "invalid character '\"' after object key:value pair",
            ),
            ("{\"a\":[1 2]}", "invalid character '2' after array element"),
            ("{} x", "invalid character 'x' after top-level value"),
            (
                "{\"a\":trux}",
                "invalid character 'x' in literal true (expecting 'e')",
            ),
            (
                "{\"a\":nul}",
                "invalid character '}' in literal null (expecting 'l')",
            ),
            (
                "{\"a\":\"x\ny\"}",
                "invalid character '\\n' in string literal",
            ),
            (
                "{'a':1}",
                "invalid character '\\'' looking for beginning of object key string",
            ),
            (
                "{\"a\":\n  x}",
                "invalid character 'x' looking for beginning of value",
            ),
        ];
        for (body, message) in cases {
            let err = decode_patch(body.as_bytes(), PatchKind::Strategic).unwrap_err();
            assert_eq!(
                (err.code, err.message.as_str()),
                (400, *message),
                "{body:?}"
            );
        }
    }

    #[test]
    fn decode_checks_types_like_go() {
        let message = |body: &str, kind| decode_patch(body.as_bytes(), kind).unwrap_err().message;
        assert_eq!(
            message("\"x\"", PatchKind::Json),
            "error decoding patch: json: cannot unmarshal string into Go value of type []handlers.jsonPatchOp"
        );
        assert_eq!(
            message("[1]", PatchKind::Json),
            "error decoding patch: json: cannot unmarshal number into Go value of type handlers.jsonPatchOp"
        );
        assert_eq!(
            message("[{\"op\":\"add\",\"path\":3}]", PatchKind::Json),
            "error decoding patch: json: cannot unmarshal number into Go struct field jsonPatchOp.path of type string"
        );
        assert_eq!(
            message("[1]", PatchKind::Merge),
            "error decoding patch: json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        assert_eq!(
            message("true", PatchKind::Strategic),
            "json: cannot unmarshal bool into Go value of type map[string]interface {}"
        );
        assert_eq!(
            message("- a\n- b\n", PatchKind::Apply),
            "error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        assert!(
            message("a: b\n c: d", PatchKind::Apply)
                .starts_with("error decoding YAML: error converting YAML to JSON: yaml: ")
        );
    }

    #[test]
    fn decode_accepts_null_json_and_yaml() {
        assert_eq!(decode_patch(b"null", PatchKind::Json).unwrap(), json!([]));
        assert_eq!(decode_patch(b"null", PatchKind::Merge).unwrap(), json!({}));
        assert_eq!(decode_patch(b"", PatchKind::Apply).unwrap(), json!({}));
        let ops = decode_patch(
            br#"[{"op":"replace","path":"/spec/replicas","value":2},null]"#,
            PatchKind::Json,
        )
        .unwrap();
        assert_eq!(ops[0]["value"], json!(2));
        let request = fixture("06-kubectl/18-apply-server-side.patch.request.json");
        assert_eq!(
            decode_patch(request.as_bytes(), PatchKind::Apply).unwrap(),
            fixture_json("06-kubectl/18-apply-server-side.patch.request.json")
        );
        let yaml = fixture("06-kubectl/18-apply-server-side.input.yaml");
        let applied = decode_patch(yaml.as_bytes(), PatchKind::Apply).unwrap();
        assert_eq!(applied["kind"], json!("Deployment"));
        assert_eq!(
            applied["spec"]["template"]["spec"]["containers"][0]["name"],
            json!("inventory")
        );
    }

    // --- JSON merge patch ---------------------------------------------------------------

    #[test]
    fn merge_patch_rfc7386_examples() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (target, patch, expected) in cases {
            let mut out = target.clone();
            json_merge_patch(&mut out, &patch);
            assert_eq!(out, expected, "{target} + {patch}");
        }
    }

    #[test]
    fn merge_patch_keeps_key_order() {
        let mut target = json!({"a":1,"b":2,"c":3});
        json_merge_patch(&mut target, &json!({"a":null,"b":5,"d":4}));
        let keys: Vec<&String> = target.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["b", "c", "d"]);
    }

    #[test]
    fn merge_patch_fixture_scale_and_annotation() {
        let mut deploy = fixture_json("03-get/deployment-checkout.json");
        let patch = fixture_json("06-kubectl/15-patch-deployment-merge.patch.request.json");
        json_merge_patch(&mut deploy, &patch);
        let response = fixture_json("06-kubectl/15-patch-deployment-merge.patch.response.json");
        assert_eq!(
            deploy["metadata"]["annotations"]["kockpit.example/canary-step"],
            response["metadata"]["annotations"]["kockpit.example/canary-step"]
        );
    }

    // --- JSON patch ---------------------------------------------------------------------

    #[test]
    fn json_patch_test_failure_matches_fixture() {
        let mut deploy = fixture_json("05-errors/200-jsonpatch-replace-missing-key-succeeds.json");
        let before = deploy.clone();
        let ops = fixture_json("05-errors/422-jsonpatch-test-failed.request.json");
        let err = json_patch(&mut deploy, &ops).unwrap_err();
        assert_eq!(
            err.to_status(),
            fixture_json("05-errors/422-jsonpatch-test-failed.json")
        );
        assert_eq!(deploy, before);
    }

    #[test]
    fn json_patch_fixtures_replace_missing_key_and_remove_escaped() {
        let with_key = fixture_json("05-errors/200-jsonpatch-replace-missing-key-succeeds.json");
        let without_key = fixture_json("11-extra/patch-jsonpatch-remove-annotation.json");

        let mut doc = without_key.clone();
        json_patch(
            &mut doc,
            &fixture_json("05-errors/200-jsonpatch-replace-missing-key-succeeds.request.json"),
        )
        .unwrap();
        assert_eq!(
            doc["spec"]["template"]["metadata"]["annotations"]["kockpit.example/missing"],
            json!("x")
        );

        let mut doc = with_key.clone();
        json_patch(
            &mut doc,
            &fixture_json("11-extra/patch-jsonpatch-remove-annotation.request.json"),
        )
        .unwrap();
        assert_eq!(doc["spec"], without_key["spec"]);
    }

    #[test]
    fn json_patch_fixtures_rollout_undo_and_replicas() {
        let mut doc = fixture_json("03-get/deployment-frontend.json");
        let ops = fixture_json("06-kubectl/02-rollout-undo.patch.request.json");
        json_patch(&mut doc, &ops).unwrap();
        let response = fixture_json("06-kubectl/02-rollout-undo.patch.response.json");
        assert_eq!(doc["spec"]["template"], response["spec"]["template"]);
        assert_eq!(
            doc["metadata"]["annotations"],
            response["metadata"]["annotations"]
        );

        let mut doc = fixture_json("03-get/deployment-checkout.json");
        json_patch(
            &mut doc,
            &fixture_json("06-kubectl/16-patch-deployment-json.patch.request.json"),
        )
        .unwrap();
        assert_eq!(doc["spec"]["replicas"], json!(2));
    }

    #[test]
    fn json_patch_operations() {
        let mut doc = json!({"a":{"b":[1,2,3]},"m~n":1,"x/y":2});
        let ops = json!([
            {"op":"add","path":"/a/b/1","value":9},
            {"op":"add","path":"/a/b/-","value":4},
            {"op":"remove","path":"/a/b/0"},
            {"op":"replace","path":"/a/b/0","value":8},
            {"op":"move","from":"/m~0n","path":"/moved"},
            {"op":"copy","from":"/x~1y","path":"/a/copy"},
            {"op":"test","path":"/a/copy","value":2},
            {"op":"test","path":"/absent","value":null},
            {"op":"add","path":"/a/new"}
        ]);
        json_patch(&mut doc, &ops).unwrap();
        assert_eq!(
            doc,
            json!({"a":{"b":[8,2,3,4],"copy":2,"new":null},"x/y":2,"moved":1})
        );
    }

    #[test]
    fn json_patch_operation_errors() {
        let doc = json!({"a":{"b":[1]},"s":"x"});
        let cases: &[(Value, &str)] = &[
            (
                json!({"op":"remove","path":"/a/zz"}),
                "Unable to remove nonexistent key: zz: missing value",
            ),
            (
                json!({"op":"replace","path":"/a/b/1","value":0}),
                "Unable to access invalid index: 1: invalid index referenced",
            ),
            (
                json!({"op":"add","path":"/a/b/3","value":0}),
                "Unable to access invalid index: 3: invalid index referenced",
            ),
            (
                json!({"op":"add","path":"/a/b/x","value":0}),
                "value was not a proper array index: 'x'",
            ),
            (
                json!({"op":"add","path":"/nope/x","value":0}),
                "doc is missing path: /nope/x",
            ),
            (
                json!({"op":"add","path":"/s/x","value":0}),
                "add operation does not apply: doc is missing path: /s/x",
            ),
            (
                json!({"op":"replace","path":"","value":0}),
                "doc is missing path: \"\"",
            ),
            (
                json!({"op":"test","path":"/s","value":"y"}),
                "testing value /s failed: test failed",
            ),
            (
                json!({"op":"test","path":"/zz","value":1}),
                "testing value /zz failed: test failed",
            ),
            (
                json!({"op":"copy","from":"/zz","path":"/y"}),
                "copy operation does not apply: doc is missing from path: /zz",
            ),
            (
                json!({"op":"move","from":"/a","path":"/a/b/0"}),
                "doc is missing path: /a/b/0",
            ),
            (json!({"op":"frob","path":"/a"}), "Unexpected kind: frob"),
            (json!({"path":"/a"}), "Unexpected kind: unknown"),
            (json!(null), "Unexpected kind: unknown"),
            (
                json!({"op":"add","value":1}),
                "operation missing path field",
            ),
            (
                json!({"op":"move","path":"/q"}),
                "operation, missing from field",
            ),
        ];
        for (op, message) in cases {
            let mut d = doc.clone();
            assert_eq!(apply_op(&mut d, op).unwrap_err(), *message, "{op}");
            let mut d = doc.clone();
            let err = json_patch(&mut d, &json!([op])).unwrap_err();
            assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
            assert_eq!(d, doc);
        }
    }

    #[test]
    fn json_patch_limits_and_shapes() {
        let mut doc = json!({});
        let many = Value::Array(vec![
            json!({"op":"test","path":"/a"});
            MAX_JSON_PATCH_OPS + 1
        ]);
        let err = json_patch(&mut doc, &many).unwrap_err();
        assert_eq!(
            (err.code, err.reason.as_str()),
            (413, "RequestEntityTooLarge")
        );
        assert_eq!(
            err.message,
            "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
        );
        assert_eq!(
            json_patch(&mut doc, &json!({"op":"add"})).unwrap_err().code,
            400
        );
        json_patch(&mut doc, &json!(null)).unwrap();
        assert_eq!(doc, json!({}));
    }

    // --- strategic merge patch: fixtures -------------------------------------------------

    #[test]
    fn smp_set_image_fixture() {
        let response = fixture_json("06-kubectl/12-set-image-payments-green.patch.response.json");
        let mut before = response.clone();
        before["spec"]["template"]["spec"]["containers"][0]["image"] =
            json!("registry.local/payments:2.4.0");
        let patch = fixture_json("06-kubectl/12-set-image-payments-green.patch.request.json");
        let after = smp(&before, patch, "Deployment");
        assert_eq!(after["spec"], response["spec"]);
        assert!(directive_free(&after));
    }

    #[test]
    fn smp_service_selector_fixture() {
        let service = fixture_json("03-get/service-payments.json");
        let patch =
            fixture_json("06-kubectl/13-patch-service-selector-strategic.patch.request.json");
        let after = smp(&service, patch, "Service");
        let response =
            fixture_json("06-kubectl/13-patch-service-selector-strategic.patch.response.json");
        assert_eq!(after["spec"], response["spec"]);
    }

    #[test]
    fn smp_rollout_fixtures() {
        let deploy = fixture_json("03-get/deployment-frontend.json");
        let paused = smp(
            &deploy,
            fixture_json("06-kubectl/05-rollout-pause.patch.request.json"),
            "Deployment",
        );
        assert_eq!(paused["spec"]["paused"], json!(true));
        let resumed = smp(
            &paused,
            fixture_json("06-kubectl/07-rollout-resume.patch.request.json"),
            "Deployment",
        );
        assert!(resumed["spec"].get("paused").is_none());
        assert_eq!(resumed["spec"], deploy["spec"]);
        let restarted = smp(
            &deploy,
            fixture_json("06-kubectl/08-rollout-restart.patch.request.json"),
            "Deployment",
        );
        let response = fixture_json("06-kubectl/08-rollout-restart.patch.response.json");
        assert_eq!(
            restarted["spec"]["template"]["metadata"]["annotations"],
            response["spec"]["template"]["metadata"]["annotations"]
        );
        assert_eq!(
            restarted["spec"]["template"]["spec"],
            deploy["spec"]["template"]["spec"]
        );
    }

    // --- strategic merge patch: semantics ------------------------------------------------

    fn deployment(containers: Value) -> Value {
        json!({"kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":1,"template":{"metadata":{},"spec":{"containers":containers}}}})
    }

    fn containers_of(v: &Value) -> &Value {
        &v["spec"]["template"]["spec"]["containers"]
    }

    #[test]
    fn smp_containers_merge_by_name() {
        let before = deployment(json!([
            {"name":"a","image":"a:1","env":[{"name":"X","value":"1"},{"name":"Y","value":"2"}],"ports":[{"containerPort":80,"name":"http"}]},
            {"name":"b","image":"b:1"}
        ]));
        let patch = json!({"spec":{"template":{"spec":{"containers":[
            {"name":"b","image":"b:2"},
            {"name":"a","env":[{"name":"Y","value":"3"},{"name":"Z","value":"4"}],"ports":[{"containerPort":80,"protocol":"TCP"}]}
        ]}}}});
        let after = smp(&before, patch, "Deployment");
        let containers = containers_of(&after);
        assert_eq!(
            names(containers),
            ["b", "a"],
            "elements named by the patch take its order"
        );
        assert_eq!(containers[0]["image"], json!("b:2"));
        assert_eq!(containers[1]["image"], json!("a:1"));
        assert_eq!(
            containers[1]["env"],
            json!([{"name":"X","value":"1"},{"name":"Y","value":"3"},{"name":"Z","value":"4"}])
        );
        assert_eq!(
            containers[1]["ports"],
            json!([{"containerPort":80,"name":"http","protocol":"TCP"}])
        );
    }

    #[test]
    fn smp_new_list_element_goes_first_like_apimachinery() {
        let before = deployment(json!([{"name":"a","image":"a:1"},{"name":"b","image":"b:1"}]));
        let after = smp(
            &before,
            json!({"spec":{"template":{"spec":{"containers":[{"name":"c","image":"c:1"}]}}}}),
            "Deployment",
        );
        assert_eq!(names(containers_of(&after)), ["c", "a", "b"]);
        let after = smp(
            &before,
            json!({"spec":{"template":{"spec":{"containers":[{"name":"b","image":"b:2"},{"name":"c","image":"c:1"}]}}}}),
            "Deployment",
        );
        assert_eq!(names(containers_of(&after)), ["a", "b", "c"]);
    }

    #[test]
    fn smp_list_directives() {
        let before = deployment(json!([{"name":"a","image":"a:1"},{"name":"b","image":"b:1"}]));
        let after = smp(
            &before,
            json!({"spec":{"template":{"spec":{"containers":[{"name":"a","$patch":"delete"}]}}}}),
            "Deployment",
        );
        assert_eq!(names(containers_of(&after)), ["b"]);
        let after = smp(
            &before,
            json!({"spec":{"template":{"spec":{"containers":[{"name":"z","image":"z:1"},{"$patch":"replace"}]}}}}),
            "Deployment",
        );
        assert_eq!(containers_of(&after), &json!([{"name":"z","image":"z:1"}]));
        let after = smp(
            &before,
            json!({"spec":{"template":{"spec":{"containers":[{"name":"a","image":"a:2","$patch":"merge"}]}}}}),
            "Deployment",
        );
        assert_eq!(containers_of(&after)[0], json!({"name":"a","image":"a:2"}));
        assert!(directive_free(&after));
    }

    #[test]
    fn smp_set_element_order() {
        let before = deployment(json!([{"name":"a"},{"name":"b"},{"name":"c"}]));
        let after = smp(
            &before,
            json!({"spec":{"template":{"spec":{
            "$setElementOrder/containers":[{"name":"c"},{"name":"a"},{"name":"b"}],
            "containers":[{"name":"a","image":"a:2"}]}}}}),
            "Deployment",
        );
        assert_eq!(names(containers_of(&after)), ["c", "a", "b"]);
        assert_eq!(containers_of(&after)[1]["image"], json!("a:2"));
        // Unmentioned live elements are interleaved by live position, as apimachinery does:
        // `b` (live index 1) goes before `c` (live index 2).
        let after = smp(
            &before,
            json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"c"},{"name":"a"}]}}}}),
            "Deployment",
        );
        assert_eq!(names(containers_of(&after)), ["b", "c", "a"]);
        // A new element placed by the order list.
        let after = smp(
            &before,
            json!({"spec":{"template":{"spec":{
            "$setElementOrder/containers":[{"name":"a"},{"name":"b"},{"name":"n"},{"name":"c"}],
            "containers":[{"name":"n","image":"n:1"}]}}}}),
            "Deployment",
        );
        assert_eq!(names(containers_of(&after)), ["a", "b", "n", "c"]);
        assert!(directive_free(&after));
        // The patch list must follow the order list.
        let err = smp_err(
            &before,
            json!({"spec":{"template":{"spec":{
            "$setElementOrder/containers":[{"name":"a"},{"name":"b"}],
            "containers":[{"name":"b"},{"name":"a"}]}}}}),
            "Deployment",
        );
        assert_eq!(err.code, 500);
    }

    #[test]
    fn smp_finalizers_union_and_delete_from_primitive_list() {
        let before = json!({"metadata":{"name":"n","finalizers":["a","b"]}});
        let after = smp(
            &before,
            json!({"metadata":{"finalizers":["b","c"]}}),
            "Namespace",
        );
        assert_eq!(after["metadata"]["finalizers"], json!(["a", "b", "c"]));
        let after = smp(
            &before,
            json!({"metadata":{"finalizers":["c"]}}),
            "ConfigMap",
        );
        assert_eq!(
            after["metadata"]["finalizers"],
            json!(["c", "a", "b"]),
            "apimachinery puts new items first"
        );
        let after = smp(
            &before,
            json!({"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}}),
            "Pod",
        );
        assert_eq!(after["metadata"], json!({"name":"n","finalizers":["b"]}));
        let after = smp(
            &before,
            json!({"metadata":{"$setElementOrder/finalizers":["b","a"]}}),
            "Pod",
        );
        assert_eq!(after["metadata"]["finalizers"], json!(["b", "a"]));
    }

    #[test]
    fn smp_owner_references_and_conditions() {
        let before = json!({"metadata":{"ownerReferences":[{"uid":"1","name":"x"}]},"status":{"conditions":[{"type":"Ready","status":"False"},{"type":"Initialized","status":"True"}],"podIPs":[{"ip":"10.0.0.1"}]}});
        let after = smp(
            &before,
            json!({"metadata":{"ownerReferences":[{"uid":"1","controller":true}]},"status":{"conditions":[{"type":"Ready","status":"True"}]}}),
            "Pod",
        );
        assert_eq!(
            after["metadata"]["ownerReferences"],
            json!([{"uid":"1","name":"x","controller":true}])
        );
        assert_eq!(
            after["status"]["conditions"],
            json!([{"type":"Ready","status":"True"},{"type":"Initialized","status":"True"}])
        );
        let deploy = json!({"status":{"conditions":[{"type":"Available","status":"True"}]}});
        let after = smp(
            &deploy,
            json!({"status":{"conditions":[{"type":"Progressing","status":"True"}]}}),
            "Deployment",
        );
        assert_eq!(after["status"]["conditions"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn smp_lists_without_strategy_replace() {
        let pod = json!({"spec":{"tolerations":[{"key":"a"}],"readinessGates":[{"conditionType":"x"}],"containers":[{"name":"c","args":["1","2"],"envFrom":[{"configMapRef":{"name":"a"}}]}]}});
        let after = smp(
            &pod,
            json!({"spec":{"tolerations":[{"key":"b"}],"readinessGates":[{"conditionType":"y"}],"containers":[{"name":"c","args":["3"],"envFrom":[{"secretRef":{"name":"s"}}]}]}}),
            "Pod",
        );
        assert_eq!(after["spec"]["tolerations"], json!([{"key":"b"}]));
        assert_eq!(
            after["spec"]["readinessGates"],
            json!([{"conditionType":"y"}])
        );
        assert_eq!(after["spec"]["containers"][0]["args"], json!(["3"]));
        assert_eq!(
            after["spec"]["containers"][0]["envFrom"],
            json!([{"secretRef":{"name":"s"}}])
        );
    }

    #[test]
    fn smp_pod_spec_merge_keys() {
        let pod = json!({"spec":{
            "volumes":[{"name":"v1","emptyDir":{}}],
            "containers":[{"name":"c","volumeMounts":[{"name":"v1","mountPath":"/a"}]}],
            "imagePullSecrets":[{"name":"r1"}],
            "hostAliases":[{"ip":"1.1.1.1","hostnames":["a"]}],
            "topologySpreadConstraints":[{"topologyKey":"zone","maxSkew":1}],
            "initContainers":[{"name":"i","image":"i:1"}]}});
        let after = smp(
            &pod,
            json!({"spec":{
            "volumes":[{"name":"v2","emptyDir":{}}],
            "containers":[{"name":"c","volumeMounts":[{"name":"v1","mountPath":"/a","readOnly":true}]}],
            "imagePullSecrets":[{"name":"r2"}],
            "hostAliases":[{"ip":"1.1.1.1","hostnames":["b"]}],
            "topologySpreadConstraints":[{"topologyKey":"zone","maxSkew":2}],
            "initContainers":[{"name":"i","image":"i:2"}]}}),
            "Pod",
        );
        assert_eq!(after["spec"]["volumes"].as_array().unwrap().len(), 2);
        assert_eq!(
            after["spec"]["containers"][0]["volumeMounts"],
            json!([{"name":"v1","mountPath":"/a","readOnly":true}])
        );
        assert_eq!(
            after["spec"]["imagePullSecrets"].as_array().unwrap().len(),
            2
        );
        assert_eq!(
            after["spec"]["hostAliases"],
            json!([{"ip":"1.1.1.1","hostnames":["b"]}])
        );
        assert_eq!(
            after["spec"]["topologySpreadConstraints"],
            json!([{"topologyKey":"zone","maxSkew":2}])
        );
        assert_eq!(
            after["spec"]["initContainers"],
            json!([{"name":"i","image":"i:2"}])
        );
    }

    #[test]
    fn smp_service_ports_by_port() {
        let svc = json!({"spec":{"ports":[{"name":"http","port":80,"targetPort":8080}],"selector":{"app":"a","version":"blue"}}});
        let after = smp(
            &svc,
            json!({"spec":{"ports":[{"port":80,"targetPort":9090},{"port":443,"name":"https"}],"selector":{"version":null}}}),
            "Service",
        );
        assert_eq!(
            after["spec"]["ports"],
            json!([{"name":"http","port":80,"targetPort":9090},{"port":443,"name":"https"}])
        );
        assert_eq!(after["spec"]["selector"], json!({"app":"a"}));
    }

    #[test]
    fn smp_map_directives_and_retain_keys() {
        let deploy = json!({"spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}},"selector":{"matchLabels":{"a":"1","b":"2"}}}});
        let after = smp(
            &deploy,
            json!({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}),
            "Deployment",
        );
        assert_eq!(after["spec"]["strategy"], json!({"type":"Recreate"}));
        let after = smp(
            &deploy,
            json!({"spec":{"selector":{"matchLabels":{"$patch":"replace","c":"3"}}}}),
            "Deployment",
        );
        assert_eq!(after["spec"]["selector"]["matchLabels"], json!({"c":"3"}));
        let after = smp(
            &deploy,
            json!({"spec":{"strategy":{"$patch":"delete"}}}),
            "Deployment",
        );
        assert_eq!(after["spec"]["strategy"], json!({}));
        let after = smp(
            &deploy,
            json!({"spec":{"selector":{"$patch":"merge","matchLabels":{"a":null}}}}),
            "Deployment",
        );
        assert_eq!(after["spec"]["selector"]["matchLabels"], json!({"b":"2"}));
        assert!(directive_free(&after));
        let err = smp_err(
            &deploy,
            json!({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{}}}}),
            "Deployment",
        );
        assert_eq!(
            (err.code, err.message.as_str()),
            (400, "invalid patch format of retainKeys")
        );
        let err = smp_err(
            &deploy,
            json!({"spec":{"strategy":{"$retainKeys":"type"}}}),
            "Deployment",
        );
        assert_eq!(err.code, 400);
    }

    #[test]
    fn smp_new_values_are_cleaned_of_directives_and_nulls() {
        let before = json!({"spec":{}});
        let after = smp(
            &before,
            json!({"spec":{"template":{"metadata":{"labels":{"a":"1","b":null}},"spec":{
            "$setElementOrder/containers":[{"name":"x"}],
            "containers":[{"name":"x","env":[{"name":"E","$patch":"delete"}],"$retainKeys":["name","env"]}]}}}}),
            "Deployment",
        );
        assert_eq!(
            after,
            json!({"spec":{"template":{"metadata":{"labels":{"a":"1"}},"spec":{"containers":[{"name":"x","env":[]}]}}}})
        );
    }

    #[test]
    fn smp_unknown_kind_is_merge_patch() {
        let cm = json!({"data":{"a":"1","b":"2"},"list":[1,2]});
        let patch = json!({"data":{"a":null,"c":"3"},"list":[3]});
        let mut merged = cm.clone();
        json_merge_patch(&mut merged, &patch);
        assert_eq!(smp(&cm, patch, "ConfigMap"), merged);
    }

    #[test]
    fn smp_error_statuses() {
        let before = deployment(json!([{"name":"a"}]));
        let cases = [
            (
                json!({"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}),
                500,
            ),
            (
                json!({"spec":{"template":{"spec":{"containers":[["a"]]}}}}),
                500,
            ),
            (
                json!({"spec":{"template":{"spec":{"containers":["a"]}}}}),
                500,
            ),
            (
                json!({"spec":{"template":{"spec":{"containers":[{"name":"a","$patch":"frob"}]}}}}),
                500,
            ),
            (json!({"spec":{"$patch":7}}), 500),
            (
                json!({"spec":{"template":{"spec":{"$setElementOrder/containers":"a"}}}}),
                500,
            ),
            (
                json!({"spec":{"template":{"spec":{"$setElementOrderX":[]}}}}),
                400,
            ),
            (
                json!({"metadata":{"$deleteFromPrimitiveListfinalizers":[]}}),
                400,
            ),
            (
                json!({"metadata":{"$deleteFromPrimitiveList/finalizers":"a"}}),
                500,
            ),
        ];
        for (patch, code) in cases {
            assert_eq!(
                smp_err(&before, patch.clone(), "Deployment").code,
                code,
                "{patch}"
            );
        }
        let err = smp_err(&before, json!([1]), "Deployment");
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                400,
                "json: cannot unmarshal array into Go value of type map[string]interface {}"
            )
        );
        // Lists of lists get the generic 422.
        let err = smp_err(
            &deployment(json!([])),
            json!({"spec":{"template":{"spec":{"containers":[["a"]]}}}}),
            "Deployment",
        );
        assert_eq!(
            err.to_status(),
            fixture_json("05-errors/422-jsonpatch-test-failed.json")
        );
    }

    /// Tiny deterministic generator of arbitrary JSON, for the no-panic sweep.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }

        fn value(&mut self, depth: u32) -> Value {
            const KEYS: [&str; 16] = [
                "spec",
                "template",
                "containers",
                "name",
                "env",
                "$patch",
                "$retainKeys",
                "$setElementOrder/containers",
                "$deleteFromPrimitiveList/finalizers",
                "metadata",
                "finalizers",
                "op",
                "path",
                "value",
                "from",
                "ports",
            ];
            const STRS: [&str; 10] = [
                "delete", "replace", "merge", "a", "", "/spec", "/spec/0", "/-", "add", "remove",
            ];
            match if depth == 0 {
                self.next(4)
            } else {
                self.next(6)
            } {
                0 => Value::Null,
                1 => json!(self.next(3) as i64 - 1),
                2 => json!(STRS[self.next(10) as usize]),
                3 => json!(self.next(2) == 0),
                4 => Value::Array((0..self.next(4)).map(|_| self.value(depth - 1)).collect()),
                _ => Value::Object(
                    (0..self.next(5))
                        .map(|_| {
                            (
                                KEYS[self.next(16) as usize].to_string(),
                                self.value(depth - 1),
                            )
                        })
                        .collect(),
                ),
            }
        }
    }

    #[test]
    fn arbitrary_patches_never_panic() {
        let base = fixture_json("06-kubectl/12-set-image-payments-green.patch.response.json");
        let mut g = Gen(42);
        for i in 0..4000 {
            let patch = g.value(5);
            let target = if i % 2 == 0 { base.clone() } else { g.value(4) };
            for kind in ["Deployment", "Pod", "Service", "Other"] {
                let mut t = target.clone();
                match strategic_merge_patch(&mut t, &patch, kind) {
                    Ok(()) => assert!(directive_free(&t) || !directive_free(&target), "{patch}"),
                    Err(_) => assert_eq!(t, target),
                }
            }
            let mut t = target.clone();
            let _ = json_patch(&mut t, &Value::Array(vec![patch.clone(), g.value(2)]));
            json_merge_patch(&mut t, &patch);
            let bytes = patch.to_string().into_bytes();
            for cut in [0, bytes.len() / 2, bytes.len()] {
                for kind in [
                    PatchKind::Json,
                    PatchKind::Merge,
                    PatchKind::Strategic,
                    PatchKind::Apply,
                ] {
                    let _ = decode_patch(&bytes[..cut], kind);
                }
            }
        }
    }
}
