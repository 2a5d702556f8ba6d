//! The HTTP side of the sandbox: routes Kubernetes API paths to the store, shapes every answer
//! as kube-apiserver 1.26 does (headers, compact JSON + newline, Status errors), and streams
//! watches as one JSON event per HTTP chunk.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Map, Value, json};

use super::auth::{self, User};
use super::discovery;
use super::error::{ApiError, ApiResult, Cause};
use super::patch::{self, PatchKind};
use super::resources::{self, ResourceType};
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Change, Deleted, EventType, WriteOpts, meta_str, name_of};
use super::{Sandbox, logs, table};

pub type Body = BoxBody<Bytes, Infallible>;

/// Largest request body accepted (the real server's limit is 3 MiB for most requests).
const MAX_BODY: usize = 3 * 1024 * 1024;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// JSON as Go's encoding/json writes it: compact, with `<`, `>` and `&` escaped (they can
/// only occur inside strings, so a byte-level replacement is exact).
pub fn go_json(v: &Value) -> Vec<u8> {
    go_escape(serde_json::to_vec(v).unwrap_or_default())
}

/// Escape `<`, `>` and `&` in serialized JSON as Go does.
fn go_escape(raw: Vec<u8>) -> Vec<u8> {
    if !raw.iter().any(|b| matches!(b, b'<' | b'>' | b'&')) {
        return raw;
    }
    let mut out = Vec::with_capacity(raw.len() + 16);
    for b in raw {
        match b {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            _ => out.push(b),
        }
    }
    out
}

/// A 200 with JSON already serialized (large lists).
fn raw_json_response(sb: &Sandbox, bytes: Vec<u8>) -> Response<Body> {
    let mut bytes = go_escape(bytes);
    bytes.push(b'\n');
    with_headers(sb, 200, "application/json", full(bytes))
}

/// A JSON response: compact, followed by one newline, as the real server sends it.
pub fn json_response(sb: &Sandbox, status: u16, v: &Value) -> Response<Body> {
    let mut bytes = go_json(v);
    bytes.push(b'\n');
    let mut resp = with_headers(sb, status, "application/json", full(bytes));
    if status == 401 {
        // Authentication fails before priority and fairness classify the request.
        resp.headers_mut().remove("x-kubernetes-pf-flowschema-uid");
        resp.headers_mut()
            .remove("x-kubernetes-pf-prioritylevel-uid");
    }
    if status == 403 {
        resp.headers_mut().insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
    }
    resp
}

fn with_headers(sb: &Sandbox, status: u16, content_type: &str, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    let audit = sb.store.random_u64();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        audit >> 32,
        (audit >> 16) & 0xffff,
        audit & 0xfff,
        (audit >> 20) & 0xfff,
        audit & 0xffff_ffff_ffff
    )) {
        h.insert("audit-id", v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        "x-kubernetes-pf-flowschema-uid",
        HeaderValue::from_static("5c1d3a4e-0f59-4c2b-8a8e-6b3f0c9d2e11"),
    );
    h.insert(
        "x-kubernetes-pf-prioritylevel-uid",
        HeaderValue::from_static("9a7e2b10-3c4d-4e5f-8a9b-0c1d2e3f4a5b"),
    );
    resp
}

pub fn error_response(sb: &Sandbox, e: &ApiError) -> Response<Body> {
    json_response(sb, e.code, &e.to_status())
}

/// A plain-text answer (`404 page not found`, health checks), with the headers the real
/// server's non-API handlers send.
fn plain(sb: &Sandbox, status: u16, text: &'static str) -> Response<Body> {
    let mut r = with_headers(sb, status, "text/plain; charset=utf-8", full(text));
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// `404 page not found`, as the server answers for paths outside any API group.
fn page_not_found(sb: &Sandbox) -> Response<Body> {
    plain(sb, 404, "404 page not found\n")
}

/// The parsed request: who, what, where.
struct Req {
    method: Method,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    accept: String,
    content_type: String,
    user: User,
    user_agent: String,
    body: Bytes,
}

impl Req {
    fn param(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    fn flag(&self, k: &str) -> bool {
        matches!(self.param(k), Some("true" | "1"))
    }
    fn manager(&self) -> String {
        match self.param("fieldManager") {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => self
                .user_agent
                .split('/')
                .next()
                .unwrap_or("unknown")
                .to_string(),
        }
    }
    fn dry_run(&self) -> bool {
        self.param("dryRun") == Some("All")
    }
}

/// Serve one HTTP request.
pub async fn handle(
    sb: Arc<Sandbox>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return Ok(error_response(&sb, &e)),
    };
    let header_str = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let path = parts.uri.path().to_string();
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let user = match auth::authenticate(parts.headers.get(header::AUTHORIZATION)) {
        Ok(u) => u,
        Err(e) => return Ok(error_response(&sb, &e)),
    };
    let r = Req {
        method: parts.method.clone(),
        segments,
        query,
        accept: header_str(header::ACCEPT),
        content_type: header_str(header::CONTENT_TYPE),
        user,
        user_agent: header_str(header::USER_AGENT),
        body,
    };
    tracing::debug!(method = %r.method, %path, "sandbox request");
    Ok(route(&sb, r).await)
}

async fn read_body(body: Incoming) -> ApiResult<Bytes> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(ApiError::new(
            413,
            "RequestEntityTooLarge",
            "request entity too large",
        )),
    }
}

