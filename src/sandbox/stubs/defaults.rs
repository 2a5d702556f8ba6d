use serde_json::Value;
pub fn apply_defaults(_k: &str, _o: &mut Value) {}
pub fn canonical_order(_k: &str, _o: &mut Value) {}
