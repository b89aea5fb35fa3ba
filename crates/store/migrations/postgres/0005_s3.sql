-- S3: buckets (names are global, each owned by one account), objects (their bytes live in
-- files under the data directory; rows name the file), multipart uploads and their parts.
-- Keys sort byte-wise ("C" collation), as S3 lists them.
CREATE TABLE s3_buckets (
    name       TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    region     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    policy     TEXT
);
CREATE INDEX s3_buckets_by_account ON s3_buckets (account_id);

CREATE TABLE s3_objects (
    bucket        TEXT NOT NULL,
    object_key    TEXT COLLATE "C" NOT NULL,
    blob          TEXT NOT NULL,
    size          BIGINT NOT NULL,
    etag          TEXT NOT NULL,
    last_modified BIGINT NOT NULL,
    headers       TEXT NOT NULL,
    PRIMARY KEY (bucket, object_key)
);

CREATE TABLE s3_uploads (
    upload_id  TEXT PRIMARY KEY,
    bucket     TEXT NOT NULL,
    object_key TEXT COLLATE "C" NOT NULL,
    initiator  TEXT NOT NULL,
    initiated  BIGINT NOT NULL,
    headers    TEXT NOT NULL
);
CREATE INDEX s3_uploads_by_key ON s3_uploads (bucket, object_key, upload_id);

CREATE TABLE s3_parts (
    upload_id     TEXT NOT NULL,
    part_number   BIGINT NOT NULL,
    blob          TEXT NOT NULL,
    size          BIGINT NOT NULL,
    etag          TEXT NOT NULL,
    last_modified BIGINT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
