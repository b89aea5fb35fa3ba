"""Browsers: CORS preflights and headers. The Cognito, STS and IAM endpoint answers any
origin (as AWS does); S3 answers by each bucket's CORS configuration (Put/Get/DeleteBucketCors
with boto3), refusing what no rule admits."""

import botocore.exceptions
import pytest
import requests

from test_s3 import user_client
from test_sts import error_of

SPA = "http://app.example.test:5173"


def preflight(server, path, origin=SPA, method="PUT", headers=None):
    h = {"Origin": origin} if origin else {}
    if method:
        h["Access-Control-Request-Method"] = method
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return requests.options(server.url + path, headers=h)


def test_the_api_endpoint_answers_browsers_from_any_origin(server):
    asked = "content-type,x-amz-target,x-amz-user-agent,amz-sdk-invocation-id,amz-sdk-request,authorization"
    r = preflight(server, "/", method="POST", headers=asked)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Access-Control-Allow-Methods"] == "POST"
    assert r.headers["Access-Control-Allow-Headers"] == asked
    assert "x-amzn-ErrorType" in r.headers["Access-Control-Expose-Headers"]
    # The call itself, a Cognito one without credentials: its answer, even an error, is readable.
    r = requests.post(server.url + "/", data="{}", headers={
        "Origin": SPA, "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth"})
    assert r.status_code == 400 and r.headers["Access-Control-Allow-Origin"] == "*"
    assert "x-amzn-RequestId" in r.headers["Access-Control-Expose-Headers"]
    # STS over Query, unsigned: refused, and the browser may read why.
    r = requests.post(server.url + "/", data="Action=GetCallerIdentity&Version=2011-06-15", headers={
        "Origin": SPA, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 403 and r.headers["Access-Control-Allow-Origin"] == "*"
    # A pool's discovery document and keys, as browser OIDC and JWT libraries fetch them.
    pid = server.client("cognito-idp").create_user_pool(PoolName="spa")["UserPool"]["Id"]
    for doc in ["openid-configuration", "jwks.json"]:
        r = requests.get(f"{server.url}/{pid}/.well-known/{doc}", headers={"Origin": SPA})
        assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
    # Without Origin there is nothing for a browser: no CORS headers.
    assert "Access-Control-Allow-Origin" not in requests.post(server.url + "/", data="{}").headers


def test_bucket_cors_configuration_decides_preflights_and_headers(any_backend):
    server = any_backend
    s3 = server.client("s3")
    s3.create_bucket(Bucket="web")
    s3.put_object(Bucket="web", Key="a.txt", Body=b"hi")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_cors(Bucket="web")
    assert error_of(e) == ("NoSuchCORSConfiguration", 404)
    r = preflight(server, "/web/a.txt")
    assert r.status_code == 403 and "<Code>AccessForbidden</Code>" in r.text
    assert "CORS is not enabled for this bucket." in r.text
    assert "Access-Control-Allow-Origin" not in r.headers

    rules = [
        {"AllowedOrigins": [SPA], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["content-type", "x-amz-*"],
         "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600, "ID": "spa"},
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
    ]
    s3.put_bucket_cors(Bucket="web", CORSConfiguration={"CORSRules": rules})
    got = s3.get_bucket_cors(Bucket="web")["CORSRules"]
    assert got[0]["AllowedOrigins"] == [SPA] and got[0]["ID"] == "spa" and got[0]["MaxAgeSeconds"] == 600
    assert got[1] == {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}

    r = preflight(server, "/web/a.txt", headers="Content-Type, X-Amz-Date")
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == SPA
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, PUT"
    assert r.headers["Access-Control-Allow-Headers"] == "content-type, x-amz-date"
    assert r.headers["Access-Control-Max-Age"] == "600"
    assert r.headers["Vary"] == "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
    # Any origin may GET by the second rule, answered with `*`.
    r = preflight(server, "/web/a.txt", origin="https://other.test", method="GET")
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in r.headers
    # What no rule admits: another origin's PUT, a header not allowed, a look-alike origin.
    for kwargs in [dict(origin="https://other.test"), dict(headers="authorization"),
                   dict(origin=SPA + ".evil.test")]:
        r = preflight(server, "/web/a.txt", **kwargs)
        assert r.status_code == 403 and "This CORS request is not allowed" in r.text, kwargs
        assert "<Method>PUT</Method>" in r.text and "<ResourceType>OBJECT</ResourceType>" in r.text
        assert "Access-Control-Allow-Origin" not in r.headers
    # No Origin, and a bucket that does not exist.
    r = preflight(server, "/web/a.txt", origin=None)
    assert r.status_code == 400 and "Origin request header needed" in r.text
    r = preflight(server, "/nowhere/a.txt")
    assert r.status_code == 403 and "Bucket not found" in r.text

    # A browser's actual (signed) request gets the rule's headers; a preflight never needs a
    # signature, but the request itself is still authorized as any other.
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "web", "Key": "a.txt"})
    r = requests.get(url, headers={"Origin": SPA})
    assert r.status_code == 200 and r.text == "hi"
    assert r.headers["Access-Control-Allow-Origin"] == SPA and r.headers["Access-Control-Expose-Headers"] == "ETag"
    r = requests.get(server.url + "/web/a.txt", headers={"Origin": SPA})
    assert r.status_code == 403 and r.headers["Access-Control-Allow-Origin"] == SPA
    r = requests.get(url, headers={"Origin": "https://other.test"})
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "*"

    # Bad configurations are refused as S3 refuses them.
    for bad, code in [([{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}], "InvalidRequest"),
                      ([{"AllowedOrigins": ["http://*.*.test"], "AllowedMethods": ["GET"]}], "InvalidRequest"),
                      ([], "MalformedXML")]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_bucket_cors(Bucket="web", CORSConfiguration={"CORSRules": bad})
        assert error_of(e) == (code, 400)
    assert len(s3.get_bucket_cors(Bucket="web")["CORSRules"]) == 2

    # Only who may configure the bucket changes its CORS: a user allowed only to read is refused.
    reader = user_client(server, server.client("iam"), "reader", policy={
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::web/*"}]})
    for call in [lambda: reader.put_bucket_cors(Bucket="web", CORSConfiguration={"CORSRules": rules}),
                 lambda: reader.get_bucket_cors(Bucket="web"), lambda: reader.delete_bucket_cors(Bucket="web")]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_of(e) == ("AccessDenied", 403)
    s3.delete_bucket_cors(Bucket="web")
    s3.delete_bucket_cors(Bucket="web")
    assert preflight(server, "/web/a.txt").status_code == 403
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_bucket_cors(Bucket="web")
    assert error_of(e) == ("NoSuchCORSConfiguration", 404)


def test_dev_mode_never_lets_a_browser_in_with_a_made_up_key(tmp_path):
    """--dev accepts unknown keys unsigned (for suites written for mocks); a page in a browser
    (a request with Origin) could otherwise act as root through the API's open CORS."""
    import datetime

    from conftest import Server

    server = Server(tmp_path / "data", extra_args=("--dev",))
    try:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSCognitoIdentityProviderService.ListUserPools",
            "X-Amz-Date": now,
            "Authorization": f"AWS4-HMAC-SHA256 Credential=AKIAMADEUP0000000000/{now[:8]}/us-east-1/cognito-idp/"
                             f"aws4_request, SignedHeaders=host;x-amz-date, Signature={'0' * 64}",
        }
        assert requests.post(server.url + "/", data='{"MaxResults": 10}', headers=headers).status_code == 200
        r = requests.post(server.url + "/", data='{"MaxResults": 10}', headers={**headers, "Origin": "https://evil.test"})
        assert r.status_code in (400, 403) and "UserPools" not in r.text
    finally:
        server.stop()
