"""Starts the real cognate binary for the compatibility suite and hands out real clients."""

import configparser
import os
import pathlib
import subprocess
import tempfile
import threading

import boto3
import botocore.config
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("COGNATE_BIN", str(REPO / "target" / "debug" / "cognate"))
NO_RETRIES = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"},
                                    s3={"addressing_style": "path"})


def altered(s):
    """`s` with its last character replaced by another one (never by the same, which a random
    id ends in now and then)."""
    return s[:-1] + ("x" if s[-1] != "x" else "y")


class Server:
    def __init__(self, data_dir, extra_args=(), env=None):
        self.data_dir = pathlib.Path(data_dir)
        clean_env = {k: v for k, v in os.environ.items() if not k.startswith("COGNATE_")}
        clean_env.update(env or {})
        self.log = open(self.data_dir.with_suffix(".log"), "ab")
        self.proc = subprocess.Popen(
            [BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir), *extra_args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            env=clean_env,
        )
        banner = []
        ready = threading.Event()

        def drain():
            for raw in self.proc.stdout:
                line = raw.decode()
                if not ready.is_set():
                    banner.append(line)
                    if line.startswith("  root key:"):
                        ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(60) or not banner:
            self.stop()
            raise RuntimeError("cognate did not start: " + self.data_dir.with_suffix(".log").read_text())
        self.url = next(l.split("listening on ", 1)[1].strip() for l in banner if "listening on " in l)
        self.account_id = next(l.split()[1] for l in banner if l.strip().startswith("account:"))

    def root_credentials(self):
        parser = configparser.ConfigParser()
        parser.read(self.data_dir / "root-credentials")
        section = parser["default"]
        return section["aws_access_key_id"], section["aws_secret_access_key"]

    def client(self, service, access_key_id=None, secret=None, token=None, config=None):
        if access_key_id is None:
            access_key_id, secret = self.root_credentials()
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=NO_RETRIES.merge(config) if config else NO_RETRIES,
        )

    def admin(self, service, config=None):
        """A client of an IAM user with AdministratorAccess in the default account (the root
        may not assume roles, as on AWS)."""
        if not hasattr(self, "_admin_key"):
            iam = self.client("iam")
            iam.create_user(UserName="admin")
            iam.attach_user_policy(UserName="admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
            key = iam.create_access_key(UserName="admin")["AccessKey"]
            self._admin_key = (key["AccessKeyId"], key["SecretAccessKey"])
        return self.client(service, *self._admin_key, config=config)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL schema, when COGNATE_TEST_POSTGRES_URL is set (in CI it must be)."""
    url = os.environ.get("COGNATE_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("COGNATE_TEST_POSTGRES_URL must be set in CI")
        pytest.skip("COGNATE_TEST_POSTGRES_URL is not set")
    import uuid

    import psycopg

    schema = "compat_" + uuid.uuid4().hex
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    yield f"{url}{sep}options=-c%20search_path%3D{schema}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def nats_url():
    """A NATS server with JetStream, when COGNATE_TEST_NATS_URL is set (in CI it must be)."""
    url = os.environ.get("COGNATE_TEST_NATS_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("COGNATE_TEST_NATS_URL must be set in CI")
        pytest.skip("COGNATE_TEST_NATS_URL is not set")
    return url


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory() as tmp:
        s = Server(pathlib.Path(tmp) / "data")
        try:
            yield s
        finally:
            s.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def any_backend(request, tmp_path):
    """A server on each backend in turn: SQLite, then a fresh PostgreSQL schema."""
    env = {}
    if request.param == "postgres":
        env["COGNATE_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    s = Server(tmp_path / "data", env=env)
    try:
        yield s
    finally:
        s.stop()
