"""The audit log: who changed what in an organization (roles, invites, tokens, policies).

Services call `record` next to the write they audit, inside the same transaction, so an action
that rolls back leaves no event behind. Reads go through `events_of`.
"""

from __future__ import annotations

from datetime import datetime
from ipaddress import ip_address

from accounts.models import AuditEvent, User
from tenants.models import Organization

# AuditEvent column widths: a longer repr is cut rather than failing the audited write.
_TARGET_REPR_MAX = 512
_TARGET_TYPE_MAX = 64


def _client_ip(request) -> str | None:
    if request is None:
        return None
    django_request = getattr(request, "_request", request)
    address = getattr(django_request, "META", {}).get("REMOTE_ADDR")
    if not address:
        return None
    try:
        return str(ip_address(address))
    except ValueError:
        return None


def _actor_user(actor) -> User | None:
    """A User, or whatever carries one (an access.Actor, a Credential), or None."""
    if actor is None or isinstance(actor, User):
        return actor
    user = getattr(actor, "user", None)
    return user if isinstance(user, User) else None


def _event(*, organization, actor, action: str, target, details: dict | None, request) -> AuditEvent:
    target_type = target_id = target_repr = ""
    if target is not None:
        target_type = target._meta.model_name[:_TARGET_TYPE_MAX]
        target_id = "" if target.pk is None else str(target.pk)
        target_repr = str(target)[:_TARGET_REPR_MAX]
    return AuditEvent(
        organization_id=organization.pk if isinstance(organization, Organization) else organization,
        actor=_actor_user(actor),
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_repr=target_repr,
        details=details or {},
        ip_address=_client_ip(request),
    )


def record(*, organization: Organization, actor, action: str, target=None,
           details: dict | None = None, request=None) -> AuditEvent:
    """Write one audit event. `target` is a model instance (or None); `details` must be JSON-able
    and must never hold secrets (token values, passwords, invite links)."""
    event = _event(organization=organization, actor=actor, action=action, target=target, details=details,
                   request=request)
    event.save(force_insert=True)
    return event


def record_many(*, organization: Organization, actor, action: str, entries: list[tuple[object, dict]],
                request=None) -> None:
    """One event per (target, details) entry, in one INSERT (the same rules as `record`)."""
    AuditEvent.objects.bulk_create([
        _event(organization=organization, actor=actor, action=action, target=target, details=details,
               request=request) for target, details in entries])


def events_of(*, organization: Organization, action: str | None = None, actor_id: int | None = None,
              since: datetime | None = None, until: datetime | None = None):
    """The organization's events, newest first, optionally narrowed. `action` ending in "." or "*"
    matches a family ("token." -> every token event)."""
    events = AuditEvent.objects.filter(organization=organization).select_related("actor")
    if action:
        family = action.rstrip("*")
        events = events.filter(action__startswith=family) if family.endswith(".") else events.filter(action=action)
    if actor_id is not None:
        events = events.filter(actor_id=actor_id)
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    return events.order_by("-created_at", "-id")
