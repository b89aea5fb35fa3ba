"""The SNS mobile-push subset with boto3: platform applications with a Firebase service
account key, endpoints, and Publish delivered through FCM's HTTP v1 API to a local stand-in
(OAuth token from the key's own token_uri, checked), with AWS's errors."""

import http.server
import json
import threading
import time

import botocore.exceptions
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import Server
from test_sts import error_of


class Firebase:
    """FCM's token endpoint and send API: checks the assertion, records each message, and
    answers UNREGISTERED for the token `dead-token`."""

    def __init__(self):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = key.public_key()
        self.messages = []
        self.assertions = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/token":
                    from urllib.parse import parse_qs
                    form = parse_qs(body.decode())
                    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
                    claims = jwt.decode(form["assertion"][0], outer.public_key, algorithms=["RS256"],
                                        audience=outer.token_uri)
                    outer.assertions.append((jwt.get_unverified_header(form["assertion"][0]), claims))
                    return self.reply(200, {"access_token": "ya29.stand-in", "expires_in": 3599,
                                            "token_type": "Bearer"})
                if self.path == "/v1/projects/demo-project/messages:send":
                    if self.headers["Authorization"] != "Bearer ya29.stand-in":
                        return self.reply(401, {"error": {"status": "UNAUTHENTICATED"}})
                    message = json.loads(body)["message"]
                    if message["token"] == "dead-token":
                        return self.reply(404, {"error": {"code": 404, "status": "NOT_FOUND", "details": [
                            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                             "errorCode": "UNREGISTERED"}]}})
                    outer.messages.append(message)
                    return self.reply(200, {"name": "projects/demo-project/messages/1"})
                self.reply(404, {})

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.token_uri = f"{self.url}/token"
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        self.service_account = json.dumps({
            "type": "service_account", "project_id": "demo-project", "private_key_id": "key-1",
            "private_key": pem, "client_email": "push@demo-project.iam.gserviceaccount.com",
            "token_uri": self.token_uri})
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, count):
        for _ in range(200):
            if len(self.messages) >= count:
                return self.messages
            time.sleep(0.05)
        raise AssertionError(f"FCM got {len(self.messages)} messages, not {count}")

    def stop(self):
        self.httpd.shutdown()


@pytest.fixture
def firebase():
    f = Firebase()
    yield f
    f.stop()


@pytest.fixture
def pushing(tmp_path, firebase):
    s = Server(tmp_path / "data", extra_args=["--fcm-url", firebase.url])
    try:
        yield s
    finally:
        s.stop()


