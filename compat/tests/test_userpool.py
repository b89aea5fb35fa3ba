"""Cognito user pools with boto3: pools and clients, sign-up with codes from the file outbox,
password sign-in with the NEW_PASSWORD_REQUIRED challenge, refresh, sign-out, and tokens
verified with PyJWT against the pool's discovered JWKS."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import time

import botocore.exceptions
import jwt
import pytest
import requests

from conftest import altered
from test_sts import error_of

PASSWORD = "Correct-Horse-9"


def outbox(server, username):
    """The newest message for `username` in the server's file outbox."""
    messages = []
    for path in sorted((server.data_dir / "outbox").glob("*.json")):
        message = json.loads(path.read_text())
        if message["username"] == username:
            messages.append(message)
    assert messages, f"no message for {username}"
    return messages[-1]


def pool_and_client(server, secret=False, **pool_args):
    idp = server.client("cognito-idp")
    pool = idp.create_user_pool(PoolName="app", AutoVerifiedAttributes=["email"], **pool_args)["UserPool"]
    client = idp.create_user_pool_client(
        UserPoolId=pool["Id"], ClientName="web", GenerateSecret=secret,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH",
                           "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"])["UserPoolClient"]
    return idp, pool, client


def public_client(server):
    """A client that signs nothing, as browsers and mobile apps call Cognito."""
    from botocore import UNSIGNED
    from botocore.config import Config
    return server.client("cognito-idp", config=Config(signature_version=UNSIGNED))


