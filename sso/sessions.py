"""Browser sessions made by single sign-on, and the SSO-only switch.

A SAML login of organization A proves who the person is only to A: A's identity provider could
assert any address. So the session it makes reaches organization A alone
(`SSO_ORGANIZATION_KEY`); every other organization answers it with a refusal until the person
signs in there. A password login (allauth) drops that mark, and it is never trusted across
organizations.

An SSO-only organization refuses browser sessions that did not come from its own IdP: pages send
the person to its SAML login, API calls get 403. A person whose every active membership is in an
SSO-only organization cannot log in with a password at all (`AccountAdapter.pre_login`). API
tokens are not affected: admins create them for integrations and revoke them in the usual way.
"""

from __future__ import annotations

from urllib.parse import quote

from django.contrib.auth import login
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import JsonResponse
from django.shortcuts import redirect, render

from accounts.models import INACTIVE_ROLES, Membership, User
from sso.models import SamlSettings
from sso.selectors import is_sso_only
from tenants.middleware import is_api_path
from tenants.models import Organization
from tenants.resolver import SESSION_ORGANIZATION_KEY

SSO_ORGANIZATION_KEY = "sso.organization_id"
# The SAML session's NameID and SessionIndex, for single logout.
SSO_NAME_ID_KEY = "sso.name_id"
SSO_SESSION_INDEX_KEY = "sso.session_index"
DISCOVERY_PATH = "/sso/login/"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def saml_session_start(*, request, user: User, organization: Organization, name_id: str = "",
                       session_index: str = "") -> None:
    """Log the person in with a session that reaches `organization` only."""
    login(request, user, backend=MODEL_BACKEND)
    request.session[SSO_ORGANIZATION_KEY] = organization.pk
    request.session[SESSION_ORGANIZATION_KEY] = organization.pk
    request.session[SSO_NAME_ID_KEY] = name_id
    request.session[SSO_SESSION_INDEX_KEY] = session_index
    if user.active_organization_id != organization.pk:
        User.objects.filter(pk=user.pk).update(active_organization=organization)


def sso_organization_id(session) -> int | None:
    value = session.get(SSO_ORGANIZATION_KEY) if session is not None else None
    return value if isinstance(value, int) else None


@receiver(user_logged_in, dispatch_uid="sso_session_mark_cleared_on_login")
def _clear_sso_mark(sender, request, user, **kwargs):
    # Runs inside every login, saml_session_start's included (which sets the mark again after).
    if request is not None and hasattr(request, "session"):
        for key in (SSO_ORGANIZATION_KEY, SSO_NAME_ID_KEY, SSO_SESSION_INDEX_KEY):
            request.session.pop(key, None)


def sso_only_organization_for_password_login(*, user: User) -> Organization | None:
    """The SSO-only organization to send the person to when every one of their active memberships is
    in an SSO-only organization (a password would open nothing); None otherwise."""
    memberships = list(Membership.objects.filter(user=user, organization__deleted_at__isnull=True)
                       .exclude(role__in=INACTIVE_ROLES).select_related("organization"))
    if not memberships:
        return None
    sso_only = set(SamlSettings.objects.filter(
        organization_id__in=[m.organization_id for m in memberships], sso_only=True,
    ).values_list("organization_id", flat=True))
    if all(m.organization_id in sso_only for m in memberships):
        return memberships[0].organization
    return None


def saml_login_path(organization: Organization, *, next_path: str = "") -> str:
    path = f"/o/{organization.slug}/saml/login"
    return f"{path}?next={quote(next_path)}" if next_path else path


class SsoSessionMiddleware:
    """After OrganizationAccessMiddleware: a session made by another organization's IdP does not
    reach this one, and an SSO-only organization takes only sessions made by its own IdP."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        organization = getattr(request, "organization", None)
        if (organization is None or getattr(request, "credential", None) is not None
                or getattr(request, "membership", None) is None or not request.user.is_authenticated):
            return self.get_response(request)
        made_by = sso_organization_id(request.session)
        api = is_api_path(request.path_info)
        if made_by is not None and made_by != organization.pk:
            detail = ("You signed in through another organization's single sign-on, which opens that "
                      "organization only. Sign out, then sign in here.")
            if api:
                return JsonResponse({"detail": detail, "code": "sso_other_organization"}, status=403)
            return render(request, "tenants/refused.html", {"status": 403, "detail": detail}, status=403)
        if made_by != organization.pk and is_sso_only(organization_id=organization.pk):
            if api:
                return JsonResponse({"detail": f"{organization.title} requires single sign-on: sign in "
                                               f"at {saml_login_path(organization)}.", "code": "sso_required"},
                                    status=403)
            return redirect(saml_login_path(organization, next_path=request.get_full_path()))
        return self.get_response(request)

