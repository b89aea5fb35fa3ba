"""IAM through boto3: users, groups, policies, access keys, authorization and simulation."""

import json
import urllib.parse

import botocore.exceptions
import pytest

from test_sts import error_of

READ_USERS = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["iam:GetUser", "iam:ListUsers"], "Resource": "*"}],
})


def make_user_with_keys(iam, name, path="/"):
    iam.create_user(UserName=name, Path=path)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_user_lifecycle_with_paths_and_paging(server):
    iam = server.client("iam")
    created = iam.create_user(UserName="alice", Path="/eng/")["User"]
    assert created["Arn"] == f"arn:aws:iam::{server.account_id}:user/eng/alice"
    assert created["UserId"].startswith("AIDA")
    for name in ["bob", "carol", "dave"]:
        iam.create_user(UserName=name)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.create_user(UserName="ALICE")
    assert error_of(e) == ("EntityAlreadyExists", 409)
    assert iam.get_user(UserName="Alice")["User"]["UserName"] == "alice"

    page = iam.list_users(MaxItems=2)
    assert [u["UserName"] for u in page["Users"]] == ["alice", "bob"]
    assert page["IsTruncated"] is True
    rest = iam.list_users(Marker=page["Marker"])
    assert [u["UserName"] for u in rest["Users"]] == ["carol", "dave"]
    assert [u["UserName"] for u in iam.list_users(PathPrefix="/eng/")["Users"]] == ["alice"]
    names = [u["UserName"] for p in iam.get_paginator("list_users").paginate(PaginationConfig={"PageSize": 1}) for u in p["Users"]]
    assert names == ["alice", "bob", "carol", "dave"]

    iam.delete_user(UserName="dave")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.get_user(UserName="dave")
    assert error_of(e) == ("NoSuchEntity", 404)


def test_validation_and_malformed_policies(server):
    iam = server.client("iam")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.create_user(UserName="bad name!")
    assert error_of(e) == ("ValidationError", 400)
    iam.create_user(UserName="erin")
    for doc in ["not json", json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]})]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            iam.put_user_policy(UserName="erin", PolicyName="p", PolicyDocument=doc)
        assert error_of(e) == ("MalformedPolicyDocument", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.create_policy(PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "GetObject", "Resource": "*"}]}))
    assert error_of(e) == ("MalformedPolicyDocument", 400)
    assert "prefaced by a vendor" in e.value.response["Error"]["Message"]


def test_group_policy_grants_and_removal_takes_effect_at_once(server):
    iam = server.client("iam")
    key_id, secret = make_user_with_keys(iam, "ops-alice")
    iam.create_group(GroupName="ops")
    iam.put_group_policy(GroupName="ops", PolicyName="read-users", PolicyDocument=READ_USERS)
    as_alice = server.client("iam", key_id, secret)

    # Not yet in the group: denied, in the Query error shape, with AWS's wording.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_alice.list_users()
    assert error_of(e) == ("AccessDenied", 403)
    message = e.value.response["Error"]["Message"]
    assert message == (
        f"User: arn:aws:iam::{server.account_id}:user/ops-alice is not authorized to perform: "
        "iam:ListUsers on resource: * because no identity-based policy allows the iam:ListUsers action"
    )

    iam.add_user_to_group(GroupName="ops", UserName="ops-alice")
    assert "ops-alice" in [u["UserName"] for u in as_alice.list_users()["Users"]]
    assert as_alice.get_user()["User"]["UserName"] == "ops-alice"
    # The group's policy does not allow writes.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_alice.create_user(UserName="mallory")
    assert error_of(e) == ("AccessDenied", 403)

    iam.remove_user_from_group(GroupName="ops", UserName="ops-alice")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_alice.list_users()
    assert error_of(e) == ("AccessDenied", 403)


