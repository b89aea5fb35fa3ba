"""Cognito Sync with boto3: a user signs in, gets identity-pool credentials, and two devices
(two credential sets of one identity) write, read, conflict, resolve, remove and delete; other
identities, other credentials and bad input are refused as AWS refuses them; limits hold; and
racing writers never both win."""

import json
import threading
import time
import urllib.parse

import botocore.exceptions
import pytest
import requests
import websockets.exceptions
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from websockets.sync.client import connect

from test_identitypool import (as_session, credentials, identity_pool, provider_name, public, role, sign_in,
                               trust, user, user_pool)
from conftest import Server
from test_sts import error_of

DATASET = "profile"


def own_data_policy(account):
    """The developer guide's "grant an identity access to their data" policy."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "cognito-sync:*",
        "Resource": [f"arn:aws:cognito-sync:us-east-1:{account}:identitypool/"
                     "${cognito-identity.amazonaws.com:aud}/identity/${cognito-identity.amazonaws.com:sub}/*"]}]}


def guest_pool(server, policy=None):
    """An identity pool whose guests get a role with `policy` (their own data by default)."""
    ci, pool_id = identity_pool(server, [])
    guest = role(server, "Guest", trust(pool_id, "unauthenticated"), policy or own_data_policy(server.account_id))
    auth = role(server, "Auth", trust(pool_id))
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": auth, "unauthenticated": guest})
    return pool_id


def guest_device(server, pool_id, identity_id=None):
    """A device of a guest identity (a new one unless named): its id and a cognito-sync client."""
    identity_id = identity_id or public(server).get_id(IdentityPoolId=pool_id)["IdentityId"]
    return identity_id, as_session(server, "cognito-sync", credentials(server, identity_id))


def patch(key, sync_count, value=None):
    p = {"Op": "replace" if value is not None else "remove", "Key": key, "SyncCount": sync_count}
    if value is not None:
        p["Value"] = value
    return p


class Device:
    """One device's view of one dataset: list, then update with the session token."""

    def __init__(self, client, pool_id, identity_id, dataset=DATASET):
        self.sync, self.args = client, {"IdentityPoolId": pool_id, "IdentityId": identity_id, "DatasetName": dataset}

    def list(self, since=0, **extra):
        return self.sync.list_records(**self.args, LastSyncCount=since, **extra)

    def update(self, *patches, token=None, device="device"):
        token = token or self.list()["SyncSessionToken"]
        return self.sync.update_records(**self.args, DeviceId=device, RecordPatches=list(patches),
                                        SyncSessionToken=token)["Records"]


def values(records):
    return {r["Key"]: (r.get("Value"), r["SyncCount"]) for r in records}


