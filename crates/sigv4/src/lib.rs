//! AWS Signature Version 4 verification.
//!
//! [`parse`] reads what a client presented (an `Authorization` header or a presigned query
//! string); the caller resolves the secret for [`Presented::access_key_id`] however it likes
//! and derives a [`SigningKey`]; [`verify`] rebuilds the canonical request exactly as the
//! client built it and compares signatures in constant time.
//!
//! This crate is pure: no I/O, no clock (callers pass `now`), no secret storage.

mod canonical;
mod chunked;
pub mod v2;

pub use canonical::{canonical_request, uri_encode};
pub use chunked::{ChunkError, ChunkVerifier, ChunkedDecoder, EMPTY_SHA256};

use std::fmt;

use time::OffsetDateTime;
use time::macros::format_description;

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// `x-amz-content-sha256` value for payloads that are not signed (S3 only).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// `x-amz-content-sha256` value for aws-chunked uploads with per-chunk signatures.
pub const STREAMING_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// How far a request's timestamp may be from the server's clock.
pub const MAX_SKEW_SECS: i64 = 15 * 60;
/// Longest lifetime of a presigned request (seven days).
pub const MAX_PRESIGN_EXPIRES_SECS: i64 = 604_800;

/// How the path enters the canonical request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStyle {
    /// Every service but S3: dot segments and empty segments are removed and the path as it
    /// arrived (already percent-encoded once) is encoded again.
    Normalized,
    /// S3: the path is used as is, encoded exactly once.
    S3,
}

/// The credential scope: `date/region/service/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Where the signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Header,
    /// A presigned URL, valid for `expires_secs` after its timestamp.
    Query {
        expires_secs: i64,
    },
    /// An S3 POST form (browser upload): the signature is of the form's policy document,
    /// whose own expiration bounds it.
    Form,
}

/// The authentication information a request carries, before any check.
#[derive(Clone)]
pub struct Presented {
    pub access_key_id: String,
    pub scope: Scope,
    /// Lower-case header names, in the order the client listed them.
    pub signed_headers: Vec<String>,
    pub signature: [u8; 32],
    /// The request time, as the client sent it (`YYYYMMDDTHHMMSSZ`).
    pub amz_date: String,
    pub timestamp: OffsetDateTime,
    pub security_token: Option<String>,
    pub location: Location,
    /// The `x-amz-content-sha256` header, if present.
    pub content_sha256: Option<String>,
    /// A Signature Version 2 signature (S3 only; [`v2`]) in place of SigV4's. Its scope has no
    /// region, its `signed_headers` are every `x-amz-*` header (SigV2 signs them all), and a
    /// presigned URL's `timestamp` is its `Expires`.
    pub legacy: Option<v2::Legacy>,
}

impl fmt::Debug for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The session token is a bearer credential: never print it.
        f.debug_struct("Presented")
            .field("access_key_id", &self.access_key_id)
            .field("scope", &self.scope)
            .field("signed_headers", &self.signed_headers)
            .field("amz_date", &self.amz_date)
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// The parts of an HTTP request that a signature covers (the payload enters as its hash).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a http::Method,
    /// The path exactly as it arrived (still percent-encoded).
    pub path: &'a str,
    /// The raw query string, without `?` (empty if none).
    pub query: &'a str,
    pub headers: &'a http::HeaderMap,
}

/// Why a request's signature was not accepted. Callers map these to each protocol's AWS
/// error code (`IncompleteSignature`, `SignatureDoesNotMatch`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The authentication information is malformed or incomplete.
    #[error("{0}")]
    Incomplete(String),
    /// The credential scope's date is not the request's date.
    #[error("{0}")]
    ScopeDate(String),
    /// The request time is outside the allowed clock skew.
    #[error("{0}")]
    Skewed(String),
    /// A presigned request whose lifetime has passed.
    #[error("request has expired")]
    PresignExpired,
    /// The signature does not match the request.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch,
}

