"""A real S3 server for the storage tests: moto's server (`python -m moto.server`) in a subprocess.

`s3_server` (session-scoped) starts it on a free loopback port and yields an `S3Server`: the
endpoint, the options / secrets an S3Provider needs to use it, helpers to fill buckets, and the
allow-list entry tests put in settings.SSRF_PROTECTION_ALLOWLIST (the endpoint is on 127.0.0.1,
which the SSRF guard refuses otherwise). Without the server the tests skip, or fail with CI=true.

moto accepts any access key until `authentication_enforced()` turns its IAM checks on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import typing
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import boto3
import pytest
from botocore.config import Config

from conftest import _free_port, service_missing

REGION = "us-east-1"
ANY_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
START_TIMEOUT_SECONDS = 30
UPLOAD_THREADS = 16


@dataclass
class S3Server:
    port: int
    _client: object = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def allowlist(self) -> str:
        return f"127.0.0.1:{self.port}"

    def options(self, bucket: str, **extra) -> dict:
        return {"bucket": bucket, "region_name": REGION, "s3_endpoint": self.endpoint, **extra}

    def secrets(self) -> dict:
        return dict(ANY_KEYS)

    @property
    def client(self):
        """A boto3 S3 client on the server (thread-safe, reused), to set up and inspect buckets."""
        if self._client is None:
            self._client = self._boto_client("s3", max_pool_connections=UPLOAD_THREADS)
        return self._client

    def _boto_client(self, service: str, *, max_pool_connections: int = 10, keys: dict | None = None):
        keys = keys or ANY_KEYS
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=keys["aws_access_key_id"], aws_secret_access_key=keys["aws_secret_access_key"],
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          max_pool_connections=max_pool_connections),
        )

    def make_bucket(self, name: str | None = None) -> str:
        """A new bucket (a unique name when none is given); its name."""
        name = name or f"test-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def put_many(self, bucket: str, objects: dict[str, bytes], *, content_type: str = "application/json") -> None:
        # Always with a Content-Type: moto stores an empty object for a PUT without one.
        def put(item):
            key, data = item
            self.client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)

        with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
            list(pool.map(put, objects.items()))

    # --- IAM, for the tests of refused credentials and assumed roles ----------------------------
    def iam_user_keys(self, *, policy_actions: tuple[str, ...] = ("s3:*",)) -> dict:
        """An IAM user allowed `policy_actions` on everything; its keys as S3Provider secrets."""
        iam = self._boto_client("iam")
        name = f"user-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="allowed", PolicyDocument=_policy(policy_actions))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}

    def iam_role(self, *, policy_actions: tuple[str, ...] = ("s3:*",)) -> str:
        """A role anyone may assume, allowed `policy_actions`; its ARN."""
        iam = self._boto_client("iam")
        name = f"role-{uuid.uuid4().hex[:8]}"
        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="allowed", PolicyDocument=_policy(policy_actions))
        return arn

    @contextmanager
    def authentication_enforced(self) -> Iterator[None]:
        """moto checks every request's signature and IAM permissions inside the block (server-wide:
        only for tests of one process, which run one at a time)."""
        self._set_unauthenticated_requests("0")
        try:
            yield
        finally:
            self._set_unauthenticated_requests("inf")

    def _set_unauthenticated_requests(self, count: str) -> None:
        # text/plain: moto reads the raw body, which a form content type would have parsed away.
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset-auth", data=count.encode(), method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - loopback test server
            pass


def _policy(actions: tuple[str, ...]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": list(actions), "Resource": "*"}]})


def _start_moto() -> tuple[subprocess.Popen, int, typing.IO[bytes]]:
    port = _free_port()
    # A file, not a pipe: moto logs every request, and an unread pipe would fill and block it.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - open as long as the server runs
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=1):  # noqa: S310
                return process, port, log
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                log.seek(0)
                output = log.read().decode(errors="replace")[-2000:]
                log.close()
                raise RuntimeError(f"moto's server did not start: {output}") from None
            time.sleep(0.2)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    started, why = None, ""
    try:
        started = _start_moto()
    except (RuntimeError, OSError) as exc:
        why = str(exc)
    if started is None:  # outside the except: the failure reads as itself, not as a chained error
        service_missing(f"the S3 test server (moto) cannot start: {why}")
    process, port, log = started
    try:
        yield S3Server(port=port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