def refused(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return error_of(e), e.value.response["Error"]["Message"]


def test_two_devices_of_a_signed_in_user_sync_conflict_resolve_and_delete(any_backend):
    server = any_backend
    idp, up, (client,) = user_pool(server)
    user(idp, up, "ann")
    user(idp, up, "bob")
    ci, pool_id = identity_pool(server, [{"ProviderName": provider_name(up), "ClientId": client}])
    auth = role(server, "SyncAuth", trust(pool_id), own_data_policy(server.account_id))
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": auth})

    def device(name):
        logins = {provider_name(up): sign_in(idp, up, client, name)["IdToken"]}
        identity = public(server).get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
        return identity, as_session(server, "cognito-sync", credentials(server, identity, logins))

    ann, phone_client = device("ann")
    same, laptop_client = device("ann")
    assert same == ann
    phone, laptop = Device(phone_client, pool_id, ann), Device(laptop_client, pool_id, ann)

    # Nothing yet: no dataset, no error, and a session token.
    first = phone.list()
    assert (first["Count"], first["DatasetExists"], first["DatasetSyncCount"], first["Records"]) == (0, False, 0, [])
    assert first["DatasetDeletedAfterRequestedSyncCount"] is False
    assert first["SyncSessionToken"]

    # The phone writes two records in one call: one sync count, stamped on both.
    written = phone.update(patch("name", 0, "Ann"), patch("color", 0, "blue"), token=first["SyncSessionToken"])
    assert values(written) == {"name": ("Ann", 1), "color": ("blue", 1)}
    assert all(r["LastModifiedBy"] == server.account_id for r in written)

    # The laptop sees them and changes one.
    seen = laptop.list()
    assert (seen["DatasetSyncCount"], seen["DatasetExists"], seen["Count"]) == (1, True, 2)
    assert values(seen["Records"]) == {"name": ("Ann", 1), "color": ("blue", 1)}
    assert values(laptop.update(patch("color", 1, "green"))) == {"color": ("green", 2)}

    # The phone's edit of the same record is stale: 409, and nothing of that call lands.
    (code, message) = refused(lambda: phone.update(patch("color", 1, "red"), patch("name", 1, "Annie")))
    assert code == ("ResourceConflictException", 409)
    assert message == "Current SyncCount for: color is: 2 not: 1"
    after = phone.list()
    assert after["DatasetSyncCount"] == 2
    assert values(after["Records"]) == {"name": ("Ann", 1), "color": ("green", 2)}

    # The phone reads what changed since its last sync, resolves, and writes again.
    changed = phone.list(since=1)
    assert values(changed["Records"]) == {"color": ("green", 2)}
    assert values(phone.update(patch("color", 2, "red"))) == {"color": ("red", 3)}

    # A removal stays as a tombstone for the other device.
    assert values(laptop.update(patch("name", 1))) == {"name": (None, 4)}
    tomb = phone.list(since=3)
    assert values(tomb["Records"]) == {"name": (None, 4)}
    assert "Value" not in tomb["Records"][0]

    sync = phone_client
    described = sync.describe_dataset(**phone.args)["Dataset"]
    assert (described["NumRecords"], described["DataStorage"]) == (1, len("color") + len("red"))
    assert described["LastModifiedBy"] == server.account_id
    assert described["CreationDate"].year >= 2024
    listed = sync.list_datasets(IdentityPoolId=pool_id, IdentityId=ann)
    assert [d["DatasetName"] for d in listed["Datasets"]] == [DATASET] and listed["Count"] == 1
    # The guide's policy covers the identity's datasets (`identity/<id>/*`), not the identity:
    # its usage takes developer credentials here, as on AWS.
    (code, _) = refused(lambda: sync.describe_identity_usage(IdentityPoolId=pool_id, IdentityId=ann))
    assert code == ("AccessDeniedException", 403)
    developer = server.client("cognito-sync")
    usage = developer.describe_identity_usage(IdentityPoolId=pool_id, IdentityId=ann)["IdentityUsage"]
    assert (usage["DatasetCount"], usage["DataStorage"], usage["IdentityPoolId"]) == (1, 8, pool_id)

    # Paging: one record per page, in the order of their changes, then no token.
    pages, token = [], None
    while True:
        page = laptop.list(MaxResults=1, **({"NextToken": token} if token else {}))
        pages += [r["Key"] for r in page["Records"]]
        token = page.get("NextToken")
        if not token:
            break
    assert pages == ["color", "name"]

    # Deletion: gone for Describe, and a device that synced before learns it was deleted.
    assert sync.delete_dataset(**phone.args)["Dataset"]["DatasetName"] == DATASET
    assert refused(lambda: sync.describe_dataset(**phone.args))[0] == ("ResourceNotFoundException", 404)
    assert refused(lambda: sync.delete_dataset(**phone.args))[0] == ("ResourceNotFoundException", 404)
    gone = laptop.list(since=4)
    assert (gone["DatasetExists"], gone["DatasetDeletedAfterRequestedSyncCount"], gone["Records"]) == (False, True, [])
    assert sync.list_datasets(IdentityPoolId=pool_id, IdentityId=ann)["Datasets"] == []

    # Made again, it starts empty; its count goes on from the deletion's, so no device mistakes
    # it for the old one.
    assert values(phone.update(patch("name", 0, "Ann"))) == {"name": ("Ann", 6)}
    fresh = laptop.list()
    assert (fresh["DatasetExists"], fresh["DatasetDeletedAfterRequestedSyncCount"]) == (True, False)
    assert values(fresh["Records"]) == {"name": ("Ann", 6)}
    assert laptop.list(since=4)["DatasetDeletedAfterRequestedSyncCount"] is True

    # Another identity reaches none of it, whatever path it names.
    bob, bob_client = device("bob")
    assert bob != ann
    for call in (lambda: bob_client.list_records(**phone.args),
                 lambda: bob_client.list_datasets(IdentityPoolId=pool_id, IdentityId=ann),
                 lambda: bob_client.describe_identity_usage(IdentityPoolId=pool_id, IdentityId=ann),
                 lambda: bob_client.delete_dataset(**phone.args)):
        assert refused(call) == (("NotAuthorizedException", 403), f"Access to Identity '{ann}' is forbidden.")
    # Bob's session token does not open ann's dataset, nor ann's another dataset.
    bob_token = Device(bob_client, pool_id, bob).list()["SyncSessionToken"]
    (code, message) = refused(lambda: phone.update(patch("name", 6, "Eve"), token=bob_token))
    assert (code, message) == (("InvalidParameterException", 400), "SyncSessionToken not valid for these inputs")
    other = Device(phone_client, pool_id, ann, "other").list()["SyncSessionToken"]
    assert refused(lambda: phone.update(patch("name", 6, "Eve"), token=other))[0] == ("InvalidParameterException", 400)
    assert refused(lambda: phone.update(patch("name", 6, "Eve"), token="forged" + other[6:]))[0] == (
        "InvalidParameterException", 400)
    assert values(laptop.list()["Records"]) == {"name": ("Ann", 6)}

    # The pool-wide operations take developer credentials, not an identity's.
    assert refused(lambda: sync.describe_identity_pool_usage(IdentityPoolId=pool_id))[0] == (
        "NotAuthorizedException", 403)
    pool_usage = developer.describe_identity_pool_usage(IdentityPoolId=pool_id)["IdentityPoolUsage"]
    assert pool_usage["IdentityPoolId"] == pool_id and pool_usage["DataStorage"] == len("name") + len("Ann")
    assert pool_id in [p["IdentityPoolId"] for p in developer.list_identity_pool_usage()["IdentityPoolUsages"]]
    # Developer credentials read and write any identity's data.
    assert values(Device(developer, pool_id, ann).list()["Records"]) == {"name": ("Ann", 6)}


def test_iam_decides_what_identity_credentials_may_do(server):
    # Guests here may only read the dataset named "public".
    read_only = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["cognito-sync:ListRecords", "cognito-sync:ListDatasets"],
        "Resource": f"arn:aws:cognito-sync:us-east-1:{server.account_id}:identitypool/"
                    "${cognito-identity.amazonaws.com:aud}/identity/${cognito-identity.amazonaws.com:sub}/dataset/*"}]}
    pool_id = guest_pool(server, read_only)
    identity, client = guest_device(server, pool_id)
    device = Device(client, pool_id, identity)
    token = device.list()["SyncSessionToken"]
    assert client.list_datasets(IdentityPoolId=pool_id, IdentityId=identity)["Datasets"] == []
    (code, message) = refused(lambda: device.update(patch("k", 0, "v"), token=token))
    assert code == ("AccessDeniedException", 403)
    assert "cognito-sync:UpdateRecords" in message
    assert refused(lambda: client.describe_identity_usage(IdentityPoolId=pool_id, IdentityId=identity))[0] == (
        "AccessDeniedException", 403)
    # An IAM user without a policy is denied the developer operations.
    iam = server.client("iam")
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    nobody = server.client("cognito-sync", key["AccessKeyId"], key["SecretAccessKey"])
    assert refused(lambda: nobody.describe_identity_pool_usage(IdentityPoolId=pool_id))[0] == (
        "AccessDeniedException", 403)


