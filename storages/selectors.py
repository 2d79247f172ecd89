"""Reads of the storages app, and URI resolution: `s3://`, `gs://`, `azure-blob://` (and local
files') references in task data become URLs a browser can load.

With `presign` on, a reference becomes the provider's signed URL (valid `presign_ttl` minutes);
with it off, the storage proxy `/o/<slug>/tasks/<task id>/presign/?fileuri=<base64 uri>`, which
checks that the caller may see the task and streams the object. Only the import storages of the
task's own project resolve its references: a reference to a bucket no storage of the project
covers stays as it is.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote

from django.db import connection

from labeling.models import Project
from storages.models import Storage
from storages.providers import Provider, StorageError

URI_SCHEMES = ("s3://", "gs://", "azure-blob://", "/data/local-files/?d=")


def storages_of(*, project: Project, direction: str, kind: str | None = None):
    queryset = Storage.objects.filter(project=project, direction=direction)
    if kind is not None:
        queryset = queryset.filter(kind=kind)
    return queryset.order_by("pk")


def encode_fileuri(uri: str) -> str:
    return base64.urlsafe_b64encode(uri.encode()).decode().rstrip("=")


def decode_fileuri(value: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


class Resolver:
    """Resolves the references of one project's tasks; providers are built once per resolver."""

    def __init__(self, *, project_id: int):
        from storages.services import provider_of

        self.project_id = project_id
        self.storages = list(Storage.objects.filter(project_id=project_id, direction=Storage.Direction.IMPORT)
                             .order_by("pk"))
        self._providers: dict[int, Provider] = {}
        self._provider_of = provider_of

    def __bool__(self) -> bool:
        return bool(self.storages)

    def provider(self, storage: Storage) -> Provider:
        if storage.pk not in self._providers:
            self._providers[storage.pk] = self._provider_of(storage)
        return self._providers[storage.pk]

    def locate(self, uri: str) -> tuple[Storage, Provider, str] | None:
        """The storage of the project that covers `uri`, its provider and the object's key."""
        for storage in self.storages:
            try:
                provider = self.provider(storage)
                key = provider.key_of(uri)
            except StorageError:
                continue
            if key is not None:
                return storage, provider, key
        return None

    def url(self, uri: str, *, task_id: int) -> str:
        located = self.locate(uri)
        if located is None:
            return uri
        storage, provider, key = located
        if storage.presign and storage.kind != "localfiles":
            try:
                return provider.presigned_url(key, ttl_seconds=storage.presign_ttl * 60)
            except StorageError:
                return uri
        return proxy_url(task_id=task_id, uri=uri)

    def resolve(self, value, *, task_id: int):
        """`value` (task data: dicts, lists, strings) with every covered reference resolved."""
        if isinstance(value, str):
            return self.url(value, task_id=task_id) if value.startswith(URI_SCHEMES) else value
        if isinstance(value, dict):
            return {name: self.resolve(item, task_id=task_id) for name, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item, task_id=task_id) for item in value]
        return value


def proxy_url(*, task_id: int, uri: str) -> str:
    return f"/o/{quote(connection.tenant.slug)}/tasks/{task_id}/presign/?fileuri={encode_fileuri(uri)}"