async fn route(sb: &Arc<Sandbox>, r: Req) -> Response<Body> {
    let segs: Vec<&str> = r.segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["version"] => with_headers(sb, 200, "application/json", full(discovery::version_body())),
        ["healthz" | "livez" | "readyz"] => plain(sb, 200, "ok"),
        ["api"] => json_response(sb, 200, &discovery::api_versions()),
        ["apis"] => {
            if discovery::wants_only_aggregated(&r.accept) {
                // This one Status the server writes indented, without a final newline.
                let status = ApiError::new(406, "NotAcceptable", "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf").to_status();
                let body = serde_json::to_string_pretty(&status).unwrap_or_default();
                return with_headers(sb, 406, "application/json", full(body));
            }
            json_response(sb, 200, &discovery::api_group_list())
        }
        ["api", "v1"] => json_response(sb, 200, &discovery::resource_list("", "v1")),
        ["apis", g] => match discovery::api_group(g) {
            Some(v) => json_response(sb, 200, &v),
            None => page_not_found(sb),
        },
        ["apis", g, v] => {
            if discovery::serves(g, v) {
                json_response(sb, 200, &discovery::resource_list(g, v))
            } else {
                page_not_found(sb)
            }
        }
        ["api", "v1", rest @ ..] => resource_route(sb, &r, "", "v1", rest).await,
        ["apis", g, v, rest @ ..] => {
            if !discovery::serves(g, v) {
                return page_not_found(sb);
            }
            resource_route(sb, &r, g, v, rest).await
        }
        ["openapi", "v3"] => json_response(sb, 200, &discovery::openapi_v3_root()),
        ["openapi", "v3", "api", v] => match discovery::openapi_v3_gv("", v) {
            Some(doc) => json_response(sb, 200, &doc),
            None => page_not_found(sb),
        },
        ["openapi", "v3", "apis", g, v] => match discovery::openapi_v3_gv(g, v) {
            Some(doc) => json_response(sb, 200, &doc),
            None => page_not_found(sb),
        },
        ["sandbox", "v1", rest @ ..] => super::control::handle(sb, &r.method, rest, &r.body),
        _ => page_not_found(sb),
    }
}

/// Where a request points inside a group/version.
struct Target<'a> {
    rt: &'static ResourceType,
    ns: Option<&'a str>,
    name: Option<&'a str>,
    sub: Option<&'a str>,
}

fn parse_target<'a>(group: &str, version: &str, rest: &[&'a str]) -> Option<Target<'a>> {
    let find = |plural: &str| resources::find(group, version, plural);
    let t = match rest {
        ["namespaces", ns, plural, tail @ ..] => {
            // /namespaces/{ns}/status is the namespace's own subresource.
            if group.is_empty() && (*plural == "status" || *plural == "finalize") && tail.is_empty()
            {
                Target {
                    rt: find("namespaces")?,
                    ns: None,
                    name: Some(ns),
                    sub: Some(plural),
                }
            } else {
                let rt = find(plural)?;
                if !rt.namespaced {
                    return None;
                }
                match tail {
                    [] => Target {
                        rt,
                        ns: Some(ns),
                        name: None,
                        sub: None,
                    },
                    [name] => Target {
                        rt,
                        ns: Some(ns),
                        name: Some(name),
                        sub: None,
                    },
                    [name, sub] => Target {
                        rt,
                        ns: Some(ns),
                        name: Some(name),
                        sub: Some(sub),
                    },
                    _ => return None,
                }
            }
        }
        [plural] => Target {
            rt: find(plural)?,
            ns: None,
            name: None,
            sub: None,
        },
        [plural, name] => {
            let rt = find(plural)?;
            if rt.namespaced {
                return None;
            }
            Target {
                rt,
                ns: None,
                name: Some(name),
                sub: None,
            }
        }
        [plural, name, sub] => {
            let rt = find(plural)?;
            if rt.namespaced {
                return None;
            }
            Target {
                rt,
                ns: None,
                name: Some(name),
                sub: Some(sub),
            }
        }
        _ => return None,
    };
    Some(t)
}

/// 404 for a resource type the group does not serve (fixture 05-errors/404-unknown-resource-type).
fn unknown_resource() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
    .with_details(super::error::Details {
        empty_object: true,
        ..Default::default()
    })
}