def test_bad_input_and_limits_get_aws_errors(server):
    pool_id = guest_pool(server)
    identity, client = guest_device(server, pool_id)
    device = Device(client, pool_id, identity)
    assert values(device.update(patch("a", 0, "1"))) == {"a": ("1", 1)}

    # A count from the future, a bad name, a bad page token, an unknown identity.
    assert refused(lambda: device.list(since=37)) == (("InvalidParameterException", 400),
                                                       "No such SyncCount: 37 exists for this Dataset")
    assert refused(lambda: client.list_records(IdentityPoolId=pool_id, IdentityId=identity,
                                               DatasetName="bad name!"))[0] == ("InvalidParameterException", 400)
    assert refused(lambda: device.list(NextToken="***"))[0] == ("InvalidParameterException", 400)
    developer = server.client("cognito-sync")
    missing = "us-east-1:00000000-0000-0000-0000-000000000000"
    assert refused(lambda: developer.describe_identity_usage(IdentityPoolId=pool_id, IdentityId=missing))[0] == (
        "ResourceNotFoundException", 404)
    assert refused(lambda: developer.describe_identity_pool_usage(IdentityPoolId="us-east-1:0000"))[0] == (
        "ResourceNotFoundException", 404)
    # A key named twice in one call, and a replace without a value.
    assert refused(lambda: device.update(patch("b", 0, "x"), patch("b", 0, "y")))[0] == ("InvalidParameterException", 400)
    assert refused(lambda: device.update({"Op": "replace", "Key": "b", "SyncCount": 0}))[0] == (
        "InvalidParameterException", 400)

    # 1,024 records per dataset.
    device.update(*[patch(f"r{i}", 0, "v") for i in range(1023)])
    assert device.list()["Count"] == 1024
    (code, message) = refused(lambda: device.update(patch("one-more", 0, "v")))
    assert code == ("LimitExceededException", 400)
    # A removal makes room again.
    device.update(patch("r0", 2))
    assert values(device.update(patch("one-more", 0, "v")))["one-more"][1] == 4

    # 1 MB per dataset, counted over keys and values.
    big = Device(client, pool_id, identity, "big")
    big.update(patch("x", 0, "x" * 600_000))
    assert refused(lambda: big.update(patch("y", 0, "y" * 600_000)))[0] == ("LimitExceededException", 400)
    assert big.list()["DatasetSyncCount"] == 1

    # 20 datasets per identity.
    for i in range(18):
        Device(client, pool_id, identity, f"d{i}").update(patch("k", 0, "v"))
    assert len(client.list_datasets(IdentityPoolId=pool_id, IdentityId=identity)["Datasets"]) == 20
    assert refused(lambda: Device(client, pool_id, identity, "d20").update(patch("k", 0, "v")))[0] == (
        "LimitExceededException", 400)
    page = client.list_datasets(IdentityPoolId=pool_id, IdentityId=identity, MaxResults=15)
    rest = client.list_datasets(IdentityPoolId=pool_id, IdentityId=identity, NextToken=page["NextToken"])
    assert len(page["Datasets"]) + len(rest["Datasets"]) == 20 and "NextToken" not in rest


