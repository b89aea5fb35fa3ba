"""The S3 object service with boto3, the AWS CLI and plain HTTP: object round trips (single
and multipart, with S3's ETags), listings, conditional and ranged reads, presigned URLs, and
authorization by IAM policies, bucket policies and cross-account roles."""

import hashlib
import json
import os
import subprocess
import sys
import time

import boto3
import botocore.config
import botocore.exceptions
import pytest
import requests
from boto3.s3.transfer import TransferConfig

from test_assume_role import creds_of, setup_accounts, trust
from test_sts import error_of

MIB = 1024 * 1024


def s3_etag(data, part_size=None):
    if part_size is None or len(data) <= part_size:
        return '"%s"' % hashlib.md5(data).hexdigest()
    md5s = [hashlib.md5(data[i:i + part_size]).digest() for i in range(0, len(data), part_size)]
    return '"%s-%d"' % (hashlib.md5(b"".join(md5s)).hexdigest(), len(md5s))


def user_client(server, iam, name, service="s3", policy=None):
    iam.create_user(UserName=name)
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return server.client(service, key["AccessKeyId"], key["SecretAccessKey"])


def test_round_trip_of_empty_small_and_multipart_objects(server, tmp_path):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="data")
    for size in [0, 1024]:
        body = os.urandom(size)
        put = s3.put_object(Bucket="data", Key=f"obj-{size}", Body=body, ContentType="application/x-test",
                            Metadata={"colour": "blue"})
        assert put["ETag"] == s3_etag(body)
        got = s3.get_object(Bucket="data", Key=f"obj-{size}")
        assert got["Body"].read() == body
        assert got["ETag"] == s3_etag(body)
        assert got["ContentLength"] == size
        assert got["ContentType"] == "application/x-test"
        assert got["Metadata"] == {"colour": "blue"}

    # 100 MiB through boto3's managed transfer: multipart in 8 MiB parts, read back whole.
    big = os.urandom(100 * MIB)
    src = tmp_path / "big.bin"
    src.write_bytes(big)
    config = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=4)
    s3.upload_file(str(src), "data", "big.bin", Config=config)
    head = s3.head_object(Bucket="data", Key="big.bin")
    assert head["ContentLength"] == len(big)
    assert head["ETag"] == s3_etag(big, 8 * MIB)
    assert head["ETag"].endswith('-13"')
    dst = tmp_path / "back.bin"
    s3.download_file("data", "big.bin", str(dst), Config=config)
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(big).digest()
    assert not s3.list_multipart_uploads(Bucket="data").get("Uploads")