async fn resource_route(
    sb: &Arc<Sandbox>,
    r: &Req,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Response<Body> {
    if rest.is_empty() {
        return json_response(sb, 200, &discovery::resource_list(group, version));
    }
    let Some(t) = parse_target(group, version, rest) else {
        return error_response(sb, &unknown_resource());
    };
    if let Some(sub) = t.sub
        && !t.rt.subresources.contains(&sub)
        && !(t.rt.plural == "namespaces" && sub == "finalize")
    {
        return error_response(sb, &unknown_resource());
    }
    let verb = verb_of(r, &t);
    if let Err(e) = auth::authorize(&r.user, verb, t.rt, t.sub, t.name, t.ns) {
        return error_response(sb, &e);
    }
    // The `apiDelay` fault holds writes (this request only: others go on being served).
    if matches!(
        r.method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && let Some(secs) = sb
        .faults
        .api_delay(t.ns.filter(|_| t.rt.namespaced), sb.store.clock.now())
    {
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    }
    let result = match (&r.method, t.name, t.sub) {
        (&Method::GET, None, _) if r.flag("watch") => return watch(sb, r, &t),
        (&Method::GET, None, _) => match list(sb, r, &t) {
            Ok(Listed::Raw(bytes)) => return raw_json_response(sb, bytes),
            Ok(Listed::Json(code, v)) => Ok((code, v)),
            Err(e) => Err(e),
        },
        (&Method::GET, Some(_), Some("log")) => {
            return logs::serve(sb, r_log_params(r), &t_log(&t)).await;
        }
        (&Method::GET, Some(name), sub) => get(sb, r, &t, name, sub),
        (&Method::POST, None, None) => create(sb, r, &t),
        (&Method::PUT, Some(name), sub) => update(sb, r, &t, name, sub),
        (&Method::PATCH, Some(name), sub) => patch_object(sb, r, &t, name, sub),
        (&Method::DELETE, Some(name), None) => delete(sb, r, &t, name),
        (&Method::DELETE, None, None) => delete_collection(sb, r, &t),
        _ => Err(ApiError::method_not_allowed()),
    };
    match result {
        Ok((code, mut v)) => {
            // A version other than the stored one: the same object, under its apiVersion.
            resources::as_served(t.rt, &mut v);
            json_response(sb, code, &v)
        }
        Err(e) => error_response(sb, &e),
    }
}

fn r_log_params(r: &Req) -> logs::LogParams {
    logs::LogParams::from_query(&r.query)
}

fn t_log(t: &Target<'_>) -> logs::LogTarget {
    logs::LogTarget {
        namespace: t.ns.unwrap_or_default().to_string(),
        pod: t.name.unwrap_or_default().to_string(),
    }
}

fn verb_of(r: &Req, t: &Target<'_>) -> &'static str {
    match r.method {
        Method::GET if t.name.is_none() && r.flag("watch") => "watch",
        Method::GET if t.name.is_none() => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if t.name.is_none() => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    }
}

fn ns_or_empty<'a>(t: &Target<'a>) -> &'a str {
    if t.rt.namespaced {
        t.ns.unwrap_or_default()
    } else {
        ""
    }
}

/// Parse the body of a create or update.
fn decode_object(r: &Req) -> ApiResult<Value> {
    let v: Value = if r
        .content_type
        .starts_with("application/vnd.kubernetes.protobuf")
    {
        // Only the access reviews, which kubectl's typed client sends as protobuf.
        super::proto::decode_review(&r.body).ok_or_else(|| {
            ApiError::unsupported_media_type("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml")
        })?
    } else if r.content_type.contains("yaml") {
        serde_yaml::from_slice(&r.body).map_err(|e| ApiError::bad_request(e.to_string()))?
    } else {
        serde_json::from_slice(&r.body).map_err(|e| ApiError::bad_request(go_json_error(&e)))?
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "Object 'Kind' is missing in the request body",
        ));
    }
    Ok(v)
}

/// A serde_json error phrased as Go's encoding/json would.
pub fn go_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "unexpected end of JSON input".into(),
        _ => e.to_string(),
    }
}

/// The kind/apiVersion in a body must match the URL.
fn check_kind(t: &Target<'_>, obj: &Value) -> ApiResult<()> {
    if let Some(k) = obj.get("kind").and_then(Value::as_str)
        && k != t.rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            obj.get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            t.rt.api_version()
        )));
    }
    if let (Some(ns), Some(body_ns)) = (t.ns, meta_str(obj, "namespace"))
        && !body_ns.is_empty()
        && body_ns != ns
        && t.rt.namespaced
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn get(
    sb: &Sandbox,
    r: &Req,
    t: &Target<'_>,
    name: &str,
    sub: Option<&str>,
) -> ApiResult<(u16, Value)> {
    let obj = sb
        .store
        .get(t.rt, ns_or_empty(t), name)
        .ok_or_else(|| ApiError::not_found(t.rt.plural, t.rt.group, name))?;
    if sub == Some("scale") {
        return Ok((200, scale_of(&obj)));
    }
    // `kubectl get KIND NAME`: a one-row Table, versioned as the object.
    if sub.is_none()
        && let Some(include) = table_wanted(&r.accept)
    {
        let include = match r.param("includeObject") {
            Some("None") => table::IncludeObject::None,
            Some("Object") => table::IncludeObject::Object,
            _ => include,
        };
        return Ok((
            200,
            table::to_table(
                t.rt.kind,
                &[obj.as_ref()],
                meta_str(&obj, "resourceVersion").unwrap_or_default(),
                None,
                None,
                include,
                sb.store.clock.now(),
            ),
        ));
    }
    Ok((200, (*obj).clone()))
}

