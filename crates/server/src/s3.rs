//! The S3 edge: path-style REST-XML requests → operation, authorization with the policy
//! engine (the bucket policy as the resource policy), object bytes streamed to and from
//! [`cognate_s3::Blobs`], metadata rows in the store, and S3's XML replies and errors.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use base64::Engine as _;
use bytes::Bytes;
use cognate_policy::{Policy, PolicyUse};
use cognate_protocol::{ApiError, Protocol, XmlWriter, services};
use cognate_s3::{self as s3, ChecksumAlgorithm, Finished};
use cognate_sigv4::{self as sigv4, ChunkVerifier, ChunkedDecoder, PathStyle};
use cognate_store::{BucketDeletion, BucketRow, ObjectRow, PartRow, Store, UploadRow};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::auth::Caller;
use crate::authz::{self, ResourcePolicy};
use crate::bootstrap::StartError;
use crate::config::Config;
use crate::edge::Ctx;

const XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
/// Objects up to this size are read in one go; larger ones stream.
const SMALL_OBJECT: u64 = 256 * 1024;
/// How much of a large object is read per body frame.
const READ_CHUNK: usize = 256 * 1024;
/// Headers kept with an object and returned by GET/HEAD.
const STORED_HEADERS: [&str; 7] = [
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
    "x-amz-website-redirect-location",
];
/// Query parameters that name no sub-resource: listing options, multipart ids, presigning.
const PLAIN_PARAMS: [&str; 20] = [
    "prefix",
    "delimiter",
    "max-keys",
    "marker",
    "continuation-token",
    "start-after",
    "fetch-owner",
    "encoding-type",
    "list-type",
    "key-marker",
    "upload-id-marker",
    "max-uploads",
    "max-parts",
    "part-number-marker",
    "uploadId",
    "partNumber",
    "x-id",
    "versionId",
    "bucket-region",
    "max-buckets",
];
/// Sub-resources this service answers; any other is `NotImplemented`.
const SUBRESOURCES: [&str; 4] = ["location", "policy", "uploads", "delete"];

/// Percent-encoding for keys in `encoding-type=url` listings: all but unreserved and `/`.
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Opens the object directory and removes what a crash left there. With SQLite this node
/// owns the directory; with PostgreSQL other nodes may share it, so only old leftovers go.
pub async fn open_blobs(config: &Config, store: &Store) -> Result<s3::Blobs, StartError> {
    let dir = config
        .objects_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("objects"));
    let grace = match store.backend() {
        cognate_store::Backend::Sqlite => Duration::ZERO,
        cognate_store::Backend::Postgres => Duration::from_secs(24 * 3600),
    };
    let io = |source| StartError::Io {
        context: format!("opening the object directory {}", dir.display()),
        source,
    };
    let blobs = s3::Blobs::open(&dir, grace).await.map_err(io)?;
    let referenced = store.referenced_blobs().await?.into_iter().collect();
    let swept = blobs.sweep(&referenced, grace).await.map_err(io)?;
    if swept > 0 {
        tracing::info!(files = swept, "removed object files no object names");
    }
    Ok(blobs)
}

/// A bucket as authorization needs it.
pub struct Bucket {
    pub row: BucketRow,
    pub policy: Option<Policy>,
}

impl Bucket {
    fn resource(&self) -> ResourcePolicy<'_> {
        ResourcePolicy {
            policy: self.policy.as_ref(),
            account: &self.row.account_id,
        }
    }
}

fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message.into())
}

/// S3's answer to an aws-chunked body it refuses.
fn chunk_error(e: sigv4::ChunkError, incomplete: ApiError) -> ApiError {
    match e {
        sigv4::ChunkError::Signature => err(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ),
        sigv4::ChunkError::Trailer => err(
            StatusCode::BAD_REQUEST,
            "MalformedTrailerError",
            "The request contained trailing data that was not well-formed or did not conform to our published schema.",
        ),
        sigv4::ChunkError::Malformed | sigv4::ChunkError::Incomplete => incomplete,
    }
}

/// The customer-provided key headers (SSE-C) of an object and of a copy's source.
const SSE_C: [&str; 3] = [
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
];
const COPY_SOURCE_SSE_C: [&str; 3] = [
    "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
];
const OBJECT_LOCK: [&str; 3] = [
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
];
const KMS: [&str; 3] = [
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-context",
    "x-amz-server-side-encryption-bucket-key-enabled",
];
const GRANTS: [&str; 5] = [
    "x-amz-grant-full-control",
    "x-amz-grant-read",
    "x-amz-grant-read-acp",
    "x-amz-grant-write",
    "x-amz-grant-write-acp",
];

/// Headers that promise a protection are honoured or refused, never ignored. Buckets own
/// their objects as S3's default `BucketOwnerEnforced` has it: no ACL but
/// `bucket-owner-full-control` (buckets: `private`) is accepted. SSE-C is blocked for writes,
/// as for every bucket S3 has made since April 2026, and no stored object is SSE-C, so its
/// headers on a read do not apply.
fn refuse_unkept_promises(op: Op, req: &Req<'_>) -> Result<(), ApiError> {
    let has = |names: &[&str]| names.iter().any(|n| req.headers.contains_key(*n));
    let acl = req.header("x-amz-acl");
    let acl_refused = || {
        err(
            StatusCode::BAD_REQUEST,
            "AccessControlListNotSupported",
            "The bucket does not allow ACLs",
        )
    };
    match op {
        Op::CreateBucket if acl.is_some_and(|a| a != "private") || has(&GRANTS) => {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "InvalidBucketAclWithObjectOwnership",
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
            ));
        }
        Op::CreateBucket
            if req
                .header("x-amz-bucket-object-lock-enabled")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")) =>
        {
            // Object Lock promises write-once objects, which Cognate does not keep.
            return Err(not_implemented());
        }
        Op::PutObject | Op::CopyObject | Op::CreateMultipartUpload | Op::UploadPart => {
            if acl.is_some_and(|a| a != "bucket-owner-full-control") || has(&GRANTS) {
                return Err(acl_refused());
            }
            if has(&OBJECT_LOCK) {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    "Bucket is missing Object Lock Configuration",
                ));
            }
            // No KMS here: a key that would guard reads cannot be promised.
            let kms = req
                .header("x-amz-server-side-encryption")
                .is_some_and(|v| v.starts_with("aws:kms"));
            if kms || has(&KMS) {
                return Err(not_implemented());
            }
            if has(&SSE_C) {
                return Err(err(
                    StatusCode::FORBIDDEN,
                    "AccessDenied",
                    "Requests specifying Server Side Encryption with Customer provided keys are blocked for this bucket",
                ));
            }
            if op == Op::CopyObject && has(&COPY_SOURCE_SSE_C) {
                return Err(not_applicable());
            }
        }
        Op::GetObject | Op::HeadObject if has(&SSE_C) => return Err(not_applicable()),
        _ => {}
    }
    Ok(())
}

/// A bucket owned by another account than the request expects is refused, as S3 does.
fn expect_owner(expected: Option<&str>, bucket: &Bucket) -> Result<(), ApiError> {
    match expected {
        Some(owner) if owner != bucket.row.account_id => {
            Err(err(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied"))
        }
        _ => Ok(()),
    }
}

/// SSE-C parameters given for an object that was not stored with them.
fn not_applicable() -> ApiError {
    err(
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
        "The encryption parameters are not applicable to this object.",
    )
}

fn no_such_bucket() -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "NoSuchBucket",
        "The specified bucket does not exist",
    )
}

fn no_such_key() -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "NoSuchKey",
        "The specified key does not exist.",
    )
}

fn no_such_upload() -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    )
}

fn not_implemented() -> ApiError {
    err(
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
        "A header you provided implies functionality that is not implemented",
    )
}

fn invalid_argument(message: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, "InvalidArgument", message)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "S3 request failed inside the server");
    ApiError::internal()
}