def test_managed_policies_versions_and_explicit_deny(server):
    iam = server.client("iam")
    key_id, secret = make_user_with_keys(iam, "frank")
    arn = iam.create_policy(PolicyName="iam-read", PolicyDocument=READ_USERS)["Policy"]["Arn"]
    assert arn == f"arn:aws:iam::{server.account_id}:policy/iam-read"
    iam.attach_user_policy(UserName="frank", PolicyArn=arn)
    as_frank = server.client("iam", key_id, secret)
    as_frank.list_users()

    deny = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:ListUsers", "Resource": "*"},
    ]})
    v2 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=deny, SetAsDefault=True)["PolicyVersion"]
    assert v2["VersionId"] == "v2" and v2["IsDefaultVersion"] is True
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_frank.list_users()
    assert error_of(e) == ("AccessDenied", 403)
    assert "with an explicit deny in an identity-based policy" in e.value.response["Error"]["Message"]
    as_frank.list_groups()

    doc = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]["Document"]
    assert doc == json.loads(READ_USERS)
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    as_frank.list_users()
    assert [v["VersionId"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]] == ["v2", "v1"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.delete_policy(PolicyArn=arn)
    assert error_of(e) == ("DeleteConflict", 409)
    assert iam.list_attached_user_policies(UserName="frank")["AttachedPolicies"] == [{"PolicyName": "iam-read", "PolicyArn": arn}]


def test_aws_managed_policies_and_permissions_boundaries(server):
    iam = server.client("iam")
    key_id, secret = make_user_with_keys(iam, "grace")
    iam.attach_user_policy(UserName="grace", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    as_grace = server.client("iam", key_id, secret)
    as_grace.create_user(UserName="made-by-grace")
    # A boundary of read-only IAM caps the administrator.
    iam.put_user_permissions_boundary(UserName="grace", PermissionsBoundary="arn:aws:iam::aws:policy/ReadOnlyAccess")
    as_grace.list_users()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_grace.create_user(UserName="another")
    assert error_of(e) == ("AccessDenied", 403)
    assert "because no permissions boundary allows" in e.value.response["Error"]["Message"]
    scopes = {p["PolicyName"] for p in iam.list_policies(Scope="AWS")["Policies"]}
    assert {"AdministratorAccess", "ReadOnlyAccess", "IAMFullAccess", "AmazonS3FullAccess", "AmazonS3ReadOnlyAccess"} <= scopes


def test_access_keys_can_be_deactivated_and_deleted(server):
    iam = server.client("iam")
    key_id, secret = make_user_with_keys(iam, "heidi")
    iam.put_user_policy(UserName="heidi", PolicyName="p", PolicyDocument=READ_USERS)
    as_heidi = server.client("iam", key_id, secret)
    as_heidi.list_users()
    assert [k["Status"] for k in iam.list_access_keys(UserName="heidi")["AccessKeyMetadata"]] == ["Active"]
    iam.update_access_key(UserName="heidi", AccessKeyId=key_id, Status="Inactive")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_heidi.list_users()
    assert error_of(e) == ("InvalidClientTokenId", 403)
    iam.delete_access_key(UserName="heidi", AccessKeyId=key_id)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.delete_user(UserName="heidi")
    assert error_of(e) == ("DeleteConflict", 409)
    iam.delete_user_policy(UserName="heidi", PolicyName="p")
    iam.delete_user(UserName="heidi")


def test_simulate_custom_policy_decisions(server):
    iam = server.client("iam")
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::home/${aws:username}/*"},
        {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"},
    ]})
    out = iam.simulate_custom_policy(
        PolicyInputList=[policy],
        ActionNames=["s3:GetObject", "s3:DeleteObject", "iam:CreateUser"],
        ResourceArns=["arn:aws:s3:::home/alice/notes.txt"],
        ContextEntries=[{"ContextKeyName": "aws:username", "ContextKeyValues": ["alice"], "ContextKeyType": "string"}],
    )
    decisions = {r["EvalActionName"]: r["EvalDecision"] for r in out["EvaluationResults"]}
    assert decisions == {"s3:GetObject": "allowed", "s3:DeleteObject": "explicitDeny", "iam:CreateUser": "implicitDeny"}
    matched = {r["EvalActionName"]: r["MatchedStatements"] for r in out["EvaluationResults"]}
    assert matched["s3:GetObject"][0]["SourcePolicyId"] == "PolicyInputList.1"
    assert matched["iam:CreateUser"] == []


def test_simulate_principal_policy_uses_stored_policies(server):
    iam = server.client("iam")
    iam.create_user(UserName="ivan")
    iam.create_group(GroupName="readers")
    iam.put_group_policy(GroupName="readers", PolicyName="read", PolicyDocument=READ_USERS)
    iam.add_user_to_group(GroupName="readers", UserName="ivan")
    arn = iam.get_user(UserName="ivan")["User"]["Arn"]
    out = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["iam:ListUsers", "iam:DeleteUser"])
    decisions = {r["EvalActionName"]: r["EvalDecision"] for r in out["EvaluationResults"]}
    assert decisions == {"iam:ListUsers": "allowed", "iam:DeleteUser": "implicitDeny"}
    statement = out["EvaluationResults"][0]["MatchedStatements"][0]
    assert (statement["SourcePolicyId"], statement["SourcePolicyType"]) == ("read", "group")


def test_roles_and_trust_policies(server):
    iam = server.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "444455556666"}, "Action": "sts:AssumeRole",
                                                     "Condition": {"StringEquals": {"sts:ExternalId": "x"}}}]}
    role = iam.create_role(RoleName="LogReader", AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=7200)["Role"]
    assert role["Arn"] == f"arn:aws:iam::{server.account_id}:role/LogReader"
    got = iam.get_role(RoleName="LogReader")["Role"]
    assert got["AssumeRolePolicyDocument"] == trust
    assert got["MaxSessionDuration"] == 7200
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.create_role(RoleName="Bad", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}))
    assert error_of(e) == ("MalformedPolicyDocument", 400)
    iam.put_role_policy(RoleName="LogReader", PolicyName="logs", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::logs/*"}]}))
    assert iam.list_role_policies(RoleName="LogReader")["PolicyNames"] == ["logs"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.delete_role(RoleName="LogReader")
    assert error_of(e) == ("DeleteConflict", 409)
    iam.delete_role_policy(RoleName="LogReader", PolicyName="logs")
    iam.delete_role(RoleName="LogReader")


def test_openid_connect_providers(server):
    iam = server.client("iam")
    arn = iam.create_open_id_connect_provider(
        Url="https://accounts.example.com/", ClientIDList=["app-1"], ThumbprintList=["a" * 40])["OpenIDConnectProviderArn"]
    assert arn == f"arn:aws:iam::{server.account_id}:oidc-provider/accounts.example.com"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.create_open_id_connect_provider(Url="https://accounts.example.com", ThumbprintList=["a" * 40])
    assert error_of(e) == ("EntityAlreadyExists", 409)
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="app-2")
    iam.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="app-1")
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert got["Url"] == "accounts.example.com"
    assert got["ClientIDList"] == ["app-2"]
    assert [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]] == [arn]
    # Plain http only for loopback issuers (local development and tests).
    iam.create_open_id_connect_provider(Url="http://127.0.0.1:9999/issuer", ThumbprintList=["b" * 40])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.create_open_id_connect_provider(Url="http://issuer.example.com", ThumbprintList=["b" * 40])
    assert error_of(e) == ("InvalidInput", 400)
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert error_of(e) == ("NoSuchEntity", 404)


def test_tags_and_request_tag_conditions(server):
    iam = server.client("iam")
    iam.create_user(UserName="tagger", Tags=[{"Key": "team", "Value": "blue"}])
    iam.tag_user(UserName="tagger", Tags=[{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "red"}])
    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="tagger")["Tags"]}
    assert tags == {"team": "red", "env": "dev"}
    iam.untag_user(UserName="tagger", TagKeys=["env"])
    assert iam.list_user_tags(UserName="tagger")["Tags"] == [{"Key": "team", "Value": "red"}]

    # A user may create users only when tagging them with its own team.
    key = iam.create_access_key(UserName="tagger")["AccessKey"]
    iam.put_user_policy(UserName="tagger", PolicyName="create-own-team", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:CreateUser", "Resource": "*",
                       "Condition": {"StringEquals": {"aws:RequestTag/team": "${aws:PrincipalTag/team}"},
                                     "ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}}],
    }))
    as_tagger = server.client("iam", key["AccessKeyId"], key["SecretAccessKey"])
    as_tagger.create_user(UserName="red-1", Tags=[{"Key": "team", "Value": "red"}])
    for tags in ([{"Key": "team", "Value": "blue"}], [], [{"Key": "team", "Value": "red"}, {"Key": "cost", "Value": "x"}]):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            as_tagger.create_user(UserName="other", Tags=tags)
        assert error_of(e) == ("AccessDenied", 403), tags


def test_account_authorization_details(server):
    iam = server.client("iam")
    iam.create_user(UserName="judy")
    iam.create_group(GroupName="auditors")
    iam.add_user_to_group(GroupName="auditors", UserName="judy")
    iam.put_user_policy(UserName="judy", PolicyName="inline", PolicyDocument=READ_USERS)
    arn = iam.create_policy(PolicyName="managed", PolicyDocument=READ_USERS)["Policy"]["Arn"]
    iam.attach_group_policy(GroupName="auditors", PolicyArn=arn)
    details = iam.get_account_authorization_details()
    user = details["UserDetailList"][0]
    assert user["UserName"] == "judy"
    assert user["GroupList"] == ["auditors"]
    assert user["UserPolicyList"][0]["PolicyDocument"] == json.loads(READ_USERS)
    assert details["GroupDetailList"][0]["AttachedManagedPolicies"] == [{"PolicyName": "managed", "PolicyArn": arn}]
    assert details["Policies"][0]["PolicyVersionList"][0]["IsDefaultVersion"] is True


def test_simulation_reports_missing_context_values(server):
    iam = server.client("iam")
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::home/${aws:username}/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}]})
    out = iam.simulate_custom_policy(PolicyInputList=[policy], ActionNames=["s3:GetObject"], ResourceArns=["arn:aws:s3:::home/alice/x"])
    result = out["EvaluationResults"][0]
    assert result["EvalDecision"] == "implicitDeny"
    assert sorted(result["MissingContextValues"]) == ["aws:SourceIp", "aws:username"]
    out = iam.simulate_custom_policy(
        PolicyInputList=[policy], ActionNames=["s3:GetObject"], ResourceArns=["arn:aws:s3:::home/alice/x"],
        ContextEntries=[{"ContextKeyName": "aws:username", "ContextKeyValues": ["alice"], "ContextKeyType": "string"},
                        {"ContextKeyName": "aws:SourceIp", "ContextKeyValues": ["203.0.113.7"], "ContextKeyType": "ip"}])
    result = out["EvaluationResults"][0]
    assert result["EvalDecision"] == "allowed"
    assert result["MissingContextValues"] == []


def test_access_key_last_used(server):
    iam = server.client("iam")
    iam.create_user(UserName="kim")
    key = iam.create_access_key(UserName="kim")["AccessKey"]
    never = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
    assert never["UserName"] == "kim"
    assert never["AccessKeyLastUsed"] == {"ServiceName": "N/A", "Region": "N/A"}
    server.client("sts", key["AccessKeyId"], key["SecretAccessKey"]).get_caller_identity()
    used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["AccessKeyLastUsed"]
    assert used["ServiceName"] == "sts"
    assert used["Region"] == "us-east-1"
    assert "LastUsedDate" in used


def test_response_shapes_as_iam_writes_them(server):
    iam = server.client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{server.account_id}:root"}, "Action": "sts:AssumeRole"}]})
    boundary = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    iam.create_role(RoleName="plain", AssumeRolePolicyDocument=trust)
    iam.create_role(RoleName="bounded", AssumeRolePolicyDocument=trust, PermissionsBoundary=boundary,
                    Tags=[{"Key": "team", "Value": "ops"}])
    iam.create_user(UserName="bob", PermissionsBoundary=boundary, Tags=[{"Key": "team", "Value": "ops"}])
    # No Description unless one was given.
    assert "Description" not in iam.get_role(RoleName="plain")["Role"]
    # Get* return boundaries and tags; the lists leave them out.
    got = iam.get_role(RoleName="bounded")["Role"]
    assert got["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary and got["Tags"]
    for role in iam.list_roles()["Roles"]:
        assert "PermissionsBoundary" not in role and "Tags" not in role
    assert iam.get_user(UserName="bob")["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    for user in iam.list_users()["Users"]:
        assert "PermissionsBoundary" not in user and "Tags" not in user
    # CreatePolicy without Description has none; GetPolicy lists its tags, [] when none.
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
    created = iam.create_policy(PolicyName="read", PolicyDocument=doc)["Policy"]
    assert "Description" not in created
    assert iam.get_policy(PolicyArn=created["Arn"])["Policy"]["Tags"] == []
    iam.tag_policy(PolicyArn=created["Arn"], Tags=[{"Key": "k", "Value": "v"}])
    assert iam.get_policy(PolicyArn=created["Arn"])["Policy"]["Tags"] == [{"Key": "k", "Value": "v"}]


def test_iam_and_organizations_are_global_services(tmp_path):
    import boto3
    from conftest import NO_RETRIES, Server

    server = Server(tmp_path / "data", extra_args=("--region", "eu-west-1"))
    try:
        key, secret = server.root_credentials()
        client = lambda service, region: boto3.client(service, endpoint_url=server.url, region_name=region,
                                                      aws_access_key_id=key, aws_secret_access_key=secret,
                                                      config=NO_RETRIES)
        # Signed for us-east-1, as AWS SDKs sign these global services, or for the server's region.
        assert client("iam", "us-east-1").list_users()["Users"] == []
        assert client("iam", "eu-west-1").list_users()["Users"] == []
        client("organizations", "us-east-1").create_organization()
        # A regional service is signed for the server's region only.
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client("sts", "us-east-1").get_caller_identity()
        assert "eu-west-1" in e.value.response["Error"]["Message"]
        assert client("sts", "eu-west-1").get_caller_identity()["Account"] == server.account_id
    finally:
        server.stop()
