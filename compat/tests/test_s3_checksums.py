"""S3's additional checksums with boto3: S3's default CRC64NVME on every object whose upload
named none, stored checksums returned only with `ChecksumMode=ENABLED` and only for the whole
object, checksums kept or recomputed by copies, multipart objects with COMPOSITE and
FULL_OBJECT checksums, and a CompleteMultipartUpload repeated after it succeeded."""

import base64
import hashlib
import zlib

import botocore.config
import botocore.exceptions
import pytest

from test_sts import error_of

MIB = 1024 * 1024

# Clients that compute and validate no checksum themselves, so that what the server does is
# what the test sees.
PLAIN = botocore.config.Config(request_checksum_calculation="when_required",
                               response_checksum_validation="when_required")


def crc64nvme(data):
    """CRC-64/NVME (reflected polynomial 0x9a6c9329ac4bc9b5, all-ones init and xor-out)."""
    crc = 0xFFFFFFFFFFFFFFFF
    table = crc64nvme.table
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return base64.b64encode((crc ^ 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")).decode()


def _table():
    out = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x9A6C9329AC4BC9B5 if c & 1 else c >> 1
        out.append(c)
    return out


crc64nvme.table = _table()


def crc32_raw(data):
    return zlib.crc32(data).to_bytes(4, "big")


def b64(raw):
    return base64.b64encode(raw).decode()


def test_crc64nvme_matches_its_check_value():
    assert base64.b64decode(crc64nvme(b"123456789")).hex() == "ae8b14860a799888"


def test_objects_keep_their_checksums_and_tell_them_when_asked(server):
    s3 = server.client("s3", config=PLAIN)
    s3.create_bucket(Bucket="sums")
    body = b"checksummed bytes" * 1000
    # No checksum named: S3 computes its default CRC64NVME.
    put = s3.put_object(Bucket="sums", Key="plain", Body=body)
    assert (put["ChecksumCRC64NVME"], put["ChecksumType"]) == (crc64nvme(body), "FULL_OBJECT")
    head = s3.head_object(Bucket="sums", Key="plain", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC64NVME"], head["ChecksumType"]) == (crc64nvme(body), "FULL_OBJECT")
    # Not asked for, not sent; nor for a range, which is not the object the checksum is of.
    assert "ChecksumCRC64NVME" not in s3.head_object(Bucket="sums", Key="plain")
    ranged = s3.get_object(Bucket="sums", Key="plain", Range="bytes=0-9", ChecksumMode="ENABLED")
    assert "ChecksumCRC64NVME" not in ranged and ranged["Body"].read() == body[:10]

    # A named algorithm is the one kept.
    sha = b64(hashlib.sha256(body).digest())
    put = s3.put_object(Bucket="sums", Key="sha", Body=body, ChecksumSHA256=sha)
    assert put["ChecksumSHA256"] == sha
    got = s3.get_object(Bucket="sums", Key="sha", ChecksumMode="ENABLED")
    assert (got["ChecksumSHA256"], got["Body"].read()) == (sha, body)
    # A CRC64NVME the client computed is checked like any other.
    s3.put_object(Bucket="sums", Key="nvme", Body=body, ChecksumCRC64NVME=crc64nvme(body))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket="sums", Key="nvme", Body=body, ChecksumCRC64NVME=crc64nvme(b"other"))
    assert error_of(e) == ("BadDigest", 400)

    # boto3 with its defaults sends CRC32 and validates what GET returns.
    default = server.client("s3")
    default.put_object(Bucket="sums", Key="crc32", Body=body)
    got = default.get_object(Bucket="sums", Key="crc32")
    assert (got["ChecksumCRC32"], got["Body"].read()) == (b64(crc32_raw(body)), body)

    # A copy keeps the source's kind of checksum, or makes the one asked for.
    out = s3.copy_object(Bucket="sums", Key="copy", CopySource={"Bucket": "sums", "Key": "sha"})
    assert out["CopyObjectResult"]["ChecksumSHA256"] == sha
    out = s3.copy_object(Bucket="sums", Key="copy", CopySource={"Bucket": "sums", "Key": "sha"},
                         ChecksumAlgorithm="CRC32", MetadataDirective="REPLACE")
    assert out["CopyObjectResult"]["ChecksumCRC32"] == b64(crc32_raw(body))
    head = s3.head_object(Bucket="sums", Key="copy", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == b64(crc32_raw(body)) and "ChecksumSHA256" not in head


def test_multipart_objects_have_composite_or_full_object_checksums(server):
    s3 = server.client("s3", config=PLAIN)
    s3.create_bucket(Bucket="parts")
    parts = [b"a" * (5 * MIB), b"tail of the object"]

    def upload(key, **kw):
        created = s3.create_multipart_upload(Bucket="parts", Key=key, **kw)
        done = []
        for n, data in enumerate(parts, 1):
            extra = {"ChecksumAlgorithm": kw["ChecksumAlgorithm"]} if "ChecksumAlgorithm" in kw else {}
            out = s3.upload_part(Bucket="parts", Key=key, UploadId=created["UploadId"], PartNumber=n,
                                 Body=data, **extra)
            done.append({"PartNumber": n, "ETag": out["ETag"]})
        complete = s3.complete_multipart_upload(Bucket="parts", Key=key, UploadId=created["UploadId"],
                                                MultipartUpload={"Parts": done})
        return created, done, complete

    # CRC32 defaults to COMPOSITE: the CRC32 of the parts' CRC32s, then "-<parts>".
    created, done, complete = upload("composite", ChecksumAlgorithm="CRC32")
    assert (created["ChecksumAlgorithm"], created["ChecksumType"]) == ("CRC32", "COMPOSITE")
    expected = b64(crc32_raw(b"".join(crc32_raw(p) for p in parts))) + "-2"
    assert (complete["ChecksumCRC32"], complete["ChecksumType"]) == (expected, "COMPOSITE")
    head = s3.head_object(Bucket="parts", Key="composite", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (expected, "COMPOSITE")
    # The same completion again answers as before (a client retrying after a lost reply).
    again = s3.complete_multipart_upload(Bucket="parts", Key="composite", UploadId=created["UploadId"],
                                         MultipartUpload={"Parts": done})
    assert again["ETag"] == complete["ETag"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket="parts", Key="composite", UploadId=created["UploadId"],
                                     MultipartUpload={"Parts": done[:1]})
    assert error_of(e) == ("NoSuchUpload", 404)

    # FULL_OBJECT: the CRC of all the bytes; and S3's default CRC64NVME when none was named.
    _, _, complete = upload("full", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    assert (complete["ChecksumCRC32"], complete["ChecksumType"]) == (b64(crc32_raw(b"".join(parts))), "FULL_OBJECT")
    _, _, complete = upload("default")
    assert (complete["ChecksumCRC64NVME"], complete["ChecksumType"]) == (crc64nvme(b"".join(parts)), "FULL_OBJECT")

    # Combinations S3 refuses.
    for kw in [{"ChecksumAlgorithm": "SHA1", "ChecksumType": "FULL_OBJECT"},
               {"ChecksumAlgorithm": "CRC64NVME", "ChecksumType": "COMPOSITE"},
               {"ChecksumType": "COMPOSITE"}]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.create_multipart_upload(Bucket="parts", Key="x", **kw)
        assert error_of(e) == ("InvalidRequest", 400)


def test_stored_headers_round_trip_as_sent(server):
    for s3 in [server.client("s3"), server.client("s3", config=PLAIN)]:
        s3.create_bucket(Bucket="verbatim")
        s3.put_object(Bucket="verbatim", Key="k", Body=b"x", ContentEncoding="deflate, gzip",
                      CacheControl="max-age=60,  public")
        got = s3.get_object(Bucket="verbatim", Key="k")
        assert (got["ContentEncoding"], got["CacheControl"]) == ("deflate, gzip", "max-age=60,  public")
