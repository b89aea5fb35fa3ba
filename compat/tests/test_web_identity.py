"""AssumeRoleWithWebIdentity against a real OpenID Connect issuer started by the test
(discovery document and JWKS over HTTP on loopback), and every attack on the token."""

import base64
import http.server
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import botocore.exceptions
import jwt
import pytest
from botocore.config import Config
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from test_sts import error_of


class Issuer:
    """A minimal OIDC issuer: a discovery document, a JWKS, and keys to sign with."""

    def __init__(self):
        self.keys = {}  # kid -> (private key, alg)
        handler = self._handler()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/issuer"
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self.asked = 0  # every request, answered or not
        self.delay = 0.0  # seconds each answer takes (a stalling issuer)
        self.failing = False  # answer 503 to everything
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _handler(self):
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                issuer.asked += 1
                time.sleep(issuer.delay)
                if issuer.failing:
                    self.send_response(503)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                if self.path == "/issuer/.well-known/openid-configuration":
                    issuer.discovery_fetches += 1
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"}
                elif self.path == "/issuer/jwks":
                    issuer.jwks_fetches += 1
                    body = {"keys": [issuer.public_jwk(kid) for kid in issuer.keys]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def add_rsa(self, kid):
        self.keys[kid] = (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")

    def add_ec(self, kid):
        self.keys[kid] = (ec.generate_private_key(ec.SECP256R1()), "ES256")

    def public_jwk(self, kid):
        key, alg = self.keys[kid]
        algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(key.public_key()))
        jwk.update(kid=kid, alg=alg, use="sig")
        return jwk

    def token(self, kid="k1", **overrides):
        now = int(time.time())
        claims = {"iss": self.url, "sub": "user-123", "aud": "my-app", "iat": now, "exp": now + 600, "amr": ["pwd"]}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        key, alg = self.keys[kid]
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})

    def stop(self):
        self.httpd.shutdown()


@pytest.fixture
def issuer():
    i = Issuer()
    i.add_rsa("k1")
    yield i
    i.stop()


def setup_role(server, issuer, sub_condition="user-123"):
    iam = server.client("iam")
    provider_arn = iam.create_open_id_connect_provider(Url=issuer.url, ClientIDList=["my-app"], ThumbprintList=["0" * 40])["OpenIDConnectProviderArn"]
    name = issuer.url.split("://", 1)[1]
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": provider_arn}, "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{name}:aud": "my-app", f"{name}:sub": sub_condition}}}]}
    role_arn = iam.create_role(RoleName="WebUser", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="WebUser", PolicyName="own-user", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:GetRole", "Resource": f"arn:aws:iam::{server.account_id}:role/${{{name}:sub}}"}]}))
    return role_arn, provider_arn


def anonymous_sts(server, **kwargs):
    client = server.client("sts", "unused", "unused", **kwargs)
    client.meta.events.register("choose-signer.sts.*", lambda **kw: botocore.UNSIGNED)
    return client


import botocore  # noqa: E402


def assume(server, role_arn, token):
    return anonymous_sts(server).assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="web", WebIdentityToken=token)


def test_valid_token_gets_role_credentials(server, issuer):
    role_arn, provider_arn = setup_role(server, issuer)
    out = assume(server, role_arn, issuer.token())
    assert out["SubjectFromWebIdentityToken"] == "user-123"
    assert out["Audience"] == "my-app"
    assert out["Provider"] == provider_arn
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{server.account_id}:assumed-role/WebUser/web"
    c = out["Credentials"]
    session = server.client("sts", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    assert session.get_caller_identity()["Arn"].endswith(":assumed-role/WebUser/web")
    # The token's sub is a policy variable in the session's requests.
    iam = server.client("iam", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.get_role(RoleName="WebUser")
    assert error_of(e) == ("AccessDenied", 403)
    server.client("iam").create_role(RoleName="user-123", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": server.account_id}, "Action": "sts:AssumeRole"}]}))
    assert iam.get_role(RoleName="user-123")["Role"]["RoleName"] == "user-123"


def test_trust_policy_sub_condition_is_enforced(server, issuer):
    role_arn, _ = setup_role(server, issuer, sub_condition="someone-else")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(server, role_arn, issuer.token())
    assert error_of(e) == ("AccessDenied", 403)


def test_es256_tokens_and_key_rotation(server, issuer):
    role_arn, _ = setup_role(server, issuer)
    assume(server, role_arn, issuer.token())
    fetches = issuer.jwks_fetches
    assume(server, role_arn, issuer.token())
    assert issuer.jwks_fetches == fetches, "keys are cached"
    issuer.add_ec("k2")  # the issuer rotates in a new (EC) key: an unknown kid triggers one refetch
    assume(server, role_arn, issuer.token(kid="k2"))
    assert issuer.jwks_fetches == fetches + 1


# The test clients retry once, and botocore retries IDPCommunicationError: these callers ask once.
ASK_ONCE = Config(retries={"total_max_attempts": 1})


def at_once(server, role_arn, tokens):
    """AssumeRoleWithWebIdentity with each token, all at once; the answers or error codes."""
    clients = [anonymous_sts(server, config=ASK_ONCE) for _ in tokens]
    for client in clients:
        # A client's first call loads its model (slow, and serial under the GIL): warmed up
        # with a token refused before any issuer is asked, the calls below leave together.
        with pytest.raises(botocore.exceptions.ClientError):
            client.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="web", WebIdentityToken="not-a-token")
    barrier = threading.Barrier(len(tokens))

    def call(pair):
        client, token = pair
        barrier.wait()
        try:
            return client.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="web", WebIdentityToken=token)
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]

    with ThreadPoolExecutor(len(tokens)) as pool:
        return list(pool.map(call, zip(clients, tokens)))


