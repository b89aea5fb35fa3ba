"""The JavaScript clients (compat/js, pinned in its package-lock.json), run by node against the
real server: Amplify v6 signs in with SRP and keeps its session alive by refreshing."""

import json
import os
import pathlib
import subprocess

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
