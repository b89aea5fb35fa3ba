"""Cognito identity pools with boto3: the seed workflow (user pool sign-in → identity →
role credentials → S3 confined to the identity's prefix), role mapping, the basic flow through
AssumeRoleWithWebIdentity, an external OpenID Connect issuer and a Google stand-in, developer
identities, and every attack on the logins."""

import base64
import json
import pathlib
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import botocore.exceptions
import jwt
import pytest
import requests
from botocore import UNSIGNED
from botocore.config import Config

from conftest import Server
from test_sts import error_of
from test_web_identity import Issuer

PASSWORD = "Correct-Horse-9"
AUTH_ROLE = "CognitoAuth"
UNAUTH_ROLE = "CognitoUnauth"


def public(server, service="cognito-identity"):
    return server.client(service, config=Config(signature_version=UNSIGNED))


def user_pool(server, clients=1):
    idp = server.client("cognito-idp")
    pool_id = idp.create_user_pool(PoolName="app", Schema=[{"Name": "dept", "AttributeDataType": "String"}])["UserPool"]["Id"]
    ids = [idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName=f"web{i}",
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
        for i in range(clients)]
    return idp, pool_id, ids


def user(idp, pool_id, name, **attributes):
    attrs = [{"Name": k.replace("__", ":"), "Value": v} for k, v in attributes.items()]
    idp.admin_create_user(UserPoolId=pool_id, Username=name, UserAttributes=attrs, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username=name, Password=PASSWORD, Permanent=True)


def sign_in(idp, pool_id, client_id, name):
    out = idp.admin_initiate_auth(UserPoolId=pool_id, ClientId=client_id, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                  AuthParameters={"USERNAME": name, "PASSWORD": PASSWORD})
    return out["AuthenticationResult"]


def trust(pool_id, amr="authenticated", actions=("sts:AssumeRoleWithWebIdentity",)):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": "cognito-identity.amazonaws.com"}, "Action": list(actions),
        "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": pool_id},
                      "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": amr}}}]})


def role(server, name, trust_policy, policy=None):
    iam = server.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_policy)["Role"]["Arn"]
    if policy:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    return arn


def identity_pool(server, providers, **extra):
    ci = server.client("cognito-identity")
    pool = ci.create_identity_pool(IdentityPoolName="ids", AllowUnauthenticatedIdentities=True,
                                   CognitoIdentityProviders=providers, **extra)
    return ci, pool["IdentityPoolId"]


def credentials(server, identity_id, logins=None, **extra):
    args = {"IdentityId": identity_id, **extra}
    if logins:
        args["Logins"] = logins
    return public(server).get_credentials_for_identity(**args)["Credentials"]


def as_session(server, service, c):
    return server.client(service, c["AccessKeyId"], c["SecretKey"], c["SessionToken"])


def caller_arn(server, c):
    return as_session(server, "sts", c).get_caller_identity()["Arn"]


def provider_name(pool_id):
    return f"cognito-idp.us-east-1.amazonaws.com/{pool_id}"


