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
use cognate_store::{
    BucketDeletion, BucketRow, ObjectRow, PartRow, Store, UploadRow, Version, Written,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::auth::Caller;
use crate::authz::{self, ResourcePolicy};
use crate::bootstrap::StartError;
use crate::config::Config;
use crate::context::Ctx;
use crate::state::Bucket;

mod authorize;
mod buckets;
mod copy;
mod cors;
mod errors;
mod listing;
mod multipart;
mod objects;
mod post;
mod tagging;
mod versions;
mod wire;

use authorize::*;
pub use cors::{decorate, preflight};
use errors::*;
use listing::*;
use tagging::*;
use versions::*;
use wire::*;

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

/// Query parameters that name no sub-resource: listing options, multipart ids, presigning.
const PLAIN_PARAMS: [&str; 24] = [
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
    "version-id-marker",
    "bucket-region",
    "max-buckets",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
];
/// Sub-resources this service answers; any other is `NotImplemented`.
const SUBRESOURCES: [&str; 8] = [
    "location",
    "policy",
    "uploads",
    "delete",
    "cors",
    "versioning",
    "versions",
    "tagging",
];

/// S3's operations, generated from its model; `operation` yields only those implemented here.
type Op = services::s3::Operation;

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
        } else if req.has("cors") {
            match *method {
                Method::GET => Op::GetBucketCors,
                Method::PUT => Op::PutBucketCors,
                Method::DELETE => Op::DeleteBucketCors,
                _ => return Err(not_allowed()),
            }
        } else if req.has("tagging") {
            match *method {
                Method::GET => Op::GetBucketTagging,
                Method::PUT => Op::PutBucketTagging,
                Method::DELETE => Op::DeleteBucketTagging,
                _ => return Err(not_allowed()),
            }
        } else if req.has("versioning") {
            match *method {
                Method::GET => Op::GetBucketVersioning,
                Method::PUT => Op::PutBucketVersioning,
                _ => return Err(not_allowed()),
            }
        } else if req.has("versions") {
            match *method {
                Method::GET => Op::ListObjectVersions,
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
    if SUBRESOURCES
        .iter()
        .any(|s| !matches!(*s, "uploads" | "tagging") && req.has(s))
    {
        return Err(not_implemented());
    }
    if req.has("tagging") {
        return match *method {
            Method::GET => Ok(Op::GetObjectTagging),
            Method::PUT => Ok(Op::PutObjectTagging),
            Method::DELETE => Ok(Op::DeleteObjectTagging),
            _ => Err(not_allowed()),
        };
    }
    Ok(match *method {
        Method::PUT if req.has("uploadId") || req.has("partNumber") => {
            if req.header("x-amz-copy-source").is_some() {
                Op::UploadPartCopy
            } else {
                Op::UploadPart
            }
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

/// The bucket and key a request addresses, and whether the bucket came from the Host
/// (virtual-hosted style: `<bucket>.<--s3-domain>`, the key the whole path) or the path.
fn address(
    state: &crate::state::AppState,
    parts: &http::request::Parts,
) -> Result<(String, String, bool), ApiError> {
    if let Some(bucket) = state
        .s3_domain
        .as_deref()
        .and_then(|domain| virtual_bucket(host_of(parts)?, domain))
    {
        let path = parts.uri.path();
        let key = percent_decode_str(path.strip_prefix('/').unwrap_or(path))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| invalid_uri())?;
        return Ok((bucket, key, true));
    }
    let (bucket, key) = split_path(parts.uri.path())?;
    Ok((bucket, key, false))
}

/// The request's host name, without its port.
fn host_of(parts: &http::request::Parts) -> Option<&str> {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host())?;
    Some(match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    })
}

/// The bucket a host names under `domain` (`photos.s3.example.com` under `s3.example.com`).
fn virtual_bucket(host: &str, domain: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    let bucket = host.strip_suffix(domain)?.strip_suffix('.')?;
    (!bucket.is_empty()).then(|| bucket.to_owned())
}

fn invalid_uri() -> ApiError {
    err(
        StatusCode::BAD_REQUEST,
        "InvalidURI",
        "Couldn't parse the specified URI.",
    )
}

/// Splits a path-style path into bucket and (decoded) key.
fn split_path(path: &str) -> Result<(String, String), ApiError> {
    let rest = path.strip_prefix('/').unwrap_or(path);
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let decode = |s: &str| {
        percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| invalid_uri())
    };
    Ok((decode(bucket)?, decode(key)?))
}

/// The payload hash the signature covers, as the edge computes it for S3.
fn payload_hash(ctx: &Ctx<'_>) -> String {
    match ctx.presented.map(|p| (p.location, p.legacy.is_some())) {
        // SigV2 signs no payload hash.
        Some((sigv4::Location::Header, false)) => ctx
            .presented
            .and_then(|p| p.content_sha256.clone())
            .unwrap_or_else(|| sigv4::EMPTY_SHA256.to_owned()),
        _ => sigv4::UNSIGNED_PAYLOAD.to_owned(),
    }
}

/// Handles one S3 request.
pub async fn handle(ctx: &mut Ctx<'_>, body: Body) -> Result<Response<Body>, ApiError> {
    ctx.outcome.service = services::s3::SIGNING_NAME;
    let (bucket, key, virtual_host) = address(ctx.state, ctx.parts)?;
    if virtual_host {
        // SigV2 signs the resource as path style names it.
        ctx.v2_path = Some(format!("/{bucket}{}", ctx.parts.uri.path()));
    }
    let query = form_urlencoded::parse(ctx.parts.uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let req = Req {
        bucket,
        key,
        query,
        headers: &ctx.parts.headers,
    };
    if post::is_form_upload(&ctx.parts.method, &req) {
        return post::post_object(ctx, req, body).await;
    }
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
        form: None,
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
        Op::GetBucketCors => s.get_bucket_cors().await,
        Op::PutBucketCors => s.put_bucket_cors(body).await,
        Op::DeleteBucketCors => s.delete_bucket_cors().await,
        Op::GetBucketTagging => s.get_bucket_tagging().await,
        Op::PutBucketTagging => s.put_bucket_tagging(Some(body)).await,
        Op::DeleteBucketTagging => s.put_bucket_tagging(None).await,
        Op::GetObjectTagging => s.get_object_tagging().await,
        Op::PutObjectTagging => s.put_object_tagging(body).await,
        Op::DeleteObjectTagging => s.delete_object_tagging().await,
        Op::GetBucketVersioning => s.get_bucket_versioning().await,
        Op::PutBucketVersioning => s.put_bucket_versioning(body).await,
        Op::ListObjectVersions => s.list_object_versions().await,
        Op::ListObjects => s.list_objects(false).await,
        Op::ListObjectsV2 => s.list_objects(true).await,
        Op::ListMultipartUploads => s.list_uploads().await,
        Op::DeleteObjects => s.delete_objects(body).await,
        Op::PutObject => s.put_object(body).await,
        Op::CopyObject => s.copy_object().await,
        Op::UploadPart => s.upload_part(body).await,
        Op::UploadPartCopy => s.upload_part_copy().await,
        Op::GetObject => s.get_object(false).await,
        Op::HeadObject => s.get_object(true).await,
        Op::DeleteObject => s.delete_object().await,
        Op::CreateMultipartUpload => s.create_upload().await,
        Op::CompleteMultipartUpload => s.complete_upload(body).await,
        Op::AbortMultipartUpload => s.abort_upload().await,
        Op::ListParts => s.list_parts().await,
        _ => Err(not_implemented()),
    }
}

struct S3<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    caller: Option<&'c Caller>,
    req: Req<'c>,
    hash: String,
    /// A POST form's signature version (`AWS4-HMAC-SHA256` or `AWS`), when it was signed.
    form: Option<&'static str>,
}

