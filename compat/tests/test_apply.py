"""A declarative start: `serve --init examples/seed.toml` sets up the seed's whole workflow
(accounts, IAM with fixed keys, a user pool and client with fixed ids, an identity pool with its
role, buckets), the workflow then runs with boto3; `cognate apply` sends the same file to the
running server through its API (idempotent); bad files are refused with the file, the line and
what failed; only the default account's root may apply."""

import pathlib
import subprocess

import boto3
import botocore.exceptions
import pytest
import requests

from conftest import BINARY, NO_RETRIES, REPO, Server
from test_sts import error_of

SEED = REPO / "examples" / "seed.toml"
A, B = "111122223333", "222233334444"
POOL, CLIENT = "us-east-1_SeedPool1", "seedwebclient0000000000001"
IDENTITY_POOL = "us-east-1:00000000-0000-4000-8000-000000000001"


def client(server, service, key=None, secret=None, token=None, signed=True):
    if key is None and signed:
        key, secret = server.root_credentials()
    config = NO_RETRIES if signed else NO_RETRIES.merge(botocore.config.Config(signature_version=botocore.UNSIGNED))
    return boto3.client(service, endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, aws_session_token=token, config=config)


def creds(c):
    c = c["Credentials"]
    return c["AccessKeyId"], c.get("SecretAccessKey") or c["SecretKey"], c["SessionToken"]


def run_workflow(server):
    # 1. Sign-in with the user pool's fixed ids.
    idp = client(server, "cognito-idp", signed=False)
    tokens = idp.initiate_auth(ClientId=CLIENT, AuthFlow="USER_PASSWORD_AUTH",
                               AuthParameters={"USERNAME": "alice", "PASSWORD": "Correct-Horse-9"})["AuthenticationResult"]
    # 2. Web identity federation through the identity pool, 4. confined to the own prefix.
    ci = client(server, "cognito-identity", signed=False)
    logins = {f"cognito-idp.us-east-1.amazonaws.com/{POOL}": tokens["IdToken"]}
    identity = ci.get_id(IdentityPoolId=IDENTITY_POOL, Logins=logins)["IdentityId"]
    s3 = client(server, "s3", *creds(ci.get_credentials_for_identity(IdentityId=identity, Logins=logins)))
    s3.put_object(Bucket="app-data", Key=f"{identity}/notes.txt", Body=b"mine")
    assert s3.get_object(Bucket="app-data", Key=f"{identity}/notes.txt")["Body"].read() == b"mine"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket="app-data", Key="someone-else/notes.txt", Body=b"x")
    assert error_of(e) == ("AccessDenied", 403)
    # 5. Cross-account: the logger writes in B, alice (in ops) assumes B's LogReader and reads.
    logger = client(server, "s3", "AKIALOGGER0000000001", "logger-secret-key-000000000000000000000")
    logger.put_object(Bucket="b-logs", Key="app.log", Body=b"all good\n")
    alice = client(server, "sts", "AKIAALICE00000000001", "alice-secret-key-0000000000000000000000")
    assert alice.get_caller_identity()["Arn"] == f"arn:aws:iam::{A}:user/alice"
    role = alice.assume_role(RoleArn=f"arn:aws:iam::{B}:role/LogReader", RoleSessionName="alice")
    reader = client(server, "s3", *creds(role))
    assert reader.get_object(Bucket="b-logs", Key="app.log")["Body"].read() == b"all good\n"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        reader.get_object(Bucket="app-data", Key=f"{identity}/notes.txt")
    assert error_of(e) == ("AccessDenied", 403)
    mallory = client(server, "sts", "AKIAMALLORY000000001", "mallory-secret-key-00000000000000000000")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        mallory.assume_role(RoleArn=f"arn:aws:iam::{B}:role/LogReader", RoleSessionName="mallory")
    assert error_of(e) == ("AccessDenied", 403)


