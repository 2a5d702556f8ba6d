//! Validation before storing, as kube-apiserver 1.26 does it (the subset of
//! `pkg/apis/*/validation` that matters for the sandbox's kinds), and decode type checks; both
//! answer with the 422 `Invalid` Status of `shared/fixtures/kube-apiserver-1.26/05-errors/`.
//!
//! Field errors are rendered like apimachinery's `field.Error`: strings quoted Go-style, maps
//! and label selectors in Go's `%#v` form. On update the metadata checks run three times, as
//! in the real server (`rest.BeforeUpdate`'s two common checks, then the strategy's own), which
//! is why `422-invalid-label-value.json` lists the same cause three times.

use k8s_openapi::Resource;
use k8s_openapi::api::{
    apps::v1 as apps, core::v1 as core, events::v1 as events, networking::v1 as networking,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult, Cause, Details};

/// Validates `obj` (already defaulted) for create (`old` = `None`) or update.
pub fn validate(kind: &str, group: &str, obj: &Value, old: Option<&Value>) -> ApiResult<()> {
    let mut errs = Vec::new();
    let meta = obj.get("metadata");
    match old {
        None => validate_name(kind, meta, &mut errs),
        Some(_) => {
            // rest.BeforeUpdate: ValidateObjectMetaAccessor and ...AccessorUpdate
            validate_meta_maps(meta, &mut errs);
            validate_meta_maps(meta, &mut errs);
        }
    }
    validate_meta_maps(meta, &mut errs);
    let spec = obj.get("spec");
    match (group, kind) {
        ("apps", "Deployment" | "ReplicaSet") => validate_workload(kind, spec, &mut errs),
        ("", "Pod") => validate_pod_spec(spec, "spec", &mut errs),
        ("", "Service") => validate_service(spec, &mut errs),
        _ => {}
    }
    if let (Some(old), "apps", "Deployment" | "ReplicaSet") = (old, group, kind) {
        let new_sel = spec.and_then(|s| s.get("selector"));
        let old_sel = old.get("spec").and_then(|s| s.get("selector"));
        if !same_selector(new_sel, old_sel) {
            errs.push(invalid(
                "spec.selector",
                &go_label_selector(new_sel),
                "field is immutable",
            ));
        }
    }
    if errs.is_empty() {
        return Ok(());
    }
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    Err(invalid_error(kind, group, name, errs))
}

/// The 422 for `errs`; the message lists each distinct error once, as `ToAggregate` does.
fn invalid_error(kind: &str, group: &str, name: &str, errs: Vec<Cause>) -> ApiError {
    let mut distinct: Vec<Cause> = Vec::new();
    for e in &errs {
        if !distinct
            .iter()
            .any(|d| d.field == e.field && d.message == e.message)
        {
            distinct.push(e.clone());
        }
    }
    let mut err = ApiError::invalid(kind, group, name, distinct);
    if let Some(details) = err.details.as_mut() {
        details.causes = errs;
    }
    err
}

/// The 422 a JSON patch whose `test` operation fails gets (`422-jsonpatch-test-failed.json`).
pub fn json_patch_test_failed() -> ApiError {
    ApiError::new(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
    )
    .with_details(Details {
        empty_object: true,
        ..Default::default()
    })
}

// ---- field errors, rendered like apimachinery's field.Error ----

fn invalid(field: &str, value: &str, detail: &str) -> Cause {
    Cause::invalid(field, format!("Invalid value: {value}: {detail}"))
}

fn cause(reason: &str, field: &str, message: String) -> Cause {
    Cause {
        reason: reason.into(),
        message,
        field: Some(field.into()),
    }
}

fn required(field: &str, detail: &str) -> Cause {
    let message = match detail {
        "" => "Required value".to_string(),
        d => format!("Required value: {d}"),
    };
    cause("FieldValueRequired", field, message)
}

fn forbidden(field: &str, detail: &str) -> Cause {
    cause("FieldValueForbidden", field, format!("Forbidden: {detail}"))
}

fn duplicate(field: &str, value: &str) -> Cause {
    cause(
        "FieldValueDuplicate",
        field,
        format!("Duplicate value: {}", go_quote(value)),
    )
}

fn not_supported(field: &str, value: &str, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
    cause(
        "FieldValueNotSupported",
        field,
        format!(
            "Unsupported value: {}: supported values: {}",
            go_quote(value),
            list.join(", ")
        ),
    )
}

/// Go's `strconv.Quote`.
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
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `%#v` of a `map[string]string` (keys sorted, `nil` when absent).
fn go_string_map(v: Option<&Value>) -> String {
    let Some(map) = v.and_then(Value::as_object) else {
        return "map[string]string(nil)".into();
    };
    let mut pairs: Vec<(&String, &Value)> = map.iter().collect();
    pairs.sort_by_key(|(k, _)| *k);
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v.as_str().unwrap_or(""))))
        .collect();
    format!("map[string]string{{{}}}", body.join(", "))
}