/// The autoscaling/v1 Scale view of a Deployment or ReplicaSet.
fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector")
        .map(selector_string)
        .unwrap_or_default();
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut m = Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        }
    })
}

/// A metav1.LabelSelector in its string form (`app=checkout,track in (canary)`).
pub fn selector_string(sel: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        let mut kv: Vec<_> = m.iter().collect();
        kv.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in kv {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match e
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    parts.join(",")
}

/// Label and field selectors of a list or watch.
struct Filter {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Filter {
    fn from(r: &Req, rt: &ResourceType) -> ApiResult<Filter> {
        let labels = match r.param("labelSelector") {
            Some(s) if !s.is_empty() => Some(LabelSelector::parse(s)?),
            _ => None,
        };
        let fields = match r.param("fieldSelector") {
            Some(s) if !s.is_empty() => Some(FieldSelector::parse(s, rt.plural, rt.group)?),
            _ => None,
        };
        Ok(Filter { labels, fields })
    }
    fn matches(&self, obj: &Value) -> bool {
        let labels_ok = self
            .labels
            .as_ref()
            .is_none_or(|l| l.matches(obj.pointer("/metadata/labels").and_then(Value::as_object)));
        labels_ok && self.fields.as_ref().is_none_or(|f| f.matches(obj))
    }
}

/// Continue tokens look like the real server's: base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":"key\u0000"}`.
fn encode_continue(rv: u64, start_key: &str) -> String {
    use base64::Engine;
    let v = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{start_key}\u{0}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn decode_continue(tok: &str) -> ApiResult<(i64, String)> {
    use base64::Engine;
    let bad =
        || ApiError::bad_request("continue key is not valid: illegal base64 data at input byte 0");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tok.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .trim_end_matches('\u{0}')
        .to_string();
    Ok((rv, start))
}

/// A list answer: a JSON value (tables, errors), or a plain list serialized straight from the
/// store's objects, without copying them.
enum Listed {
    Json(u16, Value),
    Raw(Vec<u8>),
}

/// An object serialized without `kind` and `apiVersion` (built-in list items carry neither).
struct Item<'a>(&'a Value);

impl serde::Serialize for Item<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            Value::Object(m) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in m.iter().filter(|(k, _)| *k != "kind" && *k != "apiVersion") {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            other => other.serialize(s),
        }
    }
}

