"""The organization's session policy (Label Studio's SessionTimeoutPolicy) and its enforcement.

The policy limits browser sessions only: how long after login (max_session_age) and how long
without a request (max_time_between_activity) a session may reach the organization, in minutes.
API tokens have their own lifetimes and are not affected.

The session remembers when it started (at login, or when first seen here) and when it was last
active. A session is judged by the policy of the organization it asks for: a request to org B is
never refused because of org A's policy, but once a session expires it is logged out everywhere
(one browser session serves every organization of the user).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import receiver
from django.http import JsonResponse
from django.shortcuts import redirect

from accounts import audit
from accounts.models import SessionPolicy, User
from platform_core import clock
from tenants.middleware import is_api_path
from tenants.models import Organization

MAX_MINUTES = 2147483647
POLICY_FIELDS = ("max_session_age", "max_time_between_activity")
SESSION_STARTED_KEY = "session_policy.started_at"
SESSION_ACTIVE_KEY = "session_policy.active_at"
# Last activity is stored at this resolution: writing the session on every request would cost a
# session save per request for a precision no policy (counted in minutes) needs.
ACTIVITY_RESOLUTION = timedelta(minutes=1)


# --- Selector and service ----------------------------------------------------------------------

def session_policy_of(*, organization: Organization) -> SessionPolicy:
    """The organization's policy, or the (unsaved) defaults when it never set one."""
    policy = SessionPolicy.objects.filter(organization_id=organization.pk).first()
    return policy or SessionPolicy(organization_id=organization.pk)


def _minutes(value, *, field: str) -> int:
    """A whole number of minutes in range; JSON numbers or digit strings (form posts)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError({field: "Must be a whole number of minutes."})
    if not 1 <= value <= MAX_MINUTES:
        raise ValidationError({field: f"Must be between 1 and {MAX_MINUTES} minutes."})
    return value


def session_policy_update(*, organization: Organization, actor: User | None, changes: dict,
                          request=None) -> SessionPolicy:
    """Change the policy (only the fields given); audited as "session_policy.changed"."""
    unknown = sorted(set(changes) - set(POLICY_FIELDS))
    if unknown:
        raise ValidationError({unknown[0]: f"Unknown field; the policy has {list(POLICY_FIELDS)}."})
    errors, values = {}, {}
    for field, value in changes.items():
        try:
            values[field] = _minutes(value, field=field)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        policy, _ = SessionPolicy.objects.select_for_update().get_or_create(organization_id=organization.pk)
        diff = {field: {"from": getattr(policy, field), "to": value}
                for field, value in values.items() if getattr(policy, field) != value}
        if diff:
            for field, value in values.items():
                setattr(policy, field, value)
            policy.save()
            audit.record(organization=organization, actor=actor, action="session_policy.changed",
                         target=policy, details=diff, request=request)
    return policy


# --- Enforcement -------------------------------------------------------------------------------

def _stamp(moment: datetime) -> float:
    return moment.timestamp()


def _moment(session, key: str) -> datetime | None:
    value = session.get(key)
    if not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, tz=UTC)


@receiver(user_logged_in, dispatch_uid="session_policy_login_time")
def _remember_login_time(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        now = _stamp(clock.now())
        request.session[SESSION_STARTED_KEY] = now
        request.session[SESSION_ACTIVE_KEY] = now


def session_expiry(*, session, policy: SessionPolicy, now: datetime) -> str | None:
    """Why the session may no longer be used ("age" or "idle"), or None after noting the activity.

    Touches the session only on its first sight and when the last activity is older than
    ACTIVITY_RESOLUTION, so most requests leave it unmodified (and unsaved)."""
    started = _moment(session, SESSION_STARTED_KEY)
    if started is None:
        started = now
        session[SESSION_STARTED_KEY] = _stamp(now)
    active = _moment(session, SESSION_ACTIVE_KEY) or started
    if now - started > timedelta(minutes=policy.max_session_age):
        return "age"
    if now - active > timedelta(minutes=policy.max_time_between_activity):
        return "idle"
    if SESSION_ACTIVE_KEY not in session or now - active >= ACTIVITY_RESOLUTION:
        session[SESSION_ACTIVE_KEY] = _stamp(now)
    return None


_EXPIRY_MESSAGES = {
    "age": "Your session has reached this organization's maximum session age; log in again.",
    "idle": "Your session was inactive longer than this organization allows; log in again.",
}


def _expired_response(request, reason: str):
    if is_api_path(request.path_info):
        return JsonResponse({"detail": _EXPIRY_MESSAGES[reason], "code": "session_expired"}, status=401)
    return redirect(f"{settings.LOGIN_URL}?next={quote(request.get_full_path())}")


class SessionPolicyMiddleware:
    """Right after tenants.middleware.OrganizationAccessMiddleware: a browser session that a member
    uses on an organization must satisfy that organization's session policy."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not self._is_member_browser_session(request):
            return self.get_response(request)
        policy = session_policy_of(organization=request.organization)
        reason = session_expiry(session=request.session, policy=policy, now=clock.now())
        if reason is not None:
            logout(request)
            return _expired_response(request, reason)
        return self.get_response(request)

    @staticmethod
    def _is_member_browser_session(request) -> bool:
        # `membership` is set by OrganizationAccessMiddleware only for a member who passed its check.
        return (
            getattr(request, "organization", None) is not None
            and getattr(request, "credential", None) is None
            and getattr(request, "membership", None) is not None
            and request.user.is_authenticated
        )
