"""Prepares the user pool benchmark: a pool, an app client and a confirmed user; writes wrk
Lua scripts for InitiateAuth (USER_PASSWORD_AUTH) and GetUser (with an access token).

usage: userpool_setup.py ENDPOINT CREDENTIALS_FILE OUT_DIR
"""

import configparser
import sys

import boto3

from wrk_script import json_call, json_calls

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
# Many users, as a real pool has: a user's own concurrent password checks are capped (at five
# per node, what bounds guessing), so one user signing in from 64 connections is a brute-force
# pattern, not a load.
sign_ins = []
for i in range(64):
    name = f"bench{i}"
    idp.admin_create_user(UserPoolId=pool, Username=name, MessageAction="SUPPRESS", TemporaryPassword="Temp-Pass-1")
    idp.admin_set_user_password(UserPoolId=pool, Username=name, Password="Correct-Horse-9", Permanent=True)
    sign_ins.append({"ClientId": client, "AuthFlow": "USER_PASSWORD_AUTH",
                     "AuthParameters": {"USERNAME": name, "PASSWORD": "Correct-Horse-9"}})
tokens = idp.initiate_auth(**sign_ins[0])["AuthenticationResult"]

json_calls(out, "initiate.lua", "AWSCognitoIdentityProviderService.InitiateAuth", sign_ins)
json_call(out, "getuser.lua", "AWSCognitoIdentityProviderService.GetUser", {"AccessToken": tokens["AccessToken"]})