fn list(sb: &Sandbox, r: &Req, t: &Target<'_>) -> ApiResult<Listed> {
    if t.rt.create_only {
        return Err(ApiError::method_not_allowed());
    }
    let filter = Filter::from(r, t.rt)?;
    let ns = if t.rt.namespaced { t.ns } else { None };
    let (items, rv) = sb.store.list(t.rt, ns);
    let oldest = sb.store.oldest_rv();
    let rv_param = r.param("resourceVersion").unwrap_or_default();
    if r.param("resourceVersionMatch") == Some("Exact")
        && let Ok(want) = rv_param.parse::<u64>()
        && want < oldest
    {
        return Err(ApiError::gone(
            "The resourceVersion for the provided list is too old.",
        ));
    }
    // The watch cache (resourceVersion=0) ignores limit, as 1.26 does.
    let limit = if rv_param == "0" {
        0
    } else {
        r.param("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(0)
    };
    let start_after = match r.param("continue") {
        Some(tok) if !tok.is_empty() => {
            let (tok_rv, start) = decode_continue(tok)?;
            if tok_rv > 0 && (tok_rv as u64) < oldest {
                // The Status carries a fresh token for an inconsistent continuation (rv -1).
                let mut status = ApiError::gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.").to_status();
                status["metadata"] = json!({"continue": encode_continue_raw(-1, &start)});
                return Ok(Listed::Json(410, status));
            }
            Some(start)
        }
        _ => None,
    };
    // Within one namespace the key is the name; across namespaces, namespace/name.
    let key_of = |o: &Value| {
        let ns = meta_str(o, "namespace").unwrap_or_default();
        if ns.is_empty() || t.ns.is_some() {
            name_of(o).to_string()
        } else {
            format!("{ns}/{}", name_of(o))
        }
    };
    let mut selected: Vec<&Value> = items
        .iter()
        .map(|a| a.as_ref())
        .filter(|o| {
            start_after
                .as_ref()
                .is_none_or(|s| key_of(o).as_str() > s.as_str())
        })
        .filter(|o| filter.matches(o))
        .collect();
    let mut cont = None;
    let mut remaining = None;
    if limit > 0 && selected.len() > limit {
        remaining = Some((selected.len() - limit) as i64);
        selected.truncate(limit);
        if let Some(last) = selected.last() {
            cont = Some(encode_continue(rv, &key_of(last)));
        }
    }
    if let Some(include) = table_wanted(&r.accept) {
        let include = match r.param("includeObject") {
            Some("None") => table::IncludeObject::None,
            Some("Object") => table::IncludeObject::Object,
            _ => include,
        };
        return Ok(Listed::Json(
            200,
            table::to_table(
                t.rt.kind,
                &selected,
                &rv.to_string(),
                cont.as_deref(),
                remaining,
                include,
                sb.store.clock.now(),
            ),
        ));
    }
    let mut meta = Map::new();
    if t.rt.custom {
        meta.insert("continue".into(), json!(cont.clone().unwrap_or_default()));
    }
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    if !t.rt.custom
        && let Some(c) = &cont
    {
        meta.insert("continue".into(), json!(c));
    }
    if let Some(n) = remaining {
        meta.insert("remainingItemCount".into(), json!(n));
    }
    let kind = json!(format!("{}List", t.rt.kind));
    let api_version = json!(t.rt.api_version());
    let meta = Value::Object(meta);
    let mut out: Vec<u8> = Vec::with_capacity(selected.len() * 3000 + 256);
    out.push(b'{');
    // Custom resource lists come from unstructured (sorted) JSON; built-in ones in Go order.
    if t.rt.custom {
        put(&mut out, "apiVersion", &api_version);
        if resources::converts(t.rt) {
            let items: Vec<Value> = selected.iter().map(|o| served(t.rt, o)).collect();
            put(&mut out, "items", &items);
        } else {
            put(&mut out, "items", &selected);
        }
        put(&mut out, "kind", &kind);
        put(&mut out, "metadata", &meta);
    } else {
        let items: Vec<Item<'_>> = selected.iter().map(|o| Item(o)).collect();
        put(&mut out, "kind", &kind);
        put(&mut out, "apiVersion", &api_version);
        put(&mut out, "metadata", &meta);
        put(&mut out, "items", &items);
    }
    out.push(b'}');
    Ok(Listed::Raw(out))
}

/// Append `"name":value` to an object being written (with a comma after the first field).
fn put<T: serde::Serialize>(out: &mut Vec<u8>, name: &str, v: &T) {
    if out.last() != Some(&b'{') {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    // Writing to a Vec cannot fail; a value that cannot serialize writes null.
    if serde_json::to_writer(&mut *out, v).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// Whether the client asked for a Table (`Accept: application/json;as=Table;...`).
fn table_wanted(accept: &str) -> Option<table::IncludeObject> {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
        .then_some(table::IncludeObject::Metadata)
}

fn encode_continue_raw(rv: i64, start: &str) -> String {
    use base64::Engine;
    let v = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{start}\u{0}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn create(sb: &Sandbox, r: &Req, t: &Target<'_>) -> ApiResult<(u16, Value)> {
    let obj = decode_object(r)?;
    check_kind(t, &obj)?;
    if t.rt.create_only {
        return Ok((201, auth::review(&r.user, t.rt, obj, sb.store.clock.now())));
    }
    let opts = WriteOpts {
        dry_run: r.dry_run(),
        manager: r.manager(),
        ..Default::default()
    };
    let created = sb.store.create(t.rt, ns_or_empty(t), obj, &opts)?;
    Ok((201, (*created).clone()))
}

fn update(
    sb: &Sandbox,
    r: &Req,
    t: &Target<'_>,
    name: &str,
    sub: Option<&str>,
) -> ApiResult<(u16, Value)> {
    let obj = decode_object(r)?;
    let opts = WriteOpts {
        dry_run: r.dry_run(),
        manager: r.manager(),
        subresource: sub.map(str::to_string),
        ..Default::default()
    };
    if sub == Some("scale") {
        let replicas = scale_replicas(&obj)?;
        let rv = meta_str(&obj, "resourceVersion").map(str::to_string);
        let updated = sb.store.modify(
            t.rt,
            ns_or_empty(t),
            name,
            &WriteOpts {
                subresource: None,
                ..opts
            },
            |o| {
                set_replicas(o, replicas, rv.as_deref());
                Ok(())
            },
        )?;
        return Ok((200, scale_of(&updated)));
    }
    check_kind(t, &obj)?;
    let updated = sb.store.update(t.rt, ns_or_empty(t), name, obj, &opts)?;
    Ok((200, (*updated).clone()))
}

fn scale_replicas(scale: &Value) -> ApiResult<i64> {
    let r = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
    r.as_i64().ok_or_else(|| {
        ApiError::bad_request(format!(
            "json: cannot unmarshal {} into Go struct field ScaleSpec.spec.replicas of type int32",
            json_type(&r)
        ))
    })
}

fn set_replicas(o: &mut Value, replicas: i64, rv: Option<&str>) {
    if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), json!(replicas));
    }
    if let Some(rv) = rv {
        super::store::metadata_mut(o).insert("resourceVersion".into(), json!(rv));
    }
}

pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn patch_object(
    sb: &Sandbox,
    r: &Req,
    t: &Target<'_>,
    name: &str,
    sub: Option<&str>,
) -> ApiResult<(u16, Value)> {
    let kind = PatchKind::from_content_type(&r.content_type, t.rt.custom)?;
    let patch = patch::decode_patch(&r.body, kind)?;
    let ns = ns_or_empty(t);
    let mut opts = WriteOpts {
        dry_run: r.dry_run(),
        manager: r.manager(),
        subresource: sub.map(str::to_string),
        apply: kind == PatchKind::Apply,
        force: r.flag("force"),
    };
    if sub == Some("scale") {
        let current = sb
            .store
            .get(t.rt, ns, name)
            .ok_or_else(|| ApiError::not_found(t.rt.plural, t.rt.group, name))?;
        let mut scale = scale_of(&current);
        apply_patch(&mut scale, &patch, kind, "Scale")?;
        let replicas = scale_replicas(&scale)?;
        opts.subresource = None;
        let rv = meta_str(&scale, "resourceVersion").map(str::to_string);
        let updated = sb.store.modify(t.rt, ns, name, &opts, |o| {
            set_replicas(o, replicas, rv.as_deref());
            Ok(())
        })?;
        return Ok((200, scale_of(&updated)));
    }
    if kind == PatchKind::Apply && sb.store.get(t.rt, ns, name).is_none() {
        // Server-side apply creates what does not exist yet.
        let mut obj = patch.clone();
        check_kind(t, &obj)?;
        super::store::metadata_mut(&mut obj).insert("name".into(), json!(name));
        let created = sb.store.create(t.rt, ns, obj, &opts)?;
        return Ok((201, (*created).clone()));
    }
    if kind == PatchKind::Apply && !opts.force {
        let conflicts = sb
            .store
            .apply_conflicts(t.rt, ns, name, &patch, &opts.manager);
        if !conflicts.is_empty() {
            return Err(apply_conflict(t.rt, &conflicts));
        }
    }
    let kind_name = t.rt.kind;
    let updated = sb.store.modify(t.rt, ns, name, &opts, |o| {
        let rv_before = meta_str(o, "resourceVersion").map(str::to_string);
        apply_patch(o, &patch, kind, kind_name)?;
        // A patch only carries a resourceVersion precondition if it sets one explicitly.
        if meta_str(o, "resourceVersion").map(str::to_string) == rv_before {
            super::store::metadata_mut(o).remove("resourceVersion");
        }
        Ok(())
    })?;
    Ok((200, (*updated).clone()))
}

/// 409 for server-side apply conflicts, worded as the real server words it.
fn apply_conflict(rt: &ResourceType, conflicts: &[(String, String)]) -> ApiError {
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|(field, owner)| Cause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with \"{owner}\" using {}", rt.api_version()),
            field: Some(field.clone()),
        })
        .collect();
    let n = causes.len();
    let list: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.message, c.field.as_deref().unwrap_or_default()))
        .collect();
    let message = if n == 1 {
        format!("Apply failed with 1 conflict: {}", list[0])
    } else {
        format!("Apply failed with {n} conflicts: {}", list.join("\n"))
    };
    ApiError::new(409, "Conflict", message).with_details(super::error::Details {
        causes,
        ..Default::default()
    })
}

