"""Enterprise SSO settings and state, in the public schema (ARCHITECTURE.md, Tenancy): SAML 2.0
service provider settings per organization, the AuthnRequests we issued and the assertions we
accepted (replay protection), SCIM 2.0 bearer tokens, groups and group mappings.

Group mappings (`roles_groups`, `workspaces_groups`, `projects_groups`) follow Label Studio's
shapes: [[role, group], ...], [[workspace_title, group], ...], [{"project_id", "group", "role"}, ...].
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower


class IdpProvider(models.TextChoices):
    OKTA = "okta", "Okta"
    AZURE = "azure", "Microsoft Entra ID"
    GOOGLE = "google", "Google Workspace"
    CUSTOM = "custom", "Custom"


class SamlSettings(models.Model):
    organization = models.OneToOneField(
        "tenants.Organization", on_delete=models.CASCADE, related_name="saml_settings"
    )
    # Email domains whose users this organization's IdP signs in (comma separated), for discovery.
    domain = models.TextField(blank=True, default="")
    idp_provider = models.CharField(max_length=256, null=True, blank=True)
    metadata_url = models.TextField(blank=True, default="")
    metadata_xml = models.TextField(blank=True, default="")
    mapping_email = models.CharField(max_length=1024, null=True, blank=True)
    mapping_first_name = models.CharField(max_length=1024, null=True, blank=True)
    mapping_last_name = models.CharField(max_length=1024, null=True, blank=True)
    mapping_groups = models.CharField(max_length=1024, null=True, blank=True)
    roles_groups = models.JSONField(null=True, blank=True)
    workspaces_groups = models.JSONField(null=True, blank=True)
    projects_groups = models.JSONField(null=True, blank=True)
    # IdP-initiated logins carry no InResponseTo; refused unless the organization allows them.
    allow_idp_initiated = models.BooleanField(default=False)
    sign_authn_requests = models.BooleanField(default=False)
    # The SP's signing key pair (made on first need); the key is encrypted at rest.
    sp_certificate = models.TextField(blank=True, default="")
    sp_private_key_encrypted = models.TextField(blank=True, default="")
    # Members of an SSO-only organization cannot log in to it with a password.
    sso_only = models.BooleanField(default=False)
    # The last test login (`/o/<slug>/saml/login?test=1`) that passed every check: SSO-only can be
    # switched on only after one, so an organization cannot lock itself out with a broken setup.
    tested_at = models.DateTimeField(null=True, blank=True)
    # When the IdP's entity ID, endpoints or certificates last changed (not a re-fetch of the same
    # metadata): a test login must pass after it before SSO-only can be switched on.
    idp_metadata_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"SAML settings of {self.organization_id}"


class SamlAuthnRequest(models.Model):
    """An AuthnRequest we sent: a response's InResponseTo must name one, once, before it expires."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    request_id = models.CharField(max_length=256, unique=True)
    relay_state = models.TextField(blank=True, default="")
    # Set for a test login (`/saml/login?test=1`): its response is checked like any other but
    # provisions nothing and logs nobody in (sso/saml.py). The member who started it.
    test_requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                          on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.request_id


class SamlAssertionSeen(models.Model):
    """Accepted assertion ids, kept until the assertion expires: a replay finds its row."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    assertion_id = models.CharField(max_length=256)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "assertion_id"], name="uniq_saml_assertion_seen"),
        ]

    def __str__(self) -> str:
        return self.assertion_id


class ScimSettings(models.Model):
    organization = models.OneToOneField(
        "tenants.Organization", on_delete=models.CASCADE, related_name="scim_settings"
    )
    roles_groups = models.JSONField(null=True, blank=True)
    workspaces_groups = models.JSONField(null=True, blank=True)
    projects_groups = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"SCIM settings of {self.organization_id}"


class ScimToken(models.Model):
    """A SCIM bearer token, bound to one organization, stored as its SHA-256."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    label = models.CharField(max_length=200, blank=True, default="")
    token_hash = models.CharField(max_length=64, unique=True)
    token_prefix = models.CharField(max_length=8)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"SCIM token {self.token_prefix}… of {self.organization_id}"


class ScimUser(models.Model):
    """The IdP's view of a member, per organization: the SCIM User resource as this organization's
    IdP last wrote it (`resource`, without id, meta and groups), plus the columns filters use.

    The account itself (`user`) is global: a user can belong to several organizations, so one
    organization's IdP may change the account's profile only while the user belongs to that
    organization alone (sso/scim.py); its own view of them is kept here either way.
    """

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    user_name = models.CharField(max_length=512, default="")
    display_name = models.CharField(max_length=512, blank=True, default="")
    external_id = models.CharField(max_length=512, null=True, blank=True)
    active = models.BooleanField(default=True)
    resource = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="uniq_scim_user"),
            # SCIM's userName is unique per service provider (here: per organization), case-insensitively.
            models.UniqueConstraint(Lower("user_name"), "organization", name="uniq_scim_user_name"),
        ]
        indexes = [models.Index(fields=["organization", "external_id"], name="scim_user_external_idx")]

    def __str__(self) -> str:
        return f"SCIM user {self.user_id} in {self.organization_id}"


class ScimGroup(models.Model):
    """A group of the organization's IdP. Its displayName is what the `/api/scim/settings` mappings
    name; its members get what those mappings give (sso/grants.py)."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    display_name = models.CharField(max_length=512)
    external_id = models.CharField(max_length=512, null=True, blank=True)
    resource = models.JSONField(default=dict, blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="ScimGroupMember", related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "display_name"], name="uniq_scim_group_name"),
        ]

    def __str__(self) -> str:
        return self.display_name


class ScimGroupMember(models.Model):
    group = models.ForeignKey(ScimGroup, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "user"], name="uniq_scim_group_member")]

    def __str__(self) -> str:
        return f"user {self.user_id} in SCIM group {self.group_id}"


class SsoGrant(models.Model):
    """One thing single sign-on gave a member, and which protocol gave it: an organization role, a
    workspace membership, a project membership or a project role override.

    Group mappings are re-applied on every SAML login and every SCIM change (sso/grants.py). A
    grant row is written only when SSO itself made the change, so a group removed in the IdP takes
    back exactly what that group gave and never what an administrator gave by hand.
    """

    class Kind(models.TextChoices):
        ROLE = "role", "Organization role"
        WORKSPACE = "workspace", "Workspace membership"
        PROJECT = "project", "Project membership"
        PROJECT_ROLE = "project_role", "Project role"

    class Source(models.TextChoices):
        SAML = "saml", "SAML"
        SCIM = "scim", "SCIM"

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=8, choices=Source.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The workspace or project id in the organization's schema (no constraint across schemas);
    # 0 for the organization role.
    target_id = models.BigIntegerField(default=0)
    # ROLE: the role SSO set; PROJECT_ROLE: the project role it set.
    role = models.CharField(max_length=2, blank=True, default="")
    # ROLE: the role the member had before SSO set one, restored when no group gives a role any more.
    replaced_role = models.CharField(max_length=2, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user", "source", "kind", "target_id"],
                                    name="uniq_sso_grant"),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.kind} {self.target_id} of user {self.user_id} in {self.organization_id}"