def test_racing_writers_never_both_win(any_backend):
    server = any_backend
    pool_id = guest_pool(server)
    identity, client = guest_device(server, pool_id)
    clients = [client] + [guest_device(server, pool_id, identity)[1] for _ in range(5)]
    token = Device(client, pool_id, identity).list()["SyncSessionToken"]
    outcomes = []

    def write(c, key, value):
        d = Device(c, pool_id, identity)
        for _ in range(20):
            try:
                outcomes.append((key, value, d.update(patch(key, 0, value), token=token)[0]["SyncCount"]))
                return
            except botocore.exceptions.ClientError as e:
                code = e.response["Error"]["Code"]
                if code != "TooManyRequestsException":
                    outcomes.append((key, value, code))
                    return

    # Six devices create the same record at once: one wins, the others conflict.
    threads = [threading.Thread(target=write, args=(c, "same", f"v{i}")) for i, c in enumerate(clients)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    winners = [o for o in outcomes if isinstance(o[2], int)]
    assert len(winners) == 1, outcomes
    assert sorted(o[2] for o in outcomes if not isinstance(o[2], int)) == ["ResourceConflictException"] * 5
    record = values(Device(client, pool_id, identity).list()["Records"])["same"]
    assert record == (winners[0][1], winners[0][2])

    # Six devices create different records at once: all land, each with its own count.
    outcomes.clear()
    threads = [threading.Thread(target=write, args=(c, f"k{i}", "v")) for i, c in enumerate(clients)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    counts = sorted(o[2] for o in outcomes)
    assert counts == list(range(2, 8)), outcomes
    listed = Device(client, pool_id, identity).list()
    assert listed["DatasetSyncCount"] == 7 and listed["Count"] == 7


def test_datasets_follow_identities_that_merge(any_backend):
    server = any_backend
    idp, up, (client,) = user_pool(server)
    user(idp, up, "ann")
    ci, pool_id = identity_pool(server, [{"ProviderName": provider_name(up), "ClientId": client}],
                                DeveloperProviderName="login.myapp")
    logins = {provider_name(up): sign_in(idp, up, client, "ann")["IdToken"]}
    pooled = public(server).get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
    dev = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pool_id, Logins={"login.myapp": "ann-dev"})
    developer = server.client("cognito-sync")
    Device(developer, pool_id, pooled).update(patch("theme", 0, "dark"))
    Device(developer, pool_id, dev["IdentityId"]).update(patch("theme", 0, "light"), patch("lang", 0, "fi"))
    Device(developer, pool_id, dev["IdentityId"], "scores").update(patch("best", 0, "9"))

    merged = public(server).get_id(IdentityPoolId=pool_id,
                                   Logins={**logins, "cognito-identity.amazonaws.com": dev["Token"]})["IdentityId"]
    gone = pooled if merged == dev["IdentityId"] else dev["IdentityId"]
    kept = Device(developer, pool_id, merged).list()
    assert kept["MergedDatasetNames"] == [f"{DATASET}.{gone}"]
    # A dataset only the merged identity had is reported too, on its own name.
    scores = Device(developer, pool_id, merged, "scores").list()
    assert scores.get("MergedDatasetNames", []) == ([] if gone == pooled else [f"scores.{gone}"])
    brought = Device(developer, pool_id, merged, f"{DATASET}.{gone}").list()
    expected = {"theme": "dark"} if gone == pooled else {"theme": "light", "lang": "fi"}
    assert {r["Key"]: r["Value"] for r in brought["Records"]} == expected
    names = {d["DatasetName"] for d in developer.list_datasets(IdentityPoolId=pool_id, IdentityId=merged)["Datasets"]}
    assert f"{DATASET}.{gone}" in names and DATASET in names
    # The identity that went has no data left; deleting the merged dataset ends the report.
    assert developer.list_datasets(IdentityPoolId=pool_id, IdentityId=gone)["Datasets"] == []
    developer.delete_dataset(IdentityPoolId=pool_id, IdentityId=merged, DatasetName=f"{DATASET}.{gone}")
    assert "MergedDatasetNames" not in Device(developer, pool_id, merged).list()


def live_url(server, c, pool_id, identity_id, device, datasets=(), expires=300, scheme="ws"):
    """The live channel's URL, presigned with SigV4 (botocore's own query signer)."""
    query = urllib.parse.urlencode([("IdentityPoolId", pool_id), ("IdentityId", identity_id), ("DeviceId", device)]
                                   + [("DatasetName", d) for d in datasets])
    request = AWSRequest(method="GET", url=f"{server.url}/_cognate/sync/live?{query}")
    creds = Credentials(c["AccessKeyId"], c["SecretKey"], c.get("SessionToken"))
    SigV4QueryAuth(creds, "cognito-sync", "us-east-1", expires=expires).add_auth(request)
    return request.url.replace("http://", f"{scheme}://", 1)


def live_refused(url):
    with pytest.raises(websockets.exceptions.InvalidStatus) as e:
        connect(url, open_timeout=10)
    return e.value.response.status_code, json.loads(e.value.response.body or b"{}").get("message", "")


def push_of(channel):
    return json.loads(channel.recv(timeout=10))


def test_live_channel_tells_every_other_device_at_once(server):
    pool_id = guest_pool(server)
    identity = public(server).get_id(IdentityPoolId=pool_id)["IdentityId"]
    phone_creds, laptop_creds = credentials(server, identity), credentials(server, identity)
    phone_sync = as_session(server, "cognito-sync", phone_creds)
    laptop_sync = as_session(server, "cognito-sync", laptop_creds)
    phone = connect(live_url(server, phone_creds, pool_id, identity, "phone", [DATASET]), open_timeout=10)
    laptop = connect(live_url(server, laptop_creds, pool_id, identity, "laptop"), open_timeout=10)
    try:
        Device(phone_sync, pool_id, identity).update(patch("a", 0, "1"), device="phone")
        assert push_of(laptop) == {"source": "cognito-sync", "identityPoolId": pool_id, "identityId": identity,
                                   "datasetName": DATASET, "syncCount": 1}
        # The laptop's own writes reach the phone only for the dataset it watches, and never the
        # laptop itself.
        Device(laptop_sync, pool_id, identity, "other").update(patch("b", 0, "1"), device="laptop")
        Device(laptop_sync, pool_id, identity).update(patch("a", 1, "2"), device="laptop")
        assert push_of(phone) == {"source": "cognito-sync", "identityPoolId": pool_id, "identityId": identity,
                                  "datasetName": DATASET, "syncCount": 2}
        # A deletion is a change too; it names no device, so every watcher hears of it.
        phone_sync.delete_dataset(IdentityPoolId=pool_id, IdentityId=identity, DatasetName="other")
        assert push_of(laptop) == {"source": "cognito-sync", "identityPoolId": pool_id, "identityId": identity,
                                   "datasetName": "other", "syncCount": 2}
        # Another identity's changes reach neither.
        other, other_client = guest_device(server, pool_id)
        Device(other_client, pool_id, other).update(patch("z", 0, "1"), device="x")
        Device(phone_sync, pool_id, identity).update(patch("a", 2, "3"))
        assert push_of(laptop)["syncCount"] == 3 and push_of(phone)["syncCount"] == 3
    finally:
        phone.close()
        laptop.close()


def test_live_channel_refuses_what_the_api_refuses(server):
    pool_id = guest_pool(server)
    ann = public(server).get_id(IdentityPoolId=pool_id)["IdentityId"]
    ann_creds = credentials(server, ann)
    bob = public(server).get_id(IdentityPoolId=pool_id)["IdentityId"]
    bob_creds = credentials(server, bob)
    good = live_url(server, ann_creds, pool_id, ann, "d1")
    with connect(good, open_timeout=10):
        pass
    # Unsigned, signed by another identity, by the account's root, tampered, expired.
    unsigned = good.split("&X-Amz-Algorithm", 1)[0]
    assert live_refused(unsigned)[0] == 403
    assert live_refused(live_url(server, bob_creds, pool_id, ann, "d1")) == (
        403, f"Access to Identity '{ann}' is forbidden.")
    root_key, root_secret = server.root_credentials()
    root = {"AccessKeyId": root_key, "SecretKey": root_secret}
    assert live_refused(live_url(server, root, pool_id, ann, "d1"))[0] == 403
    signature = good.rsplit("X-Amz-Signature=", 1)[1]
    forged = good.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    assert live_refused(forged)[0] == 403
    brief = live_url(server, ann_creds, pool_id, ann, "d1", expires=1)
    time.sleep(2)
    assert live_refused(brief)[0] == 403
    # A bad dataset name, no device, and a plain GET that does not ask for a WebSocket.
    assert live_refused(live_url(server, ann_creds, pool_id, ann, "d1", ["bad name!"]))[0] == 400
    assert live_refused(live_url(server, ann_creds, pool_id, ann, ""))[0] == 400
    plain = requests.get(live_url(server, ann_creds, pool_id, ann, "d1", scheme="http"), timeout=10)
    assert (plain.status_code, plain.headers["x-amzn-ErrorType"]) == (400, "InvalidParameterException")

    # A role without cognito-sync:SubscribeToDataset may not watch.
    read_only = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "cognito-sync:ListRecords", "Resource": "*"}]}
    ci, narrow = identity_pool(server, [])
    ci.set_identity_pool_roles(IdentityPoolId=narrow, Roles={
        "unauthenticated": role(server, "Narrow", trust(narrow, "unauthenticated"), read_only)})
    guest = public(server).get_id(IdentityPoolId=narrow)["IdentityId"]
    status, message = live_refused(live_url(server, credentials(server, guest), narrow, guest, "d"))
    assert status == 403 and "cognito-sync:SubscribeToDataset" in message


