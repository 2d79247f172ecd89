"""Identity API: current user, legacy token, JWT personal access tokens, JWT settings."""

from django.core.exceptions import ValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.models import LegacyToken, PersonalAccessToken, Scope
from accounts.permissions import AdminRoleAndScope
from accounts.serializers import (
    JwtSettingsSerializer,
    RefreshSerializer,
    TokenCreateSerializer,
    TokenListSerializer,
    UserUpdateSerializer,
    user_payload,
)
from accounts.tokens import ForeignTokenError, TokenError
from platform_core.api import OpenApiView, validation_error_response


def _path_organization(request):
    """The organization named in the URL (`/o/<slug>/`), if any: a token used there must be its own."""
    django_request = request._request
    return django_request.organization if getattr(django_request, "routed_by", None) == "path" else None


def _current_user_response(request) -> Response:
    return Response(user_payload(
        user=request.user,
        organization=request._request.organization,
        membership=request._request.membership,
        memberships=selectors.memberships_of_user(user=request.user),
    ))


class WhoAmIApi(APIView):
    def get(self, request):
        return _current_user_response(request)


class CurrentUserApi(APIView):
    def get(self, request):
        return _current_user_response(request)

    def patch(self, request):
        serializer = UserUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        for name, value in serializer.validated_data.items():
            setattr(request.user, name, value)
        request.user.save(update_fields=list(serializer.validated_data) or None)
        return _current_user_response(request)


class LegacyTokenApi(APIView):
    """GET /api/current-user/token. Keys are stored hashed, so an existing key cannot be shown."""

    def get(self, request):
        organization = request._request.organization
        if isinstance(request.auth, selectors.Credential) and request.auth.kind == "legacy":
            return Response({"detail": "You are authenticated with your legacy token; it is stored "
                                       "hashed. POST /api/current-user/reset-token/ for a new one."})
        if not LegacyToken.objects.filter(user=request.user, organization=organization).exists():
            key = services.legacy_token_issue(user=request.user, organization=organization)
            return Response({"token": key, "detail": "Your new token; it is shown only this once."})
        return Response({"detail": "A token exists and is stored hashed; "
                                   "POST /api/current-user/reset-token/ to replace it."})


class LegacyTokenResetApi(APIView):
    required_scope = Scope.WRITE

    def post(self, request):
        key = services.legacy_token_issue(
            user=request.user, organization=request._request.organization,
            scopes=sorted(request.auth.scopes) if isinstance(request.auth, selectors.Credential) else None,
        )
        return Response({"token": key}, status=status.HTTP_201_CREATED)


class TokenListCreateApi(APIView):
    def get(self, request):
        tokens = selectors.personal_access_tokens_of(user=request.user, organization=request._request.organization)
        ordering = request.query_params.get("ordering")
        if ordering in {"created_at", "-created_at", "expires_at", "-expires_at"}:
            tokens = tokens.order_by(ordering)
        return Response(TokenListSerializer(tokens, many=True).data)

    def post(self, request):
        serializer = TokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        creator = request.auth if isinstance(request.auth, selectors.Credential) else None
        try:
            pat, token = services.personal_access_token_create(
                user=request.user, organization=request._request.organization, creator=creator,
                **serializer.validated_data,
            )
        except ValidationError as exc:
            return validation_error_response(exc)
        return Response(
            {"id": pat.pk, "token": token, "scopes": pat.scopes, "created_at": pat.created_at,
             "expires_at": pat.expires_at},
            status=status.HTTP_201_CREATED,
        )


def _refresh_from_body(request) -> str:
    serializer = RefreshSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data["refresh"]


class TokenRefreshApi(OpenApiView):
    """Exchange a PAT for an access token."""

    def post(self, request):
        try:
            access = services.access_token_issue(
                refresh=_refresh_from_body(request), organization=_path_organization(request)
            )
        except ForeignTokenError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except TokenError as exc:
            return Response({"detail": str(exc), "code": "token_not_valid"}, status=status.HTTP_401_UNAUTHORIZED)
        return Response({"access": access})


class TokenBlacklistApi(OpenApiView):
    """Possession of the refresh token is what allows blacklisting it."""

    def post(self, request):
        try:
            services.personal_access_token_blacklist(
                refresh=_refresh_from_body(request), organization=_path_organization(request)
            )
        except TokenError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except PersonalAccessToken.DoesNotExist:
            return Response({"detail": "Token not found."}, status=status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenRotateApi(APIView):
    def post(self, request):
        try:
            token = services.personal_access_token_rotate(
                refresh=_refresh_from_body(request), user=request.user,
                organization=request._request.organization,
            )
        except TokenError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"refresh": token})


class JwtSettingsApi(APIView):
    permission_classes = [AdminRoleAndScope]

    def get(self, request):
        token_settings = selectors.token_settings_of(organization=request._request.organization)
        return Response(JwtSettingsSerializer(token_settings).data)

    def post(self, request):
        serializer = JwtSettingsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token_settings = services.token_settings_update(
            organization=request._request.organization, **serializer.validated_data
        )
        return Response(JwtSettingsSerializer(token_settings).data, status=status.HTTP_201_CREATED)
