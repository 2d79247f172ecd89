"""Label Studio shapes: WhoAmIUser / LseUserAPI, LSEAPITokenList, LSEJWTSettings."""

from rest_framework import serializers

from accounts.models import ALL_SCOPES, OrganizationTokenSettings, PersonalAccessToken


def membership_payload(membership) -> dict:
    return {
        "role": membership.role,
        "active": membership.is_active,
        "organization_id": membership.organization_id,
    }


def user_payload(*, user, organization, membership, memberships) -> dict:
    """The current user as Label Studio returns it from /api/current-user and /whoami."""
    return {
        "id": user.pk,
        "email": user.email,
        "username": user.username or user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "phone": user.phone,
        "avatar": "",
        "initials": user.initials,
        "date_joined": user.date_joined.isoformat(),
        "last_activity": user.last_activity.isoformat(),
        "allow_newsletters": None,
        "custom_hotkeys": None,
        "active_organization": organization.pk,
        "active_organization_meta": {"title": organization.title, "slug": organization.slug},
        "organization_membership": membership_payload(membership),
        "org_membership": [membership_payload(m) for m in memberships],
        "pause": None,
        "permissions": [],
        "lse_fields": {
            "active_organization_external_id": organization.slug,
            "email_notification_settings": None,
            "invite_expired": False,
            "invite_expired_at": None,
            "invite_activated": None,
            "invited_at": None,
            "invited_by": None,
            "onboarding_state": "complete",
            "social_auth_finished": None,
            "trial_company": None,
            "trial_experience_labeling": None,
            "trial_license_enterprise": None,
            "trial_models_in_production": None,
            "trial_role": None,
        },
    }


class UserUpdateSerializer(serializers.Serializer):
    first_name = serializers.CharField(max_length=256, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=256, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=256, required=False, allow_blank=True)
    username = serializers.CharField(max_length=256, required=False, allow_blank=True)


class TokenListSerializer(serializers.ModelSerializer):
    token = serializers.SerializerMethodField()
    blacklisted = serializers.SerializerMethodField()

    class Meta:
        model = PersonalAccessToken
        fields = ["id", "token", "scopes", "created_at", "expires_at", "last_used_at", "blacklisted"]

    def get_token(self, obj) -> str:
        # Only a hash is stored; show an identifier the owner can match against their records.
        return f"{obj.jti[:8]}…"

    def get_blacklisted(self, obj) -> bool:
        return obj.blacklisted_at is not None


class TokenCreateSerializer(serializers.Serializer):
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ALL_SCOPES), required=False, allow_empty=False
    )
    ttl_days = serializers.IntegerField(required=False, min_value=1, max_value=365)


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(min_length=1)


class JwtSettingsSerializer(serializers.ModelSerializer):
    api_token_ttl_days = serializers.IntegerField(min_value=1, max_value=365)

    class Meta:
        model = OrganizationTokenSettings
        fields = ["api_tokens_enabled", "legacy_api_tokens_enabled", "api_token_ttl_days"]
