"""SAML pages: per organization (`/o/<slug>/saml/...`) and the public email-domain discovery login.

The organization's `/saml/` paths skip the membership check (tenants/middleware.py OPEN_PREFIXES):
people who are not members yet sign in here, and the IdP posts here. Each view decides what it
accepts; sso/saml.py holds the rules. Refusals render sso/error.html with our own words, never
anything from the assertion, and create no session.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from django import forms
from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import Actor, can
from accounts.selectors import membership_get
from billing import limits as billing_limits
from sso import saml
from sso.selectors import organization_for_email, saml_settings_of
from sso.sessions import (
    SSO_NAME_ID_KEY,
    SSO_SESSION_INDEX_KEY,
    saml_login_path,
    saml_session_start,
    sso_organization_id,
)

logger = logging.getLogger(__name__)


def _refused(request, refused: saml.SamlRefused):
    logger.warning("SAML refused for organization %s: %s", request.organization.pk, refused.reason)
    template = "sso/test_result.html" if refused.test else "sso/error.html"
    return render(request, template, {"refusal": refused, "status": refused.status}, status=refused.status)


@require_GET
def metadata(request):
    xml = saml.sp_metadata(organization=request.organization, base_url=saml.base_url_of(request))
    return HttpResponse(xml, content_type="application/samlmetadata+xml; charset=utf-8")


def _may_test(request) -> bool:
    membership = membership_get(user=request.user, organization=request.organization)
    return membership is not None and can(Actor(membership=membership), "sso.change")


@require_GET
def login(request):
    """SP-initiated login (`?next=` a path in the organization); `?test=1`: a test login by a member
    who may change the SSO settings."""
    organization = request.organization
    tester = None
    if request.GET.get("test") == "1":
        if not request.user.is_authenticated:
            return redirect(f"{settings.LOGIN_URL}?next={quote(request.get_full_path())}")
        if not _may_test(request):
            return _refused(request, saml.SamlRefused("Only members who may change the single sign-on settings "
                                                      "can run a test login.", status=403))
        tester = request.user
    try:
        url = saml.authn_request_issue(organization=organization, base_url=saml.base_url_of(request),
                                       next_path=request.GET.get("next", ""), test_requested_by=tester)
    except saml.SamlNotConfigured as exc:
        return _refused(request, saml.SamlRefused(str(exc), status=404, test=tester is not None))
    return redirect(url)


@csrf_exempt  # the IdP posts here from its own site; the signed assertion is the proof
@require_POST
def acs(request):
    organization = request.organization
    try:
        validated = saml.saml_response_validate(organization=organization, base_url=saml.base_url_of(request),
                                                saml_response=request.POST.get("SAMLResponse", ""),
                                                relay_state=request.POST.get("RelayState", ""))
        saml.saml_response_accept(organization=organization, validated=validated)
        if validated.authn_request is not None and validated.authn_request.test_requested_by_id is not None:
            result = saml.saml_test_login_complete(organization=organization, validated=validated)
            return render(request, "sso/test_result.html", {"result": result})
        user = saml.saml_user_provision(organization=organization, identity=validated.identity)
    except saml.SamlRefused as refused:
        return _refused(request, refused)
    except (billing_limits.LimitReached, billing_limits.ReadOnly) as exc:
        # Just-in-time provisioning needs a seat the plan does not have (or the organization is read-only).
        return _refused(request, saml.SamlRefused(str(exc.detail["detail"]), status=402,
                                                  reason=f"billing: {exc.default_code}"))
    saml_session_start(request=request, user=user, organization=organization,
                       name_id=validated.identity.name_id, session_index=validated.identity.session_index)
    return redirect(validated.relay_state)


@require_GET
def sls(request):
    """Single logout at our SLS: the IdP's LogoutRequest (ends the session it names here) or its
    answer to ours."""
    organization = request.organization
    try:
        outcome = saml.slo_process(organization=organization, base_url=saml.base_url_of(request),
                                   get_data=request.GET.dict(), query_string=request.META.get("QUERY_STRING", ""))
    except saml.SamlRefused as refused:
        return _refused(request, refused)
    if (outcome.logout_name_id is not None and sso_organization_id(request.session) == organization.pk
            and request.session.get(SSO_NAME_ID_KEY) == outcome.logout_name_id):
        logout(request)
    return redirect(outcome.redirect_url)


@require_http_methods(["GET", "POST"])
def logout_view(request):
    """SP-initiated logout: ends the session here, then asks the IdP to end its own (POST, so a link
    on another site cannot log anyone out)."""
    organization = request.organization
    if request.method == "GET":
        return render(request, "sso/logout.html")
    name_id = session_index = ""
    if sso_organization_id(request.session) == organization.pk:
        name_id = request.session.get(SSO_NAME_ID_KEY) or ""
        session_index = request.session.get(SSO_SESSION_INDEX_KEY) or ""
    logout(request)
    url = saml.logout_request_url(organization=organization, base_url=saml.base_url_of(request),
                                  name_id=name_id, session_index=session_index) if name_id else None
    return redirect(url or settings.LOGIN_URL)


page_urlpatterns = [
    re_path(r"^saml/metadata/?$", metadata, name="saml-metadata"),
    re_path(r"^saml/login/?$", login, name="saml-login"),
    re_path(r"^saml/acs/?$", acs, name="saml-acs"),
    re_path(r"^saml/sls/?$", sls, name="saml-sls"),
    re_path(r"^saml/logout/?$", logout_view, name="saml-logout"),
]


# --- public: find the organization by email domain -------------------------------------------------

class DiscoveryForm(forms.Form):
    email = forms.EmailField(label="Work email", max_length=254)


def discovery(request):
    """`/sso/login/`: the organization whose SAML settings claim the email's domain signs the person in."""
    data = request.POST if request.method == "POST" else None
    form = DiscoveryForm(data, initial={"email": request.GET.get("email", "")})
    unknown_domain = not_set_up = False
    if form.is_valid():
        organization = organization_for_email(email=form.cleaned_data["email"])
        if organization is None:
            unknown_domain = True
        elif saml.idp_of(saml_settings_of(organization=organization)) is None:
            not_set_up = True
        else:
            wanted = request.GET.get("next", "")
            return redirect(saml_login_path(organization,
                                            next_path=saml.safe_next_path(organization, wanted) if wanted else ""))
    return render(request, "sso/discovery.html", {"form": form, "unknown_domain": unknown_domain,
                                                  "not_set_up": not_set_up, "password_login_url": settings.LOGIN_URL})


public_page_urlpatterns = [
    re_path(r"^sso/login/?$", discovery, name="sso-discovery"),
]
