//! The sandbox's own control API under `/sandbox/v1/`: read and move the simulated clock;
//! inject, list and clear faults.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response};
use serde_json::{Value, json};

use super::Sandbox;
use super::clock::format_time;
use super::error::ApiError;
use super::faults::FaultSpec;
use super::server::{Body, error_response, json_response};

pub fn handle(sb: &Sandbox, method: &Method, rest: &[&str], body: &Bytes) -> Response<Body> {
    match (method, rest) {
        (&Method::GET, ["clock"]) => clock_state(sb),
        (&Method::POST, ["clock"]) => {
            let req: Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => {
                    return error_response(
                        sb,
                        &ApiError::bad_request(format!("clock request: {e}")),
                    );
                }
            };
            let Some(secs) = req
                .get("advanceSeconds")
                .and_then(Value::as_f64)
                .filter(|s| *s >= 0.0 && s.is_finite())
            else {
                return error_response(
                    sb,
                    &ApiError::bad_request("clock request needs advanceSeconds (a number >= 0)"),
                );
            };
            sb.store.clock.advance(Duration::from_secs_f64(secs));
            sb.store.changed.notify_one();
            clock_state(sb)
        }
        (&Method::GET, ["faults"]) => json_response(sb, 200, &json!({"faults": sb.faults.list()})),
        (&Method::POST, ["faults"]) => {
            let spec: FaultSpec = match serde_json::from_slice(body) {
                Ok(s) => s,
                Err(e) => return error_response(sb, &ApiError::bad_request(format!("fault: {e}"))),
            };
            match sb.faults.add(spec, sb.store.clock.now()) {
                Ok(f) => {
                    sb.store.changed.notify_one();
                    json_response(sb, 201, &json!(f))
                }
                Err(e) => error_response(sb, &ApiError::bad_request(e.to_string())),
            }
        }
        (&Method::DELETE, ["faults"]) => {
            let n = sb.faults.clear();
            sb.store.changed.notify_one();
            json_response(sb, 200, &json!({"cleared": n}))
        }
        (&Method::DELETE, ["faults", id]) => match sb.faults.remove(id) {
            Ok(f) => {
                sb.store.changed.notify_one();
                json_response(sb, 200, &json!(f))
            }
            Err(e) => error_response(sb, &ApiError::new(404, "NotFound", e.to_string())),
        },
        _ => error_response(
            sb,
            &ApiError::new(404, "NotFound", "no such sandbox endpoint"),
        ),
    }
}

fn clock_state(sb: &Sandbox) -> Response<Body> {
    json_response(
        sb,
        200,
        &json!({"now": format_time(sb.store.clock.now()), "manual": sb.store.clock.is_manual()}),
    )
}
