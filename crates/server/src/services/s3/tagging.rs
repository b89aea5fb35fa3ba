//! Object tags: Get/Put/DeleteObjectTagging, the `x-amz-tagging` header of writes, and the
//! tag condition keys (`s3:ExistingObjectTag/<key>`, `s3:RequestObjectTag/<key>`,
//! `s3:RequestObjectTagKeys`). An object's tags are kept with its stored headers, in the
//! header's encoding, and never sent back as a header: GET and HEAD send their count.

use cognate_s3::tags::{self, TagsInvalid};

use super::*;

/// The stored-headers entry holding an object's tags.
pub(super) const TAGS_ENTRY: &str = "x-amz-tagging";

pub(super) fn tags_error(e: TagsInvalid) -> ApiError {
    match e {
        TagsInvalid::TooMany => err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Object tags cannot be greater than 10",
        ),
        TagsInvalid::Key => err(
            StatusCode::BAD_REQUEST,
            "InvalidTag",
            "The TagKey you have provided is invalid",
        ),
        TagsInvalid::Value => err(
            StatusCode::BAD_REQUEST,
            "InvalidTag",
            "The TagValue you have provided is invalid",
        ),
        TagsInvalid::Reserved => err(
            StatusCode::BAD_REQUEST,
            "InvalidTag",
            "Your TagKey cannot be prefixed with aws:",
        ),
        TagsInvalid::Duplicate => err(
            StatusCode::BAD_REQUEST,
            "InvalidTag",
            "Cannot provide multiple Tags with the same key",
        ),
    }
}

/// The tags a write's `x-amz-tagging` header gives, checked.
pub(super) fn request_tags(headers: &HeaderMap) -> Result<Option<Vec<(String, String)>>, ApiError> {
    let Some(value) = headers.get("x-amz-tagging") else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| tagging_header_error())?;
    let set = tags::from_header(value);
    tags::check(&set).map_err(|e| match e {
        TagsInvalid::Duplicate => tagging_header_error(),
        other => tags_error(other),
    })?;
    Ok(Some(set))
}

fn tagging_header_error() -> ApiError {
    invalid_argument(
        "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.",
    )
}

/// An object's tags, from its stored headers.
pub(super) fn stored_tags(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .find(|(n, _)| n == TAGS_ENTRY)
        .map(|(_, v)| tags::from_header(v))
        .unwrap_or_default()
}

/// Replaces an object's tags among its stored headers.
pub(super) fn set_tags(headers: &mut Vec<(String, String)>, set: &[(String, String)]) {
    headers.retain(|(n, _)| n != TAGS_ENTRY);
    if !set.is_empty() {
        headers.push((TAGS_ENTRY.to_owned(), tags::to_header(set)));
    }
}

/// `s3:ExistingObjectTag/<key>` for each of an object's tags.
pub(super) fn existing_tag_keys(set: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    set.iter()
        .map(|(k, v)| (format!("s3:ExistingObjectTag/{k}"), vec![v.clone()]))
        .collect()
}

/// `s3:RequestObjectTag/<key>` for each tag a request sets, and `s3:RequestObjectTagKeys`.
pub(super) fn request_tag_keys(set: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    let mut keys: Vec<(String, Vec<String>)> = set
        .iter()
        .map(|(k, v)| (format!("s3:RequestObjectTag/{k}"), vec![v.clone()]))
        .collect();
    keys.push((
        "s3:RequestObjectTagKeys".to_owned(),
        set.iter().map(|(k, _)| k.clone()).collect(),
    ));
    keys
}

