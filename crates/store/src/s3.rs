//! S3 rows: buckets, objects, multipart uploads and parts. Object bytes are files the S3
//! service keeps; a row names its file (`blob`). Every call that drops or replaces a row
//! returns the files that no row names any more, for the caller to delete after the commit.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRow {
    pub name: String,
    pub account_id: String,
    pub region: String,
    pub created_at: i64,
    /// The bucket policy document, as the owner put it.
    pub policy: Option<String>,
    /// The CORS configuration document, as GetBucketCors returns it.
    pub cors: Option<String>,
    /// `Enabled` or `Suspended`; `None` for a bucket whose versioning was never enabled.
    pub versioning: Option<String>,
    /// The bucket's tags in the `x-amz-tagging` encoding; `None` when it has none.
    pub tags: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRow {
    pub bucket: String,
    pub key: String,
    pub blob: String,
    pub size: i64,
    /// With its quotes, as S3 returns it.
    pub etag: String,
    /// Unix milliseconds.
    pub last_modified: i64,
    /// Stored headers (content type, user metadata, checksums) as a JSON array of pairs.
    pub headers: String,
    /// `null` unless versioning made this version. On a write, the id to give the new
    /// version should the bucket's versioning be enabled.
    pub version_id: String,
}

/// One object version or delete marker, as ListObjectVersions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    pub key: String,
    pub version_id: String,
    pub delete_marker: bool,
    pub latest: bool,
    pub size: i64,
    pub etag: String,
    pub last_modified: i64,
    /// The version's place among its key's versions (greater is newer), for paging.
    pub seq: i64,
}

/// A version looked up by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    Object(ObjectRow),
    Marker {
        version_id: String,
        last_modified: i64,
    },
}

/// What an object write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The new version's id; `None` in a bucket whose versioning was never enabled.
    pub version_id: Option<String>,
    /// Files no row names any more (the replaced version's, outside versioning).
    pub unreferenced: Vec<String>,
}

/// What a delete without a version id did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Removed {
    /// The id of the delete marker it made, in a versioned bucket.
    pub marker: Option<String>,
    pub unreferenced: Vec<String>,
}

/// What deleting one version did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedVersion {
    pub was_marker: bool,
    pub unreferenced: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    /// ARN of the principal that started the upload.
    pub initiator: String,
    /// Unix milliseconds.
    pub initiated: i64,
    pub headers: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRow {
    pub upload_id: String,
    pub part_number: i64,
    pub blob: String,
    pub size: i64,
    pub etag: String,
    pub last_modified: i64,
}

/// What DeleteBucket found.
#[derive(Debug, PartialEq, Eq)]
pub enum BucketDeletion {
    Missing,
    NotEmpty,
    /// Deleted; the files of its unfinished uploads' parts are now unreferenced.
    Deleted(Vec<String>),
}

fn bucket(r: &AnyRow) -> Result<BucketRow> {
    Ok(BucketRow {
        name: r.try_get("name")?,
        account_id: r.try_get("account_id")?,
        region: r.try_get("region")?,
        created_at: r.try_get("created_at")?,
        policy: r.try_get("policy")?,
        cors: r.try_get("cors")?,
        versioning: r.try_get("versioning")?,
        tags: r.try_get("tags")?,
    })
}

fn object(r: &AnyRow) -> Result<ObjectRow> {
    Ok(ObjectRow {
        bucket: r.try_get("bucket")?,
        key: r.try_get("object_key")?,
        blob: r.try_get("blob")?,
        size: r.try_get("size")?,
        etag: r.try_get("etag")?,
        last_modified: r.try_get("last_modified")?,
        headers: r.try_get("headers")?,
        version_id: r.try_get("version_id")?,
    })
}

fn upload(r: &AnyRow) -> Result<UploadRow> {
    Ok(UploadRow {
        upload_id: r.try_get("upload_id")?,
        bucket: r.try_get("bucket")?,
        key: r.try_get("object_key")?,
        initiator: r.try_get("initiator")?,
        initiated: r.try_get("initiated")?,
        headers: r.try_get("headers")?,
    })
}

