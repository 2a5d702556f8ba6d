use super::error::ApiResult;
use serde_json::{Map, Value};
#[derive(Debug, Clone, Default)]
pub struct LabelSelector { reqs: Vec<(String, String)> }
impl LabelSelector {
    pub fn parse(s: &str) -> ApiResult<Self> { Ok(Self { reqs: s.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect() }) }
    pub fn from_map(m: &Map<String, Value>) -> Self { Self { reqs: m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect() } }
    pub fn from_label_selector_object(v: &Value) -> Option<Self> { v.get("matchLabels").and_then(Value::as_object).map(Self::from_map) }
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool { self.reqs.iter().all(|(k, v)| labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v.as_str())) }
}
#[derive(Debug, Clone)]
pub struct FieldSelector;
impl FieldSelector {
    pub fn parse(_s: &str, _r: &str, _g: &str) -> ApiResult<Self> { Ok(FieldSelector) }
    pub fn matches(&self, _o: &Value) -> bool { true }
}