/// `%#v` of a `metav1.LabelSelector`, as `field.Invalid` prints it.
fn go_label_selector(sel: Option<&Value>) -> String {
    let Some(sel) = sel.filter(|s| s.is_object()) else {
        return "null".into();
    };
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|e| {
                    let values = match e.get("values").and_then(Value::as_array) {
                        None => "[]string(nil)".to_string(),
                        Some(vs) => {
                            let q: Vec<String> = vs
                                .iter()
                                .map(|v| go_quote(v.as_str().unwrap_or("")))
                                .collect();
                            format!("[]string{{{}}}", q.join(", "))
                        }
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{values}}}",
                        go_quote(str_at(e, "key")),
                        go_quote(str_at(e, "operator")),
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}",
        go_string_map(sel.get("matchLabels"))
    )
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn entries(v: Option<&Value>) -> impl Iterator<Item = (&String, &Value)> {
    v.and_then(Value::as_object).into_iter().flatten()
}

fn items(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

// ---- apimachinery's name and label checks ----

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let examples: String = examples
        .iter()
        .map(|e| format!("'{e}', "))
        .collect::<Vec<_>>()
        .join(" or ");
    format!("{msg} (e.g. {examples}regex used for validation is '{fmt}')")
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `[A-Za-z0-9]` at both ends, `allowed` in between (the shape of every regex above).
fn shaped(s: &str, edge: impl Fn(char) -> bool, inner: impl Fn(char) -> bool) -> bool {
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else {
        return false;
    };
    edge(first) && edge(last) && s.chars().all(|c| edge(c) || inner(c))
}

fn is_qualified_name_part(s: &str) -> bool {
    shaped(
        s,
        |c| c.is_ascii_alphanumeric(),
        |c| matches!(c, '-' | '_' | '.'),
    )
}

fn is_dns1123_label_shape(s: &str) -> bool {
    let lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    shaped(s, lower, |c| c == '-')
}

fn dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !is_dns1123_label_shape(value) {
        errs.push(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !value.split('.').all(is_dns1123_label_shape) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

fn dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !is_dns1123_label_shape(value) || !value.starts_with(|c: char| c.is_ascii_lowercase()) {
        errs.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

fn qualified_name(value: &str) -> Vec<String> {
    const MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
    let examples = ["MyName", "my.name", "123-abc"];
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".into());
            } else {
                errs.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(MSG, QUALIFIED_NAME_FMT, &examples)
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(MSG, QUALIFIED_NAME_FMT, &examples)
        ));
    }
    errs
}

fn label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

fn validate_labels(labels: Option<&Value>, field: &str, errs: &mut Vec<Cause>) {
    for (key, value) in entries(labels) {
        for msg in qualified_name(key) {
            errs.push(invalid(field, &go_quote(key), &msg));
        }
        let value = value.as_str().unwrap_or("");
        for msg in label_value(value) {
            errs.push(invalid(field, &go_quote(value), &msg));
        }
    }
}

fn validate_annotations(annotations: Option<&Value>, field: &str, errs: &mut Vec<Cause>) {
    for (key, _) in entries(annotations) {
        for msg in qualified_name(&key.to_lowercase()) {
            errs.push(invalid(field, &go_quote(key), &msg));
        }
    }
}

/// Labels and annotations of an ObjectMeta.
fn validate_meta_maps(meta: Option<&Value>, errs: &mut Vec<Cause>) {
    validate_labels(meta.and_then(|m| m.get("labels")), "metadata.labels", errs);
    validate_annotations(
        meta.and_then(|m| m.get("annotations")),
        "metadata.annotations",
        errs,
    );
}

/// `metadata.name` / `generateName` on create. A name still to be generated is not an error
/// here: the caller generates it before storing.
fn validate_name(kind: &str, meta: Option<&Value>, errs: &mut Vec<Cause>) {
    let check: fn(&str) -> Vec<String> = match kind {
        "Service" => dns1035_label,
        "Namespace" => dns1123_label,
        _ => dns1123_subdomain,
    };
    let field = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let (name, generate) = (field("name"), field("generateName"));
    if !generate.is_empty() {
        // a trailing '-' is fine in a prefix
        let masked = match generate.strip_suffix('-') {
            Some(stem) if !stem.is_empty() => format!("{stem}a"),
            _ => generate.to_string(),
        };
        for msg in check(&masked) {
            errs.push(invalid("metadata.generateName", &go_quote(generate), &msg));
        }
    }
    if name.is_empty() && generate.is_empty() {
        errs.push(required(
            "metadata.name",
            "name or generateName is required",
        ));
    }
    if !name.is_empty() {
        for msg in check(name) {
            errs.push(invalid("metadata.name", &go_quote(name), &msg));
        }
    }
}

// ---- label selectors ----

/// `ValidateLabelSelector`; true when the selector also converts (no errors).
fn validate_selector(sel: &Value, field: &str, errs: &mut Vec<Cause>) -> bool {
    let before = errs.len();
    validate_labels(
        sel.get("matchLabels"),
        &format!("{field}.matchLabels"),
        errs,
    );
    for (i, expr) in items(sel.get("matchExpressions")).iter().enumerate() {
        let path = format!("{field}.matchExpressions[{i}]");
        let values = items(expr.get("values"));
        match str_at(expr, "operator") {
            "In" | "NotIn" if values.is_empty() => errs.push(required(
                &format!("{path}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(forbidden(
                &format!("{path}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => errs.push(invalid(
                &format!("{path}.operator"),
                &go_quote(op),
                "not a valid selector operator",
            )),
        }
        for msg in qualified_name(str_at(expr, "key")) {
            errs.push(invalid(
                &format!("{path}.key"),
                &go_quote(str_at(expr, "key")),
                &msg,
            ));
        }
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            for msg in label_value(v) {
                errs.push(invalid(&format!("{path}.values[{j}]"), &go_quote(v), &msg));
            }
        }
    }
    errs.len() == before
}

fn selector_matches(sel: &Value, labels: Option<&Value>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let labels_ok = entries(sel.get("matchLabels")).all(|(k, v)| get(k) == v.as_str());
    labels_ok
        && items(sel.get("matchExpressions")).iter().all(|e| {
            let value = get(str_at(e, "key"));
            let listed = |v: &str| items(e.get("values")).iter().any(|x| x.as_str() == Some(v));
            match str_at(e, "operator") {
                "In" => value.is_some_and(listed),
                "NotIn" => !value.is_some_and(listed),
                "Exists" => value.is_some(),
                _ => value.is_none(),
            }
        })
}

fn selector_is_empty(sel: &Value) -> bool {
    entries(sel.get("matchLabels")).next().is_none()
        && items(sel.get("matchExpressions")).is_empty()
}

/// `apiequality.Semantic.DeepEqual` of two selectors (absent and empty are equal).
fn same_selector(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a.filter(|s| !s.is_null()), b.filter(|s| !s.is_null())) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let labels = |s: &Value| -> Map<String, Value> {
                s.get("matchLabels")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default()
            };
            let exprs = |s: &Value| -> Vec<(String, String, Vec<Value>)> {
                items(s.get("matchExpressions"))
                    .iter()
                    .map(|e| {
                        let values = items(e.get("values")).to_vec();
                        (
                            str_at(e, "key").into(),
                            str_at(e, "operator").into(),
                            values,
                        )
                    })
                    .collect()
            };
            labels(a) == labels(b) && exprs(a) == exprs(b)
        }
        _ => false,
    }
}

