"""Prepares the identity pool benchmark: a user pool with a signed-in user, an identity pool
trusting it, an authenticated role; writes wrk Lua scripts for GetCredentialsForIdentity and
GetId with the user's ID token.

usage: identitypool_setup.py ENDPOINT CREDENTIALS_FILE OUT_DIR
"""

import configparser
import json
import sys

import boto3

from wrk_script import json_call

endpoint, credentials_file, out = sys.argv[1:4]
parser = configparser.ConfigParser()
parser.read(credentials_file)
section = parser["default"]
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id=section["aws_access_key_id"], aws_secret_access_key=section["aws_secret_access_key"])
idp, ci, iam = (boto3.client(s, **kw) for s in ("cognito-idp", "cognito-identity", "iam"))
pool = idp.create_user_pool(PoolName="bench")["UserPool"]["Id"]
client = idp.create_user_pool_client(UserPoolId=pool, ClientName="bench",
                                     ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
idp.admin_create_user(UserPoolId=pool, Username="bench", MessageAction="SUPPRESS", TemporaryPassword="Temp-Pass-1")
idp.admin_set_user_password(UserPoolId=pool, Username="bench", Password="Correct-Horse-9", Permanent=True)
token = idp.initiate_auth(ClientId=client, AuthFlow="USER_PASSWORD_AUTH",
                          AuthParameters={"USERNAME": "bench", "PASSWORD": "Correct-Horse-9"})["AuthenticationResult"]["IdToken"]
provider = f"cognito-idp.us-east-1.amazonaws.com/{pool}"
identity_pool = ci.create_identity_pool(IdentityPoolName="bench", AllowUnauthenticatedIdentities=False,
                                        CognitoIdentityProviders=[{"ProviderName": provider, "ClientId": client}])["IdentityPoolId"]
trust = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Federated": "cognito-identity.amazonaws.com"}, "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": identity_pool},
                  "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"}}}]}
role = iam.create_role(RoleName="BenchAuth", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
ci.set_identity_pool_roles(IdentityPoolId=identity_pool, Roles={"authenticated": role})
logins = {provider: token}
identity = ci.get_id(IdentityPoolId=identity_pool, Logins=logins)["IdentityId"]

json_call(out, "credentials.lua", "AWSCognitoIdentityService.GetCredentialsForIdentity", {"IdentityId": identity, "Logins": logins})
json_call(out, "getid.lua", "AWSCognitoIdentityService.GetId", {"IdentityPoolId": identity_pool, "Logins": logins})