def refused(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return error_of(e), e.value.response["Error"]["Message"]


def test_applications_endpoints_and_publish_through_fcm(pushing, firebase):
    server = pushing
    sns = server.client("sns")
    key = firebase.service_account
    app = sns.create_platform_application(Name="demo", Platform="GCM",
                                          Attributes={"PlatformCredential": key})["PlatformApplicationArn"]
    assert app == f"arn:aws:sns:us-east-1:{server.account_id}:app/GCM/demo"
    # The same application again is the same one; with other properties it is refused.
    assert sns.create_platform_application(Name="demo", Platform="GCM",
                                           Attributes={"PlatformCredential": key})["PlatformApplicationArn"] == app
    other_key = key.replace("key-1", "key-2")
    assert refused(lambda: sns.create_platform_application(
        Name="demo", Platform="GCM", Attributes={"PlatformCredential": other_key})) == (
        ("InvalidParameter", 400),
        "Invalid parameter: Name Reason: An application with the same name but different properties already exists")
    assert refused(lambda: sns.create_platform_application(
        Name="legacy", Platform="GCM", Attributes={"PlatformCredential": "AIzaSyLegacyServerKey"})) == (
        ("InvalidParameter", 400), "Invalid parameter: Attributes Reason: Platform credentials are invalid")
    assert refused(lambda: sns.create_platform_application(
        Name="kindle", Platform="ADM", Attributes={"PlatformCredential": "x"}))[0] == ("InvalidParameter", 400)
    # The credential is never given back.
    attributes = sns.get_platform_application_attributes(PlatformApplicationArn=app)["Attributes"]
    assert attributes == {"Enabled": "true", "AuthenticationMethod": "Token"}
    listed = sns.list_platform_applications()["PlatformApplications"]
    assert [a["PlatformApplicationArn"] for a in listed] == [app]
    assert "PlatformCredential" not in json.dumps(listed)

    phone = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="phone-token")["EndpointArn"]
    assert phone.startswith(f"arn:aws:sns:us-east-1:{server.account_id}:endpoint/GCM/demo/")
    assert sns.create_platform_endpoint(PlatformApplicationArn=app, Token="phone-token")["EndpointArn"] == phone
    assert refused(lambda: sns.create_platform_endpoint(PlatformApplicationArn=app, Token="phone-token",
                                                        CustomUserData="ann")) == (
        ("InvalidParameter", 400),
        f"Invalid parameter: Token Reason: Endpoint {phone} already exists with the same Token, but different attributes.")
    assert sns.get_endpoint_attributes(EndpointArn=phone)["Attributes"] == {"Enabled": "true", "Token": "phone-token"}
    assert refused(lambda: sns.create_platform_endpoint(
        PlatformApplicationArn=app + "x", Token="t")) == (("NotFound", 404), "PlatformApplication does not exist")

    # Publish: the GCM entry's data reaches FCM as string values, addressed to the token.
    sns.publish(TargetArn=phone, MessageStructure="json",
                Message=json.dumps({"GCM": json.dumps({"data": {"level": 3, "name": "ann"}})}))
    sns.publish(TargetArn=phone, Message="plain words")
    messages = firebase.wait_for(2)
    assert {"token": "phone-token", "data": {"level": "3", "name": "ann"}} in messages
    assert {"token": "phone-token", "data": {"default": "plain words"}} in messages
    header, claims = firebase.assertions[0]
    assert header == {"alg": "RS256", "typ": "JWT", "kid": "key-1"}
    assert claims["iss"] == "push@demo-project.iam.gserviceaccount.com"
    assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert claims["exp"] - claims["iat"] == 3600
    assert len(firebase.assertions) == 1, "the access token is reused"
    assert refused(lambda: sns.publish(TargetArn=phone, MessageStructure="json", Message="{nope")) == (
        ("InvalidParameter", 400), "Invalid parameter: Message Structure - JSON message body failed to parse")
    assert refused(lambda: sns.publish(TargetArn=phone, MessageStructure="json",
                                       Message=json.dumps({"APNS": "{}"}))) == (
        ("InvalidParameter", 400), "Invalid parameter: JSON must contain an entry for 'default' or 'GCM'.")

    # A token FCM no longer knows disables its endpoint; then Publish is refused.
    dead = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="dead-token")["EndpointArn"]
    sns.publish(TargetArn=dead, Message="hello?")
    for _ in range(200):
        if sns.get_endpoint_attributes(EndpointArn=dead)["Attributes"]["Enabled"] == "false":
            break
        time.sleep(0.05)
    assert sns.get_endpoint_attributes(EndpointArn=dead)["Attributes"]["Enabled"] == "false"
    assert refused(lambda: sns.publish(TargetArn=dead, Message="again")) == (
        ("EndpointDisabled", 400), "Endpoint is disabled")
    sns.set_endpoint_attributes(EndpointArn=dead, Attributes={"Enabled": "true", "Token": "new-token"})
    assert sns.get_endpoint_attributes(EndpointArn=dead)["Attributes"] == {"Enabled": "true", "Token": "new-token"}
    endpoints = sns.list_endpoints_by_platform_application(PlatformApplicationArn=app)["Endpoints"]
    assert sorted(e["EndpointArn"] for e in endpoints) == sorted([phone, dead])

    # Deleting is idempotent; what is gone is not found.
    sns.delete_endpoint(EndpointArn=dead)
    sns.delete_endpoint(EndpointArn=dead)
    assert refused(lambda: sns.get_endpoint_attributes(EndpointArn=dead)) == (("NotFound", 404),
                                                                             "Endpoint does not exist")
    assert refused(lambda: sns.publish(TargetArn=dead, Message="x")) == (
        ("InvalidParameter", 400), "Invalid parameter: TargetArn Reason: No endpoint found for the target arn specified")
    sns.delete_platform_application(PlatformApplicationArn=app)
    assert refused(lambda: sns.get_endpoint_attributes(EndpointArn=phone))[0] == ("NotFound", 404)
    assert sns.list_platform_applications()["PlatformApplications"] == []


