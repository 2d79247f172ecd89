"""Invitations into an organization: services (writes) and selectors (reads).

Two kinds share the `Invite` table:
- the organization's shareable link (email empty): one live row per organization, reusable by
  anyone holding it until an admin resets it; it grants the organization's default role;
- an invite sent to one address: single-use, expires, can be accepted only by a user with that
  email, and may add the newcomer to projects and workspaces.

Tokens are stored as a SHA-256 (for lookup) and encrypted (so an admin can see the link again);
neither the token nor the link is ever logged or audited.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts import audit
from accounts.access import ACTIVE_ROLES, Actor
from accounts.models import Invite, Membership, Role, User
from accounts.tokens import hash_secret
from billing import limits as billing_limits
from platform_core.crypto import DecryptionError, decrypt, encrypt
from tenants.models import Organization

logger = logging.getLogger(__name__)

EMAIL_INVITE_LIFETIME = timedelta(days=14)
MAX_EMAILS_PER_REQUEST = 500
# Highest first: an inviter grants at most their own role (so only an Owner invites an Owner).
ROLE_SENIORITY = (Role.OWNER, Role.ADMINISTRATOR, Role.MANAGER, Role.REVIEWER, Role.ANNOTATOR)
# What the shareable link may grant: never Owner; Not Activated when the organization wants to
# approve newcomers first.
LINK_ROLES = (Role.ADMINISTRATOR, Role.MANAGER, Role.REVIEWER, Role.ANNOTATOR, Role.NOT_ACTIVATED)


# --- Selectors -----------------------------------------------------------------------------------

def invite_url(*, token: str, base_url: str) -> str:
    """The accept page of a token. `base_url` is the site's address (PUBLIC_URL, else the request's)."""
    base = (getattr(settings, "PUBLIC_URL", "") or base_url).rstrip("/")
    return f"{base}/invite/{token}/"


def invite_get_by_token(*, token: str) -> Invite | None:
    if not token:
        return None
    return (
        Invite.objects.select_related("organization", "created_by")
        .filter(token_hash=hash_secret(token))
        .first()
    )


def invite_token_of(invite: Invite) -> str | None:
    """The plain token again (None when the encryption key that sealed it is gone)."""
    try:
        return decrypt(invite.token_encrypted) or None
    except DecryptionError:
        return None


def _usable_q(now) -> Q:
    return Q(revoked_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def shareable_link_of(*, organization: Organization) -> Invite | None:
    return (
        Invite.objects.filter(_usable_q(timezone.now()), organization=organization, email="")
        .order_by("-created_at", "-id")
        .first()
    )


def pending_invites_of(*, organization: Organization, email: str):
    """Email invites to this address still waiting to be accepted."""
    return Invite.objects.filter(
        _usable_q(timezone.now()), organization=organization, email__iexact=email.strip(), email__gt="",
        accepted_at__isnull=True,
    )


@dataclass(frozen=True)
class InviteRefusal:
    """Why a token cannot be used, as the accept page shows it (HTTP status and message)."""

    status: int
    message: str


class InviteRefused(Exception):
    def __init__(self, refusal: InviteRefusal):
        super().__init__(refusal.message)
        self.refusal = refusal


UNKNOWN_INVITE = InviteRefusal(404, "This invitation link is not valid. Check that you copied all of it, "
                                    "or ask for a new one.")


def invite_refusal(invite: Invite | None, *, user: User | None = None) -> InviteRefusal | None:
    """None when `invite` can be accepted (by `user`, if given); otherwise why not."""
    if invite is None or not invite.organization.is_active:
        return UNKNOWN_INVITE
    if invite.revoked_at is not None:
        if invite.email:
            return InviteRefusal(410, "This invitation was withdrawn. Ask an administrator of "
                                      f"{invite.organization.title} to invite you again.")
        return InviteRefusal(410, f"This invitation link of {invite.organization.title} was replaced by a new "
                                  "one. Ask an administrator for the current link.")
    if invite.expires_at is not None and invite.expires_at <= timezone.now():
        return InviteRefusal(410, "This invitation has expired. Ask an administrator of "
                                  f"{invite.organization.title} to invite you again.")
    if invite.email and invite.accepted_at is not None:
        return InviteRefusal(410, "This invitation has already been used. Log in to open "
                                  f"{invite.organization.title}.")
    if user is not None and user.is_authenticated and invite.email \
            and invite.email.lower() != user.email.lower():
        return InviteRefusal(403, f"This invitation was sent to {invite.email}, but you are logged in as "
                                  f"{user.email}. Log out and open the link again to accept it with "
                                  f"{invite.email}.")
    return None


def role_of_link(*, organization: Organization) -> str:
    return organization.default_role if organization.default_role in LINK_ROLES else Role.ANNOTATOR


def role_granted_by(invite: Invite) -> str:
    """An email invite grants its role; the link grants the organization's current default role."""
    return invite.role if invite.email else role_of_link(organization=invite.organization)