// ---- kinds ----

fn nonnegative(spec: Option<&Value>, key: &str, errs: &mut Vec<Cause>) {
    if let Some(n) = spec
        .and_then(|s| s.get(key))
        .and_then(Value::as_i64)
        .filter(|n| *n < 0)
    {
        errs.push(invalid(
            &format!("spec.{key}"),
            &n.to_string(),
            "must be greater than or equal to 0",
        ));
    }
}

/// `ValidateDeploymentSpec` / `ValidateReplicaSetSpec`.
fn validate_workload(kind: &str, spec: Option<&Value>, errs: &mut Vec<Cause>) {
    nonnegative(spec, "replicas", errs);
    if kind == "ReplicaSet" {
        nonnegative(spec, "minReadySeconds", errs);
    }
    let sel = spec
        .and_then(|s| s.get("selector"))
        .filter(|s| !s.is_null());
    let convertible = match sel {
        None => {
            errs.push(required("spec.selector", ""));
            true
        }
        Some(sel) => {
            let ok = validate_selector(sel, "spec.selector", errs);
            if selector_is_empty(sel) {
                errs.push(invalid(
                    "spec.selector",
                    &go_label_selector(Some(sel)),
                    "empty selector is invalid for deployment",
                ));
            }
            ok
        }
    };
    let template = spec.and_then(|s| s.get("template"));
    let template_labels = template
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"));
    if !convertible {
        errs.push(invalid(
            "spec.selector",
            &go_label_selector(sel),
            "invalid label selector",
        ));
    } else {
        // a missing selector matches nothing; an empty one matches everything
        let matches =
            sel.is_some_and(|s| selector_is_empty(s) || selector_matches(s, template_labels));
        if !matches {
            errs.push(invalid(
                "spec.template.metadata.labels",
                &go_string_map(template_labels),
                "`selector` does not match template `labels`",
            ));
        }
        let meta = template.and_then(|t| t.get("metadata"));
        validate_labels(template_labels, "spec.template.metadata.labels", errs);
        validate_annotations(
            meta.and_then(|m| m.get("annotations")),
            "spec.template.metadata.annotations",
            errs,
        );
        let pod_spec = template.and_then(|t| t.get("spec"));
        validate_pod_spec(pod_spec, "spec.template.spec", errs);
        let policy = pod_spec.map_or("", |s| str_at(s, "restartPolicy"));
        if policy != "Always" {
            errs.push(not_supported(
                "spec.template.spec.restartPolicy",
                policy,
                &["Always"],
            ));
        }
    }
    if kind == "Deployment" {
        nonnegative(spec, "minReadySeconds", errs);
        nonnegative(spec, "revisionHistoryLimit", errs);
        nonnegative(spec, "progressDeadlineSeconds", errs);
        let num = |k: &str| spec.and_then(|s| s.get(k)).and_then(Value::as_i64);
        if let Some(deadline) = num("progressDeadlineSeconds")
            && deadline <= num("minReadySeconds").unwrap_or(0)
        {
            errs.push(invalid(
                "spec.progressDeadlineSeconds",
                &deadline.to_string(),
                "must be greater than minReadySeconds",
            ));
        }
    }
}

