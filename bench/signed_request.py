"""Writes a wrk Lua script that replays one SigV4-signed STS request.

A SigV4 signature stays valid for 15 minutes and AWS accepts it repeatedly, so replaying one
signed request measures exactly what a stream of freshly signed ones costs the server: the
whole canonical-request rebuild and HMAC check runs on every request.

usage: signed_request.py ENDPOINT CREDENTIALS_FILE ACTION [Name=Value ...] > script.lua
"""

import configparser
import sys
import urllib.parse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from wrk_script import SUMMARY, lua

endpoint, credentials_file, action = sys.argv[1:4]
extra = [arg.split("=", 1) for arg in sys.argv[4:]]
parser = configparser.ConfigParser()
parser.read(credentials_file)
section = parser["default"]
body = urllib.parse.urlencode([("Action", action), ("Version", "2011-06-15"), *extra])
request = AWSRequest(
    method="POST",
    url=endpoint,
    data=body,
    headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
)
SigV4Auth(Credentials(section["aws_access_key_id"], section["aws_secret_access_key"]), "sts", "us-east-1").add_auth(request)


print('wrk.method = "POST"')
print(f"wrk.body = {lua(body)}")
for name, value in request.headers.items():
    if name.lower() != "host":
        print(f"wrk.headers[{lua(name)}] = {lua(value)}")
print(SUMMARY)
