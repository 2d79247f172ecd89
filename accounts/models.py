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
