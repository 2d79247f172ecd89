"""Which organization a request is for: the three routing rules of ARCHITECTURE.md.

One function, `resolve`, used by the HTTP middleware and (later) the ASGI websocket middleware:
1. `/o/<slug>/...`: that organization; the prefix is stripped.
2. `/api/...`, `/scim/...`, `/ws/...`: the organization of the credential, else the session's
   active organization.
3. Anything else: the public schema.

`/scim/` paths take only SCIM bearer tokens (sso.selectors), the identity provider's credential,
and never a session; every other path takes only users' API tokens, so a SCIM token opens no
`/api/` route and an API token no SCIM route.
"""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.utils.module_loading import import_string

from accounts.selectors import Credential, credential_from_authorization
from accounts.tokens import TokenError
from sso.selectors import ScimCredential, scim_credential_from_authorization
from tenants.models import Organization
from tenants.selectors import organization_get_by_slug

ORG_PREFIX = "/o/"
# /data/ serves uploaded files, referenced by relative URLs in task data (LS style).
CREDENTIAL_ROUTED_PREFIXES = ("/api/", "/scim/", "/ws/", "/data/")
SCIM_PREFIX = "/scim/"
SESSION_ORGANIZATION_KEY = "active_organization_id"


class RoutingError(Exception):
    status = 400

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class UnknownOrganization(RoutingError):
    status = 404


class BadCredential(RoutingError):
    status = 401


class ForeignCredential(RoutingError):
    status = 403


@dataclass(frozen=True)
class Resolution:
    organization: Organization | None
    path_info: str  # the path the URLconf sees (prefix stripped)
    script_prefix: str  # prefix for reverse(): "/o/<slug>/" or "/"
    credential: Credential | ScimCredential | None = None
    by: str = "public"  # "path" | "credential" | "session" | "public"


def _session_organization_id(session_key: str | None) -> int | None:
    if not session_key:
        return None
    store: SessionBase = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key)
    if not store.get("_auth_user_id"):
        return None
    return store.get(SESSION_ORGANIZATION_KEY)


def resolve(*, path: str, authorization: str | None, session_key: str | None) -> Resolution:
    """Resolve a request path plus its credentials. Raises a RoutingError subclass to refuse."""
    organization = slug = None
    if path.startswith(ORG_PREFIX):
        slug, _, rest = path[len(ORG_PREFIX):].partition("/")
        rest = "/" + rest
        if slug == "api":
            # `urljoin("http://host/o/<slug>", "api/...")` drops the slug: treat as rule 2.
            path, slug = "/api" + rest, None
        else:
            organization = organization_get_by_slug(slug=slug)
            if organization is None:
                raise UnknownOrganization(f"No organization '{slug}'.")
            path = rest

    scim = path.startswith(SCIM_PREFIX)
    try:
        if scim:
            credential = scim_credential_from_authorization(authorization)
        else:
            credential = credential_from_authorization(authorization) if authorization else None
    except TokenError as exc:
        raise BadCredential(str(exc)) from exc

    if organization is not None:
        if credential is not None and credential.organization.pk != organization.pk:
            raise ForeignCredential("This token belongs to another organization.")
        return Resolution(organization, path, f"{ORG_PREFIX}{slug}/", credential, "path")

    if path.startswith(CREDENTIAL_ROUTED_PREFIXES):
        if credential is not None:
            return Resolution(credential.organization, path, "/", credential, "credential")
        if scim:
            # The identity provider's endpoints never act on a browser session.
            return Resolution(None, path, "/", None, "public")
        organization_id = _session_organization_id(session_key)
        if organization_id is not None:
            organization = Organization.objects.filter(pk=organization_id, deleted_at__isnull=True).first()
            if organization is not None:
                return Resolution(organization, path, "/", None, "session")
    return Resolution(None, path, "/", credential, "public")
