//! Just enough of Kubernetes' protobuf encoding to read what kubectl's typed client sends
//! as protobuf: SelfSubjectAccessReview and SelfSubjectRulesReview (`kubectl auth can-i`).
//! Everything else is answered with 415, and clients fall back to JSON.

use serde_json::{Map, Value, json};

/// Fields of one protobuf message: (field number, payload) for length-delimited fields.
fn fields(mut b: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (key, rest) = varint(b)?;
        b = rest;
        match key & 7 {
            0 => b = varint(b)?.1,
            2 => {
                let (len, rest) = varint(b)?;
                let len = usize::try_from(len).ok()?;
                if rest.len() < len {
                    return None;
                }
                out.push((key >> 3, &rest[..len]));
                b = &rest[len..];
            }
            1 => b = b.get(8..)?,
            5 => b = b.get(4..)?,
            _ => return None,
        }
    }
    Some(out)
}

fn varint(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, &b[i + 1..]));
        }
    }
    None
}

fn field<'a>(fs: &[(u64, &'a [u8])], n: u64) -> Option<&'a [u8]> {
    fs.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
}

fn strings(b: &[u8], names: &[&str]) -> Option<Map<String, Value>> {
    let fs = fields(b)?;
    let mut m = Map::new();
    for (i, name) in names.iter().enumerate() {
        if let Some(v) = field(&fs, i as u64 + 1) {
            m.insert((*name).into(), json!(String::from_utf8_lossy(v)));
        }
    }
    Some(m)
}

/// Decode a protobuf-encoded access review into its JSON form.
pub fn decode_review(body: &[u8]) -> Option<Value> {
    let unknown = fields(body.strip_prefix(b"k8s\0")?)?;
    let type_meta = strings(field(&unknown, 1)?, &["apiVersion", "kind"])?;
    let raw = fields(field(&unknown, 2)?)?;
    let spec = fields(field(&raw, 2).unwrap_or_default())?;
    let kind = type_meta
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let spec_json = match kind {
        "SelfSubjectAccessReview" => {
            let mut s = Map::new();
            if let Some(ra) = field(&spec, 1) {
                let names = [
                    "namespace",
                    "verb",
                    "group",
                    "version",
                    "resource",
                    "subresource",
                    "name",
                ];
                s.insert(
                    "resourceAttributes".into(),
                    Value::Object(strings(ra, &names)?),
                );
            }
            if let Some(nra) = field(&spec, 2) {
                s.insert(
                    "nonResourceAttributes".into(),
                    Value::Object(strings(nra, &["path", "verb"])?),
                );
            }
            Value::Object(s)
        }
        "SelfSubjectRulesReview" => {
            Value::Object(strings(field(&raw, 2).unwrap_or_default(), &["namespace"])?)
        }
        _ => return None,
    };
    Some(json!({
        "kind": kind,
        "apiVersion": type_meta.get("apiVersion").cloned().unwrap_or(json!("authorization.k8s.io/v1")),
        "spec": spec_json
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(field: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![(field << 3) | 2, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn reads_an_access_review_as_kubectl_encodes_it() {
        let attrs = [
            ld(1, b"production"),
            ld(2, b"patch"),
            ld(3, b"apps"),
            ld(5, b"deployments"),
        ]
        .concat();
        let spec = ld(1, &attrs);
        let raw = [ld(1, b""), ld(2, &spec)].concat();
        let tm = [
            ld(1, b"authorization.k8s.io/v1"),
            ld(2, b"SelfSubjectAccessReview"),
        ]
        .concat();
        let body = [b"k8s\0".to_vec(), ld(1, &tm), ld(2, &raw)].concat();
        let v = decode_review(&body).expect("decodes");
        assert_eq!(v["spec"]["resourceAttributes"]["verb"], "patch");
        assert_eq!(v["spec"]["resourceAttributes"]["resource"], "deployments");
        assert_eq!(v["spec"]["resourceAttributes"]["namespace"], "production");
    }

    #[test]
    fn garbage_is_refused_not_a_panic() {
        for body in [
            &b""[..],
            b"k8s\0",
            b"k8s\0\xff\xff\xff",
            b"k8s\0\x0a\x7f",
            b"{\"kind\":1}",
        ] {
            assert!(decode_review(body).is_none());
        }
    }
}