fn malformed_xml() -> ApiError {
    err(
        StatusCode::BAD_REQUEST,
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}

/// The S3 operations this service implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    ListBuckets,
    CreateBucket,
    DeleteBucket,
    HeadBucket,
    GetBucketLocation,
    GetBucketPolicy,
    PutBucketPolicy,
    DeleteBucketPolicy,
    ListObjects,
    ListObjectsV2,
    ListMultipartUploads,
    DeleteObjects,
    PutObject,
    CopyObject,
    UploadPart,
    GetObject,
    HeadObject,
    DeleteObject,
    CreateMultipartUpload,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::ListBuckets => "ListBuckets",
            Op::CreateBucket => "CreateBucket",
            Op::DeleteBucket => "DeleteBucket",
            Op::HeadBucket => "HeadBucket",
            Op::GetBucketLocation => "GetBucketLocation",
            Op::GetBucketPolicy => "GetBucketPolicy",
            Op::PutBucketPolicy => "PutBucketPolicy",
            Op::DeleteBucketPolicy => "DeleteBucketPolicy",
            Op::ListObjects => "ListObjects",
            Op::ListObjectsV2 => "ListObjectsV2",
            Op::ListMultipartUploads => "ListMultipartUploads",
            Op::DeleteObjects => "DeleteObjects",
            Op::PutObject => "PutObject",
            Op::CopyObject => "CopyObject",
            Op::UploadPart => "UploadPart",
            Op::GetObject => "GetObject",
            Op::HeadObject => "HeadObject",
            Op::DeleteObject => "DeleteObject",
            Op::CreateMultipartUpload => "CreateMultipartUpload",
            Op::CompleteMultipartUpload => "CompleteMultipartUpload",
            Op::AbortMultipartUpload => "AbortMultipartUpload",
            Op::ListParts => "ListParts",
        }
    }
}

/// One parsed request.
struct Req<'a> {
    bucket: String,
    key: String,
    query: Vec<(String, String)>,
    headers: &'a HeaderMap,
}

impl Req<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn object_arn(&self) -> String {
        format!("arn:aws:s3:::{}/{}", self.bucket, self.key)
    }

    fn bucket_arn(&self) -> String {
        format!("arn:aws:s3:::{}", self.bucket)
    }
}

fn operation(method: &Method, req: &Req<'_>) -> Result<Op, ApiError> {
    if req.has("AWSAccessKeyId") && req.has("Signature") {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
        ));
    }
    for (name, _) in &req.query {
        let known = PLAIN_PARAMS.contains(&name.as_str())
            || SUBRESOURCES.contains(&name.as_str())
            || name.starts_with("response-")
            || name.starts_with("X-Amz-")
            || name.starts_with("x-amz-");
        if !known {
            return Err(not_implemented());
        }
    }
    let not_allowed = || {
        err(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )
    };
    if req.bucket.is_empty() {
        return match *method {
            Method::GET => Ok(Op::ListBuckets),
            _ => Err(not_allowed()),
        };
    }
    if req.key.is_empty() {
        let op = if req.has("policy") {
            match *method {
                Method::GET => Op::GetBucketPolicy,
                Method::PUT => Op::PutBucketPolicy,
                Method::DELETE => Op::DeleteBucketPolicy,
                _ => return Err(not_allowed()),
            }
        } else if req.has("location") {
            match *method {
                Method::GET => Op::GetBucketLocation,
                _ => return Err(not_allowed()),
            }
        } else if req.has("uploads") {
            match *method {
                Method::GET => Op::ListMultipartUploads,
                _ => return Err(not_allowed()),
            }
        } else if req.has("delete") {
            match *method {
                Method::POST => Op::DeleteObjects,
                _ => return Err(not_allowed()),
            }
        } else {
            match *method {
                Method::GET if req.param("list-type") == Some("2") => Op::ListObjectsV2,
                Method::GET => Op::ListObjects,
                Method::PUT => Op::CreateBucket,
                Method::DELETE => Op::DeleteBucket,
                Method::HEAD => Op::HeadBucket,
                _ => return Err(not_allowed()),
            }
        };
        return Ok(op);
    }
    if SUBRESOURCES.iter().any(|s| *s != "uploads" && req.has(s)) {
        return Err(not_implemented());
    }
    Ok(match *method {
        Method::PUT if req.has("uploadId") || req.has("partNumber") => {
            if req.header("x-amz-copy-source").is_some() {
                // UploadPartCopy.
                return Err(not_implemented());
            }
            Op::UploadPart
        }
        Method::PUT if req.header("x-amz-copy-source").is_some() => Op::CopyObject,
        Method::PUT => Op::PutObject,
        Method::GET if req.has("uploadId") => Op::ListParts,
        Method::GET => Op::GetObject,
        Method::HEAD => Op::HeadObject,
        Method::DELETE if req.has("uploadId") => Op::AbortMultipartUpload,
        Method::DELETE => Op::DeleteObject,
        Method::POST if req.has("uploads") => Op::CreateMultipartUpload,
        Method::POST if req.has("uploadId") => Op::CompleteMultipartUpload,
        _ => return Err(not_allowed()),
    })
}

/// Splits a path-style path into bucket and (decoded) key.
fn split_path(path: &str) -> Result<(String, String), ApiError> {
    let invalid = || {
        err(
            StatusCode::BAD_REQUEST,
            "InvalidURI",
            "Couldn't parse the specified URI.",
        )
    };
    let rest = path.strip_prefix('/').unwrap_or(path);
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let decode = |s: &str| {
        percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| invalid())
    };
    Ok((decode(bucket)?, decode(key)?))
}

/// The payload hash the signature covers, as the edge computes it for S3.
fn payload_hash(ctx: &Ctx<'_>) -> String {
    match ctx.presented.map(|p| p.location) {
        Some(sigv4::Location::Header) => ctx
            .presented
            .and_then(|p| p.content_sha256.clone())
            .unwrap_or_else(|| sigv4::EMPTY_SHA256.to_owned()),
        _ => sigv4::UNSIGNED_PAYLOAD.to_owned(),
    }
}

/// Handles one S3 request.
pub async fn handle(ctx: &mut Ctx<'_>, body: Body) -> Result<Response<Body>, ApiError> {
    ctx.outcome.service = services::s3::SIGNING_NAME;
    let (bucket, key) = split_path(ctx.parts.uri.path())?;
    let query = form_urlencoded::parse(ctx.parts.uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let req = Req {
        bucket,
        key,
        query,
        headers: &ctx.parts.headers,
    };
    let op = operation(&ctx.parts.method, &req)?;
    ctx.outcome.operation = op.name().to_owned();
    let hash = payload_hash(ctx);
    let caller = ctx
        .caller(
            Protocol::RestXml,
            services::s3::SIGNING_NAME,
            PathStyle::S3,
            &hash,
            false,
        )
        .await?;
    refuse_unkept_promises(op, &req)?;
    let mut s = S3 {
        ctx,
        caller: caller.as_ref(),
        req,
        hash,
    };
    match op {
        Op::ListBuckets => s.list_buckets().await,
        Op::CreateBucket => s.create_bucket(body).await,
        Op::DeleteBucket => s.delete_bucket().await,
        Op::HeadBucket => s.head_bucket().await,
        Op::GetBucketLocation => s.bucket_location().await,
        Op::GetBucketPolicy => s.get_bucket_policy().await,
        Op::PutBucketPolicy => s.put_bucket_policy(body).await,
        Op::DeleteBucketPolicy => s.delete_bucket_policy().await,
        Op::ListObjects => s.list_objects(false).await,
        Op::ListObjectsV2 => s.list_objects(true).await,
        Op::ListMultipartUploads => s.list_uploads().await,
        Op::DeleteObjects => s.delete_objects(body).await,
        Op::PutObject => s.put_object(body).await,
        Op::CopyObject => s.copy_object().await,
        Op::UploadPart => s.upload_part(body).await,
        Op::GetObject => s.get_object(false).await,
        Op::HeadObject => s.get_object(true).await,
        Op::DeleteObject => s.delete_object().await,
        Op::CreateMultipartUpload => s.create_upload().await,
        Op::CompleteMultipartUpload => s.complete_upload(body).await,
        Op::AbortMultipartUpload => s.abort_upload().await,
        Op::ListParts => s.list_parts().await,
    }
}

struct S3<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    caller: Option<&'c Caller>,
    req: Req<'a>,
    hash: String,
}

/// The canonical user id S3 shows as an owner: stable per account, 64 hex digits.
fn canonical_id(account: &str) -> String {
    sigv4::sha256_hex(format!("cognate-canonical-user:{account}").as_bytes())
}

fn xml_response(
    status: StatusCode,
    root: &str,
    inner: impl FnOnce(&mut XmlWriter),
) -> Response<Body> {
    let mut w = XmlWriter::new();
    inner(&mut w);
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"{XMLNS}\">{}</{root}>",
        w.finish()
    );
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    res
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = status;
    res
}

fn set_header(res: &mut Response<Body>, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        header::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        res.headers_mut().insert(n, v);
    }
}

