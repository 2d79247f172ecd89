"""Azurite's blob service as the real server of the Azure Blob tests.

`azure_server` (session-scoped) runs node_modules/azurite (a devDependency in package.json, which
`make` installs with `npm ci`) on a free loopback port, with its data in a temporary folder, its
access log and telemetry off; it is stopped at the end of the session. Azurite checks Shared Key
and SAS signatures as Azure does, against its well-known development account. `azure_settings`
(per test) points settings.AZURE_BLOB_ENDPOINT at it.

Without node or Azurite the tests are skipped, or fail when CI=true.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import _free_port, service_missing

REPOSITORY = Path(__file__).resolve().parents[2]
AZURITE_BLOB_MAIN = REPOSITORY / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
# Azurite's development account, published in its documentation (no secret).
DEV_ACCOUNT_NAME = "devstoreaccount1"
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
STARTUP_SECONDS = 30


@dataclass
class AzuriteServer:
    port: int
    account_name: str = DEV_ACCOUNT_NAME
    account_key: str = DEV_ACCOUNT_KEY
    _clients: dict = field(default_factory=dict, repr=False)

    @property
    def endpoint_template(self) -> str:
        """The value for settings.AZURE_BLOB_ENDPOINT."""
        return f"http://127.0.0.1:{self.port}/{{account_name}}"

    @property
    def account_url(self) -> str:
        return self.endpoint_template.replace("{account_name}", self.account_name)

    def options(self, container: str) -> dict:
        """The AzureProvider options of a storage on `container`."""
        return {"container": container, "account_name": self.account_name}

    def secrets(self) -> dict:
        """The AzureProvider secrets: the account key."""
        return {"account_key": self.account_key}

    def configure(self, settings) -> None:
        """Point the provider at this server (`settings` is pytest-django's fixture)."""
        settings.AZURE_BLOB_ENDPOINT = self.endpoint_template

    def container_client(self, container: str):
        from azure.storage.blob import BlobServiceClient

        if "service" not in self._clients:
            credential = {"account_name": self.account_name, "account_key": self.account_key}
            self._clients["service"] = BlobServiceClient(account_url=self.account_url, credential=credential,
                                                         http_logging_level=logging.DEBUG)
        return self._clients["service"].get_container_client(container)

    def make_container(self, name: str) -> str:
        """Create the container (no error when it exists); its name."""
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):
            self.container_client(name).create_container()
        return name

    def put_many(self, container: str, blobs: dict[str, bytes], *, workers: int = 8) -> None:
        """Upload many blobs at once, in parallel (Azure has no bulk upload)."""
        client = self.container_client(container)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(client.upload_blob, key, data, overwrite=True) for key, data in blobs.items()]:
                future.result()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback
            return True
    except urllib.error.HTTPError:
        return True  # an unsigned request is refused, but the server is up
    except OSError:
        return False


@pytest.fixture(scope="session")
def azure_server(tmp_path_factory) -> AzuriteServer:
    node = shutil.which("node")
    if node is None:
        service_missing("node is not installed (Azurite needs it: sudo apt-get install nodejs)")
    if not AZURITE_BLOB_MAIN.exists():
        service_missing("Azurite is not installed (make runs npm ci, which installs it into node_modules/)")
    port = _free_port()
    location = tmp_path_factory.mktemp("azurite")
    log = location / "azurite.log"
    data = location / "data"
    data.mkdir()
    server = subprocess.Popen(  # noqa: S603
        [node, str(AZURITE_BLOB_MAIN), "--blobHost", "127.0.0.1", "--blobPort", str(port),
         "--location", str(data), "--silent", "--disableTelemetry", "--skipApiVersionCheck"],
        stdout=subprocess.DEVNULL, stderr=open(log, "w"),  # noqa: SIM115
    )
    azurite = AzuriteServer(port=port)
    deadline = time.monotonic() + STARTUP_SECONDS
    while not _answers(f"{azurite.account_url}?comp=list"):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            service_missing(f"Azurite did not start on port {port}: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    try:
        yield azurite
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def azure_settings(azure_server, settings) -> AzuriteServer:
    """The server, with settings.AZURE_BLOB_ENDPOINT pointing at it for this test."""
    azure_server.configure(settings)
    return azure_server
