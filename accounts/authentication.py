"""DRF authentication on top of tenant routing: the middleware already verified the token."""

from rest_framework.authentication import BaseAuthentication, SessionAuthentication


class OrganizationTokenAuthentication(BaseAuthentication):
    """`Token <key>` and `Bearer <access JWT>`, resolved by tenants.middleware.TenantRoutingMiddleware."""

    def authenticate(self, request):
        credential = getattr(request._request, "credential", None)
        if credential is None:
            return None
        return credential.user, credential

    def authenticate_header(self, request):
        return 'Token realm="api"'


class OrganizationSessionAuthentication(SessionAuthentication):
    """Browser session (with CSRF). The membership check already ran in the middleware."""
