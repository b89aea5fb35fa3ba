-- S3 versioning. A bucket's state (NULL: never enabled; 'Enabled'; 'Suspended') and a counter
-- that orders versions: every object write takes the next value under the bucket row's lock,
-- which also serialises writes to one bucket's keys.
ALTER TABLE s3_buckets ADD COLUMN versioning TEXT;
ALTER TABLE s3_buckets ADD COLUMN version_seq BIGINT NOT NULL DEFAULT 0;
-- A bucket's tags (PutBucketTagging), in the `x-amz-tagging` encoding.
ALTER TABLE s3_buckets ADD COLUMN tags TEXT;

-- s3_objects keeps each key's current version; its id is 'null' when versioning did not make it.
ALTER TABLE s3_objects ADD COLUMN version_id TEXT NOT NULL DEFAULT 'null';
ALTER TABLE s3_objects ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;

-- Every other version: noncurrent objects and delete markers (a marker has no file). A key's
-- newest row here is its latest version only when s3_objects has no row for the key.
CREATE TABLE s3_versions (
    bucket        TEXT NOT NULL,
    object_key    TEXT COLLATE "C" NOT NULL,
    version_id    TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    delete_marker BIGINT NOT NULL,
    blob          TEXT,
    size          BIGINT NOT NULL,
    etag          TEXT NOT NULL,
    last_modified BIGINT NOT NULL,
    headers       TEXT NOT NULL,
    PRIMARY KEY (bucket, object_key, version_id)
);
CREATE INDEX s3_versions_by_seq ON s3_versions (bucket, object_key, seq);
