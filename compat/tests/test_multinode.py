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