fn part(r: &AnyRow) -> Result<PartRow> {
    Ok(PartRow {
        upload_id: r.try_get("upload_id")?,
        part_number: r.try_get("part_number")?,
        blob: r.try_get("blob")?,
        size: r.try_get("size")?,
        etag: r.try_get("etag")?,
        last_modified: r.try_get("last_modified")?,
    })
}

fn blobs(rows: &[AnyRow]) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        // A delete marker names no file.
        if let Some(blob) = r.try_get::<Option<String>, _>("blob")? {
            out.push(blob);
        }
    }
    Ok(out)
}

/// The columns [`bucket`] reads, for `concat!` into a static query.
macro_rules! bucket_columns {
    () => {
        "name, account_id, region, created_at, policy, cors, versioning, tags"
    };
}

/// The columns [`object`] reads, for `concat!` into a static query.
macro_rules! object_columns {
    () => {
        "bucket, object_key, blob, size, etag, last_modified, headers, version_id"
    };
}

type Tx<'t> = sqlx::Transaction<'t, sqlx::Any>;

/// Takes the bucket row's lock for an object write, returning the next version sequence
/// number and the bucket's versioning state; `None` when the bucket is gone. On SQLite the
/// statement takes the database's write lock; on PostgreSQL it serialises writes to one
/// bucket, so a version moved aside is never lost to a concurrent writer of its key.
async fn lock_bucket(tx: &mut Tx<'_>, bucket: &str) -> Result<Option<(i64, Option<String>)>> {
    let row = sqlx::query(
        "UPDATE s3_buckets SET version_seq = version_seq + 1 WHERE name = $1 \
         RETURNING version_seq, versioning",
    )
    .bind(bucket)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| Ok((r.try_get("version_seq")?, r.try_get("versioning")?)))
        .transpose()
}

/// Moves a key's current version, if any, among its noncurrent versions.
async fn retire_current(tx: &mut Tx<'_>, bucket: &str, key: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO s3_versions (bucket, object_key, version_id, seq, delete_marker, blob, size, \
         etag, last_modified, headers) SELECT bucket, object_key, version_id, seq, 0, blob, size, \
         etag, last_modified, headers FROM s3_objects WHERE bucket = $1 AND object_key = $2",
    )
    .bind(bucket)
    .bind(key)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM s3_objects WHERE bucket = $1 AND object_key = $2")
        .bind(bucket)
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes a key's `null` versions (current or not), returning their files.
async fn drop_null_versions(tx: &mut Tx<'_>, bucket: &str, key: &str) -> Result<Vec<String>> {
    let mut rows = sqlx::query(
        "DELETE FROM s3_versions WHERE bucket = $1 AND object_key = $2 AND version_id = 'null' \
         RETURNING blob",
    )
    .bind(bucket)
    .bind(key)
    .fetch_all(&mut **tx)
    .await?;
    rows.extend(
        sqlx::query(
            "DELETE FROM s3_objects WHERE bucket = $1 AND object_key = $2 AND version_id = 'null' \
             RETURNING blob",
        )
        .bind(bucket)
        .bind(key)
        .fetch_all(&mut **tx)
        .await?,
    );
    blobs(&rows)
}

/// Clears the way for a key's new latest version as the bucket's versioning state has it:
/// never enabled, the current version goes; enabled, it becomes noncurrent; suspended, the
/// `null` version goes and any other current one becomes noncurrent. Returns the new
/// version's id and the files no row names any more.
async fn make_way(
    tx: &mut Tx<'_>,
    bucket: &str,
    key: &str,
    versioning: Option<&str>,
    fresh: &str,
) -> Result<(String, Vec<String>)> {
    match versioning {
        None => {
            let rows = sqlx::query(
                "DELETE FROM s3_objects WHERE bucket = $1 AND object_key = $2 RETURNING blob",
            )
            .bind(bucket)
            .bind(key)
            .fetch_all(&mut **tx)
            .await?;
            Ok(("null".to_owned(), blobs(&rows)?))
        }
        Some("Enabled") => {
            retire_current(tx, bucket, key).await?;
            Ok((fresh.to_owned(), Vec::new()))
        }
        Some(_) => {
            let freed = drop_null_versions(tx, bucket, key).await?;
            retire_current(tx, bucket, key).await?;
            Ok(("null".to_owned(), freed))
        }
    }
}