def test_seed_workflow_user_pool_identity_credentials_and_s3_prefix(server):
    idp, up, (client,) = user_pool(server)
    user(idp, up, "ann")
    user(idp, up, "bob")
    ci, pool_id = identity_pool(server, [{"ProviderName": provider_name(up), "ClientId": client}])
    per_identity = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": "arn:aws:s3:::media/${cognito-identity.amazonaws.com:sub}/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::media",
         "Condition": {"StringLike": {"s3:prefix": "${cognito-identity.amazonaws.com:sub}/*"}}}]}
    auth = role(server, AUTH_ROLE, trust(pool_id), per_identity)
    unauth = role(server, UNAUTH_ROLE, trust(pool_id, "unauthenticated"))
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": auth, "unauthenticated": unauth})
    assert ci.get_identity_pool_roles(IdentityPoolId=pool_id)["Roles"] == {"authenticated": auth, "unauthenticated": unauth}
    server.client("s3").create_bucket(Bucket="media")

    ids = {}
    for name in ("ann", "bob"):
        token = sign_in(idp, up, client, name)["IdToken"]
        logins = {provider_name(up): token}
        identity = public(server).get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
        assert identity.startswith("us-east-1:")
        # The same user gets the same identity, also under the pool's issuer name, and after a
        # new sign-in.
        again = sign_in(idp, up, client, name)["IdToken"]
        issuer_name = server.url.split("://", 1)[1] + "/" + up
        assert public(server).get_id(IdentityPoolId=pool_id, Logins={issuer_name: again})["IdentityId"] == identity
        c = credentials(server, identity, logins)
        assert caller_arn(server, c) == f"arn:aws:sts::{server.account_id}:assumed-role/{AUTH_ROLE}/CognitoIdentityCredentials"
        s3 = as_session(server, "s3", c)
        s3.put_object(Bucket="media", Key=f"{identity}/photo.jpg", Body=f"{name}'s photo".encode())
        assert s3.list_objects_v2(Bucket="media", Prefix=f"{identity}/")["KeyCount"] == 1
        ids[name] = (identity, s3)
    assert ids["ann"][0] != ids["bob"][0]

    # Each user reaches only their own prefix.
    ann, ann_s3 = ids["ann"]
    bob, bob_s3 = ids["bob"]
    assert ann_s3.get_object(Bucket="media", Key=f"{ann}/photo.jpg")["Body"].read() == b"ann's photo"
    for call in (lambda: bob_s3.get_object(Bucket="media", Key=f"{ann}/photo.jpg"),
                 lambda: bob_s3.put_object(Bucket="media", Key=f"{ann}/evil.jpg", Body=b"x"),
                 lambda: bob_s3.list_objects_v2(Bucket="media", Prefix=f"{ann}/"),
                 lambda: bob_s3.put_object(Bucket="media", Key="shared.jpg", Body=b"x")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_of(e) == ("AccessDenied", 403)

    # Unauthenticated identities get the unauthenticated role, with no S3 access.
    guest = public(server).get_id(IdentityPoolId=pool_id)["IdentityId"]
    c = credentials(server, guest)
    assert caller_arn(server, c).endswith(f":assumed-role/{UNAUTH_ROLE}/CognitoIdentityCredentials")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_session(server, "s3", c).get_object(Bucket="media", Key=f"{guest}/photo.jpg")
    assert error_of(e) == ("AccessDenied", 403)

    # An authenticated identity needs its login: none, or another user's, is refused.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        credentials(server, ann)
    assert error_of(e) == ("NotAuthorizedException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        credentials(server, ann, {provider_name(up): sign_in(idp, up, client, "bob")["IdToken"]})
    assert error_of(e) == ("NotAuthorizedException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        credentials(server, "us-east-1:00000000-0000-0000-0000-000000000000")
    assert error_of(e) == ("ResourceNotFoundException", 400)

    # Without unauthenticated access, GetId needs a login.
    ci.update_identity_pool(IdentityPoolId=pool_id, IdentityPoolName="ids", AllowUnauthenticatedIdentities=False,
                            CognitoIdentityProviders=[{"ProviderName": provider_name(up), "ClientId": client}])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        public(server).get_id(IdentityPoolId=pool_id)
    assert error_of(e) == ("NotAuthorizedException", 400)
    assert "Unauthenticated access is not supported" in e.value.response["Error"]["Message"]


def test_user_pool_login_attacks(server):
    idp, up, (client, other_client) = user_pool(server, clients=2)
    user(idp, up, "ann")
    _, other_up, (foreign_client,) = user_pool(server)
    user(idp, other_up, "ann")
    ci, pool_id = identity_pool(server, [{"ProviderName": provider_name(up), "ClientId": client,
                                          "ServerSideTokenCheck": True}])
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": role(server, AUTH_ROLE, trust(pool_id))})
    tokens = sign_in(idp, up, client, "ann")
    good = tokens["IdToken"]
    identity = public(server).get_id(IdentityPoolId=pool_id, Logins={provider_name(up): good})["IdentityId"]

    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    from cryptography.hazmat.primitives.asymmetric import rsa
    own_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = json.loads(base64.urlsafe_b64decode(header + "=="))["kid"]
    b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    attacks = {
        "re-signed with another key": jwt.encode(claims, own_key, algorithm="RS256", headers={"kid": kid}),
        "claims changed": f"{header}.{b64({**claims, 'sub': 'someone-else'})}.{signature}",
        "alg none": f"{b64({'alg': 'none', 'kid': kid})}.{payload}.",
        "access token": tokens["AccessToken"],
        "other client": sign_in(idp, up, other_client, "ann")["IdToken"],
        "other pool": sign_in(idp, other_up, foreign_client, "ann")["IdToken"],
        "garbage": "not-a-token",
    }
    for name, token in attacks.items():
        for call in (lambda: public(server).get_id(IdentityPoolId=pool_id, Logins={provider_name(up): token}),
                     lambda: credentials(server, identity, {provider_name(up): token})):
            with pytest.raises(botocore.exceptions.ClientError) as e:
                call()
            assert error_of(e) == ("NotAuthorizedException", 400), name
    # A provider the pool does not have.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        public(server).get_id(IdentityPoolId=pool_id, Logins={provider_name(other_up): attacks["other pool"]})
    assert error_of(e) == ("NotAuthorizedException", 400)
    assert "not from a supported provider" in e.value.response["Error"]["Message"]

    # ServerSideTokenCheck: a signed-out user's still-unexpired token is refused.
    assert credentials(server, identity, {provider_name(up): good})["AccessKeyId"].startswith("ASIA")
    idp.admin_user_global_sign_out(UserPoolId=up, Username="ann")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        credentials(server, identity, {provider_name(up): good})
    assert error_of(e) == ("NotAuthorizedException", 400)


def test_role_mapping_token_rules_and_deny(server):
    idp, up, (client,) = user_pool(server)
    iam_roles = {}
    ci, pool_id = identity_pool(server, [{"ProviderName": provider_name(up), "ClientId": client}])
    for name in ("Default", "Admins", "Editors", "Ops"):
        iam_roles[name] = role(server, name, trust(pool_id))
    idp.create_group(UserPoolId=up, GroupName="admins", Precedence=1, RoleArn=iam_roles["Admins"])
    idp.create_group(UserPoolId=up, GroupName="editors", Precedence=5, RoleArn=iam_roles["Editors"])
    user(idp, up, "root-user", email="root@example.com")
    user(idp, up, "editor", email="ed@example.com", custom__dept="ops")
    user(idp, up, "nobody", email="nobody@elsewhere.org")
    idp.admin_add_user_to_group(UserPoolId=up, Username="root-user", GroupName="admins")
    idp.admin_add_user_to_group(UserPoolId=up, Username="root-user", GroupName="editors")
    idp.admin_add_user_to_group(UserPoolId=up, Username="editor", GroupName="editors")

    def role_of(name, custom=None):
        logins = {provider_name(up): sign_in(idp, up, client, name)["IdToken"]}
        identity = public(server).get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
        extra = {"CustomRoleArn": custom} if custom else {}
        return caller_arn(server, credentials(server, identity, logins, **extra)).split("/")[1]

    def set_mapping(mapping):
        ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": iam_roles["Default"]},
                                   RoleMappings={f"{provider_name(up)}:{client}": mapping})

    # Token: the preferred role (lowest precedence), a custom role among cognito:roles.
    set_mapping({"Type": "Token", "AmbiguousRoleResolution": "AuthenticatedRole"})
    assert role_of("root-user") == "Admins"
    assert role_of("editor") == "Editors"
    assert role_of("root-user", custom=iam_roles["Editors"]) == "Editors"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        role_of("editor", custom=iam_roles["Admins"])
    assert error_of(e) == ("NotAuthorizedException", 400)
    assert role_of("nobody") == "Default"
    set_mapping({"Type": "Token", "AmbiguousRoleResolution": "Deny"})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        role_of("nobody")
    assert error_of(e) == ("NotAuthorizedException", 400)
    assert "ambiguous role mapping" in e.value.response["Error"]["Message"]

    # Rules: first match in order; no match resolves to the authenticated role or Deny.
    rules = {"Rules": [
        {"Claim": "custom:dept", "MatchType": "Equals", "Value": "ops", "RoleARN": iam_roles["Ops"]},
        {"Claim": "email", "MatchType": "Contains", "Value": "@example.com", "RoleARN": iam_roles["Editors"]}]}
    set_mapping({"Type": "Rules", "AmbiguousRoleResolution": "AuthenticatedRole", "RulesConfiguration": rules})
    assert role_of("editor") == "Ops"
    assert role_of("root-user") == "Editors"
    assert role_of("nobody") == "Default"
    set_mapping({"Type": "Rules", "AmbiguousRoleResolution": "Deny", "RulesConfiguration": rules})
    assert role_of("editor") == "Ops"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        role_of("nobody")
    assert error_of(e) == ("NotAuthorizedException", 400)
    got = ci.get_identity_pool_roles(IdentityPoolId=pool_id)["RoleMappings"]
    assert got[f"{provider_name(up)}:{client}"]["RulesConfiguration"] == rules

    # Mappings are validated: a provider the pool lacks, a missing resolution, no rules.
    for mapping, key in (({"Type": "Token", "AmbiguousRoleResolution": "Deny"}, "graph.facebook.com"),
                         ({"Type": "Token"}, provider_name(up)),
                         ({"Type": "Rules", "AmbiguousRoleResolution": "Deny"}, provider_name(up))):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={}, RoleMappings={key: mapping})
        assert error_of(e) == ("InvalidParameterException", 400)

    # A role whose trust policy does not accept the pool is a configuration error.
    other = role(server, "Elsewhere", trust("us-east-1:another-pool"))
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": other})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        role_of("nobody")
    assert error_of(e) == ("InvalidIdentityPoolConfigurationException", 400)


def test_basic_flow_open_id_token_and_trust_conditions(server):
    idp, up, (client,) = user_pool(server)
    user(idp, up, "ann")
    ci, pool_id = identity_pool(server, [{"ProviderName": provider_name(up), "ClientId": client}], AllowClassicFlow=True)
    logins = {provider_name(up): sign_in(idp, up, client, "ann")["IdToken"]}
    identity = public(server).get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
    token = public(server).get_open_id_token(IdentityId=identity, Logins=logins)["Token"]

    # The token verifies with PyJWT against the published keys.
    jwks = jwt.PyJWKSet.from_dict(requests.get(f"{server.url}/.well-known/jwks_uri").json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    assert jwt.get_unverified_header(token)["alg"] == "RS512"  # as Cognito signs them
    claims = jwt.decode(token, key.key, algorithms=["RS512"], audience=pool_id, issuer="https://cognito-identity.amazonaws.com")
    assert claims["sub"] == identity
    assert claims["amr"][:2] == ["authenticated", provider_name(up)]

    sts = public(server, "sts")
    good = role(server, "Basic", trust(pool_id))
    out = sts.assume_role_with_web_identity(RoleArn=good, RoleSessionName="app", WebIdentityToken=token)
    assert out["SubjectFromWebIdentityToken"] == identity
    assert out["Provider"] == "cognito-identity.amazonaws.com"
    assert out["AssumedRoleUser"]["Arn"].endswith(":assumed-role/Basic/app")
    # Trust conditions on aud and amr are enforced.
    any_pool = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": "cognito-identity.amazonaws.com"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringLike": {"cognito-identity.amazonaws.com:aud": "*"}}}]})
    for name, policy in (("OtherPool", trust("us-east-1:another-pool")), ("GuestsOnly", trust(pool_id, "unauthenticated")),
                         ("AnyPool", any_pool)):
        arn = role(server, name, policy)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sts.assume_role_with_web_identity(RoleArn=arn, RoleSessionName="app", WebIdentityToken=token)
        assert error_of(e) == ("AccessDenied", 403)
    # A tampered token is refused.
    h, p, s = token.split(".")
    forged = h + "." + base64.urlsafe_b64encode(json.dumps({**claims, "aud": "us-east-1:another-pool"}).encode()).rstrip(b"=").decode() + "." + s
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role_with_web_identity(RoleArn=good, RoleSessionName="app", WebIdentityToken=forged)
    assert error_of(e) == ("InvalidIdentityToken", 400)

    # Unauthenticated identities get amr "unauthenticated"; pools without the classic flow refuse.
    guest = public(server).get_id(IdentityPoolId=pool_id)["IdentityId"]
    guest_token = public(server).get_open_id_token(IdentityId=guest)["Token"]
    assert jwt.decode(guest_token, options={"verify_signature": False})["amr"] == ["unauthenticated"]
    guests = role(server, "Guests", trust(pool_id, "unauthenticated"))
    sts.assume_role_with_web_identity(RoleArn=guests, RoleSessionName="guest", WebIdentityToken=guest_token)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role_with_web_identity(RoleArn=good, RoleSessionName="guest", WebIdentityToken=guest_token)
    assert error_of(e) == ("AccessDenied", 403)
    _, enhanced_only = identity_pool(server, [])
    guest = public(server).get_id(IdentityPoolId=enhanced_only)["IdentityId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        public(server).get_open_id_token(IdentityId=guest)
    assert error_of(e) == ("InvalidParameterException", 400)


def test_external_oidc_issuer_and_google_stand_in():
    issuer = Issuer()
    issuer.add_rsa("k1")
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(pathlib.Path(tmp) / "data", extra_args=["--google-jwks-url", issuer.url + "/jwks"])
        try:
            iam = server.client("iam")
            oidc_arn = iam.create_open_id_connect_provider(Url=issuer.url, ClientIDList=["my-app"],
                                                           ThumbprintList=["0" * 40])["OpenIDConnectProviderArn"]
            oidc_name = issuer.url.split("://", 1)[1]
            ci, pool_id = identity_pool(server, [], OpenIdConnectProviderARNs=[oidc_arn],
                                        SupportedLoginProviders={"accounts.google.com": "google-app"})
            ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": role(server, AUTH_ROLE, trust(pool_id))})

            identity = public(server).get_id(IdentityPoolId=pool_id, Logins={oidc_name: issuer.token()})["IdentityId"]
            assert public(server).get_id(IdentityPoolId=pool_id, Logins={oidc_name: issuer.token()})["IdentityId"] == identity
            c = credentials(server, identity, {oidc_name: issuer.token()})
            assert caller_arn(server, c).endswith(f":assumed-role/{AUTH_ROLE}/CognitoIdentityCredentials")

            # Google (the stand-in signs with Google's issuer; Cognate fetches the configured JWKS).
            google = issuer.token(iss="https://accounts.google.com", aud="google-app", sub="g-42")
            g_identity = public(server).get_id(IdentityPoolId=pool_id, Logins={"accounts.google.com": google})["IdentityId"]
            assert g_identity != identity
            assert credentials(server, g_identity, {"accounts.google.com": google})["AccessKeyId"].startswith("ASIA")
            # Linking Google to the OIDC user's identity: one identity, both logins.
            linked = public(server).get_id(IdentityPoolId=pool_id, Logins={
                oidc_name: issuer.token(sub="user-9"), "accounts.google.com": issuer.token(iss="https://accounts.google.com", aud="google-app", sub="g-9")})["IdentityId"]
            assert sorted(ci.describe_identity(IdentityId=linked)["Logins"]) == sorted(["accounts.google.com", oidc_name])
            # A guest signing in with two logins at once keeps its id and gets both.
            guest = public(server).get_id(IdentityPoolId=pool_id)["IdentityId"]
            both = {oidc_name: issuer.token(sub="user-10"),
                    "accounts.google.com": issuer.token(iss="https://accounts.google.com", aud="google-app", sub="g-10")}
            assert credentials(server, guest, both)["AccessKeyId"].startswith("ASIA")
            assert sorted(ci.describe_identity(IdentityId=guest)["Logins"]) == sorted(["accounts.google.com", oidc_name])

            stranger = Issuer()
            stranger.add_rsa("k1")  # same kid, different key: a forgery
            now = int(time.time())
            attacks = {
                "forged": (oidc_name, stranger.token(iss=issuer.url)),
                "expired": (oidc_name, issuer.token(iat=now - 7200, exp=now - 3600)),
                "wrong audience": (oidc_name, issuer.token(aud="someone-else")),
                "issuer mismatch": (oidc_name, issuer.token(iss="https://evil.example")),
                "google forged": ("accounts.google.com", stranger.token(iss="https://accounts.google.com", aud="google-app")),
                "google wrong audience": ("accounts.google.com", issuer.token(iss="https://accounts.google.com", aud="my-app")),
                "google wrong issuer": ("accounts.google.com", issuer.token(aud="google-app")),
                "google expired": ("accounts.google.com", issuer.token(iss="https://accounts.google.com", aud="google-app", iat=now - 7200, exp=now - 3600)),
            }
            stranger.stop()
            for name, (provider, token) in attacks.items():
                with pytest.raises(botocore.exceptions.ClientError) as e:
                    public(server).get_id(IdentityPoolId=pool_id, Logins={provider: token})
                assert error_of(e) == ("NotAuthorizedException", 400), name
            with pytest.raises(botocore.exceptions.ClientError) as e:
                credentials(server, identity, {oidc_name: attacks["expired"][1]})
            assert error_of(e) == ("NotAuthorizedException", 400)
        finally:
            server.stop()
            issuer.stop()


def test_developer_identities_and_identity_administration(server):
    ci, pool_id = identity_pool(server, [], DeveloperProviderName="login.myapp")
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": role(server, AUTH_ROLE, trust(pool_id))})
    out = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={"login.myapp": "user-1"}, TokenDuration=600)
    identity = out["IdentityId"]
    claims = jwt.decode(out["Token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 600
    assert claims["amr"] == ["authenticated", "login.myapp", f"login.myapp:{pool_id}:user-1"]
    # The same developer user gets the same identity; its token buys credentials.
    again = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={"login.myapp": "user-1"})
    assert again["IdentityId"] == identity
    c = credentials(server, identity, {"cognito-identity.amazonaws.com": again["Token"]})
    assert caller_arn(server, c).endswith(f":assumed-role/{AUTH_ROLE}/CognitoIdentityCredentials")
    other = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={"login.myapp": "user-2"})
    with pytest.raises(botocore.exceptions.ClientError) as e:  # another identity's token
        credentials(server, identity, {"cognito-identity.amazonaws.com": other["Token"]})
    assert error_of(e) == ("NotAuthorizedException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, IdentityId=other["IdentityId"], Logins={"login.myapp": "user-1"})
    assert error_of(e) == ("DeveloperUserAlreadyRegisteredException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={"other.provider": "user-1"})
    assert error_of(e) == ("NotAuthorizedException", 400)

    looked = ci.lookup_developer_identity(IdentityPoolId=pool_id, DeveloperUserIdentifier="user-1")
    assert looked["IdentityId"] == identity and looked["DeveloperUserIdentifierList"] == ["user-1"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ci.lookup_developer_identity(IdentityPoolId=pool_id, IdentityId=other["IdentityId"], DeveloperUserIdentifier="user-1")
    assert error_of(e) == ("ResourceConflictException", 400)
    merged = ci.merge_developer_identities(SourceUserIdentifier="user-2", DestinationUserIdentifier="user-1",
                                           DeveloperProviderName="login.myapp", IdentityPoolId=pool_id)
    assert merged["IdentityId"] == identity
    # Either developer user now signs in to the merged identity.
    later = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={"login.myapp": "user-2"})
    assert later["IdentityId"] == identity
    assert public(server).get_id(IdentityPoolId=pool_id, Logins={"cognito-identity.amazonaws.com": later["Token"]})["IdentityId"] == identity
    assert sorted(ci.lookup_developer_identity(IdentityPoolId=pool_id, IdentityId=identity)["DeveloperUserIdentifierList"]) == ["user-1", "user-2"]
    ci.unlink_developer_identity(IdentityId=identity, IdentityPoolId=pool_id, DeveloperProviderName="login.myapp", DeveloperUserIdentifier="user-2")
    assert ci.lookup_developer_identity(IdentityPoolId=pool_id, IdentityId=identity)["DeveloperUserIdentifierList"] == ["user-1"]

    # Describe, list (paged), delete.
    described = ci.describe_identity(IdentityId=identity)
    assert described["Logins"] == ["login.myapp"] and described["CreationDate"]
    guests = [public(server).get_id(IdentityPoolId=pool_id)["IdentityId"] for _ in range(3)]
    page = ci.list_identities(IdentityPoolId=pool_id, MaxResults=2)
    rest = ci.list_identities(IdentityPoolId=pool_id, MaxResults=60, NextToken=page["NextToken"])
    listed = [i["IdentityId"] for i in page["Identities"] + rest["Identities"]]
    assert sorted(listed) == sorted(guests + [identity])
    assert ci.delete_identities(IdentityIdsToDelete=guests[:2])["UnprocessedIdentityIds"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ci.describe_identity(IdentityId=guests[0])
    assert error_of(e) == ("ResourceNotFoundException", 400)


def test_unlink_identity_disables_it(server):
    idp, up, (client,) = user_pool(server)
    user(idp, up, "ann")
    ci, pool_id = identity_pool(server, [{"ProviderName": provider_name(up), "ClientId": client}])
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": role(server, AUTH_ROLE, trust(pool_id))})
    logins = {provider_name(up): sign_in(idp, up, client, "ann")["IdToken"]}
    identity = public(server).get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
    public(server).unlink_identity(IdentityId=identity, Logins=logins, LoginsToRemove=[provider_name(up)])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        credentials(server, identity)
    assert error_of(e) == ("NotAuthorizedException", 400)
    assert "forbidden" in e.value.response["Error"]["Message"]
    assert ci.list_identities(IdentityPoolId=pool_id, MaxResults=10, HideDisabled=True)["Identities"] == []
    # The login is free again: signing in makes a new identity.
    assert public(server).get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"] != identity


def test_pool_administration_pass_role_and_principal_tags(server):
    idp, up, (client,) = user_pool(server)
    user(idp, up, "ann")
    ci, pool_id = identity_pool(server, [{"ProviderName": provider_name(up), "ClientId": client}],
                                IdentityPoolTags={"team": "web"})
    described = ci.describe_identity_pool(IdentityPoolId=pool_id)
    assert described["IdentityPoolName"] == "ids" and described["AllowUnauthenticatedIdentities"] is True
    assert described["CognitoIdentityProviders"][0]["ClientId"] == client
    arn = f"arn:aws:cognito-identity:us-east-1:{server.account_id}:identitypool/{pool_id}"
    ci.tag_resource(ResourceArn=arn, Tags={"env": "test"})
    assert ci.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "web", "env": "test"}
    ci.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert ci.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"env": "test"}
    second = ci.create_identity_pool(IdentityPoolName="second", AllowUnauthenticatedIdentities=False)["IdentityPoolId"]
    first_page = ci.list_identity_pools(MaxResults=1)
    next_page = ci.list_identity_pools(MaxResults=1, NextToken=first_page["NextToken"])
    assert {p["IdentityPoolId"] for p in first_page["IdentityPools"] + next_page["IdentityPools"]} == {pool_id, second}
    ci.delete_identity_pool(IdentityPoolId=second)
    for call in (lambda: ci.describe_identity_pool(IdentityPoolId=second),
                 lambda: public(server).get_id(IdentityPoolId=second)):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_of(e) == ("ResourceNotFoundException", 400)

    # Handing a role to a pool needs iam:PassRole; administering it needs cognito-identity:*.
    iam = server.client("iam")
    iam.create_user(UserName="dev")
    key = iam.create_access_key(UserName="dev")["AccessKey"]
    dev = server.client("cognito-identity", key["AccessKeyId"], key["SecretAccessKey"])
    tagged = role(server, "Tagged", trust(pool_id, actions=("sts:AssumeRoleWithWebIdentity", "sts:TagSession")), {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*",
                                                "Condition": {"StringEquals": {"aws:PrincipalTag/client": client}}}]})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        dev.describe_identity_pool(IdentityPoolId=pool_id)
    assert error_of(e) == ("AccessDeniedException", 403)
    iam.put_user_policy(UserName="dev", PolicyName="admin", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "cognito-identity:*", "Resource": "*"}]}))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        dev.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": tagged})
    assert error_of(e) == ("NotAuthorizedException", 400)
    assert f"Access to Role '{tagged}' is forbidden." == e.value.response["Error"]["Message"]
    iam.put_user_policy(UserName="dev", PolicyName="pass", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": tagged}]}))
    dev.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": tagged})

    # Principal tags: none by default; the defaults map client ← aud, username ← sub.
    logins = {provider_name(up): sign_in(idp, up, client, "ann")["IdToken"]}
    identity = public(server).get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_session(server, "s3", credentials(server, identity, logins)).list_buckets()
    assert error_of(e) == ("AccessDenied", 403)
    ci.set_principal_tag_attribute_map(IdentityPoolId=pool_id, IdentityProviderName=provider_name(up), UseDefaults=True)
    got = ci.get_principal_tag_attribute_map(IdentityPoolId=pool_id, IdentityProviderName=provider_name(up))
    assert got["UseDefaults"] is True
    as_session(server, "s3", credentials(server, identity, logins)).list_buckets()
    # Tags need sts:TagSession in the trust policy.
    untaggable = role(server, "Untaggable", trust(pool_id))
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": untaggable})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        credentials(server, identity, logins)
    assert error_of(e) == ("InvalidIdentityPoolConfigurationException", 400)


def test_unknown_operation_and_bad_input(server):
    ci = server.client("cognito-identity")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ci.create_identity_pool(IdentityPoolName="bad name!", AllowUnauthenticatedIdentities=True)
    assert error_of(e) == ("InvalidParameterException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ci.create_identity_pool(IdentityPoolName="x", AllowUnauthenticatedIdentities=False,
                                SupportedLoginProviders={"example.com": "id"})
    assert error_of(e) == ("InvalidParameterException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        public(server).get_id(IdentityPoolId="us-east-1:nope")
    assert error_of(e) == ("InvalidParameterException", 400)  # not an identity pool id
    with pytest.raises(botocore.exceptions.ClientError) as e:
        public(server).get_id(IdentityPoolId="us-east-1:00000000-0000-0000-0000-000000000000")
    assert error_of(e) == ("ResourceNotFoundException", 400)
    # Administrative operations need a signature.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        public(server).list_identity_pools(MaxResults=10)
    assert error_of(e) == ("MissingAuthenticationTokenException", 403)
    r = requests.post(server.url, data="{}", headers={"X-Amz-Target": "AWSCognitoIdentityService.NoSuchThing",
                                                      "Content-Type": "application/x-amz-json-1.1"})
    assert r.status_code == 400 and "UnknownOperation" in r.text


class Introspection:
    """Stand-ins for Facebook's Graph API and Login with Amazon's token info: tokens they
    know answer with their app and user, others get 400 as the real services answer."""

    TOKENS = {"fb-good": ("fb-app", "fb-user-1"), "fb-other-app": ("not-our-app", "fb-user-2"),
              "amzn-good": ("amzn-client", "amzn1.account.A1"), "amzn-other-app": ("other-client", "amzn1.account.B2")}

    def __init__(self):
        import http.server
        import threading
        import urllib.parse
        tokens = self.TOKENS
        self.asked = []  # the paths asked, in order
        self.delay = 0.0
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                stand_in.asked.append(url.path)
                time.sleep(stand_in.delay)
                token = urllib.parse.parse_qs(url.query).get("access_token", [""])[0]
                known = tokens.get(token)
                body, status = {"error": {"message": "Invalid OAuth access token."}}, 400
                if known and url.path == "/graph/app":
                    body, status = {"id": known[0], "name": "app"}, 200
                elif known and url.path == "/graph/me":
                    body, status = {"id": known[1], "name": "someone"}, 200
                elif known and url.path == "/amazon/auth/o2/tokeninfo":
                    body, status = {"aud": known[0], "user_id": known[1], "app_id": "amzn1.application.x"}, 200
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_facebook_and_amazon_logins_through_introspection():
    stand_in = Introspection()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(pathlib.Path(tmp) / "data", extra_args=[
            "--facebook-graph-url", stand_in.url + "/graph", "--amazon-api-url", stand_in.url + "/amazon"])
        try:
            ci, pool_id = identity_pool(server, [], SupportedLoginProviders={
                "graph.facebook.com": "fb-app", "www.amazon.com": "amzn-client"})
            ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": role(server, AUTH_ROLE, trust(pool_id))})
            for provider, good in (("graph.facebook.com", "fb-good"), ("www.amazon.com", "amzn-good")):
                identity = public(server).get_id(IdentityPoolId=pool_id, Logins={provider: good})["IdentityId"]
                assert public(server).get_id(IdentityPoolId=pool_id, Logins={provider: good})["IdentityId"] == identity
                c = credentials(server, identity, {provider: good})
                assert caller_arn(server, c).endswith(f":assumed-role/{AUTH_ROLE}/CognitoIdentityCredentials")
                for bad in ("unknown-token", good.split("-")[0] + "-other-app"):
                    with pytest.raises(botocore.exceptions.ClientError) as e:
                        public(server).get_id(IdentityPoolId=pool_id, Logins={provider: bad})
                    assert error_of(e) == ("NotAuthorizedException", 400), (provider, bad)
            # The provider unreachable: the dependency's error, not the user's.
            stand_in.stop()
            with pytest.raises(botocore.exceptions.ClientError) as e:
                public(server).get_id(IdentityPoolId=pool_id, Logins={"graph.facebook.com": "fb-good"})
            assert error_of(e) == ("ExternalServiceException", 400)
        finally:
            server.stop()


def test_callers_presenting_one_facebook_token_at_once_ask_facebook_once():
    stand_in = Introspection()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(pathlib.Path(tmp) / "data", extra_args=["--facebook-graph-url", stand_in.url + "/graph"])
        try:
            ci, pool_id = identity_pool(server, [], SupportedLoginProviders={"graph.facebook.com": "fb-app"})
            ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": role(server, AUTH_ROLE, trust(pool_id))})
            identity = public(server).get_id(IdentityPoolId=pool_id, Logins={"graph.facebook.com": "fb-good"})["IdentityId"]
            stand_in.asked.clear()
            stand_in.delay = 0.5  # every caller arrives while the first question is out
            clients = [public(server) for _ in range(16)]
            barrier = threading.Barrier(len(clients))

            def call(client):
                barrier.wait()
                return client.get_credentials_for_identity(IdentityId=identity, Logins={"graph.facebook.com": "fb-good"})

            with ThreadPoolExecutor(len(clients)) as pool:
                answers = list(pool.map(call, clients))
            assert all(a["IdentityId"] == identity and a["Credentials"]["AccessKeyId"] for a in answers)
            assert sorted(stand_in.asked) == ["/graph/app", "/graph/me"], stand_in.asked
        finally:
            server.stop()
            stand_in.stop()


def test_built_in_tokens_do_not_stand_in_for_logins(server):
    """Only a developer-issued token is a login of the built-in provider: a guest's or a user
    pool user's basic-flow token cannot buy the authenticated role or skip role mapping, and a
    token re-issued from a developer token lives no longer than it."""
    idp, up, (client,) = user_pool(server)
    user(idp, up, "ann")
    ci, pool_id = identity_pool(server, [{"ProviderName": provider_name(up), "ClientId": client}],
                                AllowClassicFlow=True, DeveloperProviderName="login.myapp")
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={
        "authenticated": role(server, AUTH_ROLE, trust(pool_id)),
        "unauthenticated": role(server, UNAUTH_ROLE, trust(pool_id, "unauthenticated"))})
    guest = public(server).get_id(IdentityPoolId=pool_id)["IdentityId"]
    guest_token = public(server).get_open_id_token(IdentityId=guest)["Token"]
    logins = {provider_name(up): sign_in(idp, up, client, "ann")["IdToken"]}
    ann = public(server).get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
    ann_token = public(server).get_open_id_token(IdentityId=ann, Logins=logins)["Token"]
    for identity, token in ((guest, guest_token), (ann, ann_token)):
        for call in (lambda: credentials(server, identity, {"cognito-identity.amazonaws.com": token}),
                     lambda: public(server).get_open_id_token(IdentityId=identity, Logins={"cognito-identity.amazonaws.com": token}),
                     lambda: public(server).get_id(IdentityPoolId=pool_id, Logins={"cognito-identity.amazonaws.com": token})):
            with pytest.raises(botocore.exceptions.ClientError) as e:
                call()
            assert error_of(e) == ("NotAuthorizedException", 400)
    assert caller_arn(server, credentials(server, guest)).endswith(f"/{UNAUTH_ROLE}/CognitoIdentityCredentials")

    dev = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={"login.myapp": "u1"}, TokenDuration=120)
    reissued = public(server).get_open_id_token(IdentityId=dev["IdentityId"], Logins={"cognito-identity.amazonaws.com": dev["Token"]})["Token"]
    exp = lambda t: jwt.decode(t, options={"verify_signature": False})["exp"]
    assert exp(reissued) <= exp(dev["Token"])
    # Once its last developer login is unlinked, the identity is inaccessible.
    ci.unlink_developer_identity(IdentityId=dev["IdentityId"], IdentityPoolId=pool_id,
                                 DeveloperProviderName="login.myapp", DeveloperUserIdentifier="u1")
    for logins in (None, {provider_name(up): sign_in(idp, up, client, "ann")["IdToken"]}):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            credentials(server, dev["IdentityId"], logins)
        assert error_of(e) == ("NotAuthorizedException", 400)


