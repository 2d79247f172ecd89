"""HTTP side of tenant routing (see resolver.py for the rules) and the membership check."""

from urllib.parse import quote

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import get_script_prefix, set_script_prefix

from accounts.selectors import membership_get
from sso.scim_errors import is_scim_path, scim_error
from tenants.resolver import SESSION_ORGANIZATION_KEY, RoutingError, resolve

# Answer without a member: discovery, health and the token exchange (the refresh token in the
# body is the credential there).
OPEN_PATHS = frozenset({"/api/version/", "/api/version", "/health", "/api/token/refresh/", "/api/token/blacklist/"})
# Reached by people who are not members yet and by the identity provider: SAML (metadata, login,
# the assertion consumer, logout; sso/views_saml.py checks what arrives) and SCIM (the IdP's
# bearer token, checked by sso/api_scim.py).
OPEN_PREFIXES = ("/saml/", "/scim/")


def is_api_path(path_info: str) -> bool:
    return path_info.startswith(("/api/", "/scim/"))


def _refuse(request, status: int, detail: str, api: bool):
    if api:
        return JsonResponse({"detail": detail}, status=status)
    html = render_to_string("tenants/refused.html", {"status": status, "detail": detail}, request=request)
    return HttpResponse(html, status=status)


class TenantRoutingMiddleware:
    """First in MIDDLEWARE: picks the organization, sets the schema and URLconf, resets after."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        original_prefix = get_script_prefix()
        try:
            resolution = resolve(
                path=request.path_info,
                authorization=request.META.get("HTTP_AUTHORIZATION"),
                session_key=request.COOKIES.get(settings.SESSION_COOKIE_NAME),
            )
        except RoutingError as exc:
            connection.set_schema_to_public()
            if is_scim_path(request.path_info):
                return scim_error(exc.status, exc.detail)
            return JsonResponse({"detail": exc.detail}, status=exc.status)

        request.organization = resolution.organization
        request.credential = resolution.credential
        request.routed_by = resolution.by
        request.membership = None
        request.path_info = resolution.path_info
        if resolution.organization is not None:
            connection.set_tenant(resolution.organization)
            request.tenant = resolution.organization
            request.urlconf = settings.ROOT_URLCONF
            if resolution.script_prefix != "/":
                set_script_prefix(original_prefix.rstrip("/") + resolution.script_prefix)
        else:
            connection.set_schema_to_public()
            request.tenant = None
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
        try:
            return self.get_response(request)
        finally:
            connection.set_schema_to_public()
            set_script_prefix(original_prefix)


class OrganizationAccessMiddleware:
    """After AuthenticationMiddleware: only active members reach an organization."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        organization = getattr(request, "organization", None)
        if (organization is None or request.path_info in OPEN_PATHS
                or request.path_info.startswith(OPEN_PREFIXES)):
            return self.get_response(request)
        api = is_api_path(request.path_info)
        credential = request.credential
        user = credential.user if credential is not None else request.user
        if not user.is_authenticated:
            if api:
                return JsonResponse({"detail": "Authentication credentials were not provided."}, status=401)
            return redirect(f"{settings.LOGIN_URL}?next={quote(request.get_full_path())}")
        membership = membership_get(user=user, organization=organization)
        if membership is None:
            return _refuse(request, 403, "You are not a member of this organization.", api)
        if not membership.is_active:
            return _refuse(request, 403, "Your membership in this organization is not active.", api)
        request.membership = membership
        if credential is None and request.session.get(SESSION_ORGANIZATION_KEY) != organization.pk:
            # Rule 2 of routing: bare /api/ calls from the browser go to the last organization visited.
            request.session[SESSION_ORGANIZATION_KEY] = organization.pk
        return self.get_response(request)