fn apply_patch(o: &mut Value, patch: &Value, kind: PatchKind, obj_kind: &str) -> ApiResult<()> {
    match kind {
        PatchKind::Json => patch::json_patch(o, patch),
        PatchKind::Merge => {
            patch::json_merge_patch(o, patch);
            Ok(())
        }
        PatchKind::Strategic | PatchKind::Apply => {
            let mut p = patch.clone();
            if kind == PatchKind::Apply
                && let Some(m) = p.as_object_mut()
            {
                m.remove("status");
            }
            patch::strategic_merge_patch(o, &p, obj_kind)
        }
    }
}

fn delete_options(r: &Req) -> ApiResult<(Option<i64>, Option<String>, bool)> {
    let mut grace = r
        .param("gracePeriodSeconds")
        .and_then(|g| g.parse::<i64>().ok());
    let mut uid = None;
    let mut dry = r.dry_run();
    if !r.body.is_empty() {
        let opts: Value = serde_json::from_slice(&r.body)
            .map_err(|e| ApiError::bad_request(go_json_error(&e)))?;
        if let Some(g) = opts.get("gracePeriodSeconds").and_then(Value::as_i64) {
            grace = Some(g);
        }
        uid = opts
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(d) = opts.get("dryRun").and_then(Value::as_array) {
            dry |= d.iter().any(|x| x == "All");
        }
    }
    Ok((grace, uid, dry))
}