def test_roles_must_be_the_pools_and_name_it(server):
    from test_assume_role import setup_accounts
    b, iam_b = setup_accounts(server)
    ci, pool_id = identity_pool(server, [])
    foreign = iam_b.create_role(RoleName="Theirs", AssumeRolePolicyDocument=trust(pool_id))["Role"]["Arn"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"unauthenticated": foreign})
    assert error_of(e) == ("InvalidParameterException", 400)
    # A role trusting cognito-identity.amazonaws.com without naming pools serves none.
    loose = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": "cognito-identity.amazonaws.com"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "unauthenticated"}}}]})
    any_pool = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": "cognito-identity.amazonaws.com"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringLike": {"cognito-identity.amazonaws.com:aud": "*"}}}]})
    guest = public(server).get_id(IdentityPoolId=pool_id)["IdentityId"]
    for name, policy in (("Loose", loose), ("AnyPool", any_pool)):
        arn = role(server, name, policy)
        ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"unauthenticated": arn})
        with pytest.raises(botocore.exceptions.ClientError) as e:
            credentials(server, guest)
        assert error_of(e) == ("InvalidIdentityPoolConfigurationException", 400), name
    # Another account's administrators see none of this pool's identities.
    admin_b = server.admin("sts").assume_role(
        RoleArn=f"arn:aws:iam::{b}:role/OrganizationAccountAccessRole", RoleSessionName="admin-b")["Credentials"]
    ci_b = server.client("cognito-identity", admin_b["AccessKeyId"], admin_b["SecretAccessKey"], admin_b["SessionToken"])
    for call in (lambda: ci_b.describe_identity(IdentityId=guest),
                 lambda: ci_b.describe_identity_pool(IdentityPoolId=pool_id),
                 lambda: ci_b.list_identities(IdentityPoolId=pool_id, MaxResults=10)):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_of(e) == ("ResourceNotFoundException", 400)
    assert ci_b.delete_identities(IdentityIdsToDelete=[guest])["UnprocessedIdentityIds"] == []
    assert ci.describe_identity(IdentityId=guest)["IdentityId"] == guest