/// Writes an object version inside `tx`, which holds the bucket row's lock (`seq` and
/// `versioning` are what taking it returned).
async fn write_object(
    tx: &mut Tx<'_>,
    row: &ObjectRow,
    (seq, versioning): (i64, Option<String>),
) -> Result<Written> {
    let (version_id, unreferenced) = make_way(
        tx,
        &row.bucket,
        &row.key,
        versioning.as_deref(),
        &row.version_id,
    )
    .await?;
    sqlx::query(
        "INSERT INTO s3_objects (bucket, object_key, blob, size, etag, last_modified, headers, \
         version_id, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&row.bucket)
    .bind(&row.key)
    .bind(&row.blob)
    .bind(row.size)
    .bind(&row.etag)
    .bind(row.last_modified)
    .bind(&row.headers)
    .bind(&version_id)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    Ok(Written {
        version_id: versioning.map(|_| version_id),
        unreferenced,
    })
}

/// After a version is deleted, a key without a current version whose newest remaining
/// version is an object (not a delete marker) has that version current again.
async fn promote_newest(tx: &mut Tx<'_>, bucket: &str, key: &str) -> Result<()> {
    let newest = sqlx::query(
        "SELECT version_id, delete_marker FROM s3_versions WHERE bucket = $1 AND object_key = $2 \
         AND NOT EXISTS (SELECT 1 FROM s3_objects WHERE bucket = $1 AND object_key = $2) \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(bucket)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(newest) = newest else {
        return Ok(());
    };
    if newest.try_get::<i64, _>("delete_marker")? != 0 {
        return Ok(());
    }
    let version_id: String = newest.try_get("version_id")?;
    sqlx::query(
        "INSERT INTO s3_objects (bucket, object_key, blob, size, etag, last_modified, headers, \
         version_id, seq) SELECT bucket, object_key, blob, size, etag, last_modified, headers, \
         version_id, seq FROM s3_versions WHERE bucket = $1 AND object_key = $2 AND version_id = $3",
    )
    .bind(bucket)
    .bind(key)
    .bind(&version_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM s3_versions WHERE bucket = $1 AND object_key = $2 AND version_id = $3",
    )
    .bind(bucket)
    .bind(key)
    .bind(&version_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Creates a bucket; `Conflict` when the (global) name is taken.
    pub async fn create_bucket(&self, row: &BucketRow) -> Result<()> {
        sqlx::query("INSERT INTO s3_buckets (name, account_id, region, created_at, policy, cors) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&row.name)
            .bind(&row.account_id)
            .bind(&row.region)
            .bind(row.created_at)
            .bind(&row.policy)
            .bind(&row.cors)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn bucket(&self, name: &str) -> Result<Option<BucketRow>> {
        sqlx::query(concat!(
            "SELECT ",
            bucket_columns!(),
            " FROM s3_buckets WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(bucket)
        .transpose()
    }

    /// An account's buckets by name.
    pub async fn buckets_of(&self, account_id: &str) -> Result<Vec<BucketRow>> {
        sqlx::query(concat!(
            "SELECT ",
            bucket_columns!(),
            " FROM s3_buckets WHERE account_id = $1 ORDER BY name"
        ))
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(bucket)
        .collect()
    }

    /// Sets or (with `None`) removes a bucket's policy; false when there is no such bucket.
    pub async fn set_bucket_policy(&self, name: &str, policy: Option<&str>) -> Result<bool> {
        let done = sqlx::query("UPDATE s3_buckets SET policy = $2 WHERE name = $1")
            .bind(name)
            .bind(policy)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets or (with `None`) removes a bucket's CORS configuration; false when there is no
    /// such bucket.
    pub async fn set_bucket_cors(&self, name: &str, cors: Option<&str>) -> Result<bool> {
        let done = sqlx::query("UPDATE s3_buckets SET cors = $2 WHERE name = $1")
            .bind(name)
            .bind(cors)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes an empty bucket with its unfinished multipart uploads.
    pub async fn delete_bucket(&self, name: &str) -> Result<BucketDeletion> {
        let mut tx = self.pool.begin().await?;
        // The bucket row's lock first, as every object write takes it: on PostgreSQL the
        // emptiness check below then sees every write that committed before it (a check in
        // the same statement as the lock would not, and could orphan an object).
        if lock_bucket(&mut tx, name).await?.is_none() {
            return Ok(BucketDeletion::Missing);
        }
        let busy = sqlx::query(
            "SELECT 1 FROM s3_objects WHERE bucket = $1 \
             UNION ALL SELECT 1 FROM s3_versions WHERE bucket = $1 LIMIT 1",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        if busy.is_some() {
            return Ok(BucketDeletion::NotEmpty);
        }
        // Uploads before their parts, in the order an abort takes them, so the two never
        // wait on each other.
        sqlx::query("UPDATE s3_uploads SET bucket = bucket WHERE bucket = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let parts = sqlx::query(
            "DELETE FROM s3_parts WHERE upload_id IN (SELECT upload_id FROM s3_uploads WHERE bucket = $1) RETURNING blob",
        )
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM s3_uploads WHERE bucket = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM s3_buckets WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(BucketDeletion::Deleted(blobs(&parts)?))
    }

    /// Sets or (with `None`) removes a bucket's tags; false when there is no such bucket.
    pub async fn set_bucket_tags(&self, name: &str, tags: Option<&str>) -> Result<bool> {
        let done = sqlx::query("UPDATE s3_buckets SET tags = $2 WHERE name = $1")
            .bind(name)
            .bind(tags)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets a bucket's versioning state (`Enabled` or `Suspended`); false when there is no
    /// such bucket.
    pub async fn set_bucket_versioning(&self, name: &str, status: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE s3_buckets SET versioning = $2 WHERE name = $1")
            .bind(name)
            .bind(status)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores a new version of an object: it replaces the current one, or (versioning on)
    /// pushes it down among the noncurrent versions. `None` when the bucket is gone.
    pub async fn put_object(&self, row: &ObjectRow) -> Result<Option<Written>> {
        let mut tx = self.pool.begin().await?;
        let Some(lock) = lock_bucket(&mut tx, &row.bucket).await? else {
            return Ok(None);
        };
        let written = write_object(&mut tx, row, lock).await?;
        tx.commit().await?;
        Ok(Some(written))
    }

    /// A key's current version.
    pub async fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRow>> {
        sqlx::query(concat!(
            "SELECT ",
            object_columns!(),
            " FROM s3_objects WHERE bucket = $1 AND object_key = $2"
        ))
        .bind(bucket)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(object)
        .transpose()
    }

    /// One version of a key by its id, current or not, object or delete marker.
    pub async fn object_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<Version>> {
        let current = sqlx::query(concat!(
            "SELECT ",
            object_columns!(),
            " FROM s3_objects WHERE bucket = $1 AND object_key = $2 AND version_id = $3"
        ))
        .bind(bucket)
        .bind(key)
        .bind(version_id)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = current {
            return Ok(Some(Version::Object(object(&r)?)));
        }
        let Some(r) = sqlx::query(concat!(
            "SELECT ",
            object_columns!(),
            ", delete_marker FROM s3_versions WHERE bucket = $1 AND object_key = $2 \
             AND version_id = $3"
        ))
        .bind(bucket)
        .bind(key)
        .bind(version_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        if r.try_get::<i64, _>("delete_marker")? != 0 {
            return Ok(Some(Version::Marker {
                version_id: r.try_get("version_id")?,
                last_modified: r.try_get("last_modified")?,
            }));
        }
        Ok(Some(Version::Object(object(&r)?)))
    }

    /// Replaces the stored headers (tags among them) of the version whose file is `blob`,
    /// current or not; false when that version is gone (replaced or deleted meanwhile).
    pub async fn set_object_headers(
        &self,
        bucket: &str,
        key: &str,
        blob: &str,
        headers: &str,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let mut done = 0;
        for sql in [
            "UPDATE s3_objects SET headers = $4 WHERE bucket = $1 AND object_key = $2 AND blob = $3",
            "UPDATE s3_versions SET headers = $4 WHERE bucket = $1 AND object_key = $2 AND blob = $3",
        ] {
            done += sqlx::query(sql)
                .bind(bucket)
                .bind(key)
                .bind(blob)
                .bind(headers)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(done > 0)
    }

    /// The delete marker that is a key's latest version, if one is: its id and time.
    pub async fn latest_marker(&self, bucket: &str, key: &str) -> Result<Option<(String, i64)>> {
        let newest = sqlx::query(
            "SELECT version_id, last_modified, delete_marker FROM s3_versions WHERE bucket = $1 \
             AND object_key = $2 AND NOT EXISTS \
             (SELECT 1 FROM s3_objects WHERE bucket = $1 AND object_key = $2) \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(bucket)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        match newest {
            Some(r) if r.try_get::<i64, _>("delete_marker")? != 0 => Ok(Some((
                r.try_get("version_id")?,
                r.try_get("last_modified")?,
            ))),
            _ => Ok(None),
        }
    }

    /// Deletes a key as a request without a version id does: outside versioning the object
    /// goes; otherwise a delete marker (id `fresh`, or `null` while versioning is suspended)
    /// becomes the latest version. Nothing happens when the bucket is gone.
    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        fresh: &str,
        now: i64,
    ) -> Result<Removed> {
        let mut tx = self.pool.begin().await?;
        let Some((seq, versioning)) = lock_bucket(&mut tx, bucket).await? else {
            return Ok(Removed::default());
        };
        let (version_id, unreferenced) =
            make_way(&mut tx, bucket, key, versioning.as_deref(), fresh).await?;
        if versioning.is_some() {
            sqlx::query(
                "INSERT INTO s3_versions (bucket, object_key, version_id, seq, delete_marker, \
                 blob, size, etag, last_modified, headers) \
                 VALUES ($1, $2, $3, $4, 1, NULL, 0, '', $5, '[]')",
            )
            .bind(bucket)
            .bind(key)
            .bind(&version_id)
            .bind(seq)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Removed {
            marker: versioning.map(|_| version_id),
            unreferenced,
        })
    }

    /// Deletes one version for good; when it was the current one, the newest remaining
    /// object version becomes current. `None` when there is no such version.
    pub async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<RemovedVersion>> {
        let mut tx = self.pool.begin().await?;
        if lock_bucket(&mut tx, bucket).await?.is_none() {
            return Ok(None);
        }
        let current = sqlx::query(
            "DELETE FROM s3_objects WHERE bucket = $1 AND object_key = $2 AND version_id = $3 \
             RETURNING blob",
        )
        .bind(bucket)
        .bind(key)
        .bind(version_id)
        .fetch_all(&mut *tx)
        .await?;
        let removed = if current.is_empty() {
            let rows = sqlx::query(
                "DELETE FROM s3_versions WHERE bucket = $1 AND object_key = $2 \
                 AND version_id = $3 RETURNING blob, delete_marker",
            )
            .bind(bucket)
            .bind(key)
            .bind(version_id)
            .fetch_all(&mut *tx)
            .await?;
            let Some(first) = rows.first() else {
                return Ok(None);
            };
            RemovedVersion {
                was_marker: first.try_get::<i64, _>("delete_marker")? != 0,
                unreferenced: blobs(&rows)?,
            }
        } else {
            RemovedVersion {
                was_marker: false,
                unreferenced: blobs(&current)?,
            }
        };
        promote_newest(&mut tx, bucket, key).await?;
        tx.commit().await?;
        Ok(Some(removed))
    }

    /// Every version and delete marker in key order, newest first within a key, starting
    /// after the version numbered `before_seq` of `after_key` (`i64::MAX`: with all of
    /// `after_key`'s versions; `i64::MIN`: with the next key).
    pub async fn list_versions(
        &self,
        bucket: &str,
        after_key: &str,
        before_seq: i64,
        limit: i64,
    ) -> Result<Vec<VersionEntry>> {
        let rows = sqlx::query(
            "SELECT object_key, version_id, seq, CAST(0 AS BIGINT) AS delete_marker, \
             CAST(1 AS BIGINT) AS latest, size, etag, last_modified FROM s3_objects \
             WHERE bucket = $1 AND (object_key > $2 OR (object_key = $2 AND seq < $3)) \
             UNION ALL \
             SELECT v.object_key, v.version_id, v.seq, v.delete_marker, \
             CAST(CASE WHEN NOT EXISTS (SELECT 1 FROM s3_objects o WHERE o.bucket = v.bucket \
             AND o.object_key = v.object_key) AND NOT EXISTS (SELECT 1 FROM s3_versions w \
             WHERE w.bucket = v.bucket AND w.object_key = v.object_key AND w.seq > v.seq) \
             THEN 1 ELSE 0 END AS BIGINT) AS latest, v.size, v.etag, v.last_modified \
             FROM s3_versions v WHERE v.bucket = $1 \
             AND (v.object_key > $2 OR (v.object_key = $2 AND v.seq < $3)) \
             ORDER BY object_key, seq DESC LIMIT $4",
        )
        .bind(bucket)
        .bind(after_key)
        .bind(before_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(VersionEntry {
                    key: r.try_get("object_key")?,
                    version_id: r.try_get("version_id")?,
                    delete_marker: r.try_get::<i64, _>("delete_marker")? != 0,
                    latest: r.try_get::<i64, _>("latest")? != 0,
                    size: r.try_get("size")?,
                    etag: r.try_get("etag")?,
                    last_modified: r.try_get("last_modified")?,
                    seq: r.try_get("seq")?,
                })
            })
            .collect()
    }

    /// The sequence number of one version, for resuming a version listing after it.
    pub async fn version_seq(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT seq FROM s3_objects WHERE bucket = $1 AND object_key = $2 AND version_id = $3 \
             UNION ALL SELECT seq FROM s3_versions WHERE bucket = $1 AND object_key = $2 \
             AND version_id = $3",
        )
        .bind(bucket)
        .bind(key)
        .bind(version_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok(r.try_get("seq")?)).transpose()
    }

    /// Objects in key order, starting at `from` (inclusive) or after it.
    pub async fn list_objects(
        &self,
        bucket: &str,
        from: &str,
        inclusive: bool,
        limit: i64,
    ) -> Result<Vec<ObjectRow>> {
        let sql = if inclusive {
            concat!(
                "SELECT ",
                object_columns!(),
                " FROM s3_objects WHERE bucket = $1 AND object_key >= $2 ORDER BY object_key LIMIT $3"
            )
        } else {
            concat!(
                "SELECT ",
                object_columns!(),
                " FROM s3_objects WHERE bucket = $1 AND object_key > $2 ORDER BY object_key LIMIT $3"
            )
        };
        sqlx::query(sql)
            .bind(bucket)
            .bind(from)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(object)
            .collect()
    }

    /// Starts a multipart upload; false when the bucket is gone.
    pub async fn create_upload(&self, row: &UploadRow) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO s3_uploads (upload_id, bucket, object_key, initiator, initiated, headers) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM s3_buckets WHERE name = $2)",
        )
        .bind(&row.upload_id)
        .bind(&row.bucket)
        .bind(&row.key)
        .bind(&row.initiator)
        .bind(row.initiated)
        .bind(&row.headers)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn upload(&self, upload_id: &str) -> Result<Option<UploadRow>> {
        sqlx::query("SELECT upload_id, bucket, object_key, initiator, initiated, headers FROM s3_uploads WHERE upload_id = $1")
        .bind(upload_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(upload)
        .transpose()
    }

    /// A bucket's unfinished uploads ordered by key then upload id, after the given markers.
    pub async fn list_uploads(
        &self,
        bucket: &str,
        key_marker: &str,
        upload_id_marker: &str,
        limit: i64,
    ) -> Result<Vec<UploadRow>> {
        sqlx::query("SELECT upload_id, bucket, object_key, initiator, initiated, headers FROM s3_uploads WHERE bucket = $1 \
             AND (object_key > $2 OR (object_key = $2 AND upload_id > $3)) \
             ORDER BY object_key, upload_id LIMIT $4")
        .bind(bucket)
        .bind(key_marker)
        .bind(upload_id_marker)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(upload)
        .collect()
    }

    /// Stores a part, replacing one with the same number. `None` when the upload is gone;
    /// otherwise the replaced part's file, if there was one.
    pub async fn put_part(&self, row: &PartRow) -> Result<Option<Option<String>>> {
        let mut tx = self.pool.begin().await?;
        let old = sqlx::query(
            "DELETE FROM s3_parts WHERE upload_id = $1 AND part_number = $2 RETURNING blob",
        )
        .bind(&row.upload_id)
        .bind(row.part_number)
        .fetch_all(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO s3_parts (upload_id, part_number, blob, size, etag, last_modified) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM s3_uploads WHERE upload_id = $1) \
             ON CONFLICT (upload_id, part_number) DO UPDATE SET blob = excluded.blob, \
             size = excluded.size, etag = excluded.etag, last_modified = excluded.last_modified",
        )
        .bind(&row.upload_id)
        .bind(row.part_number)
        .bind(&row.blob)
        .bind(row.size)
        .bind(&row.etag)
        .bind(row.last_modified)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if inserted.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(Some(blobs(&old)?.into_iter().next()))
    }

    /// An upload's parts in order, after part number `after`.
    pub async fn list_parts(
        &self,
        upload_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<PartRow>> {
        sqlx::query("SELECT upload_id, part_number, blob, size, etag, last_modified FROM s3_parts WHERE upload_id = $1 AND part_number > $2 \
             ORDER BY part_number LIMIT $3")
        .bind(upload_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(part)
        .collect()
    }

    /// Ends an upload by storing its object: drops the upload and its parts and writes the
    /// object version. `None` when the upload (or bucket) is gone; otherwise the write, whose
    /// files no row names any more include the parts'.
    pub async fn complete_upload(
        &self,
        upload_id: &str,
        row: &ObjectRow,
    ) -> Result<Option<Written>> {
        let mut tx = self.pool.begin().await?;
        // The bucket first, in the order DeleteBucket takes its locks.
        let Some(lock) = lock_bucket(&mut tx, &row.bucket).await? else {
            return Ok(None);
        };
        let gone = sqlx::query("DELETE FROM s3_uploads WHERE upload_id = $1")
            .bind(upload_id)
            .execute(&mut *tx)
            .await?;
        if gone.rows_affected() == 0 {
            return Ok(None);
        }
        let parts = sqlx::query("DELETE FROM s3_parts WHERE upload_id = $1 RETURNING blob")
            .bind(upload_id)
            .fetch_all(&mut *tx)
            .await?;
        let mut written = write_object(&mut tx, row, lock).await?;
        tx.commit().await?;
        written.unreferenced.extend(blobs(&parts)?);
        Ok(Some(written))
    }

    /// Drops an upload and its parts, returning the parts' files; `None` when it was gone.
    pub async fn abort_upload(&self, upload_id: &str) -> Result<Option<Vec<String>>> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM s3_uploads WHERE upload_id = $1")
            .bind(upload_id)
            .execute(&mut *tx)
            .await?;
        if gone.rows_affected() == 0 {
            return Ok(None);
        }
        let parts = sqlx::query("DELETE FROM s3_parts WHERE upload_id = $1 RETURNING blob")
            .bind(upload_id)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(blobs(&parts)?))
    }

    /// Every file a row names, for sweeping files a crash left behind.
    pub async fn referenced_blobs(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT blob FROM s3_objects UNION ALL SELECT blob FROM s3_parts \
             UNION ALL SELECT blob FROM s3_versions WHERE blob IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        blobs(&rows)
    }
}
