"""URLconf of an organization (served under /o/<slug>/ and for credential-routed /api/ calls)."""

from django.urls import include, path, re_path

from accounts import views as account_views
from accounts.api_audit import urlpatterns as audit_api
from accounts.api_invites import urlpatterns as invite_api
from accounts.api_organizations import urlpatterns as organization_api
from accounts.api_users import urlpatterns as users_api
from accounts.urls import api_urlpatterns as account_api
from accounts.views_admin import page_urlpatterns as admin_pages
from billing.api import urlpatterns as billing_api
from billing.api_stripe import tenant_urlpatterns as stripe_billing_api
from billing.views import page_urlpatterns as billing_pages
from labeling.api_members import urlpatterns as project_members_api
from labeling.api_uploads import data_urlpatterns as labeling_data
from labeling.urls import api_urlpatterns as labeling_api
from labeling.views import page_urlpatterns as project_pages
from platform_core import api
from realtime.api import urlpatterns as realtime_api
from sso.api_saml import urlpatterns as saml_api
from sso.api_scim import scim_urlpatterns as scim_protocol
from sso.api_scim import urlpatterns as scim_api
from sso.views_admin import page_urlpatterns as sso_settings_pages
from sso.views_saml import page_urlpatterns as saml_pages
from storages.api import urlpatterns as storages_api
from storages.views import urlpatterns as storage_files
from workspaces.api import urlpatterns as workspaces_api

urlpatterns = [
    path("", account_views.organization_home, name="organization-home"),
    path("health", api.health),
    path("api/version/", api.VersionApi.as_view()),
    path("api/version", api.VersionApi.as_view()),
    path("api/", include(account_api)),
    path("api/", include(invite_api)),
    path("api/", include(organization_api)),
    path("api/", include(users_api)),
    path("api/", include(audit_api)),
    path("api/", include(project_members_api)),
    path("api/", include(labeling_api)),
    path("api/", include(workspaces_api)),
    path("api/", include(saml_api)),
    path("api/", include(scim_api)),
    path("api/", include(realtime_api)),
    path("api/", include(storages_api)),
    path("api/", include(billing_api)),
    path("api/", include(stripe_billing_api)),
    path("", include(saml_pages)),
    path("", include(sso_settings_pages)),
    path("", include(billing_pages)),
    path("", include(scim_protocol)),
    path("", include(labeling_data)),
    path("", include(storage_files)),
    path("", include(admin_pages)),
    path("", include(project_pages)),
    re_path(r"^(api|scim)/", api.api_not_found),
]
