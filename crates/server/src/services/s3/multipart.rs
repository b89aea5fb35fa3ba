//! Multipart uploads: create, upload parts, complete, abort, list parts and uploads.

use super::*;

/// The `partNumber` of an upload request: 1 to 10,000.
pub(super) fn part_number(req: &Req<'_>) -> Result<i64, ApiError> {
    req.param("partNumber")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| (1..=s3::MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            invalid_argument("Part number must be an integer between 1 and 10000, inclusive")
        })
}

/// The checksum a new multipart upload asks for: its algorithm and whether the object's is
/// of the parts' checksums (`COMPOSITE`, the default where allowed) or of all its bytes.
fn upload_checksum(
    headers: &HeaderMap,
) -> Result<Option<(ChecksumAlgorithm, &'static str)>, ApiError> {
    let kind = match headers.get("x-amz-checksum-type").map(|v| v.as_bytes()) {
        None => None,
        Some(b"COMPOSITE") => Some("COMPOSITE"),
        Some(b"FULL_OBJECT") => Some("FULL_OBJECT"),
        Some(_) => {
            return Err(invalid_argument(
                "Value for x-amz-checksum-type header is invalid.",
            ));
        }
    };
    let Some(algorithm) = checksum_algorithm(headers)? else {
        return match kind {
            None => Ok(None),
            Some(_) => Err(err(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
            )),
        };
    };
    let kind = kind.unwrap_or(if algorithm.composable() {
        "COMPOSITE"
    } else {
        "FULL_OBJECT"
    });
    let allowed = match kind {
        "COMPOSITE" => algorithm.composable(),
        _ => algorithm.full_object(),
    };
    if !allowed {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            format!(
                "The {kind} checksum type cannot be used with the {} checksum algorithm.",
                algorithm.name().to_lowercase()
            ),
        ));
    }
    Ok(Some((algorithm, kind)))
}

