//! Discovery documents (`/version`, `/api`, `/apis`, resource lists), built from the resource
//! table so that kubectl and kube-rs find exactly what the sandbox serves.

use serde_json::{Map, Value, json};

use super::resources::{RESOURCES, groups};

/// `/version`: indented JSON without a trailing newline, as the real server sends it.
pub fn version_body() -> String {
    let v = json!({
        "major": "1",
        "minor": "26",
        "gitVersion": "v1.26.4-kockpit-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-11-21T00:00:00Z",
        "goVersion": "go1.19.8",
        "compiler": "gc",
        "platform": "linux/amd64"
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

pub fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]
    })
}

/// kubectl asks for aggregated discovery first; a 1.26 server without that feature answers
/// with the plain list unless the client accepts nothing else (then 406).
pub fn wants_only_aggregated(accept: &str) -> bool {
    !accept.is_empty()
        && accept
            .split(',')
            .all(|a| a.contains("as=APIGroupDiscoveryList"))
}

fn group_entry(name: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": {"groupVersion": format!("{name}/{}", versions[0]), "version": versions[0]}
    })
}

pub fn api_group_list() -> Value {
    let gs: Vec<Value> = groups().iter().map(|(g, vs)| group_entry(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs})
}

pub fn api_group(name: &str) -> Option<Value> {
    let (g, vs) = groups().into_iter().find(|(g, _)| *g == name)?;
    let mut v = group_entry(g, &vs);
    if let Some(m) = v.as_object_mut() {
        let mut out = Map::new();
        out.insert("kind".into(), json!("APIGroup"));
        out.insert("apiVersion".into(), json!("v1"));
        for (k, val) in m.iter() {
            out.insert(k.clone(), val.clone());
        }
        return Some(Value::Object(out));
    }
    Some(v)
}

/// Whether a group/version is served.
pub fn serves(group: &str, version: &str) -> bool {
    RESOURCES
        .iter()
        .any(|r| r.group == group && r.version == version)
}

/// The APIResourceList of one group/version, subresources included.
pub fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut m = Map::new();
        m.insert("name".into(), json!(r.plural));
        m.insert("singularName".into(), json!(r.singular));
        m.insert("namespaced".into(), json!(r.namespaced));
        m.insert("kind".into(), json!(r.kind));
        m.insert("verbs".into(), json!(r.verbs()));
        if !r.short_names.is_empty() {
            m.insert("shortNames".into(), json!(r.short_names));
        }
        if !r.categories.is_empty() {
            m.insert("categories".into(), json!(r.categories));
        }
        if !r.storage_version_hash.is_empty() {
            m.insert("storageVersionHash".into(), json!(r.storage_version_hash));
        }
        resources.push(Value::Object(m));
        for sub in r.subresources {
            let mut s = Map::new();
            s.insert("name".into(), json!(format!("{}/{sub}", r.plural)));
            s.insert("singularName".into(), json!(""));
            s.insert("namespaced".into(), json!(r.namespaced));
            match *sub {
                "scale" => {
                    s.insert("group".into(), json!("autoscaling"));
                    s.insert("version".into(), json!("v1"));
                    s.insert("kind".into(), json!("Scale"));
                    s.insert("verbs".into(), json!(["get", "patch", "update"]));
                }
                "log" => {
                    s.insert("kind".into(), json!(r.kind));
                    s.insert("verbs".into(), json!(["get"]));
                }
                _ => {
                    s.insert("kind".into(), json!(r.kind));
                    s.insert("verbs".into(), json!(["get", "patch", "update"]));
                }
            }
            resources.push(Value::Object(s));
        }
    }
    // The real server lists resources and subresources in name order.
    resources.sort_by(|a, b| {
        let name = |v: &Value| {
            v.get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        name(a).cmp(&name(b))
    });
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut out = Map::new();
    out.insert("kind".into(), json!("APIResourceList"));
    if !group.is_empty() {
        out.insert("apiVersion".into(), json!("v1"));
    }
    out.insert("groupVersion".into(), json!(gv));
    out.insert("resources".into(), Value::Array(resources));
    Value::Object(out)
}

/// `/openapi/v3`: the index of per-group-version documents.
pub fn openapi_v3_root() -> Value {
    let mut paths = Map::new();
    let mut gvs: Vec<(&str, &str)> = RESOURCES.iter().map(|r| (r.group, r.version)).collect();
    gvs.dedup();
    for (g, v) in gvs {
        let key = if g.is_empty() {
            format!("api/{v}")
        } else {
            format!("apis/{g}/{v}")
        };
        paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash=kockpit-sandbox")}),
        );
    }
    json!({"paths": paths})
}

/// A minimal OpenAPI v3 document for one group/version: enough for kubectl to see that the
/// server validates fields itself (the `fieldValidation` parameter on PATCH), so that it
/// leaves schema validation to the server instead of downloading schemas.
pub fn openapi_v3_gv(group: &str, version: &str) -> Option<Value> {
    if !serves(group, version) {
        return None;
    }
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = Map::new();
    let params = json!([
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}
    ]);
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version && !r.create_only)
    {
        let path = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        paths.insert(
            path,
            json!({
                "patch": {
                    "operationId": format!("patch{}", r.kind),
                    "parameters": params,
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                    "responses": {"200": {"description": "OK"}}
                },
                "put": {
                    "operationId": format!("replace{}", r.kind),
                    "parameters": params,
                    "x-kubernetes-action": "put",
                    "x-kubernetes-group-version-kind": gvk,
                    "responses": {"200": {"description": "OK"}}
                }
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.26.4-kockpit-sandbox"},
        "paths": paths,
        "components": {"schemas": {}}
    }))
}
