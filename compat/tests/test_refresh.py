"""Refreshing a sign-in with boto3: GetTokensFromRefreshToken with and without refresh token
rotation, its grace period, the reuse of a rotated-out token (which ends the sign-in), and
refreshes racing each other; on both storage backends."""

import concurrent.futures

import botocore.exceptions
import pytest

from conftest import altered
from test_sts import error_of
from test_userpool import PASSWORD, public_client


def signed_in(server, rotation=None, secret=False, name="ren"):
    idp = server.client("cognito-idp")
    pid = idp.create_user_pool(PoolName="app")["UserPool"]["Id"]
    args = {"RefreshTokenRotation": rotation} if rotation else {}
    flows = ["ALLOW_USER_PASSWORD_AUTH"] + ([] if rotation else ["ALLOW_REFRESH_TOKEN_AUTH"])
    client = idp.create_user_pool_client(UserPoolId=pid, ClientName="web", GenerateSecret=secret,
                                         ExplicitAuthFlows=flows, **args)["UserPoolClient"]
    idp.admin_create_user(UserPoolId=pid, Username=name, TemporaryPassword="Temp-Pass-1", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pid, Username=name, Password=PASSWORD, Permanent=True)
    return idp, pid, client


def sign_in(app, client, name="ren"):
    params = {"USERNAME": name, "PASSWORD": PASSWORD}
    if "ClientSecret" in client:
        import base64, hashlib, hmac
        params["SECRET_HASH"] = base64.b64encode(hmac.new(
            client["ClientSecret"].encode(), (name + client["ClientId"]).encode(), hashlib.sha256).digest()).decode()
    return app.initiate_auth(ClientId=client["ClientId"], AuthFlow="USER_PASSWORD_AUTH",
                             AuthParameters=params)["AuthenticationResult"]


