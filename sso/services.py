"""Writes of single sign-on that both protocols share: SCIM bearer tokens. The SAML flows are in
sso/saml.py, the SCIM resources in sso/scim.py, group mappings in sso/grants.py."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import audit
from accounts.tokens import hash_secret
from sso.models import ScimToken
from sso.selectors import SCIM_TOKEN_PREFIX
from tenants.models import Organization

SCIM_TOKEN_LABEL_MAX = ScimToken._meta.get_field("label").max_length


@transaction.atomic
def scim_token_create(*, organization: Organization, actor, label: str = "", request=None) -> tuple[ScimToken, str]:
    """A new SCIM bearer token; the plain value is returned once and only its SHA-256 is kept."""
    label = (label or "").strip()
    if len(label) > SCIM_TOKEN_LABEL_MAX:
        raise ValidationError({"label": f"At most {SCIM_TOKEN_LABEL_MAX} characters."})
    value = SCIM_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ScimToken.objects.create(
        organization=organization, label=label, token_hash=hash_secret(value),
        token_prefix=value[len(SCIM_TOKEN_PREFIX):][:6], created_by=getattr(actor, "user", actor),
    )
    audit.record(organization=organization, actor=actor, action="scim_token.created", target=token,
                 details={"label": label}, request=request)
    return token, value


@transaction.atomic
def scim_token_revoke(*, token: ScimToken, actor, request=None) -> ScimToken:
    """Revoke a SCIM token: the next SCIM call with it gets 401. Revoking twice changes nothing."""
    token = ScimToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(organization=token.organization_id, actor=actor, action="scim_token.revoked", target=token,
                     details={"label": token.label}, request=request)
    return token
