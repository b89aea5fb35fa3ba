//! Buckets: create, delete, head, location, list, bucket policies and CORS configurations.

use super::*;

impl S3<'_, '_> {
    pub(super) async fn list_buckets(&mut self) -> Result<Response<Body>, ApiError> {
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
        let mut buckets = self.store().buckets_of(&account).await.map_err(internal)?;
        // Pages (`max-buckets`, `continuation-token`) and filters (`prefix`, `bucket-region`).
        let max = match self.req.param("max-buckets") {
            None => usize::MAX,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| {
                    invalid_argument("max-buckets must be an integer between 1 and 10000")
                })?,
        };
        let after = self
            .req
            .param("continuation-token")
            .map(token_position)
            .transpose()?;
        let prefix = self.req.param("prefix").map(str::to_owned);
        let region = self.req.param("bucket-region").map(str::to_owned);
        buckets.retain(|b| {
            after.as_ref().is_none_or(|a| b.name.as_str() > a.as_str())
                && prefix
                    .as_ref()
                    .is_none_or(|p| b.name.starts_with(p.as_str()))
                && region.as_ref().is_none_or(|r| b.region == *r)
        });
        let next = if buckets.len() > max {
            buckets.truncate(max);
            buckets.last().map(|b| continuation_token(&b.name))
        } else {
            None
        };
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
                if let Some(token) = &next {
                    w.element("ContinuationToken", token);
                }
                if let Some(p) = &prefix {
                    w.element("Prefix", p);
                }
            },
        ))
    }

    pub(super) async fn create_bucket(&mut self, body: Body) -> Result<Response<Body>, ApiError> {
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
            cors: None,
            versioning: None,
            tags: None,
        };
        match self.store().create_bucket(&row).await {
            Ok(()) => {}
            Err(cognate_store::StoreError::Conflict) => {
                let owner = self.store().bucket(&name).await.map_err(internal)?;
                // For legacy compatibility S3 answers its owner's re-creation of a bucket in
                // us-east-1 with 200 OK; everywhere else with BucketAlreadyOwnedByYou.
                if owner
                    .as_ref()
                    .is_some_and(|b| b.account_id == account && b.region == "us-east-1")
                {
                    let mut res = empty(StatusCode::OK);
                    set_header(&mut res, "location", &format!("/{name}"));
                    return Ok(res);
                }
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

    pub(super) async fn delete_bucket(&mut self) -> Result<Response<Body>, ApiError> {
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

    pub(super) async fn head_bucket(&mut self) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        self.allow("s3:ListBucket", &self.req.bucket_arn(), &bucket, Vec::new())
            .await?;
        let mut res = empty(StatusCode::OK);
        set_header(&mut res, "x-amz-bucket-region", &bucket.row.region);
        Ok(res)
    }

    pub(super) async fn bucket_location(&mut self) -> Result<Response<Body>, ApiError> {
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

    pub(super) async fn get_bucket_policy(&mut self) -> Result<Response<Body>, ApiError> {
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

    pub(super) async fn put_bucket_policy(
        &mut self,
        body: Body,
    ) -> Result<Response<Body>, ApiError> {
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

    pub(super) async fn delete_bucket_policy(&mut self) -> Result<Response<Body>, ApiError> {
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
}

impl S3<'_, '_> {
    pub(super) async fn get_bucket_cors(&mut self) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        self.allow(
            "s3:GetBucketCORS",
            &self.req.bucket_arn(),
            &bucket,
            Vec::new(),
        )
        .await?;
        let Some(cors) = &bucket.cors else {
            return Err(err(
                StatusCode::NOT_FOUND,
                "NoSuchCORSConfiguration",
                "The CORS configuration does not exist",
            )
            .with_detail("BucketName", self.req.bucket.clone()));
        };
        let mut res = Response::new(Body::from(cors.to_xml()));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        Ok(res)
    }

    pub(super) async fn put_bucket_cors(&mut self, body: Body) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        self.allow(
            "s3:PutBucketCORS",
            &self.req.bucket_arn(),
            &bucket,
            Vec::new(),
        )
        .await?;
        let body = read_document(body).await?;
        let cors = s3::cors::parse(&body).map_err(|e| match e {
            s3::cors::CorsInvalid::Malformed => malformed_xml(),
            s3::cors::CorsInvalid::Invalid(m) => err(StatusCode::BAD_REQUEST, "InvalidRequest", m),
        })?;
        self.set_cors(Some(&cors.to_xml())).await
    }

    pub(super) async fn delete_bucket_cors(&mut self) -> Result<Response<Body>, ApiError> {
        let bucket = self.bucket().await?;
        self.allow(
            "s3:PutBucketCORS",
            &self.req.bucket_arn(),
            &bucket,
            Vec::new(),
        )
        .await?;
        self.set_cors(None).await
    }

    async fn set_cors(&mut self, cors: Option<&str>) -> Result<Response<Body>, ApiError> {
        if !self
            .store()
            .set_bucket_cors(&self.req.bucket, cors)
            .await
            .map_err(internal)?
        {
            return Err(no_such_bucket());
        }
        self.ctx.state.changed().await;
        Ok(empty(StatusCode::NO_CONTENT))
    }
}
