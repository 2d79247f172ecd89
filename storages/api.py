"""Storages API, as Label Studio has it: `/api/storages/` (import) and `/api/storages/export/`, each
with `types`, `<type>/` list and create, `<type>/validate`, `<type>/<id>` read, change and delete,
and `<type>/<id>/sync`. Types: s3, gcs, azure, redis, localfiles.

`storages.view` reads, `storages.change` writes, in a project the member can see (others' storages
are 404). Secrets (keys, passwords, service-account JSON) are write-only: no response carries
them; an update that leaves one out keeps it.
"""

from django.core.exceptions import ValidationError
from django.db import connection
from rest_framework import serializers, status
from rest_framework.response import Response

from labeling.api import LabelingApi, _project_or_404, body_project_or_400, object_or_404
from platform_core.params import query_int
from platform_core.routing import route
from storages import selectors, services
from storages.models import Storage
from storages.providers import KINDS, provider_class

TITLES = {"s3": "AWS S3", "gcs": "Google Cloud Storage", "azure": "Microsoft Azure", "redis": "Redis",
          "localfiles": "Local files"}
# Provider options that are numbers; every other option is text.
INTEGER_OPTIONS = ("port", "db")
COMMON_TEXT = ("title", "description", "prefix", "regex_filter")
COMMON_FLAGS = ("use_blob_urls", "recursive_scan", "presign", "can_delete_objects", "synchronizable")


def input_serializer(kind: str) -> type[serializers.Serializer]:
    """Types only, per storage type; the service checks meaning (regex, paths, the connection)."""
    cls = provider_class(kind)
    fields = {name: serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=4096)
              for name in COMMON_TEXT}
    fields.update({name: serializers.BooleanField(required=False) for name in COMMON_FLAGS})
    fields["presign_ttl"] = serializers.IntegerField(required=False)
    for name in cls.option_fields:
        fields[name] = (
            serializers.IntegerField(required=False, allow_null=True, min_value=0) if name in INTEGER_OPTIONS
            else serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=4096))
    for name in cls.secret_fields:
        fields[name] = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=65536,
                                             trim_whitespace=False, write_only=True)
    return type(f"{kind.title()}StorageInput", (serializers.Serializer,), fields)


def storage_payload(storage: Storage) -> dict:
    cls = provider_class(storage.kind)
    payload = {
        "id": storage.pk, "type": storage.kind, "project": storage.project_id,
        "title": storage.title, "description": storage.description,
        "prefix": storage.prefix, "regex_filter": storage.regex_filter,
        "use_blob_urls": storage.use_blob_urls, "synchronizable": storage.synchronizable,
        "status": storage.status, "last_sync": storage.last_sync, "last_sync_count": storage.last_sync_count,
        "last_sync_job": storage.last_sync_job or None, "traceback": storage.traceback or None,
        "meta": storage.meta, "created_at": storage.created_at,
    }
    if storage.direction == Storage.Direction.IMPORT:
        payload.update(presign=storage.presign, presign_ttl=storage.presign_ttl,
                       recursive_scan=storage.recursive_scan)
    else:
        payload["can_delete_objects"] = storage.can_delete_objects
    payload.update({name: storage.options.get(name) for name in cls.option_fields})
    return payload


def _kind_or_404(kind: str) -> str:
    if kind not in KINDS:
        from django.http import Http404

        raise Http404(f"No storage type {kind!r}; the types are {', '.join(KINDS)}.")
    return kind


