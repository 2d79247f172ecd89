"""URLconf of the public schema: landing, signup, login, organization chooser, token exchange."""

from django.contrib import admin
from django.urls import include, path, re_path

from accounts import views as account_views
from accounts.urls import public_api_urlpatterns
from accounts.views_invites import public_page_urlpatterns as invite_pages
from billing.api_stripe import public_urlpatterns as stripe_webhook
from platform_core import api
from sso.api_scim import scim_unauthenticated
from sso.views_saml import public_page_urlpatterns as sso_pages

urlpatterns = [
    path("", account_views.home, name="home"),
    path("signup/", account_views.signup_view, name="signup"),
    path("accounts/signup/", account_views.signup_view),
    path("organizations/new/", account_views.organization_new, name="organization-new"),
    path("accounts/", include("allauth.urls")),
    path("", include(invite_pages)),
    path("", include(sso_pages)),
    path("", include(stripe_webhook)),
    path("admin/", admin.site.urls),
    path("health", api.health),
    path("api/version/", api.VersionApi.as_view()),
    path("api/version", api.VersionApi.as_view()),
    path("api/", include(public_api_urlpatterns)),
    # No SCIM token (none, or a browser session): SCIM's own 401 (sso/scim_errors.py).
    re_path(r"^scim/", scim_unauthenticated),
    re_path(r"^api/", api.api_unauthenticated),
]
