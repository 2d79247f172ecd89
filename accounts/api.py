"""Identity API: current user, legacy token, JWT personal access tokens, JWT settings."""

from django.contrib.auth import update_session_auth_hash
from django.core.exceptions import ValidationError
from django.http import Http404
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.models import LegacyToken, PersonalAccessToken
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
    permissions = {"GET": "organizations.view"}

    def get(self, request):
        return _current_user_response(request)


# What other organizations' members see of a person: not set from a session one organization's SAML made.
SHARED_IDENTITY_FIELDS = ("first_name", "last_name", "email", "username")


def _refuse_shared_identity_changes_from_sso(request, changes: dict) -> None:
    """A session made by organization A's single sign-on speaks for A's identity provider; the
    account's name and email are also what B's members see, so it may not change them while the
    account belongs to another organization (a password session or a token may)."""
    from sso.sessions import sso_organization_id

    made_by = sso_organization_id(request.session) if request.auth is None else None
    touched = [name for name in SHARED_IDENTITY_FIELDS if name in changes]
    if made_by is None or not touched:
        return
    if selectors.memberships_of_user(user=request.user).exclude(organization_id=made_by).exists():
        raise ValidationError({name: "Your account belongs to other organizations too: change it after logging in "
                                     "with your password, or ask your identity provider." for name in touched})


class CurrentUserApi(APIView):
    # Your own profile: any member, with the write scope to change it.
    permissions = {"GET": "organizations.view", "PATCH": "profile.change"}

    def get(self, request):
        return _current_user_response(request)

    def patch(self, request):
        serializer = UserUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        _refuse_shared_identity_changes_from_sso(request, serializer.validated_data)
        services.user_profile_update(user=request.user, changes=serializer.validated_data, by_self=True)
        if "password" in serializer.validated_data and request.auth is None:
            # A browser session stays logged in after its own password change.
            update_session_auth_hash(request._request, request.user)
        return _current_user_response(request)


class CurrentUserHotkeysApi(APIView):
    """Your keyboard shortcuts (`custom_hotkeys`). Label Studio's `project` parameter asks for a
    per-project override; there are none here, so GET answers the account's hotkeys and PATCH
    refuses it rather than silently changing the account's."""

    permissions = {"GET": "organizations.view", "PATCH": "profile.change"}

    def get(self, request):
        return Response({"custom_hotkeys": request.user.custom_hotkeys or {}})

    def patch(self, request):
        if request.query_params.get("project"):
            raise ValidationError({"project": "Per-project hotkeys are not supported; leave `project` out."})
        if "custom_hotkeys" not in request.data:
            raise ValidationError({"custom_hotkeys": "Give the hotkeys object (action -> key)."})
        services.user_profile_update(user=request.user, changes={"custom_hotkeys": request.data["custom_hotkeys"]},
                                     by_self=True)
        return Response({"custom_hotkeys": request.user.custom_hotkeys or {}})


class LegacyTokenApi(APIView):
    """GET /api/current-user/token. Keys are stored hashed, so an existing key cannot be shown."""

    permissions = {"GET": "tokens.create"}

    def get(self, request):
        organization = request._request.organization
        if isinstance(request.auth, selectors.Credential) and request.auth.kind == "legacy":
            return Response({"detail": "You are authenticated with your legacy token; it is stored "
                                       "hashed. POST /api/current-user/reset-token/ for a new one."})
        if not LegacyToken.objects.filter(user=request.user, organization=organization).exists():
            key = services.legacy_token_issue(user=request.user, organization=organization, request=request)
            return Response({"token": key, "detail": "Your new token; it is shown only this once."})
        return Response({"detail": "A token exists and is stored hashed; "
                                   "POST /api/current-user/reset-token/ to replace it."})


class LegacyTokenResetApi(APIView):
    permissions = {"POST": "tokens.create"}

    def post(self, request):
        key = services.legacy_token_issue(
            user=request.user, organization=request._request.organization,
            scopes=sorted(request.auth.scopes) if isinstance(request.auth, selectors.Credential) else None,
            request=request,
        )
        return Response({"token": key}, status=status.HTTP_201_CREATED)


class TokenListCreateApi(APIView):
    permissions = {"GET": "organizations.view", "POST": "tokens.create"}

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
                request=request, **serializer.validated_data,
            )
        except ValidationError as exc:
            return validation_error_response(exc)
        return Response(
            {"id": pat.pk, "token": token, "scopes": pat.scopes, "created_at": pat.created_at,
             "expires_at": pat.expires_at},
            status=status.HTTP_201_CREATED,
        )


class TokenDetailApi(APIView):
    """DELETE /api/token/{id}/: revoke one of your own tokens by id (the settings page has the id,
    not the token). Another person's or another organization's token is a 404."""

    permissions = {"DELETE": "tokens.create"}

    def delete(self, request, pk):
        pat = selectors.personal_access_tokens_of(
            user=request.user, organization=request._request.organization
        ).filter(pk=pk).first()
        if pat is None:
            raise Http404("No token of yours with this id.")
        services.personal_access_token_revoke(pat=pat, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


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
                refresh=_refresh_from_body(request), organization=_path_organization(request), request=request
            )
        except TokenError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except PersonalAccessToken.DoesNotExist:
            return Response({"detail": "Token not found."}, status=status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenRotateApi(APIView):
    permissions = {"POST": "tokens.create"}

    def post(self, request):
        try:
            token = services.personal_access_token_rotate(
                refresh=_refresh_from_body(request), user=request.user,
                organization=request._request.organization, request=request,
            )
        except TokenError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"refresh": token})


class JwtSettingsApi(APIView):
    permissions = {"GET": "organizations.view", "POST": "tokens.settings"}

    def get(self, request):
        token_settings = selectors.token_settings_of(organization=request._request.organization)
        return Response(JwtSettingsSerializer(token_settings).data)

    def post(self, request):
        serializer = JwtSettingsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token_settings = services.token_settings_update(
            organization=request._request.organization, actor=request.user, request=request,
            **serializer.validated_data,
        )
        return Response(JwtSettingsSerializer(token_settings).data, status=status.HTTP_201_CREATED)
