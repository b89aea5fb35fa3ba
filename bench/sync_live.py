"""Cognito Sync live channel measurements against a running server.

latency: one identity with two live channels ("watcher" and "writer"); the writer's device
  writes SAMPLES times (one UpdateRecords each, a new record each, PACE seconds apart) and the
  time from sending the write to the watcher's push is recorded. Prints p50/p99/max in ms.
idle: opens COUNT live channels of one identity (one presigned URL, valid for all of them),
  holds them, and prints the server's RSS (from /proc) before and with them open.

usage: sync_live.py ENDPOINT CREDENTIALS_FILE latency SAMPLES PACE
       sync_live.py ENDPOINT CREDENTIALS_FILE idle COUNT PID
"""

import asyncio
import configparser
import json
import statistics
import sys
import time
import urllib.parse
import uuid

import boto3
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from websockets.asyncio.client import connect

endpoint, credentials_file, mode = sys.argv[1:4]
parser = configparser.ConfigParser()
parser.read(credentials_file)
section = parser["default"]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=section["aws_access_key_id"],
          aws_secret_access_key=section["aws_secret_access_key"], config=Config(retries={"max_attempts": 1}))
ci, iam = boto3.client("cognito-identity", **kw), boto3.client("iam", **kw)
pool = ci.create_identity_pool(IdentityPoolName="live" + uuid.uuid4().hex[:8],
                               AllowUnauthenticatedIdentities=True)["IdentityPoolId"]
name = "LiveSync" + uuid.uuid4().hex[:8]
role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Federated": "cognito-identity.amazonaws.com"},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": pool}}}]}))["Role"]["Arn"]
iam.put_role_policy(RoleName=name, PolicyName="sync", PolicyDocument=json.dumps({
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "cognito-sync:*", "Resource": "*"}]}))
ci.set_identity_pool_roles(IdentityPoolId=pool, Roles={"unauthenticated": role})
identity = ci.get_id(IdentityPoolId=pool)["IdentityId"]
c = ci.get_credentials_for_identity(IdentityId=identity)["Credentials"]


def live_url(device):
    query = urllib.parse.urlencode([("IdentityPoolId", pool), ("IdentityId", identity), ("DeviceId", device)])
    request = AWSRequest(method="GET", url=f"{endpoint.rstrip('/')}/_cognate/sync/live?{query}")
    SigV4QueryAuth(Credentials(c["AccessKeyId"], c["SecretKey"], c["SessionToken"]), "cognito-sync", "us-east-1",
                   expires=3600).add_auth(request)
    return request.url.replace("http://", "ws://", 1)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


async def latency(samples, pace):
    sync = boto3.client("cognito-sync", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretKey"],
                        aws_session_token=c["SessionToken"], config=Config(retries={"max_attempts": 1}))
    where = {"IdentityPoolId": pool, "IdentityId": identity, "DatasetName": "live"}
    token = sync.list_records(**where)["SyncSessionToken"]
    times = []
    async with connect(live_url("watcher")) as watcher:
        loop = asyncio.get_running_loop()
        for i in range(samples):
            sent = time.perf_counter()
            write = loop.run_in_executor(None, lambda i=i: sync.update_records(
                **where, DeviceId="writer", SyncSessionToken=token,
                RecordPatches=[{"Op": "replace", "Key": f"k{i}", "Value": "v", "SyncCount": 0}]))
            json.loads(await asyncio.wait_for(watcher.recv(), 30))
            times.append((time.perf_counter() - sent) * 1000)
            await write
            await asyncio.sleep(pace)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"write-to-push samples={len(times)} p50_ms={statistics.median(times):.1f} p99_ms={p99:.1f} "
          f"max_ms={times[-1]:.1f}")


async def idle(count, pid):
    url = live_url("idle")
    before = rss_kib(pid)
    channels = []
    opening = asyncio.Semaphore(100)

    async def open_one():
        async with opening:
            channels.append(await connect(url, open_timeout=60, ping_interval=None))

    await asyncio.gather(*(open_one() for _ in range(count)))
    await asyncio.sleep(2)
    during = rss_kib(pid)
    print(f"idle live channels={len(channels)} server_rss_before_mib={before / 1024:.1f} "
          f"server_rss_open_mib={during / 1024:.1f} per_channel_kib={(during - before) / max(1, len(channels)):.1f}")
    await asyncio.gather(*(ch.close() for ch in channels))


if mode == "latency":
    asyncio.run(latency(int(sys.argv[4]), float(sys.argv[5])))
else:
    asyncio.run(idle(int(sys.argv[4]), int(sys.argv[5])))