fn iso8601(millis: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

fn http_date(millis: i64) -> String {
    let secs = u64::try_from(millis / 1000).unwrap_or(0);
    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// The headers stored with an object: content headers and `x-amz-meta-*`.
fn stored_headers(headers: &HeaderMap) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    let mut metadata_size = 0;
    for (name, value) in headers {
        let name = name.as_str();
        let keep = STORED_HEADERS.contains(&name) || name.starts_with("x-amz-meta-");
        if !keep {
            continue;
        }
        let Ok(value) = value.to_str() else {
            return Err(invalid_argument(format!(
                "Header {name} has an invalid value"
            )));
        };
        let value = if name == "content-encoding" {
            // aws-chunked describes the upload, not the object.
            let rest: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|e| !e.eq_ignore_ascii_case("aws-chunked") && !e.is_empty())
                .collect();
            if rest.is_empty() {
                continue;
            }
            rest.join(",")
        } else {
            value.to_owned()
        };
        if let Some(meta) = name.strip_prefix("x-amz-meta-") {
            metadata_size += meta.len() + value.len();
        }
        out.push((name.to_owned(), value));
    }
    if metadata_size > s3::MAX_USER_METADATA {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size.",
        ));
    }
    Ok(out)
}

fn encode_headers(headers: &[(String, String)]) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_owned())
}

fn decode_headers(text: &str) -> Vec<(String, String)> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Which additional checksum an upload carries: `(algorithm, expected value if in a header)`.
fn requested_checksum(
    headers: &HeaderMap,
) -> Result<Option<(ChecksumAlgorithm, Option<String>)>, ApiError> {
    let mut found = None;
    for algorithm in ChecksumAlgorithm::ALL {
        if let Some(v) = headers.get(algorithm.header()) {
            if found.is_some() {
                return Err(invalid_argument(
                    "Expecting a single x-amz-checksum- header",
                ));
            }
            let v = v.to_str().unwrap_or_default().to_owned();
            found = Some((algorithm, Some(v)));
        }
    }
    if found.is_some() {
        return Ok(found);
    }
    if let Some(trailer) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
        let algorithm = ChecksumAlgorithm::from_header(trailer.trim()).ok_or_else(|| {
            invalid_argument("The value specified in the x-amz-trailer header is not supported")
        })?;
        return Ok(Some((algorithm, None)));
    }
    if let Some(name) = headers
        .get("x-amz-sdk-checksum-algorithm")
        .and_then(|v| v.to_str().ok())
    {
        let algorithm = ChecksumAlgorithm::from_name(name)
            .ok_or_else(|| invalid_argument("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, SHA1, SHA256]"))?;
        return Ok(Some((algorithm, None)));
    }
    Ok(None)
}

/// The `Content-MD5` header, decoded.
fn content_md5(headers: &HeaderMap) -> Result<Option<[u8; 16]>, ApiError> {
    let Some(v) = headers.get("content-md5") else {
        return Ok(None);
    };
    let invalid = || {
        err(
            StatusCode::BAD_REQUEST,
            "InvalidDigest",
            "The Content-MD5 you specified was invalid.",
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(v.as_bytes())
        .map_err(|_| invalid())?;
    let md5: [u8; 16] = decoded.try_into().map_err(|_| invalid())?;
    Ok(Some(md5))
}

/// A received upload body, in a file not yet in place.
struct Received {
    finished: Finished,
    checksum: Option<(ChecksumAlgorithm, String)>,
}

fn parse_range(spec: &str, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(ranges) = spec.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if ranges.contains(',') {
        // S3 serves one range; several are answered with the whole object.
        return Ok(None);
    }
    let Some((start, end)) = ranges.split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = || {
        err(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The requested range is not satisfiable",
        )
    };
    let (start, end) = (start.trim(), end.trim());
    if start.is_empty() {
        let Ok(suffix) = end.parse::<u64>() else {
            return Ok(None);
        };
        if suffix == 0 || size == 0 {
            return Err(unsatisfiable());
        }
        return Ok(Some((size.saturating_sub(suffix), size - 1)));
    }
    let Ok(start) = start.parse::<u64>() else {
        return Ok(None);
    };
    let end = if end.is_empty() {
        u64::MAX
    } else {
        match end.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return Ok(None),
        }
    };
    if start >= size {
        return Err(unsatisfiable());
    }
    Ok(Some((start, end.min(size - 1))))
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|e| e == "*" || e.trim_matches('"') == etag.trim_matches('"'))
}

fn parse_http_date(v: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(v).ok()?;
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

/// Evaluates the conditional headers of a GET/HEAD: `Ok(None)` to serve, `Ok(Some(304))`
/// for not modified, `Err` for a failed precondition.
fn preconditions(headers: &HeaderMap, row: &ObjectRow) -> Result<Option<StatusCode>, ApiError> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let modified_secs = row.last_modified / 1000;
    let failed = || {
        err(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
        )
    };
    let if_match = get("if-match");
    if let Some(list) = if_match
        && !etag_matches(list, &row.etag)
    {
        return Err(failed());
    }
    if if_match.is_none()
        && let Some(since) = get("if-unmodified-since").and_then(parse_http_date)
        && modified_secs > since
    {
        return Err(failed());
    }
    let if_none_match = get("if-none-match");
    if let Some(list) = if_none_match
        && etag_matches(list, &row.etag)
    {
        return Ok(Some(StatusCode::NOT_MODIFIED));
    }
    if if_none_match.is_none()
        && let Some(since) = get("if-modified-since").and_then(parse_http_date)
        && modified_secs <= since
    {
        return Ok(Some(StatusCode::NOT_MODIFIED));
    }
    Ok(None)
}

/// One listing page: objects and common prefixes in key order.
struct Listing {
    contents: Vec<ObjectRow>,
    prefixes: Vec<String>,
    truncated: bool,
    /// The last key or common prefix returned.
    last: Option<String>,
}

