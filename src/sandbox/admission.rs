//! What happens to an object between the request and the store: defaults, validation, and
//! the real server's field order.

use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::resources::ResourceType;
use super::store::WriteOpts;
use super::{defaults, validate};

/// Default and validate an object about to be stored (`old` is the stored one on update).
pub fn admit(
    rt: &ResourceType,
    obj: &mut Value,
    old: Option<&Value>,
    opts: &WriteOpts,
) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the object provided is not a JSON object",
        ));
    }
    if rt.custom || rt.create_only {
        return Ok(());
    }
    // Status writes come from controllers; only the main resource is defaulted and validated.
    if opts.subresource.as_deref() != Some("status") {
        defaults::apply_defaults(rt.kind, obj);
        if old.is_none() && rt.kind == "Service" && defaults::needs_cluster_ip(obj) {
            allocate_cluster_ip(obj);
        }
    }
    let name = super::store::name_of(obj).to_string();
    validate::check_types(rt.kind, rt.group, &name, obj)?;
    validate::validate(rt.kind, rt.group, obj, old)
}

/// Put keys in the order the real server writes them: Go struct order for built-in types,
/// sorted at every level for custom resources (unstructured JSON is a Go map).
pub fn order(rt: &ResourceType, obj: &mut Value) {
    if rt.custom {
        sort_keys(obj);
    } else {
        defaults::canonical_order(rt.kind, obj);
    }
}

fn sort_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.sort_keys();
            m.values_mut().for_each(sort_keys);
        }
        Value::Array(a) => a.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// A ClusterIP from 10.96.0.0/12, derived from the Service's namespace and name (stable across
/// runs with the same world, as tests like).
fn allocate_cluster_ip(obj: &mut Value) {
    let key = format!(
        "{}/{}",
        super::store::meta_str(obj, "namespace").unwrap_or_default(),
        super::store::name_of(obj)
    );
    let h = key.bytes().fold(0x811c_9dc5_u32, |a, b| {
        (a ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let ip = format!(
        "10.{}.{}.{}",
        96 + (h >> 16) % 16,
        (h >> 8) & 0xff,
        (h & 0xff).max(2)
    );
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("clusterIP".into(), Value::String(ip.clone()));
        spec.insert("clusterIPs".into(), Value::Array(vec![Value::String(ip)]));
    }
}
