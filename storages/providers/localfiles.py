"""Local files: a directory on this server, below the organization's own folder of the root the
operator allows (LOCAL_FILES_DOCUMENT_ROOT/<organization slug>/). Nothing outside it is listed,
read or served, symbolic links included. Objects are served by /data/local-files/?d=<path below
the organization's folder> (storages.views), to members who may see a project with a local
storage over that path; there is nothing to sign.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from django.conf import settings
from django.db import connection

from storages.providers.base import CHUNK_BYTES, Provider, StorageError, direct_child

SERVE_PATH = "/data/local-files/"


def organization_root() -> Path | None:
    """This organization's folder below LOCAL_FILES_DOCUMENT_ROOT; None when local files are off."""
    root = getattr(settings, "LOCAL_FILES_DOCUMENT_ROOT", "")
    if not root:
        return None
    return Path(root).resolve() / connection.tenant.slug


def inside(*, path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class LocalFilesProvider(Provider):
    kind = "localfiles"
    option_fields = ("path",)
    concurrent_calls = 1

    def __init__(self, *, options: dict, secrets: dict):
        super().__init__(options=options, secrets=secrets)
        # Read once, in the organization's schema: a sync's worker threads have no tenant.
        self.root = organization_root()

    @property
    def container(self) -> str:
        return str(self.directory)

    @property
    def directory(self) -> Path:
        root = self.root
        if root is None:
            raise StorageError("Local files are not enabled on this server (LOCAL_FILES_DOCUMENT_ROOT).",
                               field="path")
        given = (self.options.get("path") or "").strip()
        if not given:
            raise StorageError(f"Give the folder's path, below {root}.", field="path")
        directory = Path(given) if Path(given).is_absolute() else root / given
        resolved = directory.resolve()
        if not inside(path=resolved, root=root):
            raise StorageError(f"The path must be below {root}.", field="path")
        return resolved

    def validate(self) -> None:
        if not self.directory.is_dir():
            raise StorageError(f"{self.directory} is not a folder on this server.", field="path")

    def _file(self, key: str) -> Path:
        path = (self.directory / key).resolve()
        if not inside(path=path, root=self.directory) or path == self.directory:
            raise StorageError(f"{key} is outside the storage's folder.", field="path")
        return path

    def keys(self, *, prefix: str, recursive: bool) -> Iterator[str]:
        base = self.directory
        start = self._file(prefix.strip("/")) if prefix.strip("/") else base
        if not start.is_dir():
            return
        for folder, folders, files in os.walk(start, followlinks=False):
            folders.sort()
            for name in sorted(files):
                path = Path(folder) / name
                if not inside(path=path.resolve(), root=base):
                    continue  # a link out of the folder
                key = path.relative_to(base).as_posix()
                if recursive or direct_child(key=key, prefix=prefix.strip("/")):
                    yield key
            if not recursive:
                break

    def read(self, key: str) -> bytes:
        path = self._file(key)
        if not path.is_file():
            raise StorageError(f"{key} does not exist.")
        return path.read_bytes()

    def chunks(self, key: str):
        path = self._file(key)
        if not path.is_file():
            raise StorageError(f"{key} does not exist.")
        with path.open("rb") as stream:
            while chunk := stream.read(CHUNK_BYTES):
                yield chunk

    def write(self, key: str, data: bytes, *, content_type: str = "application/json") -> None:
        path = self._file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.partial")
        temporary.write_bytes(data)
        temporary.replace(path)

    def delete(self, key: str) -> None:
        self._file(key).unlink(missing_ok=True)

    def presigned_url(self, key: str, *, ttl_seconds: int) -> str:
        return self.uri(key)

    def uri(self, key: str) -> str:
        below_root = self._file(key).relative_to(self.root).as_posix()
        return f"{SERVE_PATH}?d={quote(below_root)}"

    def key_of(self, uri: str) -> str | None:
        if not uri.startswith(f"{SERVE_PATH}?d="):
            return None
        relative = (parse_qs(urlsplit(uri).query).get("d") or [""])[0]
        root = self.root
        if root is None or not relative:
            return None
        path = (root / relative).resolve()
        if not inside(path=path, root=self.directory) or path == self.directory:
            return None
        return path.relative_to(self.directory).as_posix()
