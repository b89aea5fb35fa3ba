//! Who may do what: headers that promise a protection S3 would keep (refused, never
//! ignored), the expected bucket owner, S3's condition keys, and the bucket policy as the
//! resource policy.

use super::*;

/// The customer-provided key headers (SSE-C) of an object and of a copy's source.
pub(super) const SSE_C: [&str; 3] = [
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
];

pub(super) const COPY_SOURCE_SSE_C: [&str; 3] = [
    "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
];

pub(super) const OBJECT_LOCK: [&str; 3] = [
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
];

pub(super) const KMS: [&str; 3] = [
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-context",
    "x-amz-server-side-encryption-bucket-key-enabled",
];

pub(super) const GRANTS: [&str; 5] = [
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
pub(super) fn refuse_unkept_promises(op: Op, req: &Req<'_>) -> Result<(), ApiError> {
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
pub(super) fn expect_owner(expected: Option<&str>, bucket: &Bucket) -> Result<(), ApiError> {
    match expected {
        Some(owner) if owner != bucket.row.account_id => {
            Err(err(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied"))
        }
        _ => Ok(()),
    }
}

/// A bucket's policy as the authorizer takes it.
pub(super) fn bucket_policy(bucket: &Bucket) -> ResourcePolicy<'_> {
    ResourcePolicy {
        policy: bucket.policy.as_ref(),
        account: &bucket.row.account_id,
    }
}

impl S3<'_, '_> {
    /// Condition keys every S3 request carries.
    pub(super) fn keys(&self, bucket: Option<&Bucket>) -> Vec<(String, Vec<String>)> {
        let mut keys = Vec::with_capacity(8);
        if let Some(version) = self.form {
            keys.push(("s3:authType".to_owned(), vec!["POST".to_owned()]));
            keys.push(("s3:signatureversion".to_owned(), vec![version.to_owned()]));
        }
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
            let v2 = self.ctx.presented.is_some_and(|p| p.legacy.is_some());
            keys.push((
                "s3:signatureversion".to_owned(),
                vec![if v2 { "AWS" } else { "AWS4-HMAC-SHA256" }.to_owned()],
            ));
            if !v2 {
                keys.push((
                    "s3:x-amz-content-sha256".to_owned(),
                    vec![self.hash.clone()],
                ));
            }
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
    pub(super) async fn allow(
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
                    Some(bucket_policy(bucket)),
                )
                .await
            }
            None => {
                authz::authorize_anonymous(self.ctx, action, resource, &keys, bucket_policy(bucket))
            }
        }
    }

    /// Bucket policy operations: the owner account's root may always read, replace and
    /// delete its bucket's policy, even one that denies it (so it cannot lock itself out);
    /// another account's caller is refused even when policies would allow it.
    pub(super) async fn allow_policy_change(
        &self,
        action: &str,
        bucket: &Bucket,
    ) -> Result<(), ApiError> {
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
}
