"""Prepares the S3 benchmark: a bucket with a 4 KiB object, a wrk Lua script replaying one
signed GetObject of it, and presigned PUT/GET URLs for a large object.

usage: s3_setup.py ENDPOINT CREDENTIALS_FILE OUT_DIR
writes OUT_DIR/get.lua, OUT_DIR/put_url, OUT_DIR/get_url
"""

import configparser
import os
import sys

import boto3
import botocore.config
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from wrk_script import SUMMARY, lua

endpoint, credentials_file, out = sys.argv[1:4]
parser = configparser.ConfigParser()
parser.read(credentials_file)
section = parser["default"]
key_id, secret = section["aws_access_key_id"], section["aws_secret_access_key"]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key_id,
                  aws_secret_access_key=secret,
                  config=botocore.config.Config(signature_version="s3v4", s3={"addressing_style": "path"}))
s3.create_bucket(Bucket="bench")
s3.put_object(Bucket="bench", Key="small/4k.bin", Body=os.urandom(4096))

# One signed GET, replayed (SigV4 signatures stay valid for 15 minutes).
request = AWSRequest(method="GET", url=f"{endpoint.rstrip('/')}/bench/small/4k.bin")
S3SigV4Auth(Credentials(key_id, secret), "s3", "us-east-1").add_auth(request)


with open(os.path.join(out, "get.lua"), "w") as f:
    f.write('wrk.method = "GET"\nwrk.path = "/bench/small/4k.bin"\n')
    for name, value in request.headers.items():
        if name.lower() != "host":
            f.write(f"wrk.headers[{lua(name)}] = {lua(value)}\n")
    f.write(SUMMARY)
for name, method in [("put_url", "put_object"), ("get_url", "get_object")]:
    url = s3.generate_presigned_url(method, Params={"Bucket": "bench", "Key": "large.bin"}, ExpiresIn=3600)
    with open(os.path.join(out, name), "w") as f:
        f.write(url)
