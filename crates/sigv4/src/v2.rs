//! S3's Signature Version 2 (the AWS CLI's and boto3's default for presigned S3 URLs): an
//! `Authorization: AWS <key id>:<signature>` header, or `AWSAccessKeyId`, `Signature` and
//! `Expires` query parameters. The signature is base64 HMAC-SHA1 of
//!
//! ```text
//! Method \n Content-MD5 \n Content-Type \n Date-or-Expires \n CanonicalizedAmzHeaders CanonicalizedResource
//! ```
//!
//! as the S3 REST authentication reference defines it. S3 only.

use base64::Engine as _;
use time::OffsetDateTime;

use crate::{
    Error, Location, MAX_SKEW_SECS, Presented, Request, Scope, decode, form_pairs, format_amz_date,
    header_str, parse_amz_date, parse_http_date,
};

/// The query parameters that name a sub-resource (or override a response header) and so
/// belong to the canonicalized resource.
const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// A SigV2 signature: the HMAC-SHA1 the client sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Legacy {
    pub signature: Vec<u8>,
}

/// `Authorization: AWS <key id>:<signature>`.
pub(crate) fn parse_header(req: &Request<'_>, value: &str) -> Result<Presented, Error> {
    let malformed = || {
        Error::Incomplete(
            "Authorization header is invalid -- one and only one ' ' (space) required".into(),
        )
    };
    let rest = value.strip_prefix("AWS ").ok_or_else(malformed)?;
    let (akid, signature) = rest.split_once(':').ok_or_else(malformed)?;
    if akid.is_empty() || signature.is_empty() || rest.contains(' ') {
        return Err(malformed());
    }
    let date = header_str(req.headers, "x-amz-date").or_else(|| header_str(req.headers, "date"));
    let date = date.ok_or_else(|| {
        Error::Incomplete("AWS authentication requires a valid Date or x-amz-date header".into())
    })?;
    let timestamp = parse_http_date(date)
        .or_else(|| parse_amz_date(date))
        .ok_or_else(|| {
            Error::Incomplete(
                "AWS authentication requires a valid Date or x-amz-date header".into(),
            )
        })?;
    presented(
        req,
        akid,
        signature,
        timestamp,
        header_str(req.headers, "x-amz-security-token").map(str::to_owned),
        Location::Header,
    )
}

/// `AWSAccessKeyId=…&Signature=…&Expires=…` (a presigned URL).
pub(crate) fn parse_query<'q>(
    req: &Request<'_>,
    get: &dyn Fn(&str) -> Option<&'q str>,
) -> Result<Presented, Error> {
    let (Some(akid), Some(signature), Some(expires)) =
        (get("AWSAccessKeyId"), get("Signature"), get("Expires"))
    else {
        return Err(Error::Incomplete(
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters".into(),
        ));
    };
    let expires = expires
        .parse::<i64>()
        .ok()
        .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
        .ok_or_else(|| Error::Incomplete("Invalid date (should be seconds since epoch)".into()))?;
    presented(
        req,
        akid,
        signature,
        expires,
        get("x-amz-security-token")
            .map(str::to_owned)
            .or_else(|| header_str(req.headers, "x-amz-security-token").map(str::to_owned)),
        // The lifetime is the URL's own `Expires` (the timestamp): none beyond it.
        Location::Query { expires_secs: 0 },
    )
}

/// The signature fields of a SigV2 POST form (`awsaccesskeyid`, `signature`,
/// `x-amz-security-token`), looked up by `get` with lower-case names. The signature is of the
/// form's base64 policy ([`verify_policy`]), whose expiration bounds it.
pub fn parse_form(
    req: &Request<'_>,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Presented, Error> {
    let (Some(akid), Some(signature)) = (get("awsaccesskeyid"), get("signature")) else {
        return Err(Error::Incomplete(
            "Bucket POST must contain the fields AWSAccessKeyId and Signature".into(),
        ));
    };
    presented(
        req,
        &akid,
        &signature,
        OffsetDateTime::UNIX_EPOCH,
        get("x-amz-security-token"),
        Location::Form,
    )
}

