"""Writes of organization administration: settings, member roles and removal, member tags and
permission overrides. Each change is audited (accounts.audit) in its own transaction, so a
refused or failed change leaves no event behind. Reads are in organizations_selectors.py.

The rules about Owners hold here, whatever page or API calls: the last Owner can be neither
removed, deactivated nor demoted; only an Owner (`members.owners`) makes, changes or removes an
Owner.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.http import Http404
from django_tenants.utils import tenant_context

from accounts import audit
from accounts.access import PERMISSIONS, Actor, PermissionDenied, can, overrides_changed
from accounts.models import (
    INACTIVE_ROLES,
    Membership,
    MemberTag,
    MemberTagAssignment,
    OrganizationPermission,
    Role,
    User,
)
from billing import limits as billing_limits
from realtime import events as realtime
from tenants.models import Organization

ROLE_CODES: tuple[str, ...] = tuple(Role.values)
LABEL_MAX_LENGTH = MemberTag._meta.get_field("label").max_length
TITLE_MAX_LENGTH = Organization._meta.get_field("title").max_length
EXTERNAL_ID_MAX_LENGTH = Organization._meta.get_field("external_id").max_length


class SelfRemovalError(ValidationError):
    """A member asked to remove themselves (the API answers 405, as Label Studio does)."""


def _role_name(code: str) -> str:
    return Role(code).label


# --- Organization settings -----------------------------------------------------------------------

def _clean_organization_field(name: str, value, *, actor: Actor):
    if name == "title":
        if not isinstance(value, str) or not value.strip():
            raise ValidationError({"title": "The organization needs a title."})
        if len(value.strip()) > TITLE_MAX_LENGTH:
            raise ValidationError({"title": f"At most {TITLE_MAX_LENGTH} characters."})
        return value.strip()
    if name == "contact_info":
        if value in (None, ""):
            return None
        try:
            validate_email(value)
        except (ValidationError, TypeError):
            raise ValidationError({"contact_info": "Enter a valid email address."}) from None
        return value
    if name == "external_id":
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > EXTERNAL_ID_MAX_LENGTH:
            raise ValidationError({"external_id": f"A text of at most {EXTERNAL_ID_MAX_LENGTH} characters."})
        return value
    if name == "embed_domains":
        if value is None:
            return None
        if not isinstance(value, list) or not all(
            isinstance(item, dict) and isinstance(item.get("domain"), str) and item["domain"].strip()
            for item in value
        ):
            raise ValidationError({"embed_domains": 'A list of objects like {"domain": "example.com"}.'})
        return [{"domain": item["domain"].strip()} for item in value]
    if name == "embed_settings":
        if value is not None and not isinstance(value, dict):
            raise ValidationError({"embed_settings": "An object, or null."})
        return value
    if name == "default_role":
        return _clean_default_role(value, actor=actor)
    raise ValidationError({name: "This setting cannot be changed."})


def _clean_default_role(value, *, actor: Actor) -> str:
    if value not in ROLE_CODES:
        raise ValidationError({"default_role": f"Unknown role {value!r}; roles are {', '.join(ROLE_CODES)}."})
    if value == Role.OWNER:
        raise ValidationError({"default_role": "Owners are made one at a time by an Owner, not by default."})
    if value == Role.DEACTIVATED:
        raise ValidationError({"default_role": "New members cannot start deactivated."})
    if value == Role.ADMINISTRATOR and not can(actor, "members.change"):
        # Whoever may only change settings must not hand out a role above what they may grant.
        raise PermissionDenied("members.change", "Only who may change members' roles can make Administrator "
                                                 "the default role.")
    return value


ORGANIZATION_SETTINGS = ("title", "contact_info", "external_id", "embed_domains", "embed_settings", "default_role")


@transaction.atomic
def organization_update(*, organization: Organization, actor: Actor, changes: dict, request=None) -> Organization:
    """Change the organization's settings (`changes` holds some of ORGANIZATION_SETTINGS)."""
    cleaned = {name: _clean_organization_field(name, value, actor=actor) for name, value in changes.items()}
    changed = {name: value for name, value in cleaned.items() if getattr(organization, name) != value}
    if not changed:
        return organization
    details = {"changed": sorted(changed)}
    for name in ("title", "default_role", "contact_info", "external_id"):
        if name in changed:
            details[name] = {"from": getattr(organization, name), "to": changed[name]}
    for name, value in changed.items():
        setattr(organization, name, value)
    organization.save(update_fields=list(changed))
    audit.record(organization=organization, actor=actor, action="organization.changed", target=organization,
                 details=details, request=request)
    return organization


