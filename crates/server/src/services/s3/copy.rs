//! Server-side copies: CopyObject, and UploadPartCopy (a range of an object as a part of
//! a multipart upload).

use super::multipart::part_number;
use super::*;

/// The object a copy reads (`x-amz-copy-source`, with an optional `versionId`), found and
/// authorized, its preconditions checked.
pub(super) struct CopySource {
    pub(super) bucket: Arc<Bucket>,
    pub(super) name: String,
    pub(super) key: String,
    pub(super) row: ObjectRow,
    pub(super) version: Option<String>,
}

impl S3<'_, '_> {
    pub(super) async fn copy_source(&self) -> Result<CopySource, ApiError> {
        let source = self.req.header("x-amz-copy-source").unwrap_or("");
        let (source, source_query) = source.split_once('?').unwrap_or((source, ""));
        let source_version = form_urlencoded::parse(source_query.as_bytes())
            .find(|(k, _)| k == "versionId")
            .map(|(_, v)| v.into_owned());
        if let Some(id) = &source_version {
            check_version_id(id)?;
        }
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
        let source_bucket = bucket_named(self.ctx.state, &src_bucket).await?;
        expect_owner(
            self.req.header("x-amz-source-expected-bucket-owner"),
            &source_bucket,
        )?;
        let read = if source_version.is_some() {
            "s3:GetObjectVersion"
        } else {
            "s3:GetObject"
        };
        let source_arn = format!("arn:aws:s3:::{src_bucket}/{src_key}");
        // Read first, then authorized with the source's tags as condition keys
        // (`s3:ExistingObjectTag/<key>`), as a GET of it would be.
        let found = match &source_version {
            Some(id) => match self
                .store()
                .object_version(&src_bucket, &src_key, id)
                .await
                .map_err(internal)?
            {
                Some(Version::Object(row)) => Some(row),
                Some(Version::Marker { .. }) => {
                    self.allow(read, &source_arn, &source_bucket, Vec::new())
                        .await?;
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        "InvalidRequest",
                        "The source of a copy request may not specifically refer to a delete marker by version id.",
                    ));
                }
                None => None,
            },
            None => self
                .store()
                .object(&src_bucket, &src_key)
                .await
                .map_err(internal)?,
        };
        let Some(row) = found else {
            // A missing source is NoSuchKey only to those who may list its bucket.
            self.allow(
                "s3:ListBucket",
                &format!("arn:aws:s3:::{src_bucket}"),
                &source_bucket,
                Vec::new(),
            )
            .await?;
            return Err(match &source_version {
                Some(id) => no_such_version(&src_key, id),
                None => no_such_key(),
            });
        };
        let tags = existing_tag_keys(&stored_tags(&decode_headers(&row.headers)));
        self.allow(read, &source_arn, &source_bucket, tags).await?;
        let failed = || {
            err(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            )
        };
        if let Some(list) = self.req.header("x-amz-copy-source-if-match")
            && !etag_matches(list, &row.etag)
        {
            return Err(failed());
        }
        if let Some(list) = self.req.header("x-amz-copy-source-if-none-match")
            && etag_matches(list, &row.etag)
        {
            return Err(failed());
        }
        Ok(CopySource {
            bucket: source_bucket,
            name: src_bucket,
            key: src_key,
            row,
            version: source_version,
        })
    }

    pub(super) async fn copy_object(&mut self) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let CopySource {
            bucket: source_bucket,
            name: src_bucket,
            key: src_key,
            row,
            version: source_version,
        } = self.copy_source().await?;
        let bucket = self.bucket().await?;
        self.allow("s3:PutObject", &self.req.object_arn(), &bucket, Vec::new())
            .await?;
        let replace = match self.req.header("x-amz-metadata-directive") {
            None | Some("COPY") => false,
            Some("REPLACE") => true,
            Some(_) => return Err(invalid_argument("Unknown metadata directive.")),
        };
        if src_bucket == self.req.bucket
            && src_key == self.req.key
            && !replace
            && source_version.is_none()
        {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
            ));
        }
        let mut headers = if replace {
            stored_headers(self.req.headers)?
        } else {
            decode_headers(&row.headers)
        };
        // Tags follow their own directive: the source's, or the request's `x-amz-tagging`.
        let tags = match self.req.header("x-amz-tagging-directive") {
            None | Some("COPY") => stored_tags(&decode_headers(&row.headers)),
            Some("REPLACE") => request_tags(self.req.headers)?.unwrap_or_default(),
            Some(_) => return Err(invalid_argument("Unknown tagging directive.")),
        };
        if self.req.header("x-amz-tagging-directive") == Some("REPLACE") && !tags.is_empty() {
            self.allow(
                "s3:PutObjectTagging",
                &self.req.object_arn(),
                &bucket,
                request_tag_keys(&tags),
            )
            .await?;
        }
        set_tags(&mut headers, &tags);
        // The copy's checksum: the one asked for, else the source's kind, else S3's default.
        let algorithm = checksum_algorithm(self.req.headers)?
            .or_else(|| full_object_checksum(&decode_headers(&row.headers)))
            .unwrap_or(ChecksumAlgorithm::DEFAULT);
        let mut writer = self
            .blobs()
            .create(false, Some(algorithm))
            .await
            .map_err(internal)?;
        writer
            .append_blob(self.blobs(), &row.blob)
            .await
            .map_err(internal)?;
        let finished = writer.finish().await.map_err(internal)?;
        let checksum = finished.digests.checksum.clone();
        if let Some((algorithm, value)) = &checksum {
            set_checksum(&mut headers, *algorithm, value, "FULL_OBJECT");
        }
        let headers = encode_headers(&headers);
        let blob = finished.persist(self.blobs()).await.map_err(internal)?;
        let new = ObjectRow {
            bucket: self.req.bucket.clone(),
            key: self.req.key.clone(),
            blob,
            size: row.size,
            etag: row.etag.clone(),
            last_modified: self.now_millis(),
            headers,
            version_id: fresh_version_id(&self.ctx.state.rng)?,
        };
        let written = self.commit_object(&new).await?;
        let mut res = xml_response(StatusCode::OK, "CopyObjectResult", |w| {
            w.element("LastModified", &iso8601(new.last_modified));
            w.element("ETag", &new.etag);
            if let Some((algorithm, value)) = &checksum {
                w.element("ChecksumType", "FULL_OBJECT");
                w.element(algorithm.element(), value);
            }
        });
        if source_bucket.row.versioning.is_some() || source_version.is_some() {
            set_header(&mut res, "x-amz-copy-source-version-id", &row.version_id);
        }
        if let Some(id) = &written.version_id {
            set_header(&mut res, "x-amz-version-id", id);
        }
        Ok(res)
    }

    /// UploadPartCopy: the source object, or the `x-amz-copy-source-range` of it, becomes a
    /// part of the upload.
    pub(super) async fn upload_part_copy(&mut self) -> Result<Response<Body>, ApiError> {
        self.check_key()?;
        let part_number = part_number(&self.req)?;
        let source = self.copy_source().await?;
        let bucket = self.bucket().await?;
        self.allow("s3:PutObject", &self.req.object_arn(), &bucket, Vec::new())
            .await?;
        let upload = self.upload_row().await?;
        let size = u64::try_from(source.row.size).unwrap_or(0);
        let (start, len) = match self.req.header("x-amz-copy-source-range") {
            None => (0, size),
            Some(spec) => copy_range(spec, size)?,
        };
        let mut writer = self.blobs().create(false, None).await.map_err(internal)?;
        writer
            .append_range(self.blobs(), &source.row.blob, start, len)
            .await
            .map_err(internal)?;
        let finished = writer.finish().await.map_err(internal)?;
        let etag = s3::etag(&finished.digests.md5);
        let blob = finished.persist(self.blobs()).await.map_err(internal)?;
        let last_modified = self.now_millis();
        self.store_part(PartRow {
            upload_id: upload.upload_id,
            part_number,
            blob,
            size: i64::try_from(len).unwrap_or(i64::MAX),
            etag: etag.clone(),
            last_modified,
        })
        .await?;
        let mut res = xml_response(StatusCode::OK, "CopyPartResult", |w| {
            w.element("LastModified", &iso8601(last_modified));
            w.element("ETag", &etag);
        });
        if source.bucket.row.versioning.is_some() || source.version.is_some() {
            set_header(
                &mut res,
                "x-amz-copy-source-version-id",
                &source.row.version_id,
            );
        }
        Ok(res)
    }
}

/// An `x-amz-copy-source-range` (`bytes=first-last`, both given) within an object of `size`
/// bytes, as `(start, length)`.
fn copy_range(spec: &str, size: u64) -> Result<(u64, u64), ApiError> {
    let form = || {
        invalid_argument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
    };
    let (first, last) = spec
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(form)?;
    let first: u64 = first.trim().parse().map_err(|_| form())?;
    let last: u64 = last.trim().parse().map_err(|_| form())?;
    if first > last {
        return Err(form());
    }
    if last >= size {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            format!("Range specified is not valid for source object of size: {size}"),
        ));
    }
    Ok((first, last - first + 1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn copy_ranges_are_inclusive_and_within_the_source() {
        assert_eq!(copy_range("bytes=0-9", 10).unwrap(), (0, 10));
        assert_eq!(copy_range("bytes=5-5", 10).unwrap(), (5, 1));
        for bad in [
            "bytes=0-10",
            "bytes=5-4",
            "bytes=-5",
            "bytes=3-",
            "0-1",
            "bytes=a-b",
        ] {
            assert_eq!(
                copy_range(bad, 10).unwrap_err().code,
                "InvalidArgument",
                "{bad}"
            );
        }
    }
}