def test_listing_with_prefixes_delimiters_and_pages(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="list")
    keys = ["a.txt", "photos/2024/jan.jpg", "photos/2024/feb.jpg", "photos/2025/mar.jpg",
            "photos/top.jpg", "z/one", "z/two", "with space+plus.txt"]
    for k in keys:
        s3.put_object(Bucket="list", Key=k, Body=b"x")
    out = s3.list_objects_v2(Bucket="list", Delimiter="/")
    assert [o["Key"] for o in out["Contents"]] == ["a.txt", "with space+plus.txt"]
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["photos/", "z/"]
    assert out["KeyCount"] == 4
    out = s3.list_objects_v2(Bucket="list", Prefix="photos/", Delimiter="/")
    assert [o["Key"] for o in out["Contents"]] == ["photos/top.jpg"]
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["photos/2024/", "photos/2025/"]

    # Pages of two, through the paginator (continuation tokens), cover every key once in order.
    seen = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="list", PaginationConfig={"PageSize": 2}):
        seen += [o["Key"] for o in page.get("Contents", [])]
    assert seen == sorted(keys)
    # ListObjects (v1) pages by marker; common prefixes count toward MaxKeys.
    page = s3.list_objects(Bucket="list", Delimiter="/", MaxKeys=3)
    assert page["IsTruncated"] is True
    assert [o["Key"] for o in page["Contents"]] == ["a.txt", "with space+plus.txt"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["photos/"]
    assert page["NextMarker"] == "with space+plus.txt"
    rest = s3.list_objects(Bucket="list", Delimiter="/", Marker=page["NextMarker"])
    assert rest.get("Contents") is None
    assert [p["Prefix"] for p in rest["CommonPrefixes"]] == ["z/"]
    # A common prefix as the marker skips everything under it.
    page = s3.list_objects(Bucket="list", Delimiter="/", MaxKeys=2)
    assert page["NextMarker"] == "photos/"
    rest = s3.list_objects(Bucket="list", Delimiter="/", Marker="photos/")
    assert [o["Key"] for o in rest["Contents"]] == ["with space+plus.txt"]
    assert s3.list_objects_v2(Bucket="list", StartAfter="photos/top.jpg")["Contents"][0]["Key"] == "with space+plus.txt"
    assert s3.list_objects_v2(Bucket="list", Prefix="nothing/").get("Contents") is None


def test_ranges_conditions_copies_and_deletes(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="ops")
    body = bytes(range(256)) * 4
    etag = s3.put_object(Bucket="ops", Key="k", Body=body)["ETag"]
    part = s3.get_object(Bucket="ops", Key="k", Range="bytes=10-19")
    assert part["Body"].read() == body[10:20]
    assert part["ContentRange"] == "bytes 10-19/1024"
    assert s3.get_object(Bucket="ops", Key="k", Range="bytes=-4")["Body"].read() == body[-4:]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket="ops", Key="k", Range="bytes=5000-")
    assert error_of(e) == ("InvalidRange", 416)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket="ops", Key="k", IfMatch='"0000"')
    assert error_of(e) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket="ops", Key="k", IfMatch=etag)["Body"].read() == body
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket="ops", Key="k", IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket="ops", Key="k", IfModifiedSince=time.time() + 3600)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304

    s3.put_object(Bucket="ops", Key="src", Body=b"copy me", ContentType="text/plain", Metadata={"a": "1"})
    copied = s3.copy_object(Bucket="ops", Key="dst", CopySource={"Bucket": "ops", "Key": "src"})
    assert copied["CopyObjectResult"]["ETag"] == s3_etag(b"copy me")
    got = s3.get_object(Bucket="ops", Key="dst")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (b"copy me", "text/plain", {"a": "1"})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.copy_object(Bucket="ops", Key="src", CopySource={"Bucket": "ops", "Key": "src"})
    assert error_of(e) == ("InvalidRequest", 400)

    out = s3.delete_objects(Bucket="ops", Delete={"Objects": [{"Key": "src"}, {"Key": "dst"}, {"Key": "never"}]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["dst", "never", "src"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket="ops", Key="src")
    assert error_of(e) == ("NoSuchKey", 404)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_bucket(Bucket="ops")
    assert error_of(e) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket="ops", Key="k")
    s3.delete_bucket(Bucket="ops")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_bucket(Bucket="ops")
    assert error_of(e) == ("404", 404)


def test_bucket_errors_names_and_ownership(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="taken")
    # Its owner re-creating it in us-east-1 gets 200, for legacy compatibility, as on S3.
    assert s3.create_bucket(Bucket="taken")["ResponseMetadata"]["HTTPStatusCode"] == 200
    b, _ = setup_accounts(server)
    admin_b = server.admin("sts").assume_role(
        RoleArn=f"arn:aws:iam::{b}:role/OrganizationAccountAccessRole", RoleSessionName="admin-b")
    s3_b = server.client("s3", *creds_of(admin_b))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3_b.create_bucket(Bucket="taken")
    assert error_of(e) == ("BucketAlreadyExists", 409)
    # Each account lists only its own buckets.
    s3_b.create_bucket(Bucket="b-only")
    assert [x["Name"] for x in s3_b.list_buckets()["Buckets"]] == ["b-only"]
    assert [x["Name"] for x in s3.list_buckets()["Buckets"]] == ["taken"]
    for bad in ["UPPER", "ab", "bad..dots", "192.168.1.1"]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.create_bucket(Bucket=bad)
        assert error_of(e) == ("InvalidBucketName", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket="no-such-bucket", Key="k")
    assert error_of(e) == ("NoSuchBucket", 404)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.create_bucket(Bucket="elsewhere", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert error_of(e) == ("IllegalLocationConstraintException", 400)
    assert s3.get_bucket_location(Bucket="taken")["LocationConstraint"] is None


def test_multipart_rules_listing_and_abort(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="multi")
    up = s3.create_multipart_upload(Bucket="multi", Key="obj", ContentType="text/csv")["UploadId"]
    small = s3.upload_part(Bucket="multi", Key="obj", UploadId=up, PartNumber=1, Body=b"a" * 100)
    last = s3.upload_part(Bucket="multi", Key="obj", UploadId=up, PartNumber=2, Body=b"b")
    parts = s3.list_parts(Bucket="multi", Key="obj", UploadId=up)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [(1, 100, small["ETag"]), (2, 1, last["ETag"])]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="multi")["Uploads"]] == [up]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket="multi", Key="obj", UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": small["ETag"]}, {"PartNumber": 2, "ETag": last["ETag"]}]})
    assert error_of(e) == ("EntityTooSmall", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket="multi", Key="obj", UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": '"deadbeefdeadbeefdeadbeefdeadbeef"'}]})
    assert error_of(e) == ("InvalidPart", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket="multi", Key="obj", UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": last["ETag"]}, {"PartNumber": 1, "ETag": small["ETag"]}]})
    assert error_of(e) == ("InvalidPartOrder", 400)
    # A single (last) part may be small; the object keeps the upload's content type.
    done = s3.complete_multipart_upload(Bucket="multi", Key="obj", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": small["ETag"]}]})
    assert done["ETag"] == '"%s-1"' % hashlib.md5(hashlib.md5(b"a" * 100).digest()).hexdigest()
    got = s3.get_object(Bucket="multi", Key="obj")
    assert (got["Body"].read(), got["ContentType"]) == (b"a" * 100, "text/csv")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.list_parts(Bucket="multi", Key="obj", UploadId=up)
    assert error_of(e) == ("NoSuchUpload", 404)

    up2 = s3.create_multipart_upload(Bucket="multi", Key="gone")["UploadId"]
    s3.upload_part(Bucket="multi", Key="gone", UploadId=up2, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket="multi", Key="gone", UploadId=up2)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.upload_part(Bucket="multi", Key="gone", UploadId=up2, PartNumber=2, Body=b"x")
    assert error_of(e) == ("NoSuchUpload", 404)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.upload_part(Bucket="multi", Key="obj", UploadId="whatever", PartNumber=10001, Body=b"x")
    assert error_of(e) == ("InvalidArgument", 400)


def test_integrity_checks_refuse_corrupt_uploads(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="integrity")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket="integrity", Key="k", Body=b"hello", ContentMD5="XrY7u+Ae7tCTyyK7j1rNww==")
    assert error_of(e) == ("BadDigest", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket="integrity", Key="k", Body=b"hello", ChecksumCRC32="AAAAAA==")
    assert error_of(e) == ("BadDigest", 400)
    ok = s3.put_object(Bucket="integrity", Key="k", Body=b"hello world", ChecksumCRC32="DUoRhQ==")
    assert ok["ChecksumCRC32"] == "DUoRhQ=="
    # Nothing was stored by the refused uploads but the good one.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="integrity")["Contents"]] == ["k"]
    assert s3.get_object(Bucket="integrity", Key="k")["Body"].read() == b"hello world"


def test_presigned_urls_with_plain_http(server):
    s3 = server.client("s3", config=botocore.config.Config(signature_version="s3v4"))
    s3.create_bucket(Bucket="share")
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "share", "Key": "up.txt"}, ExpiresIn=300)
    assert requests.put(put_url, data=b"uploaded by url").status_code == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "share", "Key": "up.txt"}, ExpiresIn=300)
    r = requests.get(get_url)
    assert (r.status_code, r.content) == (200, b"uploaded by url")
    # Tampering with the key, the expiry or the signature is refused.
    for tampered in [get_url.replace("up.txt", "other.txt"),
                     get_url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000"),
                     get_url[:-1] + ("0" if get_url[-1] != "0" else "1")]:
        r = requests.get(tampered)
        assert r.status_code == 403, tampered
        assert b"<Code>SignatureDoesNotMatch</Code>" in r.content
    expired = s3.generate_presigned_url("get_object", Params={"Bucket": "share", "Key": "up.txt"}, ExpiresIn=1)
    time.sleep(2)
    r = requests.get(expired)
    assert r.status_code == 403
    assert b"<Code>AccessDenied</Code>" in r.content and b"expired" in r.content
    # Unsigned requests get nothing without a bucket policy for "*".
    assert requests.get(f"{server.url}/share/up.txt").status_code == 403