fn delete(sb: &Sandbox, r: &Req, t: &Target<'_>, name: &str) -> ApiResult<(u16, Value)> {
    let (grace, uid, dry) = delete_options(r)?;
    match sb
        .store
        .delete(t.rt, ns_or_empty(t), name, grace, uid.as_deref(), dry)?
    {
        Deleted::Terminating(o) => Ok((200, (*o).clone())),
        Deleted::Gone(o) => {
            if matches!(t.rt.kind, "Pod" | "Service" | "Namespace") || t.rt.custom {
                Ok((200, (*o).clone()))
            } else {
                let mut details = Map::new();
                details.insert("name".into(), json!(name));
                if !t.rt.group.is_empty() {
                    details.insert("group".into(), json!(t.rt.group));
                }
                details.insert("kind".into(), json!(t.rt.plural));
                details.insert("uid".into(), json!(meta_str(&o, "uid").unwrap_or_default()));
                Ok((
                    200,
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
                ))
            }
        }
    }
}

fn delete_collection(sb: &Sandbox, r: &Req, t: &Target<'_>) -> ApiResult<(u16, Value)> {
    if !t.rt.namespaced || t.rt.create_only {
        return Err(ApiError::method_not_allowed());
    }
    let filter = Filter::from(r, t.rt)?;
    let (grace, _, dry) = delete_options(r)?;
    let ns = ns_or_empty(t);
    let (items, _) = sb.store.list(t.rt, Some(ns));
    let mut out = Vec::new();
    for o in items.iter().filter(|o| filter.matches(o)) {
        if let Ok(Deleted::Gone(d) | Deleted::Terminating(d)) =
            sb.store.delete(t.rt, ns, name_of(o), grace, None, dry)
        {
            out.push((*d).clone());
        }
    }
    Ok((
        200,
        json!({"kind": format!("{}List", t.rt.kind), "apiVersion": t.rt.api_version(), "metadata": {"resourceVersion": sb.store.current_rv().to_string()}, "items": out}),
    ))
}

/// An object as served at `rt`'s version (see [`resources::as_served`]).
fn served(rt: &ResourceType, obj: &Value) -> Value {
    let mut o = obj.clone();
    resources::as_served(rt, &mut o);
    o
}

/// A watch event of an object of `rt`, as served at `rt`'s version.
fn object_line(rt: &ResourceType, kind: &str, obj: &Value) -> Bytes {
    if resources::converts(rt) {
        event_line(kind, &served(rt, obj))
    } else {
        event_line(kind, obj)
    }
}

/// One watch event as a line of JSON.
fn event_line(kind: &str, obj: &Value) -> Bytes {
    let mut b = go_json(&json!({"type": kind, "object": obj}));
    b.push(b'\n');
    Bytes::from(b)
}

fn bookmark(rt: &ResourceType, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    meta.insert("creationTimestamp".into(), Value::Null);
    if initial_end {
        meta.insert(
            "annotations".into(),
            json!({"k8s.io/initial-events-end": "true"}),
        );
    }
    let mut obj = Map::new();
    obj.insert("kind".into(), json!(rt.kind));
    obj.insert("apiVersion".into(), json!(rt.api_version()));
    obj.insert("metadata".into(), Value::Object(meta));
    // The kind's Go zero value around the metadata, as the real server encodes a bookmark.
    let zero_template =
        json!({"metadata": {"creationTimestamp": null}, "spec": {"containers": null}});
    let rest = match rt.kind {
        "Deployment" => json!({
            "spec": {"replicas": 0, "selector": null, "template": zero_template, "strategy": {}},
            "status": {}
        }),
        "ReplicaSet" => json!({
            "spec": {"selector": null, "template": zero_template},
            "status": {"replicas": 0}
        }),
        "Pod" => json!({"spec": {"containers": null}, "status": {}}),
        "Service" => json!({"spec": {}, "status": {"loadBalancer": {}}}),
        "Namespace" => json!({"spec": {}, "status": {}}),
        "Node" => json!({"spec": {}, "status": {
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
                "osImage": "", "containerRuntimeVersion": "", "kubeletVersion": "",
                "kubeProxyVersion": "", "operatingSystem": "", "architecture": ""}
        }}),
        "Event" => json!({
            "involvedObject": {}, "reason": "", "message": "", "source": {},
            "firstTimestamp": null, "lastTimestamp": null, "eventTime": null,
            "reportingComponent": "", "reportingInstance": ""
        }),
        _ => json!({}),
    };
    if let Value::Object(m) = rest {
        obj.extend(m);
    }
    event_line("BOOKMARK", &Value::Object(obj))
}