# --- Members -------------------------------------------------------------------------------------

def lock_owners(organization_id: int) -> list[int]:
    """Lock the organization's Owner memberships (in id order, so concurrent changes queue up
    instead of each seeing another Owner left) and return their user ids."""
    return list(
        Membership.objects.select_for_update()
        .filter(organization_id=organization_id, role=Role.OWNER)
        .order_by("id").values_list("user_id", flat=True)
    )


def _check_owner_rules(*, actor: Actor, membership: Membership, owner_ids: list[int], new_role: str | None) -> None:
    """`new_role` None means removal."""
    was_owner = membership.role == Role.OWNER
    if (was_owner or new_role == Role.OWNER) and not can(actor, "members.owners"):
        detail = ("Only an Owner can make someone an Owner." if not was_owner
                  else "Only an Owner can change, deactivate or remove an Owner.")
        raise PermissionDenied("members.owners", detail)
    if was_owner and new_role != Role.OWNER and owner_ids == [membership.user_id]:
        raise ValidationError({"role": "This is the organization's last Owner: make another member an Owner "
                                       "before demoting, deactivating or removing this one."})


def _locked_membership(membership: Membership) -> Membership:
    locked = (Membership.objects.select_for_update(of=("self",)).select_related("user")
              .filter(pk=membership.pk).first())
    if locked is None:
        raise Http404("This member has just been removed from the organization.")
    return locked


@transaction.atomic
def membership_role_change(*, organization: Organization, actor: Actor, membership: Membership, role: str,
                           request=None) -> Membership:
    """Set a member's role; a role of Deactivated or Not Activated ends their access at their
    next request (the organization middleware checks the membership every time)."""
    if role not in ROLE_CODES:
        raise ValidationError({"role": f"Unknown role {role!r}; roles are {', '.join(ROLE_CODES)}."})
    owner_ids = lock_owners(organization.pk)
    membership = _locked_membership(membership)
    if membership.organization_id != organization.pk:
        raise Http404("Not a member of this organization.")
    if membership.role == role:
        return membership
    if membership.user_id == actor.user.pk and role in INACTIVE_ROLES:
        raise ValidationError({"role": "You cannot deactivate yourself; ask another administrator."})
    _check_owner_rules(actor=actor, membership=membership, owner_ids=owner_ids, new_role=role)
    previous = membership.role
    billing_limits.seats_follow(organization_id=organization.pk, before=previous, after=role)
    membership.role = role
    membership.save(update_fields=["role", "updated_at"])
    action = "member.deactivated" if role in INACTIVE_ROLES else "member.role_changed"
    if role in INACTIVE_ROLES:
        realtime.member_removed(organization=organization, user=membership.user)
    audit.record(organization=organization, actor=actor, action=action, target=membership.user,
                 details={"user_id": membership.user_id, "email": membership.user.email, "from": previous,
                          "to": role}, request=request)
    return membership


