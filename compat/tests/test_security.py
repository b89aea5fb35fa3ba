"""Attacks that once got through, each tried as an attacker would with real clients: every
one must be refused exactly as AWS refuses it (SECURITY.md lists them)."""

import json

import botocore.exceptions
import pytest

from test_assume_role import creds_of, setup_accounts
from test_sts import error_of


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def user_with_policy(server, name, *statements):
    iam = server.client("iam")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(*statements))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def denied(call, code="AccessDenied", status=403):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    assert error_of(e) == (code, status), e.value.response["Error"]
    return e.value.response["Error"]["Message"]


# ---- 1. Role trust policies ----------------------------------------------------------------

def test_trust_policy_must_admit_the_caller(server):
    a = server.account_id
    iam = server.client("iam")
    mallory = server.client("sts", *user_with_policy(server, "mallory", allow("sts:AssumeRole")))
    roles = {
        "OnlyCiBot": {"AWS": f"arn:aws:iam::{a}:user/ci-bot"},
        "OnlyEc2": {"Service": "ec2.amazonaws.com"},
        "OnlyGoogle": {"Federated": "accounts.google.com"},
    }
    for name, principal in roles.items():
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc(
            {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}))
        iam.attach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
        # An identity policy allowing sts:AssumeRole on * is not enough: the trust policy must
        # admit the caller itself.
        message = denied(lambda: mallory.assume_role(RoleArn=f"arn:aws:iam::{a}:role/{name}", RoleSessionName="xx"))
        assert f"arn:aws:iam::{a}:user/mallory is not authorized to perform: sts:AssumeRole" in message

    # Naming the account delegates to the caller's identity policies.
    iam.create_role(RoleName="Account", AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a}:root"}, "Action": "sts:AssumeRole"}))
    mallory.assume_role(RoleArn=f"arn:aws:iam::{a}:role/Account", RoleSessionName="ok")
    nobody = server.client("sts", *user_with_policy(server, "nobody"))
    denied(lambda: nobody.assume_role(RoleArn=f"arn:aws:iam::{a}:role/Account", RoleSessionName="no"))

    # Naming the user grants on its own, with no identity policy.
    iam.create_role(RoleName="Named", AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a}:user/nobody"}, "Action": "sts:AssumeRole"}))
    nobody.assume_role(RoleArn=f"arn:aws:iam::{a}:role/Named", RoleSessionName="ok")


