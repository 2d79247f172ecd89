"""Uploaded files (Label Studio's FileUpload API), the second step of a two-step import, and the
URL that serves stored files to the organization's members (`/data/upload/...`, mounted at the
tenant URLconf's root by platform_core/urls_tenant.py)."""


from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponseRedirect
from rest_framework import status
from rest_framework.response import Response

from labeling import uploads
from labeling.api import LabelingApi, ProjectImportApi, _project_or_404, object_or_404, visible_or_404
from labeling.models import FileUpload
from platform_core.params import body_ids, query_bool, query_ids
from platform_core.routing import route


def file_upload_payload(upload: FileUpload) -> dict:
    """LS's FileUpload (id, file, size) and what we know besides. URLs are relative to the host."""
    urls = uploads.upload_urls(upload)
    return {
        "id": upload.pk,
        "file": urls["file"],
        "size": upload.size,
        "project": upload.project_id,
        "original_name": upload.original_name,
        "content_type": upload.content_type,
        "pages": urls["pages"],
        "page_count": len(upload.pages),
        "thumbnail": urls["thumbnail"],
        "width": upload.width,
        "height": upload.height,
        "created_by": upload.created_by_id,
        "created_at": upload.created_at,
    }


def _ids_from_query(request) -> list[int] | None:
    """The `ids` asked for; None (every upload) when absent or with `all=true`."""
    return None if query_bool(request, "all") else query_ids(request, "ids")


def _ids_from_body(request) -> list[int] | None:
    ids = request.data.get("file_upload_ids") if hasattr(request.data, "get") else None
    return None if ids is None else body_ids(ids, field="file_upload_ids")


class ProjectFileUploadsApi(LabelingApi):
    """GET a project's uploads (optionally `ids`); DELETE some (`file_upload_ids`) or all of them."""

    permissions = {"GET": "tasks.view", "DELETE": "tasks.import"}

    def get(self, request, pk):
        project = _project_or_404(self.actor, pk, permission="tasks.view")
        queryset = uploads.file_uploads_of(project=project, ids=_ids_from_query(request))
        return Response([file_upload_payload(upload) for upload in queryset])

    def delete(self, request, pk):
        project = _project_or_404(self.actor, pk, permission="tasks.import")
        deleted = uploads.file_uploads_delete(project=project, ids=_ids_from_body(request))
        return Response({"deleted": deleted})


class FileUploadDetailApi(LabelingApi):
    """GET one upload, PATCH its file (multipart `file`), DELETE it."""

    permissions = {"GET": "tasks.view", "PATCH": "tasks.import", "PUT": "tasks.import", "DELETE": "tasks.import"}

    def _get(self, pk, permission: str) -> FileUpload:
        return object_or_404(self.actor, FileUpload.objects.select_related("project"), permission=permission, pk=pk)

    def get(self, request, pk):
        return Response(file_upload_payload(self._get(pk, "tasks.view")))

    def patch(self, request, pk):
        upload = self._get(pk, "tasks.import")
        file = request.FILES.get("file")
        if file is None:
            raise ValidationError({"file": "Required: send the new file as multipart field 'file'."})
        upload = uploads.file_upload_replace(upload=upload, file=file, user=request.user)
        return Response(file_upload_payload(upload))

    put = patch

    def delete(self, request, pk):
        uploads.file_upload_delete(upload=self._get(pk, "tasks.import"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectReimportApi(LabelingApi):
    """POST {"file_upload_ids": [...]}: make the tasks of uploads stored with commit_to_project=false."""

    permissions = {"POST": "tasks.import"}

    def post(self, request, pk):
        project = _project_or_404(self.actor, pk, permission="tasks.import")
        return_task_ids = query_bool(request, "return_task_ids")
        ids = request.data.get("file_upload_ids") if hasattr(request.data, "get") else None
        outcome = uploads.file_uploads_reimport(project=project, user=request.user, file_upload_ids=ids,
                                                return_task_ids=return_task_ids)
        return ProjectImportApi.outcome_response(outcome, return_task_ids=return_task_ids)


class UploadedFileApi(LabelingApi):
    """GET /data/upload/<name>: a stored file (original, PDF page or thumbnail) of this organization.

    The routing middleware has chosen the organization and checked the caller is an active member;
    a name that is not one of this schema's uploads, or of a project the caller cannot see, is a 404."""

    permissions = {"GET": "tasks.view"}

    def get(self, request, name):
        stored_name = uploads.STORAGE_PREFIX + name
        upload = visible_or_404(self.actor, uploads.file_upload_owning(name=stored_name), permission="tasks.view")
        storage = upload.file.storage
        try:
            storage.path(stored_name)
        except NotImplementedError:
            # Object storage: the client fetches it from there, with a URL that expires soon.
            return HttpResponseRedirect(storage.url(stored_name))
        try:
            handle = storage.open(stored_name, "rb")
        except FileNotFoundError:
            raise Http404("The stored file is gone.") from None
        response = FileResponse(handle)
        response["Cache-Control"] = "private, max-age=3600"
        return response


urlpatterns = [
    route(r"projects/(?P<pk>\d+)/file-uploads", ProjectFileUploadsApi),
    route(r"projects/(?P<pk>\d+)/reimport", ProjectReimportApi),
    route(r"import/file-upload/(?P<pk>\d+)", FileUploadDetailApi),
]

# Served outside /api/ (LS's path): platform_core/urls_tenant.py includes these at the root.
data_urlpatterns = [
    route(r"data/upload/(?P<name>.+?)", UploadedFileApi),
]
