"""Browser uploads (POST Object) as boto3's generate_presigned_post makes them and a form
posts them: the signed policy decides what may be uploaded (key prefix, size, fields, expiry),
its signature is checked, and the signer must be allowed s3:PutObject."""

import base64
import json

import botocore.config
import pytest
import requests

from test_s3 import user_client


# boto3 signs POST policies with Signature Version 2 unless told otherwise; both are served.
SIGNATURES = ["s3", "s3v4"]


def signer(server, version):
    return server.client("s3", config=botocore.config.Config(signature_version=version))


def post(url, fields, data=b"hello form", filename="photo.txt"):
    return requests.post(url, data=fields, files={"file": (filename, data, "text/plain")}, timeout=30)


def code_of(res):
    return res.status_code, res.text.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in res.text else ""


@pytest.mark.parametrize("version", SIGNATURES)
def test_presigned_posts_upload_what_their_policy_allows(server, version):
    s3 = signer(server, version)
    s3.create_bucket(Bucket="forms")
    conditions = [["starts-with", "$key", "uploads/"], ["content-length-range", 1, 64],
                  {"Content-Type": "text/plain"}, ["starts-with", "$x-amz-meta-user", ""]]
    signed = s3.generate_presigned_post("forms", "uploads/${filename}", ExpiresIn=300,
                                        Fields={"Content-Type": "text/plain", "x-amz-meta-user": "ann"},
                                        Conditions=conditions)
    res = post(signed["url"], signed["fields"])
    assert res.status_code == 204, res.text
    got = s3.get_object(Bucket="forms", Key="uploads/photo.txt")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (b"hello form", "text/plain", {"user": "ann"})
    assert res.headers["ETag"] == got["ETag"]

    # success_action_status 201 answers with the object's XML.
    signed = s3.generate_presigned_post("forms", "uploads/created", ExpiresIn=300,
                                        Fields={"success_action_status": "201"},
                                        Conditions=[{"success_action_status": "201"}])
    res = post(signed["url"], signed["fields"])
    assert res.status_code == 201 and "<Key>uploads/created</Key>" in res.text
    assert s3.head_object(Bucket="forms", Key="uploads/created")["ContentLength"] == len(b"hello form")


@pytest.mark.parametrize("version", SIGNATURES)
def test_forms_outside_their_policy_are_refused(server, version):
    s3 = signer(server, version)
    s3.create_bucket(Bucket="strict")
    conditions = [["starts-with", "$key", "uploads/"], ["content-length-range", 1, 16]]
    signed = s3.generate_presigned_post("strict", "uploads/a", ExpiresIn=300, Conditions=conditions)
    fields = signed["fields"]
    # Another key than the policy allows.
    assert code_of(post(signed["url"], {**fields, "key": "admin/a"})) == (403, "AccessDenied")
    # A field the policy does not name (metadata smuggled in).
    assert code_of(post(signed["url"], {**fields, "x-amz-meta-role": "admin"})) == (403, "AccessDenied")
    # Too large, and empty.
    assert code_of(post(signed["url"], fields, data=b"x" * 17)) == (400, "EntityTooLarge")
    assert code_of(post(signed["url"], fields, data=b"")) == (400, "EntityTooSmall")
    # A policy rewritten after signing, or a signature that is not the key's.
    doc = json.loads(base64.b64decode(fields["policy"]))
    doc["conditions"] = [c for c in doc["conditions"] if not (isinstance(c, list) and c[0] == "starts-with")]
    forged = base64.b64encode(json.dumps(doc).encode()).decode()
    assert code_of(post(signed["url"], {**fields, "policy": forged, "key": "admin/a"})) == (403, "SignatureDoesNotMatch")
    wrong = {"x-amz-signature": "0" * 64} if version == "s3v4" else {"signature": base64.b64encode(b"0" * 20).decode()}
    assert code_of(post(signed["url"], {**fields, **wrong})) == (403, "SignatureDoesNotMatch")
    # An expired policy.
    old = s3.generate_presigned_post("strict", "uploads/a", ExpiresIn=-60, Conditions=conditions)
    assert code_of(post(old["url"], old["fields"])) == (403, "AccessDenied")
    # Without a signature, the bucket's policy decides, and this one grants nobody.
    assert code_of(post(signed["url"], {"key": "uploads/anon"})) == (403, "AccessDenied")
    public = s3.generate_presigned_post("strict", "uploads/p", ExpiresIn=300, Fields={"acl": "public-read"},
                                        Conditions=[{"acl": "public-read"}])
    assert code_of(post(public["url"], public["fields"])) == (400, "AccessControlListNotSupported")
    assert "Contents" not in s3.list_objects_v2(Bucket="strict")


