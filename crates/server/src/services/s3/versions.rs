//! Versioning: a bucket's state, version ids, and ListObjectVersions.

use cognate_store::VersionEntry;

use super::*;

/// A new version id: 24 random bytes in URL-safe base64, 32 characters as S3's are.
pub(super) fn fresh_version_id(rng: &ring::rand::SystemRandom) -> Result<String, ApiError> {
    let mut id = [0u8; 24];
    ring::rand::SecureRandom::fill(rng, &mut id).map_err(|_| ApiError::internal())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id))
}

/// A version id a request names: `null` or one of ours; anything else is `InvalidArgument`,
/// as S3 answers an id it could not have made.
pub(super) fn check_version_id(id: &str) -> Result<(), ApiError> {
    let ours = id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if id == "null" || ours {
        return Ok(());
    }
    Err(invalid_argument("Invalid version id specified")
        .with_detail("ArgumentName", "versionId")
        .with_detail("ArgumentValue", id))
}

pub(super) fn no_such_version(key: &str, version_id: &str) -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "NoSuchVersion",
        "The specified version does not exist.",
    )
    .with_detail("Key", key)
    .with_detail("VersionId", version_id)
}

/// S3's answer to a GET or HEAD of a delete marker: 404 when it is the latest version (no
/// id asked for), 405 when asked for by id; either way the headers say what it is.
pub(super) fn delete_marker_error(by_id: bool, version_id: &str, last_modified: i64) -> ApiError {
    let e = if by_id {
        err(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )
        .with_detail("Method", "GET")
        .with_detail("ResourceType", "DeleteMarker")
    } else {
        no_such_key()
    };
    e.with_header("x-amz-delete-marker", "true")
        .with_header("x-amz-version-id", version_id)
        .with_header("last-modified", http_date(last_modified))
}

/// One page of ListObjectVersions: versions and delete markers, and common prefixes.
struct VersionListing {
    entries: Vec<VersionEntry>,
    prefixes: Vec<String>,
    truncated: bool,
    /// Where the next page starts: a key (or common prefix) and, after a version, its id.
    next: Option<(String, Option<String>)>,
}

/// Lists versions as S3 does: keys under `prefix` from `(key, seq)` on (exclusive), newest
/// first within a key, keys containing `delimiter` past the prefix rolled up.
async fn list_versions(
    store: &Store,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    start: (String, i64),
    max: usize,
) -> Result<VersionListing, ApiError> {
    let mut out = VersionListing {
        entries: Vec::new(),
        prefixes: Vec::new(),
        truncated: false,
        next: None,
    };
    if max == 0 {
        return Ok(out);
    }
    let (mut key, mut seq) = start;
    const BATCH: i64 = 1000;
    'pages: loop {
        let rows = store
            .list_versions(bucket, &key, seq, BATCH)
            .await
            .map_err(internal)?;
        let fetched = rows.len();
        for e in rows {
            let Some(rest) = e.key.strip_prefix(prefix) else {
                break 'pages;
            };
            let common = delimiter
                .and_then(|d| rest.find(d).map(|at| (d, at)))
                .map(|(d, at)| format!("{prefix}{}", rest.get(..at + d.len()).unwrap_or(rest)));
            if out.entries.len() + out.prefixes.len() >= max {
                out.truncated = true;
                break 'pages;
            }
            match common {
                Some(common) => {
                    out.next = Some((common.clone(), None));
                    out.prefixes.push(common.clone());
                    // Everything under the prefix is rolled into it: go on past it.
                    match successor(&common) {
                        Some(after) => (key, seq) = (after, i64::MAX),
                        None => break 'pages,
                    }
                    continue 'pages;
                }
                None => {
                    (key, seq) = (e.key.clone(), e.seq);
                    out.next = Some((e.key.clone(), Some(e.version_id.clone())));
                    out.entries.push(e);
                }
            }
        }
        if fetched < BATCH as usize {
            break;
        }
    }
    Ok(out)
}