def test_a_change_on_one_node_reaches_devices_on_another(postgres_url, tmp_path):
    key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpBQkNERUY="
    env = {"COGNATE_MASTER_KEY": key, "COGNATE_DATABASE_URL": postgres_url}
    a = Server(tmp_path / "a", env=env)
    try:
        b = Server(tmp_path / "b", env=env)
        try:
            pool_id = guest_pool(a)
            identity = public(a).get_id(IdentityPoolId=pool_id)["IdentityId"]
            on_b = credentials(a, identity)
            writer = as_session(a, "cognito-sync", credentials(a, identity))
            with connect(live_url(b, on_b, pool_id, identity, "tablet"), open_timeout=10) as tablet:
                with connect(live_url(a, on_b, pool_id, identity, "phone"), open_timeout=10) as phone:
                    Device(writer, pool_id, identity).update(patch("k", 0, "v"), device="phone")
                    assert push_of(tablet)["syncCount"] == 1
                    Device(writer, pool_id, identity).update(patch("k", 1, "w"), device="tablet")
                    # The phone, on the writing node, hears of the tablet's write once.
                    assert push_of(phone)["syncCount"] == 2
                    Device(writer, pool_id, identity).update(patch("k", 2, "x"))
                    assert push_of(phone)["syncCount"] == 3 and push_of(tablet)["syncCount"] == 3
        finally:
            b.stop()
    finally:
        a.stop()


class InvokeStandIn:
    """A Lambda Invoke API stand-in: records each call, answers as the function it names."""

    def __init__(self):
        import http.server

        outer = self
        self.calls = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                name = self.path.split("/")[3]
                outer.calls.append((name, {k.lower(): v for k, v in self.headers.items()}, json.loads(json.dumps(event))))
                status, headers, answer = outer.answer(name, event)
                body = json.dumps(answer).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @staticmethod
    def answer(name, event):
        records = event["datasetRecords"]
        if name == "award":
            if records.get("level", {}).get("newValue") == "10":
                records["award"] = {"newValue": "gold", "op": "replace"}
            if "banned" in records:
                records["banned"]["op"] = "remove"
            if "secret" in records:
                records["secret"]["newValue"] = None
            return 200, {}, event
        if name == "broken":
            return 200, {"X-Amz-Function-Error": "Unhandled"}, {"errorMessage": "boom", "errorType": "Error"}
        if name == "busy":
            return 429, {}, {"message": "Rate exceeded"}
        if name == "tamper":
            event["identityId"] = "us-east-1:00000000-0000-0000-0000-000000000000"
            return 200, {}, event
        if name == "slow":
            time.sleep(6)
        return 200, {}, event

    def stop(self):
        self.httpd.shutdown()