/// An HMAC key derived from a secret access key for one scope.
#[derive(Clone)]
pub struct SigningKey(ring::hmac::Key);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
    pub fn derive(secret_access_key: &str, scope: &Scope) -> Self {
        let mut seed = Vec::with_capacity(4 + secret_access_key.len());
        seed.extend_from_slice(b"AWS4");
        seed.extend_from_slice(secret_access_key.as_bytes());
        let mut k = hmac(&seed, scope.date.as_bytes());
        k = hmac(&k, scope.region.as_bytes());
        k = hmac(&k, scope.service.as_bytes());
        k = hmac(&k, b"aws4_request");
        SigningKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &k))
    }

    /// The signature of `string_to_sign` under this key.
    pub fn sign(&self, string_to_sign: &[u8]) -> [u8; 32] {
        let tag = ring::hmac::sign(&self.0, string_to_sign);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Constant-time check that `signature` is this key's signature of `string_to_sign`.
    pub fn verify(&self, string_to_sign: &[u8], signature: &[u8; 32]) -> bool {
        ring::hmac::verify(&self.0, string_to_sign, signature).is_ok()
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::hmac::sign(&key, data).as_ref());
    out
}

/// Lower-case hex SHA-256 of `data`, as the canonical request wants payload hashes.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

const AMZ_DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");
const HTTP_DATE: &[time::format_description::BorrowedFormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// Formats a time as SigV4's basic ISO 8601 (`20150830T123600Z`).
pub fn format_amz_date(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(AMZ_DATE)
        .unwrap_or_default()
}

fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    time::PrimitiveDateTime::parse(s, AMZ_DATE)
        .ok()
        .map(|t| t.assume_utc())
}

fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    time::PrimitiveDateTime::parse(s, HTTP_DATE)
        .ok()
        .map(|t| t.assume_utc())
}

fn header_str<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads the signature a request presents. `Ok(None)` means the request is anonymous: it has
/// neither an `Authorization` header nor presigned query parameters.
pub fn parse(req: &Request<'_>) -> Result<Option<Presented>, Error> {
    if let Some(value) = req.headers.get(http::header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| Error::Incomplete("Authorization header is not valid text".into()))?;
        if value.starts_with("AWS ") {
            return v2::parse_header(req, value).map(Some);
        }
        return parse_header(req, value).map(Some);
    }
    let params: Vec<(String, String)> = form_pairs(req.query);
    if params.iter().any(|(k, _)| k.starts_with("X-Amz-")) {
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if get("X-Amz-Algorithm").is_some() || get("X-Amz-Signature").is_some() {
            return parse_query(req, &get).map(Some);
        }
    }
    if params.iter().any(|(k, _)| k == "AWSAccessKeyId") {
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        return v2::parse_query(req, &get).map(Some);
    }
    Ok(None)
}

/// Query parameters, decoded as S3 and every AWS query parser read them (`+` is a space).
fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    String::from_utf8_lossy(&canonical::decode_component(s)).into_owned()
}

