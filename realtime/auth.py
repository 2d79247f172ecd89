"""Who opens a websocket, for which organization: the ASGI side of tenant routing.

`/o/<slug>/ws/...` and bare `/ws/...` paths go through tenants.resolver.resolve, as HTTP does.
Then one of two credentials, never an API token in the URL:
- `?ticket=` (scripts): redeemed once (realtime.tickets); a bare `/ws/` path is bound to the
  ticket's organization, and a ticket of another organization than the path's is refused.
- the session cookie (browsers): from an allowed origin only (the site itself or
  CSRF_TRUSTED_ORIGINS), under the rules HTTP applies to a browser session: an active membership
  (tenants.middleware), no session made by another organization's SAML and, in an SSO-only
  organization, only one made by its own (sso.sessions), and the organization's session policy
  (accounts.session_policy).

Refusals accept the handshake and close at once with the protocol's code (4401, 4403, 4404), so
a client can tell them apart; a handshake refused outright would reach it as an HTTP 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import SimpleCookie
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.sessions.backends.base import SessionBase
from django.urls import Resolver404
from django.utils.http import is_same_domain
from django.utils.module_loading import import_string

from accounts.models import Membership, User
from accounts.selectors import membership_get
from accounts.session_policy import session_expiry, session_policy_of
from platform_core import clock
from realtime.tickets import ticket_redeem
from sso.selectors import is_sso_only
from sso.sessions import sso_organization_id
from tenants.models import Organization
from tenants.resolver import RoutingError, UnknownOrganization, resolve

NOT_AUTHENTICATED = 4401
NOT_ALLOWED = 4403
NOT_FOUND = 4404
# Query parameters that would carry a long-lived credential: refused, never looked at.
TOKEN_PARAMETERS = ("token", "access_token", "api_key", "key")
WS_PREFIX = "/ws/"


class Refused(Exception):
    def __init__(self, code: int, detail: str):
        super().__init__(detail)
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class Admission:
    """An admitted connection: the member, the scopes they act with, the path after routing."""

    organization: Organization
    membership: Membership
    scopes: frozenset[str] | None  # None: a browser session (every scope)
    path_info: str
    by: str  # "ticket" | "session"
    session_key: str | None = None


def _headers(scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}


def _active_membership(*, user: User, organization: Organization) -> Membership:
    if not user.is_active or user.deleted_at is not None:
        raise Refused(NOT_AUTHENTICATED, "This account is deactivated.")
    membership = membership_get(user=user, organization=organization)
    if membership is None:
        raise Refused(NOT_ALLOWED, "You are not a member of this organization.")
    if not membership.is_active:
        raise Refused(NOT_ALLOWED, "Your membership in this organization is not active.")
    return membership


def _resolve(*, path: str, session_key: str | None):
    try:
        return resolve(path=path, authorization=None, session_key=session_key)
    except UnknownOrganization as exc:
        raise Refused(NOT_FOUND, exc.detail) from exc
    except RoutingError as exc:
        raise Refused(NOT_ALLOWED, exc.detail) from exc


def _admit_ticket(*, path: str, value: str) -> Admission:
    ticket = ticket_redeem(value=value)
    if ticket is None:
        raise Refused(NOT_AUTHENTICATED, "This ticket is unknown, used or expired: get a new one.")
    resolution = _resolve(path=path, session_key=None)
    organization = resolution.organization
    if organization is None and resolution.path_info.startswith(WS_PREFIX):
        organization = Organization.objects.filter(pk=ticket.organization_id, deleted_at__isnull=True).first()
        if organization is None:
            raise Refused(NOT_ALLOWED, "The organization of this ticket no longer exists.")
    if organization is None or organization.pk != ticket.organization_id:
        raise Refused(NOT_ALLOWED, "This ticket belongs to another organization.")
    user = User.objects.filter(pk=ticket.user_id).first()
    if user is None:
        raise Refused(NOT_AUTHENTICATED, "This ticket's account no longer exists.")
    membership = _active_membership(user=user, organization=organization)
    return Admission(organization, membership, ticket.scopes, resolution.path_info, "ticket")


def origin_allowed(*, origin: str | None, host: str | None) -> bool:
    """The site itself (the Host the browser connected to), or one of CSRF_TRUSTED_ORIGINS."""
    if not origin or origin == "null":
        return False
    if host and urlsplit(origin).netloc.lower() == host.lower():
        return True
    parsed = urlsplit(origin)
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        allowed = urlsplit(trusted)
        pattern = allowed.netloc.lower().lstrip("*")  # Django's "https://*.example.com" is ".example.com"
        if allowed.scheme == parsed.scheme and is_same_domain(parsed.netloc.lower(), pattern):
            return True
    return False


def _session_refusal(*, session: SessionBase, organization: Organization) -> Refused | None:
    """sso.sessions.SsoSessionMiddleware and accounts.session_policy.SessionPolicyMiddleware, for a socket."""
    made_by = sso_organization_id(session)
    if made_by is not None and made_by != organization.pk:
        return Refused(NOT_ALLOWED, "You signed in through another organization's single sign-on; sign in here.")
    if made_by != organization.pk and is_sso_only(organization_id=organization.pk):
        return Refused(NOT_ALLOWED, f"{organization.title} requires single sign-on.")
    if session_expiry(session=session, policy=session_policy_of(organization=organization), now=clock.now()):
        return Refused(NOT_AUTHENTICATED, "Your session has expired under this organization's policy; log in again.")
    return None


def _admit_session(*, path: str, headers: dict[str, str]) -> Admission:
    cookies = SimpleCookie(headers.get("cookie", ""))
    morsel = cookies.get(settings.SESSION_COOKIE_NAME)
    if morsel is None or not morsel.value:
        raise Refused(NOT_AUTHENTICATED, "Connect with your session, or with ?ticket= (POST /api/realtime/ticket).")
    if not origin_allowed(origin=headers.get("origin"), host=headers.get("host")):
        raise Refused(NOT_ALLOWED, "Connections with a session cookie must come from this site.")
    resolution = _resolve(path=path, session_key=morsel.value)
    session = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(morsel.value)
    user = get_user(SimpleNamespace(session=session))
    if not user.is_authenticated:
        raise Refused(NOT_AUTHENTICATED, "Your session has ended; log in again.")
    if resolution.organization is None:
        raise Refused(NOT_ALLOWED, "Open an organization first, or connect under /o/<slug>/.")
    membership = _active_membership(user=user, organization=resolution.organization)
    refusal = _session_refusal(session=session, organization=resolution.organization)
    if refusal is not None:
        raise refusal
    if session.modified:
        session.save()  # the policy's note of activity
    return Admission(resolution.organization, membership, None, resolution.path_info, "session", morsel.value)


def still_admitted(*, admission: Admission) -> Membership:
    """The membership again, as at connection (raises Refused): an open socket calls this now and
    then, since a logout, a session policy or a deactivation in another process sends no event."""
    user = User.objects.filter(pk=admission.membership.user_id).first()
    if user is None:
        raise Refused(NOT_AUTHENTICATED, "This account no longer exists.")
    membership = _active_membership(user=user, organization=admission.organization)
    if admission.by == "session":
        session = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(admission.session_key)
        if get_user(SimpleNamespace(session=session)).pk != user.pk:
            raise Refused(NOT_AUTHENTICATED, "Your session has ended; log in again.")
        refusal = _session_refusal(session=session, organization=admission.organization)
        if refusal is not None:
            raise refusal
    return membership


def admit(*, path: str, query_string: str, headers: dict[str, str]) -> Admission:
    """Raises Refused with the close code."""
    params = parse_qs(query_string)
    if any(name in params for name in TOKEN_PARAMETERS):
        raise Refused(NOT_AUTHENTICATED, "API tokens never go in a URL: POST /api/realtime/ticket, then ?ticket=.")
    if "ticket" in params:
        return _admit_ticket(path=path, value=params["ticket"][0])
    return _admit_session(path=path, headers=headers)


async def refuse(receive, send, refusal: Refused) -> None:
    """Take the handshake, then close with the refusal's code and (short) reason."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    reason = refusal.detail.encode()[:120].decode(errors="ignore")
    await send({"type": "websocket.close", "code": refusal.code, "reason": reason})


class RealtimeAuthMiddleware:
    """Admits a websocket (scope["realtime"] = Admission) and routes what is left of its path."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        try:
            admission = await database_sync_to_async(admit, thread_sensitive=False)(
                path=scope["path"], query_string=scope.get("query_string", b"").decode("latin-1"),
                headers=_headers(scope),
            )
        except Refused as refusal:
            return await refuse(receive, send, refusal)
        # `path_remaining` makes the URLRouter raise Resolver404 for an unknown stream.
        routed = {**scope, "realtime": admission, "path_remaining": admission.path_info}
        try:
            return await self.inner(routed, receive, send)
        except Resolver404:
            return await refuse(receive, send, Refused(NOT_FOUND, "No such stream."))
