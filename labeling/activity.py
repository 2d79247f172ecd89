"""The activity log: every API call a member makes in an organization, one row in its schema.

`ActivityLogMiddleware` sits right after tenants.middleware.OrganizationAccessMiddleware, so it
sees only calls that reached an organization as one of its active members (a refused outsider is
never written into the organization's log). It records who, what (method and path; query
parameters that look like credentials are dropped; the body never), the response code and time,
and where from. Reads of the log itself are recorded too: who looked at the audit trail is part
of it. A failure to record is logged and never fails the request.
"""

import ipaddress
import logging
import re
import time
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import tenant_context

from labeling.models import ActivityLog
from platform_core.params import parse_moment

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
PROJECT_IN_PATH = re.compile(r"^/api/projects/(\d+)(?:/|$)")
# Query parameters whose name contains one of these never reach the log.
SENSITIVE_PARAMETERS = ("token", "key", "secret", "password", "passwd", "signature", "auth", "credential",
                        "session", "code", "jwt", "refresh", "access")
MAX_URL = 256


def _safe_query(query_string: str) -> str:
    pairs = parse_qsl(query_string, keep_blank_values=True)
    kept = [(name, value) for name, value in pairs
            if not any(word in name.lower() for word in SENSITIVE_PARAMETERS)]
    return urlencode(kept)


def _request_url(request) -> str:
    query = _safe_query(request.META.get("QUERY_STRING", ""))
    return (request.path_info + (f"?{query}" if query else ""))[:MAX_URL]


def _client_ip(request) -> str | None:
    """REMOTE_ADDR, or, behind ACTIVITY_LOG_TRUSTED_PROXIES proxies, the address the outermost of
    them saw (counted from the right of X-Forwarded-For: entries further left are client-written)."""
    address = request.META.get("REMOTE_ADDR")
    proxies = settings.ACTIVITY_LOG_TRUSTED_PROXIES
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        return None


def _project_id(request) -> int | None:
    match = PROJECT_IN_PATH.match(request.path_info)
    value = match.group(1) if match else request.GET.get("project", "")
    return int(value) if value.isdigit() and len(value) < 19 else None


def _row_for(request, response, duration_ms: int) -> ActivityLog:
    credential = getattr(request, "credential", None)
    user = credential.user if credential is not None else request.user
    session_key = None
    if credential is None and hasattr(request, "session"):
        session_key = (request.session.session_key or "")[:8] or None
    return ActivityLog(
        user_id=user.pk,
        email=(user.email or "")[:256],
        request_method=request.method[:10],
        request_url=_request_url(request),
        response_code=str(response.status_code)[:3],
        duration=duration_ms,
        ip_address=_client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:1024],
        http_referer=request.META.get("HTTP_REFERER", "")[:1024],
        project_id=_project_id(request),
        user_session=session_key,
    )


def _insert(row: ActivityLog) -> None:
    if connection.in_atomic_block:
        # A savepoint: a failed insert must not doom an enclosing transaction (tests run in one).
        with transaction.atomic():
            row.save(force_insert=True)
        return
    with transaction.atomic():
        # Every API call writes one row: waiting for its WAL flush doubled the cost of a small
        # request. A crash may lose the last fraction of a second of log entries, never data.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        row.save(force_insert=True)


class ActivityLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.monotonic()
        response = self.get_response(request)
        if (settings.ACTIVITY_LOG_ENABLED and request.path_info.startswith(API_PREFIX)
                and getattr(request, "membership", None) is not None):
            try:
                self._record(request, response, int((time.monotonic() - started) * 1000))
            except Exception:
                logger.exception("could not record the activity log entry of %s %s", request.method,
                                 request.path_info)
        return response

    @staticmethod
    def _record(request, response, duration_ms: int) -> None:
        row = _row_for(request, response, duration_ms)
        organization = request.organization
        if connection.schema_name == organization.schema_name:
            _insert(row)
        else:  # something in the view switched schemas: write to the request's organization all the same
            with tenant_context(organization):
                _insert(row)


# --- selectors -----------------------------------------------------------------------------------

METHODS = frozenset({"DELETE", "GET", "PATCH", "POST", "PUT"})
ORDERINGS = {
    "datetime": ("datetime", "id"), "-datetime": ("-datetime", "-id"), "id": ("id",), "-id": ("-id",),
    "duration": ("duration", "id"), "-duration": ("-duration", "-id"),
    "response_code": ("response_code", "id"), "-response_code": ("-response_code", "-id"),
}


def _search_filter(expression: str) -> Q:
    """`a AND b OR c` -> (url has a and b) or (url has c). AND binds tighter, as usual."""
    any_of = Q()
    for alternative in re.split(r"\s+OR\s+", expression.strip(), flags=re.IGNORECASE):
        all_of = Q()
        for term in re.split(r"\s+AND\s+", alternative, flags=re.IGNORECASE):
            if term.strip():
                all_of &= Q(request_url__icontains=term.strip())
        any_of |= all_of
    return any_of


def activity_logs_filtered(*, user_id: int | None = None, project_id: int | None = None,
                           workspace_owner_id: int | None = None, method: str | None = None,
                           search: str | None = None, start_date: str | None = None,
                           end_date: str | None = None, ordering: str | None = None):
    queryset = ActivityLog.objects.all()
    if user_id is not None:
        queryset = queryset.filter(user_id=user_id)
    if project_id is not None:
        queryset = queryset.filter(project_id=project_id)
    if workspace_owner_id is not None:
        queryset = queryset.filter(workspace_owner_id=workspace_owner_id)
    if method and method.lower() != "all":
        if method.upper() not in METHODS:
            raise ValidationError({"method": f"Choose one of {sorted(METHODS)} or 'all'."})
        queryset = queryset.filter(request_method=method.upper())
    if search and search.strip():
        queryset = queryset.filter(_search_filter(search))
    if start_date:
        queryset = queryset.filter(datetime__gte=parse_moment(start_date, field="start_date")[0])
    if end_date:
        moment, bare_date = parse_moment(end_date, field="end_date")
        # A bare end date includes that whole day.
        queryset = queryset.filter(datetime__lt=moment + timedelta(days=1)) if bare_date else \
            queryset.filter(datetime__lte=moment)
    order = ORDERINGS.get(ordering or "-datetime")
    if order is None:
        raise ValidationError({"ordering": f"Choose one of {sorted(ORDERINGS)}."})
    return queryset.order_by(*order)


# --- services ------------------------------------------------------------------------------------

PURGE_BATCH = 10_000


def activity_logs_purge_expired(*, now=None) -> int:
    """Delete this organization's entries older than ACTIVITY_LOG_RETENTION_DAYS, in batches (short
    locks, bounded WAL per statement). Returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.ACTIVITY_LOG_RETENTION_DAYS)
    total = 0
    while True:
        batch = list(ActivityLog.objects.filter(datetime__lt=cutoff).values_list("pk", flat=True)[:PURGE_BATCH])
        if not batch:
            return total
        deleted, _ = ActivityLog.objects.filter(pk__in=batch).delete()
        total += deleted
