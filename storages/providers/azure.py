"""Azure Blob Storage (and Azurite, its local emulator): the `azure` storage provider.

Options follow Label Studio's Azure storage fields: `container` and `account_name`, with the
`account_key` secret, or a `sas_token` secret instead (a token scoped by the account owner, for
those who will not hand over the account key). Presigned URLs are service SAS signed with the
account key; with only a SAS token they are the blob's URL carrying that token.

The blob endpoint is the operator's setting AZURE_BLOB_ENDPOINT, a template such as
"http://127.0.0.1:10000/{account_name}" (Azurite); empty means Azure itself,
"https://{account_name}.blob.core.windows.net". The user only chooses the account name, which
must be a valid Azure account name (3-24 lowercase letters and digits): it cannot steer the
connection to any other host, so no SSRF check is needed on a URL the operator wrote.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import (
    BlobPrefix,
    BlobSasPermissions,
    ContainerClient,
    ContentSettings,
    ExponentialRetry,
    generate_blob_sas,
)
from django.conf import settings

from storages.providers.base import Provider, StorageError, direct_child

AZURE_ENDPOINT_TEMPLATE = "https://{account_name}.blob.core.windows.net"
# Azure's naming rules; checked before any request so a typo gets a clear answer, not a 400.
_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_SPECIAL_CONTAINERS = frozenset({"$root", "$web", "$logs"})
# Azure returns at most 5,000 names a page; smaller pages keep the first keys coming sooner.
PAGE_SIZE = 1000
# A SAS starts this long before it is signed: the storage service's clock may be behind ours.
SAS_CLOCK_SKEW = timedelta(minutes=5)
# Service SAS carry no maximum, but a URL that outlives a week is a leaked credential.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
# The SDK's default backs off 15 s and more between tries: a form validating a storage would hang.
_RETRY = {"initial_backoff": 1, "increment_base": 2, "retry_total": 2, "random_jitter_range": 1}
_TIMEOUTS = {"connection_timeout": 10, "read_timeout": 60}
# The SDK logs every request and response at INFO, the root level here: a sync would flood the log.
_HTTP_LOGGING_LEVEL = logging.DEBUG

_AUTHENTICATION_CODES = frozenset({"AuthenticationFailed", "InvalidAuthenticationInfo"})
_PERMISSION_CODES = frozenset({"AuthorizationFailure", "AuthorizationPermissionMismatch",
                               "AuthorizationResourceTypeMismatch", "AuthorizationServiceMismatch",
                               "AuthorizationProtocolMismatch", "AuthorizationSourceIPMismatch"})


class AzureProvider(Provider):
    kind = "azure"
    scheme = "azure-blob"
    secret_fields = ("account_key", "sas_token")
    option_fields = ("container", "account_name")

    def __init__(self, *, options: dict, secrets: dict):
        super().__init__(options=options, secrets=secrets)
        self._client: ContainerClient | None = None

    # --- options -------------------------------------------------------------------------------
    @property
    def container(self) -> str:
        return self._option("container") or ""

    def _option(self, name: str) -> str | None:
        value = self.options.get(name)
        return (value.strip() or None) if isinstance(value, str) else None

    def _secret(self, name: str) -> str | None:
        value = self.secrets.get(name)
        return (value.strip() or None) if isinstance(value, str) else None

    @property
    def _account_name(self) -> str:
        return self._option("account_name") or ""

    @property
    def _account_key(self) -> str | None:
        return self._secret("account_key")

    @property
    def _sas_token(self) -> str | None:
        token = self._secret("sas_token")
        return (token.lstrip("?") or None) if token else None

    @property
    def _credential_field(self) -> str:
        """The secret the requests are authorized with, to name when Azure refuses them."""
        return "account_key" if self._account_key else "sas_token"

    def _account_url(self) -> str:
        template = getattr(settings, "AZURE_BLOB_ENDPOINT", "") or AZURE_ENDPOINT_TEMPLATE
        return template.replace("{account_name}", self._account_name).rstrip("/")

    # --- the client ----------------------------------------------------------------------------
    def _container_client(self) -> ContainerClient:
        if self._client is None:
            self._client = self._build_client()
        return self._client

    def _check_options(self) -> None:
        if not _ACCOUNT_NAME.fullmatch(self._account_name):
            raise StorageError("Give the storage account's name: 3 to 24 lowercase letters and digits.",
                               field="account_name")
        container = self.container
        if not (_CONTAINER_NAME.fullmatch(container) or container in _SPECIAL_CONTAINERS):
            raise StorageError("Give the container's name: 3 to 63 lowercase letters, digits and single hyphens, "
                               "starting with a letter or digit.", field="container")
        account_key = self._account_key
        if account_key is not None:
            try:
                base64.b64decode(account_key, validate=True)
            except (binascii.Error, ValueError):
                raise StorageError("The account key is not valid: Azure gives it as a base64 string.",
                                   field="account_key") from None
        elif self._sas_token is None:
            raise StorageError("Give the storage account's key, or a SAS token.", field="account_key")

    def _build_client(self) -> ContainerClient:
        self._check_options()
        if self._account_key is not None:
            credential = {"account_name": self._account_name, "account_key": self._account_key}
        else:
            credential = self._sas_token
        try:
            return ContainerClient(
                account_url=self._account_url(), container_name=self.container, credential=credential,
                retry_policy=ExponentialRetry(**_RETRY), http_logging_level=_HTTP_LOGGING_LEVEL, **_TIMEOUTS,
            )
        except (AzureError, ValueError) as exc:
            raise self._storage_error(exc, doing="connect to Azure") from None

    def _storage_error(self, exc: Exception, *, doing: str, key: str | None = None) -> StorageError:
        """A message naming the option at fault; never the library's text, which quotes the request
        (and, with a SAS token, its signature)."""
        if isinstance(exc, StorageError):
            return exc
        container, account = self.container, self._account_name
        code = getattr(exc, "error_code", None)
        code = str(getattr(code, "value", code) or "")  # the SDK gives a StorageErrorCode, or the raw string
        if isinstance(exc, ResourceNotFoundError):
            if code == "ContainerNotFound" or key is None:
                return StorageError(f"The storage account {account!r} has no container {container!r}.",
                                    field="container")
            return StorageError(f"There is no blob {key!r} in the container {container!r}.")
        if isinstance(exc, ClientAuthenticationError) or code in _AUTHENTICATION_CODES:
            if self._credential_field == "account_key":
                return StorageError(f"The account key does not match the storage account {account!r}.",
                                    field="account_key")
            return StorageError("The SAS token is not valid for this account and container, or has expired.",
                                field="sas_token")
        status = getattr(exc, "status_code", None)
        if code in _PERMISSION_CODES or (isinstance(exc, HttpResponseError) and status == 403):
            return StorageError(f"These credentials are not allowed to {doing} in the container {container!r}.",
                                field=self._credential_field)
        if isinstance(exc, ServiceRequestError | ServiceResponseError):
            return StorageError(f"The blob service of the storage account {account!r} could not be reached "
                                f"to {doing}.", field="account_name")
        if isinstance(exc, HttpResponseError):
            return StorageError(f"Azure refused to {doing} (HTTP {status}, error {code or 'unknown'}).")
        return StorageError(f"Azure failed to {doing}.")

    # --- the container -------------------------------------------------------------------------
    def validate(self) -> None:
        # A one-name listing: it proves both that the container exists and the list permission a
        # sync needs (a SAS token may lack it while allowing reads).
        try:
            next(iter(self._container_client().list_blobs(results_per_page=1).by_page()), None)
        except (AzureError, ValueError) as exc:
            raise self._storage_error(exc, doing="list the blobs") from None

    # --- objects -------------------------------------------------------------------------------
    def keys(self, *, prefix: str, recursive: bool) -> Iterator[str]:
        folder = (prefix or "").strip("/")
        folder = f"{folder}/" if folder else ""
        try:
            client = self._container_client()
            if recursive:
                entries = client.list_blobs(name_starts_with=folder or None, results_per_page=PAGE_SIZE)
            else:
                entries = client.walk_blobs(name_starts_with=folder or None, delimiter="/",
                                            results_per_page=PAGE_SIZE)
            for entry in entries:
                # Sub-folders of a walk, and zero-length folder markers (named "x/"), are not objects.
                if isinstance(entry, BlobPrefix) or entry.name.endswith("/"):
                    continue
                if not recursive and not direct_child(key=entry.name, prefix=folder):
                    continue
                yield entry.name
        except (AzureError, ValueError) as exc:
            raise self._storage_error(exc, doing="list the blobs") from None

    def read(self, key: str) -> bytes:
        try:
            return self._container_client().download_blob(key).readall()
        except (AzureError, ValueError) as exc:
            raise self._storage_error(exc, doing="read a blob", key=key) from None

    def chunks(self, key: str):
        try:
            yield from self._container_client().download_blob(key).chunks()
        except (AzureError, ValueError) as exc:
            raise self._storage_error(exc, doing="read a blob", key=key) from None

    def write(self, key: str, data: bytes, *, content_type: str = "application/json") -> None:
        try:
            self._container_client().upload_blob(
                key, data, overwrite=True, content_settings=ContentSettings(content_type=content_type),
            )
        except (AzureError, ValueError) as exc:
            raise self._storage_error(exc, doing="write a blob") from None

    def delete(self, key: str) -> None:
        try:
            self._container_client().delete_blob(key, delete_snapshots="include")
        except ResourceNotFoundError as exc:
            if exc.error_code == "ContainerNotFound":
                raise self._storage_error(exc, doing="delete a blob") from None
        except (AzureError, ValueError) as exc:
            raise self._storage_error(exc, doing="delete a blob", key=key) from None

    def presigned_url(self, key: str, *, ttl_seconds: int) -> str:
        self._container_client()  # checks the options first
        # Built here, not taken from the client: its URL carries the SAS token it was given.
        blob_url = f"{self._account_url()}/{quote(self.container, safe='$')}/{quote(key, safe='/~')}"
        if self._account_key is None:
            # The token is the account owner's to scope and date; we cannot sign a narrower one.
            return f"{blob_url}?{self._sas_token}"
        now = datetime.now(UTC)
        ttl = min(max(int(ttl_seconds), 1), MAX_PRESIGN_SECONDS)
        try:
            signature = generate_blob_sas(
                account_name=self._account_name, container_name=self.container, blob_name=key,
                account_key=self._account_key, permission=BlobSasPermissions(read=True),
                start=now - SAS_CLOCK_SKEW, expiry=now + timedelta(seconds=ttl),
            )
        except (AzureError, ValueError) as exc:
            raise self._storage_error(exc, doing="sign a URL", key=key) from None
        return f"{blob_url}?{signature}"