fn parse_header(req: &Request<'_>, value: &str) -> Result<Presented, Error> {
    let Some(rest) = value.strip_prefix(ALGORITHM) else {
        let alg = value.split_whitespace().next().unwrap_or("");
        return Err(Error::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{alg}'. The only supported algorithm is {ALGORITHM}"
        )));
    };
    if !rest.starts_with(' ') {
        return Err(Error::Incomplete(format!(
            "Unsupported AWS 'algorithm'. The only supported algorithm is {ALGORITHM}"
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some((k, v)) = part.split_once('=') {
            match k.trim() {
                "Credential" => credential = Some(v.trim()),
                "SignedHeaders" => signed_headers = Some(v.trim()),
                "Signature" => signature = Some(v.trim()),
                _ => {}
            }
        }
    }
    let amz_date = header_str(req.headers, "x-amz-date");
    let date = amz_date.or_else(|| header_str(req.headers, "date"));
    let mut missing = String::new();
    for (present, name) in [
        (credential.is_some(), "Credential"),
        (signature.is_some(), "Signature"),
        (signed_headers.is_some(), "SignedHeaders"),
    ] {
        if !present {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if date.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some(date)) =
        (credential, signed_headers, signature, date)
    else {
        return Err(Error::Incomplete(missing.trim_end().to_owned()));
    };
    let timestamp = if amz_date.is_some() {
        parse_amz_date(date)
    } else {
        parse_http_date(date)
    }
    .ok_or_else(|| {
        Error::Incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{date}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })?;
    let amz_date = format_amz_date(timestamp);
    build(
        req,
        credential,
        signed_headers,
        signature,
        amz_date,
        timestamp,
        header_str(req.headers, "x-amz-security-token").map(str::to_owned),
        Location::Header,
    )
}

fn parse_query<'q>(
    req: &Request<'_>,
    get: &dyn Fn(&str) -> Option<&'q str>,
) -> Result<Presented, Error> {
    let required = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Expires",
    ];
    if required.iter().any(|name| get(name).is_none()) {
        return Err(Error::Incomplete(
            "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders', and 'X-Amz-Expires'. Re-examine the query-string parameters.".into(),
        ));
    }
    let field = |name: &str| get(name).unwrap_or_default();
    if field("X-Amz-Algorithm") != ALGORITHM {
        return Err(Error::Incomplete(format!(
            "X-Amz-Algorithm only supports \"{ALGORITHM}\""
        )));
    }
    let expires_secs: i64 = field("X-Amz-Expires")
        .parse()
        .map_err(|_| Error::Incomplete("X-Amz-Expires should be a number".into()))?;
    if expires_secs < 0 {
        return Err(Error::Incomplete(
            "X-Amz-Expires must be non-negative".into(),
        ));
    }
    if expires_secs > MAX_PRESIGN_EXPIRES_SECS {
        return Err(Error::Incomplete(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800".into(),
        ));
    }
    let date = field("X-Amz-Date");
    let timestamp = parse_amz_date(date).ok_or_else(|| {
        Error::Incomplete(format!(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", got '{date}'"
        ))
    })?;
    build(
        req,
        field("X-Amz-Credential"),
        field("X-Amz-SignedHeaders"),
        field("X-Amz-Signature"),
        date.to_owned(),
        timestamp,
        get("X-Amz-Security-Token").map(str::to_owned),
        Location::Query { expires_secs },
    )
}

/// Reads the signature fields of an S3 POST form (`x-amz-algorithm`, `x-amz-credential`,
/// `x-amz-date`, `x-amz-signature`, `x-amz-security-token`), looked up by `get` with
/// lower-case names. The signature covers the form's base64 `policy`
/// ([`SigningKey::verify`] on it).
pub fn parse_form(
    req: &Request<'_>,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Presented, Error> {
    let (Some(algorithm), Some(credential), Some(date), Some(signature)) = (
        get("x-amz-algorithm"),
        get("x-amz-credential"),
        get("x-amz-date"),
        get("x-amz-signature"),
    ) else {
        return Err(Error::Incomplete(
            "Bucket POST must contain the fields x-amz-algorithm, x-amz-credential, x-amz-date and x-amz-signature".into(),
        ));
    };
    if algorithm != ALGORITHM {
        return Err(Error::Incomplete(format!(
            "X-Amz-Algorithm only supports \"{ALGORITHM}\""
        )));
    }
    let timestamp = parse_amz_date(&date).ok_or_else(|| {
        Error::Incomplete(format!(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", got '{date}'"
        ))
    })?;
    build(
        req,
        &credential,
        "",
        &signature,
        date.clone(),
        timestamp,
        get("x-amz-security-token"),
        Location::Form,
    )
}

#[allow(clippy::too_many_arguments)]
fn build(
    req: &Request<'_>,
    credential: &str,
    signed_headers: &str,
    signature: &str,
    amz_date: String,
    timestamp: OffsetDateTime,
    security_token: Option<String>,
    location: Location,
) -> Result<Presented, Error> {
    let malformed = || {
        Error::Incomplete(format!(
            "Credential should be of the form \"<access key id>/YYYYMMDD/<region>/<service>/aws4_request\", got '{}'",
            credential.split('/').skip(1).collect::<Vec<_>>().join("/")
        ))
    };
    let mut parts = credential.split('/');
    let (Some(akid), Some(date), Some(region), Some(service), Some("aws4_request"), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(malformed());
    };
    if akid.is_empty() || date.len() != 8 || region.is_empty() || service.is_empty() {
        return Err(malformed());
    }
    let request_date = amz_date.get(..8).unwrap_or("");
    if date != request_date {
        return Err(Error::ScopeDate(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{request_date}', from '{amz_date}'."
        )));
    }
    let signed_headers: Vec<String> = signed_headers
        .split(';')
        .filter(|h| !h.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if location != Location::Form && !signed_headers.iter().any(|h| h == "host") {
        return Err(Error::Incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    let mut sig = [0u8; 32];
    if signature.len() != 64 || hex::decode_to_slice(signature, &mut sig).is_err() {
        return Err(Error::SignatureMismatch);
    }
    Ok(Presented {
        access_key_id: akid.to_owned(),
        scope: Scope {
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
        },
        signed_headers,
        signature: sig,
        amz_date,
        timestamp,
        security_token,
        location,
        content_sha256: header_str(req.headers, "x-amz-content-sha256").map(str::to_owned),
        legacy: None,
    })
}

/// The `x-amz-*` headers present in the request that its signature does not cover, lower-case
/// and sorted. Such a header could have been added by anyone who saw the request (a presigned
/// URL, say), so AWS refuses requests that carry one. `x-amz-content-sha256` is the exception:
/// its value is checked against the payload (or, unsigned, can only say `UNSIGNED-PAYLOAD`).
pub fn unsigned_amz_headers(req: &Request<'_>, presented: &Presented) -> Vec<String> {
    let mut out: Vec<String> = req
        .headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|name| name.starts_with("x-amz-") && *name != "x-amz-content-sha256")
        .filter(|name| !presented.signed_headers.iter().any(|s| s == name))
        .map(str::to_owned)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Checks the request time against `now`: within [`MAX_SKEW_SECS`] for header signatures,
/// within the presigned lifetime for query signatures.
pub fn check_time(presented: &Presented, now: OffsetDateTime) -> Result<(), Error> {
    let t = presented.timestamp;
    let skew = time::Duration::seconds(MAX_SKEW_SECS);
    match presented.location {
        Location::Header => {
            if t < now - skew {
                return Err(Error::Skewed(format!(
                    "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                    presented.amz_date,
                    format_amz_date(now - skew),
                    format_amz_date(now)
                )));
            }
            if t > now + skew {
                return Err(Error::Skewed(format!(
                    "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                    presented.amz_date,
                    format_amz_date(now + skew),
                    format_amz_date(now)
                )));
            }
        }
        // The policy document's expiration decides, not the form's date.
        Location::Form => {}
        Location::Query { expires_secs } => {
            if t > now + skew {
                return Err(Error::Skewed(format!(
                    "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                    presented.amz_date,
                    format_amz_date(now + skew),
                    format_amz_date(now)
                )));
            }
            if now > t + time::Duration::seconds(expires_secs) {
                return Err(Error::PresignExpired);
            }
        }
    }
    Ok(())
}

/// The string to sign for a canonical request.
pub fn string_to_sign(presented: &Presented, canonical_request: &[u8]) -> Vec<u8> {
    let hash = sha256_hex(canonical_request);
    format!(
        "{ALGORITHM}\n{}\n{}\n{hash}",
        presented.amz_date, presented.scope
    )
    .into_bytes()
}

/// Verifies `presented` against the request: time window first, then the signature.
/// `payload_hash` is the hex SHA-256 of the body, or for S3 the `x-amz-content-sha256`
/// value the client signed (`UNSIGNED-PAYLOAD` for presigned S3 URLs).
pub fn verify(
    req: &Request<'_>,
    presented: &Presented,
    key: &SigningKey,
    style: PathStyle,
    payload_hash: &str,
    now: OffsetDateTime,
) -> Result<(), Error> {
    check_time(presented, now)?;
    let canonical = canonical_request(req, presented, style, payload_hash);
    let sts = string_to_sign(presented, &canonical);
    if key.verify(&sts, &presented.signature) {
        Ok(())
    } else {
        Err(Error::SignatureMismatch)
    }
}

/// Signs a request in the header form, as a client does (Cognate's own client, `cognate
/// apply`): `req.headers` holds every header to sign, `x-amz-date` included; the answer is the
/// `Authorization` value. The canonical request is the one [`verify`] checks.
pub fn authorization(
    req: &Request<'_>,
    access_key_id: &str,
    secret_access_key: &str,
    region: &str,
    service: &str,
    payload_hash: &str,
) -> Result<String, Error> {
    let date = req
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .and_then(|d| d.get(..8))
        .ok_or_else(|| Error::Incomplete("x-amz-date is needed to sign".into()))?;
    let mut names: Vec<String> = req.headers.keys().map(|k| k.as_str().to_owned()).collect();
    names.sort();
    names.dedup();
    let signed = names.join(";");
    let credential = format!("{access_key_id}/{date}/{region}/{service}/aws4_request");
    // The request as the server will see it, with a placeholder signature: parsing it gives
    // the scope and signed headers the canonical request is built from.
    let mut headers = req.headers.clone();
    let placeholder = format!(
        "{ALGORITHM} Credential={credential}, SignedHeaders={signed}, Signature={}",
        "0".repeat(64)
    );
    headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_str(&placeholder)
            .map_err(|_| Error::Incomplete("a header value cannot be signed".into()))?,
    );
    let with = Request {
        headers: &headers,
        ..*req
    };
    let presented = parse(&with)?.ok_or_else(|| Error::Incomplete("nothing to sign".into()))?;
    let canonical = canonical_request(&with, &presented, PathStyle::Normalized, payload_hash);
    let signature = SigningKey::derive(secret_access_key, &presented.scope)
        .sign(&string_to_sign(&presented, &canonical));
    Ok(format!(
        "{ALGORITHM} Credential={credential}, SignedHeaders={signed}, Signature={}",
        hex::encode(signature)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`authorization`] signs, [`verify`] accepts, and nothing else.
    #[test]
    fn a_request_signed_here_verifies() {
        let (m, u, mut h) = request(
            &[
                ("host", "127.0.0.1:4566"),
                ("x-amz-date", "20261201T120000Z"),
                ("content-type", "application/toml"),
            ],
            "/_cognate/apply",
        );
        let body_hash = sha256_hex(b"[[users]]");
        let req = Request {
            method: &m,
            path: u.path(),
            query: "",
            headers: &h,
        };
        let auth = authorization(
            &req,
            "AKIDEXAMPLE",
            "secret",
            "us-east-1",
            "cognate",
            &body_hash,
        )
        .unwrap();
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(&auth).unwrap(),
        );
        let req = Request {
            method: &m,
            path: u.path(),
            query: "",
            headers: &h,
        };
        let presented = parse(&req).unwrap().unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_796_126_400).unwrap();
        let key = SigningKey::derive("secret", &presented.scope);
        assert_eq!(
            verify(
                &req,
                &presented,
                &key,
                PathStyle::Normalized,
                &body_hash,
                now
            ),
            Ok(())
        );
        let other = sha256_hex(b"[[roles]]");
        assert_eq!(
            verify(&req, &presented, &key, PathStyle::Normalized, &other, now),
            Err(Error::SignatureMismatch)
        );
        let wrong = SigningKey::derive("secreT", &presented.scope);
        assert_eq!(
            verify(
                &req,
                &presented,
                &wrong,
                PathStyle::Normalized,
                &body_hash,
                now
            ),
            Err(Error::SignatureMismatch)
        );
    }

    fn request(headers: &[(&str, &str)], uri: &str) -> (http::Method, http::Uri, http::HeaderMap) {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        (http::Method::GET, uri.parse().unwrap(), map)
    }

    #[test]
    fn anonymous_request_has_no_signature() {
        let (m, u, h) = request(&[("host", "x")], "/bucket/key?prefix=a");
        let req = Request {
            method: &m,
            path: u.path(),
            query: u.query().unwrap_or(""),
            headers: &h,
        };
        assert!(parse(&req).unwrap().is_none());
    }

    #[test]
    fn incomplete_header_names_every_missing_part() {
        let (m, u, h) = request(
            &[(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/sts/aws4_request",
            )],
            "/",
        );
        let req = Request {
            method: &m,
            path: u.path(),
            query: u.query().unwrap_or(""),
            headers: &h,
        };
        let Err(Error::Incomplete(msg)) = parse(&req) else {
            panic!("expected Incomplete")
        };
        assert!(msg.contains("'Signature'"), "{msg}");
        assert!(msg.contains("'SignedHeaders'"), "{msg}");
        assert!(msg.contains("'X-Amz-Date'"), "{msg}");
        assert!(!msg.contains("'Credential'"), "{msg}");
    }

    #[test]
    fn other_algorithms_are_refused() {
        let (m, u, h) = request(
            &[
                ("authorization", "AWS3-HTTPS AKID:abc"),
                ("x-amz-date", "20150830T123600Z"),
            ],
            "/",
        );
        let req = Request {
            method: &m,
            path: u.path(),
            query: u.query().unwrap_or(""),
            headers: &h,
        };
        assert!(matches!(parse(&req), Err(Error::Incomplete(_))));
    }

    #[test]
    fn scope_date_must_match_request_date() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKID/20150831/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let (m, u, h) = request(
            &[
                ("authorization", auth),
                ("host", "h"),
                ("x-amz-date", "20150830T123600Z"),
            ],
            "/",
        );
        let req = Request {
            method: &m,
            path: u.path(),
            query: u.query().unwrap_or(""),
            headers: &h,
        };
        assert!(matches!(parse(&req), Err(Error::ScopeDate(_))));
    }

    #[test]
    fn host_must_be_signed() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/sts/aws4_request, SignedHeaders=x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let (m, u, h) = request(
            &[
                ("authorization", auth),
                ("host", "h"),
                ("x-amz-date", "20150830T123600Z"),
            ],
            "/",
        );
        let req = Request {
            method: &m,
            path: u.path(),
            query: u.query().unwrap_or(""),
            headers: &h,
        };
        assert!(matches!(parse(&req), Err(Error::Incomplete(_))));
    }

    #[test]
    fn clock_skew_is_fifteen_minutes_each_way() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let (m, u, h) = request(
            &[
                ("authorization", auth),
                ("host", "h"),
                ("x-amz-date", "20150830T123600Z"),
            ],
            "/",
        );
        let req = Request {
            method: &m,
            path: u.path(),
            query: u.query().unwrap_or(""),
            headers: &h,
        };
        let p = parse(&req).unwrap().unwrap();
        let t = p.timestamp;
        assert!(check_time(&p, t + time::Duration::minutes(15)).is_ok());
        assert!(check_time(&p, t - time::Duration::minutes(15)).is_ok());
        let Err(Error::Skewed(msg)) = check_time(&p, t + time::Duration::minutes(20)) else {
            panic!()
        };
        assert_eq!(
            msg,
            "Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z (20150830T125600Z - 15 min.)"
        );
        assert!(matches!(
            check_time(&p, t - time::Duration::minutes(16)),
            Err(Error::Skewed(_))
        ));
    }

    #[test]
    fn http_date_header_is_accepted_when_x_amz_date_is_absent() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/sts/aws4_request, SignedHeaders=date;host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let (m, u, h) = request(
            &[
                ("authorization", auth),
                ("host", "h"),
                ("date", "Sun, 30 Aug 2015 12:36:00 GMT"),
            ],
            "/",
        );
        let req = Request {
            method: &m,
            path: u.path(),
            query: u.query().unwrap_or(""),
            headers: &h,
        };
        let p = parse(&req).unwrap().unwrap();
        assert_eq!(p.amz_date, "20150830T123600Z");
    }

    #[test]
    fn presigned_lifetime_is_enforced() {
        let uri = "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let (m, u, h) = request(&[("host", "h")], uri);
        let req = Request {
            method: &m,
            path: u.path(),
            query: u.query().unwrap_or(""),
            headers: &h,
        };
        let p = parse(&req).unwrap().unwrap();
        assert_eq!(p.location, Location::Query { expires_secs: 60 });
        assert!(check_time(&p, p.timestamp + time::Duration::seconds(60)).is_ok());
        assert_eq!(
            check_time(&p, p.timestamp + time::Duration::seconds(61)),
            Err(Error::PresignExpired)
        );
    }

    #[test]
    fn presigned_lifetime_is_at_most_a_week() {
        let uri = "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=604801&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
        let (m, u, h) = request(&[("host", "h")], uri);
        let req = Request {
            method: &m,
            path: u.path(),
            query: u.query().unwrap_or(""),
            headers: &h,
        };
        assert!(matches!(parse(&req), Err(Error::Incomplete(_))));
    }

    #[test]
    fn security_token_is_redacted_in_debug() {
        let auth = "AWS4-HMAC-SHA256 Credential=ASIA/20150830/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let (m, u, h) = request(
            &[
                ("authorization", auth),
                ("host", "h"),
                ("x-amz-date", "20150830T123600Z"),
                ("x-amz-security-token", "SECRETTOKEN"),
            ],
            "/",
        );
        let req = Request {
            method: &m,
            path: u.path(),
            query: u.query().unwrap_or(""),
            headers: &h,
        };
        let p = parse(&req).unwrap().unwrap();
        assert!(!format!("{p:?}").contains("SECRETTOKEN"));
    }
}
