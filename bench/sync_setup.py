"""Prepares the Cognito Sync UpdateRecords benchmark: an identity pool whose guests may sync,
IDENTITIES guest identities with a session token for each of their 20 datasets, and COUNT
UpdateRecords requests signed in advance (developer credentials, one new record each, sync
count 0, so they succeed in any order), spread over the datasets. Writes them one per line
(CR LF as \\x01) to OUT_DIR/requests and a wrk Lua script, OUT_DIR/update.lua, in which each
wrk thread sends its share of them once (the thread count is the script's argument).

A signature stays valid for 15 minutes, so signing beforehand measures the server's whole
verification on every request; each request is a different write, as devices make them.

usage: sync_setup.py ENDPOINT CREDENTIALS_FILE OUT_DIR COUNT [IDENTITIES]
"""

import configparser
import json
import os
import sys
import urllib.parse
import uuid

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from wrk_script import lua

endpoint, credentials_file, out, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
identities = int(sys.argv[5]) if len(sys.argv) > 5 else 4
parser = configparser.ConfigParser()
parser.read(credentials_file)
section = parser["default"]
key, secret = section["aws_access_key_id"], section["aws_secret_access_key"]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret,
          config=Config(retries={"max_attempts": 1}))
ci, iam, sync = (boto3.client(s, **kw) for s in ("cognito-identity", "iam", "cognito-sync"))
pool = ci.create_identity_pool(IdentityPoolName="bench" + uuid.uuid4().hex[:8],
                               AllowUnauthenticatedIdentities=True)["IdentityPoolId"]
trust = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Federated": "cognito-identity.amazonaws.com"},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": pool},
                  "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "unauthenticated"}}}]}
name = "BenchSync" + uuid.uuid4().hex[:8]
role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
iam.put_role_policy(RoleName=name, PolicyName="sync", PolicyDocument=json.dumps({
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "cognito-sync:*", "Resource": "*"}]}))
ci.set_identity_pool_roles(IdentityPoolId=pool, Roles={"unauthenticated": role})

targets = []
for _ in range(identities):
    identity = ci.get_id(IdentityPoolId=pool)["IdentityId"]
    for d in range(20):
        dataset = f"d{d}"
        token = sync.list_records(IdentityPoolId=pool, IdentityId=identity, DatasetName=dataset)["SyncSessionToken"]
        targets.append((identity, dataset, token))
if count > len(targets) * 1000:
    sys.exit(f"{count} requests need more than {identities} identities")

signer = SigV4Auth(Credentials(key, secret), "cognito-sync", "us-east-1")
host = urllib.parse.urlsplit(endpoint).netloc
with open(os.path.join(out, "requests"), "w") as f:
    for i in range(count):
        identity, dataset, token = targets[i % len(targets)]
        path = (f"/identitypools/{urllib.parse.quote(pool, safe='')}/identities/"
                f"{urllib.parse.quote(identity, safe='')}/datasets/{dataset}")
        body = json.dumps({"DeviceId": "bench", "SyncSessionToken": token,
                           "RecordPatches": [{"Op": "replace", "Key": f"k{i}", "Value": "v" * 32, "SyncCount": 0}]})
        request = AWSRequest(method="POST", url=endpoint.rstrip("/") + path, data=body,
                             headers={"Content-Type": "application/json"})
        signer.add_auth(request)
        head = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() not in ("host", "content-length")]
        f.write("\x01".join(head) + "\x01\x01" + body + "\n")

with open(os.path.join(out, "update.lua"), "w") as f:
    f.write(f"local file = {lua(os.path.join(out, 'requests'))}\n")
    f.write("""
local counter = 0
function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
end
function init(args)
  local threads = tonumber(args[1]) or 1
  requests = {}
  local n = 0
  for line in io.lines(file) do
    if n % threads == index then
      table.insert(requests, (line:gsub("\\1", "\\r\\n")))
    end
    n = n + 1
  end
  next_request = 0
end
function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end
done = function(summary, latency, requests)
  io.write(string.format("p50_us=%d p99_us=%d rps=%.0f errors=%d\\n",
    latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.errors.status))
end
""")
print(pool)
