//! Objects: streaming uploads (aws-chunked, payload hash, checksums verified before the
//! object is committed), downloads, copies and deletes.

use super::*;

/// A received upload body, in a file not yet in place.
pub(super) struct Received {
    pub(super) finished: Finished,
    pub(super) checksum: Option<(ChecksumAlgorithm, String)>,
}

/// The stored-headers entry of a multipart object listing its parts' sizes.
pub(super) const PART_SIZES_ENTRY: &str = "x-cognate-part-sizes";

/// An inclusive byte range of an object (`None`: all of it, when it is empty).
type ByteRange = Option<(u64, u64)>;

/// Part `n` of an object as a byte range, and the object's part count when it is a
/// multipart object; `InvalidPart` for a part it does not have.
fn part_range(row: &ObjectRow, n: i64) -> Result<(ByteRange, Option<usize>), ApiError> {
    let size = u64::try_from(row.size).unwrap_or(0);
    let sizes: Option<Vec<u64>> = decode_headers(&row.headers)
        .into_iter()
        .find(|(k, _)| k == PART_SIZES_ENTRY)
        .map(|(_, v)| v.split(',').filter_map(|p| p.parse().ok()).collect());
    let count = sizes.as_ref().map(Vec::len);
    let sizes = sizes.unwrap_or_else(|| vec![size]);
    let index = usize::try_from(n - 1).unwrap_or(usize::MAX);
    let Some(len) = sizes.get(index).copied() else {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "InvalidPart",
            "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
        ));
    };
    let start: u64 = sizes.iter().take(index).sum();
    let range = (len > 0).then(|| (start, start + len - 1));
    Ok((range, count))
}

impl S3<'_, '_> {
    /// Reads the object row, answering `AccessDenied` instead of `NoSuchKey` to a caller
    /// that may not list the bucket (as S3 does, so keys cannot be probed).
    /// `action` is what the caller means to do with it: a delete marker in its place is
    /// told only to a caller allowed that.
    pub(super) async fn object_row(
        &self,
        bucket: &Bucket,
        action: &str,
    ) -> Result<Arc<ObjectRow>, ApiError> {
        let cache = self.ctx.state.objects.as_ref();
        let id = (self.req.bucket.clone(), self.req.key.clone());
        if let Some(row) = cache.and_then(|c| c.get(&id)) {
            return Ok(row);
        }
        let ticket = cache.map(|c| c.ticket());
        match self
            .store()
            .object(&self.req.bucket, &self.req.key)
            .await
            .map_err(internal)?
        {
            Some(row) => {
                let row = Arc::new(row);
                if let (Some(c), Some(ticket)) = (cache, ticket) {
                    c.insert(ticket, id, row.clone());
                }
                Ok(row)
            }
            None => {
                self.allow("s3:ListBucket", &self.req.bucket_arn(), bucket, Vec::new())
                    .await?;
                if bucket.row.versioning.is_some()
                    && let Some((id, at)) = self
                        .store()
                        .latest_marker(&self.req.bucket, &self.req.key)
                        .await
                        .map_err(internal)?
                {
                    self.allow(action, &self.req.object_arn(), bucket, Vec::new())
                        .await?;
                    return Err(delete_marker_error(false, &id, at));
                }
                Err(no_such_key())
            }
        }
    }

    /// The version the request names by `versionId`, or else the current one (`action` as
    /// for [`Self::object_row`]).
    pub(super) async fn requested_row(
        &self,
        bucket: &Bucket,
        action: &str,
    ) -> Result<Arc<ObjectRow>, ApiError> {
        let Some(id) = self.req.param("versionId") else {
            return self.object_row(bucket, action).await;
        };
        match self
            .store()
            .object_version(&self.req.bucket, &self.req.key, id)
            .await
            .map_err(internal)?
        {
            Some(Version::Object(row)) => Ok(Arc::new(row)),
            Some(Version::Marker {
                version_id,
                last_modified,
            }) => {
                self.allow(action, &self.req.object_arn(), bucket, Vec::new())
                    .await?;
                Err(delete_marker_error(true, &version_id, last_modified))
            }
            None => {
                self.allow("s3:ListBucket", &self.req.bucket_arn(), bucket, Vec::new())
                    .await?;
                Err(no_such_version(&self.req.key, id))
            }
        }
    }