impl S3<'_, '_> {
    pub(super) async fn get_bucket_versioning(&mut self) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        self.allow(
            "s3:GetBucketVersioning",
            &self.req.bucket_arn(),
            &bucket,
            Vec::new(),
        )
        .await?;
        let status = bucket.row.versioning.clone();
        Ok(xml_response(
            StatusCode::OK,
            "VersioningConfiguration",
            |w| {
                if let Some(s) = &status {
                    w.element("Status", s);
                }
            },
        ))
    }

    pub(super) async fn put_bucket_versioning(
        &mut self,
        body: Body,
    ) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        self.allow(
            "s3:PutBucketVersioning",
            &self.req.bucket_arn(),
            &bucket,
            Vec::new(),
        )
        .await?;
        let body = read_document(body).await?;
        let (status, mfa_delete) = s3::xml::versioning(&body).map_err(|_| malformed_xml())?;
        if let Some(mfa_delete) = mfa_delete {
            // S3 takes MfaDelete only with the `x-amz-mfa` device and code.
            if self.req.header("x-amz-mfa").is_none() {
                return Err(malformed_xml());
            }
            if mfa_delete == "Enabled" {
                return Err(err(
                    StatusCode::NOT_IMPLEMENTED,
                    "NotImplemented",
                    "MFA delete is not implemented",
                ));
            }
            if mfa_delete != "Disabled" {
                return Err(malformed_xml());
            }
        }
        let status = match status.as_deref() {
            Some(s @ ("Enabled" | "Suspended")) => s.to_owned(),
            _ => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "IllegalVersioningConfigurationException",
                    "The versioning configuration specified in the request is invalid.",
                ));
            }
        };
        if !self
            .store()
            .set_bucket_versioning(&self.req.bucket, &status)
            .await
            .map_err(internal)?
        {
            return Err(no_such_bucket());
        }
        self.ctx.state.changed().await;
        Ok(empty(StatusCode::OK))
    }

    pub(super) async fn list_object_versions(&mut self) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        let ListParams {
            prefix,
            delimiter,
            max_keys,
            url,
        } = self.list_params("s3:ListBucketVersions", &bucket).await?;
        let key_marker = self.req.param("key-marker").unwrap_or("").to_owned();
        let version_marker = self.req.param("version-id-marker").map(str::to_owned);
        let start = match &version_marker {
            Some(_) if key_marker.is_empty() => {
                return Err(invalid_argument(
                    "A version-id marker cannot be specified without a key marker.",
                ));
            }
            // Markers before the prefix start at the prefix.
            _ if key_marker.as_str() < prefix.as_str() => (prefix.clone(), i64::MAX),
            Some(id) => {
                check_version_id(id)?;
                // A marker version deleted since (a client emptying the bucket page by page)
                // resumes with the key's remaining versions.
                let seq = self
                    .store()
                    .version_seq(&self.req.bucket, &key_marker, id)
                    .await
                    .map_err(internal)?
                    .unwrap_or(i64::MAX);
                (key_marker.clone(), seq)
            }
            // Keys after the marker.
            None => match delimiter.as_deref() {
                // A marker that is a common prefix skips all of it.
                Some(d)
                    if key_marker
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|r| r.ends_with(d)) =>
                {
                    match successor(&key_marker) {
                        Some(after) => (after, i64::MAX),
                        None => (key_marker.clone(), i64::MIN),
                    }
                }
                _ => (key_marker.clone(), i64::MIN),
            },
        };
        let max = usize::try_from(max_keys.min(1000)).unwrap_or(1000);
        let listing = list_versions(
            self.store(),
            &self.req.bucket,
            &prefix,
            delimiter.as_deref(),
            start,
            max,
        )
        .await?;
        let enc = |s: &str| encode_key(url, s);
        let owner_id = canonical_id(&bucket.row.account_id);
        let name = self.req.bucket.clone();
        let owner = |w: &mut XmlWriter| {
            w.nest("Owner", |w| {
                w.element("ID", &owner_id);
                w.element("DisplayName", &bucket.row.account_id);
            });
        };
        Ok(xml_response(StatusCode::OK, "ListVersionsResult", |w| {
            w.element("Name", &name);
            w.element("Prefix", &enc(&prefix));
            w.element("KeyMarker", &enc(&key_marker));
            w.element("VersionIdMarker", version_marker.as_deref().unwrap_or(""));
            if listing.truncated
                && let Some((key, version)) = &listing.next
            {
                w.element("NextKeyMarker", &enc(key));
                if let Some(v) = version {
                    w.element("NextVersionIdMarker", v);
                }
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
            for e in &listing.entries {
                let latest = if e.latest { "true" } else { "false" };
                if e.delete_marker {
                    w.nest("DeleteMarker", |w| {
                        owner(w);
                        w.element("Key", &enc(&e.key));
                        w.element("VersionId", &e.version_id);
                        w.element("IsLatest", latest);
                        w.element("LastModified", &iso8601(e.last_modified));
                    });
                } else {
                    w.nest("Version", |w| {
                        w.element("Key", &enc(&e.key));
                        w.element("VersionId", &e.version_id);
                        w.element("IsLatest", latest);
                        w.element("LastModified", &iso8601(e.last_modified));
                        w.element("ETag", &e.etag);
                        w.element("Size", &e.size.to_string());
                        owner(w);
                        w.element("StorageClass", "STANDARD");
                    });
                }
            }
            for p in &listing.prefixes {
                w.nest("CommonPrefixes", |w| {
                    w.element("Prefix", &enc(p));
                });
            }
        }))
    }
}