def test_sync_trigger_decides_what_identity_writes_store(tmp_path):
    functions = InvokeStandIn()
    server = Server(tmp_path / "data", extra_args=["--lambda-endpoint", functions.url])
    try:
        pool_id = guest_pool(server)
        identity, client = guest_device(server, pool_id)
        developer = server.client("cognito-sync")
        arn = lambda name: f"arn:aws:lambda:us-east-1:{server.account_id}:function:{name}"
        assert developer.get_cognito_events(IdentityPoolId=pool_id)["Events"] == {}
        developer.set_cognito_events(IdentityPoolId=pool_id, Events={"SyncTrigger": arn("award")})
        assert developer.get_cognito_events(IdentityPoolId=pool_id)["Events"] == {"SyncTrigger": arn("award")}

        device = Device(client, pool_id, identity)
        written = device.update(patch("level", 0, "10"), patch("banned", 0, "x"), patch("note", 0, "hi"))
        assert values(written) == {"level": ("10", 1), "award": ("gold", 1), "banned": (None, 1), "note": ("hi", 1)}
        name, headers, event = functions.calls[-1]
        assert name == "award"
        assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=cognate/")
        assert "/us-east-1/lambda/aws4_request" in headers["authorization"]
        assert headers["x-amz-invocation-type"] == "RequestResponse"
        assert event == {"version": 2, "eventType": "SyncTrigger", "region": "us-east-1", "identityPoolId": pool_id,
                         "identityId": identity, "datasetName": DATASET, "datasetRecords": {
                             "level": {"oldValue": None, "newValue": "10", "op": "replace"},
                             "banned": {"oldValue": None, "newValue": "x", "op": "replace"},
                             "note": {"oldValue": None, "newValue": "hi", "op": "replace"}}}
        # The function sees every record; what it leaves alone is not written again.
        written = device.update(patch("secret", 0, "s"), patch("note", 1, "hello"))
        assert values(written) == {"secret": (None, 2), "note": ("hello", 2)}
        seen = functions.calls[-1][2]["datasetRecords"]
        assert seen["award"] == {"oldValue": "gold", "newValue": "gold", "op": "replace"}
        assert seen["note"] == {"oldValue": "hi", "newValue": "hello", "op": "replace"}
        assert values(device.list()["Records"])["award"] == ("gold", 1)

        # Developer credentials do not run the trigger, as on AWS.
        calls = len(functions.calls)
        assert values(Device(developer, pool_id, identity).update(patch("banned", 1, "y"))) == {"banned": ("y", 3)}
        assert len(functions.calls) == calls

        # A function that fails, is throttled, changes what it may not, or is too slow: the
        # call is refused and nothing is written.
        for function, error in (("broken", ("InvalidLambdaFunctionOutputException", 400)),
                                ("busy", ("LambdaThrottledException", 429)),
                                ("tamper", ("InvalidLambdaFunctionOutputException", 400)),
                                ("slow", ("LambdaSocketTimeoutException", 400))):
            developer.set_cognito_events(IdentityPoolId=pool_id, Events={"SyncTrigger": arn(function)})
            (code, message) = refused(lambda: device.update(patch("note", 2, "lost")))
            assert code == error, (function, message)
            if function == "broken":
                assert "boom" in message
            assert device.list()["DatasetSyncCount"] == 3
        # An empty ARN removes the trigger.
        developer.set_cognito_events(IdentityPoolId=pool_id, Events={"SyncTrigger": ""})
        assert developer.get_cognito_events(IdentityPoolId=pool_id)["Events"] == {}
        assert values(device.update(patch("note", 2, "kept"))) == {"note": ("kept", 4)}

        # Only developer credentials configure events; only SyncTrigger and Lambda ARNs exist.
        assert refused(lambda: client.get_cognito_events(IdentityPoolId=pool_id))[0] == ("NotAuthorizedException", 403)
        for events in ({"Other": arn("award")}, {"SyncTrigger": "arn:aws:sns:us-east-1:1:topic"}):
            assert refused(lambda: developer.set_cognito_events(IdentityPoolId=pool_id, Events=events))[0] == (
                "InvalidParameterException", 400)
    finally:
        server.stop()
        functions.stop()


def test_events_need_somewhere_to_invoke_functions(server):
    pool_id = guest_pool(server)
    developer = server.client("cognito-sync")
    (code, message) = refused(lambda: developer.set_cognito_events(
        IdentityPoolId=pool_id, Events={"SyncTrigger": f"arn:aws:lambda:us-east-1:{server.account_id}:function:f"}))
    assert code == ("InvalidParameterException", 400) and "--lambda-endpoint" in message