@transaction.atomic
def membership_remove(*, organization: Organization, actor: Actor, membership: Membership, request=None) -> None:
    """Remove a member: the membership row goes (with its tags) and so do their project and
    workspace memberships in the organization's schema; their annotations stay. Access ends at
    their next request: the organization middleware finds no membership (403). Their tokens for
    this organization are kept, so a re-invited member's integrations work again."""
    if membership.user_id == actor.user.pk:
        raise SelfRemovalError("You cannot remove yourself from the organization; ask another administrator.")
    owner_ids = lock_owners(organization.pk)
    membership = _locked_membership(membership)
    if membership.organization_id != organization.pk:
        raise Http404("Not a member of this organization.")
    _check_owner_rules(actor=actor, membership=membership, owner_ids=owner_ids, new_role=None)
    user, previous = membership.user, membership.role
    membership.delete()
    billing_limits.seats_follow(organization_id=organization.pk, before=previous, after=None)
    User.objects.filter(pk=user.pk, active_organization=organization).update(active_organization=None)
    forget_member_in_schema(organization=organization, user_id=user.pk)
    realtime.member_removed(organization=organization, user=user)
    audit.record(organization=organization, actor=actor, action="member.removed", target=user,
                 details={"user_id": user.pk, "email": user.email, "role": previous}, request=request)


def forget_member_in_schema(*, organization: Organization, user_id: int) -> None:
    """Project memberships, project roles and workspace memberships of a removed member: a
    re-invited person starts from what the invite gives, not from what they once had. Also used by
    SCIM deprovisioning (sso/scim.py)."""
    from labeling.models import ProjectMember, ProjectRole
    from workspaces.models import WorkspaceMembership

    with tenant_context(organization):
        for model in (ProjectMember, ProjectRole, WorkspaceMembership):
            model.objects.filter(user_id=user_id).delete()


# --- Member tags ---------------------------------------------------------------------------------

def _clean_label(label, *, field: str = "label") -> str:
    if not isinstance(label, str) or not label.strip():
        raise ValidationError({field: "A tag needs a non-empty label."})
    label = label.strip()
    if len(label) > LABEL_MAX_LENGTH:
        raise ValidationError({field: f"A label has at most {LABEL_MAX_LENGTH} characters."})
    return label


def _label_taken(label: str) -> ValidationError:
    return ValidationError({"label": f"A tag labelled {label!r} already exists in this organization."})


@transaction.atomic
def member_tag_create(*, organization: Organization, actor: Actor, label, request=None) -> MemberTag:
    label = _clean_label(label)
    if MemberTag.objects.filter(organization=organization, label=label).exists():
        raise _label_taken(label)
    try:
        with transaction.atomic():
            tag = MemberTag.objects.create(organization=organization, label=label, created_by=actor.user)
    except IntegrityError:
        raise _label_taken(label) from None
    audit.record(organization=organization, actor=actor, action="member_tag.created", target=tag,
                 details={"label": label}, request=request)
    return tag


@transaction.atomic
def member_tag_update(*, tag: MemberTag, actor: Actor, label, request=None) -> MemberTag:
    label = _clean_label(label)
    if label == tag.label:
        return tag
    if MemberTag.objects.filter(organization_id=tag.organization_id, label=label).exclude(pk=tag.pk).exists():
        raise _label_taken(label)
    previous = tag.label
    tag.label = label
    try:
        with transaction.atomic():
            tag.save(update_fields=["label", "updated_at"])
    except IntegrityError:
        raise _label_taken(label) from None
    audit.record(organization=tag.organization_id, actor=actor, action="member_tag.changed", target=tag,
                 details={"from": previous, "to": label}, request=request)
    return tag


@transaction.atomic
def member_tag_delete(*, tag: MemberTag, actor: Actor, request=None) -> None:
    audit.record(organization=tag.organization_id, actor=actor, action="member_tag.deleted", target=tag,
                 details={"label": tag.label}, request=request)
    tag.delete()


