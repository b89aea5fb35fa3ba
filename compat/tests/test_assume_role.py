"""STS AssumeRole across accounts with boto3: the seed's scenario. Account A (the server's
default account) has a group `ops` allowed to assume `LogReader` in account B; B's role trusts
A. Members of `ops` get LogReader sessions in B; nobody else does."""

import json

import botocore.exceptions
import pytest

from test_sts import error_of


def creds_of(response):
    c = response["Credentials"]
    return c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]


def setup_accounts(server):
    orgs = server.client("organizations")
    orgs.create_organization()
    b = orgs.create_account(Email="logs@example.com", AccountName="logs")["CreateAccountStatus"]["AccountId"]
    # A's root administers B through the role Organizations created there.
    admin = server.admin("sts").assume_role(
        RoleArn=f"arn:aws:iam::{b}:role/OrganizationAccountAccessRole", RoleSessionName="setup")
    iam_b = server.client("iam", *creds_of(admin))
    return b, iam_b


def trust(a, condition=None):
    statement = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a}:root"}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_cross_account_log_reader(server):
    a = server.account_id
    b, iam_b = setup_accounts(server)
    role_arn = iam_b.create_role(RoleName="LogReader", AssumeRolePolicyDocument=trust(a))["Role"]["Arn"]
    iam_b.put_role_policy(RoleName="LogReader", PolicyName="read-logs", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                       "Resource": ["arn:aws:s3:::b-logs", "arn:aws:s3:::b-logs/*"]}]}))

    iam_a = server.client("iam")
    iam_a.create_group(GroupName="ops")
    iam_a.put_group_policy(GroupName="ops", PolicyName="assume-log-reader", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}]}))
    users = {}
    for name in ["alice", "bob"]:
        iam_a.create_user(UserName=name)
        key = iam_a.create_access_key(UserName=name)["AccessKey"]
        users[name] = server.client("sts", key["AccessKeyId"], key["SecretAccessKey"])
    iam_a.add_user_to_group(GroupName="ops", UserName="alice")

    out = users["alice"].assume_role(RoleArn=role_arn, RoleSessionName="alice-reads-logs", DurationSeconds=900)
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{b}:assumed-role/LogReader/alice-reads-logs"
    assert out["AssumedRoleUser"]["AssumedRoleId"].startswith("AROA")
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    session = creds_of(out)
    who = server.client("sts", *session).get_caller_identity()
    assert who["Account"] == b
    assert who["Arn"] == f"arn:aws:sts::{b}:assumed-role/LogReader/alice-reads-logs"

    # The role may read logs and nothing else in B.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.client("iam", *session).list_users()
    assert error_of(e) == ("AccessDenied", 403)
    assert f"arn:aws:sts::{b}:assumed-role/LogReader/alice-reads-logs is not authorized" in e.value.response["Error"]["Message"]

    # Outside the group: no identity policy allows the cross-account AssumeRole.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        users["bob"].assume_role(RoleArn=role_arn, RoleSessionName="bob")
    assert error_of(e) == ("AccessDenied", 403)

    # A role that does not exist is refused exactly like one that does not trust the caller.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        users["alice"].assume_role(RoleArn=f"arn:aws:iam::{b}:role/NoSuchRole", RoleSessionName="xx")
    assert error_of(e) == ("AccessDenied", 403)


def test_external_id_is_enforced(server):
    a = server.account_id
    b, iam_b = setup_accounts(server)
    arn = iam_b.create_role(RoleName="Vendor", AssumeRolePolicyDocument=trust(a, {"StringEquals": {"sts:ExternalId": "s3cret-id"}}))["Role"]["Arn"]
    sts = server.admin("sts")
    for kwargs in [{}, {"ExternalId": "wrong-id"}]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sts.assume_role(RoleArn=arn, RoleSessionName="vv", **kwargs)
        assert error_of(e) == ("AccessDenied", 403), kwargs
    assert sts.assume_role(RoleArn=arn, RoleSessionName="vv", ExternalId="s3cret-id")["AssumedRoleUser"]["Arn"].endswith("/Vendor/vv")


