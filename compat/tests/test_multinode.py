"""Two nodes on one PostgreSQL database: an IAM change made through one node is enforced by
the other on its next requests (cache invalidation over LISTEN/NOTIFY)."""

import json
import pathlib
import time

import botocore.exceptions
import pytest

from conftest import Server


def test_iam_changes_reach_every_node(postgres_url, tmp_path):
    key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpBQkNERUY="  # both nodes share the master key
    env = {"COGNATE_MASTER_KEY": key, "COGNATE_DATABASE_URL": postgres_url}
    a = Server(tmp_path / "a", env=env)
    try:
        b = Server(tmp_path / "b", env=env)
        try:
            assert a.account_id == b.account_id
            iam_a = a.client("iam")
            iam_a.create_user(UserName="roamer")
            access = iam_a.create_access_key(UserName="roamer")["AccessKey"]
            iam_a.create_group(GroupName="readers")
            iam_a.put_group_policy(GroupName="readers", PolicyName="read", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*"}]}))
            iam_a.add_user_to_group(GroupName="readers", UserName="roamer")

            roamer_on_b = b.client("iam", access["AccessKeyId"], access["SecretAccessKey"])
            roamer_on_b.list_users()  # node B now caches roamer's key and policies

            iam_a.remove_user_from_group(GroupName="readers", UserName="roamer")
            assert eventually_denied(roamer_on_b.list_users) == "AccessDenied"

            iam_a.update_access_key(UserName="roamer", AccessKeyId=access["AccessKeyId"], Status="Inactive")
            assert eventually_denied(roamer_on_b.list_users) == "InvalidClientTokenId"
        finally:
            b.stop()
    finally:
        a.stop()


def eventually_denied(call, attempts=100):
    """The error code once the other node has heard of the change (normally the first try)."""
    for _ in range(attempts):
        try:
            call()
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]
        time.sleep(0.05)
    return "still allowed"


def test_identity_pools_across_nodes(postgres_url, tmp_path):
    """An identity pool made on one node serves the other: user pool tokens signed by A verify
    on B, a role change on A reaches B's cached pool, the built-in provider's key made on A
    verifies on B, and a deleted identity is gone everywhere."""
    from test_identitypool import caller_arn, credentials, provider_name, public, role, sign_in, trust, user, user_pool

    key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpBQkNERUY="
    # Nodes behind one load balancer share a public URL: it is the user pools' issuer.
    env = {"COGNATE_MASTER_KEY": key, "COGNATE_DATABASE_URL": postgres_url,
           "COGNATE_PUBLIC_URL": "https://auth.example.test"}
    a = Server(tmp_path / "a", env=env)
    try:
        b = Server(tmp_path / "b", env=env)
        try:
            idp, up, (client,) = user_pool(a)
            user(idp, up, "ann")
            ci_a = a.client("cognito-identity")
            pool_id = ci_a.create_identity_pool(
                IdentityPoolName="ids", AllowUnauthenticatedIdentities=False, AllowClassicFlow=True,
                DeveloperProviderName="login.myapp",
                CognitoIdentityProviders=[{"ProviderName": provider_name(up), "ClientId": client}])["IdentityPoolId"]
            first = role(a, "First", trust(pool_id))
            second = role(a, "Second", trust(pool_id))
            ci_a.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": first})

            logins = {provider_name(up): sign_in(idp, up, client, "ann")["IdToken"]}
            identity = public(b).get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
            assert public(a).get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"] == identity
            assert "/First/" in caller_arn(b, credentials(b, identity, logins))

            ci_a.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": second})
            for _ in range(100):
                if "/Second/" in caller_arn(b, credentials(b, identity, logins)):
                    break
                time.sleep(0.05)
            else:
                pytest.fail("node B kept the old role")

            token = ci_a.get_open_id_token_for_developer_identity(
                IdentityPoolId=pool_id, Logins={"login.myapp": "dev-1"})
            out = public(b, "sts").assume_role_with_web_identity(
                RoleArn=second, RoleSessionName="basic", WebIdentityToken=token["Token"])
            assert out["SubjectFromWebIdentityToken"] == token["IdentityId"]

            ci_a.delete_identities(IdentityIdsToDelete=[identity])
            with pytest.raises(botocore.exceptions.ClientError) as e:
                credentials(b, identity, logins)
            assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
        finally:
            b.stop()
    finally:
        a.stop()