impl S3<'_, '_> {
    pub(super) async fn create_upload(&mut self) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let bucket = self.bucket().await?;
        let mut headers = stored_headers(self.req.headers)?;
        self.allow_write_with_tags(&bucket, &mut headers).await?;
        let checksum = upload_checksum(self.req.headers)?;
        if let Some((algorithm, kind)) = checksum {
            headers.push((
                "x-amz-checksum-algorithm".to_owned(),
                algorithm.name().to_owned(),
            ));
            headers.push(("x-amz-checksum-type".to_owned(), kind.to_owned()));
        }
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
        let mut res = xml_response(StatusCode::OK, "InitiateMultipartUploadResult", |w| {
            w.element("Bucket", &b);
            w.element("Key", &k);
            w.element("UploadId", &upload_id);
        });
        if let Some((algorithm, kind)) = checksum {
            set_header(&mut res, "x-amz-checksum-algorithm", algorithm.name());
            set_header(&mut res, "x-amz-checksum-type", kind);
        }
        Ok(res)
    }

    /// The upload named by `uploadId`, which must be for this bucket and key.
    pub(super) async fn upload_row(&self) -> Result<UploadRow, ApiError> {
        let id = self.req.param("uploadId").unwrap_or("");
        match self.store().upload(id).await.map_err(internal)? {
            Some(u) if u.bucket == self.req.bucket && u.key == self.req.key => Ok(u),
            _ => Err(no_such_upload()),
        }
    }

    pub(super) async fn upload_part(&mut self, body: Body) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let part_number = part_number(&self.req)?;
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
        self.store_part(PartRow {
            upload_id: upload.upload_id,
            part_number,
            blob,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            etag: etag.clone(),
            last_modified: self.now_millis(),
        })
        .await?;
        let mut res = empty(StatusCode::OK);
        set_header(&mut res, "etag", &etag);
        if let Some((algorithm, value)) = &received.checksum {
            set_header(&mut res, algorithm.header(), value);
        }
        Ok(res)
    }

    /// Stores a part whose file is in place, deleting the file of the part it replaced (or,
    /// when the upload ended meanwhile, its own).
    pub(super) async fn store_part(&self, row: PartRow) -> Result<(), ApiError> {
        match self.store().put_part(&row).await {
            Ok(Some(replaced)) => {
                self.blobs().remove(&Vec::from_iter(replaced)).await;
                Ok(())
            }
            Ok(None) => {
                self.blobs().remove(&[row.blob]).await;
                Err(no_such_upload())
            }
            Err(e) => {
                self.blobs().remove(&[row.blob]).await;
                Err(internal(e))
            }
        }
    }

    pub(super) async fn complete_upload(&mut self, body: Body) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let bucket = self.bucket().await?;
        self.allow("s3:PutObject", &self.req.object_arn(), &bucket, Vec::new())
            .await?;
        let body = read_document(body).await?;
        let requested = s3::xml::complete_multipart(&body).map_err(|_| malformed_xml())?;
        let upload = match self.upload_row().await {
            Ok(upload) => upload,
            Err(e) => return self.completed_before(&requested).await.ok_or(e)?,
        };
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
        // The object's checksum: of its parts' checksums (COMPOSITE) or of all its bytes
        // (FULL_OBJECT, S3's default CRC64NVME when the upload named none).
        let mut headers = decode_headers(&upload.headers);
        let asked = headers
            .iter()
            .find(|(n, _)| n == "x-amz-checksum-algorithm")
            .and_then(|(_, v)| ChecksumAlgorithm::from_name(v));
        let composite = headers
            .iter()
            .any(|(n, v)| n == "x-amz-checksum-type" && v == "COMPOSITE");
        let (whole, per_part) = match asked {
            Some(a) if composite => (None, Some(a)),
            Some(a) => (Some(a), None),
            None => (Some(ChecksumAlgorithm::DEFAULT), None),
        };
        let mut md5s = Vec::with_capacity(chosen.len());
        let mut part_checksums = Vec::with_capacity(chosen.len());
        let mut writer = self.blobs().create(false, whole).await.map_err(internal)?;
        for part in &chosen {
            md5s.push(s3::etag_md5(&part.etag).ok_or_else(invalid_part)?);
            let digest = writer
                .append_part(self.blobs(), &part.blob, per_part)
                .await
                .map_err(internal)?;
            part_checksums.extend(digest);
        }
        let finished = writer.finish().await.map_err(internal)?;
        let checksum = match per_part {
            Some(a) => Some((a, s3::composite(a, &part_checksums), "COMPOSITE")),
            None => finished
                .digests
                .checksum
                .clone()
                .map(|(a, v)| (a, v, "FULL_OBJECT")),
        };
        headers.retain(|(n, _)| !n.starts_with("x-amz-checksum-"));
        if let Some((algorithm, value, kind)) = &checksum {
            set_checksum(&mut headers, *algorithm, value, kind);
        }
        // Where each part lies, for GetObject with `partNumber`.
        let sizes: Vec<String> = chosen.iter().map(|p| p.size.to_string()).collect();
        headers.push((super::objects::PART_SIZES_ENTRY.to_owned(), sizes.join(",")));
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
            headers: encode_headers(&headers),
            version_id: fresh_version_id(&self.ctx.state.rng)?,
        };
        let completed = self.store().complete_upload(&upload.upload_id, &row).await;
        self.forget(&row.key);
        let written = match completed {
            Ok(Some(written)) => {
                self.blobs().remove(&written.unreferenced).await;
                written
            }
            Ok(None) => {
                self.blobs().remove(&[blob]).await;
                return Err(no_such_upload());
            }
            Err(e) => {
                self.blobs().remove(&[blob]).await;
                return Err(internal(e));
            }
        };
        Ok(self.completed(&etag, checksum.as_ref(), written.version_id.as_deref()))
    }

    /// CompleteMultipartUpload's answer.
    fn completed(
        &self,
        etag: &str,
        checksum: Option<&(ChecksumAlgorithm, String, &str)>,
        version_id: Option<&str>,
    ) -> Response<Body> {
        let (b, k) = (&self.req.bucket, &self.req.key);
        let location = format!("/{b}/{}", utf8_percent_encode(k, KEY_ENCODE));
        let mut res = xml_response(StatusCode::OK, "CompleteMultipartUploadResult", |w| {
            w.element("Location", &location);
            w.element("Bucket", b);
            w.element("Key", k);
            w.element("ETag", etag);
            if let Some((algorithm, value, kind)) = checksum {
                w.element(algorithm.element(), value);
                w.element("ChecksumType", kind);
            }
        });
        if let Some(id) = version_id {
            set_header(&mut res, "x-amz-version-id", id);
        }
        res
    }

    /// A CompleteMultipartUpload repeated after it succeeded: S3 answers it again when the
    /// key's object is the one those parts made (same multipart ETag).
    async fn completed_before(
        &self,
        requested: &[(i64, String)],
    ) -> Option<Result<Response<Body>, ApiError>> {
        let md5s: Vec<[u8; 16]> = requested
            .iter()
            .map(|(_, etag)| s3::etag_md5(etag))
            .collect::<Option<_>>()?;
        let etag = s3::multipart_etag(&md5s);
        let row = match self.store().object(&self.req.bucket, &self.req.key).await {
            Ok(row) => row?,
            Err(e) => return Some(Err(internal(e))),
        };
        if row.etag != etag {
            return None;
        }
        let version_id = (row.version_id != "null").then_some(row.version_id.as_str());
        Some(Ok(self.completed(&etag, None, version_id)))
    }

    pub(super) async fn abort_upload(&mut self) -> Result<Response<Body>, ApiError> {
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

    pub(super) async fn list_parts(&mut self) -> Result<Response<Body>, ApiError> {
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

    pub(super) async fn list_uploads(&mut self) -> Result<Response<Body>, ApiError> {
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
