"""The audit log API: /api/audit-log (administrative actions of the organization, newest first)."""

from datetime import datetime

from django.core.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.views import APIView

from accounts.audit import events_of
from accounts.models import AuditEvent
from platform_core.params import query_datetime
from platform_core.routing import route


class AuditPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


def query_moment(request, *names: str) -> datetime | None:
    """platform_core.params.query_datetime of the first of `names` given."""
    for name in names:
        if (moment := query_datetime(request, name)) is not None:
            return moment
    return None


def query_user_id(request, *names: str) -> int | None:
    for name in names:
        value = (request.query_params.get(name) or "").strip()
        if value:
            if not value.isdigit():
                raise ValidationError({name: f"Give a user id, got {value!r}."})
            return int(value)
    return None


def audit_event_payload(event: AuditEvent) -> dict:
    actor = event.actor
    return {
        "id": event.pk,
        "created_at": event.created_at,
        "action": event.action,
        "actor": None if actor is None else {
            "id": actor.pk, "email": actor.email, "first_name": actor.first_name, "last_name": actor.last_name,
        },
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_repr": event.target_repr,
        "details": event.details,
        "ip_address": event.ip_address,
    }


class AuditLogApi(APIView):
    """`page`, `page_size`; filters `action` (exact, or a family: "token." / "token.*"), `actor`
    (or `user`: a user id), `start_date` / `since` and `end_date` / `until` (ISO-8601; the end is
    exclusive)."""

    permissions = {"GET": "audit.view"}

    def get(self, request):
        events = events_of(
            organization=request._request.organization,
            action=(request.query_params.get("action") or "").strip() or None,
            actor_id=query_user_id(request, "actor", "user"),
            since=query_moment(request, "start_date", "since"),
            until=query_moment(request, "end_date", "until"),
        )
        paginator = AuditPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response([audit_event_payload(event) for event in page])


urlpatterns = [
    route(r"audit-log", AuditLogApi),
]