def test_push_sync_tells_subscribed_devices_through_fcm(tmp_path):
    from test_sns import Apple, Firebase

    firebase, apple = Firebase(), Apple()
    server = Server(tmp_path / "data", extra_args=["--fcm-url", firebase.url, "--apns-sandbox-url", apple.url])
    try:
        # RegisterDevice is authorized on the identity, the rest on its datasets.
        own = (f"arn:aws:cognito-sync:us-east-1:{server.account_id}:identitypool/"
               "${cognito-identity.amazonaws.com:aud}/identity/${cognito-identity.amazonaws.com:sub}")
        pool_id = guest_pool(server, {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "cognito-sync:*", "Resource": [own, own + "/*"]}]})
        developer = server.client("cognito-sync")
        sns = server.client("sns")
        app = sns.create_platform_application(Name="sync", Platform="GCM",
                                              Attributes={"PlatformCredential": firebase.service_account})[
            "PlatformApplicationArn"]
        push_role = role(server, "SyncPush", json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "cognito-sync.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
        identity, phone_client = guest_device(server, pool_id)
        _, tablet_client = guest_device(server, pool_id, identity)
        # Not configured yet: devices cannot register.
        assert refused(lambda: phone_client.register_device(IdentityPoolId=pool_id, IdentityId=identity,
                                                            Platform="GCM", Token="phone-token"))[0] == (
            "InvalidConfigurationException", 400)
        unset = developer.get_identity_pool_configuration(IdentityPoolId=pool_id)
        unset.pop("ResponseMetadata")
        assert unset == {"IdentityPoolId": pool_id}
        ios_app = sns.create_platform_application(Name="sync-ios", Platform="APNS_SANDBOX", Attributes={
            "PlatformCredential": apple.p8, "PlatformPrincipal": "KEY123", "ApplePlatformTeamID": "TEAM42",
            "ApplePlatformBundleID": "com.example.app"})["PlatformApplicationArn"]
        configured = developer.set_identity_pool_configuration(
            IdentityPoolId=pool_id, PushSync={"ApplicationArns": [app, ios_app], "RoleArn": push_role})
        assert configured["PushSync"] == {"ApplicationArns": [app, ios_app], "RoleArn": push_role}
        assert developer.get_identity_pool_configuration(IdentityPoolId=pool_id)["PushSync"] == configured["PushSync"]
        assert refused(lambda: developer.set_identity_pool_configuration(
            IdentityPoolId=pool_id, PushSync={"ApplicationArns": [app + "-gone"]}))[0] == (
            "InvalidParameterException", 400)
        assert refused(lambda: phone_client.set_identity_pool_configuration(
            IdentityPoolId=pool_id, PushSync={"ApplicationArns": [app]}))[0] == ("NotAuthorizedException", 403)

        phone = phone_client.register_device(IdentityPoolId=pool_id, IdentityId=identity, Platform="GCM",
                                             Token="phone-token")["DeviceId"]
        tablet = tablet_client.register_device(IdentityPoolId=pool_id, IdentityId=identity, Platform="GCM",
                                               Token="tablet-token")["DeviceId"]
        assert phone != tablet
        assert phone_client.register_device(IdentityPoolId=pool_id, IdentityId=identity, Platform="GCM",
                                            Token="phone-token")["DeviceId"] == phone
        assert refused(lambda: phone_client.register_device(IdentityPoolId=pool_id, IdentityId=identity,
                                                            Platform="APNS", Token="ios"))[0] == (
            "InvalidConfigurationException", 400)
        assert refused(lambda: developer.register_device(IdentityPoolId=pool_id, IdentityId=identity, Platform="GCM",
                                                         Token="x"))[0] == ("NotAuthorizedException", 403)

        device = Device(phone_client, pool_id, identity)
        # A dataset is subscribed to once it exists.
        where = {"IdentityPoolId": pool_id, "IdentityId": identity, "DatasetName": DATASET}
        assert refused(lambda: phone_client.subscribe_to_dataset(**where, DeviceId=phone))[0] == (
            "ResourceNotFoundException", 404)
        device.update(patch("theme", 0, "dark"), device=phone)
        phone_client.subscribe_to_dataset(**where, DeviceId=phone)
        tablet_client.subscribe_to_dataset(**where, DeviceId=tablet)
        _, ipad_client = guest_device(server, pool_id, identity)
        ipad = ipad_client.register_device(IdentityPoolId=pool_id, IdentityId=identity, Platform="APNS_SANDBOX",
                                           Token="0a1b2c3d")["DeviceId"]
        ipad_client.subscribe_to_dataset(**where, DeviceId=ipad)
        # Another identity's device is no device of this identity.
        stranger, stranger_client = guest_device(server, pool_id)
        stranger_device = stranger_client.register_device(IdentityPoolId=pool_id, IdentityId=stranger,
                                                          Platform="GCM", Token="stranger-token")["DeviceId"]
        assert refused(lambda: phone_client.subscribe_to_dataset(**where, DeviceId=stranger_device))[0] == (
            "ResourceNotFoundException", 404)

        # The phone writes: the tablet hears of it, the phone does not.
        device.update(patch("theme", 1, "light"), device=phone)
        (message,) = firebase.wait_for(1)
        assert message == {"token": "tablet-token", "data": {
            "source": "cognito-sync", "identityPoolId": pool_id, "identityId": identity,
            "datasetName": DATASET, "syncCount": "2"}}
        # An iOS device gets a silent notification with the same keys under `data`.
        (notification,) = apple.wait_for(1)
        assert notification["device"] == "0a1b2c3d" and notification["push_type"] == "background"
        assert notification["body"] == {"aps": {"content-available": 1}, "data": message["data"]}
        ipad_client.unsubscribe_from_dataset(**where, DeviceId=ipad)
        # The tablet writes: the phone hears of it.
        Device(tablet_client, pool_id, identity).update(patch("theme", 2, "blue"), device=tablet)
        assert firebase.wait_for(2)[1] == {"token": "phone-token", "data": {
            "source": "cognito-sync", "identityPoolId": pool_id, "identityId": identity,
            "datasetName": DATASET, "syncCount": "3"}}
        # Unsubscribed, the tablet hears nothing more; the phone still does.
        tablet_client.unsubscribe_from_dataset(**where, DeviceId=tablet)
        device.update(patch("theme", 3, "red"), device=phone)
        Device(tablet_client, pool_id, identity).update(patch("theme", 4, "green"), device=tablet)
        messages = firebase.wait_for(3)
        assert [m["token"] for m in messages] == ["tablet-token", "phone-token", "phone-token"]
        assert messages[2]["data"]["syncCount"] == "5"
        assert len(apple.notifications) == 1
    finally:
        server.stop()
        firebase.stop()
        apple.stop()


def jetstream(nats_url, work):
    """Runs `work(js)` against NATS JetStream (nats-py), and returns what it returns."""
    import asyncio

    import nats

    async def run():
        nc = await nats.connect(nats_url)
        try:
            return await work(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(run())


def stream_records(nats_url, stream, count):
    """The first `count` records on a stream (waiting for them to arrive)."""
    async def read(js):
        for _ in range(200):
            info = await js.stream_info(stream)
            if info.state.messages >= count:
                break
            import asyncio
            await asyncio.sleep(0.05)
        return [json.loads((await js.get_msg(stream, seq)).data) for seq in range(1, count + 1)]

    return jetstream(nats_url, read)


def test_cognito_streams_publish_every_sync_to_jetstream(tmp_path, nats_url):
    import uuid

    name = "SYNC_" + uuid.uuid4().hex
    subject = "cognito-sync." + name

    async def create(js):
        await js.add_stream(name=name, subjects=[subject])

    jetstream(nats_url, create)
    server = Server(tmp_path / "data", extra_args=["--nats-url", nats_url])
    try:
        pool_id = guest_pool(server)
        developer = server.client("cognito-sync")
        publisher = role(server, "StreamsPublisher", json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "cognito-sync.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
        (code, message) = refused(lambda: developer.set_identity_pool_configuration(
            IdentityPoolId=pool_id, CognitoStreams={"StreamName": "NO_SUCH_" + name, "RoleArn": publisher,
                                                    "StreamingStatus": "ENABLED"}))
        assert code == ("InvalidParameterException", 400) and "NO_SUCH_" in message
        assert refused(lambda: developer.bulk_publish(IdentityPoolId=pool_id))[0] == ("InvalidParameterException", 400)
        streams = {"StreamName": name, "RoleArn": publisher, "StreamingStatus": "ENABLED"}
        assert developer.set_identity_pool_configuration(IdentityPoolId=pool_id,
                                                         CognitoStreams=streams)["CognitoStreams"] == streams

        identity, client = guest_device(server, pool_id)
        device = Device(client, pool_id, identity)
        device.update(patch("level", 0, "1"), patch("name", 0, "ann"))
        device.update(patch("name", 1))
        client.delete_dataset(IdentityPoolId=pool_id, IdentityId=identity, DatasetName=DATASET)
        Device(client, pool_id, identity, "scores").update(patch("best", 0, "9"))
        first, second, deleted, scores = stream_records(nats_url, name, 4)
        assert set(first) == {"identityPoolId", "identityId", "dataSetName", "operation", "kinesisSyncRecords",
                              "lastModifiedDate", "payloadType", "syncCount"}
        assert (first["identityPoolId"], first["identityId"], first["dataSetName"]) == (pool_id, identity, DATASET)
        assert (first["operation"], first["payloadType"], first["syncCount"]) == ("replace", "Inline", 1)
        assert sorted((r["key"], r["value"], r["syncCount"], r["op"]) for r in first["kinesisSyncRecords"]) == [
            ("level", "1", 1, "replace"), ("name", "ann", 1, "replace")]
        assert all(isinstance(r["lastModifiedDate"], int) for r in first["kinesisSyncRecords"])
        assert [(r["key"], r["value"], r["op"]) for r in second["kinesisSyncRecords"]] == [("name", None, "remove")]
        assert (deleted["operation"], deleted["syncCount"], deleted["kinesisSyncRecords"]) == ("remove", 3, [])
        assert scores["dataSetName"] == "scores"

        # Bulk publish: every live dataset once, then not again within 24 hours.
        assert developer.get_bulk_publish_details(IdentityPoolId=pool_id)["BulkPublishStatus"] == "NOT_STARTED"
        assert developer.bulk_publish(IdentityPoolId=pool_id)["IdentityPoolId"] == pool_id
        for _ in range(200):
            details = developer.get_bulk_publish_details(IdentityPoolId=pool_id)
            if details["BulkPublishStatus"] != "IN_PROGRESS":
                break
            time.sleep(0.05)
        assert details["BulkPublishStatus"] == "SUCCEEDED", details
        assert details["BulkPublishCompleteTime"] >= details["BulkPublishStartTime"]
        bulk = stream_records(nats_url, name, 5)[4]
        assert (bulk["dataSetName"], bulk["operation"]) == ("scores", "replace")
        assert [(r["key"], r["value"]) for r in bulk["kinesisSyncRecords"]] == [("best", "9")]
        assert refused(lambda: developer.bulk_publish(IdentityPoolId=pool_id))[0] == ("AlreadyStreamedException", 400)
        assert refused(lambda: client.bulk_publish(IdentityPoolId=pool_id))[0] == ("NotAuthorizedException", 403)
    finally:
        server.stop()

        async def drop(js):
            await js.delete_stream(name)

        jetstream(nats_url, drop)


def test_streams_need_a_nats_server(server):
    pool_id = guest_pool(server)
    (code, message) = refused(lambda: server.client("cognito-sync").set_identity_pool_configuration(
        IdentityPoolId=pool_id, CognitoStreams={"StreamName": "S", "StreamingStatus": "ENABLED"}))
    assert code == ("InvalidParameterException", 400) and "--nats-url" in message


def test_configuring_roles_needs_pass_role(server):
    pool_id = guest_pool(server)
    target = role(server, "SyncService", json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "cognito-sync.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam = server.client("iam")
    iam.create_user(UserName="syncadmin")
    iam.put_user_policy(UserName="syncadmin", PolicyName="sync", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "cognito-sync:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="syncadmin")["AccessKey"]
    admin = server.client("cognito-sync", key["AccessKeyId"], key["SecretAccessKey"])
    # Without iam:PassRole neither role can be handed to Cognito Sync.
    for config in ({"PushSync": {"ApplicationArns": [], "RoleArn": target}},
                   {"CognitoStreams": {"StreamName": "S", "RoleArn": target, "StreamingStatus": "DISABLED"}}):
        assert refused(lambda: admin.set_identity_pool_configuration(IdentityPoolId=pool_id, **config)) == (
            ("NotAuthorizedException", 403), f"Access to Role '{target}' is forbidden.")
    iam.put_user_policy(UserName="syncadmin", PolicyName="pass", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": target,
                                                "Condition": {"StringEquals": {
                                                    "iam:PassedToService": "cognito-sync.amazonaws.com"}}}]}))
    out = admin.set_identity_pool_configuration(
        IdentityPoolId=pool_id, CognitoStreams={"StreamName": "S", "RoleArn": target, "StreamingStatus": "DISABLED"})
    assert out["CognitoStreams"]["RoleArn"] == target
