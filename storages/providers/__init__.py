"""Storage providers by kind (the `<type>` of `/api/storages/<type>/`), imported on first use:
each pulls in its cloud client library, which a process that never touches that cloud need not load."""

from django.utils.module_loading import import_string

from storages.providers.base import Provider, StorageError

PROVIDER_PATHS = {
    "s3": "storages.providers.s3.S3Provider",
    "gcs": "storages.providers.gcs.GCSProvider",
    "azure": "storages.providers.azure.AzureProvider",
    "redis": "storages.providers.redis.RedisProvider",
    "localfiles": "storages.providers.localfiles.LocalFilesProvider",
}
KINDS = tuple(PROVIDER_PATHS)


def provider_class(kind: str) -> type[Provider]:
    return import_string(PROVIDER_PATHS[kind])


def provider_for(*, kind: str, options: dict, secrets: dict) -> Provider:
    return provider_class(kind)(options=options, secrets=secrets)


__all__ = ["KINDS", "Provider", "StorageError", "provider_class", "provider_for"]
