"""A loopback OpenID Connect issuer for the AssumeRoleWithWebIdentity benchmark.

Registers itself as an IAM OIDC provider and a role that trusts it, writes a wrk script that
replays one (unsigned) AssumeRoleWithWebIdentity request with a 1-hour token, then serves its
discovery document and JWKS until killed.

usage: oidc_issuer.py ENDPOINT CREDENTIALS_FILE SCRIPT_PATH
"""

import configparser
import http.server
import json
import sys
import threading
import time
import urllib.parse

import boto3
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

endpoint, credentials_file, script_path = sys.argv[1:4]
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
jwk.update(kid="bench", alg="RS256", use="sig")


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = {"issuer": issuer, "jwks_uri": issuer + "/jwks"} if self.path.endswith("openid-configuration") else {"keys": [jwk]}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
issuer = f"http://127.0.0.1:{httpd.server_address[1]}/bench-issuer"
threading.Thread(target=httpd.serve_forever, daemon=True).start()

c = configparser.ConfigParser()
c.read(credentials_file)
d = c["default"]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=d["aws_access_key_id"], aws_secret_access_key=d["aws_secret_access_key"])
iam = boto3.client("iam", **kw)
provider = iam.create_open_id_connect_provider(Url=issuer, ClientIDList=["bench-app"], ThumbprintList=["0" * 40])["OpenIDConnectProviderArn"]
name = issuer.split("://", 1)[1]
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": provider},
         "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {"StringEquals": {f"{name}:aud": "bench-app"}}}]}
role = iam.create_role(RoleName="BenchWeb", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
now = int(time.time())
token = jwt.encode({"iss": issuer, "sub": "bench-user", "aud": "bench-app", "iat": now, "exp": now + 3600}, key, algorithm="RS256", headers={"kid": "bench"})
body = urllib.parse.urlencode([("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", role),
                               ("RoleSessionName", "bench"), ("WebIdentityToken", token)])
with open(script_path, "w") as f:
    f.write('wrk.method = "POST"\n')
    f.write(f"wrk.body = {json.dumps(body)}\n")
    f.write('wrk.headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"\n')
    f.write('''done = function(summary, latency, requests)
  io.write(string.format("p50_us=%d p99_us=%d rps=%.0f errors=%d\\n",
    latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.errors.status))
end
''')
print("ready", flush=True)
while True:
    time.sleep(3600)
