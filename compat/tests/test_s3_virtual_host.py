"""Virtual-hosted–style S3 (`--s3-domain`), the default addressing of most SDKs for a host
name: `<bucket>.<domain>` in Host addresses the bucket, signed (SigV4 and SigV2) and
authorized exactly as path style, which keeps working."""

import socket

import boto3
import botocore.config
import botocore.exceptions
import pytest
import requests

from conftest import Server
from test_sts import error_of


@pytest.fixture
def vhost(tmp_path, monkeypatch):
    # *.localhost is this machine (RFC 6761); not every resolver knows it, so the test does.
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    s = Server(tmp_path / "data", extra_args=["--s3-domain", "localhost"])
    try:
        yield s
    finally:
        s.stop()


def client(server, style, signature="s3v4", creds=None):
    key, secret = creds or server.root_credentials()
    port = server.url.rsplit(":", 1)[1]
    return boto3.client("s3", endpoint_url=f"http://localhost:{port}", region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=botocore.config.Config(signature_version=signature, retries={"max_attempts": 1},
                                                      s3={"addressing_style": style}))


def test_buckets_are_addressed_by_host_name(vhost):
    virtual = client(vhost, "virtual")
    path = client(vhost, "path")
    seen = []
    virtual.meta.events.register("before-send.s3", lambda request, **_: seen.append(request.url))
    virtual.create_bucket(Bucket="hosted")
    virtual.put_object(Bucket="hosted", Key="dir/a b.txt", Body=b"by host")
    assert seen[-1].startswith("http://hosted.localhost:")
    assert path.get_object(Bucket="hosted", Key="dir/a b.txt")["Body"].read() == b"by host"
    path.put_object(Bucket="hosted", Key="by-path", Body=b"by path")
    assert virtual.get_object(Bucket="hosted", Key="by-path")["Body"].read() == b"by path"
    listed = virtual.list_objects_v2(Bucket="hosted")
    assert [o["Key"] for o in listed["Contents"]] == ["by-path", "dir/a b.txt"]
    assert "hosted" in [b["Name"] for b in virtual.list_buckets()["Buckets"]]
    # Signature Version 2 signs the resource as /bucket/key under either addressing.
    v2 = client(vhost, "virtual", signature="s3")
    assert v2.get_object(Bucket="hosted", Key="by-path")["Body"].read() == b"by path"
    url = v2.generate_presigned_url("get_object", Params={"Bucket": "hosted", "Key": "by-path"})
    assert url.startswith("http://hosted.localhost:")
    assert requests.get(url, timeout=10).content == b"by path"
    url = virtual.generate_presigned_url("get_object", Params={"Bucket": "hosted", "Key": "dir/a b.txt"})
    assert requests.get(url, timeout=10).content == b"by host"
    # A signature made for one bucket's host does not open another's.
    port = vhost.url.rsplit(":", 1)[1]
    virtual.create_bucket(Bucket="other")
    virtual.put_object(Bucket="other", Key="by-path", Body=b"other")
    forged = url.replace("hosted.localhost", "other.localhost")
    assert requests.get(forged, timeout=10).status_code == 403
    assert requests.get(f"http://other.localhost:{port}/by-path", timeout=10).status_code == 403
    with pytest.raises(botocore.exceptions.ClientError) as e:
        virtual.get_object(Bucket="missing-bucket", Key="k")
    assert error_of(e) == ("NoSuchBucket", 404)


def test_virtual_hosted_requests_are_authorized_as_path_style(vhost):
    root = client(vhost, "virtual")
    root.create_bucket(Bucket="guarded")
    root.put_object(Bucket="guarded", Key="k", Body=b"x")
    iam = vhost.client("iam")
    iam.create_user(UserName="u")
    key = iam.create_access_key(UserName="u")["AccessKey"]
    user = client(vhost, "virtual", creds=(key["AccessKeyId"], key["SecretAccessKey"]))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        user.get_object(Bucket="guarded", Key="k")
    assert error_of(e) == ("AccessDenied", 403)
