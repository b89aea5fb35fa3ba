"""The JavaScript clients (compat/js, pinned in its package-lock.json), run by node against the
real server: Amplify v6 signs in with SRP and keeps its session alive by refreshing; a page in
Debian's Chromium (playwright-core) signs in, gets identity-pool credentials and uses S3."""

import json
import os
import pathlib
import socket
import subprocess
import urllib.parse

import jwt
import pytest

from test_userpool import PASSWORD

JS = pathlib.Path(__file__).resolve().parents[1] / "js"


def node(script, env):
    if not (JS / "node_modules").is_dir():
        pytest.fail("compat/js/node_modules is missing: run `npm ci --prefix compat/js` (scripts/test does)")
    out = subprocess.run(["node", str(JS / script)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("rotation", [None, {"Feature": "ENABLED", "RetryGracePeriodSeconds": 0}])
def test_amplify_refreshes_its_session(server, rotation):
    idp = server.client("cognito-idp")
    pid = idp.create_user_pool(PoolName="app")["UserPool"]["Id"]
    flows = ["ALLOW_USER_SRP_AUTH"] + ([] if rotation else ["ALLOW_REFRESH_TOKEN_AUTH"])
    args = {"RefreshTokenRotation": rotation} if rotation else {}
    cid = idp.create_user_pool_client(UserPoolId=pid, ClientName="spa", ExplicitAuthFlows=flows,
                                      **args)["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pid, Username="amy", TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pid, Username="amy", Password=PASSWORD, Permanent=True)

    seen = node("amplify_session.mjs", {"ENDPOINT": server.url, "POOL_ID": pid, "CLIENT_ID": cid,
                                         "USERNAME": "amy", "PASSWORD": PASSWORD})
    assert seen["signedIn"] and seen["username"] == "amy"
    sessions = [seen["first"], seen["refreshed"], seen["again"]]
    jtis = {jwt.decode(s["access"], options={"verify_signature": False})["jti"] for s in sessions}
    assert len(jtis) == 3, "each forced refresh returned new tokens"
    # The refreshed tokens are the service's own: they work, and name the same sign-in.
    app = server.client("cognito-idp")
    assert app.get_user(AccessToken=seen["again"]["access"])["Username"] == "amy"
    origins = {jwt.decode(s["access"], options={"verify_signature": False})["origin_jti"] for s in sessions}
    assert len(origins) == 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_single_page_app_in_chromium_signs_in_gets_credentials_and_uses_s3(server):
    """A page on its own origin, in Debian's Chromium: SRP sign-in (amazon-cognito-identity-js),
    identity-pool credentials and S3 (AWS SDK v3), every call across origins through CORS."""
    from test_identitypool import provider_name, role, trust

    idp = server.client("cognito-idp")
    up = idp.create_user_pool(PoolName="app")["UserPool"]["Id"]
    cid = idp.create_user_pool_client(UserPoolId=up, ClientName="spa", ExplicitAuthFlows=[
        "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=up, Username="bea", TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=up, Username="bea", Password=PASSWORD, Permanent=True)
    ci = server.client("cognito-identity")
    pool_id = ci.create_identity_pool(IdentityPoolName="spa", AllowUnauthenticatedIdentities=False,
                                      CognitoIdentityProviders=[{"ProviderName": provider_name(up),
                                                                 "ClientId": cid}])["IdentityPoolId"]
    own_prefix = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
        "Resource": "arn:aws:s3:::spa-data/${cognito-identity.amazonaws.com:sub}/*"}]}
    auth = role(server, "SpaUser", trust(pool_id), own_prefix)
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": auth})
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    s3 = server.client("s3")
    s3.create_bucket(Bucket="spa-data")
    s3.put_bucket_cors(Bucket="spa-data", CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": [origin], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"]}]})

    query = urllib.parse.urlencode({
        "endpoint": server.url, "userPoolId": up, "clientId": cid, "identityPoolId": pool_id,
        "provider": provider_name(up), "bucket": "spa-data", "username": "bea", "password": PASSWORD})
    seen = node("browser_flow.mjs", {"PAGE_PORT": str(port), "PAGE_QUERY": query})
    assert seen["origin"] == origin
    assert seen["ok"], seen
    assert seen["body"] == "from the browser"
    assert seen["key"].startswith(seen["identityId"] + "/")
    # The role's policy confines the identity to its own prefix, in the browser too.
    assert seen["denied"] == "AccessDenied"
    assert s3.get_object(Bucket="spa-data", Key=seen["key"])["Body"].read() == b"from the browser"


def test_a_browser_form_uploads_to_a_presigned_post(server):
    """A plain HTML form in Chromium posts a file to a presigned POST, as S3's browser uploads
    work; S3 sends the browser on to the form's success_action_redirect."""
    s3 = server.client("s3")
    s3.create_bucket(Bucket="form-drop")
    port = free_port()
    done = f"http://127.0.0.1:{port}/done"
    signed = s3.generate_presigned_post(
        "form-drop", "inbox/${filename}", ExpiresIn=300,
        Fields={"success_action_redirect": done, "Content-Type": "text/plain"},
        Conditions=[["starts-with", "$key", "inbox/"], {"success_action_redirect": done},
                    ["starts-with", "$Content-Type", "text/"], ["content-length-range", 1, 1024]])
    seen = node("browser_form.mjs", {"PAGE_PORT": str(port), "FORM": json.dumps(signed),
                                     "FILE_NAME": "note.txt", "FILE_TEXT": "typed in a browser"})
    assert seen["url"].startswith(done)
    assert (seen["bucket"], seen["key"]) == ("form-drop", "inbox/note.txt")
    got = s3.get_object(Bucket="form-drop", Key="inbox/note.txt")
    assert got["Body"].read() == b"typed in a browser"
    assert (got["ContentType"], got["ETag"]) == ("text/plain", seen["etag"])
