-- A bucket's CORS configuration (PutBucketCors), as GetBucketCors returns it.
ALTER TABLE s3_buckets ADD COLUMN cors TEXT;
