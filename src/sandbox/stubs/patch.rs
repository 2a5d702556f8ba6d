use super::error::{ApiError, ApiResult};
use serde_json::Value;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind { Json, Merge, Strategic, Apply }
impl PatchKind {
    pub fn from_content_type(ct: &str, custom: bool) -> ApiResult<PatchKind> {
        let ct = ct.split(';').next().unwrap_or_default().trim();
        match ct {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" if !custom => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" => Ok(PatchKind::Apply),
            _ => Err(ApiError::unsupported_media_type("415: Unsupported Media Type")),
        }
    }
}
pub fn decode_patch(body: &[u8], _k: PatchKind) -> ApiResult<Value> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))
}
pub fn json_merge_patch(target: &mut Value, patch: &Value) {
    if let Value::Object(p) = patch {
        if !target.is_object() { *target = Value::Object(Default::default()); }
        if let Value::Object(t) = target {
            for (k, v) in p {
                if v.is_null() { t.remove(k); } else { json_merge_patch(t.entry(k.clone()).or_insert(Value::Null), v); }
            }
        }
    } else { *target = patch.clone(); }
}
pub fn json_patch(_t: &mut Value, _ops: &Value) -> ApiResult<()> { Err(ApiError::bad_request("stub")) }
pub fn strategic_merge_patch(t: &mut Value, p: &Value, _k: &str) -> ApiResult<()> { json_merge_patch(t, p); Ok(()) }
