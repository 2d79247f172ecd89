from django.urls import path

from accounts import api
from platform_core.routing import route

# Mounted under /api/ by the tenant URLconf.
api_urlpatterns = [
    path("current-user/whoami", api.WhoAmIApi.as_view()),
    path("current-user", api.CurrentUserApi.as_view()),
    route(r"current-user/hotkeys", api.CurrentUserHotkeysApi),
    path("current-user/token", api.LegacyTokenApi.as_view()),
    path("current-user/reset-token/", api.LegacyTokenResetApi.as_view()),
    path("token/", api.TokenListCreateApi.as_view()),
    route(r"token/(?P<pk>\d+)", api.TokenDetailApi),
    path("token/refresh/", api.TokenRefreshApi.as_view()),
    path("token/blacklist/", api.TokenBlacklistApi.as_view()),
    path("token/rotate/", api.TokenRotateApi.as_view()),
    path("jwt/settings", api.JwtSettingsApi.as_view()),
]

# The token exchange also answers on the public schema: the SDK calls it before it has an org.
public_api_urlpatterns = [
    path("token/refresh/", api.TokenRefreshApi.as_view()),
    path("token/blacklist/", api.TokenBlacklistApi.as_view()),
]
