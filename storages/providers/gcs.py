"""Google Cloud Storage provider: a bucket read and written with a tenant's service account.

The service account's JSON key is the storage's one secret. It authenticates the API calls and
signs the V4 URLs a browser loads objects with (signing is local: the key's RSA private key).
There is no fallback to the server's own Google credentials (application default credentials):
a tenant must never reach buckets through the operator's identity.

The API endpoint is an operator setting, `settings.GCS_API_ENDPOINT` (empty: Google's). When it
is set it points at an emulator (fake-gcs-server in the tests and local runs), which takes no
credentials: API calls then go unauthenticated, as google-cloud-storage itself does under
STORAGE_EMULATOR_HOST, while URLs are still signed with the service account's key and point at
the emulator so a browser can load them. In production (no endpoint) the service account's
credentials do both.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings

from storages.providers.base import CHUNK_BYTES, Provider, StorageError, direct_child

CREDENTIALS_FIELD = "google_application_credentials"
# Names per listing request: the JSON API's maximum, so a million objects take 1,000 requests.
PAGE_SIZE = 1000
# Seconds for one HTTP request, and for one call with its retries of transient errors
# (google-cloud-storage's default retries for two minutes, too long for an API request).
REQUEST_TIMEOUT = 30
RETRY_TIMEOUT = 30
# OAuth scope of the API calls: read and write objects (no IAM or bucket administration).
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)


class GCSProvider(Provider):
    kind = "gcs"
    scheme = "gs"
    secret_fields = (CREDENTIALS_FIELD,)
    option_fields = ("bucket", "google_project_id")

    def __init__(self, *, options: dict, secrets: dict):
        super().__init__(options=options, secrets=secrets)
        self._client = None
        self._signing_credentials = None

    @property
    def container(self) -> str:
        return (self.options.get("bucket") or "").strip()

    # --- clients, built on first use -------------------------------------------------------------
    @staticmethod
    def _api_endpoint() -> str:
        return (getattr(settings, "GCS_API_ENDPOINT", "") or "").rstrip("/")

    def _service_account(self):
        """The service account's credentials, parsed from the secret JSON key."""
        if self._signing_credentials is not None:
            return self._signing_credentials
        from google.oauth2 import service_account

        raw = self.secrets.get(CREDENTIALS_FIELD)
        if not raw or not str(raw).strip():
            raise StorageError("Give the service account's JSON key.", field=CREDENTIALS_FIELD)
        try:
            info = json.loads(raw) if isinstance(raw, str | bytes) else raw
        except ValueError:
            raise StorageError("The credentials are not valid JSON: give the service account's JSON key.",
                               field=CREDENTIALS_FIELD) from None
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise StorageError('The credentials are not a service account key (its "type" must be '
                               '"service_account").', field=CREDENTIALS_FIELD)
        try:
            credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        except (ValueError, TypeError, KeyError):
            # The library's message may quote the key's fields: say only what is wrong.
            raise StorageError("The service account key is incomplete or its private key cannot be read.",
                               field=CREDENTIALS_FIELD) from None
        self._signing_credentials = credentials
        return credentials

    def _project(self, credentials) -> str:
        project = (self.options.get("google_project_id") or "").strip() or credentials.project_id
        if not project:
            raise StorageError("Give the Google Cloud project id (the key names none).", field="google_project_id")
        return project

    def _storage_client(self):
        if self._client is not None:
            return self._client
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        credentials = self._service_account()
        endpoint = self._api_endpoint()
        if endpoint:
            # An emulator: see the module docstring (signing still uses the service account).
            self._client = storage.Client(project=self._project(credentials), credentials=AnonymousCredentials(),
                                          client_options={"api_endpoint": endpoint})
        else:
            self._client = storage.Client(project=self._project(credentials), credentials=credentials)
        return self._client

    def _bucket(self):
        if not self.container:
            raise StorageError("Give the bucket name.", field="bucket")
        return self._storage_client().bucket(self.container)

    @staticmethod
    def _retry():
        from google.cloud.storage.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(RETRY_TIMEOUT)

    # --- the container ---------------------------------------------------------------------------
    def validate(self) -> None:
        bucket = self._bucket()
        with self._errors(action="list the bucket"):
            # One name is enough to prove the bucket exists and these credentials may list it.
            next(iter(bucket.list_blobs(max_results=1, timeout=REQUEST_TIMEOUT, retry=self._retry())), None)

    # --- objects ---------------------------------------------------------------------------------
    def keys(self, *, prefix: str, recursive: bool) -> Iterator[str]:
        prefix = (prefix or "").lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"  # "a" names the folder "a/", never "ab/..."
        bucket = self._bucket()
        # The iterator fetches one page per PAGE_SIZE names, when the caller gets that far. With the
        # delimiter, sub-folders come back as `prefixes`, not as objects.
        blobs = bucket.list_blobs(prefix=prefix or None, delimiter=None if recursive else "/", page_size=PAGE_SIZE,
                                  timeout=REQUEST_TIMEOUT, retry=self._retry())
        with self._errors(action="list the bucket"):
            for blob in blobs:
                if blob.name.endswith("/"):
                    continue  # a "folder" placeholder object made by the console, not a document
                if recursive or direct_child(key=blob.name, prefix=prefix):
                    yield blob.name

    def read(self, key: str) -> bytes:
        blob = self._bucket().blob(key)
        with self._errors(action=f"read {key!r}", missing=f"There is no object {key!r} in bucket {self.container!r}."):
            return blob.download_as_bytes(timeout=REQUEST_TIMEOUT, retry=self._retry())

    def chunks(self, key: str):
        blob = self._bucket().blob(key)
        missing = f"There is no object {key!r} in bucket {self.container!r}."
        with self._errors(action=f"read {key!r}", missing=missing), \
                blob.open("rb", chunk_size=CHUNK_BYTES, timeout=REQUEST_TIMEOUT, retry=self._retry()) as stream:
            while chunk := stream.read(CHUNK_BYTES):
                yield chunk

    def write(self, key: str, data: bytes, *, content_type: str = "application/json") -> None:
        blob = self._bucket().blob(key)
        with self._errors(action=f"write {key!r}"):
            # Writes overwrite the object whole, so retrying one is safe.
            blob.upload_from_string(data, content_type=content_type, timeout=REQUEST_TIMEOUT, retry=self._retry())

    def delete(self, key: str) -> None:
        from google.api_core import exceptions as api_exceptions

        blob = self._bucket().blob(key)
        # Already gone is the end state the caller asked for.
        with self._errors(action=f"delete {key!r}"), contextlib.suppress(api_exceptions.NotFound):
            blob.delete(timeout=REQUEST_TIMEOUT, retry=self._retry())

    def presigned_url(self, key: str, *, ttl_seconds: int) -> str:
        blob = self._bucket().blob(key)
        endpoint = self._api_endpoint()
        with self._errors(action=f"sign a URL for {key!r}"):
            return blob.generate_signed_url(
                version="v4", expiration=timedelta(seconds=ttl_seconds), method="GET",
                credentials=self._service_account(), api_access_endpoint=endpoint or None,
            )

    # --- errors ----------------------------------------------------------------------------------
    def _errors(self, *, action: str, missing: str | None = None):
        return _GoogleErrors(bucket=self.container, action=action, missing=missing)


