//! JSON rendering and parameter parsing of the Prometheus HTTP API (`/api/v1/...`), as
//! Prometheus 2.x writes and reads them.
//!
//! Sample values are strings formatted like Prometheus's `jsonutil.MarshalValue` (Go's
//! shortest `'f'` form, `'e'` form below 1e-6 or from 1e21 on, `NaN`, `+Inf`, `-Inf`);
//! timestamps are JSON numbers in seconds with millisecond precision.

use serde_json::{Map, Value as Json, json};

use super::eval::{self, PromError, Value};
use super::tsdb::{Labels, Matcher};

/// `{"status":"success","data":{"resultType":...,"result":...}}` for a query result.
pub fn success(v: &Value) -> Json {
    let (kind, result) = match v {
        Value::Scalar(t, x) => ("scalar", point(*t, *x)),
        Value::String(t, s) => ("string", json!([timestamp(*t), s])),
        Value::Vector(samples) => (
            "vector",
            samples
                .iter()
                .map(|s| json!({"metric": metric(&s.labels), "value": point(s.t_ms, s.v)}))
                .collect(),
        ),
        Value::Matrix(series) => (
            "matrix",
            series
                .iter()
                .map(|s| {
                    let values: Vec<Json> = s.points.iter().map(|&(t, v)| point(t, v)).collect();
                    json!({"metric": metric(&s.labels), "values": values})
                })
                .collect(),
        ),
    };
    json!({"status": "success", "data": {"resultType": kind, "result": result}})
}

/// `{"status":"error","errorType":...,"error":...}`.
pub fn error(e: &PromError) -> Json {
    json!({"status": "error", "errorType": e.error_type, "error": e.message})
}

/// `/api/v1/series`: a list of label maps.
pub fn series(list: &[Labels]) -> Json {
    let data: Vec<Json> = list.iter().map(metric).collect();
    json!({"status": "success", "data": data})
}

/// `/api/v1/labels`: label names, sorted.
pub fn labels(names: &[String]) -> Json {
    sorted_strings(names)
}

/// `/api/v1/label/<name>/values`: label values, sorted.
pub fn label_values(values: &[String]) -> Json {
    sorted_strings(values)
}

/// `/api/v1/status/buildinfo`.
pub fn buildinfo() -> Json {
    json!({"status": "success", "data": {
        "version": "2.42.0-kockpit-sandbox",
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "go1.19.8",
    }})
}

fn sorted_strings(items: &[String]) -> Json {
    let mut items = items.to_vec();
    items.sort();
    items.dedup();
    json!({"status": "success", "data": items})
}

fn metric(labels: &Labels) -> Json {
    let map: Map<String, Json> = labels
        .iter()
        .map(|(k, v)| (k.to_owned(), Json::from(v)))
        .collect();
    Json::Object(map)
}

fn point(t_ms: i64, v: f64) -> Json {
    json!([timestamp(t_ms), format_value(v)])
}

/// Seconds as a JSON number: an integer when whole, else with the milliseconds.
fn timestamp(t_ms: i64) -> Json {
    if t_ms % 1000 == 0 {
        Json::from(t_ms / 1000)
    } else {
        Json::from(t_ms as f64 / 1000.0)
    }
}

/// A sample value as Prometheus writes it.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go's 'e' form: shortest mantissa, exponent with a sign and at least two digits.
        let s = format!("{v:e}");
        if let Some((mantissa, exp)) = s.split_once('e') {
            let exp: i32 = exp.parse().unwrap_or(0);
            let sign = if exp < 0 { '-' } else { '+' };
            return format!("{mantissa}e{sign}{:02}", exp.unsigned_abs());
        }
    }
    format!("{v}")
}

/// A time parameter (`time`, `start`, `end`): Unix seconds as a float, or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, PromError> {
    let invalid = || PromError::bad_data(format!("cannot parse {s:?} to a valid timestamp"));
    if let Ok(t) = s.parse::<f64>() {
        if !t.is_finite() || t.abs() >= 9.0e15 {
            return Err(invalid());
        }
        // Like Prometheus: whole seconds plus the fraction rounded to milliseconds.
        let secs = t.trunc();
        return Ok(secs as i64 * 1000 + ((t - secs) * 1000.0).round() as i64);
    }
    let ts: jiff::Timestamp = s.parse().map_err(|_| invalid())?;
    i64::try_from(ts.as_nanosecond().div_euclid(1_000_000)).map_err(|_| invalid())
}

/// A duration parameter (`step`) in milliseconds: float seconds or a Prometheus
/// duration such as `15s`, `1m`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<i64, PromError> {
    let invalid = || PromError::bad_data(format!("cannot parse {s:?} to a valid duration"));
    if let Ok(d) = s.parse::<f64>() {
        if d.is_nan() {
            return Err(invalid());
        }
        let ns = d * 1e9;
        if ns >= i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(PromError::bad_data(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            )));
        }
        return Ok(ns as i64 / 1_000_000);
    }
    prom_duration_ms(s).ok_or_else(invalid)
}

/// Prometheus's duration syntax: units `y w d h m s ms`, each at most once, in that order.
fn prom_duration_ms(s: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    if s == "0" {
        return Some(0);
    }
    let (mut rest, mut total, mut next_unit) = (s, 0i64, 0);
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let (num, tail) = rest.split_at(digits);
        let n: i64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let idx = UNITS[next_unit..].iter().position(|&(u, _)| u == unit)? + next_unit;
        total = total.checked_add(n.checked_mul(UNITS[idx].1)?)?;
        next_unit = idx + 1;
        rest = tail;
    }
    (!s.is_empty()).then_some(total)
}