/// The least string greater than every string that starts with `s`.
fn successor(s: &str) -> Option<String> {
    let mut chars: Vec<char> = s.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if next == 0xD800 {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Lists `bucket` as S3 does: keys under `prefix` after `after`, keys containing
/// `delimiter` past the prefix rolled up into common prefixes, at most `max` entries.
async fn list(
    store: &Store,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    after: &str,
    max: usize,
) -> Result<Listing, ApiError> {
    let mut listing = Listing {
        contents: Vec::new(),
        prefixes: Vec::new(),
        truncated: false,
        last: None,
    };
    // Where to read from: the prefix itself (inclusive) or past the marker.
    let (mut cursor, mut inclusive) = if after < prefix {
        (prefix.to_owned(), true)
    } else {
        (after.to_owned(), false)
    };
    // A marker that is a common prefix skips everything under it.
    if !inclusive
        && let Some(d) = delimiter
        && let Some(rest) = after.strip_prefix(prefix)
        && rest.ends_with(d)
        && let Some(next) = successor(after)
    {
        cursor = next;
        inclusive = true;
    }
    const BATCH: i64 = 1000;
    'outer: loop {
        let rows = store
            .list_objects(bucket, &cursor, inclusive, BATCH)
            .await
            .map_err(internal)?;
        let fetched = rows.len();
        for row in rows {
            let Some(rest) = row.key.strip_prefix(prefix) else {
                // Keys sort after the prefix's range: nothing further matches.
                break 'outer;
            };
            if let Some(d) = delimiter.filter(|d| !d.is_empty())
                && let Some(at) = rest.find(d)
            {
                let common = format!("{prefix}{}", rest.get(..at + d.len()).unwrap_or(rest));
                if listing.prefixes.last() == Some(&common) {
                    cursor = row.key;
                    inclusive = false;
                    continue;
                }
                if listing.contents.len() + listing.prefixes.len() >= max {
                    listing.truncated = true;
                    break 'outer;
                }
                listing.last = Some(common.clone());
                listing.prefixes.push(common.clone());
                match successor(&common) {
                    Some(next) => {
                        cursor = next;
                        inclusive = true;
                        continue 'outer;
                    }
                    None => {
                        cursor = row.key;
                        inclusive = false;
                        continue;
                    }
                }
            }
            if listing.contents.len() + listing.prefixes.len() >= max {
                listing.truncated = true;
                break 'outer;
            }
            cursor = row.key.clone();
            inclusive = false;
            listing.last = Some(row.key.clone());
            listing.contents.push(row);
        }
        if fetched < BATCH as usize {
            break;
        }
    }
    Ok(listing)
}

impl S3<'_, '_> {
    fn store(&self) -> &Store {
        &self.ctx.state.store
    }

    fn blobs(&self) -> &s3::Blobs {
        &self.ctx.state.blobs
    }

    /// The bucket named by the request, from the cache or the store.
    /// The bucket named by the request, refused when the request expects another owner
    /// (`x-amz-expected-bucket-owner`: bucket names are global, so a client says whose bucket
    /// it means to write to).
    async fn bucket(&self) -> Result<Arc<Bucket>, ApiError> {
        let bucket = bucket_named(self.ctx.state, &self.req.bucket).await?;
        expect_owner(self.req.header("x-amz-expected-bucket-owner"), &bucket)?;
        Ok(bucket)
    }

    /// Condition keys every S3 request carries.
    fn keys(&self, bucket: Option<&Bucket>) -> Vec<(String, Vec<String>)> {
        let mut keys = Vec::with_capacity(8);
        let presigned = self
            .ctx
            .presented
            .is_some_and(|p| matches!(p.location, sigv4::Location::Query { .. }));
        if self.ctx.presented.is_some() {
            keys.push((
                "s3:authType".to_owned(),
                vec![
                    if presigned {
                        "REST-QUERY-STRING"
                    } else {
                        "REST-HEADER"
                    }
                    .to_owned(),
                ],
            ));
            keys.push((
                "s3:signatureversion".to_owned(),
                vec!["AWS4-HMAC-SHA256".to_owned()],
            ));
            keys.push((
                "s3:x-amz-content-sha256".to_owned(),
                vec![self.hash.clone()],
            ));
        }
        if let Some(b) = bucket {
            keys.push((
                "s3:ResourceAccount".to_owned(),
                vec![b.row.account_id.clone()],
            ));
        }
        for name in [
            "x-amz-acl",
            "x-amz-copy-source",
            "x-amz-metadata-directive",
            "x-amz-server-side-encryption",
            "x-amz-storage-class",
        ] {
            if let Some(v) = self.req.header(name) {
                keys.push((format!("s3:{name}"), vec![v.to_owned()]));
            }
        }
        keys
    }

    /// Authorizes `action` on `resource` in `bucket` (its policy joins the evaluation).
    async fn allow(
        &self,
        action: &str,
        resource: &str,
        bucket: &Bucket,
        extra: Vec<(String, Vec<String>)>,
    ) -> Result<(), ApiError> {
        let mut keys = self.keys(Some(bucket));
        keys.extend(extra);
        match self.caller {
            Some(caller) => {
                authz::authorize(
                    self.ctx,
                    caller,
                    Protocol::RestXml,
                    action,
                    resource,
                    &keys,
                    Some(bucket.resource()),
                )
                .await
            }
            None => {
                authz::authorize_anonymous(self.ctx, action, resource, &keys, bucket.resource())
            }
        }
    }

    /// Bucket policy operations: the owner account's root may always read, replace and
    /// delete its bucket's policy, even one that denies it (so it cannot lock itself out);
    /// another account's caller is refused even when policies would allow it.
    async fn allow_policy_change(&self, action: &str, bucket: &Bucket) -> Result<(), ApiError> {
        let owner = bucket.row.account_id.as_str();
        match self.caller.map(|c| &c.principal) {
            Some(cognate_credentials::Principal::Root { account }) if account.as_str() == owner => {
                return Ok(());
            }
            Some(p) if p.account().as_str() != owner => {
                self.allow(action, &self.req.bucket_arn(), bucket, Vec::new())
                    .await?;
                return Err(err(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "The specified method is not allowed against this resource.",
                ));
            }
            // Only the owner account's identities manage a bucket's policy, never `*`.
            None => {
                return Err(err(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied"));
            }
            Some(_) => {}
        }
        self.allow(action, &self.req.bucket_arn(), bucket, Vec::new())
            .await
    }

    /// Drops a key's cached row after a write to it.
    fn forget(&self, key: &str) {
        if let Some(c) = &self.ctx.state.objects {
            c.remove(&(self.req.bucket.clone(), key.to_owned()));
        }
    }

    /// The request's time (the edge's clock, passed in), in milliseconds.
    fn now_millis(&self) -> i64 {
        i64::try_from(self.ctx.now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
    }

    /// The signed caller, for operations anonymous requests cannot perform.
    fn signed(&self) -> Result<&Caller, ApiError> {
        self.caller
            .ok_or_else(|| err(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied"))
    }

    fn check_key(&self) -> Result<(), ApiError> {
        if self.req.key.len() > s3::MAX_KEY_BYTES {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "KeyTooLongError",
                "Your key is too long",
            ));
        }
        Ok(())
    }

    async fn list_buckets(&mut self) -> Result<Response<Body>, ApiError> {
        let caller = self.signed()?;
        let keys = self.keys(None);
        authz::authorize(
            self.ctx,
            caller,
            Protocol::RestXml,
            "s3:ListAllMyBuckets",
            // No resource type: `*` and `arn:aws:s3:::*` both name it, as S3's examples do.
            "arn:aws:s3:::*",
            &keys,
            None,
        )
        .await?;
        let account = caller.principal.account().to_string();
        let buckets = self.store().buckets_of(&account).await.map_err(internal)?;
        Ok(xml_response(
            StatusCode::OK,
            "ListAllMyBucketsResult",
            |w| {
                w.nest("Owner", |w| {
                    w.element("ID", &canonical_id(&account));
                    w.element("DisplayName", &account);
                });
                w.nest("Buckets", |w| {
                    for b in &buckets {
                        w.nest("Bucket", |w| {
                            w.element("Name", &b.name);
                            w.element("CreationDate", &iso8601(b.created_at * 1000));
                            w.element("BucketRegion", &b.region);
                        });
                    }
                });
            },
        ))
    }

    async fn create_bucket(&mut self, body: Body) -> Result<Response<Body>, ApiError> {
        let caller = self.signed()?;
        let name = self.req.bucket.clone();
        if !s3::valid_bucket_name(&name) {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "InvalidBucketName",
                "The specified bucket is not valid.",
            ));
        }
        let body = read_document(body).await?;
        let location = s3::xml::create_bucket_location(&body).map_err(|_| malformed_xml())?;
        let region = self.ctx.state.region.clone();
        match location.as_deref() {
            None | Some("") => {}
            Some(l) if l == region && region != "us-east-1" => {}
            Some("us-east-1") if region == "us-east-1" => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "InvalidLocationConstraint",
                    "The specified location-constraint is not valid",
                ));
            }
            Some(l) => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "IllegalLocationConstraintException",
                    format!(
                        "The {l} location constraint is incompatible for the region specific endpoint this request was sent to."
                    ),
                ));
            }
        }
        let account = caller.principal.account().to_string();
        let keys = self.keys(None);
        authz::authorize(
            self.ctx,
            caller,
            Protocol::RestXml,
            "s3:CreateBucket",
            &self.req.bucket_arn(),
            &keys,
            None,
        )
        .await?;
        let row = BucketRow {
            name: name.clone(),
            account_id: account.clone(),
            region,
            created_at: self.now_millis() / 1000,
            policy: None,
        };
        match self.store().create_bucket(&row).await {
            Ok(()) => {}
            Err(cognate_store::StoreError::Conflict) => {
                let owner = self.store().bucket(&name).await.map_err(internal)?;
                return Err(if owner.is_some_and(|b| b.account_id == account) {
                    err(
                        StatusCode::CONFLICT,
                        "BucketAlreadyOwnedByYou",
                        "Your previous request to create the named bucket succeeded and you already own it.",
                    )
                } else {
                    err(
                        StatusCode::CONFLICT,
                        "BucketAlreadyExists",
                        "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
                    )
                });
            }
            Err(e) => return Err(internal(e)),
        }
        let mut res = empty(StatusCode::OK);
        set_header(&mut res, "location", &format!("/{name}"));
        Ok(res)
    }

    async fn delete_bucket(&mut self) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        self.allow(
            "s3:DeleteBucket",
            &self.req.bucket_arn(),
            &bucket,
            Vec::new(),
        )
        .await?;
        match self
            .store()
            .delete_bucket(&self.req.bucket)
            .await
            .map_err(internal)?
        {
            BucketDeletion::Missing => return Err(no_such_bucket()),
            BucketDeletion::NotEmpty => {
                return Err(err(
                    StatusCode::CONFLICT,
                    "BucketNotEmpty",
                    "The bucket you tried to delete is not empty",
                ));
            }
            BucketDeletion::Deleted(blobs) => self.blobs().remove(&blobs).await,
        }
        self.ctx.state.changed().await;
        Ok(empty(StatusCode::NO_CONTENT))
    }

    async fn head_bucket(&mut self) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        self.allow("s3:ListBucket", &self.req.bucket_arn(), &bucket, Vec::new())
            .await?;
        let mut res = empty(StatusCode::OK);
        set_header(&mut res, "x-amz-bucket-region", &bucket.row.region);
        Ok(res)
    }

    async fn bucket_location(&mut self) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        self.allow(
            "s3:GetBucketLocation",
            &self.req.bucket_arn(),
            &bucket,
            Vec::new(),
        )
        .await?;
        let region = if bucket.row.region == "us-east-1" {
            String::new()
        } else {
            bucket.row.region.clone()
        };
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{XMLNS}\">{}</LocationConstraint>",
            quick_xml::escape::escape(&region)
        );
        let mut res = Response::new(Body::from(body));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        Ok(res)
    }

    async fn get_bucket_policy(&mut self) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        self.allow_policy_change("s3:GetBucketPolicy", &bucket)
            .await?;
        let Some(policy) = bucket.row.policy.clone() else {
            return Err(err(
                StatusCode::NOT_FOUND,
                "NoSuchBucketPolicy",
                "The bucket policy does not exist",
            ));
        };
        let mut res = Response::new(Body::from(policy));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(res)
    }

    async fn put_bucket_policy(&mut self, body: Body) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        self.allow_policy_change("s3:PutBucketPolicy", &bucket)
            .await?;
        let body = read_document(body).await?;
        let malformed = |m: String| err(StatusCode::BAD_REQUEST, "MalformedPolicy", m);
        let text = std::str::from_utf8(&body)
            .map_err(|_| malformed("Policies must be valid JSON".to_owned()))?;
        Policy::parse(text, PolicyUse::Resource).map_err(|e| malformed(e.message))?;
        if !self
            .store()
            .set_bucket_policy(&self.req.bucket, Some(text))
            .await
            .map_err(internal)?
        {
            return Err(no_such_bucket());
        }
        self.ctx.state.changed().await;
        Ok(empty(StatusCode::NO_CONTENT))
    }

    async fn delete_bucket_policy(&mut self) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        self.allow_policy_change("s3:DeleteBucketPolicy", &bucket)
            .await?;
        if !self
            .store()
            .set_bucket_policy(&self.req.bucket, None)
            .await
            .map_err(internal)?
        {
            return Err(no_such_bucket());
        }
        self.ctx.state.changed().await;
        Ok(empty(StatusCode::NO_CONTENT))
    }

    async fn list_objects(&mut self, v2: bool) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        let prefix = self.req.param("prefix").unwrap_or("").to_owned();
        let delimiter = self
            .req
            .param("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_owned);
        let max_keys = match self.req.param("max-keys") {
            None => 1000,
            Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                invalid_argument("Provided max-keys not an integer or within integer range")
            })?,
        };
        let mut extra = vec![("s3:prefix".to_owned(), vec![prefix.clone()])];
        if let Some(d) = &delimiter {
            extra.push(("s3:delimiter".to_owned(), vec![d.clone()]));
        }
        extra.push(("s3:max-keys".to_owned(), vec![max_keys.to_string()]));
        self.allow("s3:ListBucket", &self.req.bucket_arn(), &bucket, extra)
            .await?;
        let url = match self.req.param("encoding-type") {
            None => false,
            Some("url") => true,
            Some(_) => {
                return Err(invalid_argument(
                    "Invalid Encoding Method specified in Request",
                ));
            }
        };
        let enc = |s: &str| -> String {
            if url {
                utf8_percent_encode(s, KEY_ENCODE).to_string()
            } else {
                s.to_owned()
            }
        };
        let max = usize::try_from(max_keys.min(1000)).unwrap_or(1000);
        let token = self.req.param("continuation-token").map(str::to_owned);
        let after = if v2 {
            match &token {
                Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        invalid_argument("The continuation token provided is incorrect")
                    })?,
                None => self.req.param("start-after").unwrap_or("").to_owned(),
            }
        } else {
            self.req.param("marker").unwrap_or("").to_owned()
        };
        let listing = list(
            self.store(),
            &self.req.bucket,
            &prefix,
            delimiter.as_deref(),
            &after,
            max,
        )
        .await?;
        let fetch_owner = !v2 || self.req.param("fetch-owner") == Some("true");
        let owner_id = canonical_id(&bucket.row.account_id);
        let name = self.req.bucket.clone();
        let start_after = self.req.param("start-after").map(str::to_owned);
        let marker = self.req.param("marker").unwrap_or("").to_owned();
        Ok(xml_response(StatusCode::OK, "ListBucketResult", |w| {
            w.element("Name", &name);
            w.element("Prefix", &enc(&prefix));
            if v2 {
                if let Some(t) = &token {
                    w.element("ContinuationToken", t);
                }
                if let Some(s) = &start_after {
                    w.element("StartAfter", &enc(s));
                }
                w.element(
                    "KeyCount",
                    &(listing.contents.len() + listing.prefixes.len()).to_string(),
                );
            } else {
                w.element("Marker", &enc(&marker));
            }
            w.element("MaxKeys", &max_keys.to_string());
            if let Some(d) = &delimiter {
                w.element("Delimiter", &enc(d));
            }
            if url {
                w.element("EncodingType", "url");
            }
            w.element(
                "IsTruncated",
                if listing.truncated { "true" } else { "false" },
            );
            if listing.truncated
                && let Some(last) = &listing.last
            {
                if v2 {
                    w.element(
                        "NextContinuationToken",
                        &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last),
                    );
                } else if delimiter.is_some() {
                    w.element("NextMarker", &enc(last));
                }
            }
            for o in &listing.contents {
                w.nest("Contents", |w| {
                    w.element("Key", &enc(&o.key));
                    w.element("LastModified", &iso8601(o.last_modified));
                    w.element("ETag", &o.etag);
                    w.element("Size", &o.size.to_string());
                    if fetch_owner {
                        w.nest("Owner", |w| {
                            w.element("ID", &owner_id);
                            w.element("DisplayName", &bucket.row.account_id);
                        });
                    }
                    w.element("StorageClass", "STANDARD");
                });
            }
            for p in &listing.prefixes {
                w.nest("CommonPrefixes", |w| {
                    w.element("Prefix", &enc(p));
                });
            }
        }))
    }

    /// Reads the object row, answering `AccessDenied` instead of `NoSuchKey` to a caller
    /// that may not list the bucket (as S3 does, so keys cannot be probed).
    async fn object_row(&self, bucket: &Bucket) -> Result<Arc<ObjectRow>, ApiError> {
        let cache = self.ctx.state.objects.as_ref();
        let id = (self.req.bucket.clone(), self.req.key.clone());
        if let Some(row) = cache.and_then(|c| c.get(&id)) {
            return Ok(row);
        }
        match self
            .store()
            .object(&self.req.bucket, &self.req.key)
            .await
            .map_err(internal)?
        {
            Some(row) => {
                let row = Arc::new(row);
                if let Some(c) = cache {
                    c.insert(id, row.clone());
                }
                Ok(row)
            }
            None => {
                self.allow("s3:ListBucket", &self.req.bucket_arn(), bucket, Vec::new())
                    .await?;
                Err(no_such_key())
            }
        }
    }

    async fn get_object(&mut self, head: bool) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let bucket = self.bucket().await?;
        self.allow("s3:GetObject", &self.req.object_arn(), &bucket, Vec::new())
            .await?;
        // A concurrent overwrite deletes the file a row read just before it named: read the
        // row again (a cached row is forgotten).
        let mut attempts = 0;
        let (row, body, range) = loop {
            let row = self.object_row(&bucket).await?;
            let size = u64::try_from(row.size).unwrap_or(0);
            if let Some(status) = preconditions(self.req.headers, &row)? {
                let mut res = empty(status);
                set_header(&mut res, "etag", &row.etag);
                set_header(&mut res, "last-modified", &http_date(row.last_modified));
                return Ok(res);
            }
            let range = match self.req.header("range") {
                Some(spec) => parse_range(spec, size)?,
                None => None,
            };
            let (start, len) = match range {
                Some((a, b)) => (a, b - a + 1),
                None => (0, size),
            };
            let path = self.blobs().path(&row.blob);
            let read = if head || len == 0 {
                tokio::fs::metadata(&path).await.map(|_| Body::empty())
            } else {
                read_object(path, start, len).await
            };
            match read {
                Ok(body) => break (row, body, range.map(|_| (start, len, size))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 3 => {
                    attempts += 1;
                    self.forget(&self.req.key);
                }
                Err(e) => return Err(internal(e)),
            }
        };
        let status = if range.is_some() {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        };
        let len = range.map_or(u64::try_from(row.size).unwrap_or(0), |(_, len, _)| len);
        let mut res = Response::new(body);
        *res.status_mut() = status;
        set_header(&mut res, "content-length", &len.to_string());
        set_header(&mut res, "etag", &row.etag);
        set_header(&mut res, "last-modified", &http_date(row.last_modified));
        set_header(&mut res, "accept-ranges", "bytes");
        if let Some((start, len, size)) = range {
            set_header(
                &mut res,
                "content-range",
                &format!("bytes {start}-{}/{size}", start + len - 1),
            );
        }
        let mut has_type = false;
        for (name, value) in decode_headers(&row.headers) {
            has_type |= name == "content-type";
            set_header(&mut res, &name, &value);
        }
        if !has_type {
            set_header(&mut res, "content-type", "binary/octet-stream");
        }
        for (param, name) in [
            ("response-content-type", "content-type"),
            ("response-content-language", "content-language"),
            ("response-expires", "expires"),
            ("response-cache-control", "cache-control"),
            ("response-content-disposition", "content-disposition"),
            ("response-content-encoding", "content-encoding"),
        ] {
            if let Some(v) = self.req.param(param) {
                set_header(&mut res, name, v);
            }
        }
        Ok(res)
    }

    async fn delete_object(&mut self) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let bucket = self.bucket().await?;
        self.allow(
            "s3:DeleteObject",
            &self.req.object_arn(),
            &bucket,
            Vec::new(),
        )
        .await?;
        let deleted = self
            .store()
            .delete_object(&self.req.bucket, &self.req.key)
            .await
            .map_err(internal)?;
        self.forget(&self.req.key);
        if let Some(blob) = deleted {
            self.blobs().remove(&[blob]).await;
        }
        Ok(empty(StatusCode::NO_CONTENT))
    }

    async fn delete_objects(&mut self, body: Body) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        let body = read_document(body).await?;
        let (keys, quiet) = s3::xml::delete_objects(&body).map_err(|_| malformed_xml())?;
        if keys.len() > 1000 {
            return Err(malformed_xml());
        }
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for key in keys {
            let arn = format!("arn:aws:s3:::{}/{key}", self.req.bucket);
            if let Err(e) = self
                .allow("s3:DeleteObject", &arn, &bucket, Vec::new())
                .await
            {
                errors.push((key, e));
                continue;
            }
            let outcome = self.store().delete_object(&self.req.bucket, &key).await;
            self.forget(&key);
            match outcome {
                Ok(blob) => {
                    if let Some(blob) = blob {
                        self.blobs().remove(&[blob]).await;
                    }
                    deleted.push(key);
                }
                Err(e) => errors.push((key, internal(e))),
            }
        }
        Ok(xml_response(StatusCode::OK, "DeleteResult", |w| {
            if !quiet {
                for key in &deleted {
                    w.nest("Deleted", |w| {
                        w.element("Key", key);
                    });
                }
            }
            for (key, e) in &errors {
                w.nest("Error", |w| {
                    w.element("Key", key);
                    w.element("Code", &e.code);
                    w.element("Message", &e.message);
                });
            }
        }))
    }

    /// Streams the request body into a new file, decoding aws-chunked and verifying every
    /// digest the request declares: the payload hash it signed, chunk signatures,
    /// `Content-MD5` and an `x-amz-checksum-*`.
    async fn receive(&self, body: Body) -> Result<Received, ApiError> {
        let chunked = self.hash.starts_with("STREAMING-")
            || self
                .req
                .header("content-encoding")
                .is_some_and(|e| e.split(',').any(|p| p.trim() == "aws-chunked"));
        let signed_chunks = matches!(
            self.hash.as_str(),
            sigv4::STREAMING_PAYLOAD | "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
        );
        if self.hash.starts_with("STREAMING-")
            && !signed_chunks
            && self.hash != "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        {
            return Err(not_implemented());
        }
        let mut decoder = if chunked {
            let verifier = if signed_chunks {
                let (Some(presented), Some(key)) = (
                    self.ctx.presented,
                    self.caller.and_then(|c| c.signing_key.clone()),
                ) else {
                    return Err(err(
                        StatusCode::FORBIDDEN,
                        "AccessDenied",
                        "Signed chunks need a signed request",
                    ));
                };
                Some(ChunkVerifier::new(presented, key))
            } else {
                None
            };
            // Only the trailing headers the request declared (and signed, in `x-amz-trailer`).
            let declared: Vec<&str> = match self.req.header("x-amz-trailer") {
                Some(names) if self.hash.ends_with("-TRAILER") => names.split(',').collect(),
                _ => Vec::new(),
            };
            Some(ChunkedDecoder::new(verifier).declared(&declared))
        } else {
            None
        };
        let checksum = requested_checksum(self.req.headers)?;
        let expected_md5 = content_md5(self.req.headers)?;
        let verify_sha = self.hash.len() == 64 && self.hash.bytes().all(|b| b.is_ascii_hexdigit());
        let mut writer = self
            .blobs()
            .create(verify_sha, checksum.as_ref().map(|(a, _)| *a))
            .await
            .map_err(internal)?;
        let incomplete = || {
            err(
                StatusCode::BAD_REQUEST,
                "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length HTTP header.",
            )
        };
        let too_large = || {
            err(
                StatusCode::BAD_REQUEST,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
            )
        };
        let mut body = body;
        let mut pieces = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                if crate::listener::stalled(&e) {
                    crate::edge::request_timeout()
                } else {
                    incomplete()
                }
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            match decoder.as_mut() {
                Some(d) => {
                    d.feed(data, &mut pieces)
                        .map_err(|e| chunk_error(e, incomplete()))?;
                    for piece in pieces.drain(..) {
                        writer.write(&piece).await.map_err(internal)?;
                    }
                }
                None => writer.write(&data).await.map_err(internal)?,
            }
            if writer.size() > s3::MAX_PUT_SIZE {
                return Err(too_large());
            }
        }
        let trailers = match decoder {
            Some(d) => d.finish().map_err(|e| chunk_error(e, incomplete()))?,
            None => Vec::new(),
        };
        if chunked
            && let Some(declared) = self.req.header("x-amz-decoded-content-length")
            && declared.parse::<u64>().ok() != Some(writer.size())
        {
            return Err(incomplete());
        }
        let finished = writer.finish().await.map_err(internal)?;
        let digests = &finished.digests;
        if verify_sha && digests.sha256.map(hex::encode).as_deref() != Some(self.hash.as_str()) {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
        if let Some(md5) = expected_md5
            && md5 != digests.md5
        {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "BadDigest",
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
        let computed = digests.checksum.clone();
        if let Some((algorithm, expected)) = checksum {
            let expected = expected.or_else(|| {
                trailers
                    .iter()
                    .find(|(n, _)| n == algorithm.header())
                    .map(|(_, v)| v.clone())
            });
            let actual = computed.as_ref().map(|(_, v)| v.as_str());
            if let Some(expected) = expected
                && Some(expected.as_str()) != actual
            {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "BadDigest",
                    format!(
                        "The {} you specified did not match the calculated checksum.",
                        algorithm.name()
                    ),
                ));
            }
        }
        Ok(Received {
            finished,
            checksum: computed,
        })
    }

    async fn put_object(&mut self, body: Body) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let bucket = self.bucket().await?;
        self.allow("s3:PutObject", &self.req.object_arn(), &bucket, Vec::new())
            .await?;
        let headers = stored_headers(self.req.headers)?;
        let received = self.receive(body).await?;
        let etag = s3::etag(&received.finished.digests.md5);
        let size = received.finished.digests.size;
        let blob = received
            .finished
            .persist(self.blobs())
            .await
            .map_err(internal)?;
        let row = ObjectRow {
            bucket: self.req.bucket.clone(),
            key: self.req.key.clone(),
            blob: blob.clone(),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            etag: etag.clone(),
            last_modified: self.now_millis(),
            headers: encode_headers(&headers),
        };
        self.commit_object(&row).await?;
        let mut res = empty(StatusCode::OK);
        set_header(&mut res, "etag", &etag);
        if let Some((algorithm, value)) = &received.checksum {
            set_header(&mut res, algorithm.header(), value);
        }
        Ok(res)
    }

    /// Puts an object row whose file is in place, deleting the file it replaced (or, when
    /// the bucket vanished meanwhile, its own).
    async fn commit_object(&self, row: &ObjectRow) -> Result<(), ApiError> {
        let stored = self.store().put_object(row).await;
        self.forget(&row.key);
        match stored {
            Ok(Some(replaced)) => {
                if let Some(old) = replaced {
                    self.blobs().remove(&[old]).await;
                }
                Ok(())
            }
            Ok(None) => {
                self.blobs().remove(std::slice::from_ref(&row.blob)).await;
                Err(no_such_bucket())
            }
            Err(e) => {
                self.blobs().remove(std::slice::from_ref(&row.blob)).await;
                Err(internal(e))
            }
        }
    }

    async fn copy_object(&mut self) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let source = self.req.header("x-amz-copy-source").unwrap_or("");
        let source = source.split_once('?').map_or(source, |(s, _)| s);
        let source = percent_decode_str(source.trim_start_matches('/'))
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| invalid_argument("Invalid copy source encoding"))?;
        let Some((src_bucket, src_key)) = source
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        else {
            return Err(invalid_argument("Invalid copy source object key"));
        };
        let (src_bucket, src_key) = (src_bucket.to_owned(), src_key.to_owned());
        let bucket = self.bucket().await?;
        let source_bucket = bucket_named(self.ctx.state, &src_bucket).await?;
        expect_owner(
            self.req.header("x-amz-source-expected-bucket-owner"),
            &source_bucket,
        )?;
        self.allow(
            "s3:GetObject",
            &format!("arn:aws:s3:::{src_bucket}/{src_key}"),
            &source_bucket,
            Vec::new(),
        )
        .await?;
        self.allow("s3:PutObject", &self.req.object_arn(), &bucket, Vec::new())
            .await?;
        let replace = match self.req.header("x-amz-metadata-directive") {
            None | Some("COPY") => false,
            Some("REPLACE") => true,
            Some(_) => return Err(invalid_argument("Unknown metadata directive.")),
        };
        let Some(row) = self
            .store()
            .object(&src_bucket, &src_key)
            .await
            .map_err(internal)?
        else {
            // A missing source is NoSuchKey only to those who may list its bucket.
            self.allow(
                "s3:ListBucket",
                &format!("arn:aws:s3:::{src_bucket}"),
                &source_bucket,
                Vec::new(),
            )
            .await?;
            return Err(no_such_key());
        };
        if src_bucket == self.req.bucket && src_key == self.req.key && !replace {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
            ));
        }
        if let Some(list) = self.req.header("x-amz-copy-source-if-match")
            && !etag_matches(list, &row.etag)
        {
            return Err(err(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            ));
        }
        if let Some(list) = self.req.header("x-amz-copy-source-if-none-match")
            && etag_matches(list, &row.etag)
        {
            return Err(err(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            ));
        }
        let headers = if replace {
            encode_headers(&stored_headers(self.req.headers)?)
        } else {
            row.headers.clone()
        };
        let mut writer = self.blobs().create(false, None).await.map_err(internal)?;
        writer
            .append_blob(self.blobs(), &row.blob)
            .await
            .map_err(internal)?;
        let finished = writer.finish().await.map_err(internal)?;
        let blob = finished.persist(self.blobs()).await.map_err(internal)?;
        let new = ObjectRow {
            bucket: self.req.bucket.clone(),
            key: self.req.key.clone(),
            blob,
            size: row.size,
            etag: row.etag.clone(),
            last_modified: self.now_millis(),
            headers,
        };
        self.commit_object(&new).await?;
        Ok(xml_response(StatusCode::OK, "CopyObjectResult", |w| {
            w.element("LastModified", &iso8601(new.last_modified));
            w.element("ETag", &new.etag);
        }))
    }

    async fn create_upload(&mut self) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let bucket = self.bucket().await?;
        self.allow("s3:PutObject", &self.req.object_arn(), &bucket, Vec::new())
            .await?;
        let headers = stored_headers(self.req.headers)?;
        let mut id = [0u8; 32];
        ring::rand::SecureRandom::fill(&self.ctx.state.rng, &mut id)
            .map_err(|_| ApiError::internal())?;
        let upload_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id);
        let initiator = match self.caller {
            Some(c) => c.principal.arn(),
            None => "anonymous".to_owned(),
        };
        let row = UploadRow {
            upload_id: upload_id.clone(),
            bucket: self.req.bucket.clone(),
            key: self.req.key.clone(),
            initiator,
            initiated: self.now_millis(),
            headers: encode_headers(&headers),
        };
        if !self.store().create_upload(&row).await.map_err(internal)? {
            return Err(no_such_bucket());
        }
        let (b, k) = (self.req.bucket.clone(), self.req.key.clone());
        Ok(xml_response(
            StatusCode::OK,
            "InitiateMultipartUploadResult",
            |w| {
                w.element("Bucket", &b);
                w.element("Key", &k);
                w.element("UploadId", &upload_id);
            },
        ))
    }

    /// The upload named by `uploadId`, which must be for this bucket and key.
    async fn upload_row(&self) -> Result<UploadRow, ApiError> {
        let id = self.req.param("uploadId").unwrap_or("");
        match self.store().upload(id).await.map_err(internal)? {
            Some(u) if u.bucket == self.req.bucket && u.key == self.req.key => Ok(u),
            _ => Err(no_such_upload()),
        }
    }

    async fn upload_part(&mut self, body: Body) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let part_number = self
            .req
            .param("partNumber")
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| (1..=s3::MAX_PART_NUMBER).contains(n))
            .ok_or_else(|| {
                invalid_argument("Part number must be an integer between 1 and 10000, inclusive")
            })?;
        let bucket = self.bucket().await?;
        self.allow("s3:PutObject", &self.req.object_arn(), &bucket, Vec::new())
            .await?;
        let upload = self.upload_row().await?;
        let received = self.receive(body).await?;
        let etag = s3::etag(&received.finished.digests.md5);
        let size = received.finished.digests.size;
        let blob = received
            .finished
            .persist(self.blobs())
            .await
            .map_err(internal)?;
        let row = PartRow {
            upload_id: upload.upload_id,
            part_number,
            blob: blob.clone(),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            etag: etag.clone(),
            last_modified: self.now_millis(),
        };
        match self.store().put_part(&row).await {
            Ok(Some(replaced)) => {
                if let Some(old) = replaced {
                    self.blobs().remove(&[old]).await;
                }
            }
            Ok(None) => {
                self.blobs().remove(&[blob]).await;
                return Err(no_such_upload());
            }
            Err(e) => {
                self.blobs().remove(&[blob]).await;
                return Err(internal(e));
            }
        }
        let mut res = empty(StatusCode::OK);
        set_header(&mut res, "etag", &etag);
        if let Some((algorithm, value)) = &received.checksum {
            set_header(&mut res, algorithm.header(), value);
        }
        Ok(res)
    }

    async fn complete_upload(&mut self, body: Body) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let bucket = self.bucket().await?;
        self.allow("s3:PutObject", &self.req.object_arn(), &bucket, Vec::new())
            .await?;
        let upload = self.upload_row().await?;
        let body = read_document(body).await?;
        let requested = s3::xml::complete_multipart(&body).map_err(|_| malformed_xml())?;
        if requested
            .windows(2)
            .any(|w| matches!(w, [a, b] if a.0 >= b.0))
        {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "InvalidPartOrder",
                "The list of parts was not in ascending order. Parts must be ordered by part number.",
            ));
        }
        let stored = self
            .store()
            .list_parts(&upload.upload_id, 0, s3::MAX_PART_NUMBER)
            .await
            .map_err(internal)?;
        let invalid_part = || {
            err(
                StatusCode::BAD_REQUEST,
                "InvalidPart",
                "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
            )
        };
        let mut chosen = Vec::with_capacity(requested.len());
        for (number, etag) in &requested {
            let part = stored
                .iter()
                .find(|p| p.part_number == *number)
                .ok_or_else(invalid_part)?;
            if etag.trim_matches('"') != part.etag.trim_matches('"') {
                return Err(invalid_part());
            }
            chosen.push(part);
        }
        if let Some((_, init)) = chosen.split_last()
            && init
                .iter()
                .any(|p| u64::try_from(p.size).unwrap_or(0) < s3::MIN_PART_SIZE)
        {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.",
            ));
        }
        let mut md5s = Vec::with_capacity(chosen.len());
        let mut writer = self.blobs().create(false, None).await.map_err(internal)?;
        for part in &chosen {
            md5s.push(s3::etag_md5(&part.etag).ok_or_else(invalid_part)?);
            writer
                .append_blob(self.blobs(), &part.blob)
                .await
                .map_err(internal)?;
        }
        let finished = writer.finish().await.map_err(internal)?;
        let size = finished.digests.size;
        let blob = finished.persist(self.blobs()).await.map_err(internal)?;
        let etag = s3::multipart_etag(&md5s);
        let row = ObjectRow {
            bucket: self.req.bucket.clone(),
            key: self.req.key.clone(),
            blob: blob.clone(),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            etag: etag.clone(),
            last_modified: self.now_millis(),
            headers: upload.headers.clone(),
        };
        let completed = self.store().complete_upload(&upload.upload_id, &row).await;
        self.forget(&row.key);
        match completed {
            Ok(Some(unreferenced)) => self.blobs().remove(&unreferenced).await,
            Ok(None) => {
                self.blobs().remove(&[blob]).await;
                return Err(no_such_upload());
            }
            Err(e) => {
                self.blobs().remove(&[blob]).await;
                return Err(internal(e));
            }
        }
        let (b, k) = (self.req.bucket.clone(), self.req.key.clone());
        let location = format!("/{b}/{}", utf8_percent_encode(&k, KEY_ENCODE));
        Ok(xml_response(
            StatusCode::OK,
            "CompleteMultipartUploadResult",
            |w| {
                w.element("Location", &location);
                w.element("Bucket", &b);
                w.element("Key", &k);
                w.element("ETag", &etag);
            },
        ))
    }

    async fn abort_upload(&mut self) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let bucket = self.bucket().await?;
        self.allow(
            "s3:AbortMultipartUpload",
            &self.req.object_arn(),
            &bucket,
            Vec::new(),
        )
        .await?;
        let upload = self.upload_row().await?;
        match self
            .store()
            .abort_upload(&upload.upload_id)
            .await
            .map_err(internal)?
        {
            Some(blobs) => self.blobs().remove(&blobs).await,
            None => return Err(no_such_upload()),
        }
        Ok(empty(StatusCode::NO_CONTENT))
    }

    async fn list_parts(&mut self) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let bucket = self.bucket().await?;
        self.allow(
            "s3:ListMultipartUploadParts",
            &self.req.object_arn(),
            &bucket,
            Vec::new(),
        )
        .await?;
        let upload = self.upload_row().await?;
        let max = self
            .req
            .param("max-parts")
            .map(|v| v.parse::<i64>().ok().filter(|n| *n >= 0))
            .unwrap_or(Some(1000))
            .ok_or_else(|| {
                invalid_argument("Provided max-parts not an integer or within integer range")
            })?
            .min(1000);
        let marker = self
            .req
            .param("part-number-marker")
            .map(|v| v.parse::<i64>().ok().filter(|n| *n >= 0))
            .unwrap_or(Some(0))
            .ok_or_else(|| {
                invalid_argument(
                    "Provided part-number-marker not an integer or within integer range",
                )
            })?;
        let mut parts = self
            .store()
            .list_parts(&upload.upload_id, marker, max + 1)
            .await
            .map_err(internal)?;
        let truncated = parts.len() > usize::try_from(max).unwrap_or(0);
        parts.truncate(usize::try_from(max).unwrap_or(0));
        let owner = canonical_id(&bucket.row.account_id);
        Ok(xml_response(StatusCode::OK, "ListPartsResult", |w| {
            w.element("Bucket", &upload.bucket);
            w.element("Key", &upload.key);
            w.element("UploadId", &upload.upload_id);
            w.element("PartNumberMarker", &marker.to_string());
            if let Some(last) = parts.last() {
                w.element("NextPartNumberMarker", &last.part_number.to_string());
            }
            w.element("MaxParts", &max.to_string());
            w.element("IsTruncated", if truncated { "true" } else { "false" });
            for p in &parts {
                w.nest("Part", |w| {
                    w.element("PartNumber", &p.part_number.to_string());
                    w.element("LastModified", &iso8601(p.last_modified));
                    w.element("ETag", &p.etag);
                    w.element("Size", &p.size.to_string());
                });
            }
            w.nest("Initiator", |w| {
                w.element("ID", &upload.initiator);
                w.element("DisplayName", &upload.initiator);
            });
            w.nest("Owner", |w| {
                w.element("ID", &owner);
                w.element("DisplayName", &bucket.row.account_id);
            });
            w.element("StorageClass", "STANDARD");
        }))
    }

    async fn list_uploads(&mut self) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        self.allow(
            "s3:ListBucketMultipartUploads",
            &self.req.bucket_arn(),
            &bucket,
            Vec::new(),
        )
        .await?;
        let prefix = self.req.param("prefix").unwrap_or("").to_owned();
        let max = self
            .req
            .param("max-uploads")
            .map(|v| v.parse::<usize>().ok())
            .unwrap_or(Some(1000))
            .ok_or_else(|| {
                invalid_argument("Provided max-uploads not an integer or within integer range")
            })?
            .min(1000);
        let key_marker = self.req.param("key-marker").unwrap_or("").to_owned();
        let id_marker = self.req.param("upload-id-marker").unwrap_or("").to_owned();
        let mut uploads = Vec::new();
        let mut truncated = false;
        let (mut k, mut u) = (key_marker.clone(), id_marker.clone());
        'outer: loop {
            let batch = self
                .store()
                .list_uploads(&self.req.bucket, &k, &u, 1000)
                .await
                .map_err(internal)?;
            let n = batch.len();
            for row in batch {
                k = row.key.clone();
                u = row.upload_id.clone();
                if !row.key.starts_with(&prefix) {
                    continue;
                }
                if uploads.len() >= max {
                    truncated = true;
                    break 'outer;
                }
                uploads.push(row);
            }
            if n < 1000 {
                break;
            }
        }
        let owner = canonical_id(&bucket.row.account_id);
        let name = self.req.bucket.clone();
        Ok(xml_response(
            StatusCode::OK,
            "ListMultipartUploadsResult",
            |w| {
                w.element("Bucket", &name);
                w.element("KeyMarker", &key_marker);
                w.element("UploadIdMarker", &id_marker);
                if let Some(last) = uploads.last() {
                    w.element("NextKeyMarker", &last.key);
                    w.element("NextUploadIdMarker", &last.upload_id);
                }
                w.element("Prefix", &prefix);
                w.element("MaxUploads", &max.to_string());
                w.element("IsTruncated", if truncated { "true" } else { "false" });
                for up in &uploads {
                    w.nest("Upload", |w| {
                        w.element("Key", &up.key);
                        w.element("UploadId", &up.upload_id);
                        w.nest("Initiator", |w| {
                            w.element("ID", &up.initiator);
                            w.element("DisplayName", &up.initiator);
                        });
                        w.nest("Owner", |w| {
                            w.element("ID", &owner);
                            w.element("DisplayName", &bucket.row.account_id);
                        });
                        w.element("StorageClass", "STANDARD");
                        w.element("Initiated", &iso8601(up.initiated));
                    });
                }
            },
        ))
    }
}