@pytest.mark.parametrize("version", SIGNATURES)
def test_the_signer_must_be_allowed_to_put_the_object(server, version):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="guarded-forms")
    config = botocore.config.Config(signature_version=version)
    reader = user_client(server, server.client("iam"), "reader", policy={
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
    reader = server.client("s3", reader._request_signer._credentials.access_key,
                           reader._request_signer._credentials.secret_key, config=config)
    signed = reader.generate_presigned_post("guarded-forms", "k", ExpiresIn=300)
    assert code_of(post(signed["url"], signed["fields"])) == (403, "AccessDenied")
    writer = user_client(server, server.client("iam"), "writer", policy={
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:PutObject",
                                                "Resource": "arn:aws:s3:::guarded-forms/*"}]})
    writer = server.client("s3", writer._request_signer._credentials.access_key,
                           writer._request_signer._credentials.secret_key, config=config)
    signed = writer.generate_presigned_post("guarded-forms", "k", ExpiresIn=300)
    assert post(signed["url"], signed["fields"]).status_code == 204
    assert s3.get_object(Bucket="guarded-forms", Key="k")["Body"].read() == b"hello form"


def test_forms_are_bounded_and_unambiguous(server):
    s3 = signer(server, "s3v4")
    s3.create_bucket(Bucket="bounded")
    signed = s3.generate_presigned_post("bounded", "big", ExpiresIn=300,
                                        Fields={"Content-Type": "image/png"},
                                        Conditions=[{"Content-Type": "image/png"}])
    # Files are not bound by the 20 KB of the fields before them.
    big = bytes(range(256)) * 4096
    assert post(signed["url"], signed["fields"], data=big).status_code == 204
    assert s3.get_object(Bucket="bounded", Key="big")["Body"].read() == big
    # A field given twice: the policy would check one value and the object keep another.
    twice = list(signed["fields"].items()) + [("content-type", "text/html")]
    assert code_of(post(signed["url"], twice)) == (400, "InvalidArgument")
    # Too much before the file: one long field, or very many empty ones.
    assert code_of(post(signed["url"], {**signed["fields"], "x-ignore-pad": "x" * 30000})) == (
        400, "MaxPostPreDataLengthExceeded")
    many = list(signed["fields"].items()) + [(f"x-ignore-{i}", "") for i in range(2000)]
    assert code_of(post(signed["url"], many)) == (400, "MaxPostPreDataLengthExceeded")
    # A form carries its own signature and no other.
    res = requests.post(signed["url"], data=signed["fields"], files={"file": ("f", b"x")}, timeout=30,
                        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=AKIAX/20260101/us-east-1/s3/aws4_request, "
                                                  "SignedHeaders=host, Signature=" + "0" * 64})
    assert code_of(res)[0] in (400, 403)
    assert s3.head_object(Bucket="bounded", Key="big")["ContentLength"] == len(big)


def test_bucket_policies_see_a_forms_signature_version(server):
    s3 = signer(server, "s3v4")
    s3.create_bucket(Bucket="v4only")
    s3.put_bucket_policy(Bucket="v4only", Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::v4only/*",
        "Condition": {"StringEquals": {"s3:signatureversion": "AWS"}}}]}))
    v2 = signer(server, "s3").generate_presigned_post("v4only", "k", ExpiresIn=300)
    assert code_of(post(v2["url"], v2["fields"])) == (403, "AccessDenied")
    v4 = s3.generate_presigned_post("v4only", "k", ExpiresIn=300)
    assert post(v4["url"], v4["fields"]).status_code == 204


def test_form_fields_promising_more_are_kept_or_refused(server):
    s3 = signer(server, "s3v4")
    s3.create_bucket(Bucket="promises")
    tagging = "<Tagging><TagSet><Tag><Key>from</Key><Value>form</Value></Tag></TagSet></Tagging>"
    signed = s3.generate_presigned_post("promises", "tagged", ExpiresIn=300, Fields={"tagging": tagging},
                                        Conditions=[{"tagging": tagging}])
    assert post(signed["url"], signed["fields"]).status_code == 204
    assert s3.get_object_tagging(Bucket="promises", Key="tagged")["TagSet"] == [{"Key": "from", "Value": "form"}]
    # A key management service or object lock Cognate cannot keep is refused, not ignored.
    for field, value, code in [("x-amz-server-side-encryption", "aws:kms", (501, "NotImplemented")),
                               ("x-amz-object-lock-mode", "COMPLIANCE", (400, "InvalidRequest"))]:
        signed = s3.generate_presigned_post("promises", "k", ExpiresIn=300, Fields={field: value},
                                            Conditions=[{field: value}])
        assert code_of(post(signed["url"], signed["fields"])) == code
    assert "Contents" not in s3.list_objects_v2(Bucket="promises", Prefix="k")