@transaction.atomic
def member_tags_bulk_create(*, organization: Organization, actor: Actor, labels, request=None) -> int:
    """Create the labels that do not exist yet (duplicates in the request count once); returns
    how many were created."""
    if not isinstance(labels, list) or not labels:
        raise ValidationError({"labels": "Give a non-empty list of labels."})
    wanted = list(dict.fromkeys(_clean_label(label, field="labels") for label in labels))
    existing = set(MemberTag.objects.filter(organization=organization, label__in=wanted)
                   .values_list("label", flat=True))
    new = [label for label in wanted if label not in existing]
    MemberTag.objects.bulk_create(
        [MemberTag(organization=organization, label=label, created_by=actor.user) for label in new],
        ignore_conflicts=True,
    )
    if new:
        audit.record(organization=organization, actor=actor, action="member_tag.created",
                     details={"labels": new[:100], "count": len(new)}, request=request)
    return len(new)


@transaction.atomic
def member_tags_bulk_delete(*, organization: Organization, actor: Actor, tag_ids: list[int] | None = None,
                            labels: list[str] | None = None, request=None) -> int:
    if not tag_ids and not labels:
        raise ValidationError({"ids": "Give the tags to delete: `ids` (or `labels`)."})
    tags = MemberTag.objects.filter(organization=organization)
    tags = tags.filter(pk__in=tag_ids) if tag_ids else tags.filter(label__in=labels)
    deleted_labels = list(tags.values_list("label", flat=True))
    _, per_model = tags.delete()
    deleted = per_model.get(MemberTag._meta.label, 0)
    if deleted:
        audit.record(organization=organization, actor=actor, action="member_tag.deleted",
                     details={"labels": deleted_labels[:100], "count": deleted}, request=request)
    return deleted


def _organization_tag_ids(organization: Organization, tag_ids) -> list[int]:
    if not isinstance(tag_ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in tag_ids):
        raise ValidationError({"tags": "Must be a list of tag ids."})
    tag_ids = sorted(set(tag_ids))
    found = set(MemberTag.objects.filter(organization=organization, pk__in=tag_ids).values_list("pk", flat=True))
    missing = [tag_id for tag_id in tag_ids if tag_id not in found]
    if missing:
        raise ValidationError({"tags": f"No member tag(s) {missing} in this organization."})
    return tag_ids


@transaction.atomic
def member_tags_assign(*, organization: Organization, actor: Actor, memberships: QuerySet, tag_ids,
                       overwrite: bool = False, request=None) -> int:
    """Give every membership of `memberships` each tag (one INSERT ... SELECT); with `overwrite`
    their other tags go first (one DELETE). Returns how many assignments were created."""
    tag_ids = _organization_tag_ids(organization, tag_ids)
    if not tag_ids and not overwrite:
        raise ValidationError({"tags": "Give at least one tag id."})
    targets = memberships.filter(organization=organization).order_by().values("id")
    if overwrite:
        MemberTagAssignment.objects.filter(membership_id__in=targets).exclude(tag_id__in=tag_ids).delete()
    assigned = 0
    if tag_ids:
        subquery, params = targets.query.sql_with_params()
        table = MemberTagAssignment._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (tag_id, membership_id, created_at) "  # noqa: S608 - names are ours
                f"SELECT tag_id, chosen.id, now() FROM ({subquery}) AS chosen "
                "CROSS JOIN unnest(%s::bigint[]) AS tag_id "
                "ON CONFLICT (tag_id, membership_id) DO NOTHING",
                [*params, tag_ids],
            )
            assigned = cursor.rowcount
    audit.record(organization=organization, actor=actor, action="member_tag.assigned",
                 details={"tags": tag_ids, "overwrite": overwrite, "assigned": assigned}, request=request)
    return assigned


@transaction.atomic
def member_tags_unassign(*, organization: Organization, actor: Actor, memberships: QuerySet, tag_ids,
                         request=None) -> int:
    """Take the tags off every membership of `memberships` (one DELETE)."""
    tag_ids = _organization_tag_ids(organization, tag_ids)
    if not tag_ids:
        raise ValidationError({"tags": "Give at least one tag id."})
    targets = memberships.filter(organization=organization).order_by().values("id")
    unassigned, _ = MemberTagAssignment.objects.filter(membership_id__in=targets, tag_id__in=tag_ids).delete()
    audit.record(organization=organization, actor=actor, action="member_tag.unassigned",
                 details={"tags": tag_ids, "unassigned": unassigned}, request=request)
    return unassigned