class _GoogleErrors:
    """Turns google-cloud-storage's exceptions into StorageErrors fit for an API user.

    The library's messages quote request URLs and response bodies; none of them is passed on."""

    def __init__(self, *, bucket: str, action: str, missing: str | None):
        self.bucket, self.action, self.missing = bucket, action, missing

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc is None or isinstance(exc, StorageError | GeneratorExit):
            return False
        error = self._storage_error(exc)
        if error is None:
            return False
        raise error from None

    def _storage_error(self, exc: BaseException) -> StorageError | None:
        import requests
        from google.api_core import exceptions as api_exceptions
        from google.auth import exceptions as auth_exceptions

        if isinstance(exc, api_exceptions.NotFound):
            if self.missing:
                return StorageError(self.missing)
            return StorageError(f"The bucket {self.bucket!r} does not exist.", field="bucket")
        if isinstance(exc, api_exceptions.Unauthorized | auth_exceptions.RefreshError):
            return StorageError("Google refused the service account's credentials (revoked or deleted key?).",
                                field=CREDENTIALS_FIELD)
        if isinstance(exc, api_exceptions.Forbidden):
            return StorageError(f"The service account may not {self.action} in bucket {self.bucket!r}: grant it "
                                "access to the bucket (e.g. the Storage Object Admin role).", field=CREDENTIALS_FIELD)
        if isinstance(exc, api_exceptions.GoogleAPICallError):
            return StorageError(f"Google Cloud Storage could not {self.action} (HTTP {exc.code}).")
        if isinstance(exc, api_exceptions.RetryError | requests.exceptions.RequestException
                      | auth_exceptions.TransportError | ConnectionError | TimeoutError):
            return StorageError(f"Google Cloud Storage could not be reached to {self.action}; try again later.")
        if isinstance(exc, auth_exceptions.GoogleAuthError):
            return StorageError("The service account's credentials cannot be used.", field=CREDENTIALS_FIELD)
        return None