/// A bucket by name, from the cache or the store; `NoSuchBucket` when there is none.
async fn bucket_named(state: &crate::state::AppState, name: &str) -> Result<Arc<Bucket>, ApiError> {
    if let Some(b) = state.buckets.get(&name.to_owned()) {
        return Ok(b);
    }
    let row = state
        .store
        .bucket(name)
        .await
        .map_err(internal)?
        .ok_or_else(no_such_bucket)?;
    let policy = match &row.policy {
        Some(doc) => Some(Policy::parse(doc, PolicyUse::Resource).map_err(internal)?),
        None => None,
    };
    let bucket = Arc::new(Bucket { row, policy });
    state.buckets.insert(name.to_owned(), bucket.clone());
    Ok(bucket)
}

/// Reads a request document (bucket configuration, policy, key list), refusing large ones.
async fn read_document(body: Body) -> Result<Bytes, ApiError> {
    match http_body_util::Limited::new(body, s3::xml::MAX_DOCUMENT)
        .collect()
        .await
    {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(err(
            StatusCode::BAD_REQUEST,
            "MaxMessageLengthExceeded",
            "Your request was too big.",
        )),
        Err(e) if crate::listener::stalled(&*e) => Err(crate::edge::request_timeout()),
        Err(_) => Err(err(
            StatusCode::BAD_REQUEST,
            "IncompleteBody",
            "The request body could not be read",
        )),
    }
}