/// The container and restart-policy part of `ValidatePodSpec`.
fn validate_pod_spec(spec: Option<&Value>, path: &str, errs: &mut Vec<Cause>) {
    let containers = items(spec.and_then(|s| s.get("containers")));
    if containers.is_empty() {
        errs.push(required(&format!("{path}.containers"), ""));
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let at = format!("{path}.containers[{i}]");
        let name = str_at(c, "name");
        if name.is_empty() {
            errs.push(required(&format!("{at}.name"), ""));
        } else {
            for msg in dns1123_label(name) {
                errs.push(invalid(&format!("{at}.name"), &go_quote(name), &msg));
            }
        }
        if str_at(c, "image").is_empty() {
            errs.push(required(&format!("{at}.image"), ""));
        }
        if seen.contains(&name) {
            errs.push(duplicate(&format!("{at}.name"), name));
        } else {
            seen.push(name);
        }
    }
    match spec.map_or("", |s| str_at(s, "restartPolicy")) {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(required(&format!("{path}.restartPolicy"), "")),
        other => errs.push(not_supported(
            &format!("{path}.restartPolicy"),
            other,
            &["Always", "OnFailure", "Never"],
        )),
    }
}

/// The ports, selector and type part of `ValidateService`.
fn validate_service(spec: Option<&Value>, errs: &mut Vec<Cause>) {
    let field = |k: &str| spec.map_or("", |s| str_at(s, k));
    let ports = items(spec.and_then(|s| s.get("ports")));
    let ty = field("type");
    if ports.is_empty() && field("clusterIP") != "None" && ty != "ExternalName" {
        errs.push(required("spec.ports", ""));
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        let name = str_at(p, "name");
        if name.is_empty() && ports.len() > 1 {
            errs.push(required(&format!("{at}.name"), ""));
        } else if !name.is_empty() {
            for msg in dns1123_label(name) {
                errs.push(invalid(&format!("{at}.name"), &go_quote(name), &msg));
            }
            if names.contains(&name) {
                errs.push(duplicate(&format!("{at}.name"), name));
            } else {
                names.push(name);
            }
        }
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&port) {
            errs.push(invalid(
                &format!("{at}.port"),
                &port.to_string(),
                "must be between 1 and 65535, inclusive",
            ));
        }
        match str_at(p, "protocol") {
            "TCP" | "UDP" | "SCTP" => {}
            "" => errs.push(required(&format!("{at}.protocol"), "")),
            other => errs.push(not_supported(
                &format!("{at}.protocol"),
                other,
                &["SCTP", "TCP", "UDP"],
            )),
        }
    }
    validate_labels(spec.and_then(|s| s.get("selector")), "spec.selector", errs);
    match ty {
        "ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort" => {}
        "" => errs.push(required("spec.type", "")),
        other => errs.push(not_supported(
            "spec.type",
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
}

// ---- decode type checks ----

/// Decodes `obj` as the k8s-openapi type of `kind` (Deployment, ReplicaSet, Pod, Service,
/// Endpoints, Namespace, Event) and turns a type mismatch into the 422 a merge patch gets
/// (`422-wrong-type-replicas-string.json`): field `patch`, the patched object as a Go-quoted JSON
/// string, then Go's `json: cannot unmarshal ...` text. Like the real server the Status carries
/// no name or kind, so `_name` is not used. Missing required fields are left to [`validate`].
pub fn check_types(kind: &str, group: &str, _name: &str, obj: &Value) -> ApiResult<()> {
    let decoded = match (group, kind) {
        ("apps", "Deployment") => decode::<apps::Deployment>(obj),
        ("apps", "ReplicaSet") => decode::<apps::ReplicaSet>(obj),
        ("", "Pod") => decode::<core::Pod>(obj),
        ("", "Service") => decode::<core::Service>(obj),
        ("", "Endpoints") => decode::<core::Endpoints>(obj),
        ("", "Namespace") => decode::<core::Namespace>(obj),
        ("", "Event") => decode::<core::Event>(obj),
        ("events.k8s.io", "Event") => decode::<events::Event>(obj),
        ("networking.k8s.io", "Ingress") => decode::<networking::Ingress>(obj),
        _ => return Ok(()),
    };
    let Err((err, decoded_value)) = decoded else {
        return Ok(());
    };
    let text = err.to_string();
    if text.starts_with("missing field") {
        return Ok(());
    }
    let go_error = go_unmarshal_error(kind, &decoded_value, &err);
    let message = format!("Invalid value: {}: {go_error}", go_quote(&obj.to_string()));
    Err(ApiError {
        code: 422,
        reason: "Invalid".into(),
        message: format!(" \"\" is invalid: patch: {message}"),
        details: Some(Box::new(Details {
            causes: vec![Cause::invalid("patch", message)],
            ..Default::default()
        })),
    })
}

/// Deserializes `obj` (with the type's own apiVersion/kind) from compact JSON, so the error
/// position maps back to a field; returns the error and the value that was decoded.
fn decode<T: DeserializeOwned + Resource>(obj: &Value) -> Result<(), (serde_json::Error, Value)> {
    let mut v = obj.clone();
    if let Some(map) = v.as_object_mut() {
        map.insert("apiVersion".into(), T::API_VERSION.into());
        map.insert("kind".into(), T::KIND.into());
    }
    match serde_json::from_str::<T>(&v.to_string()) {
        Ok(_) => Ok(()),
        Err(e) => Err((e, v)),
    }
}

/// Go's `encoding/json` `UnmarshalTypeError` text for the field at the error position.
fn go_unmarshal_error(kind: &str, decoded: &Value, err: &serde_json::Error) -> String {
    let mut path = Vec::new();
    let leaf = locate(decoded, 0, err.column().saturating_sub(1), &mut path);
    let expected = err
        .to_string()
        .split_once(", expected ")
        .map(|(_, rest)| rest.split(" at line ").next().unwrap_or(rest).to_string())
        .unwrap_or_default();
    let go_type = match expected.as_str() {
        "i32" => "int32".to_string(),
        "i64" => "int64".into(),
        "u32" => "uint32".into(),
        "u64" => "uint64".into(),
        "f64" => "float64".into(),
        "a boolean" => "bool".into(),
        "a string" => "string".into(),
        "a sequence" => "[]interface {}".into(),
        "a map" => "map[string]string".into(),
        "IntOrString" => "intstr.IntOrString".into(),
        "Quantity" => "resource.Quantity".into(),
        other => format!("v1.{other}"),
    };
    let json_type = match leaf {
        Value::String(_) => "string".to_string(),
        Value::Number(n) if go_type.contains("int") => format!("number {n}"),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
        Value::Null => "null".into(),
    };
    let mut fields: Vec<&str> = path.iter().filter_map(|s| s.as_deref()).collect();
    // Go names the struct field holding a map, not the map entry
    let in_map = match fields.as_slice() {
        ["spec", "selector", _] => kind == "Service",
        [.., parent, _] => MAP_FIELDS.contains(parent),
        _ => false,
    };
    if in_map {
        fields.pop();
    }
    if fields.is_empty() {
        return format!("json: cannot unmarshal {json_type} into Go value of type v1.{kind}");
    }
    format!(
        "json: cannot unmarshal {json_type} into Go struct field {}.{} of type {go_type}",
        go_struct(kind, &fields),
        fields.join(".")
    )
}

/// Go `map[string]...` fields (their entries are not struct fields).
const MAP_FIELDS: &[&str] = &[
    "labels",
    "annotations",
    "matchLabels",
    "nodeSelector",
    "limits",
    "requests",
    "data",
];

/// The innermost value whose compact serialization (starting at byte `start`) covers byte
/// `target`; `path` gets its keys (`Some`) and array indices (`None`).
fn locate<'a>(
    v: &'a Value,
    start: usize,
    target: usize,
    path: &mut Vec<Option<String>>,
) -> &'a Value {
    let children: Vec<(Option<String>, usize, &Value)> = match v {
        Value::Object(map) => map
            .iter()
            .map(|(k, c)| {
                (
                    Some(k.clone()),
                    Value::String(k.clone()).to_string().len() + 1,
                    c,
                )
            })
            .collect(),
        Value::Array(list) => list.iter().map(|c| (None, 0, c)).collect(),
        _ => return v,
    };
    let mut pos = start + 1;
    for (key, prefix, child) in children {
        let child_start = pos + prefix;
        let child_end = child_start + child.to_string().len();
        if (child_start..child_end).contains(&target) {
            path.push(key);
            return locate(child, child_start, target, path);
        }
        pos = child_end + 1;
    }
    v
}