def _outranks(role: str, other: str) -> bool:
    return ROLE_SENIORITY.index(role) < ROLE_SENIORITY.index(other)


# --- Shareable link ------------------------------------------------------------------------------

def _new_token() -> str:
    return secrets.token_urlsafe(32)


def _link_create(*, organization: Organization, created_by: User | None) -> tuple[Invite, str]:
    token = _new_token()
    invite = Invite.objects.create(
        organization=organization, email="", role=role_of_link(organization=organization),
        token_hash=hash_secret(token), token_encrypted=encrypt(token), created_by=created_by,
    )
    return invite, token


def _lock_organization(organization: Organization) -> None:
    """Serializes link creation per organization (two first GETs must not make two links)."""
    Organization.objects.select_for_update().filter(pk=organization.pk).values_list("pk", flat=True).first()


@transaction.atomic
def invite_link_get_or_create(*, organization: Organization, created_by: User | None) -> tuple[Invite, str]:
    """The organization's shareable link and its token, made on first use."""
    _lock_organization(organization)
    link = shareable_link_of(organization=organization)
    token = invite_token_of(link) if link is not None else None
    if link is not None and token is not None:
        return link, token
    if link is not None:
        # Sealed with a retired encryption key: nobody can be shown it again, so replace it.
        Invite.objects.filter(pk=link.pk).update(revoked_at=timezone.now())
    return _link_create(organization=organization, created_by=created_by)


