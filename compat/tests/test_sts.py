"""STS through boto3 and the AWS CLI, exactly as applications use them."""

import json
import os
import subprocess
import sys

import botocore.exceptions
import pytest
import requests

from conftest import Server


def error_of(excinfo):
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_root_caller_identity_with_boto3(server):
    out = server.client("sts").get_caller_identity()
    assert out["Account"] == server.account_id
    assert len(out["Account"]) == 12 and out["Account"].isdigit()
    assert out["Arn"] == f"arn:aws:iam::{server.account_id}:root"
    assert out["UserId"] == server.account_id


def test_root_caller_identity_with_the_aws_cli(server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(server.data_dir / "root-credentials"),
        AWS_CONFIG_FILE=os.devnull,
        AWS_DEFAULT_REGION="us-east-1",
    )
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    out = subprocess.run(
        [aws, "sts", "get-caller-identity", "--endpoint-url", server.url, "--output", "json"],
        env=env, capture_output=True, text=True, check=True,
    )
    identity = json.loads(out.stdout)
    assert identity["Arn"] == f"arn:aws:iam::{server.account_id}:root"


def test_wrong_secret_is_signature_does_not_match(server):
    key_id, secret = server.root_credentials()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.client("sts", key_id, secret[::-1]).get_caller_identity()
    assert error_of(e) == ("SignatureDoesNotMatch", 403)


def test_unknown_key_is_invalid_client_token_id(server):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.client("sts", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").get_caller_identity()
    assert error_of(e) == ("InvalidClientTokenId", 403)


def test_session_token_round_trip_and_tampering(server):
    creds = server.client("sts").get_session_token(DurationSeconds=900)["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    session = server.client("sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert session.get_caller_identity()["Arn"] == f"arn:aws:iam::{server.account_id}:root"

    token = creds["SessionToken"]
    middle = len(token) // 2
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]
    forged = server.client("sts", creds["AccessKeyId"], creds["SecretAccessKey"], tampered)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        forged.get_caller_identity()
    assert error_of(e) == ("InvalidClientTokenId", 403)


def test_presigned_get_caller_identity_works_with_plain_http(server):
    # The shape Kubernetes IAM authenticators use: a presigned STS GET.
    url = server.client("sts").generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    res = requests.get(url, timeout=30)
    assert res.status_code == 200, res.text
    assert f"<Arn>arn:aws:iam::{server.account_id}:root</Arn>" in res.text
    tampered = url.replace("X-Amz-Expires=60", "X-Amz-Expires=61")
    res = requests.get(tampered, timeout=30)
    assert res.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in res.text


def test_unknown_action_is_invalid_action(server):
    res = requests.post(server.url, data={"Action": "NoSuchThing", "Version": "2011-06-15"}, timeout=30)
    assert res.status_code == 400
    assert "<Code>InvalidAction</Code>" in res.text
    assert res.headers["x-amzn-RequestId"] in res.text


def test_dev_mode_accepts_any_unknown_credentials(tmp_path):
    dev = Server(tmp_path / "data", extra_args=["--dev"])
    try:
        out = dev.client("sts", "testing", "testing").get_caller_identity()
        assert out["Arn"] == f"arn:aws:iam::{dev.account_id}:root"
    finally:
        dev.stop()


def test_get_access_key_info_names_the_keys_account(server):
    sts = server.client("sts")
    root_key, _ = server.root_credentials()
    assert sts.get_access_key_info(AccessKeyId=root_key)["Account"] == server.account_id
    session = sts.get_session_token()["Credentials"]["AccessKeyId"]
    assert sts.get_access_key_info(AccessKeyId=session)["Account"] == server.account_id
    # AWS's documented example key.
    assert sts.get_access_key_info(AccessKeyId="ASIAY34FZKBOKMUTVV7A")["Account"] == "609629065308"