def _fields(request, kind: str, *, partial: bool) -> dict:
    serializer = input_serializer(kind)(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class StorageApi(LabelingApi):
    direction = Storage.Direction.IMPORT


class StorageTypesApi(StorageApi):
    permissions = {"GET": "organizations.view"}

    def get(self, request):
        return Response([{"name": kind, "title": TITLES[kind]} for kind in KINDS])


class StorageListAllApi(StorageApi):
    """Every storage of a project, whatever its type (LS: GET /api/storages/?project=)."""

    permissions = {"GET": "storages.view"}

    def get(self, request):
        project_id = query_int(request, "project")
        if project_id is None:
            raise ValidationError({"project": "Give the project id: ?project=ID."})
        project = _project_or_404(self.actor, project_id, permission="storages.view")
        return Response([storage_payload(s) for s in selectors.storages_of(project=project, direction=self.direction)])


class StorageListCreateApi(StorageApi):
    permissions = {"GET": "storages.view", "POST": "storages.change"}

    def get(self, request, kind):
        kind = _kind_or_404(kind)
        project_id = query_int(request, "project")
        if project_id is None:
            raise ValidationError({"project": "Give the project id: ?project=ID."})
        project = _project_or_404(self.actor, project_id, permission="storages.view")
        found = selectors.storages_of(project=project, direction=self.direction, kind=kind)
        return Response([storage_payload(s) for s in found])

    def post(self, request, kind):
        kind = _kind_or_404(kind)
        project_id = request.data.get("project")
        if isinstance(project_id, bool) or not isinstance(project_id, int | str) or not str(project_id).isdigit():
            raise ValidationError({"project": "Give the project's id."})
        project = body_project_or_400(self.actor, int(project_id), permission="storages.change")
        fields = _fields(request, kind, partial=True)
        storage = services.storage_create(project=project, direction=self.direction, kind=kind, fields=fields)
        return Response(storage_payload(storage), status=status.HTTP_201_CREATED)


class StorageValidateApi(StorageApi):
    """POST the fields of a storage (with `id`: over that storage's) to check the connection."""

    permissions = {"POST": "storages.change"}

    def post(self, request, kind):
        kind = _kind_or_404(kind)
        storage = None
        if request.data.get("id") not in (None, ""):
            storage = self._storage(kind, request.data.get("id"))
        elif request.data.get("project") not in (None, ""):
            body_project_or_400(self.actor, query_int_of(request.data.get("project")), permission="storages.change")
        data = {name: value for name, value in request.data.items() if name not in ("id", "project")}
        serializer = input_serializer(kind)(data=data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.connection_validate(kind=kind, fields=dict(serializer.validated_data), storage=storage)
        return Response(status=status.HTTP_200_OK)

    def _storage(self, kind, pk) -> Storage:
        return object_or_404(self.actor, Storage.objects.select_related("project"), permission="storages.change",
                             pk=query_int_of(pk, field="id"), kind=kind, direction=self.direction)


def query_int_of(value, *, field: str = "project") -> int:
    if isinstance(value, bool) or not str(value).isdigit():
        raise ValidationError({field: "Give a number."})
    return int(value)


class StorageDetailApi(StorageApi):
    permissions = {"GET": "storages.view", "PATCH": "storages.change", "PUT": "storages.change",
                   "DELETE": "storages.change"}

    def _storage(self, kind, pk, permission) -> Storage:
        return object_or_404(self.actor, Storage.objects.select_related("project"), permission=permission,
                             pk=pk, kind=_kind_or_404(kind), direction=self.direction)

    def get(self, request, kind, pk):
        return Response(storage_payload(self._storage(kind, pk, "storages.view")))

    def patch(self, request, kind, pk):
        storage = self._storage(kind, pk, "storages.change")
        data = {name: value for name, value in request.data.items() if name != "project"}
        serializer = input_serializer(storage.kind)(data=data, partial=True)
        serializer.is_valid(raise_exception=True)
        storage = services.storage_update(storage=storage, fields=dict(serializer.validated_data))
        return Response(storage_payload(storage))

    put = patch

    def delete(self, request, kind, pk):
        services.storage_delete(storage=self._storage(kind, pk, "storages.change"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class StorageSyncApi(StorageApi):
    permissions = {"POST": "storages.change"}

    def post(self, request, kind, pk):
        storage = object_or_404(self.actor, Storage.objects.select_related("project"), permission="storages.change",
                                pk=pk, kind=_kind_or_404(kind), direction=self.direction)
        storage = services.sync_queue(storage=storage, organization=connection.tenant)
        return Response(storage_payload(storage))


class ExportStorageTypesApi(StorageTypesApi):
    direction = Storage.Direction.EXPORT


class ExportStorageListAllApi(StorageListAllApi):
    direction = Storage.Direction.EXPORT


class ExportStorageListCreateApi(StorageListCreateApi):
    direction = Storage.Direction.EXPORT


class ExportStorageValidateApi(StorageValidateApi):
    direction = Storage.Direction.EXPORT


class ExportStorageDetailApi(StorageDetailApi):
    direction = Storage.Direction.EXPORT


class ExportStorageSyncApi(StorageSyncApi):
    direction = Storage.Direction.EXPORT


urlpatterns = [
    route(r"storages", StorageListAllApi),
    route(r"storages/types", StorageTypesApi),
    route(r"storages/export", ExportStorageListAllApi),
    route(r"storages/export/types", ExportStorageTypesApi),
    route(r"storages/export/(?P<kind>[a-z0-9_]+)", ExportStorageListCreateApi),
    route(r"storages/export/(?P<kind>[a-z0-9_]+)/validate", ExportStorageValidateApi),
    route(r"storages/export/(?P<kind>[a-z0-9_]+)/(?P<pk>\d+)", ExportStorageDetailApi),
    route(r"storages/export/(?P<kind>[a-z0-9_]+)/(?P<pk>\d+)/sync", ExportStorageSyncApi),
    route(r"storages/(?P<kind>[a-z0-9_]+)", StorageListCreateApi),
    route(r"storages/(?P<kind>[a-z0-9_]+)/validate", StorageValidateApi),
    route(r"storages/(?P<kind>[a-z0-9_]+)/(?P<pk>\d+)", StorageDetailApi),
    route(r"storages/(?P<kind>[a-z0-9_]+)/(?P<pk>\d+)/sync", StorageSyncApi),
]
