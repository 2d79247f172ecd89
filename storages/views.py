"""Objects of a project's storages served to those who may see them, outside /api/ (LS's paths):

- `/tasks/<id>/presign/?fileuri=<base64 uri>`: the storage proxy. The caller must see the task;
  the URI must be covered by an import storage of the task's project. With `presign`, a redirect
  to the signed URL; without, the object's bytes (the server reads them with the credentials).
- `/data/local-files/?d=<path below the organization's folder>`: a local file, to a member who
  sees a project with a local-files storage over it.
- `/projects/<id>/storages`: the page of a project's storages (storages/static/storages/storages.js).
"""

import itertools
import mimetypes
from pathlib import PurePosixPath
from urllib.parse import quote

from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.urls import re_path
from django.views.decorators.csrf import ensure_csrf_cookie

from accounts.access import actor_of, can
from labeling import views as pages
from labeling.access import visible_projects
from labeling.api import LabelingApi, object_or_404
from labeling.models import Task
from platform_core.routing import route
from storages.api import TITLES
from storages.models import Storage
from storages.providers import KINDS, StorageError
from storages.selectors import Resolver, decode_fileuri
from storages.services import provider_of

CACHE_SECONDS = 300


def _object_response(*, provider, key: str) -> StreamingHttpResponse:
    """The object streamed (a page scan may be large); a missing one is a 404 before any byte."""
    pieces = provider.chunks(key)
    first = next(pieces, b"")  # StorageError here, while a 404 can still be answered
    content_type = mimetypes.guess_type(PurePosixPath(key).name)[0] or "application/octet-stream"
    response = StreamingHttpResponse(itertools.chain([first], pieces), content_type=content_type)
    response["Cache-Control"] = f"private, max-age={CACHE_SECONDS}"
    response["X-Content-Type-Options"] = "nosniff"
    # Bucket contents are the members' to choose: an HTML or SVG file opened from here must not run
    # as this site (an <img> or the editor still shows images; the policy only binds documents).
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self' data:; media-src 'self'; sandbox"
    return response


class TaskFileProxyApi(LabelingApi):
    permissions = {"GET": "tasks.view"}

    def get(self, request, pk):
        task = object_or_404(self.actor, Task.objects.select_related("project"), permission="tasks.view", pk=pk)
        uri = decode_fileuri(request.query_params.get("fileuri") or "")
        if not uri:
            raise Http404("Give fileuri: the base64 of a storage URI.")
        located = Resolver(project_id=task.project_id).locate(uri)
        if located is None:
            raise Http404("No storage of this project holds that file.")
        storage, provider, key = located
        try:
            if storage.presign and storage.kind != "localfiles":
                return HttpResponseRedirect(provider.presigned_url(key, ttl_seconds=storage.presign_ttl * 60))
            return _object_response(provider=provider, key=key)
        except StorageError as exc:
            raise Http404(exc.detail) from None


class LocalFileApi(LabelingApi):
    permissions = {"GET": "tasks.view"}

    def get(self, request):
        relative = request.query_params.get("d") or ""
        uri = f"/data/local-files/?d={quote(relative)}"
        storages = Storage.objects.filter(kind="localfiles", direction=Storage.Direction.IMPORT,
                                          project__in=visible_projects(self.actor))
        for storage in storages:
            provider = provider_of(storage)
            try:
                key = provider.key_of(uri)
                if key is not None:
                    return _object_response(provider=provider, key=key)
            except StorageError:
                continue
        raise Http404("No local storage of a project you can see holds that file.")


@ensure_csrf_cookie
def project_storages_page(request, pk: int):
    """`/o/<slug>/projects/<id>/storages`: the project's storages, and the form that connects one."""
    actor = actor_of(request)
    project = pages.visible_project(actor, pk)
    if project is None:
        return pages.not_found(request)
    if not can(actor, "storages.view", project):
        return pages.refused(request, "storages.view")
    types = [{"name": kind, "title": TITLES[kind]} for kind in KINDS]
    can_change = can(actor, "storages.change", project)
    config = pages.page_config(request, project, canChange=can_change, types=types)
    return pages.render_page(request, "storages/project_storages.html", project, config=config, context={
        "can_change": can_change, "types": types,
        "directions": [("import", "Source storages"), ("export", "Target storages")]})


urlpatterns = [
    route(r"tasks/(?P<pk>\d+)/presign", TaskFileProxyApi),
    route(r"data/local-files", LocalFileApi),
    re_path(r"^projects/(?P<pk>\d+)/storages/?$", project_storages_page, name="project-storages"),
]
