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
        return Err(ApiError::bad_request("the object provided is not a JSON object"));
    }
    if rt.custom || rt.create_only {
        return Ok(());
    }
    // Status writes come from controllers; only the main resource is defaulted and validated.
    if opts.subresource.as_deref() != Some("status") {
        defaults::apply_defaults(rt.kind, obj);
    }
    let name = super::store::name_of(obj).to_string();
    validate::check_types(rt.kind, rt.group, &name, obj)?;
    validate::validate(rt.kind, rt.group, obj, old)
}

/// Put keys in the order the real server writes them.
pub fn order(rt: &ResourceType, obj: &mut Value) {
    if !rt.custom {
        defaults::canonical_order(rt.kind, obj);
    }
}