def test_root_may_not_assume_roles(server):
    a = server.account_id
    server.client("iam").create_role(RoleName="Anyone", AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a}:root"}, "Action": "sts:AssumeRole"}))
    message = denied(lambda: server.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{a}:role/Anyone", RoleSessionName="root"))
    assert message == "Roles may not be assumed by root accounts."


# ---- 4. IAM operations are authorized on the entity, with their condition keys ------------------

def test_attaching_a_policy_is_authorized_on_the_user(server):
    a = server.account_id
    # iam:* on everything but users: the attacker may attach AdministratorAccess to... nothing
    # that is a user, itself included.
    key = user_with_policy(server, "climber", {"Effect": "Allow", "Action": "iam:*",
                                               "NotResource": f"arn:aws:iam::{a}:user/*"})
    iam = server.client("iam", *key)
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    message = denied(lambda: iam.attach_user_policy(UserName="climber", PolicyArn=admin))
    assert f"on resource: arn:aws:iam::{a}:user/climber" in message
    denied(lambda: iam.put_user_permissions_boundary(UserName="climber", PermissionsBoundary=admin))
    denied(lambda: iam.detach_user_policy(UserName="climber", PolicyArn=admin))
    # Groups and roles are not users: allowed.
    iam.create_group(GroupName="g")
    iam.attach_group_policy(GroupName="g", PolicyArn=admin)
    # ... but adding a user to the group is on the group, not the user (allowed here too).
    iam.add_user_to_group(GroupName="g", UserName="climber")


def test_policy_arn_condition_key(server):
    a = server.account_id
    read_only = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    key = user_with_policy(server, "delegate", allow(
        "iam:AttachRolePolicy", f"arn:aws:iam::{a}:role/*",
        Condition={"ArnEquals": {"iam:PolicyARN": read_only}}))
    server.client("iam").create_role(RoleName="Target", AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}))
    iam = server.client("iam", *key)
    iam.attach_role_policy(RoleName="Target", PolicyArn=read_only)
    denied(lambda: iam.attach_role_policy(RoleName="Target", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"))


def test_permissions_boundary_condition_key(server):
    a = server.account_id
    root = server.client("iam")
    boundary = root.create_policy(PolicyName="Boundary", PolicyDocument=doc(allow("s3:*")))["Policy"]["Arn"]
    # The delegate may create users and give them inline policies only under the boundary.
    key = user_with_policy(server, "delegate",
                           allow(["iam:CreateUser", "iam:PutUserPolicy", "iam:PutUserPermissionsBoundary"],
                                 f"arn:aws:iam::{a}:user/*",
                                 Condition={"ArnEquals": {"iam:PermissionsBoundary": boundary}}))
    iam = server.client("iam", *key)
    denied(lambda: iam.create_user(UserName="free"))
    iam.create_user(UserName="bounded", PermissionsBoundary=boundary)
    iam.put_user_policy(UserName="bounded", PolicyName="p", PolicyDocument=doc(allow("s3:*")))
    root.create_user(UserName="unbounded")
    denied(lambda: iam.put_user_policy(UserName="unbounded", PolicyName="p", PolicyDocument=doc(allow("*"))))
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    denied(lambda: iam.put_user_permissions_boundary(UserName="bounded", PermissionsBoundary=admin))


def test_create_access_key_without_user_name_is_on_the_caller(server):
    a = server.account_id
    key = user_with_policy(server, "self-service", allow(
        ["iam:CreateAccessKey", "iam:ListAccessKeys"], f"arn:aws:iam::{a}:user/${{aws:username}}"))
    server.client("iam").create_user(UserName="victim")
    iam = server.client("iam", *key)
    assert iam.create_access_key()["AccessKey"]["UserName"] == "self-service"
    iam.list_access_keys()
    denied(lambda: iam.create_access_key(UserName="victim"))


# ---- 5. Condition keys that must be present ----------------------------------------------------

def test_resource_tag_guardrail_on_roles(server):
    a = server.account_id
    key = user_with_policy(server, "ops", allow(["iam:*", "sts:AssumeRole"]), {
        "Effect": "Deny", "Action": "*", "Resource": "*",
        "Condition": {"StringEquals": {"aws:ResourceTag/protected": "true"}}})
    root = server.client("iam")
    trust = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a}:root"}, "Action": "sts:AssumeRole"})
    root.create_role(RoleName="Guarded", AssumeRolePolicyDocument=trust, Tags=[{"Key": "protected", "Value": "true"}])
    root.create_role(RoleName="Open", AssumeRolePolicyDocument=trust)
    iam = server.client("iam", *key)
    message = denied(lambda: iam.put_role_policy(RoleName="Guarded", PolicyName="x", PolicyDocument=doc(allow("*"))))
    assert "explicit deny" in message
    denied(lambda: iam.attach_role_policy(RoleName="Guarded", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"))
    iam.put_role_policy(RoleName="Open", PolicyName="x", PolicyDocument=doc(allow("s3:GetObject")))
    # The same guardrail holds for assuming the role.
    sts = server.client("sts", *key)
    denied(lambda: sts.assume_role(RoleArn=f"arn:aws:iam::{a}:role/Guarded", RoleSessionName="ss"))
    sts.assume_role(RoleArn=f"arn:aws:iam::{a}:role/Open", RoleSessionName="ss")


def test_request_tag_and_tag_keys_conditions(server):
    key = user_with_policy(server, "tagger", allow("iam:*"), {
        "Effect": "Deny", "Action": ["iam:TagRole", "iam:CreateRole", "iam:UntagRole"], "Resource": "*",
        "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["protected"]}}})
    iam = server.client("iam", *key)
    trust = doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})
    denied(lambda: iam.create_role(RoleName="r", AssumeRolePolicyDocument=trust, Tags=[{"Key": "protected", "Value": "no"}]))
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=trust, Tags=[{"Key": "team", "Value": "a"}])
    denied(lambda: iam.tag_role(RoleName="r", Tags=[{"Key": "protected", "Value": "true"}]))
    server.client("iam").tag_role(RoleName="r", Tags=[{"Key": "protected", "Value": "true"}])
    denied(lambda: iam.untag_role(RoleName="r", TagKeys=["protected"]))


# ---- 10. Cross-account and identity mix-ups ------------------------------------------------------

def test_other_accounts_policies_do_not_exist(server):
    b, iam_b = setup_accounts(server)
    arn = iam_b.create_policy(PolicyName="Secret", PolicyDocument=doc(allow("s3:*")))["Policy"]["Arn"]
    iam_a = server.client("iam")
    denied(lambda: iam_a.get_policy(PolicyArn=arn), "NoSuchEntity", 404)
    denied(lambda: iam_a.get_policy_version(PolicyArn=arn, VersionId="v1"), "NoSuchEntity", 404)
    denied(lambda: iam_a.list_policy_versions(PolicyArn=arn), "NoSuchEntity", 404)
    iam_a.create_user(UserName="u")
    with pytest.raises(botocore.exceptions.ClientError):
        iam_a.attach_user_policy(UserName="u", PolicyArn=arn)
    with pytest.raises(botocore.exceptions.ClientError):
        iam_a.put_user_permissions_boundary(UserName="u", PermissionsBoundary=arn)
    # ... nor usable as a session policy of a role in A.
    a = server.account_id
    iam_a.create_role(RoleName="R", AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a}:root"}, "Action": "sts:AssumeRole"}))
    denied(lambda: server.admin("sts").assume_role(
        RoleArn=f"arn:aws:iam::{a}:role/R", RoleSessionName="ss", PolicyArns=[{"arn": arn}]), "NoSuchEntity", 404)


def test_sessions_of_a_deleted_role_stay_dead_when_it_is_made_again(server):
    a = server.account_id
    iam = server.client("iam")
    trust = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a}:root"}, "Action": "sts:AssumeRole"})
    iam.create_role(RoleName="Ops", AssumeRolePolicyDocument=trust)
    iam.put_role_policy(RoleName="Ops", PolicyName="list", PolicyDocument=doc(allow("iam:ListUsers")))
    old = server.client("iam", *creds_of(server.admin("sts").assume_role(
        RoleArn=f"arn:aws:iam::{a}:role/Ops", RoleSessionName="old")))
    old.list_users()
    iam.delete_role_policy(RoleName="Ops", PolicyName="list")
    iam.delete_role(RoleName="Ops")
    iam.create_role(RoleName="Ops", AssumeRolePolicyDocument=trust)
    iam.attach_role_policy(RoleName="Ops", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    denied(old.list_users)
    denied(lambda: old.create_user(UserName="escalated"))
    new = server.client("iam", *creds_of(server.admin("sts").assume_role(
        RoleArn=f"arn:aws:iam::{a}:role/Ops", RoleSessionName="new")))
    new.list_users()


def test_get_session_token_credentials_cannot_call_iam_or_most_of_sts(server):
    key = user_with_policy(server, "worker", allow("*"))
    session = server.client("sts", *key).get_session_token()["Credentials"]
    creds = (session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"])
    denied(server.client("iam", *creds).list_users, "InvalidClientTokenId", 403)
    sts = server.client("sts", *creds)
    sts.get_caller_identity()
    message = denied(lambda: sts.get_access_key_info(AccessKeyId=key[0]))
    assert message == "Cannot call GetAccessKeyInfo with session credentials"
    denied(sts.get_session_token)


# ---- 3. Everything the signature does not cover is refused ------------------------------------

def signed_request(server, method, url, service, headers, body=b"", unsigned=None):
    """A request signed by botocore's SigV4 signer, then given `unsigned` headers after signing
    (what a man in the middle, or the holder of a presigned URL, can do)."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    import requests

    key, secret = server.root_credentials()
    request = botocore.awsrequest.AWSRequest(method=method, url=url, data=body, headers=headers)
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), service, "us-east-1").add_auth(request)
    prepared = dict(request.headers.items())
    prepared.update(unsigned or {})
    return requests.request(method, url, data=body, headers=prepared)


def test_presigned_urls_refuse_unsigned_amz_headers(server):
    import requests
    s3 = server.client("s3")
    s3.create_bucket(Bucket="vault")
    s3.put_object(Bucket="vault", Key="private.txt", Body=b"the secret")
    s3.create_bucket(Bucket="drop")
    import botocore.config
    v4 = server.client("s3", config=botocore.config.Config(signature_version="s3v4"))
    url = v4.generate_presigned_url("put_object", Params={"Bucket": "drop", "Key": "upload.txt"}, ExpiresIn=300)
    for extra in [{"x-amz-copy-source": "vault/private.txt"},
                  {"x-amz-meta-owner": "mallory"},
                  {"x-amz-website-redirect-location": "https://evil.example/"}]:
        r = requests.put(url, data=b"", headers=extra)
        assert r.status_code == 403, (extra, r.text)
        assert "<Code>AccessDenied</Code>" in r.text
        assert "There were headers present in the request which were not signed" in r.text
        assert f"<HeadersNotSigned>{next(iter(extra))}</HeadersNotSigned>" in r.text
    # Nothing was copied or stored, and the URL still works as signed.
    with pytest.raises(botocore.exceptions.ClientError):
        s3.head_object(Bucket="drop", Key="upload.txt")
    assert requests.put(url, data=b"mine").status_code == 200
    assert s3.get_object(Bucket="drop", Key="upload.txt")["Body"].read() == b"mine"
    assert "owner" not in s3.head_object(Bucket="drop", Key="upload.txt")["Metadata"]


def test_header_signed_s3_requests_refuse_unsigned_amz_headers(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="vault")
    s3.put_object(Bucket="vault", Key="private.txt", Body=b"the secret")
    r = signed_request(server, "PUT", f"{server.url}/vault/copy.txt", "s3",
                       {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
                       unsigned={"x-amz-copy-source": "vault/private.txt", "x-amz-acl": "public-read"})
    assert r.status_code == 403, r.text
    assert "<HeadersNotSigned>x-amz-acl, x-amz-copy-source</HeadersNotSigned>" in r.text


def test_unsigned_target_header_cannot_change_the_operation(server):
    idp = server.client("cognito-idp")
    pool = idp.create_user_pool(PoolName="keep")["UserPool"]["Id"]
    body = json.dumps({"UserPoolId": pool}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    # Signed without X-Amz-Target, which is then added: refused, whatever it names.
    r = signed_request(server, "POST", server.url + "/", "cognito-idp", headers, body,
                       unsigned={"X-Amz-Target": "AWSCognitoIdentityProviderService.DeleteUserPool"})
    assert r.status_code == 400, r.text
    assert r.json()["__type"] == "IncompleteSignatureException"
    assert "'x-amz-target' must be a 'SignedHeader'" in r.json()["message"]
    # Signed with DescribeUserPool, replaced by DeleteUserPool: the signature breaks.
    signed = dict(headers, **{"X-Amz-Target": "AWSCognitoIdentityProviderService.DescribeUserPool"})
    r = signed_request(server, "POST", server.url + "/", "cognito-idp", signed, body,
                       unsigned={"X-Amz-Target": "AWSCognitoIdentityProviderService.DeleteUserPool"})
    assert r.status_code == 403 and r.json()["__type"] == "InvalidSignatureException", r.text
    assert idp.describe_user_pool(UserPoolId=pool)["UserPool"]["Id"] == pool


def test_plus_in_a_query_means_one_thing_to_the_signature_and_the_listing(server):
    import requests
    s3 = server.client("s3")
    s3.create_bucket(Bucket="plus")
    s3.put_object(Bucket="plus", Key="a b/space", Body=b"1")
    s3.put_object(Bucket="plus", Key="a+b/plus", Body=b"2")
    # Signed as S3 reads it (`+` is a space), sent with a raw `+`.
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    key, secret = server.root_credentials()
    request = botocore.awsrequest.AWSRequest(method="GET", url=f"{server.url}/plus?list-type=2&prefix=a%20b",
                                             headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), "s3", "us-east-1").add_auth(request)
    r = requests.get(f"{server.url}/plus?list-type=2&prefix=a+b", headers=dict(request.headers.items()))
    assert r.status_code == 200, r.text
    assert "<Key>a b/space</Key>" in r.text and "a+b/plus" not in r.text
    # A literal plus is %2B on the wire and in the signature.
    listed = s3.list_objects_v2(Bucket="plus", Prefix="a+b")["Contents"]
    assert [o["Key"] for o in listed] == ["a+b/plus"]


# ---- 6. IAM entities change atomically, on both backends -----------------------------------------

def test_concurrent_iam_changes_are_all_kept(any_backend):
    import concurrent.futures
    server = any_backend
    clients = [server.client("iam") for _ in range(8)]
    trust = doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})
    clients[0].create_role(RoleName="Busy", AssumeRolePolicyDocument=trust)
    boundary = clients[0].create_policy(PolicyName="B", PolicyDocument=doc(allow("s3:*")))["Policy"]["Arn"]
    changes = [lambda i=i: clients[i % 8].tag_role(RoleName="Busy", Tags=[{"Key": f"k{i}", "Value": str(i)}])
               for i in range(12)]
    changes.append(lambda: clients[3].put_role_permissions_boundary(RoleName="Busy", PermissionsBoundary=boundary))
    changes.append(lambda: clients[5].update_role(RoleName="Busy", Description="kept"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for f in [pool.submit(c) for c in changes]:
            f.result()
    role = clients[0].get_role(RoleName="Busy")["Role"]
    assert {t["Key"] for t in role.get("Tags", [])} == {f"k{i}" for i in range(12)}
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    assert role["Description"] == "kept"

    # Versions made at once get distinct ids, and the limit of five holds.
    policy = clients[0].create_policy(PolicyName="Versioned", PolicyDocument=doc(allow("s3:GetObject")))["Policy"]["Arn"]
    def version(i):
        try:
            return clients[i].create_policy_version(PolicyArn=policy, PolicyDocument=doc(allow(f"s3:Get{i}*")))["PolicyVersion"]["VersionId"]
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(version, range(8)))
    made = [r for r in results if r.startswith("v")]
    assert len(made) == 4 and len(set(made)) == 4, results
    assert all(r == "LimitExceeded" for r in results if not r.startswith("v")), results
    listed = clients[0].list_policy_versions(PolicyArn=policy)["Versions"]
    assert sorted(v["VersionId"] for v in listed) == sorted(["v1", *made])


# ---- 11. Headers that promise protection are honoured or refused ----------------------------------

def test_acls_and_customer_keys_are_refused_not_ignored(server):
    import base64
    import hashlib
    s3 = server.client("s3")
    code = lambda call: failure(call)
    def failure(call):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        return error_of(e)
    assert code(lambda: s3.create_bucket(Bucket="acl", ACL="public-read")) == ("InvalidBucketAclWithObjectOwnership", 400)
    s3.create_bucket(Bucket="acl", ACL="private")
    for acl in ["public-read", "private", "authenticated-read"]:
        assert code(lambda: s3.put_object(Bucket="acl", Key="k", Body=b"x", ACL=acl)) == ("AccessControlListNotSupported", 400)
    assert code(lambda: s3.put_object(Bucket="acl", Key="k", Body=b"x", GrantRead='uri="http://acs.amazonaws.com/groups/global/AllUsers"')) \
        == ("AccessControlListNotSupported", 400)
    s3.put_object(Bucket="acl", Key="k", Body=b"x", ACL="bucket-owner-full-control")
    # Nothing became public.
    import requests
    assert requests.get(f"{server.url}/acl/k").status_code == 403

    key = b"k" * 32
    sse_c = dict(SSECustomerAlgorithm="AES256", SSECustomerKey=key.decode())
    assert code(lambda: s3.put_object(Bucket="acl", Key="secret", Body=b"plain", **sse_c)) == ("AccessDenied", 403)
    with pytest.raises(botocore.exceptions.ClientError):
        s3.head_object(Bucket="acl", Key="secret")
    assert code(lambda: s3.create_multipart_upload(Bucket="acl", Key="mp", **sse_c)) == ("AccessDenied", 403)
    # A read naming a customer key for an object stored without one is refused.
    assert code(lambda: s3.get_object(Bucket="acl", Key="k", **sse_c)) == ("InvalidRequest", 400)


def test_list_all_my_buckets_is_decided_on_its_documented_resource(server):
    s3_root = server.client("s3")
    s3_root.create_bucket(Bucket="mine")
    allowed = server.client("s3", *user_with_policy(server, "lister", {
        "Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "arn:aws:s3:::*"}))
    assert [b["Name"] for b in allowed.list_buckets()["Buckets"]] == ["mine"]
    denied_user = server.client("s3", *user_with_policy(server, "not-lister", allow("s3:*"), {
        "Effect": "Deny", "Action": "s3:ListAllMyBuckets", "Resource": "arn:aws:s3:::*"}))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        denied_user.list_buckets()
    assert error_of(e) == ("AccessDenied", 403)


def test_bucket_owner_root_keeps_its_policy_and_strangers_do_not(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="locked")
    s3.put_bucket_policy(Bucket="locked", Policy=doc({
        "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": ["arn:aws:s3:::locked", "arn:aws:s3:::locked/*"]}))
    # The root of the owning account can still read, replace and delete it.
    assert "Deny" in s3.get_bucket_policy(Bucket="locked")["Policy"]
    s3.delete_bucket_policy(Bucket="locked")
    # Another account's caller gets MethodNotAllowed even with a policy allowing it.
    b, iam_b = setup_accounts(server)
    s3.put_bucket_policy(Bucket="locked", Policy=doc({
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{b}:root"}, "Action": "s3:*",
        "Resource": ["arn:aws:s3:::locked", "arn:aws:s3:::locked/*"]}))
    iam_b.create_user(UserName="outsider")
    iam_b.attach_user_policy(UserName="outsider", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    k = iam_b.create_access_key(UserName="outsider")["AccessKey"]
    outsider = server.client("s3", k["AccessKeyId"], k["SecretAccessKey"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        outsider.delete_bucket_policy(Bucket="locked")
    assert error_of(e) == ("MethodNotAllowed", 405)


def test_missing_copy_sources_are_secret_without_list_permission(server):
    a = server.account_id
    s3 = server.client("s3")
    s3.create_bucket(Bucket="src")
    s3.create_bucket(Bucket="dst")
    copier = server.client("s3", *user_with_policy(server, "copier",
                                                  allow("s3:GetObject", "arn:aws:s3:::src/*"),
                                                  allow("s3:PutObject", "arn:aws:s3:::dst/*")))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        copier.copy_object(Bucket="dst", Key="c", CopySource={"Bucket": "src", "Key": "nope"})
    assert error_of(e) == ("AccessDenied", 403)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.copy_object(Bucket="dst", Key="c", CopySource={"Bucket": "src", "Key": "nope"})
    assert error_of(e) == ("NoSuchKey", 404)


def test_resource_tag_guardrail_on_user_and_identity_pools(server):
    guard = {"Effect": "Deny", "Action": "*", "Resource": "*",
             "Condition": {"StringEquals": {"aws:ResourceTag/protected": "true"}}}
    key = user_with_policy(server, "pool-admin", allow(["cognito-idp:*", "cognito-identity:*"]), guard)
    idp_root, ci_root = server.client("cognito-idp"), server.client("cognito-identity")
    guarded = idp_root.create_user_pool(PoolName="guarded", UserPoolTags={"protected": "true"})["UserPool"]["Id"]
    plain = idp_root.create_user_pool(PoolName="plain")["UserPool"]["Id"]
    idp = server.client("cognito-idp", *key)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        idp.delete_user_pool(UserPoolId=guarded)
    assert error_of(e) == ("AccessDeniedException", 403)
    idp.delete_user_pool(UserPoolId=plain)

    pool = lambda name, **kw: ci_root.create_identity_pool(
        IdentityPoolName=name, AllowUnauthenticatedIdentities=True, **kw)["IdentityPoolId"]
    guarded_ids, plain_ids = pool("guarded", IdentityPoolTags={"protected": "true"}), pool("plain")
    ci = server.client("cognito-identity", *key)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ci.delete_identity_pool(IdentityPoolId=guarded_ids)
    assert error_of(e) == ("AccessDeniedException", 403)
    ci.delete_identity_pool(IdentityPoolId=plain_ids)
    # Nor may the guard be taken off by the guarded.
    with pytest.raises(botocore.exceptions.ClientError):
        ci.untag_resource(ResourceArn=f"arn:aws:cognito-identity:us-east-1:{server.account_id}:identitypool/{guarded_ids}",
                          TagKeys=["protected"])


def test_guardrails_on_keys_cognate_cannot_supply_fail_closed(server):
    # "Deny unless through my VPC endpoint": no request reaches Cognate through one, so the key
    # is absent and the deny applies, as on AWS.
    key = user_with_policy(server, "vpc-bound", allow("iam:List*"), {
        "Effect": "Deny", "Action": "*", "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}})
    assert "explicit deny" in denied(server.client("iam", *key).list_users)
    # Organization paths Cognate cannot compute yet: a deny on them applies (fails closed)
    # where an absent key would have let the request past.
    key = user_with_policy(server, "ou-bound", allow("iam:List*"), {
        "Effect": "Deny", "Action": "*", "Resource": "*",
        "Condition": {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-*/r-*/ou-blocked/*"}}})
    assert "explicit deny" in denied(server.client("iam", *key).list_users)
    # Keys Cognate supplies keep AWS's semantics: the organization id, the user agent.
    org = server.client("organizations").create_organization()["Organization"]["Id"]
    key = user_with_policy(server, "member", allow("iam:List*", Condition={
        "StringEquals": {"aws:PrincipalOrgID": org}, "StringLike": {"aws:UserAgent": "*Boto3*"}}))
    server.client("iam", *key).list_users()
    key = user_with_policy(server, "outsider", allow("iam:List*", Condition={
        "StringEquals": {"aws:PrincipalOrgID": "o-someoneelse"}}))
    denied(server.client("iam", *key).list_users)


def test_giving_a_user_pool_group_a_role_passes_the_role(server):
    a = server.account_id
    idp_root = server.client("cognito-idp")
    pool = idp_root.create_user_pool(PoolName="groups")["UserPool"]["Id"]
    role = f"arn:aws:iam::{a}:role/Admin"
    key = user_with_policy(server, "group-admin", allow("cognito-idp:*"))
    idp = server.client("cognito-idp", *key)
    idp.create_group(UserPoolId=pool, GroupName="plain")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        idp.create_group(UserPoolId=pool, GroupName="admins", RoleArn=role)
    assert error_of(e) == ("AccessDeniedException", 403)
    assert "iam:PassRole" in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError):
        idp.update_group(UserPoolId=pool, GroupName="plain", RoleArn=role)
    passer = server.client("cognito-idp", *user_with_policy(server, "passer", allow("cognito-idp:*"), allow(
        "iam:PassRole", role, Condition={"StringEquals": {"iam:PassedToService": "cognito-idp.amazonaws.com"}})))
    passer.create_group(UserPoolId=pool, GroupName="admins", RoleArn=role)


def test_anonymous_callers_never_manage_bucket_policies(server):
    import requests
    s3 = server.client("s3")
    s3.create_bucket(Bucket="open")
    s3.put_bucket_policy(Bucket="open", Policy=doc({
        "Effect": "Allow", "Principal": "*", "Action": "s3:*",
        "Resource": ["arn:aws:s3:::open", "arn:aws:s3:::open/*"]}))
    assert requests.get(f"{server.url}/open?policy").status_code == 403
    assert requests.delete(f"{server.url}/open?policy").status_code == 403
    assert "s3:*" in s3.get_bucket_policy(Bucket="open")["Policy"]


def test_session_token_may_follow_the_signature_outside_s3(server):
    """SigV4 lets a session token be added after signing, except for S3; it is bound to the
    key that signed, so nothing the signature covers changes."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    import requests
    key = user_with_policy(server, "tokened", allow("sts:GetCallerIdentity"))
    session = server.client("sts", *key).get_session_token()["Credentials"]
    creds = botocore.credentials.Credentials(session["AccessKeyId"], session["SecretAccessKey"])
    body = "Action=GetCallerIdentity&Version=2011-06-15"
    request = botocore.awsrequest.AWSRequest(method="POST", url=server.url + "/", data=body,
                                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    botocore.auth.SigV4Auth(creds, "sts", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    headers["X-Amz-Security-Token"] = session["SessionToken"]
    r = requests.post(server.url + "/", data=body, headers=headers)
    assert r.status_code == 200, r.text
    assert "user/tokened" in r.text


def test_expected_owner_object_lock_and_kms_are_honoured_or_refused(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="owned")
    def code(call):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        return error_of(e)
    # Bucket names are global: a client naming the owner it expects is refused another's.
    assert code(lambda: s3.put_object(Bucket="owned", Key="k", Body=b"x", ExpectedBucketOwner="999988887777")) \
        == ("AccessDenied", 403)
    s3.put_object(Bucket="owned", Key="k", Body=b"x", ExpectedBucketOwner=server.account_id)
    assert code(lambda: s3.copy_object(Bucket="owned", Key="c", CopySource={"Bucket": "owned", "Key": "k"},
                                       ExpectedSourceBucketOwner="999988887777")) == ("AccessDenied", 403)
    # Write-once and KMS-guarded objects cannot be promised here.
    assert code(lambda: s3.put_object(Bucket="owned", Key="l", Body=b"x", ObjectLockLegalHoldStatus="ON")) \
        == ("InvalidRequest", 400)
    assert code(lambda: s3.put_object(Bucket="owned", Key="m", Body=b"x", ServerSideEncryption="aws:kms")) \
        == ("NotImplemented", 501)
    assert code(lambda: s3.create_bucket(Bucket="locked-bucket", ObjectLockEnabledForBucket=True)) \
        == ("NotImplemented", 501)