def test_another_account_is_not_trusted(server):
    _, iam_b = setup_accounts(server)
    arn = iam_b.create_role(RoleName="TrustsSomeoneElse", AssumeRolePolicyDocument=trust("999988887777"))["Role"]["Arn"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.admin("sts").assume_role(RoleArn=arn, RoleSessionName="xx")
    assert error_of(e) == ("AccessDenied", 403)


def test_session_policies_chaining_and_durations(server):
    a = server.account_id
    b, iam_b = setup_accounts(server)
    arn = iam_b.create_role(RoleName="Admin", AssumeRolePolicyDocument=trust(a), MaxSessionDuration=7200)["Role"]["Arn"]
    iam_b.attach_role_policy(RoleName="Admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    sts = server.admin("sts")

    # A session policy narrows the role: list users yes, create users no.
    narrow = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*"}]})
    out = sts.assume_role(RoleArn=arn, RoleSessionName="narrow", Policy=narrow)
    assert out["PackedPolicySize"] > 0
    iam = server.client("iam", *creds_of(out))
    iam.list_users()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.create_user(UserName="nope")
    assert error_of(e) == ("AccessDenied", 403)
    assert "because no session policy allows" in e.value.response["Error"]["Message"]

    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role(RoleArn=arn, RoleSessionName="long", DurationSeconds=7201)
    assert error_of(e) == ("ValidationError", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role(RoleArn=arn, RoleSessionName="bad", Policy="{not json")
    assert error_of(e) == ("MalformedPolicyDocument", 400)

    # Role chaining: at most one hour.
    iam_b.update_assume_role_policy(RoleName="Admin", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{a}:root", f"arn:aws:iam::{b}:root"]}, "Action": "sts:AssumeRole"}]}))
    first = server.client("sts", *creds_of(sts.assume_role(RoleArn=arn, RoleSessionName="first")))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        first.assume_role(RoleArn=arn, RoleSessionName="second", DurationSeconds=3601)
    assert error_of(e) == ("ValidationError", 400)
    chained = first.assume_role(RoleArn=arn, RoleSessionName="second")
    assert chained["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{b}:assumed-role/Admin/second"


def test_session_tags_need_tag_session_permission(server):
    a = server.account_id
    b, iam_b = setup_accounts(server)
    arn = iam_b.create_role(RoleName="Tagged", AssumeRolePolicyDocument=trust(a))["Role"]["Arn"]
    sts = server.admin("sts")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role(RoleArn=arn, RoleSessionName="tt", Tags=[{"Key": "team", "Value": "blue"}])
    assert error_of(e) == ("AccessDenied", 403)
    iam_b.update_assume_role_policy(RoleName="Tagged", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a}:root"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))
    sts.assume_role(RoleArn=arn, RoleSessionName="tt", Tags=[{"Key": "team", "Value": "blue"}])


def test_revoking_older_sessions_with_token_issue_time(server):
    """AWS's revocation: a deny on aws:TokenIssueTime before a date ends every older session."""
    a = server.account_id
    b, iam_b = setup_accounts(server)
    arn = iam_b.create_role(RoleName="Revocable", AssumeRolePolicyDocument=trust(a))["Role"]["Arn"]
    iam_b.put_role_policy(RoleName="Revocable", PolicyName="read", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*"}]}))
    old = server.client("iam", *creds_of(server.admin("sts").assume_role(RoleArn=arn, RoleSessionName="old")))
    old.list_roles()
    import datetime
    import time as _time
    _time.sleep(1.1)
    cutoff = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    _time.sleep(1.1)
    iam_b.put_role_policy(RoleName="Revocable", PolicyName="AWSRevokeOlderSessions", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*",
                                                 "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}}}]}))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        old.list_roles()
    assert error_of(e) == ("AccessDenied", 403)
    assert "explicit deny" in e.value.response["Error"]["Message"]
    new = server.client("iam", *creds_of(server.admin("sts").assume_role(RoleArn=arn, RoleSessionName="new")))
    new.list_roles()
