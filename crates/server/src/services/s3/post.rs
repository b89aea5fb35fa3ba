//! Browser uploads (POST Object): a `multipart/form-data` form whose fields come before its
//! `file`. A signed form is authenticated by its SigV4 signature of its policy document,
//! which must admit every field; the caller it names is then authorized for `s3:PutObject`
//! on the key as any request is. The file is streamed to disk only after that.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use base64::Engine as _;
use cognate_s3::post::{PostPolicy, PostRefusal};
use futures_util::StreamExt as _;

use super::*;

/// The form fields before the file, all together, as S3 limits them.
const MAX_FIELDS_BYTES: u64 = 20 * 1024;
/// What each field counts beyond its name and value (its part's boundary and headers), so
/// that many empty fields are bounded too.
const FIELD_OVERHEAD: u64 = 64;
/// The most of the body read before the file starts: the fields, their part headers, and
/// room for the boundary lines. Past it the form is refused, whatever multer buffers.
const MAX_PREAMBLE_BYTES: u64 = 2 * MAX_FIELDS_BYTES;

fn malformed_post() -> ApiError {
    err(
        StatusCode::BAD_REQUEST,
        "MalformedPOSTRequest",
        "The body of your POST request is not well-formed multipart/form-data.",
    )
}

/// Whether a request is a POST form upload to a bucket.
pub(super) fn is_form_upload(method: &Method, req: &Req<'_>) -> bool {
    *method == Method::POST
        && !req.bucket.is_empty()
        && req.key.is_empty()
        && req.query.is_empty()
        && req
            .header("content-type")
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// Handles one POST Object.
pub(super) async fn post_object(
    ctx: &mut Ctx<'_>,
    req: Req<'_>,
    body: Body,
) -> Result<Response<Body>, ApiError> {
    ctx.outcome.operation = "PostObject".to_owned();
    if ctx.presented.is_some() {
        // A form is authenticated by its own fields; another signature beside them would
        // only confuse what the policy's condition keys describe.
        return Err(err(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "A POST form upload must not also carry an Authorization header or a query-string signature",
        ));
    }
    let boundary = multer::parse_boundary(req.header("content-type").unwrap_or(""))
        .map_err(|_| malformed_post())?;
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .per_field(MAX_FIELDS_BYTES)
            .for_field("file", s3::MAX_PUT_SIZE),
    );
    // Until the file starts, the body may be read only so far: multer buffers a part's
    // headers without bound, and many tiny fields would grow the list.
    let file_started = Arc::new(AtomicBool::new(false));
    let read = Arc::new(AtomicU64::new(0));
    let (started, seen) = (file_started.clone(), read.clone());
    let stream = body.into_data_stream().map(move |chunk| {
        let chunk = chunk?;
        let before = seen.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if !started.load(Ordering::Relaxed) && before > MAX_PREAMBLE_BYTES {
            return Err(axum::Error::new(std::io::Error::other(
                "the fields before the file are too large",
            )));
        }
        Ok(chunk)
    });
    let mut form = multer::Multipart::with_constraints(stream, boundary, constraints);
    let too_much = || {
        err(
            StatusCode::BAD_REQUEST,
            "MaxPostPreDataLengthExceeded",
            "Your POST request fields preceding the upload file were too large.",
        )
    };
    // Fields (names lower-case) up to the file; S3 ignores what follows it.
    let mut fields: Vec<(String, String)> = vec![("bucket".to_owned(), req.bucket.clone())];
    let mut total = 0u64;
    let file = loop {
        let next = form.next_field().await.map_err(|_| {
            if read.load(Ordering::Relaxed) > MAX_PREAMBLE_BYTES {
                too_much()
            } else {
                malformed_post()
            }
        })?;
        let Some(field) = next else {
            return Err(invalid_argument(
                "POST requires exactly one file upload per request.",
            ));
        };
        let name = field.name().unwrap_or("").to_ascii_lowercase();
        if name == "file" {
            file_started.store(true, Ordering::Relaxed);
            break field;
        }
        let value = field.text().await.map_err(|_| too_much())?;
        total += (name.len() + value.len()) as u64 + FIELD_OVERHEAD;
        if total > MAX_FIELDS_BYTES {
            return Err(too_much());
        }
        if name == "bucket" {
            continue;
        }
        // One value per field: the policy checks and the object keeps the same one.
        if fields.iter().any(|(k, _)| *k == name) {
            return Err(invalid_argument(format!(
                "POST form field {name} appears more than once"
            )));
        }
        fields.push((name, value));
    };
    let Some((_, named)) = fields.iter_mut().find(|(k, _)| k == "key") else {
        return Err(invalid_argument(
            "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
        ));
    };
    let key = named.replace("${filename}", file.file_name().unwrap_or(""));
    named.clone_from(&key);
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    // Who sends it: the signer of its policy, or nobody.
    let query = ctx.parts.uri.query().unwrap_or("");
    let request = sigv4::Request {
        method: &ctx.parts.method,
        path: ctx.parts.uri.path(),
        query,
        headers: &ctx.parts.headers,
    };
    let presented = if get("x-amz-signature").is_some() {
        Some(sigv4::parse_form(&request, &get))
    } else if get("awsaccesskeyid").is_some() {
        Some(sigv4::v2::parse_form(&request, &get))
    } else {
        None
    };
    let (caller, policy) = if let Some(presented) = presented {
        let Some(policy) = get("policy") else {
            return Err(invalid_argument(
                "Bucket POST must contain a field named 'policy'.",
            ));
        };
        let presented =
            presented.map_err(|e| crate::auth::from_sigv4(e).to_error(Protocol::RestXml))?;
        let version = if presented.legacy.is_some() {
            "AWS"
        } else {
            "AWS4-HMAC-SHA256"
        };
        let caller = ctx.form_caller(&presented, &policy).await?;
        let document = base64::engine::general_purpose::STANDARD
            .decode(policy.trim())
            .map_err(|_| {
                err(
                    StatusCode::BAD_REQUEST,
                    "InvalidPolicyDocument",
                    "Invalid Policy: Invalid Simple-Policy.",
                )
            })?;
        let policy = PostPolicy::parse(&document).map_err(refusal)?;
        policy.admits(&fields, ctx.now).map_err(refusal)?;
        (Some(caller), Some((policy, version)))
    } else {
        (None, None)
    };
    let (policy, form_version) = match policy {
        Some((p, v)) => (Some(p), Some(v)),
        None => (None, None),
    };
    match get("acl").as_deref() {
        None | Some("private" | "bucket-owner-full-control") => {}
        Some(_) => {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "AccessControlListNotSupported",
                "The bucket does not allow ACLs",
            ));
        }
    }
    // The form's fields stand for a PUT's headers: the object keeps the same ones, and
    // those promising a protection are refused or kept as a PUT's are.
    let mut form_headers = HeaderMap::new();
    for (name, value) in &fields {
        let signature = matches!(
            name.as_str(),
            "x-amz-algorithm"
                | "x-amz-credential"
                | "x-amz-date"
                | "x-amz-signature"
                | "x-amz-security-token"
        );
        let keep =
            STORED_HEADERS.contains(&name.as_str()) || (name.starts_with("x-amz-") && !signature);
        if keep
            && let (Ok(n), Ok(v)) = (
                header::HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            )
        {
            form_headers.insert(n, v);
        }
    }
    let s = S3 {
        ctx,
        caller: caller.as_ref(),
        req: Req {
            bucket: req.bucket,
            key,
            query: Vec::new(),
            headers: &form_headers,
        },
        hash: sigv4::UNSIGNED_PAYLOAD.to_owned(),
        form: form_version,
    };
    s.check_key()?;
    refuse_unkept_promises(Op::PutObject, &s.req)?;
    // Tags come as a `Tagging` document in the `tagging` field.
    let tags = match get("tagging") {
        Some(doc) => {
            let set = s3::xml::tagging(doc.as_bytes()).map_err(|_| malformed_xml())?;
            s3::tags::check(&set).map_err(tags_error)?;
            Some(set)
        }
        None => None,
    };
    let keys = tags.as_deref().map(request_tag_keys).unwrap_or_default();
    let bucket = s.bucket().await?;
    s.allow("s3:PutObject", &s.req.object_arn(), &bucket, keys.clone())
        .await?;
    let mut headers = stored_headers(&form_headers)?;
    if let Some(set) = &tags {
        s.allow("s3:PutObjectTagging", &s.req.object_arn(), &bucket, keys)
            .await?;
        set_tags(&mut headers, set);
    }
    let limit = policy
        .as_ref()
        .and_then(PostPolicy::length_range)
        .map_or(s3::MAX_PUT_SIZE, |(_, max)| max.min(s3::MAX_PUT_SIZE));
    let mut writer = s
        .blobs()
        .create(false, Some(ChecksumAlgorithm::DEFAULT))
        .await
        .map_err(internal)?;
    let too_large = || {
        err(
            StatusCode::BAD_REQUEST,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
        )
    };
    let mut file = file;
    while let Some(chunk) = file.chunk().await.map_err(|_| malformed_post())? {
        writer.write(&chunk).await.map_err(internal)?;
        if writer.size() > limit {
            return Err(too_large());
        }
    }
    if let Some((min, _)) = policy.as_ref().and_then(PostPolicy::length_range)
        && writer.size() < min
    {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed size",
        ));
    }
    let finished = writer.finish().await.map_err(internal)?;
    if let Some((algorithm, value)) = &finished.digests.checksum {
        set_checksum(&mut headers, *algorithm, value, "FULL_OBJECT");
    }
    let etag = s3::etag(&finished.digests.md5);
    let size = finished.digests.size;
    let blob = finished.persist(s.blobs()).await.map_err(internal)?;
    let row = ObjectRow {
        bucket: s.req.bucket.clone(),
        key: s.req.key.clone(),
        blob,
        size: i64::try_from(size).unwrap_or(i64::MAX),
        etag: etag.clone(),
        last_modified: s.now_millis(),
        headers: encode_headers(&headers),
        version_id: fresh_version_id(&s.ctx.state.rng)?,
    };
    let written = s.commit_object(&row).await?;
    let location = format!(
        "{}/{}/{}",
        s.ctx.state.public_url().trim_end_matches('/'),
        row.bucket,
        utf8_percent_encode(&row.key, KEY_ENCODE)
    );
    let redirect = get("success_action_redirect").or_else(|| get("redirect"));
    let mut res = if let Some(to) =
        redirect.filter(|r| r.starts_with("http://") || r.starts_with("https://"))
    {
        let sep = if to.contains('?') { '&' } else { '?' };
        let target = form_urlencoded::Serializer::new(String::new())
            .append_pair("bucket", &row.bucket)
            .append_pair("key", &row.key)
            .append_pair("etag", &etag)
            .finish();
        let mut res = empty(StatusCode::SEE_OTHER);
        set_header(&mut res, "location", &format!("{to}{sep}{target}"));
        res
    } else {
        match get("success_action_status").as_deref() {
            Some("200") => empty(StatusCode::OK),
            Some("201") => xml_response(StatusCode::CREATED, "PostResponse", |w| {
                w.element("Location", &location);
                w.element("Bucket", &row.bucket);
                w.element("Key", &row.key);
                w.element("ETag", &etag);
            }),
            _ => {
                let mut res = empty(StatusCode::NO_CONTENT);
                set_header(&mut res, "location", &location);
                res
            }
        }
    };
    set_header(&mut res, "etag", &etag);
    if let Some(id) = &written.version_id {
        set_header(&mut res, "x-amz-version-id", id);
    }
    Ok(res)
}

fn refusal(r: PostRefusal) -> ApiError {
    match r {
        PostRefusal::Malformed(m) => err(StatusCode::BAD_REQUEST, "InvalidPolicyDocument", m),
        PostRefusal::Denied(m) => err(StatusCode::FORBIDDEN, "AccessDenied", m),
    }
}