def aws_cli(server, *args):
    """The AWS CLI as the server's root, with nothing of the environment's AWS settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(server.data_dir / "root-credentials"),
               AWS_CONFIG_FILE=os.devnull, AWS_DEFAULT_REGION="us-east-1", AWS_MAX_ATTEMPTS="1")
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    return subprocess.run([aws, *args, "--endpoint-url", server.url], env=env,
                          capture_output=True, text=True, check=True).stdout


def test_signature_version_2_as_boto3_and_the_cli_make_it(server):
    """SigV2 (S3's `AWS key:signature` header and `AWSAccessKeyId`/`Signature`/`Expires` URLs):
    what `aws s3 presign` and boto3's presigned URLs default to. Checked like SigV4: the
    signature over method, headers, resource and expiry; tampering, expiry, another key or
    another secret refused."""
    v2 = server.client("s3", config=botocore.config.Config(signature_version="s3"))
    v2.create_bucket(Bucket="legacy")
    v2.put_object(Bucket="legacy", Key="dir/a b+c.txt", Body=b"signed with v2",
                  ContentType="text/plain", Metadata={"colour": "blue"})
    got = v2.get_object(Bucket="legacy", Key="dir/a b+c.txt")
    assert got["Body"].read() == b"signed with v2"
    assert got["Metadata"] == {"colour": "blue"}
    assert [o["Key"] for o in v2.list_objects_v2(Bucket="legacy", Prefix="dir/")["Contents"]] == ["dir/a b+c.txt"]

    # boto3's default presigned URL and the AWS CLI's `aws s3 presign`, fetched as is.
    default = server.client("s3")
    for url in [default.generate_presigned_url("get_object", Params={"Bucket": "legacy", "Key": "dir/a b+c.txt"}),
                v2.generate_presigned_url("get_object", Params={"Bucket": "legacy", "Key": "dir/a b+c.txt"},
                                          ExpiresIn=300),
                aws_cli(server, "s3", "presign", "s3://legacy/dir/a b+c.txt", "--expires-in", "300").strip()]:
        r = requests.get(url)
        assert (r.status_code, r.content) == (200, b"signed with v2"), url

    url = v2.generate_presigned_url("get_object", Params={"Bucket": "legacy", "Key": "dir/a b+c.txt"},
                                    ExpiresIn=300)
    assert "AWSAccessKeyId=" in url and "Signature=" in url and "Expires=" in url
    expires = int(url.split("Expires=")[1].split("&")[0])
    for tampered in [url.replace("a%20b", "a%20c"),
                     url.replace(f"Expires={expires}", f"Expires={expires + 3600}"),
                     url.replace("Signature=", "Signature=AA")]:
        r = requests.get(tampered)
        assert r.status_code == 403, tampered
        assert b"<Code>SignatureDoesNotMatch</Code>" in r.content
    # A presigned PUT covers the metadata it was made with: an added x-amz-meta is refused.
    put = v2.generate_presigned_url("put_object", Params={"Bucket": "legacy", "Key": "up"}, ExpiresIn=300)
    assert requests.put(put, data=b"x", headers={"x-amz-meta-evil": "1"}).status_code == 403
    assert requests.put(put, data=b"by url").status_code == 200
    assert v2.get_object(Bucket="legacy", Key="up")["Body"].read() == b"by url"
    # Past its Expires, refused as S3 refuses it.
    expired = v2.generate_presigned_url("get_object", Params={"Bucket": "legacy", "Key": "up"}, ExpiresIn=1)
    time.sleep(2)
    r = requests.get(expired)
    assert r.status_code == 403
    assert b"<Code>AccessDenied</Code>" in r.content and b"expired" in r.content

    # Another secret, an unknown key, and a user without permission.
    wrong = server.client("s3", server.root_credentials()[0], "not-the-secret",
                          config=botocore.config.Config(signature_version="s3"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        wrong.get_object(Bucket="legacy", Key="up")
    assert error_of(e)[0] == "SignatureDoesNotMatch"
    unknown = server.client("s3", "AKIAIOSFODNN7EXAMPLE", "x", config=botocore.config.Config(signature_version="s3"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        unknown.get_object(Bucket="legacy", Key="up")
    assert error_of(e)[0] == "InvalidAccessKeyId"
    iam = server.client("iam")
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    nobody = server.client("s3", key["AccessKeyId"], key["SecretAccessKey"],
                           config=botocore.config.Config(signature_version="s3"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        nobody.get_object(Bucket="legacy", Key="up")
    assert error_of(e)[0] == "AccessDenied"
    # A bucket policy can insist on SigV4 (s3:signatureversion), as on S3.
    v2.put_bucket_policy(Bucket="legacy", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::legacy/*",
         "Condition": {"StringEquals": {"s3:signatureversion": "AWS"}}}]}))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        v2.get_object(Bucket="legacy", Key="up")
    assert error_of(e)[0] == "AccessDenied"
    v4 = server.client("s3", config=botocore.config.Config(signature_version="s3v4"))
    assert v4.get_object(Bucket="legacy", Key="up")["Body"].read() == b"by url"


def test_signature_version_2_with_session_credentials(server):
    """Temporary credentials sign SigV2 too: the session token rides in the URL (or header) and
    is part of the signed string."""
    iam = server.client("iam")
    s3 = server.client("s3")
    s3.create_bucket(Bucket="sessions")
    s3.put_object(Bucket="sessions", Key="k", Body=b"for the session")
    user = user_client(server, iam, "reader", service="sts", policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::sessions/*"}]})
    c = user.get_session_token()["Credentials"]
    session = server.client("s3", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"],
                            config=botocore.config.Config(signature_version="s3"))
    assert session.get_object(Bucket="sessions", Key="k")["Body"].read() == b"for the session"
    url = session.generate_presigned_url("get_object", Params={"Bucket": "sessions", "Key": "k"}, ExpiresIn=300)
    assert "x-amz-security-token=" in url
    assert requests.get(url).content == b"for the session"
    # Without its token, or with another session's, the URL proves nothing.
    token = url.split("x-amz-security-token=")[1].split("&")[0]
    r = requests.get(url.replace("&x-amz-security-token=" + token, ""))
    assert (r.status_code, b"<Code>InvalidToken</Code>" in r.content) == (400, True)
    other = user.get_session_token()["Credentials"]["SessionToken"]
    r = requests.get(url.replace(token, requests.utils.quote(other, safe="")))
    assert r.status_code in (400, 403) and b"<Code>AccessDenied</Code>" not in r.content


def test_user_limited_to_own_prefix(server):
    iam = server.client("iam")
    root_s3 = server.client("s3")
    root_s3.create_bucket(Bucket="home")
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": "arn:aws:s3:::home/${aws:username}/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::home",
         "Condition": {"StringLike": {"s3:prefix": ["${aws:username}/*"]}}}]}
    alice = user_client(server, iam, "alice", policy=policy)
    bob = user_client(server, iam, "bob", policy=policy)
    alice.put_object(Bucket="home", Key="alice/notes.txt", Body=b"mine")
    bob.put_object(Bucket="home", Key="bob/notes.txt", Body=b"bob's")
    assert alice.get_object(Bucket="home", Key="alice/notes.txt")["Body"].read() == b"mine"
    assert [o["Key"] for o in alice.list_objects_v2(Bucket="home", Prefix="alice/")["Contents"]] == ["alice/notes.txt"]
    for call in [lambda: alice.get_object(Bucket="home", Key="bob/notes.txt"),
                 lambda: alice.put_object(Bucket="home", Key="bob/evil.txt", Body=b"x"),
                 lambda: alice.put_object(Bucket="home", Key="top.txt", Body=b"x"),
                 lambda: alice.delete_object(Bucket="home", Key="bob/notes.txt"),
                 lambda: alice.list_objects_v2(Bucket="home", Prefix="bob/"),
                 lambda: alice.list_objects_v2(Bucket="home")]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_of(e) == ("AccessDenied", 403)
    # A missing key under one's own prefix is NoSuchKey only for a caller who may list it.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        root_s3.get_object(Bucket="home", Key="alice/missing")
    assert error_of(e) == ("NoSuchKey", 404)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        alice.get_object(Bucket="home", Key="alice/missing")
    assert error_of(e) == ("AccessDenied", 403)
    assert root_s3.get_object(Bucket="home", Key="bob/notes.txt")["Body"].read() == b"bob's"


def test_seed_scenario_cross_account_log_reader_reads_app_log(server):
    a = server.account_id
    b, iam_b = setup_accounts(server)
    admin_b = server.admin("sts").assume_role(
        RoleArn=f"arn:aws:iam::{b}:role/OrganizationAccountAccessRole", RoleSessionName="admin-b")
    s3_b = server.client("s3", *creds_of(admin_b))
    s3_b.create_bucket(Bucket="b-logs")
    s3_b.put_object(Bucket="b-logs", Key="app.log", Body=b"2026-11-23 all good\n")
    s3_b.create_bucket(Bucket="b-secrets")
    s3_b.put_object(Bucket="b-secrets", Key="keys.txt", Body=b"secret")

    role_arn = iam_b.create_role(RoleName="LogReader", AssumeRolePolicyDocument=trust(a))["Role"]["Arn"]
    iam_b.put_role_policy(RoleName="LogReader", PolicyName="read-logs", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                       "Resource": ["arn:aws:s3:::b-logs", "arn:aws:s3:::b-logs/*"]}]}))
    iam_a = server.client("iam")
    iam_a.create_group(GroupName="ops")
    iam_a.put_group_policy(GroupName="ops", PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}]}))
    sts_alice = user_client(server, iam_a, "alice", service="sts")
    iam_a.add_user_to_group(GroupName="ops", UserName="alice")

    session = sts_alice.assume_role(RoleArn=role_arn, RoleSessionName="alice")
    logs = server.client("s3", *creds_of(session))
    assert logs.get_object(Bucket="b-logs", Key="app.log")["Body"].read() == b"2026-11-23 all good\n"
    assert [o["Key"] for o in logs.list_objects_v2(Bucket="b-logs")["Contents"]] == ["app.log"]
    for call in [lambda: logs.get_object(Bucket="b-secrets", Key="keys.txt"),
                 lambda: logs.list_objects_v2(Bucket="b-secrets"),
                 lambda: logs.put_object(Bucket="b-logs", Key="forged.log", Body=b"x"),
                 lambda: logs.delete_object(Bucket="b-logs", Key="app.log")]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_of(e) == ("AccessDenied", 403)

    # A bucket policy granting account A works only with an identity policy in A.
    s3_b.put_bucket_policy(Bucket="b-secrets", Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a}:root"},
                       "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b-secrets/*"}]}))
    bob = user_client(server, iam_a, "bob")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bob.get_object(Bucket="b-secrets", Key="keys.txt")
    assert error_of(e) == ("AccessDenied", 403)
    iam_a.put_user_policy(UserName="bob", PolicyName="read-b", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b-secrets/*"}]}))
    assert bob.get_object(Bucket="b-secrets", Key="keys.txt")["Body"].read() == b"secret"
    # ... and an identity policy in A alone reaches nothing in B without the bucket policy.
    s3_b.delete_bucket_policy(Bucket="b-secrets")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bob.get_object(Bucket="b-secrets", Key="keys.txt")
    assert error_of(e) == ("AccessDenied", 403)


def test_bucket_policy_for_anonymous_reads_and_explicit_deny(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="public")
    s3.put_object(Bucket="public", Key="index.html", Body=b"<h1>hi</h1>", ContentType="text/html")
    s3.put_object(Bucket="public", Key="private/x", Body=b"no")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_policy(Bucket="public")
    assert error_of(e) == ("NoSuchBucketPolicy", 404)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_bucket_policy(Bucket="public", Policy='{"Version": "2012-10-17", "Statement": [{"Effect": "Maybe"}]}')
    assert error_of(e) == ("MalformedPolicy", 400)
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::public/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::public/private/*"}]}
    s3.put_bucket_policy(Bucket="public", Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket="public")["Policy"]) == policy
    r = requests.get(f"{server.url}/public/index.html")
    assert (r.status_code, r.content, r.headers["Content-Type"]) == (200, b"<h1>hi</h1>", "text/html")
    assert requests.get(f"{server.url}/public/private/x").status_code == 403
    assert requests.put(f"{server.url}/public/new", data=b"x").status_code == 403
    # The explicit deny binds the owner's root too.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket="public", Key="private/x")
    assert error_of(e) == ("AccessDenied", 403)


def test_aws_cli_s3_commands(server, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(server.data_dir / "root-credentials"),
               AWS_CONFIG_FILE=os.devnull, AWS_DEFAULT_REGION="us-east-1",
               # No retries and a short read timeout: a response the CLI misreads (an empty
               # upload's connection reused for a part, once) fails the test instead of
               # costing a minute.
               AWS_MAX_ATTEMPTS="1")
    aws = os.path.join(os.path.dirname(sys.executable), "aws")

    def run(*args):
        return subprocess.run([aws, *args, "--endpoint-url", server.url, "--cli-read-timeout", "15"], env=env,
                              capture_output=True, text=True, check=True).stdout

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    files = {"empty.txt": b"", "small.txt": os.urandom(1024), "sub/big.bin": os.urandom(20 * MIB)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    run("s3", "mb", "s3://cli-bucket")
    run("s3", "sync", str(src), "s3://cli-bucket/tree")
    listing = run("s3", "ls", "--recursive", "s3://cli-bucket/tree/")
    assert sorted(line.split()[-1] for line in listing.splitlines()) == sorted(f"tree/{n}" for n in files)
    for name, data in files.items():
        head = json.loads(run("s3api", "head-object", "--bucket", "cli-bucket", "--key", f"tree/{name}"))
        assert head["ContentLength"] == len(data)
        assert head["ETag"] == s3_etag(data, 8 * MIB)
    dst = tmp_path / "dst"
    run("s3", "cp", "--recursive", "s3://cli-bucket/tree", str(dst))
    for name, data in files.items():
        assert (dst / name).read_bytes() == data
    # A second sync uploads nothing.
    assert run("s3", "sync", str(src), "s3://cli-bucket/tree").strip() == ""
    run("s3", "rm", "--recursive", "s3://cli-bucket/tree")
    assert run("s3", "ls", "s3://cli-bucket/").strip() == ""
    run("s3", "rb", "s3://cli-bucket")
    assert "cli-bucket" not in run("s3", "ls")


def test_an_owner_re_creating_a_bucket_outside_us_east_1_is_told_it_owns_it(tmp_path):
    import boto3
    from conftest import NO_RETRIES, Server

    server = Server(tmp_path / "data", extra_args=("--region", "eu-west-1"))
    try:
        key, secret = server.root_credentials()
        s3 = boto3.client("s3", endpoint_url=server.url, region_name="eu-west-1", aws_access_key_id=key,
                          aws_secret_access_key=secret, config=NO_RETRIES)
        where = {"LocationConstraint": "eu-west-1"}
        s3.create_bucket(Bucket="taken", CreateBucketConfiguration=where)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.create_bucket(Bucket="taken", CreateBucketConfiguration=where)
        assert error_of(e) == ("BucketAlreadyOwnedByYou", 409)
    finally:
        server.stop()


def test_keys_are_opaque_bytes_even_only_spaces(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="spaces")
    for key in ["   ", " lead", "trail "]:
        s3.put_object(Bucket="spaces", Key=key, Body=key.encode())
        assert s3.get_object(Bucket="spaces", Key=key)["Body"].read() == key.encode()
    out = s3.delete_objects(Bucket="spaces", Delete={"Objects": [{"Key": "   "}, {"Key": " lead"}, {"Key": "trail "}]})
    assert sorted(d["Key"] for d in out["Deleted"]) == sorted(["   ", " lead", "trail "])
    assert "Contents" not in s3.list_objects_v2(Bucket="spaces")


def test_listing_pages_and_filters_as_s3_has_them(server):
    s3 = server.client("s3")
    names = ["page-a", "page-b", "page-c", "other"]
    for name in names:
        s3.create_bucket(Bucket=name)
    s3.put_object(Bucket="page-a", Key="k", Body=b"x")
    # max-keys=0 asks for nothing: an empty page, not truncated.
    out = s3.list_objects_v2(Bucket="page-a", MaxKeys=0)
    assert out["KeyCount"] == 0 and out["IsTruncated"] is False and "Contents" not in out
    assert s3.list_objects(Bucket="page-a", MaxKeys=0)["IsTruncated"] is False
    # ListBuckets: MaxBuckets pages with a ContinuationToken; Prefix filters and is echoed.
    first = s3.list_buckets(MaxBuckets=2)
    assert [b["Name"] for b in first["Buckets"]] == ["other", "page-a"]
    rest = s3.list_buckets(MaxBuckets=2, ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in rest["Buckets"]] == ["page-b", "page-c"] and "ContinuationToken" not in rest
    paged = [b["Name"] for page in s3.get_paginator("list_buckets").paginate(PaginationConfig={"PageSize": 1})
             for b in page["Buckets"]]
    assert paged == sorted(names)
    only = s3.list_buckets(Prefix="page-")
    assert [b["Name"] for b in only["Buckets"]] == ["page-a", "page-b", "page-c"] and only["Prefix"] == "page-"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.list_buckets(ContinuationToken="!!!")
    assert error_of(e) == ("InvalidArgument", 400)
    # boto3 checks MaxBuckets itself; without that check the server refuses it.
    from botocore.config import Config
    lax = server.client("s3", config=Config(parameter_validation=False))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        lax.list_buckets(MaxBuckets=0)
    assert error_of(e) == ("InvalidArgument", 400)
