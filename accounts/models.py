"""Public-schema identity: users, memberships and API tokens.

Tenant tables refer to users with ForeignKey(User, db_constraint=False, on_delete=DO_NOTHING)
(ARCHITECTURE.md, Tenancy): users are soft-deleted, never cascaded into tenant schemas.
"""

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    """Label Studio's organization role enum."""

    OWNER = "OW", "Owner"
    ADMINISTRATOR = "AD", "Administrator"
    MANAGER = "MA", "Manager"
    REVIEWER = "RE", "Reviewer"
    ANNOTATOR = "AN", "Annotator"
    DEACTIVATED = "DI", "Deactivated"
    NOT_ACTIVATED = "NO", "Not Activated"


INACTIVE_ROLES = frozenset({Role.DEACTIVATED, Role.NOT_ACTIVATED})
ADMIN_ROLES = frozenset({Role.OWNER, Role.ADMINISTRATOR})


class Scope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
    ADMIN = "admin", "Admin"


ALL_SCOPES = [Scope.READ.value, Scope.WRITE.value, Scope.ADMIN.value]


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_queryset(self):
        return super().get_queryset()

    def create_user(self, email: str, password: str | None = None, **extra):
        email = self.normalize_email(email).lower()
        extra.setdefault("username", email)
        user = self.model(email=email, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField("Email address", unique=True)
    username = models.CharField(max_length=256, blank=True)
    first_name = models.CharField(max_length=256, blank=True)
    last_name = models.CharField(max_length=256, blank=True)
    phone = models.CharField(max_length=256, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    last_activity = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)
    custom_hotkeys = models.JSONField(null=True, blank=True)
    allow_newsletters = models.BooleanField(null=True, blank=True)
    active_organization = models.ForeignKey(
        "tenants.Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.email

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def initials(self) -> str:
        letters = (self.first_name[:1] + self.last_name[:1]) or self.email[:2]
        return letters.upper() or "?"


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=2, choices=Role.choices, default=Role.ANNOTATOR)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="uniq_membership_user_org"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} as {self.role}"

    @property
    def is_active(self) -> bool:
        return self.role not in INACTIVE_ROLES


class LegacyToken(models.Model):
    """`Authorization: Token <key>`: one key per user per organization, stored as its SHA-256."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="legacy_tokens")
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    key_hash = models.CharField(max_length=64, unique=True)
    key_prefix = models.CharField(max_length=8)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="uniq_legacy_token_user_org"),
        ]

    def __str__(self) -> str:
        return f"legacy token {self.key_prefix}… of {self.user_id}"


class PersonalAccessToken(models.Model):
    """A JWT refresh token (the SDK's API key). Only its `jti` and SHA-256 are stored."""

    jti = models.CharField(max_length=64, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="personal_access_tokens")
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    blacklisted_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "organization"], name="pat_user_org_idx")]

    def __str__(self) -> str:
        return f"personal access token {self.jti[:8]}… of {self.user_id}"


class OrganizationTokenSettings(models.Model):
    """Label Studio's LSEJWTSettings, per organization."""

    organization = models.OneToOneField(
        "tenants.Organization", on_delete=models.CASCADE, related_name="token_settings"
    )
    api_tokens_enabled = models.BooleanField(default=True)
    legacy_api_tokens_enabled = models.BooleanField(default=True)
    api_token_ttl_days = models.PositiveIntegerField(default=90)

    def __str__(self) -> str:
        return f"token settings of {self.organization_id}"


class OrganizationPermission(models.Model):
    """An organization's override of one permission's roles (accounts.access.PERMISSIONS holds the defaults)."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    permission = models.CharField(max_length=255)
    roles = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["permission"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "permission"], name="uniq_org_permission"),
        ]

    def __str__(self) -> str:
        return f"{self.permission} -> {self.roles} in {self.organization_id}"


class MemberTag(models.Model):
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    label = models.CharField(max_length=255)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["label", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "label"], name="uniq_member_tag_label"),
        ]

    def __str__(self) -> str:
        return self.label


class MemberTagAssignment(models.Model):
    tag = models.ForeignKey(MemberTag, on_delete=models.CASCADE, related_name="assignments")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="tag_assignments")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tag", "membership"], name="uniq_member_tag_assignment"),
        ]

    def __str__(self) -> str:
        return f"tag {self.tag_id} on membership {self.membership_id}"


class Invite(models.Model):
    """An invitation into an organization: the organization's shareable link (email empty) or one
    sent to an address. The token is stored hashed for lookup and encrypted so admins can see the
    link again."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    email = models.EmailField(blank=True, default="")
    role = models.CharField(max_length=2, choices=Role.choices, default=Role.ANNOTATOR)
    project_ids = models.JSONField(default=list, blank=True)
    workspace_ids = models.JSONField(default=list, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    token_encrypted = models.TextField()
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "email"], name="invite_org_email_idx")]

    def __str__(self) -> str:
        return f"invite to {self.organization_id} for {self.email or 'anyone with the link'}"


class SessionPolicy(models.Model):
    """Label Studio's SessionTimeoutPolicy: minutes, per organization; browser sessions only."""

    organization = models.OneToOneField(
        "tenants.Organization", on_delete=models.CASCADE, related_name="session_policy"
    )
    max_session_age = models.PositiveIntegerField(default=60 * 24 * 14)
    max_time_between_activity = models.PositiveIntegerField(default=60 * 24 * 14)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"session policy of {self.organization_id}"


class AuditEvent(models.Model):
    """An administrative action (role change, invite, token, policy), kept apart from the API
    activity log: admins read it to answer "who changed what"."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    target_repr = models.CharField(max_length=512, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at", "-id"], name="audit_org_time_idx")]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_id} in {self.organization_id}"
