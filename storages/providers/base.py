"""What every storage provider offers the storages app: list, read, write, delete, sign.

A provider is built from a storage's plain options and its decrypted secrets (storages.models
keeps the secrets encrypted; only providers ever see them in clear). Providers never log a
secret, and their errors (StorageError) carry messages fit for an API response: no credential,
no signed URL, no traceback of the client library.

Keys are object names inside the bucket / container / Redis database / root directory, without
a leading slash. `uri(key)` is what a task made from the object holds in its data
(`s3://bucket/key`, `gs://bucket/key`, `azure-blob://container/key`); `key_of(uri)` is the
reverse, None when the URI is not this storage's (another bucket, another scheme).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar

# What a streamed read hands on at a time.
CHUNK_BYTES = 256 * 1024


class StorageError(Exception):
    """A provider call failed: `detail` is safe to show; `field` names the option at fault."""

    def __init__(self, detail: str, *, field: str | None = None):
        super().__init__(detail)
        self.detail, self.field = detail, field


class Provider(ABC):
    # The storage type of the API (`/api/storages/<kind>/`): s3, gcs, azure, redis, localfiles.
    kind: ClassVar[str]
    # The URI scheme of `uri()`; None where objects have no URI of their own (redis, localfiles).
    scheme: ClassVar[str | None] = None
    # Option names (API fields) that are secrets: write-only, stored encrypted.
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # Non-secret option names the provider reads (besides the common prefix/regex_filter/...).
    option_fields: ClassVar[tuple[str, ...]] = ()
    # Object reads and writes a sync keeps in flight at once: cloud calls wait on the network;
    # local disks and Redis answer faster than threads pay off.
    concurrent_calls: ClassVar[int] = 16

    def __init__(self, *, options: dict, secrets: dict):
        self.options, self.secrets = options, secrets

    # --- the container ---------------------------------------------------------------------------
    @property
    @abstractmethod
    def container(self) -> str:
        """The bucket / container name (what follows the scheme in a URI)."""

    @abstractmethod
    def validate(self) -> None:
        """Check that the container exists and the credentials can list it; raise StorageError."""

    # --- objects ---------------------------------------------------------------------------------
    @abstractmethod
    def keys(self, *, prefix: str, recursive: bool) -> Iterator[str]:
        """Object keys under `prefix`; without `recursive`, only those directly under it (no
        further '/' after the prefix). Lazily, page by page: a bucket may hold millions."""

    @abstractmethod
    def read(self, key: str) -> bytes:
        """The object's content; StorageError when it is missing."""

    def chunks(self, key: str) -> Iterator[bytes]:
        """The object's content piece by piece (the storage proxy streams it); StorageError when it
        is missing, raised by the first `next()`. Providers that can stream override this."""
        yield self.read(key)

    @abstractmethod
    def write(self, key: str, data: bytes, *, content_type: str = "application/json") -> None: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing object is no error."""

    @abstractmethod
    def presigned_url(self, key: str, *, ttl_seconds: int) -> str:
        """A URL a browser can GET the object with, valid for `ttl_seconds`."""

    # --- URIs ------------------------------------------------------------------------------------
    def uri(self, key: str) -> str:
        return f"{self.scheme}://{self.container}/{key}"

    def key_of(self, uri: str) -> str | None:
        if not self.scheme:
            return None
        match = re.match(rf"^{re.escape(self.scheme)}://([^/]+)/(.+)$", uri)
        if match is None or match.group(1) != self.container:
            return None
        return match.group(2)


def direct_child(*, key: str, prefix: str) -> bool:
    """For a non-recursive scan: the key has no '/' after the prefix (and its separator)."""
    rest = key[len(prefix):].lstrip("/") if prefix else key
    return "/" not in rest
