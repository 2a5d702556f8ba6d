//! The sandbox's own control API under `/sandbox/v1/`: read and move the simulated clock.
//! (Fault injection joins it in a later part.)

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response};
use serde_json::{Value, json};

use super::Sandbox;
use super::clock::format_time;
use super::error::ApiError;
use super::server::{Body, error_response, json_response};

pub fn handle(sb: &Sandbox, method: &Method, rest: &[&str], body: &Bytes) -> Response<Body> {
    match (method, rest) {
        (&Method::GET, ["clock"]) => clock_state(sb),
        (&Method::POST, ["clock"]) => {
            let req: Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => return error_response(sb, &ApiError::bad_request(format!("clock request: {e}"))),
            };
            let Some(secs) = req.get("advanceSeconds").and_then(Value::as_f64).filter(|s| *s >= 0.0 && s.is_finite()) else {
                return error_response(sb, &ApiError::bad_request("clock request needs advanceSeconds (a number >= 0)"));
            };
            sb.store.clock.advance(Duration::from_secs_f64(secs));
            sb.store.changed.notify_one();
            clock_state(sb)
        }
        _ => error_response(sb, &ApiError::new(404, "NotFound", "no such sandbox endpoint")),
    }
}

fn clock_state(sb: &Sandbox) -> Response<Body> {
    json_response(
        sb,
        200,
        &json!({"now": format_time(sb.store.clock.now()), "manual": sb.store.clock.is_manual()}),
    )
}