@transaction.atomic
def invite_link_reset(*, organization: Organization, actor: User, request=None) -> tuple[Invite, str]:
    """Revoke the shareable link (people who have it can no longer join) and make a new one."""
    _lock_organization(organization)
    revoked = Invite.objects.filter(organization=organization, email="", revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    link, token = _link_create(organization=organization, created_by=actor)
    audit.record(organization=organization, actor=actor, action="invite.link_reset", target=link,
                 details={"revoked_links": revoked}, request=request)
    return link, token


# --- Email invites -------------------------------------------------------------------------------

@dataclass(frozen=True)
class InvitesSent:
    invited: list[str]
    already_members: list[str]


def _clean_emails(emails) -> list[str]:
    if isinstance(emails, str) or not isinstance(emails, list | tuple) or not emails:
        raise ValidationError({"emails": "Give a non-empty list of email addresses."})
    if len(emails) > MAX_EMAILS_PER_REQUEST:
        raise ValidationError({"emails": f"Invite at most {MAX_EMAILS_PER_REQUEST} addresses at a time."})
    cleaned: list[str] = []
    for email in emails:
        address = email.strip().lower() if isinstance(email, str) else ""
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError({"emails": f"Not a valid email address: {email!r}."}) from None
        if address not in cleaned:
            cleaned.append(address)
    return cleaned


def _clean_role(*, role: str | None, organization: Organization, inviter: Actor) -> str:
    if role in (None, ""):
        role = organization.default_role if organization.default_role in ACTIVE_ROLES else Role.ANNOTATOR
    if role not in ACTIVE_ROLES:
        raise ValidationError({"role": f"Choose one of {', '.join(ACTIVE_ROLES)}; got {role!r}."})
    if _outranks(role, inviter.role):
        if role == Role.OWNER:
            raise ValidationError({"role": "Only an Owner can invite an Owner."})
        raise ValidationError({"role": f"You cannot invite with a role above your own ({inviter.role})."})
    return role


def _unknown_ids(requested: list[int], found) -> list[int]:
    found = set(found)
    return [pk for pk in requested if pk not in found]


def _check_projects(*, project_ids: list[int], inviter: Actor) -> None:
    """Every id must be a project of this organization the inviter can see (the caller is in its schema)."""
    if not project_ids:
        return
    from labeling.access import visible_projects
    from labeling.models import Project

    found = visible_projects(inviter, Project.objects.filter(pk__in=project_ids)).values_list("pk", flat=True)
    missing = _unknown_ids(project_ids, found)
    if missing:
        raise ValidationError({"projects": f"No project with id(s) {missing} in this organization."})


def _check_workspaces(*, workspace_ids: list[int], inviter: Actor) -> None:
    if not workspace_ids:
        return
    from workspaces.selectors import workspaces_visible_to

    # Shared workspaces only: a personal workspace takes no other members.
    workspaces = workspaces_visible_to(inviter).filter(pk__in=workspace_ids, is_personal=False)
    missing = _unknown_ids(workspace_ids, workspaces.values_list("pk", flat=True))
    if missing:
        raise ValidationError({"workspaces": f"No workspace with id(s) {missing} in this organization."})


def _member_emails(*, organization: Organization, emails: list[str]) -> set[str]:
    return set(
        Membership.objects.filter(organization=organization)
        .exclude(role__in=[Role.DEACTIVATED, Role.NOT_ACTIVATED])
        .annotate(address=Lower("user__email"))
        .filter(address__in=emails)
        .values_list("address", flat=True)
    )


def _invite_message(*, organization: Organization, inviter: User, role: str, email: str, url: str,
                    expires_at) -> EmailMessage:
    who = inviter.full_name or inviter.email
    body = (
        f"Hello,\n\n"
        f"{who} invited you to join {organization.title} on Scriptorium as {Role(role).label}.\n\n"
        f"Accept the invitation:\n{url}\n\n"
        f"The link works once, for {email}, until {expires_at:%Y-%m-%d %H:%M} UTC.\n"
        f"If you did not expect this invitation, you can ignore this email.\n"
    )
    return EmailMessage(subject=f"Join {organization.title} on Scriptorium", body=body,
                        from_email=settings.DEFAULT_FROM_EMAIL, to=[email])


def _send_messages(messages: list[EmailMessage]) -> None:
    """One connection for the whole batch. A failure is logged (never the links) rather than raised:
    the invites are committed, and an admin can send them again."""
    try:
        get_connection().send_messages(messages)
    except Exception:
        logger.exception("Sending %d invitation email(s) failed", len(messages))


def invites_send(*, organization: Organization, inviter: Actor, emails, role: str | None = None,
                 project_ids: list[int] | None = None, workspace_ids: list[int] | None = None,
                 base_url: str, request=None) -> InvitesSent:
    """Invite each address (one Invite and one email each). A pending invite to the same address is
    replaced; addresses of active members are reported and skipped. Every field is checked before
    anything is written; the emails leave after the commit."""
    emails = _clean_emails(emails)
    role = _clean_role(role=role, organization=organization, inviter=inviter)
    project_ids = list(dict.fromkeys(project_ids or []))
    workspace_ids = list(dict.fromkeys(workspace_ids or []))
    with tenant_context(organization):
        _check_projects(project_ids=project_ids, inviter=inviter)
        _check_workspaces(workspace_ids=workspace_ids, inviter=inviter)

    members = _member_emails(organization=organization, emails=emails)
    to_invite = [email for email in emails if email not in members]
    now = timezone.now()
    expires_at = now + EMAIL_INVITE_LIFETIME
    tokens = {email: _new_token() for email in to_invite}
    with transaction.atomic():
        if to_invite:
            Invite.objects.filter(
                organization=organization, email__in=to_invite, accepted_at__isnull=True, revoked_at__isnull=True,
            ).update(revoked_at=now)
            Invite.objects.bulk_create([
                Invite(organization=organization, email=email, role=role, project_ids=project_ids,
                       workspace_ids=workspace_ids, token_hash=hash_secret(token), token_encrypted=encrypt(token),
                       created_by=inviter.user, expires_at=expires_at)
                for email, token in tokens.items()
            ])
            audit.record(organization=organization, actor=inviter.user, action="invite.sent",
                         details={"emails": to_invite, "role": role, "projects": project_ids,
                                  "workspaces": workspace_ids},
                         request=request)
        messages = [
            _invite_message(organization=organization, inviter=inviter.user, role=role, email=email,
                            url=invite_url(token=token, base_url=base_url), expires_at=expires_at)
            for email, token in tokens.items()
        ]
        if messages:
            transaction.on_commit(lambda: _send_messages(messages))
    return InvitesSent(invited=to_invite, already_members=[email for email in emails if email in members])


@transaction.atomic
def invites_revoke(*, organization: Organization, email: str, actor: User, request=None) -> int:
    """Withdraw the pending invites to an address; ValidationError / Invite.DoesNotExist otherwise."""
    address = (email or "").strip().lower() if isinstance(email, str) else ""
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError({"email": f"Not a valid email address: {email!r}."}) from None
    revoked = pending_invites_of(organization=organization, email=address).update(revoked_at=timezone.now())
    if not revoked:
        raise Invite.DoesNotExist(f"No pending invitation to {address} in this organization.")
    audit.record(organization=organization, actor=actor, action="invite.revoked",
                 details={"email": address, "invites": revoked}, request=request)
    return revoked


# --- Accepting -----------------------------------------------------------------------------------

def _join(*, user: User, organization: Organization, role: str, by_email: bool) -> Membership:
    """The membership after accepting: new with `role`, an active one raised (never lowered), an
    inactive one reactivated only by an invite addressed to this person (a deactivated member must
    not let themselves back in through the shareable link)."""
    membership = Membership.objects.select_for_update().filter(user=user, organization=organization).first()
    if membership is None:
        billing_limits.seats_follow(organization_id=organization.pk, before=None, after=role)
        return Membership.objects.create(user=user, organization=organization, role=role)
    if membership.is_active:
        if role in ROLE_SENIORITY and _outranks(role, membership.role):
            membership.role = role
            membership.save(update_fields=["role", "updated_at"])
        return membership
    if membership.role == Role.DEACTIVATED and not by_email:
        raise InviteRefused(InviteRefusal(
            403, f"Your membership in {organization.title} was deactivated. Ask an administrator to invite you again."
        ))
    billing_limits.seats_follow(organization_id=organization.pk, before=membership.role, after=role)
    membership.role = role
    membership.save(update_fields=["role", "updated_at"])
    return membership


def _grant_projects_and_workspaces(*, invite: Invite, user: User) -> None:
    """ProjectMember and WorkspaceMembership rows in the organization's schema; ids deleted since
    the invite was sent are skipped."""
    if not invite.project_ids and not invite.workspace_ids:
        return
    from labeling.models import Project, ProjectMember
    from workspaces.models import Workspace, WorkspaceMembership

    with tenant_context(invite.organization):
        project_ids = list(Project.objects.filter(pk__in=invite.project_ids).values_list("pk", flat=True))
        if project_ids:
            ProjectMember.objects.filter(project_id__in=project_ids, user_id=user.pk).update(enabled=True)
            ProjectMember.objects.bulk_create(
                [ProjectMember(project_id=pk, user_id=user.pk) for pk in project_ids], ignore_conflicts=True,
            )
        workspace_ids = list(Workspace.objects.filter(pk__in=invite.workspace_ids).values_list("pk", flat=True))
        if workspace_ids:
            WorkspaceMembership.objects.bulk_create(
                [WorkspaceMembership(workspace_id=pk, user_id=user.pk) for pk in workspace_ids],
                ignore_conflicts=True,
            )


@transaction.atomic
def invite_accept(*, invite: Invite, user: User, request=None) -> Membership:
    """Join the invite's organization. Raises InviteRefused (with the page's status and message)."""
    # Locked: two tabs accepting one single-use invite must not both succeed.
    invite = Invite.objects.select_for_update(of=("self",)).select_related("organization").get(pk=invite.pk)
    refusal = invite_refusal(invite, user=user)
    if refusal is not None:
        raise InviteRefused(refusal)
    organization = invite.organization
    role = role_granted_by(invite)
    membership = _join(user=user, organization=organization, role=role, by_email=bool(invite.email))
    _grant_projects_and_workspaces(invite=invite, user=user)
    if invite.email:
        invite.accepted_at = timezone.now()
        invite.accepted_by = user
        invite.save(update_fields=["accepted_at", "accepted_by"])
    if membership.is_active:
        user.active_organization = organization
        user.save(update_fields=["active_organization"])
    audit.record(organization=organization, actor=user, action="invite.accepted", target=invite,
                 details={"via": "email" if invite.email else "link", "role": membership.role,
                          "projects": invite.project_ids, "workspaces": invite.workspace_ids},
                 request=request)
    return membership
