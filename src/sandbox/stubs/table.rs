use serde_json::{Value, json};
#[derive(Debug, Clone, Copy)]
pub enum IncludeObject { None, Metadata, Object }
pub fn to_table(_k: &str, _i: &[&Value], rv: &str, _c: Option<&str>, _r: Option<i64>, _inc: IncludeObject, _now: jiff::Timestamp) -> Value { json!({"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":rv},"columnDefinitions":[],"rows":[]}) }