/// Verifies a SigV2 POST form's signature of its base64 `policy`, in constant time.
pub fn verify_policy(
    policy: &str,
    presented: &Presented,
    secret_access_key: &str,
) -> Result<(), Error> {
    let legacy = presented.legacy.as_ref().ok_or(Error::SignatureMismatch)?;
    if presented.location != Location::Form {
        return Err(Error::SignatureMismatch);
    }
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        secret_access_key.as_bytes(),
    );
    ring::hmac::verify(&key, policy.as_bytes(), &legacy.signature)
        .map_err(|_| Error::SignatureMismatch)
}

fn presented(
    req: &Request<'_>,
    akid: &str,
    signature: &str,
    timestamp: OffsetDateTime,
    security_token: Option<String>,
    location: Location,
) -> Result<Presented, Error> {
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| Error::SignatureMismatch)?;
    let amz_date = format_amz_date(timestamp);
    // Every `x-amz-*` header enters the string to sign: none is unsigned.
    let mut signed_headers: Vec<String> = req
        .headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("x-amz-"))
        .collect();
    signed_headers.sort_unstable();
    signed_headers.dedup();
    Ok(Presented {
        access_key_id: akid.to_owned(),
        scope: Scope {
            date: amz_date.get(..8).unwrap_or("").to_owned(),
            region: String::new(),
            service: "s3".to_owned(),
        },
        signed_headers,
        signature: [0; 32],
        amz_date,
        timestamp,
        security_token,
        location,
        content_sha256: header_str(req.headers, "x-amz-content-sha256").map(str::to_owned),
        legacy: Some(Legacy { signature }),
    })
}

