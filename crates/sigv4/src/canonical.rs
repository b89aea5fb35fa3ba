//! The canonical request: the exact bytes a client hashed before signing.

use std::fmt::Write as _;

use crate::{Location, PathStyle, Presented, Request};

/// Percent-encodes `bytes` as SigV4 wants: everything but `A-Za-z0-9-_.~` (and `/` when
/// `keep_slash`) becomes `%XX` with upper-case hex.
pub fn uri_encode(bytes: &[u8], keep_slash: bool, out: &mut String) {
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Builds the canonical request for `presented` (which names the signed headers and, for a
/// presigned request, the query parameter to leave out).
pub fn canonical_request(
    req: &Request<'_>,
    presented: &Presented,
    style: PathStyle,
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = String::with_capacity(512);
    out.push_str(req.method.as_str());
    out.push('\n');
    canonical_uri(req.path, style, &mut out);
    out.push('\n');
    canonical_query(
        req.query,
        matches!(presented.location, Location::Query { .. }),
        &mut out,
    );
    out.push('\n');
    let mut bytes = out.into_bytes();
    canonical_headers(req, &presented.signed_headers, &mut bytes);
    bytes.push(b'\n');
    for (i, name) in presented.signed_headers.iter().enumerate() {
        if i > 0 {
            bytes.push(b';');
        }
        bytes.extend_from_slice(name.as_bytes());
    }
    bytes.push(b'\n');
    bytes.extend_from_slice(payload_hash.as_bytes());
    bytes
}

fn canonical_uri(path: &str, style: PathStyle, out: &mut String) {
    match style {
        PathStyle::S3 => {
            if path.is_empty() {
                out.push('/');
                return;
            }
            let decoded: Vec<u8> = percent_encoding::percent_decode_str(path).collect();
            uri_encode(&decoded, true, out);
        }
        PathStyle::Normalized => {
            let mut segments: Vec<&str> = Vec::new();
            for seg in path.split('/') {
                match seg {
                    "" | "." => {}
                    ".." => {
                        segments.pop();
                    }
                    s => segments.push(s),
                }
            }
            out.push('/');
            for (i, seg) in segments.iter().enumerate() {
                if i > 0 {
                    out.push('/');
                }
                uri_encode(seg.as_bytes(), false, out);
            }
            let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
            if !segments.is_empty() && trailing {
                out.push('/');
            }
        }
    }
}

fn canonical_query(query: &str, presigned: bool, out: &mut String) {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = decode_component(k);
            if presigned && k == b"X-Amz-Signature" {
                return None;
            }
            let v = decode_component(v);
            let mut ek = String::with_capacity(k.len());
            uri_encode(&k, false, &mut ek);
            let mut ev = String::with_capacity(v.len());
            uri_encode(&v, false, &mut ev);
            Some((ek, ev))
        })
        .collect();
    pairs.sort_unstable();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
}

/// One query-string name or value, decoded as every AWS query parser reads it: `+` is a
/// space, `%XX` a byte. The canonical request and the request's meaning use this one reading,
/// so a parameter cannot be signed as one thing and acted on as another.
pub(crate) fn decode_component(s: &str) -> Vec<u8> {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).collect()
}

fn canonical_headers(req: &Request<'_>, signed: &[String], out: &mut Vec<u8>) {
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, value) in req.headers.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_trimmed(value.as_bytes(), out);
        }
        out.push(b'\n');
    }
}

/// Trims a header value and folds each run of whitespace inside it into one space.
fn push_trimmed(value: &[u8], out: &mut Vec<u8>) {
    let mut pending_space = false;
    let mut started = false;
    for &b in value {
        if b == b' ' || b == b'\t' || b == b'\n' || b == b'\r' {
            pending_space = started;
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.push(b);
            started = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(path: &str, style: PathStyle) -> String {
        let mut s = String::new();
        canonical_uri(path, style, &mut s);
        s
    }

    #[test]
    fn normalized_paths_drop_dot_and_empty_segments() {
        assert_eq!(uri("/", PathStyle::Normalized), "/");
        assert_eq!(uri("", PathStyle::Normalized), "/");
        assert_eq!(uri("//", PathStyle::Normalized), "/");
        assert_eq!(uri("//example//", PathStyle::Normalized), "/example/");
        assert_eq!(uri("/./", PathStyle::Normalized), "/");
        assert_eq!(uri("/./example", PathStyle::Normalized), "/example");
        assert_eq!(uri("/example/..", PathStyle::Normalized), "/");
        assert_eq!(uri("/example1/example2/../..", PathStyle::Normalized), "/");
    }

    #[test]
    fn normalized_paths_are_encoded_again() {
        // A client sends `/a%3Ab` on the wire and signs `/a%253Ab`.
        assert_eq!(uri("/a%3Ab", PathStyle::Normalized), "/a%253Ab");
    }

    #[test]
    fn s3_paths_are_encoded_exactly_once() {
        assert_eq!(
            uri("/bucket/a%20b/c+d", PathStyle::S3),
            "/bucket/a%20b/c%2Bd"
        );
        assert_eq!(uri("/bucket//x/../y", PathStyle::S3), "/bucket//x/../y");
        assert_eq!(uri("", PathStyle::S3), "/");
    }

    #[test]
    fn plus_in_a_query_is_a_space() {
        // S3 reads `a+b` as `a b`; the signature must cover that reading, not `a%2Bb`.
        let mut s = String::new();
        canonical_query("prefix=a+b&x=%2B", false, &mut s);
        assert_eq!(s, "prefix=a%20b&x=%2B");
    }

    #[test]
    fn query_is_sorted_and_reencoded() {
        let mut s = String::new();
        canonical_query("b=2&a=%7e&a=1&c", false, &mut s);
        assert_eq!(s, "a=1&a=~&b=2&c=");
    }

    #[test]
    fn header_values_are_trimmed_and_folded() {
        let mut out = Vec::new();
        push_trimmed(b"  a   b \t c  ", &mut out);
        assert_eq!(out, b"a b c");
    }
}