/// The Go struct holding the last field of `fields` (the JSON path without indices).
fn go_struct(kind: &str, fields: &[&str]) -> String {
    let parent = fields.len().checked_sub(2).map_or("", |i| fields[i]);
    let grandparent = fields.len().checked_sub(3).map_or("", |i| fields[i]);
    let name = match (fields.len(), grandparent, parent) {
        (1, _, _) => kind,
        (2, _, "spec") => return format!("{kind}Spec"),
        (2, _, "status") => return format!("{kind}Status"),
        (_, _, "metadata") => "ObjectMeta",
        (_, "template", "spec") => "PodSpec",
        (_, _, "template") => "PodTemplateSpec",
        (_, _, "containers" | "initContainers") => "Container",
        (_, "containers" | "initContainers", "ports") => "ContainerPort",
        (_, _, "ports") => "ServicePort",
        (_, _, "selector") => "LabelSelector",
        (_, _, "strategy") => "DeploymentStrategy",
        (_, _, "rollingUpdate") => "RollingUpdateDeployment",
        (_, _, "resources") => "ResourceRequirements",
        (_, _, "livenessProbe" | "readinessProbe" | "startupProbe") => "Probe",
        (_, _, "httpGet") => "HTTPGetAction",
        (_, _, "env") => "EnvVar",
        (_, _, other) => {
            let mut chars = other.chars();
            return chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default();
        }
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::sandbox::test_fixtures::fixture_json;

    fn canary() -> Value {
        fixture_json("02-lists/deployments.json")["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["metadata"]["name"] == "checkout-canary")
            .unwrap()
            .clone()
    }

    /// RFC 7386 merge patch, enough for the fixtures' requests.
    fn merge(target: &mut Value, patch: &Value) {
        match (target, patch) {
            (Value::Object(t), Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        t.shift_remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
            (t, p) => *t = p.clone(),
        }
    }

    fn patched_update(request: &str) -> ApiError {
        let old = canary();
        let mut new = old.clone();
        merge(&mut new, &fixture_json(request));
        validate("Deployment", "apps", &new, Some(&old)).unwrap_err()
    }

    fn assert_status(err: &ApiError, fixture_rel: &str) {
        let want = fixture_json(fixture_rel);
        let got = err.to_status();
        assert_eq!(got, want);
        assert_eq!(got.to_string(), want.to_string());
    }

    #[test]
    fn invalid_label_value_on_update_matches_fixture() {
        let err = patched_update("05-errors/422-invalid-label-value.request.json");
        assert_status(&err, "05-errors/422-invalid-label-value.json");
    }

    #[test]
    fn negative_replicas_matches_fixture() {
        let err = patched_update("05-errors/422-invalid-replicas-negative.request.json");
        assert_status(&err, "05-errors/422-invalid-replicas-negative.json");
    }

    #[test]
    fn selector_change_matches_fixture() {
        let err = patched_update("05-errors/422-invalid-selector-immutable.request.json");
        assert_status(&err, "05-errors/422-invalid-selector-immutable.json");
    }

    #[test]
    fn json_patch_test_failure_matches_fixture() {
        assert_status(
            &json_patch_test_failed(),
            "05-errors/422-jsonpatch-test-failed.json",
        );
    }

    /// The patched object the server embedded in its message.
    fn embedded_object(status: &Value) -> Value {
        let msg = status["details"]["causes"][0]["message"].as_str().unwrap();
        let quoted = msg
            .strip_prefix("Invalid value: ")
            .and_then(|m| m.split_once("\": json: "))
            .map(|(q, _)| format!("{q}\""))
            .unwrap();
        let text: String = serde_json::from_str(&quoted).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn wrong_type_matches_fixture() {
        let want = fixture_json("05-errors/422-wrong-type-replicas-string.json");
        let obj = embedded_object(&want);
        assert_eq!(obj["spec"]["replicas"], "two");
        let err = check_types("Deployment", "apps", "checkout-canary", &obj).unwrap_err();
        assert_status(&err, "05-errors/422-wrong-type-replicas-string.json");
        // the same object built the sandbox's way: only the embedded JSON's key order differs
        let mut ours = canary();
        merge(
            &mut ours,
            &fixture_json("05-errors/422-wrong-type-replicas-string.request.json"),
        );
        let err = check_types("Deployment", "apps", "checkout-canary", &ours).unwrap_err();
        assert!(
            err.message
                .starts_with(" \"\" is invalid: patch: Invalid value: \"{\\\"metadata\\\":{")
        );
        assert!(err.message.ends_with(
            "\": json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
        ));
    }

    fn type_error(kind: &str, group: &str, obj: Value) -> String {
        let err = check_types(kind, group, "x", &obj).unwrap_err();
        assert_eq!(err.code, 422);
        let (_, go) = err.message.rsplit_once("\": ").unwrap();
        go.to_string()
    }

    #[test]
    fn wrong_types_elsewhere() {
        let mut d = canary();
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(5);
        assert_eq!(
            type_error("Deployment", "apps", d),
            "json: cannot unmarshal number into Go struct field Container.spec.template.spec.containers.image of type string"
        );
        let mut d = canary();
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = json!("80");
        assert_eq!(
            type_error("Deployment", "apps", d),
            "json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"
        );
        let mut d = canary();
        d["spec"]["replicas"] = json!(1.5);
        assert_eq!(
            type_error("Deployment", "apps", d),
            "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32"
        );
        let mut d = canary();
        d["spec"] = json!([1]);
        assert_eq!(
            type_error("Deployment", "apps", d),
            "json: cannot unmarshal array into Go struct field Deployment.spec of type v1.DeploymentSpec"
        );
        let svc = json!({"metadata": {"name": "s", "labels": {"a": 1}}, "spec": {"ports": [{"port": 80}]}});
        assert_eq!(
            type_error("Service", "", svc),
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"
        );
        let ns = json!({"metadata": {"name": "n"}, "spec": {"finalizers": "kubernetes"}});
        assert!(type_error("Namespace", "", ns).starts_with(
            "json: cannot unmarshal string into Go struct field NamespaceSpec.spec.finalizers"
        ));
        assert_eq!(
            type_error("Pod", "", json!([])),
            "json: cannot unmarshal array into Go value of type v1.Pod"
        );
    }

    #[test]
    fn recorded_objects_pass() {
        for (kind, group, list) in [
            ("Deployment", "apps", "02-lists/deployments.json"),
            ("ReplicaSet", "apps", "02-lists/replicasets.json"),
            ("Pod", "", "02-lists/pods.json"),
            ("Service", "", "02-lists/services.json"),
            ("Endpoints", "", "02-lists/endpoints.json"),
            ("Namespace", "", "02-lists/namespaces.json"),
            ("Event", "", "02-lists/events.json"),
            (
                "Event",
                "events.k8s.io",
                "02-lists/events-events.k8s.io.json",
            ),
            (
                "HTTPRoute",
                "gateway.networking.k8s.io",
                "02-lists/httproutes.json",
            ),
        ] {
            for item in fixture_json(list)["items"].as_array().unwrap() {
                let name = item["metadata"]["name"].as_str().unwrap();
                assert_eq!(validate(kind, group, item, None), Ok(()), "{kind} {name}");
                assert_eq!(
                    validate(kind, group, item, Some(item)),
                    Ok(()),
                    "{kind} {name}"
                );
                assert_eq!(
                    check_types(kind, group, name, item),
                    Ok(()),
                    "{kind} {name}"
                );
            }
        }
        // missing required fields are validation's business, not a decode error
        assert_eq!(check_types("Pod", "", "p", &json!({"spec": {}})), Ok(()));
        assert_eq!(
            check_types("ConfigMap", "", "c", &json!({"data": 5})),
            Ok(())
        );
    }

    fn causes(result: ApiResult<()>) -> Vec<(String, String)> {
        let err = result.unwrap_err();
        err.details
            .unwrap()
            .causes
            .into_iter()
            .map(|c| (c.field.unwrap_or_default(), c.message))
            .collect()
    }

    #[test]
    fn create_deployment_errors_in_server_order() {
        let d = json!({
            "metadata": {"name": "Bad_Name", "labels": {"-x": "ok"}},
            "spec": {"replicas": -2, "selector": {"matchLabels": {"app": "a"}},
                "template": {"metadata": {"labels": {"app": "b"}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}, {"name": "c"}]}}}
        });
        let got = causes(validate("Deployment", "apps", &d, None));
        let fields: Vec<&str> = got.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "metadata.labels",
                "spec.replicas",
                "spec.template.metadata.labels",
                "spec.template.spec.containers[1].image",
                "spec.template.spec.containers[1].name",
                "spec.template.spec.restartPolicy",
            ]
        );
        assert_eq!(
            got[0].1,
            "Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert_eq!(
            got[1].1,
            "Invalid value: \"-x\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert_eq!(
            got[2].1,
            "Invalid value: -2: must be greater than or equal to 0"
        );
        assert_eq!(
            got[3].1,
            "Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`"
        );
        assert_eq!(got[4].1, "Required value");
        assert_eq!(got[5].1, "Duplicate value: \"c\"");
        assert_eq!(
            got[6].1,
            "Unsupported value: \"Never\": supported values: \"Always\""
        );
        let err = validate("Deployment", "apps", &d, None).unwrap_err();
        assert!(
            err.message
                .starts_with("Deployment.apps \"Bad_Name\" is invalid: [metadata.name: ")
        );
    }

    #[test]
    fn selectors_and_templates() {
        let deploy = |selector: Value, labels: Value| {
            json!({"metadata": {"name": "d"}, "spec": {"replicas": 1, "selector": selector,
                "template": {"metadata": {"labels": labels}, "spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "i"}]}}}})
        };
        let ok = deploy(
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}, {"key": "x", "operator": "DoesNotExist"}]}),
            json!({"app": "b"}),
        );
        assert_eq!(validate("Deployment", "apps", &ok, None), Ok(()));
        let empty = causes(validate(
            "Deployment",
            "apps",
            &deploy(json!({}), json!({"app": "a"})),
            None,
        ));
        assert_eq!(empty, [(
            "spec.selector".to_string(),
            "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment".to_string()
        )]);
        let bad = causes(validate(
            "Deployment",
            "apps",
            &deploy(
                json!({"matchExpressions": [{"key": "a", "operator": "In"}, {"key": "b", "operator": "Exists", "values": ["x"]}, {"key": "c", "operator": "Near"}]}),
                json!({}),
            ),
            None,
        ));
        let fields: Vec<&str> = bad.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.selector.matchExpressions[0].values",
                "spec.selector.matchExpressions[1].values",
                "spec.selector.matchExpressions[2].operator",
                "spec.selector",
            ]
        );
        assert_eq!(
            bad[0].1,
            "Required value: must be specified when `operator` is 'In' or 'NotIn'"
        );
        assert_eq!(
            bad[1].1,
            "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        );
        assert_eq!(
            bad[2].1,
            "Invalid value: \"Near\": not a valid selector operator"
        );
        assert!(bad[3].1.ends_with(": invalid label selector"));
        assert!(bad[3].1.contains(
            "v1.LabelSelectorRequirement{Key:\"a\", Operator:\"In\", Values:[]string(nil)}"
        ));
        let missing = json!({"metadata": {"name": "r"}, "spec": {"template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "i"}]}}}});
        let got = causes(validate("ReplicaSet", "apps", &missing, None));
        assert_eq!(
            got[0],
            ("spec.selector".to_string(), "Required value".to_string())
        );
        assert_eq!(got[1].0, "spec.template.metadata.labels");
        assert!(
            got[1]
                .1
                .starts_with("Invalid value: map[string]string(nil): ")
        );
    }

    #[test]
    fn update_repeats_metadata_checks_and_guards_selectors() {
        let old = canary();
        let mut new = old.clone();
        new["metadata"]["annotations"]["bad key!"] = json!("x");
        let got = causes(validate("Deployment", "apps", &new, Some(&old)));
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|c| c.0 == "metadata.annotations"));
        let err = validate("Deployment", "apps", &new, Some(&old)).unwrap_err();
        assert!(
            !err.message.contains("is invalid: ["),
            "identical causes are listed once: {}",
            err.message
        );
        // selector: absent and empty maps compare equal; ReplicaSets are guarded too
        let mut same = old.clone();
        same["spec"]["selector"]["matchExpressions"] = json!([]);
        assert_eq!(validate("Deployment", "apps", &same, Some(&old)), Ok(()));
        let rs = fixture_json("03-get/replicaset-checkout.json");
        let mut moved = rs.clone();
        moved["spec"]["selector"]["matchExpressions"] =
            json!([{"key": "tier", "operator": "Exists"}]);
        let got = causes(validate("ReplicaSet", "apps", &moved, Some(&rs)));
        assert_eq!(got.len(), 2, "{got:?}"); // immutable + no longer matches the template
        assert!(got[1].1.contains("MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"tier\", Operator:\"Exists\", Values:[]string(nil)}}}: field is immutable"));
    }

    #[test]
    fn names_per_kind() {
        let svc = json!({"metadata": {"name": "1svc"}, "spec": {"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP"}]}});
        assert_eq!(
            causes(validate("Service", "", &svc, None)),
            [("metadata.name".to_string(), "Invalid value: \"1svc\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string())]
        );
        let ns = json!({"metadata": {"name": "a.b"}});
        assert_eq!(
            causes(validate("Namespace", "", &ns, None))[0].1,
            "Invalid value: \"a.b\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        );
        let long = "a".repeat(64);
        let cm = json!({"metadata": {"name": "x".repeat(254), "labels": {"k": long}}});
        let got = causes(validate("ConfigMap", "", &cm, None));
        assert!(
            got[0]
                .1
                .ends_with("\": must be no more than 253 characters")
        );
        assert!(got[1].1.ends_with("\": must be no more than 63 characters"));
        assert_eq!(
            causes(validate("ConfigMap", "", &json!({}), None)),
            [(
                "metadata.name".to_string(),
                "Required value: name or generateName is required".to_string()
            )]
        );
        let generated = json!({"metadata": {"generateName": "web-7f857bccc7-"}, "spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "i"}]}});
        assert_eq!(validate("Pod", "", &generated, None), Ok(()));
        let bad_prefix = json!({"metadata": {"generateName": "Web-"}});
        assert_eq!(
            causes(validate("ConfigMap", "", &bad_prefix, None))[0].0,
            "metadata.generateName"
        );
        let keys = json!({"metadata": {"name": "x", "labels": {"example.com/ok": "", "a/b/c": "v", "/n": "v", "Bad.Prefix/n": "v"}}});
        let got = causes(validate("ConfigMap", "", &keys, None));
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].1.contains("a qualified name must consist of"));
        assert!(got[1].1.contains("prefix part must be non-empty"));
        assert!(
            got[2]
                .1
                .contains("prefix part a lowercase RFC 1123 subdomain")
        );
    }

    #[test]
    fn pods_and_services() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "Sometimes", "containers": []}});
        assert_eq!(
            causes(validate("Pod", "", &pod, None)),
            [
                ("spec.containers".to_string(), "Required value".to_string()),
                ("spec.restartPolicy".to_string(), "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"".to_string()),
            ]
        );
        let pod = json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "Never", "containers": [{"name": "Web", "image": "i"}]}});
        assert!(
            causes(validate("Pod", "", &pod, None))[0]
                .1
                .starts_with("Invalid value: \"Web\": a lowercase RFC 1123 label")
        );
        let svc = json!({"metadata": {"name": "s"}, "spec": {"type": "Magic", "selector": {"app": "a b"},
            "ports": [{"port": 0, "protocol": "TCP"}, {"name": "x", "port": 80, "protocol": "HTTP"}]}});
        let got = causes(validate("Service", "", &svc, None));
        let fields: Vec<&str> = got.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.ports[0].name",
                "spec.ports[0].port",
                "spec.ports[1].protocol",
                "spec.selector",
                "spec.type"
            ]
        );
        assert_eq!(
            got[1].1,
            "Invalid value: 0: must be between 1 and 65535, inclusive"
        );
        assert_eq!(
            got[2].1,
            "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
        );
        assert_eq!(
            got[4].1,
            "Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
        );
        let headless =
            json!({"metadata": {"name": "h"}, "spec": {"type": "ClusterIP", "clusterIP": "None"}});
        assert_eq!(validate("Service", "", &headless, None), Ok(()));
        let portless = json!({"metadata": {"name": "h"}, "spec": {"type": "ClusterIP"}});
        assert_eq!(
            causes(validate("Service", "", &portless, None))[0].0,
            "spec.ports"
        );
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("a\"b\\c\n\t\u{1}é"), "\"a\\\"b\\\\c\\n\\t\\x01é\"");
        assert_eq!(go_string_map(Some(&json!({}))), "map[string]string{}");
    }

    #[test]
    fn garbage_never_panics() {
        let junk = [
            json!(null),
            json!(7),
            json!(["x"]),
            json!({"metadata": "x", "spec": 4}),
            json!({"metadata": {"name": 5, "labels": [1], "annotations": 3},
                "spec": {"selector": {"matchLabels": 1, "matchExpressions": [3, {"values": 1}]}, "template": 2,
                    "containers": {"a": 1}, "ports": [1, {"port": "x"}], "replicas": "many"}}),
        ];
        for kind in [
            "Deployment",
            "ReplicaSet",
            "Pod",
            "Service",
            "Endpoints",
            "Namespace",
            "Event",
            "Widget",
        ] {
            for group in ["", "apps", "events.k8s.io"] {
                for j in &junk {
                    let _ = validate(kind, group, j, None);
                    let _ = validate(kind, group, j, Some(j));
                    let _ = check_types(kind, group, "n", j);
                }
            }
        }
    }
}