/// The string a SigV2 signature signs, as S3 rebuilds it from the request.
pub fn string_to_sign(req: &Request<'_>, presented: &Presented) -> String {
    let query = form_pairs(req.query);
    let presigned = matches!(presented.location, Location::Query { .. });
    let header = |name: &str| {
        let joined: Vec<&str> = req
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .collect();
        (!joined.is_empty()).then(|| joined.join(","))
    };
    let mut out = String::new();
    out.push_str(req.method.as_str());
    out.push('\n');
    for name in ["content-md5", "content-type"] {
        out.push_str(&header(name).unwrap_or_default());
        out.push('\n');
    }
    if presigned {
        out.push_str(&presented.timestamp.unix_timestamp().to_string());
    } else if header("x-amz-date").is_none() {
        out.push_str(&header("date").unwrap_or_default());
    }
    out.push('\n');
    let mut amz: Vec<(String, String)> = presented
        .signed_headers
        .iter()
        .filter_map(|name| Some((name.clone(), header(name)?)))
        .collect();
    if presigned {
        // A presigned URL carries its `x-amz-*` values (the session token) as parameters.
        for (k, v) in &query {
            let k = k.to_ascii_lowercase();
            if k.starts_with("x-amz-") && !amz.iter().any(|(n, _)| *n == k) {
                amz.push((k, v.trim().to_owned()));
            }
        }
    }
    amz.sort();
    for (name, value) in amz {
        out.push_str(&name);
        out.push(':');
        out.push_str(&value);
        out.push('\n');
    }
    out.push_str(req.path);
    let mut subresources: Vec<(String, Option<String>)> = req
        .query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = match pair.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (pair, None),
            };
            SUBRESOURCES
                .contains(&k)
                .then(|| (k.to_owned(), v.map(decode)))
        })
        .collect();
    subresources.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (k, v)) in subresources.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        if let Some(v) = v {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

/// Verifies a SigV2 signature under `secret_access_key`: a header signature's date within
/// [`MAX_SKEW_SECS`] of `now`, a presigned URL not past its `Expires`, then the signature in
/// constant time.
pub fn verify(
    req: &Request<'_>,
    presented: &Presented,
    secret_access_key: &str,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let legacy = presented.legacy.as_ref().ok_or(Error::SignatureMismatch)?;
    let t = presented.timestamp;
    match presented.location {
        Location::Query { .. } => {
            if now > t {
                return Err(Error::PresignExpired);
            }
        }
        // A form's signature is of its policy ([`verify_policy`]), never of the request.
        Location::Form => return Err(Error::SignatureMismatch),
        Location::Header => {
            let skew = time::Duration::seconds(MAX_SKEW_SECS);
            if t < now - skew || t > now + skew {
                return Err(Error::Skewed(
                    "The difference between the request time and the current time is too large."
                        .into(),
                ));
            }
        }
    }
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        secret_access_key.as_bytes(),
    );
    let signs = |req: &Request<'_>| {
        ring::hmac::verify(
            &key,
            string_to_sign(req, presented).as_bytes(),
            &legacy.signature,
        )
        .is_ok()
    };
    // A request to a bucket itself (`/bucket`) is signed as `/bucket/` by botocore and as
    // `/bucket` by the reference: both name the same resource.
    let bare_bucket = req
        .path
        .get(1..)
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
    let with_slash = format!("{}/", req.path);
    if signs(req)
        || (bare_bucket
            && signs(&Request {
                path: &with_slash,
                ..*req
            }))
    {
        Ok(())
    } else {
        Err(Error::SignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sign(secret: &str, sts: &str) -> String {
        let key =
            ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, sts.as_bytes()))
    }

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    /// The S3 REST authentication reference's first example (GET object, virtual-hosted
    /// `awsexamplebucket1`, resource `/awsexamplebucket1/photos/puppy.jpg`).
    #[test]
    fn the_reference_example_signs_as_documented() {
        let method = http::Method::GET;
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "host",
            "awsexamplebucket1.s3.us-west-1.amazonaws.com"
                .parse()
                .unwrap(),
        );
        headers.insert("date", "Tue, 27 Mar 2007 19:36:42 +0000".parse().unwrap());
        let req = Request {
            method: &method,
            path: "/awsexamplebucket1/photos/puppy.jpg",
            query: "",
            headers: &headers,
        };
        let sts = "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg";
        let p = Presented {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            scope: Scope {
                date: String::new(),
                region: String::new(),
                service: "s3".into(),
            },
            signed_headers: vec![],
            signature: [0; 32],
            amz_date: String::new(),
            timestamp: OffsetDateTime::UNIX_EPOCH,
            security_token: None,
            location: Location::Header,
            content_sha256: None,
            legacy: None,
        };
        assert_eq!(string_to_sign(&req, &p), sts);
        assert_eq!(sign(SECRET, sts), "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");
    }

    fn presigned(query: &str, headers: &http::HeaderMap) -> (Presented, String) {
        let method = http::Method::GET;
        let req = Request {
            method: &method,
            path: "/bucket/my%20key",
            query,
            headers,
        };
        let p = crate::parse(&req).unwrap().unwrap();
        (p.clone(), string_to_sign(&req, &p))
    }

    #[test]
    fn presigned_urls_sign_expires_token_and_subresources() {
        let headers = http::HeaderMap::new();
        let (p, sts) = presigned(
            "versionId=a%2Fb&AWSAccessKeyId=AKID&Signature=eHk%3D&Expires=1700000000&x-amz-security-token=tok&prefix=p",
            &headers,
        );
        assert_eq!(p.access_key_id, "AKID");
        assert_eq!(p.scope.service, "s3");
        assert_eq!(p.timestamp.unix_timestamp(), 1_700_000_000);
        assert_eq!(p.security_token.as_deref(), Some("tok"));
        assert_eq!(
            sts,
            "GET\n\n\n1700000000\nx-amz-security-token:tok\n/bucket/my%20key?versionId=a/b"
        );
    }

    #[test]
    fn expiry_and_signature_are_both_checked() {
        let method = http::Method::GET;
        let headers = http::HeaderMap::new();
        let unsigned = "AWSAccessKeyId=AKID&Expires=1700000000";
        let good = sign(SECRET, "GET\n\n\n1700000000\n/bucket/key");
        let encoded: String = form_urlencoded_byte(&good);
        let query = format!("{unsigned}&Signature={encoded}");
        let req = Request {
            method: &method,
            path: "/bucket/key",
            query: &query,
            headers: &headers,
        };
        let p = crate::parse(&req).unwrap().unwrap();
        let before = OffsetDateTime::from_unix_timestamp(1_699_999_000).unwrap();
        let after = OffsetDateTime::from_unix_timestamp(1_700_000_001).unwrap();
        assert_eq!(verify(&req, &p, SECRET, before), Ok(()));
        assert_eq!(verify(&req, &p, SECRET, after), Err(Error::PresignExpired));
        assert_eq!(
            verify(&req, &p, "another secret", before),
            Err(Error::SignatureMismatch)
        );
        // The same signature on another object is refused.
        let other = Request {
            path: "/bucket/other",
            ..req
        };
        assert_eq!(
            verify(&other, &p, SECRET, before),
            Err(Error::SignatureMismatch)
        );
    }

    fn form_urlencoded_byte(s: &str) -> String {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    }
}