def apply(server, path, credentials=None):
    return subprocess.run(
        [BINARY, "apply", str(path), "--endpoint", server.url,
         "--credentials", str(credentials or server.data_dir / "root-credentials")],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


def test_init_sets_up_the_seed_workflow_and_apply_is_idempotent(tmp_path):
    server = Server(tmp_path / "data", extra_args=("--account-id", A, "--init", str(SEED)))
    try:
        run_workflow(server)
        idp = client(server, "cognito-idp")
        assert idp.describe_user_pool(UserPoolId=POOL)["UserPool"]["Name"] == "app"
        assert client(server, "s3").get_bucket_cors(Bucket="app-data")["CORSRules"][0]["AllowedOrigins"] == [
            "http://localhost:5173"]
        # Through the running server's API, twice: nothing breaks, nothing is duplicated.
        for _ in range(2):
            out = apply(server, SEED)
            assert out.returncode == 0, out.stderr
            assert f"user pool {POOL} (app)" in out.stdout
        run_workflow(server)
        assert len(idp.list_user_pool_clients(UserPoolId=POOL)["UserPoolClients"]) == 1
        assert [u["Username"] for u in idp.list_users(UserPoolId=POOL)["Users"]] == ["alice"]
        keys = client(server, "iam").list_access_keys(UserName="alice")["AccessKeyMetadata"]
        assert [k["AccessKeyId"] for k in keys] == ["AKIAALICE00000000001"]
    finally:
        server.stop()
    # A restart with the same --init file keeps everything (and the sign-in still works).
    again = Server(tmp_path / "data", extra_args=("--account-id", A, "--init", str(SEED)))
    try:
        run_workflow(again)
    finally:
        again.stop()


def test_bad_files_name_the_file_line_and_field_and_only_the_root_applies(tmp_path):
    server = Server(tmp_path / "data", extra_args=("--account-id", A))
    try:
        bad = tmp_path / "bad.toml"
        bad.write_text('[[users]]\nname = "ok"\n\n[[user-pools]]\nid = "not a pool id"\nname = "x"\n')
        out = apply(server, bad)
        assert out.returncode != 0
        assert f"{bad}:4: " in out.stderr and "user pool id" in out.stderr, out.stderr
        bad.write_text('[[users]]\nname = "ok"\ncolour = "blue"\n')
        out = apply(server, bad)
        assert out.returncode != 0 and f"{bad}: " in out.stderr and "line 1" in out.stderr and "colour" in out.stderr, out.stderr
        bad.write_text('[[users]]\nname = "eve"\naccess-keys = [{ id = "AKIASHORT", secret = "s" }]\n')
        out = apply(server, bad)
        assert out.returncode != 0 and f"{bad}:1: " in out.stderr and "access-keys AKIASHORT" in out.stderr
        bad.write_text('[[buckets]]\nname = "web"\ncors = [{ AllowedOrigins = ["*"], AllowedMethods = ["PATCH"] }]\n')
        out = apply(server, bad)
        assert out.returncode != 0 and "Unsupported method is PATCH" in out.stderr, out.stderr

        # Unsigned, or signed by anyone but the default account's root: refused.
        assert requests.post(server.url + "/_cognate/apply", data=SEED.read_bytes()).status_code in (400, 403)
        iam = client(server, "iam")
        iam.create_user(UserName="admin")
        iam.attach_user_policy(UserName="admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        admin_credentials = tmp_path / "admin-credentials"
        admin_credentials.write_text(f"[default]\naws_access_key_id = {key['AccessKeyId']}\n"
                                     f"aws_secret_access_key = {key['SecretAccessKey']}\n")
        out = apply(server, SEED, admin_credentials)
        assert out.returncode != 0 and "Only the default account's root" in out.stderr, out.stderr
        # A forged signature (the right key id, the wrong secret) is refused too.
        admin_credentials.write_text(f"[default]\naws_access_key_id = {server.root_credentials()[0]}\n"
                                     "aws_secret_access_key = not-the-secret\n")
        out = apply(server, SEED, admin_credentials)
        assert out.returncode != 0 and "signature" in out.stderr.lower(), out.stderr
        with pytest.raises(botocore.exceptions.ClientError):
            client(server, "cognito-idp").describe_user_pool(UserPoolId=POOL)
    finally:
        server.stop()

    # --init with a bad file refuses to start, naming it.
    bad = tmp_path / "bad.toml"
    bad.write_text('[[user-pools]]\nid = "us-east-1_Ok1"\n')
    out = subprocess.run([BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "other"),
                          "--init", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and str(bad) in out.stderr and "name" in out.stderr, out.stderr
