"""URLconf of an organization (served under /o/<slug>/ and for credential-routed /api/ calls)."""

from django.urls import include, path, re_path

from accounts import views as account_views
from accounts.urls import api_urlpatterns as account_api
from labeling.api_uploads import data_urlpatterns as labeling_data
from labeling.urls import api_urlpatterns as labeling_api
from platform_core import api

urlpatterns = [
    path("", account_views.organization_home, name="organization-home"),
    path("health", api.health),
    path("api/version/", api.VersionApi.as_view()),
    path("api/version", api.VersionApi.as_view()),
    path("api/", include(account_api)),
    path("api/", include(labeling_api)),
    path("", include(labeling_data)),
    re_path(r"^(api|scim)/", api.api_not_found),
]