def verify(server, pool_id, token, audience=None):
    issuer = f"{server.url}/{pool_id}"
    discovery = requests.get(f"{issuer}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == issuer
    jwks = jwt.PyJWKClient(discovery["jwks_uri"])
    key = jwks.get_signing_key_from_jwt(token)
    options = {"verify_aud": audience is not None}
    return jwt.decode(token, key.key, algorithms=["RS256"], issuer=issuer, audience=audience, options=options)


def test_admin_created_user_signs_in_and_tokens_verify_with_pyjwt(server):
    idp, pool, client = pool_and_client(server)
    assert pool["Id"].startswith("us-east-1_")
    assert pool["Arn"] == f"arn:aws:cognito-idp:us-east-1:{server.account_id}:userpool/{pool['Id']}"
    assert idp.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]["Name"] == "app"
    assert [p["Id"] for p in idp.list_user_pools(MaxResults=10)["UserPools"]] == [pool["Id"]]
    created = idp.admin_create_user(UserPoolId=pool["Id"], Username="alice",
                                    UserAttributes=[{"Name": "email", "Value": "alice@example.com"}])["User"]
    assert created["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    temporary = outbox(server, "alice")["temporary_password"]

    app = public_client(server)
    out = app.initiate_auth(ClientId=client["ClientId"], AuthFlow="USER_PASSWORD_AUTH",
                            AuthParameters={"USERNAME": "alice", "PASSWORD": temporary})
    assert out["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.respond_to_auth_challenge(ClientId=client["ClientId"], ChallengeName="NEW_PASSWORD_REQUIRED",
                                      Session=out["Session"], ChallengeResponses={"USERNAME": "alice", "NEW_PASSWORD": "weak"})
    assert error_of(e) == ("InvalidPasswordException", 400)
    tokens = app.respond_to_auth_challenge(
        ClientId=client["ClientId"], ChallengeName="NEW_PASSWORD_REQUIRED", Session=out["Session"],
        ChallengeResponses={"USERNAME": "alice", "NEW_PASSWORD": PASSWORD})["AuthenticationResult"]
    assert idp.admin_get_user(UserPoolId=pool["Id"], Username="alice")["UserStatus"] == "CONFIRMED"

    id_claims = verify(server, pool["Id"], tokens["IdToken"], audience=client["ClientId"])
    assert id_claims["token_use"] == "id"
    assert id_claims["cognito:username"] == "alice"
    assert id_claims["email"] == "alice@example.com"
    assert id_claims["sub"] == created["Attributes"][0]["Value"]
    access = verify(server, pool["Id"], tokens["AccessToken"])
    assert access["token_use"] == "access" and access["client_id"] == client["ClientId"]
    assert access["origin_jti"] == id_claims["origin_jti"]
    assert jwt.get_unverified_header(tokens["AccessToken"])["alg"] == "RS256"

    me = app.get_user(AccessToken=tokens["AccessToken"])
    assert me["Username"] == "alice"
    assert {"Name": "email", "Value": "alice@example.com"} in me["UserAttributes"]

    # Refresh: new ID and access tokens from the same sign-in, no new refresh token.
    refreshed = app.initiate_auth(ClientId=client["ClientId"], AuthFlow="REFRESH_TOKEN_AUTH",
                                  AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]})["AuthenticationResult"]
    assert "RefreshToken" not in refreshed
    assert verify(server, pool["Id"], refreshed["AccessToken"])["origin_jti"] == access["origin_jti"]

    # Global sign-out refuses the access token and the refresh token.
    app.global_sign_out(AccessToken=refreshed["AccessToken"])
    for call in [lambda: app.get_user(AccessToken=tokens["AccessToken"]),
                 lambda: app.initiate_auth(ClientId=client["ClientId"], AuthFlow="REFRESH_TOKEN_AUTH",
                                           AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]})]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_of(e) == ("NotAuthorizedException", 400)
    # A new sign-in works again.
    again = app.initiate_auth(ClientId=client["ClientId"], AuthFlow="USER_PASSWORD_AUTH",
                              AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD})["AuthenticationResult"]
    assert app.get_user(AccessToken=again["AccessToken"])["Username"] == "alice"
    # RevokeToken ends that sign-in: its refresh and access tokens are refused.
    app.revoke_token(Token=again["RefreshToken"], ClientId=client["ClientId"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.get_user(AccessToken=again["AccessToken"])
    assert error_of(e) == ("NotAuthorizedException", 400)


def test_sign_up_confirmation_and_errors(server):
    idp, pool, client = pool_and_client(server)
    app = public_client(server)
    cid = client["ClientId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.sign_up(ClientId=cid, Username="bob", Password="short", UserAttributes=[{"Name": "email", "Value": "bob@example.com"}])
    assert error_of(e) == ("InvalidPasswordException", 400)
    out = app.sign_up(ClientId=cid, Username="bob", Password=PASSWORD,
                      UserAttributes=[{"Name": "email", "Value": "bob@example.com"}])
    assert out["UserConfirmed"] is False
    assert out["CodeDeliveryDetails"] == {"Destination": "b***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.sign_up(ClientId=cid, Username="bob", Password=PASSWORD)
    assert error_of(e) == ("UsernameExistsException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "bob", "PASSWORD": PASSWORD})
    assert error_of(e) == ("UserNotConfirmedException", 400)
    code = outbox(server, "bob")["code"]
    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.confirm_sign_up(ClientId=cid, Username="bob", ConfirmationCode=wrong)
    assert error_of(e) == ("CodeMismatchException", 400)
    app.confirm_sign_up(ClientId=cid, Username="bob", ConfirmationCode=code)
    user = idp.admin_get_user(UserPoolId=pool["Id"], Username="bob")
    assert user["UserStatus"] == "CONFIRMED"
    assert {"Name": "email_verified", "Value": "true"} in user["UserAttributes"]
    tokens = app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                               AuthParameters={"USERNAME": "bob", "PASSWORD": PASSWORD})["AuthenticationResult"]
    assert verify(server, pool["Id"], tokens["IdToken"], audience=cid)["email_verified"] is True

    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "bob", "PASSWORD": "Wrong-Horse-9"})
    assert error_of(e) == ("NotAuthorizedException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "nobody", "PASSWORD": PASSWORD})
    assert error_of(e) == ("UserNotFoundException", 400)

    idp.admin_disable_user(UserPoolId=pool["Id"], Username="bob")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.get_user(AccessToken=tokens["AccessToken"])
    assert error_of(e) == ("NotAuthorizedException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "bob", "PASSWORD": PASSWORD})
    assert error_of(e) == ("NotAuthorizedException", 400)
    idp.admin_enable_user(UserPoolId=pool["Id"], Username="bob")
    idp.admin_delete_user(UserPoolId=pool["Id"], Username="bob")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        idp.admin_get_user(UserPoolId=pool["Id"], Username="bob")
    assert error_of(e) == ("UserNotFoundException", 400)


def test_sign_up_codes_go_only_to_auto_verified_attributes_the_user_gave(server):
    idp, app = server.client("cognito-idp"), public_client(server)

    def pool(auto):
        pid = idp.create_user_pool(PoolName="p", AutoVerifiedAttributes=auto)["UserPool"]["Id"]
        return pid, idp.create_user_pool_client(UserPoolId=pid, ClientName="c")["UserPoolClient"]["ClientId"]

    def messages(name):
        return [m for m in (json.loads(p.read_text()) for p in (server.data_dir / "outbox").glob("*.json"))
                if m["username"] == name]

    phone = {"Name": "phone_number", "Value": "+15555550100"}
    email = {"Name": "email", "Value": "pat@example.com"}
    # The pool verifies emails; this user gave none: no message, and nothing to resend.
    pid, cid = pool(["email"])
    out = app.sign_up(ClientId=cid, Username="nomail", Password=PASSWORD, UserAttributes=[phone])
    assert out["UserConfirmed"] is False and "CodeDeliveryDetails" not in out
    assert messages("nomail") == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.resend_confirmation_code(ClientId=cid, Username="nomail")
    assert error_of(e) == ("InvalidParameterException", 400)
    # A pool that verifies nothing sends nothing.
    pid, cid = pool([])
    assert "CodeDeliveryDetails" not in app.sign_up(ClientId=cid, Username="quiet", Password=PASSWORD,
                                                    UserAttributes=[email])
    assert messages("quiet") == []
    # Both verified and both given: Cognito verifies the phone number only.
    pid, cid = pool(["email", "phone_number"])
    out = app.sign_up(ClientId=cid, Username="pat", Password=PASSWORD, UserAttributes=[email, phone])
    assert out["CodeDeliveryDetails"] == {"Destination": "+*******0100", "DeliveryMedium": "SMS",
                                          "AttributeName": "phone_number"}
    [message] = messages("pat")
    assert (message["delivery_medium"], message["destination"]) == ("SMS", "+15555550100")
    app.confirm_sign_up(ClientId=cid, Username="pat", ConfirmationCode=message["code"])
    attrs = {a["Name"]: a["Value"] for a in idp.admin_get_user(UserPoolId=pid, Username="pat")["UserAttributes"]}
    # The code proved the phone, not the email address.
    assert attrs["phone_number_verified"] == "true" and attrs.get("email_verified") != "true"
    # What a code proves is decided when it is sent: settings changed before it is used do
    # not make it prove another attribute.
    pid, cid = pool(["email"])
    app.sign_up(ClientId=cid, Username="ray", Password=PASSWORD, UserAttributes=[email])
    [message] = messages("ray")
    idp.update_user_pool(UserPoolId=pid, AutoVerifiedAttributes=["phone_number"])
    idp.admin_update_user_attributes(UserPoolId=pid, Username="ray", UserAttributes=[phone])
    app.confirm_sign_up(ClientId=cid, Username="ray", ConfirmationCode=message["code"])
    attrs = {a["Name"]: a["Value"] for a in idp.admin_get_user(UserPoolId=pid, Username="ray")["UserAttributes"]}
    assert attrs["email_verified"] == "true" and attrs.get("phone_number_verified") != "true"


def test_email_as_username_gives_the_user_its_sub_as_username(server):
    idp, app = server.client("cognito-idp"), public_client(server)
    pid = idp.create_user_pool(PoolName="p", UsernameAttributes=["email"])["UserPool"]["Id"]
    cid = idp.create_user_pool_client(UserPoolId=pid, ClientName="c",
                                      ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"]["ClientId"]
    sub = app.sign_up(ClientId=cid, Username="uma@example.com", Password=PASSWORD)["UserSub"]
    user = idp.admin_get_user(UserPoolId=pid, Username="uma@example.com")
    assert user["Username"] == sub
    assert {a["Name"]: a["Value"] for a in user["UserAttributes"]}["email"] == "uma@example.com"
    assert idp.admin_get_user(UserPoolId=pid, Username=sub)["Username"] == sub


def test_legacy_explicit_auth_flows_map_to_the_allow_set(server):
    idp, app = server.client("cognito-idp"), public_client(server)
    pid = idp.create_user_pool(PoolName="p")["UserPool"]["Id"]
    idp.admin_create_user(UserPoolId=pid, Username="leo", TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pid, Username="leo", Password=PASSWORD, Permanent=True)
    creds = {"USERNAME": "leo", "PASSWORD": PASSWORD}

    def client(flows):
        return idp.create_user_pool_client(UserPoolId=pid, ClientName="c", ExplicitAuthFlows=flows)["UserPoolClient"]

    admin = client(["ADMIN_NO_SRP_AUTH"])
    assert admin["ExplicitAuthFlows"] == ["ADMIN_NO_SRP_AUTH"]
    tokens = idp.admin_initiate_auth(UserPoolId=pid, ClientId=admin["ClientId"], AuthFlow="ADMIN_NO_SRP_AUTH",
                                     AuthParameters=creds)["AuthenticationResult"]
    # Refresh was always part of the legacy flows.
    assert "IdToken" in app.initiate_auth(ClientId=admin["ClientId"], AuthFlow="REFRESH_TOKEN_AUTH",
                                          AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]})["AuthenticationResult"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.initiate_auth(ClientId=admin["ClientId"], AuthFlow="USER_PASSWORD_AUTH", AuthParameters=creds)
    assert error_of(e) == ("InvalidParameterException", 400)
    user = client(["USER_PASSWORD_AUTH"])
    assert "AccessToken" in app.initiate_auth(ClientId=user["ClientId"], AuthFlow="USER_PASSWORD_AUTH",
                                              AuthParameters=creds)["AuthenticationResult"]
    custom = client(["CUSTOM_AUTH_FLOW_ONLY"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        idp.admin_initiate_auth(UserPoolId=pid, ClientId=custom["ClientId"], AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                AuthParameters=creds)
    assert error_of(e) == ("InvalidParameterException", 400)
    # Legacy and ALLOW_ values are not mixed.
    for call in [lambda: client(["ADMIN_NO_SRP_AUTH", "ALLOW_USER_SRP_AUTH"]),
                 lambda: idp.update_user_pool_client(UserPoolId=pid, ClientId=user["ClientId"],
                                                     ExplicitAuthFlows=["USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_of(e) == ("InvalidParameterException", 400)


def test_delete_user_attributes_by_the_user_and_the_admin(server):
    idp, app = server.client("cognito-idp"), public_client(server)
    pid = idp.create_user_pool(PoolName="p", Schema=[
        {"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True},
        {"Name": "tier", "AttributeDataType": "String", "Mutable": True}])["UserPool"]["Id"]
    cid = idp.create_user_pool_client(UserPoolId=pid, ClientName="c",
                                      ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pid, Username="dee", TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS",
                          UserAttributes=[{"Name": "email", "Value": "dee@example.com"},
                                          {"Name": "email_verified", "Value": "true"},
                                          {"Name": "phone_number", "Value": "+15555550101"},
                                          {"Name": "phone_number_verified", "Value": "true"},
                                          {"Name": "nickname", "Value": "d"},
                                          {"Name": "custom:tier", "Value": "gold"}])
    idp.admin_set_user_password(UserPoolId=pid, Username="dee", Password=PASSWORD, Permanent=True)
    access = app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={
        "USERNAME": "dee", "PASSWORD": PASSWORD})["AuthenticationResult"]["AccessToken"]
    attrs = lambda: {a["Name"]: a["Value"] for a in idp.admin_get_user(UserPoolId=pid, Username="dee")["UserAttributes"]}

    app.delete_user_attributes(AccessToken=access, UserAttributeNames=["nickname", "phone_number"])
    now = attrs()
    assert "nickname" not in now and "phone_number" not in now and "phone_number_verified" not in now
    # A required attribute stays; a custom one is not the client's to delete (its default
    # WriteAttributes); what no schema has is refused.
    for names, code in [(["email"], "InvalidParameterException"), (["custom:tier"], "NotAuthorizedException")]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            app.delete_user_attributes(AccessToken=access, UserAttributeNames=names)
        assert error_of(e)[0] == code, names
    assert attrs()["email"] == "dee@example.com" and attrs()["custom:tier"] == "gold"
    # The admin may delete the custom attribute, not the required one.
    idp.admin_delete_user_attributes(UserPoolId=pid, Username="dee", UserAttributeNames=["custom:tier"])
    assert "custom:tier" not in attrs()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        idp.admin_delete_user_attributes(UserPoolId=pid, Username="dee", UserAttributeNames=["email"])
    assert error_of(e) == ("InvalidParameterException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        idp.admin_delete_user_attributes(UserPoolId=pid, Username="dee", UserAttributeNames=["sub"])
    assert error_of(e)[1] == 400


def test_user_pool_tags_by_arn_authorized_on_that_pool(server):
    import json as _json

    idp = server.client("cognito-idp")
    mine = idp.create_user_pool(PoolName="mine", UserPoolTags={"team": "a"})["UserPool"]
    theirs = idp.create_user_pool(PoolName="theirs")["UserPool"]
    idp.tag_resource(ResourceArn=mine["Arn"], Tags={"env": "dev", "team": "b"})
    assert idp.list_tags_for_resource(ResourceArn=mine["Arn"])["Tags"] == {"team": "b", "env": "dev"}
    idp.untag_resource(ResourceArn=mine["Arn"], TagKeys=["team"])
    assert idp.list_tags_for_resource(ResourceArn=mine["Arn"])["Tags"] == {"env": "dev"}
    assert idp.describe_user_pool(UserPoolId=mine["Id"])["UserPool"]["UserPoolTags"] == {"env": "dev"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        idp.list_tags_for_resource(ResourceArn=altered(mine["Arn"]))
    assert error_of(e) == ("ResourceNotFoundException", 400)
    # A user allowed to tag one pool, by its ARN, tags that one only.
    iam = server.client("iam")
    iam.create_user(UserName="tagger")
    iam.put_user_policy(UserName="tagger", PolicyName="p", PolicyDocument=_json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "cognito-idp:TagResource", "Resource": mine["Arn"]}]}))
    key = iam.create_access_key(UserName="tagger")["AccessKey"]
    tagger = server.client("cognito-idp", key["AccessKeyId"], key["SecretAccessKey"])
    tagger.tag_resource(ResourceArn=mine["Arn"], Tags={"by": "tagger"})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        tagger.tag_resource(ResourceArn=theirs["Arn"], Tags={"by": "tagger"})
    assert error_of(e)[0] == "AccessDeniedException"
    assert "by" not in idp.list_tags_for_resource(ResourceArn=theirs["Arn"])["Tags"]


def test_passwords_and_names_as_the_service_checks_them(server):
    """Spaces inside a password are allowed, as Cognito allows them (its model's `[\\S]+`
    says otherwise); leading or trailing whitespace is not. User names are matched whole
    against the model's pattern: a space is refused."""
    idp, pool, client = pool_and_client(server, Policies={"PasswordPolicy": {
        "MinimumLength": 8, "RequireUppercase": False, "RequireLowercase": True,
        "RequireNumbers": True, "RequireSymbols": False}})
    app = public_client(server)
    cid = client["ClientId"]
    app.sign_up(ClientId=cid, Username="carol", Password="correct horse 1")
    idp.admin_confirm_sign_up(UserPoolId=pool["Id"], Username="carol")
    tokens = app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                               AuthParameters={"USERNAME": "carol", "PASSWORD": "correct horse 1"})
    assert "AccessToken" in tokens["AuthenticationResult"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                          AuthParameters={"USERNAME": "carol", "PASSWORD": "correcthorse 1"})
    assert error_of(e) == ("NotAuthorizedException", 400)
    for bad in [" correct horse 1", "correct horse 1 "]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            app.sign_up(ClientId=cid, Username="dave", Password=bad)
        assert error_of(e) == ("InvalidParameterException", 400)
        assert "password" in e.value.response["Error"]["Message"]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            idp.admin_set_user_password(UserPoolId=pool["Id"], Username="carol", Password=bad, Permanent=True)
        assert error_of(e) == ("InvalidParameterException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.sign_up(ClientId=cid, Username="dave smith", Password="correct horse 1")
    assert error_of(e) == ("InvalidParameterException", 400)
    assert "username" in e.value.response["Error"]["Message"]


def test_client_secret_and_prevent_user_existence_errors(server):
    idp, pool, client = pool_and_client(server, secret=True)
    assert len(client["ClientSecret"]) >= 40
    idp.admin_create_user(UserPoolId=pool["Id"], Username="carol", TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool["Id"], Username="carol", Password=PASSWORD, Permanent=True)
    app = public_client(server)

    def secret_hash(username):
        digest = hmac.new(client["ClientSecret"].encode(), (username + client["ClientId"]).encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    params = {"USERNAME": "carol", "PASSWORD": PASSWORD}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.initiate_auth(ClientId=client["ClientId"], AuthFlow="USER_PASSWORD_AUTH", AuthParameters=params)
    assert error_of(e) == ("NotAuthorizedException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.initiate_auth(ClientId=client["ClientId"], AuthFlow="USER_PASSWORD_AUTH",
                          AuthParameters={**params, "SECRET_HASH": secret_hash("mallory")})
    assert error_of(e) == ("NotAuthorizedException", 400)
    out = app.initiate_auth(ClientId=client["ClientId"], AuthFlow="USER_PASSWORD_AUTH",
                            AuthParameters={**params, "SECRET_HASH": secret_hash("carol")})
    assert "AccessToken" in out["AuthenticationResult"]
    # Admin sign-in (signed, IAM-authorized) with the same secret hash.
    admin = idp.admin_initiate_auth(UserPoolId=pool["Id"], ClientId=client["ClientId"], AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                    AuthParameters={**params, "SECRET_HASH": secret_hash("carol")})
    assert "IdToken" in admin["AuthenticationResult"]

    # With PreventUserExistenceErrors, an unknown user looks like a wrong password.
    quiet = idp.create_user_pool_client(UserPoolId=pool["Id"], ClientName="quiet", PreventUserExistenceErrors="ENABLED",
                                        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"]
    for username in ["carol", "nobody"]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            app.initiate_auth(ClientId=quiet["ClientId"], AuthFlow="USER_PASSWORD_AUTH",
                              AuthParameters={"USERNAME": username, "PASSWORD": "Wrong-Horse-9"})
        assert error_of(e) == ("NotAuthorizedException", 400)
        assert e.value.response["Error"]["Message"] == "Incorrect username or password."


def test_forged_and_foreign_tokens_are_refused(server):
    idp, pool, client = pool_and_client(server)
    idp.admin_create_user(UserPoolId=pool["Id"], Username="dave", TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool["Id"], Username="dave", Password=PASSWORD, Permanent=True)
    app = public_client(server)
    tokens = app.initiate_auth(ClientId=client["ClientId"], AuthFlow="USER_PASSWORD_AUTH",
                               AuthParameters={"USERNAME": "dave", "PASSWORD": PASSWORD})["AuthenticationResult"]
    header, payload, signature = tokens["AccessToken"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] = claims["exp"] + 86400
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    # A key of our own, with the pool's kid.
    from cryptography.hazmat.primitives.asymmetric import rsa
    own = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = jwt.get_unverified_header(tokens["AccessToken"])["kid"]
    resigned = jwt.encode(claims, own, algorithm="RS256", headers={"kid": kid})
    none_alg = jwt.encode(claims, None, algorithm="none")
    for token in [f"{header}.{forged_payload}.{signature}", resigned, none_alg, tokens["IdToken"], "garbage"]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            app.get_user(AccessToken=token)
        assert error_of(e) == ("NotAuthorizedException", 400), token
    # Another pool's token is not this pool's: the issuer names the other pool.
    _, other_pool, _ = pool_and_client(server)
    with pytest.raises(jwt.exceptions.PyJWTError):
        verify(server, other_pool["Id"], tokens["AccessToken"])
    # Unknown operations and unsigned administrative calls are refused as Cognito does.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.admin_get_user(UserPoolId=pool["Id"], Username="dave")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)
    assert requests.get(f"{server.url}/us-east-1_nope123/.well-known/jwks.json").status_code == 404


def test_user_srp_auth_with_pycognito(server):
    from pycognito.aws_srp import AWSSRP

    idp, pool, client = pool_and_client(server)
    idp.admin_create_user(UserPoolId=pool["Id"], Username="erin", TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS",
                          UserAttributes=[{"Name": "email", "Value": "erin@example.com"}])
    idp.admin_set_user_password(UserPoolId=pool["Id"], Username="erin", Password=PASSWORD, Permanent=True)
    app = public_client(server)
    tokens = AWSSRP(username="erin", password=PASSWORD, pool_id=pool["Id"], client_id=client["ClientId"],
                    client=app).authenticate_user()["AuthenticationResult"]
    claims = verify(server, pool["Id"], tokens["IdToken"], audience=client["ClientId"])
    assert claims["cognito:username"] == "erin"
    assert app.get_user(AccessToken=tokens["AccessToken"])["Username"] == "erin"
    # The wrong password fails the claim.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        AWSSRP(username="erin", password="Wrong-Horse-9", pool_id=pool["Id"], client_id=client["ClientId"],
               client=app).authenticate_user()
    assert error_of(e) == ("NotAuthorizedException", 400)
    # A new user's temporary password leads to NEW_PASSWORD_REQUIRED through SRP too.
    idp.admin_create_user(UserPoolId=pool["Id"], Username="fred", TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS")
    srp = AWSSRP(username="fred", password="Temp-Pass-1", pool_id=pool["Id"], client_id=client["ClientId"], client=app)
    done = srp.set_new_password_challenge(PASSWORD)
    assert "AccessToken" in done["AuthenticationResult"]
    # With a client secret, pycognito sends SECRET_HASH on both legs.
    secret_client = idp.create_user_pool_client(
        UserPoolId=pool["Id"], ClientName="srp-secret", GenerateSecret=True,
        ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]
    out = AWSSRP(username="erin", password=PASSWORD, pool_id=pool["Id"], client_id=secret_client["ClientId"],
                 client_secret=secret_client["ClientSecret"], client=app).authenticate_user()
    assert "IdToken" in out["AuthenticationResult"]
    # A tampered secret block is refused.
    challenge = app.initiate_auth(ClientId=client["ClientId"], AuthFlow="USER_SRP_AUTH",
                                  AuthParameters={"USERNAME": "erin", "SRP_A": "1" * 700})
    assert challenge["ChallengeName"] == "PASSWORD_VERIFIER"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.respond_to_auth_challenge(ClientId=client["ClientId"], ChallengeName="PASSWORD_VERIFIER", ChallengeResponses={
            "USERNAME": "erin", "PASSWORD_CLAIM_SECRET_BLOCK": challenge["ChallengeParameters"]["SECRET_BLOCK"][:-4] + "AAAA",
            "PASSWORD_CLAIM_SIGNATURE": "AAAA", "TIMESTAMP": "Mon Nov 23 10:00:00 UTC 2026"})
    assert error_of(e) == ("NotAuthorizedException", 400)


def test_groups_appear_in_tokens_by_precedence(server):
    idp, pool, client = pool_and_client(server)
    pid = pool["Id"]
    role = f"arn:aws:iam::{server.account_id}:role/"
    idp.create_group(UserPoolId=pid, GroupName="readers", Precedence=10, RoleArn=role + "Read", Description="read")
    idp.create_group(UserPoolId=pid, GroupName="admins", Precedence=1, RoleArn=role + "Admin")
    idp.create_group(UserPoolId=pid, GroupName="plain")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        idp.create_group(UserPoolId=pid, GroupName="plain")
    assert error_of(e) == ("GroupExistsException", 400)
    assert idp.get_group(UserPoolId=pid, GroupName="readers")["Group"]["Description"] == "read"
    assert [g["GroupName"] for g in idp.list_groups(UserPoolId=pid)["Groups"]] == ["admins", "plain", "readers"]
    idp.admin_create_user(UserPoolId=pid, Username="gina", TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pid, Username="gina", Password=PASSWORD, Permanent=True)
    for group in ["readers", "admins", "plain"]:
        idp.admin_add_user_to_group(UserPoolId=pid, Username="gina", GroupName=group)
    assert [u["Username"] for u in idp.list_users_in_group(UserPoolId=pid, GroupName="admins")["Users"]] == ["gina"]
    assert len(idp.admin_list_groups_for_user(UserPoolId=pid, Username="gina")["Groups"]) == 3

    def id_claims():
        tokens = public_client(server).initiate_auth(
            ClientId=client["ClientId"], AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "gina", "PASSWORD": PASSWORD})["AuthenticationResult"]
        return verify(server, pid, tokens["IdToken"], audience=client["ClientId"]), verify(server, pid, tokens["AccessToken"])

    claims, access = id_claims()
    assert claims["cognito:groups"] == ["admins", "readers", "plain"]
    assert access["cognito:groups"] == ["admins", "readers", "plain"]
    assert claims["cognito:roles"] == [role + "Admin", role + "Read"]
    assert claims["cognito:preferred_role"] == role + "Admin"
    idp.update_group(UserPoolId=pid, GroupName="readers", Precedence=0)
    assert id_claims()[0]["cognito:preferred_role"] == role + "Read"
    idp.admin_remove_user_from_group(UserPoolId=pid, Username="gina", GroupName="readers")
    idp.delete_group(UserPoolId=pid, GroupName="admins")
    claims, _ = id_claims()
    assert claims["cognito:groups"] == ["plain"]
    assert "cognito:roles" not in claims and "cognito:preferred_role" not in claims


def test_forgot_change_attributes_and_list_users(server):
    idp, pool, client = pool_and_client(server)
    pid, cid = pool["Id"], client["ClientId"]
    app = public_client(server)
    for name in ["hank", "hannah", "ivan"]:
        idp.admin_create_user(UserPoolId=pid, Username=name, TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS",
                              UserAttributes=[{"Name": "email", "Value": f"{name}@example.com"},
                                              {"Name": "email_verified", "Value": "true"}])
        idp.admin_set_user_password(UserPoolId=pid, Username=name, Password=PASSWORD, Permanent=True)
    listed = idp.list_users(UserPoolId=pid, Filter='username ^= "han"')["Users"]
    assert sorted(u["Username"] for u in listed) == ["hank", "hannah"]
    assert [u["Username"] for u in idp.list_users(UserPoolId=pid, Filter='email = "ivan@example.com"')["Users"]] == ["ivan"]
    page = idp.list_users(UserPoolId=pid, Limit=2)
    rest = idp.list_users(UserPoolId=pid, Limit=2, PaginationToken=page["PaginationToken"])
    assert [u["Username"] for u in page["Users"] + rest["Users"]] == ["hank", "hannah", "ivan"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        idp.list_users(UserPoolId=pid, Filter="shoe_size = \"9\"")
    assert error_of(e) == ("InvalidParameterException", 400)

    # Forgot password: a code to the outbox, a new password.
    app.forgot_password(ClientId=cid, Username="hank")
    code = outbox(server, "hank")["code"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.confirm_forgot_password(ClientId=cid, Username="hank", ConfirmationCode=code, Password="weak")
    assert error_of(e) == ("InvalidPasswordException", 400)
    app.confirm_forgot_password(ClientId=cid, Username="hank", ConfirmationCode=code, Password="New-Horse-77")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.confirm_forgot_password(ClientId=cid, Username="hank", ConfirmationCode=code, Password="New-Horse-78")
    assert error_of(e) == ("CodeMismatchException", 400)
    tokens = app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                               AuthParameters={"USERNAME": "hank", "PASSWORD": "New-Horse-77"})["AuthenticationResult"]

    # Change password with the access token.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.change_password(AccessToken=tokens["AccessToken"], PreviousPassword="nope", ProposedPassword="Other-Horse-1")
    assert error_of(e) == ("NotAuthorizedException", 400)
    app.change_password(AccessToken=tokens["AccessToken"], PreviousPassword="New-Horse-77", ProposedPassword="Other-Horse-1")
    app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "hank", "PASSWORD": "Other-Horse-1"})

    # A new email is unverified until its code comes back.
    out = app.update_user_attributes(AccessToken=tokens["AccessToken"],
                                     UserAttributes=[{"Name": "email", "Value": "hank@new.example.com"}, {"Name": "name", "Value": "Hank"}])
    assert out["CodeDeliveryDetailsList"][0]["AttributeName"] == "email"
    attrs = {a["Name"]: a["Value"] for a in app.get_user(AccessToken=tokens["AccessToken"])["UserAttributes"]}
    assert (attrs["email"], attrs["email_verified"], attrs["name"]) == ("hank@new.example.com", "false", "Hank")
    app.verify_user_attribute(AccessToken=tokens["AccessToken"], AttributeName="email", Code=outbox(server, "hank")["code"])
    attrs = {a["Name"]: a["Value"] for a in app.get_user(AccessToken=tokens["AccessToken"])["UserAttributes"]}
    assert attrs["email_verified"] == "true"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.update_user_attributes(AccessToken=tokens["AccessToken"], UserAttributes=[{"Name": "sub", "Value": "x"}])
    assert error_of(e) == ("InvalidParameterException", 400)

    # Admin reset: sign-in is refused until the code sets a new password.
    idp.admin_reset_user_password(UserPoolId=pid, Username="ivan")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "ivan", "PASSWORD": PASSWORD})
    assert error_of(e) == ("PasswordResetRequiredException", 400)
    app.confirm_forgot_password(ClientId=cid, Username="ivan", ConfirmationCode=outbox(server, "ivan")["code"], Password="Ivan-Horse-2")
    assert idp.admin_get_user(UserPoolId=pid, Username="ivan")["UserStatus"] == "CONFIRMED"
    idp.add_custom_attributes(UserPoolId=pid, CustomAttributes=[{"Name": "team", "AttributeDataType": "String"}])
    idp.admin_update_user_attributes(UserPoolId=pid, Username="ivan", UserAttributes=[{"Name": "custom:team", "Value": "blue"}])
    attrs = {a["Name"]: a["Value"] for a in idp.admin_get_user(UserPoolId=pid, Username="ivan")["UserAttributes"]}
    assert attrs["custom:team"] == "blue"

    # Resending a sign-up code works only for unconfirmed users; DeleteUser removes oneself.
    app.sign_up(ClientId=cid, Username="jo", Password=PASSWORD, UserAttributes=[{"Name": "email", "Value": "jo@example.com"}])
    first = outbox(server, "jo")["code"]
    app.resend_confirmation_code(ClientId=cid, Username="jo")
    second = outbox(server, "jo")["code"]
    if first != second:  # equal one time in a million; then there is nothing to tell apart
        with pytest.raises(botocore.exceptions.ClientError) as e:
            app.confirm_sign_up(ClientId=cid, Username="jo", ConfirmationCode=first)
        assert error_of(e) == ("CodeMismatchException", 400)
    app.confirm_sign_up(ClientId=cid, Username="jo", ConfirmationCode=second)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.resend_confirmation_code(ClientId=cid, Username="jo")
    assert error_of(e) == ("InvalidParameterException", 400)
    jo = app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "jo", "PASSWORD": PASSWORD})
    app.delete_user(AccessToken=jo["AuthenticationResult"]["AccessToken"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        idp.admin_get_user(UserPoolId=pid, Username="jo")
    assert error_of(e) == ("UserNotFoundException", 400)


def totp(secret_b32, at=None):
    """RFC 6238 code, computed here as an authenticator app would."""
    import struct
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    step = int((at or time.time()) // 30)
    mac = hmac.new(key, struct.pack(">q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000)


def test_software_token_mfa(server):
    idp, pool, client = pool_and_client(server, MfaConfiguration="OPTIONAL")
    pid, cid = pool["Id"], client["ClientId"]
    app = public_client(server)
    idp.admin_create_user(UserPoolId=pid, Username="kim", TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pid, Username="kim", Password=PASSWORD, Permanent=True)
    sign_in = lambda: app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                                        AuthParameters={"USERNAME": "kim", "PASSWORD": PASSWORD})
    access = sign_in()["AuthenticationResult"]["AccessToken"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.set_user_mfa_preference(AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True})
    assert error_of(e) == ("InvalidParameterException", 400)
    secret = app.associate_software_token(AccessToken=access)["SecretCode"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.verify_software_token(AccessToken=access, UserCode="000000" if totp(secret) != "000000" else "111111")
    assert error_of(e) == ("EnableSoftwareTokenMFAException", 400)
    assert app.verify_software_token(AccessToken=access, UserCode=totp(secret))["Status"] == "SUCCESS"
    app.set_user_mfa_preference(AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True})
    me = app.get_user(AccessToken=access)
    assert me["UserMFASettingList"] == ["SOFTWARE_TOKEN_MFA"] and me["PreferredMfaSetting"] == "SOFTWARE_TOKEN_MFA"

    challenge = sign_in()
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.respond_to_auth_challenge(ClientId=cid, ChallengeName="SOFTWARE_TOKEN_MFA", Session=challenge["Session"],
                                      ChallengeResponses={"USERNAME": "kim", "SOFTWARE_TOKEN_MFA_CODE": "12345x"})
    assert error_of(e) == ("CodeMismatchException", 400)
    # The code of the next 30-second step (allowed for clock drift, and not yet used).
    code = totp(secret, time.time() + 30)
    tokens = app.respond_to_auth_challenge(ClientId=cid, ChallengeName="SOFTWARE_TOKEN_MFA", Session=challenge["Session"],
                                           ChallengeResponses={"USERNAME": "kim", "SOFTWARE_TOKEN_MFA_CODE": code})
    assert "IdToken" in tokens["AuthenticationResult"]
    # A code works once.
    again = sign_in()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        app.respond_to_auth_challenge(ClientId=cid, ChallengeName="SOFTWARE_TOKEN_MFA", Session=again["Session"],
                                      ChallengeResponses={"USERNAME": "kim", "SOFTWARE_TOKEN_MFA_CODE": code})
    assert error_of(e) == ("CodeMismatchException", 400)

    # A pool with MFA required makes a new user set it up during sign-in.
    idp2, strict, strict_client = pool_and_client(server, MfaConfiguration="ON")
    idp2.admin_create_user(UserPoolId=strict["Id"], Username="lee", TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS")
    idp2.admin_set_user_password(UserPoolId=strict["Id"], Username="lee", Password=PASSWORD, Permanent=True)
    setup = app.initiate_auth(ClientId=strict_client["ClientId"], AuthFlow="USER_PASSWORD_AUTH",
                              AuthParameters={"USERNAME": "lee", "PASSWORD": PASSWORD})
    assert setup["ChallengeName"] == "MFA_SETUP"
    associated = app.associate_software_token(Session=setup["Session"])
    verified = app.verify_software_token(Session=associated["Session"], UserCode=totp(associated["SecretCode"]))
    done = app.respond_to_auth_challenge(ClientId=strict_client["ClientId"], ChallengeName="MFA_SETUP",
                                         Session=verified["Session"], ChallengeResponses={"USERNAME": "lee"})
    assert "AccessToken" in done["AuthenticationResult"]


def test_pool_mfa_configuration_rules(server):
    idp, pool, client = pool_and_client(server)
    pid, cid = pool["Id"], client["ClientId"]
    app = public_client(server)
    assert idp.get_user_pool_mfa_config(UserPoolId=pid)["MfaConfiguration"] == "OFF"

    def refused(call, code="InvalidParameterException"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_of(e) == (code, 400)
        return e.value.response["Error"]["Message"]

    # ON or OPTIONAL need a factor; OFF takes none; factors this server cannot deliver are refused.
    assert "can't disable all MFAs" in refused(lambda: idp.set_user_pool_mfa_config(
        UserPoolId=pid, MfaConfiguration="ON", SoftwareTokenMfaConfiguration={"Enabled": False}))
    assert "can't turn off MFA and configure an MFA together" in refused(lambda: idp.set_user_pool_mfa_config(
        UserPoolId=pid, MfaConfiguration="OFF", SoftwareTokenMfaConfiguration={"Enabled": True}))
    refused(lambda: idp.set_user_pool_mfa_config(UserPoolId=pid, MfaConfiguration="OPTIONAL",
                                                 SmsMfaConfiguration={"SmsAuthenticationMessage": "{####}"}))
    refused(lambda: idp.get_user_pool_mfa_config(UserPoolId=altered(pid)), "ResourceNotFoundException")
    assert idp.get_user_pool_mfa_config(UserPoolId=pid)["MfaConfiguration"] == "OFF"

    # With MFA OFF no user sets up a token, so none can be enabled and then skipped silently.
    idp.admin_create_user(UserPoolId=pid, Username="ada", TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pid, Username="ada", Password=PASSWORD, Permanent=True)
    sign_in = lambda: app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                                        AuthParameters={"USERNAME": "ada", "PASSWORD": PASSWORD})
    access = sign_in()["AuthenticationResult"]["AccessToken"]
    refused(lambda: app.associate_software_token(AccessToken=access), "SoftwareTokenMFANotFoundException")
    refused(lambda: app.set_user_mfa_preference(AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True}))
    refused(lambda: idp.admin_set_user_mfa_preference(UserPoolId=pid, Username="ada",
                                                      SoftwareTokenMfaSettings={"Enabled": True}))

    # OPTIONAL with TOTP: the user chooses.
    out = idp.set_user_pool_mfa_config(UserPoolId=pid, MfaConfiguration="OPTIONAL",
                                       SoftwareTokenMfaConfiguration={"Enabled": True})
    assert out["MfaConfiguration"] == "OPTIONAL" and out["SoftwareTokenMfaConfiguration"] == {"Enabled": True}
    got = idp.get_user_pool_mfa_config(UserPoolId=pid)
    assert got["MfaConfiguration"] == "OPTIONAL" and got["SoftwareTokenMfaConfiguration"] == {"Enabled": True}
    assert idp.describe_user_pool(UserPoolId=pid)["UserPool"]["MfaConfiguration"] == "OPTIONAL"
    secret = app.associate_software_token(AccessToken=access)["SecretCode"]
    assert app.verify_software_token(AccessToken=access, UserCode=totp(secret))["Status"] == "SUCCESS"
    app.set_user_mfa_preference(AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True})
    assert sign_in()["ChallengeName"] == "SOFTWARE_TOKEN_MFA"

    # ON: the user's TOTP cannot be turned off.
    idp.set_user_pool_mfa_config(UserPoolId=pid, MfaConfiguration="ON")
    assert idp.get_user_pool_mfa_config(UserPoolId=pid)["SoftwareTokenMfaConfiguration"] == {"Enabled": True}
    refused(lambda: app.set_user_mfa_preference(AccessToken=access, SoftwareTokenMfaSettings={"Enabled": False}))
    assert sign_in()["ChallengeName"] == "SOFTWARE_TOKEN_MFA"

    # Back to OFF: its factors go with it, and sign-in asks for no code.
    out = idp.set_user_pool_mfa_config(UserPoolId=pid, MfaConfiguration="OFF")
    assert out["SoftwareTokenMfaConfiguration"] == {"Enabled": False}
    assert "AccessToken" in sign_in()["AuthenticationResult"]
    assert "can't disable all MFAs" in refused(lambda: idp.update_user_pool(UserPoolId=pid, MfaConfiguration="ON"))


def test_failed_sign_ins_lock_out_and_settings_update(server):
    idp, pool, client = pool_and_client(server)
    pid, cid = pool["Id"], client["ClientId"]
    app = public_client(server)
    idp.admin_create_user(UserPoolId=pid, Username="mo", TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pid, Username="mo", Password=PASSWORD, Permanent=True)

    def sign_in(password):
        return app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                                 AuthParameters={"USERNAME": "mo", "PASSWORD": password})

    for _ in range(5):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sign_in("Wrong-Horse-9")
        assert e.value.response["Error"]["Message"] == "Incorrect username or password."
    # Locked: even the right password is refused for a moment.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sign_in(PASSWORD)
    assert error_of(e) == ("NotAuthorizedException", 400)
    assert e.value.response["Error"]["Message"] == "Password attempts exceeded"
    time.sleep(1.5)
    assert "AccessToken" in sign_in(PASSWORD)["AuthenticationResult"]

    # Settings changes take effect: a stricter password policy, a client without the flow.
    idp.update_user_pool(UserPoolId=pid, Policies={"PasswordPolicy": {"MinimumLength": 20}})
    assert idp.describe_user_pool(UserPoolId=pid)["UserPool"]["Policies"]["PasswordPolicy"]["MinimumLength"] == 20
    with pytest.raises(botocore.exceptions.ClientError) as e:
        idp.admin_set_user_password(UserPoolId=pid, Username="mo", Password=PASSWORD, Permanent=True)
    assert error_of(e) == ("InvalidPasswordException", 400)
    updated = idp.update_user_pool_client(UserPoolId=pid, ClientId=cid, ClientName="renamed",
                                          ExplicitAuthFlows=["ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]
    assert updated["ClientName"] == "renamed"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sign_in(PASSWORD)
    assert error_of(e) == ("InvalidParameterException", 400)


def test_signing_key_rotation_keeps_old_tokens_verifiable(server):
    from conftest import BINARY

    idp, pool, client = pool_and_client(server)
    pid, cid = pool["Id"], client["ClientId"]
    app = public_client(server)
    idp.admin_create_user(UserPoolId=pid, Username="nia", TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pid, Username="nia", Password=PASSWORD, Permanent=True)
    sign_in = lambda: app.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
                                        AuthParameters={"USERNAME": "nia", "PASSWORD": PASSWORD})["AuthenticationResult"]
    before = sign_in()
    out = subprocess.run([BINARY, "admin", "rotate-user-pool-key", "--data-dir", str(server.data_dir), "--pool-id", pid],
                         capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith("COGNATE_")})
    new_kid = out.stdout.strip().rsplit(" ", 1)[1]
    after = sign_in()
    assert jwt.get_unverified_header(after["IdToken"])["kid"] == new_kid
    assert jwt.get_unverified_header(before["IdToken"])["kid"] != new_kid
    jwks = requests.get(f"{server.url}/{pid}/.well-known/jwks.json").json()
    assert len(jwks["keys"]) == 2
    # Both the old and the new tokens verify against the published keys, and both work.
    for tokens in [before, after]:
        verify(server, pid, tokens["IdToken"], audience=cid)
        assert app.get_user(AccessToken=tokens["AccessToken"])["Username"] == "nia"
    bad = subprocess.run([BINARY, "admin", "rotate-user-pool-key", "--data-dir", str(server.data_dir), "--pool-id", "us-east-1_nope"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "ResourceNotFoundException" in bad.stderr


def test_webhook_delivery(tmp_path):
    import http.server
    import threading

    from conftest import Server

    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Content-Type"], json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    server = Server(tmp_path / "data", extra_args=["--message-delivery", "webhook", "--message-webhook-url",
                                                   f"http://127.0.0.1:{hook.server_address[1]}/messages"])
    try:
        idp, pool, client = pool_and_client(server)
        app = public_client(server)
        app.sign_up(ClientId=client["ClientId"], Username="olga", Password=PASSWORD,
                    UserAttributes=[{"Name": "email", "Value": "olga@example.com"}])
        content_type, message = received[-1]
        assert content_type == "application/json"
        assert (message["username"], message["purpose"], message["destination"]) == ("olga", "SignUp", "olga@example.com")
        app.confirm_sign_up(ClientId=client["ClientId"], Username="olga", ConfirmationCode=message["code"])
        assert idp.admin_get_user(UserPoolId=pool["Id"], Username="olga")["UserStatus"] == "CONFIRMED"
        assert not (server.data_dir / "outbox").exists()
    finally:
        server.stop()
        hook.shutdown()


def test_smtp_delivery(tmp_path):
    import re
    import socketserver
    import threading

    from conftest import Server

    messages = []

    class Sink(socketserver.StreamRequestHandler):
        """Just enough of an SMTP server to receive mail."""

        def handle(self):
            def reply(line):
                self.wfile.write(line.encode() + b"\r\n")

            reply("220 sink ESMTP")
            data, lines = False, []
            while line := self.rfile.readline():
                if data:
                    if line == b".\r\n":
                        messages.append(b"".join(lines).decode())
                        data, lines = False, []
                        reply("250 OK")
                    else:
                        lines.append(line)
                    continue
                command = line.decode().strip().upper()
                if command.startswith("EHLO"):
                    reply("250-sink")
                    reply("250 8BITMIME")
                elif command.startswith(("HELO", "MAIL", "RCPT", "RSET", "NOOP")):
                    reply("250 OK")
                elif command == "DATA":
                    data = True
                    reply("354 go ahead")
                elif command == "QUIT":
                    reply("221 bye")
                    return
                else:
                    reply("502 not implemented")

    sink = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    server = Server(tmp_path / "data", extra_args=[
        "--message-delivery", "smtp", "--smtp-url", f"smtp://127.0.0.1:{sink.server_address[1]}",
        "--smtp-from", "Cognate <noreply@example.com>"])
    try:
        idp, pool, client = pool_and_client(server)
        public_client(server).sign_up(ClientId=client["ClientId"], Username="pat", Password=PASSWORD,
                                      UserAttributes=[{"Name": "email", "Value": "pat@example.com"}])
        mail = messages[-1]
        assert "To: pat@example.com" in mail and "noreply@example.com" in mail
        assert "Subject: Your verification code" in mail
        code = re.search(r"Your verification code is (\d{6})", mail).group(1)
        public_client(server).confirm_sign_up(ClientId=client["ClientId"], Username="pat", ConfirmationCode=code)
        assert idp.admin_get_user(UserPoolId=pool["Id"], Username="pat")["UserStatus"] == "CONFIRMED"
    finally:
        server.stop()
        sink.shutdown()


def test_delivery_settings_are_checked_at_start(tmp_path):
    from conftest import BINARY

    env = {k: v for k, v in os.environ.items() if not k.startswith("COGNATE_")}
    for extra in [["--message-delivery", "smtp"], ["--message-delivery", "webhook"],
                  ["--message-delivery", "smtp", "--smtp-url", "smtp://127.0.0.1:1", "--smtp-from", "not an address"]]:
        out = subprocess.run([BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"), *extra],
                             capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode != 0, extra
        assert "message delivery needs" in out.stderr or "SMTP sender address" in out.stderr, out.stderr
