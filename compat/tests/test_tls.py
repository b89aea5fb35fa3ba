"""HTTPS: `--tls-dev` (a local CA generated once into the data directory, trusted by clients
through AWS_CA_BUNDLE / NODE_EXTRA_CA_CERTS) and `--tls-cert`/`--tls-key`; issuers follow the
scheme; boto3, requests and aws-jwt-verify over TLS; bad settings refused at start."""

import base64
import json
import subprocess

import boto3
import botocore.config
import botocore.exceptions
import pytest
import requests

from conftest import BINARY, Server
from test_js_clients import node
from test_userpool import PASSWORD


def tls_server(tmp_path, name="data", args=("--tls-dev",)):
    return Server(tmp_path / name, extra_args=args)


def test_dev_tls_serves_https_that_clients_verify(tmp_path):
    server = tls_server(tmp_path)
    try:
        ca = str(server.data_dir / "tls" / "ca.pem")
        assert server.url.startswith("https://127.0.0.1:")
        assert requests.get(server.url + "/_cognate/health", verify=ca).json()["status"] == "ok"
        # Without trusting the CA, a client refuses the server.
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(server.url + "/_cognate/health")
        key, secret = server.root_credentials()
        idp = boto3.client("cognito-idp", endpoint_url=server.url, region_name="us-east-1",
                           aws_access_key_id=key, aws_secret_access_key=secret, verify=ca,
                           config=botocore.config.Config(retries={"max_attempts": 1}))
        pid = idp.create_user_pool(PoolName="app")["UserPool"]["Id"]
        cid = idp.create_user_pool_client(UserPoolId=pid, ClientName="api", ExplicitAuthFlows=[
            "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
        idp.admin_create_user(UserPoolId=pid, Username="tia", TemporaryPassword="Temp-Pass-1",
                              MessageAction="SUPPRESS")
        idp.admin_set_user_password(UserPoolId=pid, Username="tia", Password=PASSWORD, Permanent=True)
        tokens = idp.admin_initiate_auth(UserPoolId=pid, ClientId=cid, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                         AuthParameters={"USERNAME": "tia", "PASSWORD": PASSWORD})[
            "AuthenticationResult"]
        issuer = f"{server.url}/{pid}"
        discovery = requests.get(f"{issuer}/.well-known/openid-configuration", verify=ca).json()
        assert discovery["issuer"] == issuer and discovery["jwks_uri"].startswith("https://")

        # A back end verifying tokens with aws-jwt-verify, which fetches JWKS only over HTTPS.
        head, body, sig = tokens["IdToken"].split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        claims["cognito:username"] = "admin"
        forged = ".".join([head, base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("="), sig])
        seen = node("verify_token.mjs", {"ISSUER": issuer, "AUDIENCE": cid, "NODE_EXTRA_CA_CERTS": ca,
                                         "TOKENS": json.dumps([tokens["IdToken"], forged, tokens["AccessToken"]])})
        assert seen[0]["ok"] and seen[0]["claims"]["cognito:username"] == "tia"
        assert seen[0]["claims"]["iss"] == issuer
        assert not seen[1]["ok"] and seen[1]["error"] == "JwtInvalidSignatureError"
        # An access token has no `aud`: not a token for this audience.
        assert not seen[2]["ok"]
    finally:
        server.stop()

    # A restart keeps the certificate, so machines that trust the CA keep trusting the server.
    first = (tmp_path / "data" / "tls" / "server.pem").read_bytes()
    again = tls_server(tmp_path)
    try:
        assert (again.data_dir / "tls" / "server.pem").read_bytes() == first
        assert requests.get(again.url + "/_cognate/health", verify=ca).status_code == 200
    finally:
        again.stop()


def test_operator_certificate_and_bad_settings(tmp_path):
    # The dev CA's files stand in for an operator's certificate and key.
    tls_server(tmp_path, "minted").stop()
    tls = tmp_path / "minted" / "tls"
    server = tls_server(tmp_path, "data", ("--tls-cert", str(tls / "server.pem"), "--tls-key", str(tls / "server-key.pem")))
    try:
        assert requests.get(server.url + "/_cognate/health", verify=str(tls / "ca.pem")).status_code == 200
        assert not (server.data_dir / "tls").exists()
    finally:
        server.stop()

    def start_fails(*args):
        out = subprocess.run([BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "bad"), *args],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode != 0
        return out.stderr

    assert "--tls-cert and --tls-key must be given together" in start_fails("--tls-cert", str(tls / "server.pem"))
    assert "does not fit the certificate" in start_fails("--tls-cert", str(tls / "ca.pem"),
                                                         "--tls-key", str(tls / "server-key.pem"))
    assert "reading the TLS" in start_fails("--tls-cert", str(tmp_path / "missing.pem"),
                                            "--tls-key", str(tls / "server-key.pem"))
