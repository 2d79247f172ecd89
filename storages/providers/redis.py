"""Redis as a storage: string values under keys that start with `path`, each a task as JSON (import)
or an annotation as JSON (export). Values have no URL of their own, so `use_blob_urls` and signed
URLs do not apply. The host is the user's: vetted against the SSRF rules before connecting."""

from __future__ import annotations

from collections.abc import Iterator

import redis as redis_client

from platform_core.ssrf import UnsafeUrlError, vet_url
from storages.providers.base import Provider, StorageError, direct_child

SCAN_COUNT = 1000
TIMEOUT_SECONDS = 5


class RedisProvider(Provider):
    kind = "redis"
    option_fields = ("host", "port", "db", "path")
    secret_fields = ("password",)
    concurrent_calls = 1
    _client = None

    @property
    def container(self) -> str:
        return f"{self.options.get('host')}:{self.options.get('port') or 6379}/{self.options.get('db') or 0}"

    def client(self):
        if self._client is None:
            host = (self.options.get("host") or "").strip()
            if not host:
                raise StorageError("Give the Redis host.", field="host")
            try:
                port = int(self.options.get("port") or 6379)
                db = int(self.options.get("db") or 0)
            except (TypeError, ValueError):
                raise StorageError("port and db are numbers.", field="port") from None
            try:
                vetted = vet_url(f"http://{host}:{port}/")
            except UnsafeUrlError as exc:
                raise StorageError(f"This Redis host is refused: {exc}", field="host") from None
            # The vetted address, not the name again: a DNS answer cannot change in between.
            self._client = redis_client.Redis(
                host=vetted.addresses[0], port=port, db=db, password=self.secrets.get("password") or None,
                socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS)
        return self._client

    def _call(self, function, *args):
        try:
            return function(*args)
        except redis_client.AuthenticationError:
            raise StorageError("Redis refused the password.", field="password") from None
        except redis_client.ResponseError as exc:
            if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
                raise StorageError("Redis needs a (different) password.", field="password") from None
            raise StorageError(f"Redis answered an error: {str(exc)[:200]}") from None
        except (redis_client.ConnectionError, redis_client.TimeoutError):
            raise StorageError(f"Cannot reach Redis at {self.container}.", field="host") from None

    def validate(self) -> None:
        self._call(self.client().ping)

    def keys(self, *, prefix: str, recursive: bool) -> Iterator[str]:
        start = (self.options.get("path") or "") + (prefix or "")
        pattern = start.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?").replace("[", "\\[") + "*"
        cursor = 0
        while True:
            cursor, names = self._call(self.client().scan, cursor, pattern, SCAN_COUNT)
            for name in sorted(name.decode() for name in names):
                if recursive or direct_child(key=name, prefix=start):
                    yield name
            if cursor == 0:
                return

    def read(self, key: str) -> bytes:
        value = self._call(self.client().get, key)
        if value is None:
            raise StorageError(f"{key} does not exist in Redis.")
        return value

    def write(self, key: str, data: bytes, *, content_type: str = "application/json") -> None:
        self._call(self.client().set, key, data)

    def delete(self, key: str) -> None:
        self._call(self.client().delete, key)

    def presigned_url(self, key: str, *, ttl_seconds: int) -> str:
        raise StorageError("Redis values have no URL.", field="use_blob_urls")

    def uri(self, key: str) -> str:
        raise StorageError("Redis values are tasks as JSON: turn use_blob_urls off.", field="use_blob_urls")

    def key_of(self, uri: str) -> str | None:
        return None
