//! The PromQL the cockpit's panels run, with label values escaped for double-quoted strings.

/// The three range queries behind one app's panels, for a rate window in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppQueries {
    /// 5xx request rate by version.
    pub errors: String,
    /// Request rate by version (every code).
    pub total: String,
    /// p99 latency by version, from the classic histogram.
    pub p99: String,
}

impl AppQueries {
    pub fn new(namespace: &str, app: &str, window_seconds: i64) -> Self {
        let sel = format!(
            r#"namespace="{}",app="{}""#,
            escape_label_value(namespace),
            escape_label_value(app)
        );
        let w = format!("{window_seconds}s");
        AppQueries {
            errors: format!(
                r#"sum by (version) (rate(http_requests_total{{{sel},code=~"5.."}}[{w}]))"#
            ),
            total: format!(r#"sum by (version) (rate(http_requests_total{{{sel}}}[{w}]))"#),
            p99: format!(
                "histogram_quantile(0.99, sum by (le, version) \
                 (rate(http_request_duration_seconds_bucket{{{sel}}}[{w}])))"
            ),
        }
    }
}

/// Escape a label value for a double-quoted PromQL string: backslash, double quote and the
/// control characters a Go string literal may not hold raw.
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    for c in v.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str(r#"\""#),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c if c.is_control() => out.push_str(&format!(r"\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql_parser::parser::{self, Expr};

    /// The value of the `namespace` matcher of the first selector in `q`.
    fn namespace_matcher(q: &str) -> String {
        fn find(e: &Expr) -> Option<String> {
            match e {
                Expr::VectorSelector(v) => v
                    .matchers
                    .matchers
                    .iter()
                    .find(|m| m.name == "namespace")
                    .map(|m| m.value.clone()),
                Expr::MatrixSelector(m) => find(&Expr::VectorSelector(m.vs.clone())),
                Expr::Aggregate(a) => find(&a.expr),
                Expr::Call(c) => c.args.args.iter().find_map(|a| find(a)),
                Expr::Paren(p) => find(&p.expr),
                _ => None,
            }
        }
        let e = parser::parse(q).unwrap_or_else(|err| panic!("{q}: {err}"));
        find(&e).expect("a namespace matcher")
    }

    #[test]
    fn queries_have_the_documented_shape() {
        let q = AppQueries::new("production", "checkout", 60);
        assert_eq!(
            q.errors,
            r#"sum by (version) (rate(http_requests_total{namespace="production",app="checkout",code=~"5.."}[60s]))"#
        );
        assert_eq!(
            q.total,
            r#"sum by (version) (rate(http_requests_total{namespace="production",app="checkout"}[60s]))"#
        );
        assert_eq!(
            q.p99,
            r#"histogram_quantile(0.99, sum by (le, version) (rate(http_request_duration_seconds_bucket{namespace="production",app="checkout"}[60s])))"#
        );
    }

    #[test]
    fn hostile_values_round_trip_through_the_parser() {
        for hostile in [
            r#"prod"}) or vector(1) #"#,
            r"back\slash\",
            "line\nbreak\ttab\u{7}",
            r#"\"both\\"#,
            "ünïcødé",
        ] {
            let q = AppQueries::new(hostile, "app", 60);
            for text in [&q.errors, &q.total, &q.p99] {
                assert_eq!(namespace_matcher(text), hostile, "{text}");
            }
        }
    }
}