def test_logins_of_two_identities_merge_and_guests_sign_in(server):
    idp, up, (client,) = user_pool(server)
    user(idp, up, "ann")
    ci, pool_id = identity_pool(server, [{"ProviderName": provider_name(up), "ClientId": client}],
                                DeveloperProviderName="login.myapp")
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={
        "authenticated": role(server, AUTH_ROLE, trust(pool_id)),
        "unauthenticated": role(server, UNAUTH_ROLE, trust(pool_id, "unauthenticated"))})
    # A guest who signs in keeps the identity, now authenticated.
    guest = public(server).get_id(IdentityPoolId=pool_id)["IdentityId"]
    logins = {provider_name(up): sign_in(idp, up, client, "ann")["IdToken"]}
    assert caller_arn(server, credentials(server, guest, logins)).endswith(f"/{AUTH_ROLE}/CognitoIdentityCredentials")
    assert ci.describe_identity(IdentityId=guest)["Logins"] == [provider_name(up)]
    assert public(server).get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"] == guest
    # A developer identity and the user pool identity, presented together, become one.
    dev = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={"login.myapp": "ann-dev"})
    merged = public(server).get_id(IdentityPoolId=pool_id, Logins={**logins, "cognito-identity.amazonaws.com": dev["Token"]})["IdentityId"]
    assert merged in (guest, dev["IdentityId"])
    gone = guest if merged == dev["IdentityId"] else dev["IdentityId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ci.describe_identity(IdentityId=gone)
    assert error_of(e) == ("ResourceNotFoundException", 400)
    assert sorted(ci.describe_identity(IdentityId=merged)["Logins"]) == sorted(["login.myapp", provider_name(up)])


def test_developer_principal_tags_and_identity_operations_authorized_on_their_pool(server):
    ci, pool_id = identity_pool(server, [], DeveloperProviderName="login.myapp")
    tagged = role(server, "DevTagged", trust(pool_id, actions=("sts:AssumeRoleWithWebIdentity", "sts:TagSession")), {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*",
                                                "Condition": {"StringEquals": {"aws:PrincipalTag/dept": "ops"}}}]})
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": tagged})
    for dept, allowed in (("ops", True), ("sales", False)):
        out = ci.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool_id, Logins={"login.myapp": f"user-{dept}"}, PrincipalTags={"dept": dept})
        s3 = as_session(server, "s3", credentials(server, out["IdentityId"], {"cognito-identity.amazonaws.com": out["Token"]}))
        if allowed:
            s3.list_buckets()
        else:
            with pytest.raises(botocore.exceptions.ClientError) as e:
                s3.list_buckets()
            assert error_of(e) == ("AccessDenied", 403)

    # A per-pool Deny binds the identity operations too.
    iam = server.client("iam")
    iam.create_user(UserName="ops")
    key = iam.create_access_key(UserName="ops")["AccessKey"]
    pool_arn = f"arn:aws:cognito-identity:us-east-1:{server.account_id}:identitypool/{pool_id}"
    iam.put_user_policy(UserName="ops", PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "cognito-identity:*", "Resource": "*"},
        {"Effect": "Deny", "Action": ["cognito-identity:DescribeIdentity", "cognito-identity:DeleteIdentities"], "Resource": pool_arn}]}))
    ops = server.client("cognito-identity", key["AccessKeyId"], key["SecretAccessKey"])
    identity = ci.list_identities(IdentityPoolId=pool_id, MaxResults=10)["Identities"][0]["IdentityId"]
    for call in (lambda: ops.describe_identity(IdentityId=identity),
                 lambda: ops.delete_identities(IdentityIdsToDelete=[identity])):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_of(e) == ("AccessDeniedException", 403)
    assert ci.describe_identity(IdentityId=identity)["IdentityId"] == identity