/// How a change looks to a watcher with filters: ADDED/MODIFIED/DELETED or nothing.
fn filtered_event(c: &Change, filter: &Filter) -> Option<&'static str> {
    let now = filter.matches(&c.object);
    let before = c.previous.as_ref().is_some_and(|p| filter.matches(p));
    match c.event {
        EventType::Added => now.then_some("ADDED"),
        EventType::Deleted => before.then_some("DELETED"),
        EventType::Modified => match (before, now) {
            (true, true) => Some("MODIFIED"),
            (false, true) => Some("ADDED"),
            (true, false) => Some("DELETED"),
            (false, false) => None,
        },
    }
}

fn watch(sb: &Arc<Sandbox>, r: &Req, t: &Target<'_>) -> Response<Body> {
    let filter = match Filter::from(r, t.rt) {
        Ok(f) => f,
        Err(e) => return error_response(sb, &e),
    };
    let rt = t.rt;
    let res_idx = resources::index_of(rt);
    let ns: Option<String> = if rt.namespaced {
        t.ns.map(str::to_string)
    } else {
        None
    };
    let rv_param = r.param("resourceVersion").unwrap_or_default().to_string();
    let bookmarks = r.flag("allowWatchBookmarks");
    let send_initial = r.flag("sendInitialEvents");
    let timeout = r
        .param("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(1800);
    let (initial, start_rv): (Vec<Bytes>, u64) = if rv_param.is_empty()
        || rv_param == "0"
        || send_initial
    {
        let (items, rv) = sb.store.list(rt, ns.as_deref());
        let lines = items
            .iter()
            .filter(|o| filter.matches(o))
            .map(|o| object_line(rt, "ADDED", o))
            .collect();
        (lines, rv)
    } else {
        match rv_param.parse::<u64>() {
            Ok(rv) => (Vec::new(), rv),
            Err(_) => {
                return error_response(
                    sb,
                    &ApiError::bad_request(format!(
                        "invalid resource version: strconv.ParseUint: parsing {rv_param:?}: invalid syntax"
                    )),
                );
            }
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let sb2 = sb.clone();
    let bookmark_every = sb.bookmark_interval;
    tokio::spawn(async move {
        let send = |b: Bytes| {
            let tx = tx.clone();
            async move { tx.send(b).await.is_ok() }
        };
        for line in initial {
            if !send(line).await {
                return;
            }
        }
        if send_initial && bookmarks && !send(bookmark(rt, start_rv, true)).await {
            return;
        }
        let (backlog, mut live) = match sb2.store.watch_from(start_rv) {
            Ok(x) => x,
            Err(e) => {
                let _ = send(event_line("ERROR", &e.to_status())).await;
                return;
            }
        };
        let relevant =
            |c: &Change| c.res == res_idx && ns.as_ref().is_none_or(|n| *n == c.namespace);
        let mut last_rv = start_rv;
        for c in backlog.iter().filter(|c| relevant(c)) {
            last_rv = c.rv;
            if let Some(kind) = filtered_event(c, &filter)
                && !send(object_line(rt, kind, &c.object)).await
            {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + bookmark_every, bookmark_every);
        loop {
            tokio::select! {
                // Bookmarks carry the newest resourceVersion, and only when it moved on.
                // (Read the version first: every change up to it is then already queued, so an
                // empty queue means none is pending.)
                _ = tokio::time::sleep_until(deadline) => {
                    let rv = sb2.store.current_rv();
                    if bookmarks && rv > last_rv && live.is_empty() {
                        let _ = send(bookmark(rt, rv, false)).await;
                    }
                    return;
                }
                _ = tick.tick(), if bookmarks => {
                    let rv = sb2.store.current_rv();
                    if rv > last_rv && live.is_empty() {
                        last_rv = rv;
                        if !send(bookmark(rt, rv, false)).await {
                            return;
                        }
                    }
                }
                _ = tx.closed() => return,
                msg = live.recv() => match msg {
                    Ok(c) => {
                        if c.rv <= last_rv || !relevant(&c) {
                            continue;
                        }
                        last_rv = c.rv;
                        if let Some(kind) = filtered_event(&c, &filter)
                            && !send(object_line(rt, kind, &c.object)).await {
                                return;
                            }
                    }
                    // Too slow to keep up, or the sandbox stopped: end the stream; the client re-watches.
                    Err(_) => return,
                }
            }
        }
    });
    let stream = tokio_stream_from(rx).map(|b| Ok::<_, Infallible>(Frame::data(b)));
    with_headers(
        sb,
        200,
        "application/json",
        BodyExt::boxed(StreamBody::new(stream)),
    )
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures::Stream<Item = Bytes> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