def refused(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return error_of(e), e.value.response["Error"]["Message"]


def test_refresh_without_rotation_gives_new_id_and_access_tokens(any_backend):
    idp, pid, client = signed_in(any_backend, secret=True)
    app, cid = public_client(any_backend), client["ClientId"]
    tokens = sign_in(app, client)
    refresh = lambda token, **kw: app.get_tokens_from_refresh_token(
        ClientId=cid, RefreshToken=token, **kw)["AuthenticationResult"]
    got = refresh(tokens["RefreshToken"], ClientSecret=client["ClientSecret"])
    assert got["TokenType"] == "Bearer" and got["ExpiresIn"] == 3600 and "RefreshToken" not in got
    assert app.get_user(AccessToken=got["AccessToken"])["Username"] == "ren"
    # The same token again: without rotation it lasts until it expires.
    assert "IdToken" in refresh(tokens["RefreshToken"], ClientSecret=client["ClientSecret"])

    assert refused(lambda: refresh(tokens["RefreshToken"])) == (
        ("NotAuthorizedException", 400), f"Client {cid} is configured with secret but ClientSecret was not received")
    assert refused(lambda: refresh(tokens["RefreshToken"], ClientSecret=altered(client["ClientSecret"])))[0] == (
        "NotAuthorizedException", 400)
    assert refused(lambda: refresh(tokens["RefreshToken"][:-2] + "xx", ClientSecret=client["ClientSecret"])) == (
        ("NotAuthorizedException", 400), "Invalid Refresh Token.")
    # Another client's token, and an unknown client.
    other = idp.create_user_pool_client(UserPoolId=pid, ClientName="other",
                                        ExplicitAuthFlows=["ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]
    assert refused(lambda: app.get_tokens_from_refresh_token(
        ClientId=other["ClientId"], RefreshToken=tokens["RefreshToken"]))[0] == ("NotAuthorizedException", 400)
    assert refused(lambda: app.get_tokens_from_refresh_token(
        ClientId="0" * 26, RefreshToken=tokens["RefreshToken"]))[0] == ("ResourceNotFoundException", 400)
    # A revoked token; then a disabled user (disabling revokes the user's tokens).
    app.revoke_token(ClientId=cid, Token=tokens["RefreshToken"], ClientSecret=client["ClientSecret"])
    assert refused(lambda: refresh(tokens["RefreshToken"], ClientSecret=client["ClientSecret"]))[0] == (
        "NotAuthorizedException", 400)
    later = sign_in(app, client)
    idp.admin_disable_user(UserPoolId=pid, Username="ren")
    assert refused(lambda: refresh(later["RefreshToken"], ClientSecret=client["ClientSecret"]))[0] == (
        "NotAuthorizedException", 400)


def test_rotation_replaces_the_token_and_a_reused_one_ends_the_sign_in(any_backend):
    idp, pid, client = signed_in(any_backend, rotation={"Feature": "ENABLED", "RetryGracePeriodSeconds": 0})
    app, cid = public_client(any_backend), client["ClientId"]
    described = idp.describe_user_pool_client(UserPoolId=pid, ClientId=cid)["UserPoolClient"]
    assert described["RefreshTokenRotation"] == {"Feature": "ENABLED", "RetryGracePeriodSeconds": 0}
    first = sign_in(app, client)
    refresh = lambda token: app.get_tokens_from_refresh_token(ClientId=cid, RefreshToken=token)["AuthenticationResult"]
    second = refresh(first["RefreshToken"])
    assert second["RefreshToken"] != first["RefreshToken"]
    third = refresh(second["RefreshToken"])
    assert app.get_user(AccessToken=third["AccessToken"])["Username"] == "ren"
    # REFRESH_TOKEN_AUTH is not the way to refresh on a rotating client.
    assert refused(lambda: app.initiate_auth(ClientId=cid, AuthFlow="REFRESH_TOKEN_AUTH",
                                             AuthParameters={"REFRESH_TOKEN": third["RefreshToken"]}))[0] == (
        "InvalidParameterException", 400)

    # A rotated-out token used again: refused, and the whole sign-in ends (whoever holds the
    # newest token may be the thief), with its access tokens.
    assert refused(lambda: refresh(second["RefreshToken"]))[0] == ("RefreshTokenReuseException", 400)
    assert refused(lambda: refresh(third["RefreshToken"])) == (
        ("NotAuthorizedException", 400), "Invalid Refresh Token.")
    assert refused(lambda: app.get_user(AccessToken=third["AccessToken"]))[0] == ("NotAuthorizedException", 400)
    # Another sign-in of the same user is untouched.
    again = sign_in(app, client)
    assert "RefreshToken" in refresh(again["RefreshToken"])


def test_rotation_grace_period_lets_a_retry_through(any_backend):
    idp, pid, client = signed_in(any_backend, rotation={"Feature": "ENABLED", "RetryGracePeriodSeconds": 60})
    app, cid = public_client(any_backend), client["ClientId"]
    refresh = lambda token: app.get_tokens_from_refresh_token(ClientId=cid, RefreshToken=token)["AuthenticationResult"]
    first = sign_in(app, client)
    lost = refresh(first["RefreshToken"])
    # The answer was lost; the retry with the old token gets the same new token again (and
    # whoever holds that token keeps it: a retry cannot take the sign-in over).
    retried = refresh(first["RefreshToken"])
    assert retried["RefreshToken"] == lost["RefreshToken"] != first["RefreshToken"]
    assert app.get_user(AccessToken=retried["AccessToken"])["Username"] == "ren"
    newest = refresh(lost["RefreshToken"])["RefreshToken"]
    # Two rotations on, the first token is no sign-in's any more.
    assert refused(lambda: refresh(first["RefreshToken"]))[0] == ("NotAuthorizedException", 400)
    # Turning rotation off keeps the sign-in: the newest token refreshes without rotating.
    idp.update_user_pool_client(UserPoolId=pid, ClientId=cid, ExplicitAuthFlows=["ALLOW_REFRESH_TOKEN_AUTH"],
                                RefreshTokenRotation={"Feature": "DISABLED"})
    plain = refresh(newest)
    assert "RefreshToken" not in plain and app.get_user(AccessToken=plain["AccessToken"])["Username"] == "ren"
    assert "IdToken" in app.initiate_auth(ClientId=cid, AuthFlow="REFRESH_TOKEN_AUTH",
                                          AuthParameters={"REFRESH_TOKEN": newest})["AuthenticationResult"]


@pytest.mark.parametrize("grace", [0, 60])
def test_racing_refreshes_of_one_token_cannot_fork_the_sign_in(any_backend, grace):
    idp, pid, client = signed_in(any_backend, rotation={"Feature": "ENABLED", "RetryGracePeriodSeconds": grace})
    cid = client["ClientId"]
    first = sign_in(public_client(any_backend), client)

    def attempt(_):
        app = public_client(any_backend)
        try:
            return app.get_tokens_from_refresh_token(ClientId=cid, RefreshToken=first["RefreshToken"])[
                "AuthenticationResult"]["RefreshToken"]
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    tokens = [o for o in outcomes if not o.endswith("Exception")]
    assert set(outcomes) - set(tokens) <= {"RefreshTokenReuseException", "NotAuthorizedException",
                                           "TooManyRequestsException"}, outcomes
    app = public_client(any_backend)

    def works(token):
        try:
            app.get_tokens_from_refresh_token(ClientId=cid, RefreshToken=token)
            return True
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] in ("NotAuthorizedException", "RefreshTokenReuseException")
            return False

    if grace == 0:
        # Two holders of one token: the sign-in is over for both, whatever the order.
        assert len(tokens) <= 1, outcomes
        assert not any(works(t) for t in tokens + [first["RefreshToken"]])
    else:
        # Retries within the grace period all get the one new token, which works.
        assert tokens and len(set(tokens)) == 1, outcomes
        assert works(tokens[0])
