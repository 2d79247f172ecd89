"""Label Studio shapes: WhoAmIUser / LseUserAPI, LSEAPITokenList, LSEJWTSettings."""

from rest_framework import serializers

from accounts.models import ALL_SCOPES, OrganizationTokenSettings, PersonalAccessToken


def membership_payload(membership) -> dict:
    return {
        "role": membership.role,
        "active": membership.is_active,
        "organization_id": membership.organization_id,
    }


def profile_payload(user) -> dict:
    """The public part of a profile, in every LS user shape."""
    return {
        "id": user.pk,
        "email": user.email,
        "username": user.username or user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "phone": user.phone,
        "avatar": "",
        "initials": user.initials,
    }


def user_payload(*, user, organization, membership, memberships) -> dict:
    """The current user as Label Studio returns it from /api/current-user and /whoami."""
    return {
        **profile_payload(user),
        "date_joined": user.date_joined.isoformat(),
        "last_activity": user.last_activity.isoformat(),
        "allow_newsletters": user.allow_newsletters,
        "custom_hotkeys": user.custom_hotkeys,
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


def member_user_payload(*, membership, organization) -> dict:
    """Another member as this organization sees them (LseUser): their membership here only, so no
    other organization of theirs shows."""
    return user_payload(user=membership.user, organization=organization, membership=membership,
                        memberships=[membership])


class ProfileSerializer(serializers.Serializer):
    """What an administrator may set on someone's profile (/api/users/)."""

    first_name = serializers.CharField(max_length=256, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=256, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=256, required=False, allow_blank=True)
    username = serializers.CharField(max_length=256, required=False, allow_blank=True)


class UserUpdateSerializer(ProfileSerializer):
    """PATCH of a profile (PatchedLseUserSerializerUpdateRequest). The SDK also sends
    date_joined, email_notification_settings, is_email_verified and onboarding_state: accepted
    and ignored (an account's verification and history are not the user's to set)."""

    allow_newsletters = serializers.BooleanField(required=False, allow_null=True)
    custom_hotkeys = serializers.JSONField(required=False, allow_null=True)
    active_organization = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    password = serializers.CharField(required=False, write_only=True, trim_whitespace=False, max_length=4096)
    # Needed with `password` when the account has one (accounts.services.user_profile_update).
    current_password = serializers.CharField(required=False, write_only=True, trim_whitespace=False,
                                             max_length=4096)


class UserCreateSerializer(ProfileSerializer):
    """POST /api/users/ (the SDK requires `username`; an email there stands for `email`)."""

    email = serializers.EmailField(required=False, max_length=254)
    password = serializers.CharField(required=False, write_only=True, trim_whitespace=False)

    def validate_password(self, value):
        raise serializers.ValidationError(
            "People set their own password (password reset or single sign-on); leave it out."
        )

    def validate(self, attrs):
        if not attrs.get("email"):
            username = attrs.get("username", "")
            if "@" not in username:
                raise serializers.ValidationError({"email": "Give the person's email address."})
            attrs["email"] = username
        return attrs


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