def test_a_cold_issuer_is_asked_once_by_callers_arriving_together(server, issuer):
    role_arn, _ = setup_role(server, issuer)
    issuer.delay = 1.0  # every caller arrives while the first fetch is still running
    answers = at_once(server, role_arn, [issuer.token(jti=f"t{i}") for i in range(24)])
    assert all(a["SubjectFromWebIdentityToken"] == "user-123" for a in answers), answers
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1)


def test_a_failing_issuer_is_asked_again_only_after_a_backoff(server, issuer):
    role_arn, _ = setup_role(server, issuer)
    issuer.failing = True
    issuer.delay = 2.0  # long enough that every caller arrives while it is running
    answers = at_once(server, role_arn, [issuer.token(jti=f"t{i}") for i in range(16)])
    assert answers == [("IDPCommunicationError", 400)] * 16
    assert issuer.asked == 1, f"{issuer.asked} requests reached the failing issuer"
    # Callers keep coming, one every 50 ms for 2.5 s: only the few that come after a backoff
    # (1 s, then 2 s) ask again; the rest are answered at once.
    issuer.delay = 0.0
    client = anonymous_sts(server, config=ASK_ONCE)
    calls, start = 0, time.monotonic()
    while time.monotonic() - start < 2.5:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="web", WebIdentityToken=issuer.token(jti=f"c{calls}"))
        assert error_of(e) == ("IDPCommunicationError", 400)
        calls += 1
        time.sleep(0.05)
    assert calls >= 10 and issuer.asked <= 1 + 2, (calls, issuer.asked)
    # Once the issuer answers again, a caller after the backoff gets its keys.
    issuer.failing = False
    deadline = time.monotonic() + 10
    while True:
        try:
            out = client.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="web", WebIdentityToken=issuer.token(jti="later"))
            break
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "IDPCommunicationError"
            assert time.monotonic() < deadline, "the issuer was never asked again"
            time.sleep(0.1)
    assert out["SubjectFromWebIdentityToken"] == "user-123"


def hmac_token(claims, issuer):
    """The algorithm-confusion attack: HS256 keyed with the issuer's public key (PEM)."""
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    pem = issuer.keys["k1"][0].public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = b64({"alg": "HS256", "typ": "JWT", "kid": "k1"}) + "." + b64(claims)
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_attacks_are_refused(server, issuer):
    role_arn, _ = setup_role(server, issuer)
    valid = issuer.token()
    header, payload, signature = valid.split(".")
    now = int(time.time())
    claims = {"iss": issuer.url, "sub": "user-123", "aud": "my-app", "iat": now, "exp": now + 600}

    attacks = {
        "alg none": b64({"alg": "none", "kid": "k1"}) + "." + b64(claims) + ".",
        "hmac keyed with the public key": hmac_token(claims, issuer),
        "payload changed after signing": header + "." + b64({**claims, "sub": "admin"}) + "." + signature,
        "signed by another key": None,
        "wrong audience": issuer.token(aud="other-app"),
        "not a jwt": "not-a-token",
    }
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attacks["signed by another key"] = jwt.encode(claims, impostor, algorithm="RS256", headers={"kid": "k1"})
    for name, token in attacks.items():
        with pytest.raises(botocore.exceptions.ClientError) as e:
            assume(server, role_arn, token)
        assert e.value.response["Error"]["Code"] == "InvalidIdentityToken", name

    # An issuer with no provider in the account.
    stranger = Issuer()
    stranger.add_rsa("k1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(server, role_arn, stranger.token())
    assert e.value.response["Error"]["Code"] == "InvalidIdentityToken"
    stranger.stop()

    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(server, role_arn, issuer.token(exp=now - 3600, iat=now - 7200))
    assert e.value.response["Error"]["Code"] == "ExpiredTokenException"
