"""SCIM 2.0 Users and Groups of an organization: what we publish, how we read, and what each
write does to the organization's members (RFC 7643, RFC 7644).

Each organization has its own SCIM service provider (`/o/<slug>/scim/v2/`, or `/scim/v2/` with
its bearer token). A SCIM User is a `ScimUser`: the organization's view of a member, as its
identity provider last wrote it; the account behind it is global (accounts.User) and its profile
follows the IdP only while the person belongs to this organization alone. A SCIM Group is a
`ScimGroup`; its members get what the organization's group mappings give (sso/grants.py).

Deprovisioning: `active: false` sets the membership to Deactivated (the middleware refuses the
person's browser session at their next request) and revokes their API tokens in this
organization at once; `active: true` restores the role they had, then the group mappings.
DELETE removes the membership, with its project and workspace memberships and grants.
The last active Owner can be neither deactivated nor deleted.

Layout: the published schema (scim2-models), rendering, selectors, then services.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated

from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Q
from django.db.models.functions import JSONObject
from django.utils import timezone
from pydantic import Field
from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    ComplexAttribute,
    Context,
    ETag,
    Filter,
    Mutability,
    Patch,
    Reference,
    Required,
    Resource,
    ResourceType,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)

from accounts import audit
from accounts.models import INACTIVE_ROLES, Membership, Role, User
from accounts.organizations import forget_member_in_schema, lock_owners
from accounts.services import member_tokens_revoke
from billing import limits as billing_limits
from realtime import events as realtime
from sso.grants import GroupMappings, access_sync_many, grants_forget, mappings_clean
from sso.models import ScimGroup, ScimGroupMember, ScimSettings, ScimToken, ScimUser, SsoGrant
from sso.scim_filter import FilterError, FilterField, case_insensitive_equal, filter_to_q, parse_filter
from sso.scim_patch import ResourceSpec, ScimError, document_clean, invalid_value, operations_parse, patch_apply
from sso.selectors import scim_settings_of
from tenants.models import Organization

# --- the published schema ------------------------------------------------------------------------
# Only what we store: these classes are the single source of the Schemas we publish, of the
# attribute names bodies are read with (sso/scim_patch.py) and of what scim2-tester fills in.


class Name(ComplexAttribute):
    formatted: str | None = None
    family_name: str | None = None
    given_name: str | None = None


class Email(ComplexAttribute):
    value: Annotated[str | None, Required.true] = None
    type: str | None = Field(None, examples=["work", "home", "other"])
    primary: bool | None = None


class UserGroup(ComplexAttribute):
    value: Annotated[str | None, Mutability.read_only] = None
    # Reference["Group"] names a SCIM resource type (scim2-models' convention), not a Python class.
    ref: Annotated[Reference["Group"] | None, Mutability.read_only] = Field(  # noqa: F821, UP037
        None, serialization_alias="$ref", validation_alias="$ref")
    display: Annotated[str | None, Mutability.read_only] = None


class User_(Resource):
    """User Account"""

    # The account's email address is the primary email (else the first one, else userName when it
    # is an email address): a User needs one, hence emails is required.
    __schema__ = URN("urn:ietf:params:scim:schemas:core:2.0:User")

    user_name: Annotated[str | None, Required.true, Uniqueness.server] = None
    name: Name | None = None
    display_name: str | None = None
    emails: Annotated[list[Email] | None, Required.true] = None
    active: bool | None = None
    groups: Annotated[list[UserGroup] | None, Mutability.read_only] = None


class GroupMember(ComplexAttribute):
    value: Annotated[str | None, Mutability.immutable, CaseExact.true] = None
    ref: Annotated[Reference["User"] | None, Mutability.immutable] = Field(  # noqa: F821, UP037
        None, serialization_alias="$ref", validation_alias="$ref")
    type: Annotated[str | None, Mutability.immutable] = Field(None, examples=["User"])


class Group_(Resource):
    """Group"""

    # Its displayName is what the organization's group mappings name; members are Users.
    __schema__ = URN("urn:ietf:params:scim:schemas:core:2.0:Group")

    display_name: Annotated[str | None, Required.true, Uniqueness.server] = None
    members: list[GroupMember] | None = None


User_.__name__ = "User"
Group_.__name__ = "Group"

USER_SCHEMA = User_.to_schema()
GROUP_SCHEMA = Group_.to_schema()
USER_URN = str(USER_SCHEMA.id)
GROUP_URN = str(GROUP_SCHEMA.id)
USER_SPEC = ResourceSpec.of(USER_SCHEMA)
GROUP_SPEC = ResourceSpec.of(GROUP_SCHEMA)
LIST_RESPONSE_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
MAX_COUNT = 1000
DEFAULT_COUNT = 100
# The organization's own bookkeeping inside ScimUser.resource: never shown, never written by an IdP
# (bodies keep only schema attributes).
PRIVATE = "_scriptorium"
NAME_MAX = ScimUser._meta.get_field("user_name").max_length
PROFILE_NAME_MAX = User._meta.get_field("first_name").max_length
EMAIL_MAX = 254

_RESPONSE = Context.RESOURCE_QUERY_RESPONSE


def _with_meta(document: dict, *, resource_type: str, location: str) -> dict:
    return {**document, "meta": {"resourceType": resource_type, "location": location}}


def service_provider_config(*, base_url: str) -> dict:
    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_COUNT),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        authentication_schemes=[AuthenticationScheme(
            type="oauthbearertoken", name="OAuth Bearer Token", primary=True,
            description="The organization's SCIM token (Authorization: Bearer scim_...), made by its "
                        "administrators in the SCIM settings.",
        )],
    )
    return _with_meta(config.model_dump(scim_ctx=_RESPONSE), resource_type="ServiceProviderConfig",
                      location=f"{base_url}/ServiceProviderConfig")


RESOURCE_TYPES = {"User": User_, "Group": Group_}


def resource_type_document(*, name: str, base_url: str) -> dict:
    document = ResourceType.from_resource(RESOURCE_TYPES[name]).model_dump(scim_ctx=_RESPONSE)
    return _with_meta(document, resource_type="ResourceType", location=f"{base_url}/ResourceTypes/{name}")


SCHEMAS = {USER_URN: USER_SCHEMA, GROUP_URN: GROUP_SCHEMA}


def schema_document(*, schema_id: str, base_url: str) -> dict:
    document = SCHEMAS[schema_id].model_dump(scim_ctx=_RESPONSE)
    return _with_meta(document, resource_type="Schema", location=f"{base_url}/Schemas/{schema_id}")


def list_response(*, resources: list[dict], total: int, start_index: int) -> dict:
    return {"schemas": [LIST_RESPONSE_URN], "totalResults": total, "startIndex": start_index,
            "itemsPerPage": len(resources), "Resources": resources}


# --- rendering -----------------------------------------------------------------------------------

def _version(payload) -> str:
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return f'W/"{digest[:20]}"'


def _public(resource: dict) -> dict:
    return {key: value for key, value in (resource or {}).items() if key != PRIVATE}


def user_version(scim_user: ScimUser, groups: list[dict]) -> str:
    return _version([_public(scim_user.resource), sorted((group["id"], group["name"]) for group in groups)])


def group_version(group: ScimGroup, member_ids: list[int]) -> str:
    return _version([group.resource, sorted(member_ids)])


def _timestamps(row) -> dict:
    return {"created": row.created_at.isoformat(), "lastModified": row.updated_at.isoformat()}


def user_document(scim_user: ScimUser, *, base_url: str) -> dict:
    """The SCIM User; `scim_user.group_refs` (selectors) holds its groups."""
    groups = scim_user.group_refs or []
    resource = _public(scim_user.resource)
    document = {"schemas": [USER_URN], "id": str(scim_user.pk)}
    if "externalId" in resource:
        document["externalId"] = resource["externalId"]
    for attribute in ("userName", "name", "displayName", "emails", "active"):
        if attribute in resource:
            document[attribute] = resource[attribute]
    if groups:
        document["groups"] = [{"value": str(group["id"]), "$ref": f"{base_url}/Groups/{group['id']}",
                               "display": group["name"]} for group in groups]
    document["meta"] = {"resourceType": "User", **_timestamps(scim_user),
                        "location": f"{base_url}/Users/{scim_user.pk}", "version": user_version(scim_user, groups)}
    return document


def group_document(group: ScimGroup, *, base_url: str) -> dict:
    """The SCIM Group; `group.member_ids` (selectors) holds its members' SCIM ids, or None when
    they were not asked for."""
    member_ids = group.member_ids
    document = {"schemas": [GROUP_URN], "id": str(group.pk)}
    if "externalId" in group.resource:
        document["externalId"] = group.resource["externalId"]
    document["displayName"] = group.display_name
    if member_ids:
        document["members"] = [{"value": str(pk), "$ref": f"{base_url}/Users/{pk}", "type": "User"}
                               for pk in member_ids]
    document["meta"] = {"resourceType": "Group", **_timestamps(group), "location": f"{base_url}/Groups/{group.pk}"}
    if member_ids is not None:
        document["meta"]["version"] = group_version(group, member_ids)
    return document


def _attribute_names(value: str | None, *, spec: ResourceSpec) -> list[tuple[str, str | None]]:
    """`attributes` / `excludedAttributes`: comma-separated, case-insensitive, URN-prefixable."""
    names = []
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        if item.lower().startswith(spec.schema_urn.lower() + ":"):
            item = item[len(spec.schema_urn) + 1:]
        name, _, sub = item.lower().partition(".")
        names.append((name, sub or None))
    return names


ALWAYS_RETURNED = frozenset({"schemas", "id"})


def project(document: dict, *, attributes: str | None, excluded: str | None, spec: ResourceSpec) -> dict:
    """The document with only the `attributes` asked for, or without the `excludedAttributes`
    (RFC 7644 3.4.2.5); id and schemas are always returned."""
    wanted = _attribute_names(attributes, spec=spec)
    unwanted = _attribute_names(excluded, spec=spec)
    if not wanted and not unwanted:
        return document
    projected = {}
    for key, value in document.items():
        lowered = key.lower()
        if wanted:
            if lowered in ALWAYS_RETURNED or (lowered, None) in wanted:
                projected[key] = value
                continue
            subs = {sub for name, sub in wanted if name == lowered and sub}
            if subs and isinstance(value, dict):
                projected[key] = {k: v for k, v in value.items() if k.lower() in subs}
            elif subs and isinstance(value, list):
                projected[key] = [{k: v for k, v in item.items() if k.lower() in subs} for item in value]
            continue
        if lowered not in ALWAYS_RETURNED and (lowered, None) in unwanted:
            continue
        subs = {sub for name, sub in unwanted if name == lowered and sub}
        if subs and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k.lower() not in subs}
        elif subs and isinstance(value, list):
            value = [{k: v for k, v in item.items() if k.lower() not in subs} for item in value]
        projected[key] = value
    return projected


def members_wanted(*, attributes: str | None, excluded: str | None) -> bool:
    """Whether a Group answer shows its members: Entra ID reads big groups with
    excludedAttributes=members, and then the members are not even queried."""
    excluded_names = {name for name, _ in _attribute_names(excluded, spec=GROUP_SPEC)}
    wanted_names = {name for name, _ in _attribute_names(attributes, spec=GROUP_SPEC)}
    if wanted_names:
        return "members" in wanted_names
    return "members" not in excluded_names


# --- selectors -----------------------------------------------------------------------------------

USER_FILTERS = {
    "username": FilterField("user_name"),
    "externalid": FilterField("external_id", case_exact=True),
    # `emails` alone compares the addresses (RFC 7644 3.4.2.2: a complex attribute's "value").
    "emails": FilterField("resource", kind="json_values", json_key="emails"),
    "emails.value": FilterField("resource", kind="json_values", json_key="emails"),
    "displayname": FilterField("display_name"),
    "active": FilterField("active", kind="boolean", present=Q(resource__has_key="active")),
    "id": FilterField("pk", kind="id"),
}
GROUP_FILTERS = {
    "displayname": FilterField("display_name"),
    "externalid": FilterField("external_id", case_exact=True),
    "id": FilterField("pk", kind="id"),
}


def _filter_q(text: str | None, *, urn: str, fields: dict, table: str) -> Q:
    if text is None or not text.strip():
        return Q()
    try:
        return filter_to_q(parse_filter(text, schema_urn=urn), fields=fields, table=table)
    except FilterError as exc:
        raise ScimError(400, f"Bad filter: {exc}", "invalidFilter") from None


def _user_groups_subquery():
    return ArraySubquery(
        ScimGroupMember.objects.filter(user_id=OuterRef("user_id"), group__organization_id=OuterRef("organization_id"))
        .order_by("group__display_name", "group_id")
        .values(json=JSONObject(id="group_id", name="group__display_name"))
    )


def _scim_users(*, organization: Organization):
    return ScimUser.objects.filter(organization=organization).annotate(group_refs=_user_groups_subquery())


def scim_user_get(*, organization: Organization, scim_id: str) -> ScimUser | None:
    """One SCIM User of this organization by its SCIM id (None for another's or a bad id)."""
    if not str(scim_id).isdigit() or len(str(scim_id)) > 18:
        return None
    return _scim_users(organization=organization).select_related("user").filter(pk=int(scim_id)).first()


@dataclass(frozen=True)
class Page:
    total: int
    start_index: int
    rows: list


def page_bounds(*, start_index, count) -> tuple[int, int]:
    """1-based startIndex (below 1 reads as 1) and count (capped at MAX_COUNT; negative reads as 0)."""
    def number(value, name: str, default: int) -> int:
        if value in (None, ""):
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise invalid_value(f"{name} must be an integer.") from None

    start = max(1, number(start_index, "startIndex", 1))
    size = min(MAX_COUNT, max(0, number(count, "count", DEFAULT_COUNT)))
    return start, size


def scim_users_page(*, organization: Organization, filter_text: str | None, start_index: int, count: int) -> Page:
    """A page of SCIM Users, by id, with their groups: two queries whatever the page size."""
    rows = ScimUser.objects.filter(organization=organization).filter(
        _filter_q(filter_text, urn=USER_URN, fields=USER_FILTERS, table=ScimUser._meta.db_table))
    total = rows.count()
    page = []
    if count and total >= start_index:
        page = list(rows.annotate(group_refs=_user_groups_subquery()).order_by("id")
                    [start_index - 1:start_index - 1 + count])
    return Page(total=total, start_index=start_index, rows=page)


def _group_members_subquery():
    return ArraySubquery(
        ScimUser.objects.filter(
            organization_id=OuterRef("organization_id"),
            user_id__in=ScimGroupMember.objects.filter(group_id=OuterRef(OuterRef("pk"))).values("user_id"),
        ).order_by("pk").values("pk")
    )


def _scim_groups(*, organization: Organization, with_members: bool):
    groups = ScimGroup.objects.filter(organization=organization)
    return groups.annotate(member_ids=_group_members_subquery()) if with_members else groups


def scim_group_get(*, organization: Organization, scim_id: str, with_members: bool = True) -> ScimGroup | None:
    if not str(scim_id).isdigit() or len(str(scim_id)) > 18:
        return None
    group = _scim_groups(organization=organization, with_members=with_members).filter(pk=int(scim_id)).first()
    if group is not None and not with_members:
        group.member_ids = None
    return group


def scim_groups_page(*, organization: Organization, filter_text: str | None, start_index: int, count: int,
                     with_members: bool) -> Page:
    """A page of SCIM Groups, by id, with their members' ids when asked: two queries."""
    rows = ScimGroup.objects.filter(organization=organization).filter(
        _filter_q(filter_text, urn=GROUP_URN, fields=GROUP_FILTERS, table=ScimGroup._meta.db_table))
    total = rows.count()
    page = []
    if count and total >= start_index:
        if with_members:
            rows = rows.annotate(member_ids=_group_members_subquery())
        page = list(rows.order_by("id")[start_index - 1:start_index - 1 + count])
        if not with_members:
            for group in page:
                group.member_ids = None
    return Page(total=total, start_index=start_index, rows=page)


def _group_names_of(*, organization: Organization, user_ids) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {}
    for user_id, name in (ScimGroupMember.objects.filter(group__organization=organization, user_id__in=user_ids)
                          .values_list("user_id", "group__display_name")):
        names.setdefault(user_id, []).append(name)
    return names


# --- services: shared ------------------------------------------------------------------------------

def _check_version(*, current: str, if_match: str | None) -> None:
    """RFC 7644 3.14: a write with If-Match goes ahead only on the version the client read."""
    if not if_match:
        return
    accepted = {value.strip() for value in if_match.split(",")}
    if "*" in accepted:
        return
    bare = current.removeprefix("W/")
    if current not in accepted and bare not in accepted and f"W/{bare}" not in accepted:
        raise ScimError(412, "The resource changed since you read it (If-Match does not match its version).")


def _audit(*, organization: Organization, action: str, target, token_id: int | None, **details) -> None:
    audit.record(organization=organization, actor=None, action=action, target=target,
                 details={"source": "scim", "scim_token_id": token_id, **details})


def access_resync(*, organization: Organization, user_ids) -> int:
    """Apply the organization's SCIM group mappings to these members (their current SCIM groups),
    taking back what groups they left gave. Returns how many were synced."""
    user_ids = sorted(set(user_ids))
    if not user_ids:
        return 0
    mappings = GroupMappings.of(scim_settings_of(organization=organization))
    if mappings.is_empty() and not SsoGrant.objects.filter(
            organization=organization, source=SsoGrant.Source.SCIM, user_id__in=user_ids).exists():
        return 0  # nothing to give and nothing given to take back
    names = _group_names_of(organization=organization, user_ids=user_ids)
    users = User.objects.in_bulk(user_ids)
    access_sync_many(organization=organization, source=SsoGrant.Source.SCIM, mappings=mappings,
                     groups_of={user: names.get(user_id, []) for user_id, user in users.items()})
    return len(user_ids)


# --- services: Users -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _UserFields:
    user_name: str
    display_name: str
    external_id: str | None
    active: bool
    email: str
    first_name: str | None
    last_name: str | None


def _email_or_none(value) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    try:
        validate_email(value)
    except ValidationError:
        return None
    return value if len(value) <= EMAIL_MAX else None


def _limited(value, *, label: str, limit: int) -> str:
    if len(value) > limit:
        raise invalid_value(f"{label} has at most {limit} characters.")
    return value


def _user_fields(document: dict) -> _UserFields:
    user_name = (document.get("userName") or "").strip()
    if not user_name:
        raise invalid_value("userName is required.")
    emails = [item for item in document.get("emails") or [] if item.get("value")]
    chosen = next((item for item in emails if item.get("primary") is True), emails[0] if emails else None)
    if chosen is not None:
        email = _email_or_none(chosen["value"])
        if email is None:
            raise invalid_value(f"emails: {chosen['value']!r} is not an email address.")
    else:
        email = _email_or_none(user_name)
        if email is None:
            raise invalid_value("A User needs an email address: give emails (the primary one is the account's), "
                                "or a userName that is an email address.")
    name = document.get("name") or {}
    first, last = name.get("givenName"), name.get("familyName")
    return _UserFields(
        user_name=_limited(user_name, label="userName", limit=NAME_MAX),
        display_name=_limited(document.get("displayName") or "", label="displayName", limit=NAME_MAX),
        external_id=_limited(document["externalId"], label="externalId", limit=NAME_MAX)
        if document.get("externalId") is not None else None,
        active=document.get("active") is not False,
        email=email,
        first_name=_limited(first, label="name.givenName", limit=PROFILE_NAME_MAX) if first is not None else None,
        last_name=_limited(last, label="name.familyName", limit=PROFILE_NAME_MAX) if last is not None else None,
    )


def _user_name_taken(*, organization: Organization, user_name: str, exclude_pk: int | None) -> None:
    clash = ScimUser.objects.filter(case_insensitive_equal("user_name", user_name), organization=organization)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ScimError(409, f"A User with userName {user_name!r} already exists here.", "uniqueness")


def _belongs_here_alone(*, user: User, organization: Organization) -> bool:
    return not Membership.objects.filter(user=user).exclude(organization=organization).exists()


def _profile_follow(*, user: User, organization: Organization, fields: _UserFields) -> None:
    """The account's names and email follow this organization's IdP only while the person belongs
    to this organization alone: another organization's view of them is never changed from here."""
    if not _belongs_here_alone(user=user, organization=organization):
        return
    changed = []
    if fields.first_name is not None and user.first_name != fields.first_name:
        user.first_name = fields.first_name
        changed.append("first_name")
    if fields.last_name is not None and user.last_name != fields.last_name:
        user.last_name = fields.last_name
        changed.append("last_name")
    if fields.email != user.email:
        if User.objects.filter(email__iexact=fields.email).exclude(pk=user.pk).exists():
            raise ScimError(409, f"Another account uses {fields.email}.", "uniqueness")
        from allauth.account.models import EmailAddress

        # The old address must not stay a way in: allauth logs in by its EmailAddress rows too.
        EmailAddress.objects.filter(user=user, email__iexact=user.email).update(email=fields.email, verified=False)
        if user.username == user.email:
            user.username = fields.email
            changed.append("username")
        user.email = fields.email
        changed.append("email")
    if changed:
        user.save(update_fields=changed)


def _account_for(*, organization: Organization, fields: _UserFields) -> tuple[User, bool]:
    """The account of the User's email, linked (its membership made with the default role when it
    has none here), else a new one without a usable password. Returns (user, new account)."""
    user = User.objects.filter(email__iexact=fields.email).first()
    if user is None:
        user = User.objects.create_user(fields.email, None, first_name=fields.first_name or "",
                                        last_name=fields.last_name or "")
        billing_limits.seats_follow(organization_id=organization.pk, before=None, after=organization.default_role)
        Membership.objects.create(user=user, organization=organization, role=organization.default_role)
        return user, True
    if user.deleted_at is not None or not user.is_active:
        raise invalid_value(f"The account of {fields.email} is deactivated.")
    if ScimUser.objects.filter(organization=organization, user=user).exists():
        raise ScimError(409, f"The account of {fields.email} is already a User here, with another userName.",
                        "uniqueness")
    _profile_follow(user=user, organization=organization, fields=fields)
    if not Membership.objects.filter(user=user, organization=organization).exists():
        billing_limits.seats_follow(organization_id=organization.pk, before=None, after=organization.default_role)
        Membership.objects.create(user=user, organization=organization, role=organization.default_role)
    return user, False


def _last_owner_refusal(*, membership: Membership | None, owner_ids: list[int],
                        token_id: int | None = None) -> str | None:
    """Why SCIM may not deactivate or delete this member: the last active Owner never; any Owner
    only through a token an Owner made (an Administrator's token cannot remove those above them)."""
    if membership is None or membership.role != Role.OWNER:
        return None
    if owner_ids == [membership.user_id]:
        return ("This is the organization's last active Owner: make another member an Owner before "
                "deactivating or deleting this one.")
    if token_id is not None:
        made_by = ScimToken.objects.filter(pk=token_id).values_list("created_by_id", flat=True).first()
        if made_by not in owner_ids:
            return ("This member is an Owner: only a SCIM token made by an Owner may deactivate or delete "
                    "an Owner.")
    return None


def _deactivate(*, organization: Organization, scim_user: ScimUser, membership: Membership | None,
                owner_ids: list[int], token_id: int | None) -> None:
    refusal = _last_owner_refusal(membership=membership, owner_ids=owner_ids, token_id=token_id)
    if refusal:
        raise ScimError(400, refusal, "mutability")
    private = scim_user.resource.setdefault(PRIVATE, {})
    if membership is not None and membership.role not in INACTIVE_ROLES:
        private["role_before_deactivation"] = membership.role
        previous = membership.role
        billing_limits.seats_follow(organization_id=organization.pk, before=previous, after=Role.DEACTIVATED)
        membership.role = Role.DEACTIVATED
        membership.save(update_fields=["role", "updated_at"])
        realtime.member_removed(organization=organization, user=scim_user.user)
    else:
        previous = membership.role if membership is not None else None
    # Browser sessions serve the person's other organizations too: the membership check refuses
    # them here at the next request; API tokens are bound to this organization, so they go now.
    revoked = member_tokens_revoke(organization=organization, user=scim_user.user)
    _audit(organization=organization, action="scim.user_deactivated", target=scim_user.user, token_id=token_id,
           user_id=scim_user.user_id, email=scim_user.user.email, role=previous, tokens_revoked=revoked)


def _reactivate(*, organization: Organization, scim_user: ScimUser, membership: Membership | None,
                token_id: int | None) -> bool:
    """Back to the role SCIM's deactivation replaced; a member deactivated by hand stays so.
    Returns whether the group mappings should be applied again."""
    private = scim_user.resource.get(PRIVATE, {})
    role = private.pop("role_before_deactivation", None)
    if not private:
        scim_user.resource.pop(PRIVATE, None)
    if membership is None or role is None:
        return False
    if membership.role == Role.DEACTIVATED:
        restored = role if role not in INACTIVE_ROLES else organization.default_role
        billing_limits.seats_follow(organization_id=organization.pk, before=membership.role, after=restored)
        membership.role = restored
        membership.save(update_fields=["role", "updated_at"])
        _audit(organization=organization, action="scim.user_reactivated", target=scim_user.user, token_id=token_id,
               user_id=scim_user.user_id, email=scim_user.user.email, role=membership.role)
    return True


def _user_write(*, organization: Organization, scim_user: ScimUser | None, document: dict,
                token_id: int | None) -> ScimUser:
    """Create or replace a User from a cleaned document; the caller holds the transaction."""
    fields = _user_fields(document)
    _user_name_taken(organization=organization, user_name=fields.user_name,
                     exclude_pk=scim_user.pk if scim_user is not None else None)
    created = scim_user is None
    was_active = True if created else scim_user.active
    deactivating, reactivating = was_active and not fields.active, not was_active and fields.active
    # Owners first, as accounts.organizations locks them, so concurrent role changes queue up
    # behind the last-Owner check instead of each seeing another Owner left.
    owner_ids = lock_owners(organization.pk) if deactivating else []
    if created:
        user, new_account = _account_for(organization=organization, fields=fields)
        scim_user = ScimUser(organization=organization, user=user, resource={})
    else:
        user = scim_user.user
        _profile_follow(user=user, organization=organization, fields=fields)
    private = scim_user.resource.get(PRIVATE)
    scim_user.resource = {**document, **({PRIVATE: private} if private else {})}
    resync = False
    if deactivating or reactivating:
        membership = Membership.objects.select_for_update().filter(user=user, organization=organization).first()
        if deactivating:
            _deactivate(organization=organization, scim_user=scim_user, membership=membership,
                        owner_ids=owner_ids, token_id=token_id)
        else:
            resync = _reactivate(organization=organization, scim_user=scim_user, membership=membership,
                                 token_id=token_id)
    scim_user.user_name = fields.user_name
    scim_user.display_name = fields.display_name
    scim_user.external_id = fields.external_id
    scim_user.active = fields.active
    try:
        with transaction.atomic():
            scim_user.save()
    except IntegrityError:
        raise ScimError(409, f"A User with userName {fields.user_name!r} already exists here.",
                        "uniqueness") from None
    if created:
        _audit(organization=organization, action="scim.user_created", target=user, token_id=token_id,
               user_id=user.pk, email=user.email, new_account=new_account, user_name=fields.user_name)
    if resync:
        access_resync(organization=organization, user_ids=[user.pk])
    return scim_user


def _reloaded_user(*, organization: Organization, scim_user: ScimUser) -> ScimUser:
    """The row again, with what the answer shows (groups)."""
    return scim_user_get(organization=organization, scim_id=str(scim_user.pk))


@transaction.atomic
def scim_user_create(*, organization: Organization, payload, token_id: int | None = None) -> ScimUser:
    """POST /Users."""
    document = document_clean(payload, resource=USER_SPEC)
    scim_user = _user_write(organization=organization, scim_user=None, document=document, token_id=token_id)
    return _reloaded_user(organization=organization, scim_user=scim_user)


def _locked_user(*, organization: Organization, scim_user: ScimUser, if_match: str | None) -> ScimUser:
    locked = (ScimUser.objects.select_for_update(of=("self",)).select_related("user")
              .filter(organization=organization, pk=scim_user.pk).first())
    if locked is None:
        raise ScimError(404, "No such User.")
    groups = list(ScimGroupMember.objects.filter(user_id=locked.user_id, group__organization=organization)
                  .values("group_id", "group__display_name"))
    _check_version(current=user_version(locked, [{"id": row["group_id"], "name": row["group__display_name"]}
                                                 for row in groups]), if_match=if_match)
    return locked


@transaction.atomic
def scim_user_replace(*, organization: Organization, scim_user: ScimUser, payload, if_match: str | None = None,
                      token_id: int | None = None) -> ScimUser:
    """PUT /Users/<id>: the body is the whole User (what it leaves out is unassigned)."""
    locked = _locked_user(organization=organization, scim_user=scim_user, if_match=if_match)
    document = document_clean(payload, resource=USER_SPEC)
    _user_write(organization=organization, scim_user=locked, document=document, token_id=token_id)
    return _reloaded_user(organization=organization, scim_user=locked)


@transaction.atomic
def scim_user_patch(*, organization: Organization, scim_user: ScimUser, payload, if_match: str | None = None,
                    token_id: int | None = None) -> ScimUser:
    """PATCH /Users/<id> (RFC 7644 3.5.2, with Entra ID's and Okta's dialects: sso/scim_patch.py)."""
    operations = operations_parse(payload)
    locked = _locked_user(organization=organization, scim_user=scim_user, if_match=if_match)
    document = patch_apply(_public(locked.resource), operations, resource=USER_SPEC)
    _user_write(organization=organization, scim_user=locked, document=document, token_id=token_id)
    return _reloaded_user(organization=organization, scim_user=locked)


@transaction.atomic
def scim_user_delete(*, organization: Organization, scim_user: ScimUser, if_match: str | None = None,
                     token_id: int | None = None) -> None:
    """DELETE /Users/<id>: the person leaves this organization: membership, project and workspace
    memberships, grants, SCIM groups and tokens here go; the account and other organizations stay."""
    owner_ids = lock_owners(organization.pk)
    locked = _locked_user(organization=organization, scim_user=scim_user, if_match=if_match)
    user = locked.user
    membership = Membership.objects.select_for_update().filter(user=user, organization=organization).first()
    refusal = _last_owner_refusal(membership=membership, owner_ids=owner_ids, token_id=token_id)
    if refusal:
        raise ScimError(409, refusal)
    role = membership.role if membership is not None else None
    if membership is not None:
        membership.delete()
        billing_limits.seats_follow(organization_id=organization.pk, before=role, after=None)
        User.objects.filter(pk=user.pk, active_organization=organization).update(active_organization=None)
        forget_member_in_schema(organization=organization, user_id=user.pk)
        realtime.member_removed(organization=organization, user=user)
    grants_forget(organization=organization, user=user)
    group_ids = list(ScimGroupMember.objects.filter(group__organization=organization, user=user)
                     .values_list("group_id", flat=True))
    ScimGroupMember.objects.filter(group_id__in=group_ids, user=user).delete()
    ScimGroup.objects.filter(pk__in=group_ids).update(updated_at=timezone.now())
    revoked = member_tokens_revoke(organization=organization, user=user)
    _audit(organization=organization, action="scim.user_deleted", target=user, token_id=token_id,
           user_id=user.pk, email=user.email, role=role, user_name=locked.user_name, tokens_revoked=revoked)
    locked.delete()


# --- services: Groups ------------------------------------------------------------------------------

def _group_name(document: dict) -> str:
    name = (document.get("displayName") or "").strip()
    if not name:
        raise invalid_value("displayName is required.")
    return _limited(name, label="displayName", limit=NAME_MAX)


def _member_user_ids(*, organization: Organization, document: dict) -> set[int]:
    """The accounts behind a document's members (SCIM User ids of this organization)."""
    wanted, bad = set(), []
    for member in document.get("members") or []:
        value = str(member.get("value") or "")
        if member.get("type") not in (None, "User"):
            raise invalid_value(f"Members are Users; nested groups ({value!r}) are not supported.")
        if value.isdigit() and len(value) <= 18:
            wanted.add(int(value))
        else:
            bad.append(value)
    found = dict(ScimUser.objects.filter(organization=organization, pk__in=wanted).values_list("pk", "user_id"))
    missing = bad + [str(pk) for pk in sorted(wanted - set(found))]
    if missing:
        raise invalid_value(f"No User with id {missing[0]!r} here: add Users of this organization.")
    return set(found.values())


def _group_write(*, organization: Organization, group: ScimGroup | None, document: dict,
                 token_id: int | None) -> ScimGroup:
    name = _group_name(document)
    clash = ScimGroup.objects.filter(organization=organization, display_name=name)
    if group is not None:
        clash = clash.exclude(pk=group.pk)
    if clash.exists():
        raise ScimError(409, f"A Group named {name!r} already exists here.", "uniqueness")
    members = _member_user_ids(organization=organization, document=document)
    resource = {key: value for key, value in document.items() if key != "members"}
    created = group is None
    renamed = not created and group.display_name != name
    if created:
        group = ScimGroup(organization=organization)
        previous: set[int] = set()
    else:
        previous = set(group.memberships.values_list("user_id", flat=True))
    group.display_name, group.external_id, group.resource = name, resource.get("externalId"), resource
    try:
        with transaction.atomic():
            group.save()
    except IntegrityError:
        raise ScimError(409, f"A Group named {name!r} already exists here.", "uniqueness") from None
    added, removed = members - previous, previous - members
    ScimGroupMember.objects.bulk_create([ScimGroupMember(group=group, user_id=pk) for pk in sorted(added)],
                                        ignore_conflicts=True)
    if removed:
        ScimGroupMember.objects.filter(group=group, user_id__in=removed).delete()
    if created:
        _audit(organization=organization, action="scim.group_created", target=group, token_id=token_id,
               display_name=name, members=len(members))
    # A rename changes what every member's groups map to; otherwise only who joined or left.
    access_resync(organization=organization, user_ids=(members | previous) if renamed else (added | removed))
    return group


def _reloaded_group(*, organization: Organization, group: ScimGroup) -> ScimGroup:
    return scim_group_get(organization=organization, scim_id=str(group.pk))


def _locked_group(*, organization: Organization, group: ScimGroup, if_match: str | None) -> ScimGroup:
    locked = ScimGroup.objects.select_for_update().filter(organization=organization, pk=group.pk).first()
    if locked is None:
        raise ScimError(404, "No such Group.")
    if if_match:
        member_ids = list(ScimUser.objects.filter(
            organization=organization, user_id__in=locked.memberships.values("user_id")).values_list("pk", flat=True))
        _check_version(current=group_version(locked, member_ids), if_match=if_match)
    return locked


def _group_document_of(*, organization: Organization, group: ScimGroup) -> dict:
    """The stored Group as a document PATCH works on (members as SCIM User ids)."""
    member_ids = ScimUser.objects.filter(organization=organization, user_id__in=group.memberships.values("user_id")) \
        .order_by("pk").values_list("pk", flat=True)
    document = {**group.resource, "displayName": group.display_name}
    members = [{"value": str(pk)} for pk in member_ids]
    if members:
        document["members"] = members
    return document


@transaction.atomic
def scim_group_create(*, organization: Organization, payload, token_id: int | None = None) -> ScimGroup:
    """POST /Groups."""
    document = document_clean(payload, resource=GROUP_SPEC)
    group = _group_write(organization=organization, group=None, document=document, token_id=token_id)
    return _reloaded_group(organization=organization, group=group)


@transaction.atomic
def scim_group_replace(*, organization: Organization, group: ScimGroup, payload, if_match: str | None = None,
                       token_id: int | None = None) -> ScimGroup:
    """PUT /Groups/<id>."""
    locked = _locked_group(organization=organization, group=group, if_match=if_match)
    document = document_clean(payload, resource=GROUP_SPEC)
    _group_write(organization=organization, group=locked, document=document, token_id=token_id)
    return _reloaded_group(organization=organization, group=locked)


@transaction.atomic
def scim_group_patch(*, organization: Organization, group: ScimGroup, payload, if_match: str | None = None,
                     token_id: int | None = None) -> ScimGroup:
    """PATCH /Groups/<id>: members add/remove (`members[value eq "<id>"]` paths too), renames."""
    operations = operations_parse(payload)
    locked = _locked_group(organization=organization, group=group, if_match=if_match)
    document = patch_apply(_group_document_of(organization=organization, group=locked), operations,
                           resource=GROUP_SPEC)
    _group_write(organization=organization, group=locked, document=document, token_id=token_id)
    return _reloaded_group(organization=organization, group=locked)


@transaction.atomic
def scim_group_delete(*, organization: Organization, group: ScimGroup, if_match: str | None = None,
                      token_id: int | None = None) -> None:
    """DELETE /Groups/<id>: its members lose what it gave them."""
    locked = _locked_group(organization=organization, group=group, if_match=if_match)
    members = set(locked.memberships.values_list("user_id", flat=True))
    _audit(organization=organization, action="scim.group_deleted", target=locked, token_id=token_id,
           display_name=locked.display_name, members=len(members))
    locked.delete()
    access_resync(organization=organization, user_ids=members)


# --- services: settings --------------------------------------------------------------------------

@transaction.atomic
def scim_settings_update(*, organization: Organization, actor, data, request=None) -> ScimSettings:
    """`/api/scim/settings`: store the group mappings given (Label Studio's shapes, validated by
    sso.grants.mappings_clean), then re-sync every SCIM-managed member after commit (Celery)."""
    if not isinstance(data, dict):
        raise ValidationError({"detail": "Give an object with roles_groups, workspaces_groups, projects_groups."})
    cleaned = mappings_clean(organization=organization, data=data)
    row, _ = ScimSettings.objects.select_for_update().get_or_create(organization=organization)
    changed = {name: {"from": getattr(row, name), "to": value} for name, value in cleaned.items()
               if getattr(row, name) != value}
    for name, value in cleaned.items():
        setattr(row, name, value)
    row.save()
    if changed:
        audit.record(organization=organization, actor=actor, action="scim.settings_changed", target=row,
                     details=changed, request=request)
    organization_id = organization.pk
    # robust: a broker outage must not undo settings that are already stored.
    transaction.on_commit(lambda: _enqueue_resync(organization_id), robust=True)
    return row


def _enqueue_resync(organization_id: int) -> None:
    from sso.tasks import scim_resync

    scim_resync.delay(organization_id)


def scim_members_resync(*, organization: Organization) -> int:
    """Every SCIM-managed member of the organization through the current mappings (the Celery job
    after a settings change). Returns how many were synced."""
    user_ids = list(ScimUser.objects.filter(organization=organization).values_list("user_id", flat=True))
    return access_resync(organization=organization, user_ids=user_ids)
