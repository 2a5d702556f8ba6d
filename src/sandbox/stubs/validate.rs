use super::error::ApiResult;
use serde_json::Value;
pub fn validate(_k: &str, _g: &str, _o: &Value, _old: Option<&Value>) -> ApiResult<()> { Ok(()) }
pub fn check_types(_k: &str, _g: &str, _n: &str, _o: &Value) -> ApiResult<()> { Ok(()) }
