"""Activity log API (Label Studio Enterprise's /api/activity-logs/): `audit.view`, an organization
permission (Owner and Administrator by default)."""

from django.http import Http404
from rest_framework.response import Response

from accounts.access import require
from billing import limits as billing_limits
from labeling.activity import activity_logs_filtered
from labeling.api import LabelingApi
from labeling.models import ActivityLog
from platform_core.params import query_int
from platform_core.routing import route

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def activity_log_payload(entry: ActivityLog, *, organization_id: int) -> dict:
    return {
        "id": entry.pk,
        "datetime": entry.datetime,
        "user_id": entry.user_id,
        "email": entry.email,
        "request_method": entry.request_method,
        "request_url": entry.request_url,
        "response_code": entry.response_code,
        "duration": entry.duration,
        "ip_address": entry.ip_address,
        "user_agent": entry.user_agent,
        "http_referer": entry.http_referer,
        "project_id": entry.project_id,
        "workspace_owner_id": entry.workspace_owner_id,
        "organization_id": organization_id,
        "user_session": entry.user_session,
        "extra_data": entry.extra_data,
    }


class ActivityLogApi(LabelingApi):
    """`{"data": [...], "recordsTotal": N, "recordsFiltered": M}`, newest first by default.

    Paging: `page` (from 1) and `page_size`, or DataTables' `start` (offset) and `length`; a size of
    -1 ("all") and anything larger is capped at MAX_PAGE_SIZE. A page past the end is a 404 (as the
    reference API). Filters: `user` (or `user_id`), `project` (or `project_id`), `workspace`, `method`,
    `search` (terms joined with AND / OR, matched in the URL), `start_date`, `end_date`, `ordering`."""

    permissions = {"GET": "audit.view"}

    def get(self, request):
        require(self.actor, "audit.view")  # the organization's role: a project override does not reach it
        billing_limits.feature_or_raise(organization_id=self.actor.organization_id, feature="activity_log")
        params = request.query_params
        user_id = query_int(request, "user") or query_int(request, "user_id")
        project_id = query_int(request, "project") or query_int(request, "project_id")
        queryset = activity_logs_filtered(
            user_id=user_id, project_id=project_id, workspace_owner_id=query_int(request, "workspace"),
            method=params.get("method"), search=params.get("search"), start_date=params.get("start_date"),
            end_date=params.get("end_date"), ordering=params.get("ordering") or None,
        )
        size = query_int(request, "page_size", None, minimum=-1) or query_int(request, "length", None, minimum=-1)
        size = MAX_PAGE_SIZE if size in (-1, 0) else min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        if "start" in params and "page" not in params:
            offset = query_int(request, "start", 0, minimum=0)
        else:
            offset = (query_int(request, "page", 1) - 1) * size
        entries = list(queryset[offset:offset + size])
        if not entries and offset > 0:
            raise Http404("No more logs found.")
        organization_id = request._request.organization.pk
        return Response({
            "data": [activity_log_payload(entry, organization_id=organization_id) for entry in entries],
            "recordsTotal": ActivityLog.objects.count(),
            "recordsFiltered": queryset.count(),
        })


urlpatterns = [
    route(r"activity-logs", ActivityLogApi),
]