def test_iam_decides_and_topics_are_not_here(pushing, firebase):
    server = pushing
    iam = server.client("iam")
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    nobody = server.client("sns", key["AccessKeyId"], key["SecretAccessKey"])
    (code, message) = refused(lambda: nobody.list_platform_applications())
    assert code == ("AuthorizationError", 403) and "sns:ListPlatformApplications" in message
    # Another account's application does not exist for this one.
    app = server.client("sns").create_platform_application(
        Name="mine", Platform="GCM", Attributes={"PlatformCredential": firebase.service_account})["PlatformApplicationArn"]
    orgs = server.client("organizations")
    orgs.create_organization(FeatureSet="ALL")
    member = orgs.create_account(Email="m@example.com", AccountName="member")["CreateAccountStatus"]["AccountId"]
    creds = server.admin("sts").assume_role(RoleArn=f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole",
                                            RoleSessionName="stranger")["Credentials"]
    stranger = server.client("sns", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert refused(lambda: stranger.get_platform_application_attributes(PlatformApplicationArn=app))[0] == (
        "NotFound", 404)
    assert stranger.list_platform_applications()["PlatformApplications"] == []
    # Topics are not part of this subset.
    assert refused(lambda: server.client("sns").create_topic(Name="t"))[0] == ("InvalidAction", 400)


class Apple:
    """APNs' HTTP/2 provider API (cleartext HTTP/2, prior knowledge): checks the provider
    token, records each notification, and answers 410 Unregistered for the token `dead0dead`."""

    def __init__(self):
        import socket

        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        self.public_key = key.public_key()
        self.p8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        self.notifications = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.connection, args=(conn,), daemon=True).start()

    def connection(self, sock):
        import h2.config
        import h2.connection
        import h2.events

        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        streams = {}
        while True:
            data = sock.recv(65535)
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    streams[event.stream_id] = [{k.decode() if isinstance(k, bytes) else k:
                                                 v.decode() if isinstance(v, bytes) else v
                                                 for k, v in event.headers}, b""]
                elif isinstance(event, h2.events.DataReceived):
                    streams[event.stream_id][1] += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    headers, body = streams.pop(event.stream_id)
                    status, answer = self.answer(headers, json.loads(body))
                    payload = json.dumps(answer).encode() if answer else b""
                    conn.send_headers(event.stream_id, [(":status", str(status))], end_stream=not payload)
                    if payload:
                        conn.send_data(event.stream_id, payload, end_stream=True)
            sock.sendall(conn.data_to_send())

    def answer(self, headers, body):
        token = headers["authorization"].removeprefix("bearer ")
        claims = jwt.decode(token, self.public_key, algorithms=["ES256"])
        device = headers[":path"].removeprefix("/3/device/")
        if device == "dead0dead":
            return 410, {"reason": "Unregistered"}
        self.notifications.append({"device": device, "topic": headers["apns-topic"],
                                   "push_type": headers["apns-push-type"], "kid": jwt.get_unverified_header(token)["kid"],
                                   "iss": claims["iss"], "body": body})
        return 200, None

    def wait_for(self, count):
        for _ in range(200):
            if len(self.notifications) >= count:
                return self.notifications
            time.sleep(0.05)
        raise AssertionError(f"APNs got {len(self.notifications)} notifications, not {count}")

    def stop(self):
        self.sock.close()


def test_apns_applications_deliver_over_http2_with_provider_tokens(tmp_path):
    apple = Apple()
    server = Server(tmp_path / "data", extra_args=["--apns-sandbox-url", apple.url])
    try:
        sns = server.client("sns")
        attributes = {"PlatformCredential": apple.p8, "PlatformPrincipal": "KEY123", "ApplePlatformTeamID": "TEAM42",
                      "ApplePlatformBundleID": "com.example.app"}
        assert refused(lambda: sns.create_platform_application(
            Name="ios", Platform="APNS_SANDBOX",
            Attributes={k: v for k, v in attributes.items() if k != "ApplePlatformTeamID"}))[0] == ("InvalidParameter", 400)
        assert refused(lambda: sns.create_platform_application(
            Name="ios", Platform="APNS_SANDBOX", Attributes={**attributes, "PlatformCredential": "not a key"})) == (
            ("InvalidParameter", 400), "Invalid parameter: Attributes Reason: Platform credentials are invalid")
        app = sns.create_platform_application(Name="ios", Platform="APNS_SANDBOX",
                                              Attributes=attributes)["PlatformApplicationArn"]
        assert app.endswith(":app/APNS_SANDBOX/ios")
        shown = sns.get_platform_application_attributes(PlatformApplicationArn=app)["Attributes"]
        assert shown == {"Enabled": "true", "AuthenticationMethod": "Token", "ApplePlatformTeamID": "TEAM42",
                         "ApplePlatformBundleID": "com.example.app"}
        phone = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="ab12cd")["EndpointArn"]
        sns.publish(TargetArn=phone, Message="hello")
        sns.publish(TargetArn=phone, MessageStructure="json", Message=json.dumps(
            {"APNS_SANDBOX": json.dumps({"aps": {"content-available": 1}, "k": "v"})}))
        first, second = apple.wait_for(2)
        assert first == {"device": "ab12cd", "topic": "com.example.app", "push_type": "alert", "kid": "KEY123",
                         "iss": "TEAM42", "body": {"aps": {"alert": "hello"}}}
        assert second["push_type"] == "background" and second["body"] == {"aps": {"content-available": 1}, "k": "v"}
        assert refused(lambda: sns.publish(TargetArn=phone, MessageStructure="json",
                                           Message=json.dumps({"GCM": "{}"}))) == (
            ("InvalidParameter", 400), "Invalid parameter: JSON must contain an entry for 'default' or 'APNS_SANDBOX'.")
        # APNs tokens are hexadecimal: anything else never reaches the provider's URL.
        assert refused(lambda: sns.create_platform_endpoint(PlatformApplicationArn=app, Token="../../x")) == (
            ("InvalidParameter", 400),
            "Invalid parameter: Token Reason: iOS device tokens must be no more than 400 hexadecimal characters")
        dead = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="dead0dead")["EndpointArn"]
        sns.publish(TargetArn=dead, Message="x")
        for _ in range(200):
            if sns.get_endpoint_attributes(EndpointArn=dead)["Attributes"]["Enabled"] == "false":
                break
            time.sleep(0.05)
        assert refused(lambda: sns.publish(TargetArn=dead, Message="x"))[0] == ("EndpointDisabled", 400)
    finally:
        server.stop()
        apple.stop()
