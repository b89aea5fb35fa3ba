"""Prepares the user pool benchmark: a pool, an app client and a confirmed user; writes wrk
Lua scripts for InitiateAuth (USER_PASSWORD_AUTH) and GetUser (with an access token).

usage: userpool_setup.py ENDPOINT CREDENTIALS_FILE OUT_DIR
"""

import configparser
import json
import os
import sys

import boto3

endpoint, credentials_file, out = sys.argv[1:4]
parser = configparser.ConfigParser()
parser.read(credentials_file)
section = parser["default"]
idp = boto3.client("cognito-idp", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id=section["aws_access_key_id"],
                   aws_secret_access_key=section["aws_secret_access_key"])
pool = idp.create_user_pool(PoolName="bench")["UserPool"]["Id"]
client = idp.create_user_pool_client(UserPoolId=pool, ClientName="bench",
                                     ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
idp.admin_create_user(UserPoolId=pool, Username="bench", MessageAction="SUPPRESS", TemporaryPassword="Temp-Pass-1")
idp.admin_set_user_password(UserPoolId=pool, Username="bench", Password="Correct-Horse-9", Permanent=True)
sign_in = {"ClientId": client, "AuthFlow": "USER_PASSWORD_AUTH",
           "AuthParameters": {"USERNAME": "bench", "PASSWORD": "Correct-Horse-9"}}
tokens = idp.initiate_auth(**sign_in)["AuthenticationResult"]


def lua(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def script(name, target, body):
    with open(os.path.join(out, name), "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {lua(json.dumps(body))}\n")
        f.write('wrk.headers["Content-Type"] = "application/x-amz-json-1.1"\n')
        f.write(f'wrk.headers["X-Amz-Target"] = "AWSCognitoIdentityProviderService.{target}"\n')
        f.write("""
done = function(summary, latency, requests)
  io.write(string.format("p50_us=%d p99_us=%d rps=%.0f errors=%d\\n",
    latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.errors.status))
end
""")


script("initiate.lua", "InitiateAuth", sign_in)
script("getuser.lua", "GetUser", {"AccessToken": tokens["AccessToken"]})