/// `len` bytes of an object file from `start`: read at once (one blocking call) when small,
/// streamed otherwise (a large object never sits in memory).
async fn read_object(path: std::path::PathBuf, start: u64, len: u64) -> std::io::Result<Body> {
    if len <= SMALL_OBJECT {
        let buf = tokio::task::spawn_blocking(move || {
            use std::io::{Read as _, Seek as _};
            let mut file = std::fs::File::open(path)?;
            if start > 0 {
                file.seek(std::io::SeekFrom::Start(start))?;
            }
            let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
            file.read_exact(&mut buf)?;
            Ok::<_, std::io::Error>(buf)
        })
        .await
        .map_err(std::io::Error::other)??;
        return Ok(Body::from(buf));
    }
    let mut file = tokio::fs::File::open(path).await?;
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start)).await?;
    }
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), READ_CHUNK);
    Ok(Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ranges_as_s3_reads_them() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-1000", 100).unwrap(), Some((0, 99)));
        assert_eq!(parse_range("bytes=50-1000", 100).unwrap(), Some((50, 99)));
        // Unparseable or multiple ranges: the whole object.
        assert_eq!(parse_range("items=0-1", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=9-1", 100).unwrap(), None);
        assert_eq!(
            parse_range("bytes=100-", 100).unwrap_err().code,
            "InvalidRange"
        );
        assert_eq!(
            parse_range("bytes=0-0", 0).unwrap_err().code,
            "InvalidRange"
        );
    }

    #[test]
    fn successor_bounds_every_extension() {
        assert_eq!(successor("a/").as_deref(), Some("a0"));
        assert_eq!(successor("photos/2024/").as_deref(), Some("photos/20240"));
        let s = successor("x\u{D7FF}").unwrap();
        assert_eq!(s, "x\u{E000}");
        assert_eq!(successor("\u{10FFFF}"), None);
        assert!("a/zzz" < successor("a/").unwrap().as_str());
    }
}
