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
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("blob")?))
        .collect()
}

/// Inserts (or replaces) an object row inside `tx`, returning the file of the row it replaced.
/// The delete runs first so that a SQLite transaction takes the write lock at its first
/// statement. On PostgreSQL two concurrent writers of one key can both find nothing to
/// delete; the upsert then keeps the later row, and the earlier row's file is left unnamed
/// until the next start-up sweep.
async fn replace_object(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    row: &ObjectRow,
) -> Result<Option<Option<String>>> {
    let old =
        sqlx::query("DELETE FROM s3_objects WHERE bucket = $1 AND object_key = $2 RETURNING blob")
            .bind(&row.bucket)
            .bind(&row.key)
            .fetch_all(&mut **tx)
            .await?;
    let inserted = sqlx::query(
        "INSERT INTO s3_objects (bucket, object_key, blob, size, etag, last_modified, headers) \
         SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM s3_buckets WHERE name = $1) \
         ON CONFLICT (bucket, object_key) DO UPDATE SET blob = excluded.blob, size = excluded.size, \
         etag = excluded.etag, last_modified = excluded.last_modified, headers = excluded.headers",
    )
    .bind(&row.bucket)
    .bind(&row.key)
    .bind(&row.blob)
    .bind(row.size)
    .bind(&row.etag)
    .bind(row.last_modified)
    .bind(&row.headers)
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(None);
    }
    Ok(Some(blobs(&old)?.into_iter().next()))
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
        sqlx::query(
            "SELECT name, account_id, region, created_at, policy, cors FROM s3_buckets WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(bucket)
        .transpose()
    }

    /// An account's buckets by name.
    pub async fn buckets_of(&self, account_id: &str) -> Result<Vec<BucketRow>> {
        sqlx::query("SELECT name, account_id, region, created_at, policy, cors FROM s3_buckets WHERE account_id = $1 ORDER BY name")
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
        let deleted = sqlx::query(
            "DELETE FROM s3_buckets WHERE name = $1 \
             AND NOT EXISTS (SELECT 1 FROM s3_objects WHERE bucket = $1)",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        if deleted.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM s3_buckets WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            return Ok(if exists {
                BucketDeletion::NotEmpty
            } else {
                BucketDeletion::Missing
            });
        }
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
        tx.commit().await?;
        Ok(BucketDeletion::Deleted(blobs(&parts)?))
    }

    /// Stores an object row, replacing any with the same key. `None` when the bucket is gone;
    /// otherwise the replaced row's file, if there was one.
    pub async fn put_object(&self, row: &ObjectRow) -> Result<Option<Option<String>>> {
        let mut tx = self.pool.begin().await?;
        let replaced = replace_object(&mut tx, row).await?;
        tx.commit().await?;
        Ok(replaced)
    }

    pub async fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRow>> {
        sqlx::query("SELECT bucket, object_key, blob, size, etag, last_modified, headers FROM s3_objects WHERE bucket = $1 AND object_key = $2")
        .bind(bucket)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(object)
        .transpose()
    }

    /// Deletes an object row, returning its file (`None` when there was no such object).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<String>> {
        let rows = sqlx::query(
            "DELETE FROM s3_objects WHERE bucket = $1 AND object_key = $2 RETURNING blob",
        )
        .bind(bucket)
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        Ok(blobs(&rows)?.into_iter().next())
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
            "SELECT bucket, object_key, blob, size, etag, last_modified, headers FROM s3_objects \
             WHERE bucket = $1 AND object_key >= $2 ORDER BY object_key LIMIT $3"
        } else {
            "SELECT bucket, object_key, blob, size, etag, last_modified, headers FROM s3_objects \
             WHERE bucket = $1 AND object_key > $2 ORDER BY object_key LIMIT $3"
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

    /// Ends an upload by storing its object: drops the upload and its parts and puts the
    /// object row. `None` when the upload (or bucket) is gone; otherwise every file no row
    /// names any more (the parts', and the replaced object's).
    pub async fn complete_upload(
        &self,
        upload_id: &str,
        row: &ObjectRow,
    ) -> Result<Option<Vec<String>>> {
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
        let Some(replaced) = replace_object(&mut tx, row).await? else {
            return Ok(None);
        };
        tx.commit().await?;
        let mut unreferenced = blobs(&parts)?;
        unreferenced.extend(replaced);
        Ok(Some(unreferenced))
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
        let rows = sqlx::query("SELECT blob FROM s3_objects UNION ALL SELECT blob FROM s3_parts")
            .fetch_all(&self.pool)
            .await?;
        blobs(&rows)
    }
}