# --- Permission overrides ------------------------------------------------------------------------

def _known_permission(permission) -> str:
    if not isinstance(permission, str) or permission not in PERMISSIONS:
        raise ValidationError({"permission": f"Unknown permission {permission!r}; "
                                             "GET .../permissions/options lists them."})
    return permission


def _clean_roles(permission: str, roles) -> list[str]:
    """Roles within the permission's options, plus its `always` roles, in Role order."""
    spec = PERMISSIONS[permission]
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise ValidationError({"roles": "Must be a list of role codes."})
    for role in roles:
        if role not in ROLE_CODES:
            raise ValidationError({"roles": f"Unknown role {role!r}; roles are {', '.join(ROLE_CODES)}."})
        if role not in spec.options:
            raise ValidationError({"roles": f"{_role_name(role)} ({role}) cannot be given {permission!r}; it may "
                                            f"be given to {', '.join(spec.options)}."})
    chosen = set(roles) | set(spec.always)
    return [role for role in ROLE_CODES if role in chosen]


def _overrides_written(organization_id: int) -> None:
    # Now, for the rest of this request, and after commit, so no request that read the old rows
    # before the commit leaves them cached.
    overrides_changed(organization_id)
    transaction.on_commit(lambda: overrides_changed(organization_id))


def _audit_permission(*, organization, actor, permission: str, previous, roles, request) -> None:
    audit.record(organization=organization, actor=actor, action="permission.changed",
                 details={"permission": permission, "from": previous, "to": roles}, request=request)


@transaction.atomic
def permission_override_create(*, organization: Organization, actor: Actor, permission, roles=None,
                               request=None) -> OrganizationPermission:
    """A new override; `roles` omitted means the default roles."""
    permission = _known_permission(permission)
    roles = _clean_roles(permission, list(PERMISSIONS[permission].default) if roles is None else roles)
    if OrganizationPermission.objects.filter(organization=organization, permission=permission).exists():
        raise ValidationError({"permission": f"{permission!r} already has an override here; change it with "
                                             "PUT or PATCH .../permissions/{permission}."})
    try:
        with transaction.atomic():
            override = OrganizationPermission.objects.create(organization=organization, permission=permission,
                                                             roles=roles)
    except IntegrityError:
        raise ValidationError({"permission": f"{permission!r} already has an override here."}) from None
    _audit_permission(organization=organization, actor=actor, permission=permission, previous=None, roles=roles,
                      request=request)
    _overrides_written(organization.pk)
    return override


@transaction.atomic
def permission_override_set(*, organization: Organization, actor: Actor, permission: str, roles,
                            request=None) -> OrganizationPermission:
    """Create or replace the override of `permission`."""
    permission = _known_permission(permission)
    roles = _clean_roles(permission, roles)
    override = (OrganizationPermission.objects.select_for_update()
                .filter(organization=organization, permission=permission).first())
    previous = None if override is None else list(override.roles)
    if override is None:
        override = OrganizationPermission.objects.create(organization=organization, permission=permission,
                                                         roles=roles)
    elif previous != roles:
        override.roles = roles
        override.save(update_fields=["roles", "updated_at"])
    if previous != roles:
        _audit_permission(organization=organization, actor=actor, permission=permission, previous=previous,
                          roles=roles, request=request)
        _overrides_written(organization.pk)
    return override


@transaction.atomic
def permission_override_delete(*, organization: Organization, actor: Actor, override: OrganizationPermission,
                               request=None) -> None:
    """Back to the default roles."""
    OrganizationPermission.objects.filter(organization=organization, pk=override.pk).delete()
    _audit_permission(organization=organization, actor=actor, permission=override.permission,
                      previous=list(override.roles), roles=None, request=request)
    _overrides_written(organization.pk)