    /// The action a read of the request's object needs: a named version is its own.
    fn read_action(&self) -> Result<&'static str, ApiError> {
        match self.req.param("versionId") {
            Some(id) => {
                check_version_id(id)?;
                Ok("s3:GetObjectVersion")
            }
            None => Ok("s3:GetObject"),
        }
    }

    /// Deletes a key, or one version of it, as DELETE does, and removes the files no row
    /// names any more. Returns whether a delete marker was made or deleted, and the version
    /// id S3 reports.
    async fn remove_key(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<(bool, Option<String>), ApiError> {
        let bucket = &self.req.bucket;
        let (marker, version_id, unreferenced) = match version {
            Some(id) => {
                let gone = self.store().delete_version(bucket, key, id).await;
                self.forget(key);
                match gone.map_err(internal)? {
                    Some(g) => (g.was_marker, Some(id.to_owned()), g.unreferenced),
                    None => (false, Some(id.to_owned()), Vec::new()),
                }
            }
            None => {
                // Only used when versioning makes a delete marker.
                let fresh = fresh_version_id(&self.ctx.state.rng)?;
                let removed = self
                    .store()
                    .delete_object(bucket, key, &fresh, self.now_millis())
                    .await;
                self.forget(key);
                let removed = removed.map_err(internal)?;
                (
                    removed.marker.is_some(),
                    removed.marker,
                    removed.unreferenced,
                )
            }
        };
        self.blobs().remove(&unreferenced).await;
        Ok((marker, version_id))
    }

    pub(super) async fn get_object(&mut self, head: bool) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let action = self.read_action()?;
        let bucket = self.bucket().await?;
        // `partNumber` reads one part of a multipart object (1 of any other) as a range.
        let part = match self.req.param("partNumber") {
            None => None,
            Some(_) if self.req.header("range").is_some() => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    "Cannot specify both Range header and partNumber query parameter",
                ));
            }
            Some(_) => Some(multipart::part_number(&self.req)?),
        };
        let mut parts_count = None;
        // Authorized once the version is read, with its tags as condition keys
        // (`s3:ExistingObjectTag/<key>`); a missing key answers as S3's rule for callers
        // who may, or may not, list the bucket has it.
        let mut authorized: Option<String> = None;
        // A concurrent overwrite deletes the file a row read just before it named: read the
        // row again (a cached row is forgotten).
        let mut attempts = 0;
        let (row, body, range) = loop {
            let row = self.requested_row(&bucket, action).await?;
            // A version read again (its file went meanwhile) is authorized again: its tags
            // may differ.
            if authorized.as_deref() != Some(row.blob.as_str()) {
                let tags = existing_tag_keys(&stored_tags(&decode_headers(&row.headers)));
                self.allow(action, &self.req.object_arn(), &bucket, tags)
                    .await?;
                authorized = Some(row.blob.clone());
            }
            let size = u64::try_from(row.size).unwrap_or(0);
            if let Some(status) = preconditions(self.req.headers, &row)? {
                let mut res = empty(status);
                set_header(&mut res, "etag", &row.etag);
                set_header(&mut res, "last-modified", &http_date(row.last_modified));
                return Ok(res);
            }
            let range = match (part, self.req.header("range")) {
                (Some(n), _) => {
                    let (range, count) = part_range(&row, n)?;
                    parts_count = count;
                    range
                }
                (None, Some(spec)) => parse_range(spec, size)?,
                (None, None) => None,
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
        if bucket.row.versioning.is_some() || self.req.has("versionId") {
            set_header(&mut res, "x-amz-version-id", &row.version_id);
        }
        if let Some((start, len, size)) = range {
            set_header(
                &mut res,
                "content-range",
                &format!("bytes {start}-{}/{size}", start + len - 1),
            );
        }
        if let Some(count) = parts_count {
            set_header(&mut res, "x-amz-mp-parts-count", &count.to_string());
        }
        // Checksums are of the whole object, and sent only when asked for.
        let checksums = range.is_none()
            && self
                .req
                .header("x-amz-checksum-mode")
                .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"));
        let mut has_type = false;
        for (name, value) in decode_headers(&row.headers) {
            if name == PART_SIZES_ENTRY {
                continue;
            }
            if name == TAGS_ENTRY {
                let count = s3::tags::from_header(&value).len();
                set_header(&mut res, "x-amz-tagging-count", &count.to_string());
                continue;
            }
            if name.starts_with("x-amz-checksum-") && !checksums {
                continue;
            }
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

    pub(super) async fn delete_object(&mut self) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let version = self.req.param("versionId").map(str::to_owned);
        let action = match &version {
            Some(id) => {
                check_version_id(id)?;
                "s3:DeleteObjectVersion"
            }
            None => "s3:DeleteObject",
        };
        let bucket = self.bucket().await?;
        self.allow(action, &self.req.object_arn(), &bucket, Vec::new())
            .await?;
        let (marker, version_id) = self.remove_key(&self.req.key, version.as_deref()).await?;
        let mut res = empty(StatusCode::NO_CONTENT);
        if marker {
            set_header(&mut res, "x-amz-delete-marker", "true");
        }
        if let Some(id) = &version_id {
            set_header(&mut res, "x-amz-version-id", id);
        }
        Ok(res)
    }

    pub(super) async fn delete_objects(&mut self, body: Body) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        let body = read_document(body).await?;
        let (keys, quiet) = s3::xml::delete_objects(&body).map_err(|_| malformed_xml())?;
        if keys.len() > 1000 {
            return Err(malformed_xml());
        }
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for (key, version) in keys {
            let arn = format!("arn:aws:s3:::{}/{key}", self.req.bucket);
            let action = match &version {
                Some(id) => match check_version_id(id) {
                    Ok(()) => "s3:DeleteObjectVersion",
                    Err(e) => {
                        errors.push((key, version, e));
                        continue;
                    }
                },
                None => "s3:DeleteObject",
            };
            if let Err(e) = self.allow(action, &arn, &bucket, Vec::new()).await {
                errors.push((key, version, e));
                continue;
            }
            match self.remove_key(&key, version.as_deref()).await {
                Ok((marker, version_id)) => deleted.push((key, version, marker, version_id)),
                Err(e) => errors.push((key, version, e)),
            }
        }
        Ok(xml_response(StatusCode::OK, "DeleteResult", |w| {
            if !quiet {
                for (key, asked, marker, version_id) in &deleted {
                    w.nest("Deleted", |w| {
                        w.element("Key", key);
                        if let Some(v) = asked {
                            w.element("VersionId", v);
                        }
                        if *marker {
                            w.element("DeleteMarker", "true");
                            if let Some(v) = version_id {
                                w.element("DeleteMarkerVersionId", v);
                            }
                        }
                    });
                }
            }
            for (key, version, e) in &errors {
                w.nest("Error", |w| {
                    w.element("Key", key);
                    if let Some(v) = version {
                        w.element("VersionId", v);
                    }
                    w.element("Code", &e.code);
                    w.element("Message", &e.message);
                });
            }
        }))
    }

    /// Streams the request body into a new file, decoding aws-chunked and verifying every
    /// digest the request declares: the payload hash it signed, chunk signatures,
    /// `Content-MD5` and an `x-amz-checksum-*`.
    pub(super) async fn receive(&self, body: Body) -> Result<Received, ApiError> {
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
        // With no checksum named, S3 computes its default one for every object.
        let algorithm = checksum
            .as_ref()
            .map_or(ChecksumAlgorithm::DEFAULT, |(a, _)| *a);
        let mut writer = self
            .blobs()
            .create(verify_sha, Some(algorithm))
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
                    crate::context::request_timeout()
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

    pub(super) async fn put_object(&mut self, body: Body) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let bucket = self.bucket().await?;
        let mut headers = stored_headers(self.req.headers)?;
        self.allow_write_with_tags(&bucket, &mut headers).await?;
        let received = self.receive(body).await?;
        if let Some((algorithm, value)) = &received.checksum {
            set_checksum(&mut headers, *algorithm, value, "FULL_OBJECT");
        }
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
            version_id: fresh_version_id(&self.ctx.state.rng)?,
        };
        let written = self.commit_object(&row).await?;
        let mut res = empty(StatusCode::OK);
        set_header(&mut res, "etag", &etag);
        if let Some(id) = &written.version_id {
            set_header(&mut res, "x-amz-version-id", id);
        }
        if let Some((algorithm, value)) = &received.checksum {
            set_header(&mut res, algorithm.header(), value);
            set_header(&mut res, "x-amz-checksum-type", "FULL_OBJECT");
        }
        Ok(res)
    }

    /// Authorizes a write (PutObject, CreateMultipartUpload) of the request's object; tags
    /// in `x-amz-tagging` also need `s3:PutObjectTagging`, are condition keys of both, and
    /// join the stored headers.
    pub(super) async fn allow_write_with_tags(
        &self,
        bucket: &Bucket,
        headers: &mut Vec<(String, String)>,
    ) -> Result<(), ApiError> {
        let tags = request_tags(self.req.headers)?;
        let keys = tags.as_deref().map(request_tag_keys).unwrap_or_default();
        self.allow("s3:PutObject", &self.req.object_arn(), bucket, keys.clone())
            .await?;
        if let Some(set) = &tags {
            self.allow("s3:PutObjectTagging", &self.req.object_arn(), bucket, keys)
                .await?;
            set_tags(headers, set);
        }
        Ok(())
    }

    /// Puts an object row whose file is in place, deleting the file it replaced (or, when
    /// the bucket vanished meanwhile, its own).
    pub(super) async fn commit_object(&self, row: &ObjectRow) -> Result<Written, ApiError> {
        let stored = self.store().put_object(row).await;
        self.forget(&row.key);
        match stored {
            Ok(Some(written)) => {
                self.blobs().remove(&written.unreferenced).await;
                Ok(written)
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
}
