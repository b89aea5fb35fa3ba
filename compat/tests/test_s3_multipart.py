"""Multipart objects read part by part (`partNumber`) and built from other objects
(UploadPartCopy, as boto3's managed copy and `aws s3 cp` between buckets do), with boto3."""

import hashlib
import os

import botocore.exceptions
import pytest
from boto3.s3.transfer import TransferConfig

from test_s3 import user_client
from test_sts import error_of

MIB = 1024 * 1024


def refused(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return error_of(e)


def multipart(s3, bucket, key, parts):
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n,
                                                     Body=data)["ETag"]}
            for n, data in enumerate(parts, 1)]
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up, MultipartUpload={"Parts": done})


def test_objects_are_read_part_by_part(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="partread")
    parts = [os.urandom(5 * MIB), b"the tail"]
    etag = multipart(s3, "partread", "mp", parts)["ETag"]
    for n, data in enumerate(parts, 1):
        got = s3.get_object(Bucket="partread", Key="mp", PartNumber=n)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert (got["PartsCount"], got["ETag"], got["Body"].read()) == (2, etag, data)
        start = sum(len(p) for p in parts[:n - 1])
        assert got["ContentRange"] == f"bytes {start}-{start + len(data) - 1}/{sum(map(len, parts))}"
    head = s3.head_object(Bucket="partread", Key="mp", PartNumber=2)
    assert (head["ContentLength"], head["PartsCount"]) == (len(parts[1]), 2)
    assert refused(lambda: s3.get_object(Bucket="partread", Key="mp", PartNumber=3)) == ("InvalidPart", 400)
    assert refused(lambda: s3.get_object(Bucket="partread", Key="mp", PartNumber=1, Range="bytes=0-1")) == (
        "InvalidRequest", 400)
    # An object put in one piece is its own part 1.
    s3.put_object(Bucket="partread", Key="one", Body=b"0123456789")
    got = s3.get_object(Bucket="partread", Key="one", PartNumber=1)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert (got["ContentRange"], got["Body"].read()) == ("bytes 0-9/10", b"0123456789")
    assert "PartsCount" not in got
    assert refused(lambda: s3.get_object(Bucket="partread", Key="one", PartNumber=2)) == ("InvalidPart", 400)
    assert refused(lambda: s3.get_object(Bucket="partread", Key="one", PartNumber=0)) == ("InvalidArgument", 400)


def test_upload_part_copy_builds_objects_from_others(server):
    s3 = server.client("s3")
    for b in ["srcbucket", "dstbucket"]:
        s3.create_bucket(Bucket=b)
    data = os.urandom(6 * MIB + 17)
    s3.put_object(Bucket="srcbucket", Key="big", Body=data)
    up = s3.create_multipart_upload(Bucket="dstbucket", Key="joined")["UploadId"]
    # Part 1 a range, part 2 the whole source (no range), part 3 the rest.
    ranges = [(0, 5 * MIB - 1), None, (5 * MIB, len(data) - 1)]
    done = []
    for n, r in enumerate(ranges, 1):
        extra = {"CopySourceRange": f"bytes={r[0]}-{r[1]}"} if r else {}
        out = s3.upload_part_copy(Bucket="dstbucket", Key="joined", UploadId=up, PartNumber=n,
                                  CopySource={"Bucket": "srcbucket", "Key": "big"}, **extra)
        expected = data[r[0]:r[1] + 1] if r else data
        assert out["CopyPartResult"]["ETag"] == '"%s"' % hashlib.md5(expected).hexdigest()
        done.append({"PartNumber": n, "ETag": out["CopyPartResult"]["ETag"]})
    parts = s3.list_parts(Bucket="dstbucket", Key="joined", UploadId=up)["Parts"]
    assert [p["Size"] for p in parts] == [5 * MIB, len(data), len(data) - 5 * MIB]
    s3.complete_multipart_upload(Bucket="dstbucket", Key="joined", UploadId=up, MultipartUpload={"Parts": done})
    joined = s3.get_object(Bucket="dstbucket", Key="joined")["Body"].read()
    assert hashlib.sha256(joined).digest() == hashlib.sha256(data[:5 * MIB] + data + data[5 * MIB:]).digest()

    up = s3.create_multipart_upload(Bucket="dstbucket", Key="bad")["UploadId"]
    for bad in [f"bytes=0-{len(data)}", "bytes=5-4", "bytes=0-"]:
        assert refused(lambda: s3.upload_part_copy(
            Bucket="dstbucket", Key="bad", UploadId=up, PartNumber=1,
            CopySource={"Bucket": "srcbucket", "Key": "big"}, CopySourceRange=bad)) == ("InvalidArgument", 400)
    assert refused(lambda: s3.upload_part_copy(
        Bucket="dstbucket", Key="bad", UploadId=up, PartNumber=1,
        CopySource={"Bucket": "srcbucket", "Key": "missing"})) == ("NoSuchKey", 404)
    assert refused(lambda: s3.upload_part_copy(
        Bucket="dstbucket", Key="bad", UploadId="nope", PartNumber=1,
        CopySource={"Bucket": "srcbucket", "Key": "big"})) == ("NoSuchUpload", 404)

    # Copying a part needs read access to the source, not only write access to the target.
    writer = user_client(server, server.client("iam"), "writer", policy={
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:PutObject",
                                                "Resource": "arn:aws:s3:::dstbucket/*"}]})
    assert refused(lambda: writer.upload_part_copy(
        Bucket="dstbucket", Key="bad", UploadId=up, PartNumber=1,
        CopySource={"Bucket": "srcbucket", "Key": "big"})) == ("AccessDenied", 403)

    # boto3's managed copy of a large object goes through UploadPartCopy.
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.copy({"Bucket": "srcbucket", "Key": "big"}, "dstbucket", "managed", Config=config)
    head = s3.head_object(Bucket="dstbucket", Key="managed")
    assert head["ETag"].endswith('-2"')
    assert s3.get_object(Bucket="dstbucket", Key="managed")["Body"].read() == data