/// A series selector as given in `match[]` (e.g. `up{job="x"}`), as store matchers.
pub fn parse_selector(s: &str) -> Result<Vec<Matcher>, PromError> {
    match eval::parse(s)? {
        promql_parser::parser::Expr::VectorSelector(vs) if vs.offset.is_none() => {
            Ok(eval::selector_matchers(&vs))
        }
        _ => Err(PromError::bad_data(format!(
            "invalid parameter \"match[]\": {s:?} is not a series selector"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::eval::{Sample, SeriesOut};
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied())
    }

    #[test]
    fn values_are_formatted_like_prometheus() {
        let cases = [
            (0.1, "0.1"),
            (12.0, "12"),
            (-3.5, "-3.5"),
            (0.0, "0"),
            (1e20, "100000000000000000000"),
            (123456.789, "123456.789"),
            (0.000001, "0.000001"),
            (1e-7, "1e-07"),
            (1.5e-10, "1.5e-10"),
            (1e21, "1e+21"),
            (-2.5e300, "-2.5e+300"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (v, want) in cases {
            assert_eq!(format_value(v), want, "{v}");
        }
    }

    #[test]
    fn vector_and_matrix_envelopes() {
        let labels = l(&[("job", "api"), ("__name__", "up")]);
        let v = Value::Vector(vec![Sample {
            labels: labels.clone(),
            t_ms: 1_700_000_000_123,
            v: 1.0,
        }]);
        assert_eq!(
            success(&v).to_string(),
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"api"},"value":[1700000000.123,"1"]}]}}"#
        );
        let m = Value::Matrix(vec![SeriesOut {
            labels: Labels::default(),
            points: vec![(1_700_000_000_000, f64::NAN), (1_700_000_015_500, 0.25)],
        }]);
        assert_eq!(
            success(&m).to_string(),
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"NaN"],[1700000015.5,"0.25"]]}]}}"#
        );
        assert_eq!(
            success(&Value::Vector(vec![])).to_string(),
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#
        );
    }

    #[test]
    fn scalar_and_string_envelopes() {
        assert_eq!(
            success(&Value::Scalar(-1500, f64::NEG_INFINITY)).to_string(),
            r#"{"status":"success","data":{"resultType":"scalar","result":[-1.5,"-Inf"]}}"#
        );
        assert_eq!(
            success(&Value::String(2000, "a\"b".into())).to_string(),
            r#"{"status":"success","data":{"resultType":"string","result":[2,"a\"b"]}}"#
        );
    }

    #[test]
    fn error_envelope() {
        let e = PromError::bad_data("parse error: unexpected end of input");
        assert_eq!(
            error(&e).to_string(),
            r#"{"status":"error","errorType":"bad_data","error":"parse error: unexpected end of input"}"#
        );
    }

    #[test]
    fn metadata_endpoints() {
        let s = series(&[
            l(&[("__name__", "up"), ("job", "a")]),
            l(&[("__name__", "up")]),
        ]);
        assert_eq!(
            s.to_string(),
            r#"{"status":"success","data":[{"__name__":"up","job":"a"},{"__name__":"up"}]}"#
        );
        let names = ["job".to_owned(), "__name__".to_owned(), "job".to_owned()];
        assert_eq!(
            labels(&names).to_string(),
            r#"{"status":"success","data":["__name__","job"]}"#
        );
        assert_eq!(
            label_values(&["web".into(), "api".into()]).to_string(),
            r#"{"status":"success","data":["api","web"]}"#
        );
        assert_eq!(
            buildinfo().to_string(),
            r#"{"status":"success","data":{"version":"2.42.0-kockpit-sandbox","revision":"","branch":"","buildUser":"","buildDate":"","goVersion":"go1.19.8"}}"#
        );
    }

    #[test]
    fn times_parse_as_unix_seconds_or_rfc3339() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("1700000000.123"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("1700000000.1236"), Ok(1_700_000_000_124));
        assert_eq!(parse_time("-1.5"), Ok(-1500));
        assert_eq!(
            parse_time("2023-11-14T22:13:20.123Z"),
            Ok(1_700_000_000_123)
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20+01:00"),
            Ok(1_700_000_000_000)
        );
        for bad in ["", "now", "NaN", "Inf", "1e300", "2023-11-14"] {
            let e = parse_time(bad).unwrap_err();
            assert_eq!(e.error_type, "bad_data");
            assert_eq!(
                e.message,
                format!("cannot parse {bad:?} to a valid timestamp")
            );
        }
    }

    #[test]
    fn durations_parse_as_seconds_or_prometheus_units() {
        for (s, ms) in [
            ("15", 15_000),
            ("1.5", 1500),
            ("0.0005", 0),
            ("15s", 15_000),
            ("1m", 60_000),
            ("1h30m", 5_400_000),
            ("2d", 172_800_000),
            ("1w", 604_800_000),
            ("1y", 31_536_000_000),
            ("100ms", 100),
            ("1m30s500ms", 90_500),
            ("0", 0),
        ] {
            assert_eq!(parse_duration(s), Ok(ms), "{s}");
        }
        for bad in ["", "s", "1x", "1m1h", "1s1s", "-1m", "1.5m", "NaN"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(
            parse_duration("1e10")
                .unwrap_err()
                .message
                .contains("overflows int64")
        );
    }

    #[test]
    fn match_selectors_become_store_matchers() {
        let m = parse_selector(r#"up{job=~"api|web", zone!=""}"#).unwrap();
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["__name__", "job", "zone"]);
        assert!(m[1].matches("web") && !m[1].matches("webs"));
        assert!(parse_selector(r#"{job="api"}"#).is_ok());
        for bad in ["rate(up[5m])", "up offset 5m", "up{", "{}", "1"] {
            assert_eq!(
                parse_selector(bad).unwrap_err().error_type,
                "bad_data",
                "{bad}"
            );
        }
    }
}