/// A bucket by name, from the cache or the store; `NoSuchBucket` when there is none.
async fn bucket_named(state: &crate::state::AppState, name: &str) -> Result<Arc<Bucket>, ApiError> {
    if let Some(b) = state.buckets.get(&name.to_owned()) {
        return Ok(b);
    }
    let ticket = state.buckets.ticket();
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
    // A stored configuration that no longer parses fails closed: no CORS rule applies
    // silently, the request fails and the log says why.
    let cors = match &row.cors {
        Some(doc) => Some(s3::cors::parse(doc.as_bytes()).map_err(|e| internal(format!("{e:?}")))?),
        None => None,
    };
    let bucket = Arc::new(Bucket { row, policy, cors });
    state
        .buckets
        .insert(ticket, name.to_owned(), bucket.clone());
    Ok(bucket)
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn virtual_hosts_name_buckets_under_the_domain_only() {
        let d = "s3.example.com";
        assert_eq!(
            virtual_bucket("photos.s3.example.com", d).as_deref(),
            Some("photos")
        );
        assert_eq!(
            virtual_bucket("My.Logs.S3.Example.com", d).as_deref(),
            Some("my.logs")
        );
        for host in [
            "s3.example.com",
            ".s3.example.com",
            "photos-s3.example.com",
            "example.com",
        ] {
            assert_eq!(virtual_bucket(host, d), None, "{host}");
        }
        let parts = |host: &str| {
            http::Request::get("/a/b")
                .header("host", host)
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        assert_eq!(host_of(&parts("b.localhost:4566")), Some("b.localhost"));
        assert_eq!(host_of(&parts("b.localhost")), Some("b.localhost"));
    }
}