impl S3<'_, '_> {
    pub(super) async fn get_bucket_tagging(&mut self) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        self.allow(
            "s3:GetBucketTagging",
            &self.req.bucket_arn(),
            &bucket,
            Vec::new(),
        )
        .await?;
        let Some(encoded) = bucket.row.tags.as_deref() else {
            return Err(err(
                StatusCode::NOT_FOUND,
                "NoSuchTagSet",
                "The TagSet does not exist",
            )
            .with_detail("BucketName", self.req.bucket.clone()));
        };
        let set = tags::from_header(encoded);
        Ok(xml_response(StatusCode::OK, "Tagging", |w| {
            w.nest("TagSet", |w| {
                for (k, v) in &set {
                    w.nest("Tag", |w| {
                        w.element("Key", k);
                        w.element("Value", v);
                    });
                }
            });
        }))
    }

    /// PutBucketTagging, and DeleteBucketTagging (`body` None), which S3 authorizes as
    /// `s3:PutBucketTagging`.
    pub(super) async fn put_bucket_tagging(
        &mut self,
        body: Option<Body>,
    ) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        self.allow(
            "s3:PutBucketTagging",
            &self.req.bucket_arn(),
            &bucket,
            Vec::new(),
        )
        .await?;
        let encoded = match body {
            Some(body) => {
                let body = read_document(body).await?;
                let set = s3::xml::tagging(&body).map_err(|_| malformed_xml())?;
                tags::check_at_most(&set, tags::MAX_BUCKET_TAGS).map_err(|e| match e {
                    TagsInvalid::TooMany => err(
                        StatusCode::BAD_REQUEST,
                        "InvalidTag",
                        "Bucket tag count cannot be greater than 50",
                    ),
                    other => tags_error(other),
                })?;
                Some(tags::to_header(&set))
            }
            None => None,
        };
        let deleting = encoded.is_none();
        if !self
            .store()
            .set_bucket_tags(&self.req.bucket, encoded.as_deref())
            .await
            .map_err(internal)?
        {
            return Err(no_such_bucket());
        }
        self.ctx.state.changed().await;
        Ok(empty(if deleting {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::OK
        }))
    }

    /// The version a tagging request names, authorized for `action` (its `Version` form
    /// when a `versionId` is given) with the object's tags as condition keys.
    async fn tagged_version(
        &self,
        action: &str,
        extra: Vec<(String, Vec<String>)>,
    ) -> Result<(Arc<Bucket>, Arc<ObjectRow>), ApiError> {
        self.check_key()?;
        let versioned = match self.req.param("versionId") {
            Some(id) => {
                check_version_id(id)?;
                true
            }
            None => false,
        };
        let bucket = self.bucket().await?;
        let action = if versioned {
            action.replacen("Object", "ObjectVersion", 1)
        } else {
            action.to_owned()
        };
        let row = self.requested_row(&bucket, &action).await?;
        let mut keys = existing_tag_keys(&stored_tags(&decode_headers(&row.headers)));
        keys.extend(extra);
        self.allow(&action, &self.req.object_arn(), &bucket, keys)
            .await?;
        Ok((bucket, row))
    }

    fn version_header(&self, bucket: &Bucket, row: &ObjectRow, res: &mut Response<Body>) {
        if bucket.row.versioning.is_some() || self.req.has("versionId") {
            set_header(res, "x-amz-version-id", &row.version_id);
        }
    }

    pub(super) async fn get_object_tagging(&mut self) -> Result<Response<Body>, ApiError> {
        let (bucket, row) = self
            .tagged_version("s3:GetObjectTagging", Vec::new())
            .await?;
        let set = stored_tags(&decode_headers(&row.headers));
        let mut res = xml_response(StatusCode::OK, "Tagging", |w| {
            w.nest("TagSet", |w| {
                for (k, v) in &set {
                    w.nest("Tag", |w| {
                        w.element("Key", k);
                        w.element("Value", v);
                    });
                }
            });
        });
        self.version_header(&bucket, &row, &mut res);
        Ok(res)
    }

    pub(super) async fn put_object_tagging(
        &mut self,
        body: Body,
    ) -> Result<Response<Body>, ApiError> {
        let body = read_document(body).await?;
        let set = s3::xml::tagging(&body).map_err(|_| malformed_xml())?;
        tags::check(&set).map_err(tags_error)?;
        let (bucket, row) = self
            .tagged_version("s3:PutObjectTagging", request_tag_keys(&set))
            .await?;
        self.write_tags(&bucket, &row, &set).await
    }

    pub(super) async fn delete_object_tagging(&mut self) -> Result<Response<Body>, ApiError> {
        let (bucket, row) = self
            .tagged_version("s3:DeleteObjectTagging", Vec::new())
            .await?;
        let mut res = self.write_tags(&bucket, &row, &[]).await?;
        *res.status_mut() = StatusCode::NO_CONTENT;
        Ok(res)
    }

    async fn write_tags(
        &self,
        bucket: &Bucket,
        row: &ObjectRow,
        set: &[(String, String)],
    ) -> Result<Response<Body>, ApiError> {
        let mut headers = decode_headers(&row.headers);
        set_tags(&mut headers, set);
        let written = self
            .store()
            .set_object_headers(&row.bucket, &row.key, &row.blob, &encode_headers(&headers))
            .await
            .map_err(internal)?;
        self.forget(&row.key);
        if !written {
            // Replaced or deleted since it was read.
            return Err(match self.req.param("versionId") {
                Some(id) => no_such_version(&row.key, id),
                None => no_such_key(),
            });
        }
        let mut res = empty(StatusCode::OK);
        self.version_header(bucket, row, &mut res);
        Ok(res)
    }
}
