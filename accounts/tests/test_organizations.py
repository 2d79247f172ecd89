"""Organization administration API: organizations, members and roles, member tags, permission
overrides; the Owner rules; access ending at the next request; isolation from other organizations."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from accounts import services
from accounts.access import PERMISSIONS, overrides_changed
from accounts.models import AuditEvent, Membership, MemberTag, MemberTagAssignment, OrganizationPermission, Role
from conftest import PASSWORD, Member

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _forget_cached_overrides(world):
    """Overrides are cached (per schema) outside the rolled-back transaction: drop them after
    each test so no other test sees this one's overrides."""
    yield
    for organization in (world.org_a, world.org_b):
        with tenant_context(organization):
            overrides_changed(organization.pk)


@pytest.fixture
def org(world) -> str:
    return f"/api/organizations/{world.org_a.pk}"


@pytest.fixture
def new_member(world):
    """A new member of org A (or another organization) with a legacy token."""
    created = []

    def make(role: str = Role.ANNOTATOR, *, email: str | None = None, organization=None) -> Member:
        email = email or f"member{len(created)}@a.test"
        user = services.user_create(email=email, password=PASSWORD, first_name=f"New{len(created)}")
        organization = organization or world.org_a
        services.membership_set(user=user, organization=organization, role=role)
        member = Member(user=user, legacy_key=services.legacy_token_issue(user=user, organization=organization),
                        pat="")
        created.append(member)
        return member

    return make


def role_of(world, member) -> str:
    return Membership.objects.get(user=member.user, organization=world.org_a).role


def audited(world, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(organization=world.org_a, action=action))


def errors_of(response) -> dict:
    return response.json().get("validation_errors", {})


# --- Organizations -------------------------------------------------------------------------------

def test_organization_list_is_the_callers_active_memberships(world, api, owner, new_member):
    assert [row["id"] for row in owner("get", "/api/organizations/").json()] == [world.org_a.pk]
    row = owner("get", "/api/organizations/").json()[0]
    assert set(row) == {"id", "title", "contact_info", "created_at"}

    both = new_member(Role.ANNOTATOR)
    Membership.objects.create(user=both.user, organization=world.org_b, role=Role.DEACTIVATED)
    listed = api.call("get", "/api/organizations/", token=both.legacy_key).json()
    assert [row["id"] for row in listed] == [world.org_a.pk]

    Membership.objects.filter(user=both.user, organization=world.org_b).update(role=Role.REVIEWER)
    listed = api.call("get", "/api/organizations/?ordering=-title", token=both.legacy_key).json()
    assert [row["title"] for row in listed] == ["Org B", "Org A"]
    bad = api.call("get", "/api/organizations/?ordering=secret", token=both.legacy_key)
    assert bad.status_code == 400 and "ordering" in errors_of(bad)


def test_organization_get_is_the_requests_own_organization_only(world, owner, annotator, org):
    body = owner("get", org).json()
    assert body["id"] == world.org_a.pk and body["title"] == "Org A"
    assert {"billing", "default_role", "embed_domains", "external_id", "created_at", "token"} <= set(body)
    assert annotator("get", org).status_code == 200
    assert owner("get", f"/api/organizations/{world.org_b.pk}").status_code == 404
    assert owner("get", "/api/organizations/999999").status_code == 404


def test_organization_patch_changes_settings_and_audits(world, owner, org):
    response = owner("patch", org, {"title": "Org A renamed", "contact_info": "ops@a.test",
                                    "embed_domains": [{"domain": "a.example"}], "external_id": "crm-7",
                                    "custom_scripts_enabled": True})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["title"], body["contact_info"], body["external_id"]) == ("Org A renamed", "ops@a.test", "crm-7")
    assert body["embed_domains"] == [{"domain": "a.example"}]
    assert type(world.org_a).objects.get(pk=world.org_a.pk).title == "Org A renamed"
    [event] = audited(world, "organization.changed")
    assert event.details["title"] == {"from": "Org A", "to": "Org A renamed"}
    assert event.actor_id == world.owner_a.user.pk


@pytest.mark.parametrize("body,field", [
    ({"title": ""}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"contact_info": "not an email"}, "contact_info"),
    ({"embed_domains": "a.example"}, "embed_domains"),
    ({"embed_domains": [{"host": "a.example"}]}, "embed_domains"),
    ({"external_id": 7}, "external_id"),
    ({"embed_settings": [1]}, "embed_settings"),
])
def test_organization_patch_bad_input_is_400_naming_the_field(world, owner, org, body, field):
    response = owner("patch", org, body)
    assert response.status_code == 400
    assert field in errors_of(response)
    world.org_a.refresh_from_db()
    assert world.org_a.title == "Org A"


def test_organization_patch_needs_organizations_change(world, as_member, org):
    for member in (world.manager_a, world.reviewer_a, world.annotator_a):
        response = as_member(member)("patch", org, {"title": "Hijacked"})
        assert response.status_code == 403
    assert as_member(world.admin_a)("patch", org, {"title": "By the admin"}).status_code == 200


def test_organization_patch_of_another_organization_is_404(world, owner):
    response = owner("patch", f"/api/organizations/{world.org_b.pk}", {"title": "Mine now"})
    assert response.status_code == 404
    world.org_b.refresh_from_db()
    assert world.org_b.title == "Org B"


def test_set_default_role(world, owner, as_member, org):
    response = owner("patch", f"{org}/set-default-role", {"default_role": "RE", "organization": 12345})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["default_role"] == "RE" and body["organization"] == world.org_a.pk
    # Read a fresh copy: the session-wide `world.org_a` must keep what the rolled-back database has.
    assert type(world.org_a).objects.get(pk=world.org_a.pk).default_role == "RE"
    for bad in ("XX", "OW", "DI", None):
        response = owner("patch", f"{org}/set-default-role", {"default_role": bad})
        assert response.status_code == 400 and "default_role" in errors_of(response), bad
    assert as_member(world.manager_a)("patch", f"{org}/set-default-role", {"default_role": "AN"}).status_code == 403


# --- Members -------------------------------------------------------------------------------------

def members_url(org, query: str = "") -> str:
    return f"{org}/memberships{'?' + query if query else ''}"


def emails(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["user"]["email"] for row in response.json()["results"]]


def test_member_list_shape_and_pagination(world, owner, org):
    everyone = owner("get", members_url(org, "page_size=1000")).json()
    total = everyone["count"]
    assert total == Membership.objects.filter(organization=world.org_a).count() >= 6
    row = next(r for r in everyone["results"] if r["user"]["email"] == "owner@a.test")
    assert row["role"] == "OW" and row["organization"] == world.org_a.pk
    assert row["tags"] == [{"id": world.member_tag_a.pk, "label": "A's tag"}]
    assert row["created_projects"] is None and row["contributed_to_projects"] is None
    assert {"id", "email", "first_name", "last_name", "username", "last_activity", "avatar"} <= set(row["user"])

    first = owner("get", members_url(org, "page_size=2&ordering=email")).json()
    assert first["count"] == total and len(first["results"]) == 2 and first["previous"] is None
    assert "page=2" in first["next"]
    second = owner("get", members_url(org, "page_size=2&ordering=email&page=2")).json()
    assert second["previous"] and not {r["id"] for r in second["results"]} & {r["id"] for r in first["results"]}
    past_the_end = owner("get", members_url(org, f"page_size=2&page={total}")).json()
    assert past_the_end["results"] == [] and past_the_end["count"] == total and past_the_end["next"] is None
    for bad, field in [("page=0", "page"), ("page_size=abc", "page_size"), ("page_size=5000", "page_size")]:
        response = owner("get", members_url(org, bad))
        assert response.status_code == 400 and field in errors_of(response), bad


def test_member_list_filters(world, owner, org, new_member):
    outsider = new_member(Role.ANNOTATOR, email="outsider@a.test")
    roles = {row["role"] for row in owner("get", members_url(org, "role=AN,RE")).json()["results"]}
    assert roles == {"AN", "RE"}
    assert owner("get", members_url(org, "role=RE&role=MA")).json()["count"] == 2
    bad = owner("get", members_url(org, "role=AN,XX"))
    assert bad.status_code == 400 and "XX" in str(errors_of(bad)["role"])

    assert emails(owner("get", members_url(org, "search=ADMIN@"))) == ["admin@a.test"]
    assert emails(owner("get", members_url(org, "search=new0"))) == ["outsider@a.test"]
    assert emails(owner("get", members_url(org, f"tags={world.member_tag_a.pk}"))) == ["owner@a.test"]
    bad = owner("get", members_url(org, "tags=one"))
    assert bad.status_code == 400 and "tags" in errors_of(bad)

    # Every member but the new one is in project_a; Owners and Administrators see every project.
    assert emails(owner("get", members_url(org, f"exclude_project_id={world.project_a.pk}"))) == [
        outsider.user.email]
    assert emails(owner("get", members_url(org, f"exclude_project_id={world.project_a.pk}.0"))) == [
        outsider.user.email]
    not_in_workspace = emails(owner("get", members_url(org, f"exclude_workspace_id={world.workspace_a.pk}")))
    assert "owner@a.test" not in not_in_workspace and "admin@a.test" not in not_in_workspace
    assert {"annotator@a.test", "outsider@a.test"} <= set(not_in_workspace)
    for bad in ("exclude_project_id=999999", "exclude_workspace_id=999999", "exclude_project_id=x",
                "exclude_project_id=1e30", "exclude_workspace_id=1.5"):
        response = owner("get", members_url(org, bad))
        assert response.status_code == 400 and bad.split("=")[0] in errors_of(response)

    assert owner("get", members_url(org, "is_deleted=true")).json()["count"] == 0
    recent = owner("get", members_url(org, "user__last_activity__gte=2999-01-01")).json()
    assert recent["count"] == 0
    bad = owner("get", members_url(org, "user__last_activity__lte=yesterday"))
    assert bad.status_code == 400 and "user__last_activity__lte" in errors_of(bad)


def test_member_list_ordering(world, owner, org):
    by_role = [row["role"] for row in owner("get", members_url(org, "ordering=role")).json()["results"]]
    assert by_role[0] == "OW" and by_role.index("AD") < by_role.index("MA") < by_role.index("AN")
    descending = emails(owner("get", members_url(org, "ordering=-user__email")))
    assert descending == sorted(descending, reverse=True)
    bad = owner("get", members_url(org, "ordering=password"))
    assert bad.status_code == 400 and "ordering" in errors_of(bad)


def test_member_list_with_projects(world, owner, org):
    rows = owner("get", members_url(org, "contributed_to_projects=true")).json()["results"]
    mine = next(r for r in rows if r["user"]["email"] == "owner@a.test")
    project = {"id": world.project_a.pk, "title": world.project_a.title}
    assert project in mine["created_projects"] and project in mine["contributed_to_projects"]
    annotator = next(r for r in rows if r["user"]["email"] == "annotator@a.test")
    assert annotator["created_projects"] == [] and annotator["contributed_to_projects"] == []


def _queries_of(call) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = call()
    assert response.status_code == 200, response.content
    return len(queries)


def test_member_list_queries_do_not_grow_with_the_page(world, owner, org, new_member):
    for _ in range(8):
        member = new_member(Role.ANNOTATOR)
        MemberTagAssignment.objects.create(tag=world.member_tag_a,
                                           membership=Membership.objects.get(user=member.user))
    for query in ("", "contributed_to_projects=true"):
        small = _queries_of(lambda q=query: owner("get", members_url(org, f"page_size=2&{q}")))
        large = _queries_of(lambda q=query: owner("get", members_url(org, f"page_size=100&{q}")))
        assert small == large, query


def test_member_page_is_one_query_plus_tags_plus_projects(world):
    from accounts import organizations_selectors as selectors
    from accounts.access import Actor

    actor = Actor(membership=Membership.objects.select_related("user").get(user=world.owner_a.user,
                                                                          organization=world.org_a))
    actor.overrides  # noqa: B018 - the organization's overrides: read once per request, cached
    with tenant_context(world.org_a), CaptureQueriesContext(connection) as captured:
        page = selectors.page_of(selectors.memberships_of(organization=world.org_a), page=1, page_size=50)
        selectors.tags_by_membership(membership_ids=[m.pk for m in page.rows])
        selectors.projects_of_members(actor=actor, user_ids=[m.user_id for m in page.rows])
        for membership in page.rows:
            membership.user.email  # noqa: B018 - loaded with the page
    queries = [q["sql"] for q in captured if not q["sql"].startswith("SET search_path")]
    assert len(queries) == 4, queries


def test_member_detail(world, owner, org):
    response = owner("get", f"{org}/memberships/{world.owner_a.user.pk}/?contributed_to_projects=true")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["user"] == world.owner_a.user.pk and body["organization"] == world.org_a.pk
    assert body["annotations_count"] >= 1 and body["contributed_projects_count"] >= 1
    assert {"id": world.project_a.pk, "title": world.project_a.title} in body["created_projects"]
    plain = owner("get", f"{org}/memberships/{world.annotator_a.user.pk}").json()
    assert plain["annotations_count"] == 0 and plain["created_projects"] is None
    assert owner("get", f"{org}/memberships/{world.owner_b.user.pk}/").status_code == 404


def test_members_need_members_view(world, as_member, org):
    assert as_member(world.manager_a)("get", members_url(org)).status_code == 200
    for member in (world.reviewer_a, world.annotator_a):
        assert as_member(member)("get", members_url(org)).status_code == 403
        assert as_member(member)("get", f"{org}/memberships/{world.owner_a.user.pk}").status_code == 403


def test_role_change(world, owner, org):
    response = owner("patch", members_url(org), {"user_id": world.annotator_a.user.pk, "role": "RE"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["role"] == "RE" and body["user"]["id"] == world.annotator_a.user.pk and body["tags"] == []
    assert role_of(world, world.annotator_a) == "RE"
    [event] = audited(world, "member.role_changed")
    assert event.details["from"] == "AN" and event.details["to"] == "RE"
    assert event.target_id == str(world.annotator_a.user.pk)
    # No change, no event.
    assert owner("patch", members_url(org), {"user_id": world.annotator_a.user.pk, "role": "RE"}).status_code == 200
    assert len(audited(world, "member.role_changed")) == 1


@pytest.mark.parametrize("body,field", [
    ({"role": "RE"}, "user_id"),
    ({"user_id": "me", "role": "RE"}, "user_id"),
    ({"user_id": True, "role": "RE"}, "user_id"),
    ("annotator", "role"),
    ({"role": "XX"}, "role"),
    ({"role": "VO"}, "role"),
])
def test_role_change_bad_input(world, owner, org, body, field):
    if body == "annotator":
        body = {"user_id": world.annotator_a.user.pk}
    elif "user_id" not in body and field == "role":
        body = {**body, "user_id": world.annotator_a.user.pk}
    response = owner("patch", members_url(org), body)
    assert response.status_code == 400, response.content
    assert field in errors_of(response)
    assert role_of(world, world.annotator_a) == "AN"


def test_bodies_must_be_objects(world, owner, org):
    for method, path in [("patch", org), ("patch", members_url(org)), ("post", tags_url(org)),
                         ("post", tags_url(org, "/assignments")), ("post", perms_url(org)),
                         ("put", perms_url(org, "/projects.create"))]:
        response = owner(method, path, ["not", "an", "object"])
        assert response.status_code == 400 and "body" in errors_of(response), (method, path)


def test_role_change_of_a_non_member_is_404(world, owner, org):
    response = owner("patch", members_url(org), {"user_id": world.owner_b.user.pk, "role": "AN"})
    assert response.status_code == 404
    assert Membership.objects.get(user=world.owner_b.user, organization=world.org_b).role == "OW"


def test_only_an_owner_makes_an_owner(world, as_member, org):
    admin = as_member(world.admin_a)
    response = admin("patch", members_url(org), {"user_id": world.manager_a.user.pk, "role": "OW"})
    assert response.status_code == 403
    assert "Only an Owner can make someone an Owner" in response.json()["detail"]
    assert role_of(world, world.manager_a) == "MA"
    response = as_member(world.owner_a)("patch", members_url(org), {"user_id": world.manager_a.user.pk, "role": "OW"})
    assert response.status_code == 200 and role_of(world, world.manager_a) == "OW"


def test_an_administrator_cannot_change_or_remove_an_owner(world, as_member, org, new_member):
    admin = as_member(world.admin_a)
    for role in ("AD", "AN", "DI"):
        response = admin("patch", members_url(org), {"user_id": world.owner_a.user.pk, "role": role})
        assert response.status_code == 403 and "Owner" in response.json()["detail"], role
    response = admin("delete", f"{org}/memberships/{world.owner_a.user.pk}/")
    assert response.status_code == 403
    assert role_of(world, world.owner_a) == "OW"
    # Administrators do change other members, Administrators included.
    other_admin = new_member(Role.ADMINISTRATOR)
    assert admin("patch", members_url(org), {"user_id": other_admin.user.pk, "role": "MA"}).status_code == 200


def test_the_last_owner_cannot_be_demoted_deactivated_or_removed(world, api, owner, org, new_member):
    for role in ("AD", "AN"):
        response = owner("patch", members_url(org), {"user_id": world.owner_a.user.pk, "role": role})
        assert response.status_code == 400 and "last Owner" in str(errors_of(response)["role"]), role
    response = owner("patch", members_url(org), {"user_id": world.owner_a.user.pk, "role": "DI"})
    assert response.status_code == 400 and "role" in errors_of(response)
    assert role_of(world, world.owner_a) == "OW"

    # With a second Owner, either may step down, and then the other is the last one.
    second = new_member(Role.OWNER)
    assert owner("patch", members_url(org), {"user_id": world.owner_a.user.pk, "role": "AD"}).status_code == 200
    response = api.call("patch", f"/o/org-a{members_url(org)}", token=second.legacy_key,
                        json={"user_id": second.user.pk, "role": "AD"})
    assert response.status_code == 400 and "last Owner" in str(errors_of(response)["role"])
    assert list(Membership.objects.filter(organization=world.org_a, role=Role.OWNER).values_list(
        "user_id", flat=True)) == [second.user.pk]


def test_last_owner_rule_in_the_service_holds_for_removal(world):
    """Removal of the last Owner by someone allowed to change Owners (not reachable from the API,
    where only an Owner may, and may not remove themselves): still refused."""
    from django.core.exceptions import ValidationError

    from accounts import organizations
    from accounts.access import Actor

    owners = Membership.objects.filter(organization=world.org_a, role=Role.OWNER)
    assert owners.count() == 1
    # An Owner-role actor who is not the last Owner themselves (the API never builds one).
    stranger = Actor(membership=Membership(user=world.owner_b.user, organization=world.org_a, role=Role.OWNER))
    with pytest.raises(ValidationError) as caught:
        organizations.membership_remove(organization=world.org_a, actor=stranger, membership=owners.get())
    assert "last Owner" in str(caught.value)
    assert owners.count() == 1


def test_members_cannot_deactivate_or_remove_themselves(world, as_member, org):
    admin = as_member(world.admin_a)
    response = admin("patch", members_url(org), {"user_id": world.admin_a.user.pk, "role": "DI"})
    assert response.status_code == 400 and "yourself" in str(errors_of(response)["role"])
    response = admin("delete", f"{org}/memberships/{world.admin_a.user.pk}/")
    assert response.status_code == 405 and "yourself" in response.json()["detail"]
    assert role_of(world, world.admin_a) == "AD"


def test_role_changes_need_members_change(world, as_member, org):
    for member in (world.manager_a, world.reviewer_a, world.annotator_a):
        response = as_member(member)("patch", members_url(org), {"user_id": world.annotator_a.user.pk, "role": "MA"})
        assert response.status_code == 403
        response = as_member(member)("delete", f"{org}/memberships/{world.annotator_a.user.pk}/")
        assert response.status_code == 403
    assert role_of(world, world.annotator_a) == "AN"


WHOAMI = "/api/current-user/whoami"


def test_deactivation_ends_access_at_the_next_request(world, api, owner, org, new_member):
    member = new_member(Role.ANNOTATOR)
    assert api.call("get", WHOAMI, token=member.legacy_key).status_code == 200
    response = owner("patch", members_url(org), {"user_id": member.user.pk, "role": "DI"})
    assert response.status_code == 200 and response.json()["role"] == "DI"
    assert api.call("get", WHOAMI, token=member.legacy_key).status_code == 403
    assert api.call("get", f"/o/org-a{WHOAMI}", token=member.legacy_key).status_code == 403
    assert len(audited(world, "member.deactivated")) == 1
    # Listed as deactivated, and can be brought back.
    assert emails(owner("get", members_url(org, "role=DI"))) == [member.user.email]
    assert owner("patch", members_url(org), {"user_id": member.user.pk, "role": "AN"}).status_code == 200
    assert api.call("get", WHOAMI, token=member.legacy_key).status_code == 200


def test_removal_ends_access_and_drops_the_membership(world, api, owner, org, new_member):
    from labeling.models import ProjectMember

    member = new_member(Role.ANNOTATOR)
    membership = Membership.objects.get(user=member.user, organization=world.org_a)
    MemberTagAssignment.objects.create(tag=world.member_tag_a, membership=membership)
    with tenant_context(world.org_a):
        ProjectMember.objects.create(project=world.project_a, user=member.user)
    assert api.call("get", WHOAMI, token=member.legacy_key).status_code == 200

    response = owner("delete", f"{org}/memberships/{member.user.pk}/")
    assert response.status_code == 204, response.content
    assert api.call("get", WHOAMI, token=member.legacy_key).status_code == 403
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert not MemberTagAssignment.objects.filter(membership_id=membership.pk).exists()
    with tenant_context(world.org_a):
        assert not ProjectMember.objects.filter(user_id=member.user.pk).exists()
    [event] = audited(world, "member.removed")
    assert event.details["email"] == member.user.email and event.details["role"] == "AN"
    assert member.user.email not in emails(owner("get", members_url(org, "page_size=1000")))
    assert owner("get", f"{org}/memberships/{member.user.pk}/").status_code == 404
    assert owner("delete", f"{org}/memberships/{member.user.pk}/").status_code == 404


# --- Member tags ---------------------------------------------------------------------------------

def tags_url(org, rest: str = "") -> str:
    return f"{org}/member-tags{rest}"


def test_member_tag_crud(world, owner, org):
    response = owner("post", tags_url(org), {"label": "  Senior  "})
    assert response.status_code == 201, response.content
    tag = response.json()
    assert tag["label"] == "Senior" and tag["member_count"] == 0 and tag["organization"] == world.org_a.pk
    assert tag["created_by"]["id"] == world.owner_a.user.pk
    assert owner("get", tags_url(org, f"/{tag['id']}")).json()["label"] == "Senior"

    response = owner("patch", tags_url(org, f"/{tag['id']}"), {"label": "Lead"})
    assert response.status_code == 200 and response.json()["label"] == "Lead"
    response = owner("patch", tags_url(org, f"/{tag['id']}"), {"label": "A's tag"})
    assert response.status_code == 400 and "already exists" in str(errors_of(response)["label"])

    assert owner("delete", tags_url(org, f"/{tag['id']}")).status_code == 204
    assert owner("get", tags_url(org, f"/{tag['id']}")).status_code == 404
    assert {e.action for e in AuditEvent.objects.filter(organization=world.org_a, action__startswith="member_tag.")} \
        == {"member_tag.created", "member_tag.changed", "member_tag.deleted"}


@pytest.mark.parametrize("body", [{}, {"label": ""}, {"label": "   "}, {"label": "x" * 256}, {"label": 5},
                                  {"label": "A's tag"}])
def test_member_tag_create_bad_input(world, owner, org, body):
    response = owner("post", tags_url(org), body)
    assert response.status_code == 400 and "label" in errors_of(response)
    assert MemberTag.objects.filter(organization=world.org_a).count() == 1


def test_member_tag_list_search_order_and_pages(world, owner, org):
    for label in ("beta", "alpha", "gamma"):
        assert owner("post", tags_url(org), {"label": label}).status_code == 201
    body = owner("get", tags_url(org, "?page_size=2&ordering=label")).json()
    assert body["count"] == 4 and [t["label"] for t in body["results"]] == ["A's tag", "alpha"]
    assert owner("get", tags_url(org, "?page_size=2&page=2&ordering=label")).json()["results"][1]["label"] == "gamma"
    assert [t["label"] for t in owner("get", tags_url(org, "?search=ALP")).json()["results"]] == ["alpha"]
    by_members = owner("get", tags_url(org, "?ordering=-member_count")).json()["results"]
    assert by_members[0]["label"] == "A's tag" and by_members[0]["member_count"] == 1
    assert owner("get", tags_url(org, "?page_size=101")).status_code == 400
    assert owner("get", tags_url(org, "?ordering=secret")).status_code == 400


def test_member_tags_need_members_view_and_change(world, as_member, org):
    assert as_member(world.manager_a)("get", tags_url(org)).status_code == 200
    assert as_member(world.manager_a)("post", tags_url(org), {"label": "x"}).status_code == 403
    assert as_member(world.annotator_a)("get", tags_url(org)).status_code == 403
    assert as_member(world.admin_a)("post", tags_url(org), {"label": "x"}).status_code == 201


def test_member_tags_bulk_create_and_delete(world, owner, org, new_member):
    response = owner("post", tags_url(org, "/bulk"), {"labels": ["x", "y", "x", "A's tag", " y "]})
    assert response.status_code == 201 and response.json() == {"created": 2}
    assert set(MemberTag.objects.filter(organization=world.org_a).values_list("label", flat=True)) == {
        "A's tag", "x", "y"}
    for bad in ({}, {"labels": []}, {"labels": "x"}, {"labels": ["ok", ""]}):
        response = owner("post", tags_url(org, "/bulk"), bad)
        assert response.status_code == 400 and "labels" in errors_of(response), bad

    b_tag = MemberTag.objects.create(organization=world.org_b, label="B's tag")
    ids = list(MemberTag.objects.filter(organization=world.org_a, label__in=["x", "y"]).values_list("pk", flat=True))
    response = owner("delete", tags_url(org, f"/bulk?ids={ids[0]},{b_tag.pk}"))
    assert response.status_code == 200 and response.json() == {"deleted": 1}
    response = owner("delete", tags_url(org, "/bulk"), {"ids": [ids[1], b_tag.pk]})
    assert response.json() == {"deleted": 1}
    assert MemberTag.objects.filter(pk=b_tag.pk).exists()
    response = owner("post", tags_url(org, "/bulk"), {"labels": ["z"]})
    assert owner("delete", tags_url(org, "/bulk"), {"labels": ["z"]}).json() == {"deleted": 1}
    response = owner("delete", tags_url(org, "/bulk"))
    assert response.status_code == 400 and "ids" in errors_of(response)
    assert owner("delete", tags_url(org, "/bulk?ids=a")).status_code == 400


def _tags_of(world, member) -> set[str]:
    return set(MemberTagAssignment.objects.filter(membership__user=member.user, membership__organization=world.org_a)
               .values_list("tag__label", flat=True))


def test_member_tag_assignments(world, owner, org, new_member):
    one, two, three = (MemberTag.objects.create(organization=world.org_a, label=label) for label in "123")
    people = [new_member(Role.ANNOTATOR) for _ in range(3)]
    url = tags_url(org, "/assignments")

    response = owner("post", url, {"all": False, "included": [p.user.pk for p in people[:2]],
                                   "tags": [one.pk, two.pk]})
    assert response.status_code == 200 and response.json() == {"assigned": 4}
    assert owner("post", url, {"all": False, "included": [people[0].user.pk], "tags": [one.pk]}).json() == {
        "assigned": 0}
    response = owner("post", url, {"all": False, "included": [people[0].user.pk], "tags": [three.pk],
                                   "overwrite": True})
    assert response.json() == {"assigned": 1}
    assert _tags_of(world, people[0]) == {"3"} and _tags_of(world, people[1]) == {"1", "2"}

    # Everyone matching the filters (the member list's), but the excluded.
    response = owner("post", f"{url}?role=AN&search=new", {"all": True, "excluded": [people[2].user.pk],
                                                            "tags": [three.pk]})
    assert response.json() == {"assigned": 1}
    assert _tags_of(world, people[1]) == {"1", "2", "3"} and _tags_of(world, people[2]) == set()
    assert _tags_of(world, world.owner_a) == {"A's tag"}

    response = owner("delete", url, {"all": False, "included": [p.user.pk for p in people], "tags": [three.pk, one.pk]})
    assert response.status_code == 200 and response.json() == {"unassigned": 3}
    assert _tags_of(world, people[1]) == {"2"}
    assert {e.action for e in AuditEvent.objects.filter(organization=world.org_a, action__startswith="member_tag.")} \
        >= {"member_tag.assigned", "member_tag.unassigned"}


def test_member_tag_assignments_bad_input(world, owner, org):
    b_tag = MemberTag.objects.create(organization=world.org_b, label="B's tag")
    url = tags_url(org, "/assignments")
    me = world.annotator_a.user.pk
    cases = [
        ({"included": [me], "tags": [world.member_tag_a.pk]}, "all"),
        ({"all": False, "tags": [world.member_tag_a.pk]}, "included"),
        ({"all": False, "included": [world.owner_b.user.pk], "tags": [world.member_tag_a.pk]}, "included"),
        ({"all": False, "included": "me", "tags": [world.member_tag_a.pk]}, "included"),
        ({"all": False, "included": [me], "tags": [b_tag.pk]}, "tags"),
        ({"all": False, "included": [me], "tags": []}, "tags"),
        ({"all": False, "included": [me], "tags": "1"}, "tags"),
    ]
    for body, field in cases:
        response = owner("post", url, body)
        assert response.status_code == 400 and field in errors_of(response), (body, response.content)
    assert not MemberTagAssignment.objects.filter(tag=b_tag).exists()
    assert _tags_of(world, world.annotator_a) == set()


def test_bulk_assignment_is_a_constant_number_of_statements(world, owner, org, new_member):
    tags = [MemberTag.objects.create(organization=world.org_a, label=f"t{n}").pk for n in range(3)]
    few = [new_member().user.pk for _ in range(2)]
    many = [new_member().user.pk for _ in range(12)]
    url = tags_url(org, "/assignments")
    small = _queries_of(lambda: owner("post", url, {"all": False, "included": few, "tags": tags, "overwrite": True}))
    large = _queries_of(lambda: owner("post", url, {"all": False, "included": many, "tags": tags,
                                                    "overwrite": True}))
    assert small == large
    assert MemberTagAssignment.objects.filter(tag_id__in=tags).count() == 3 * (len(few) + len(many))


# --- Permission overrides ------------------------------------------------------------------------

def perms_url(org, rest: str = "") -> str:
    return f"{org}/permissions{rest}"


def test_permission_options_list_every_key(world, owner, org):
    options = owner("get", perms_url(org, "/options")).json()
    assert [o["permission"] for o in options] == sorted(PERMISSIONS)
    change = next(o for o in options if o["permission"] == "members.change")
    spec = PERMISSIONS["members.change"]
    assert change == {"permission": "members.change", "label": spec.label, "group": spec.group,
                      "tooltip": spec.tooltip, "default": list(spec.default), "options": list(spec.options)}
    assert owner("get", perms_url(org, "/options?ordering=-group")).json()[0]["group"] == max(
        s.group for s in PERMISSIONS.values())
    assert owner("get", perms_url(org, "/options?ordering=roles")).status_code == 400


def test_permission_override_lifecycle(world, owner, org, as_member):
    manager = as_member(world.manager_a)
    created = manager("post", "/api/projects/", {"title": "Managers may"})
    assert created.status_code == 201, created.content

    response = owner("post", perms_url(org), {"permission": "projects.create", "roles": ["AD", "OW", "AD"]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["permission"] == "projects.create" and body["roles"] == ["OW", "AD"]
    assert body["default"] == ["OW", "AD", "MA"] and body["group"] == "Projects" and body["id"]
    assert manager("post", "/api/projects/", {"title": "Not any more"}).status_code == 403

    assert [o["permission"] for o in owner("get", perms_url(org)).json()] == ["projects.create"]
    assert owner("get", perms_url(org, "/projects.create")).json()["roles"] == ["OW", "AD"]

    response = owner("put", perms_url(org, "/projects.create"), {"permission": "projects.create",
                                                                 "roles": ["OW", "AD", "MA", "RE"]})
    assert response.status_code == 200 and response.json()["roles"] == ["OW", "AD", "MA", "RE"]
    assert as_member(world.reviewer_a)("post", "/api/projects/", {"title": "Reviewers may"}).status_code == 201
    response = owner("patch", perms_url(org, "/projects.create"), {"roles": ["MA"]})
    assert response.status_code == 200 and response.json()["roles"] == ["MA"]
    assert owner("post", "/api/projects/", {"title": "Owner may not"}).status_code == 403

    assert owner("delete", perms_url(org, "/projects.create")).status_code == 204
    assert owner("get", perms_url(org, "/projects.create")).status_code == 404
    assert owner("post", "/api/projects/", {"title": "Default again"}).status_code == 201
    events = audited(world, "permission.changed")
    assert [(e.details["from"], e.details["to"]) for e in reversed(events)] == [
        (None, ["OW", "AD"]), (["OW", "AD"], ["OW", "AD", "MA", "RE"]), (["OW", "AD", "MA", "RE"], ["MA"]),
        (["MA"], None)]


def test_always_roles_are_kept(world, owner, org):
    response = owner("post", perms_url(org), {"permission": "permissions.change", "roles": ["AD"]})
    assert response.status_code == 200 and response.json()["roles"] == ["OW", "AD"]
    response = owner("put", perms_url(org, "/permissions.change"), {"permission": "permissions.change", "roles": []})
    assert response.json()["roles"] == ["OW"]
    assert owner("get", perms_url(org)).status_code == 200


def test_put_and_patch_create_a_missing_override(world, owner, org):
    response = owner("patch", perms_url(org, "/webhooks.view"), {})
    assert response.status_code == 200 and response.json()["roles"] == list(PERMISSIONS["webhooks.view"].default)
    response = owner("put", perms_url(org, "/tasks.delete"), {"roles": ["OW"]})
    assert response.status_code == 200 and response.json()["roles"] == ["OW"]
    assert OrganizationPermission.objects.filter(organization=world.org_a).count() == 2


@pytest.mark.parametrize("body,field,named", [
    ({"roles": ["OW"]}, "permission", "None"),
    ({"permission": "projects.fly", "roles": ["OW"]}, "permission", "projects.fly"),
    ({"permission": "projects.create", "roles": ["XX"]}, "roles", "XX"),
    ({"permission": "projects.create", "roles": ["DI"]}, "roles", "DI"),
    ({"permission": "members.change", "roles": ["OW", "MA"]}, "roles", "MA"),
    ({"permission": "projects.create", "roles": "OW"}, "roles", "list"),
])
def test_permission_override_bad_input(world, owner, org, body, field, named):
    response = owner("post", perms_url(org), body)
    assert response.status_code == 400, response.content
    assert named in str(errors_of(response)[field])
    assert not OrganizationPermission.objects.filter(organization=world.org_a).exists()


def test_permission_override_path_errors(world, owner, org):
    response = owner("get", perms_url(org, "/projects.fly"))
    assert response.status_code == 404 and "projects.fly" in response.json()["detail"]
    assert owner("put", perms_url(org, "/projects.fly"), {"roles": ["OW"]}).status_code == 404
    assert owner("delete", perms_url(org, "/projects.create")).status_code == 404
    response = owner("put", perms_url(org, "/projects.create"), {"permission": "projects.delete", "roles": ["OW"]})
    assert response.status_code == 400 and "permission" in errors_of(response)
    response = owner("put", perms_url(org, "/projects.create"), {"permission": "projects.create"})
    assert response.status_code == 400 and "roles" in errors_of(response)
    assert owner("post", perms_url(org), {"permission": "projects.create", "roles": ["OW"]}).status_code == 200
    response = owner("post", perms_url(org), {"permission": "projects.create", "roles": ["OW"]})
    assert response.status_code == 400 and "already has an override" in str(errors_of(response)["permission"])


def test_permission_overrides_need_their_permissions(world, as_member, org):
    admin = as_member(world.admin_a)
    assert admin("get", perms_url(org)).status_code == 200
    assert admin("get", perms_url(org, "/options")).status_code == 200
    assert admin("post", perms_url(org), {"permission": "projects.create", "roles": ["OW"]}).status_code == 403
    assert admin("put", perms_url(org, "/projects.create"), {"roles": ["OW"]}).status_code == 403
    for member in (world.manager_a, world.annotator_a):
        assert as_member(member)("get", perms_url(org)).status_code == 403
    assert not OrganizationPermission.objects.filter(organization=world.org_a).exists()


# --- Isolation -----------------------------------------------------------------------------------

def _snapshot_of_a(world) -> dict:
    world.org_a.refresh_from_db()
    return {
        "organization": (world.org_a.title, world.org_a.default_role, world.org_a.contact_info,
                         world.org_a.external_id, world.org_a.embed_domains),
        "memberships": sorted(Membership.objects.filter(organization=world.org_a).values_list("user_id", "role")),
        "tags": sorted(MemberTag.objects.filter(organization=world.org_a).values_list("id", "label")),
        "assignments": sorted(MemberTagAssignment.objects.filter(tag__organization=world.org_a)
                              .values_list("tag_id", "membership_id")),
        "overrides": sorted(OrganizationPermission.objects.filter(organization=world.org_a)
                            .values_list("permission", "roles")),
    }


def _calls_with_ids_of_a(world) -> list[tuple[str, str, dict | None]]:
    org = f"/api/organizations/{world.org_a.pk}"
    user, tag = world.annotator_a.user.pk, world.member_tag_a.pk
    return [
        ("get", org, None),
        ("patch", org, {"title": "B was here"}),
        ("patch", f"{org}/set-default-role", {"default_role": "AD"}),
        ("get", f"{org}/memberships", None),
        ("patch", f"{org}/memberships", {"user_id": user, "role": "DI"}),
        ("get", f"{org}/memberships/{user}/", None),
        ("delete", f"{org}/memberships/{user}/", None),
        ("get", f"{org}/member-tags", None),
        ("post", f"{org}/member-tags", {"label": "B's label"}),
        ("get", f"{org}/member-tags/{tag}", None),
        ("patch", f"{org}/member-tags/{tag}", {"label": "B's label"}),
        ("delete", f"{org}/member-tags/{tag}", None),
        ("post", f"{org}/member-tags/bulk", {"labels": ["B's label"]}),
        ("delete", f"{org}/member-tags/bulk?ids={tag}", None),
        ("post", f"{org}/member-tags/assignments", {"all": True, "tags": [tag]}),
        ("delete", f"{org}/member-tags/assignments", {"all": True, "tags": [tag]}),
        ("get", f"{org}/permissions", None),
        ("post", f"{org}/permissions", {"permission": "projects.view", "roles": ["OW"]}),
        ("get", f"{org}/permissions/options", None),
        ("get", f"{org}/permissions/projects.view", None),
        ("put", f"{org}/permissions/projects.view", {"roles": ["OW"]}),
        ("patch", f"{org}/permissions/projects.view", {"roles": ["OW"]}),
        ("delete", f"{org}/permissions/projects.view", None),
    ]


def test_organization_b_cannot_reach_organization_a(world, api):
    OrganizationPermission.objects.create(organization=world.org_a, permission="projects.view",
                                          roles=["OW", "AD", "MA", "RE", "AN"])
    before, events_before = _snapshot_of_a(world), AuditEvent.objects.filter(organization=world.org_a).count()
    for method, path, body in _calls_with_ids_of_a(world):
        response = api.call(method, path, token=world.owner_b.legacy_key, json=body)
        assert response.status_code == 404, (method, path, response.status_code, response.content)
        assert "Org A" not in response.content.decode()
        on_a = api.call(method, f"/o/org-a{path}", token=world.owner_b.legacy_key, json=body)
        assert on_a.status_code == 403, (method, path, on_a.status_code)
    assert _snapshot_of_a(world) == before
    assert AuditEvent.objects.filter(organization=world.org_a).count() == events_before


def test_organization_b_ids_of_a_inside_b(world, api):
    """B's own organization id with A's users and tags: not found in B."""
    org_b = f"/api/organizations/{world.org_b.pk}"
    before = _snapshot_of_a(world)
    key = world.owner_b.legacy_key
    user, tag = world.annotator_a.user.pk, world.member_tag_a.pk
    assert api.call("get", f"{org_b}/memberships/{user}/", token=key).status_code == 404
    assert api.call("delete", f"{org_b}/memberships/{user}/", token=key).status_code == 404
    assert api.call("patch", f"{org_b}/memberships", token=key, json={"user_id": user, "role": "DI"}).status_code == 404
    assert api.call("get", f"{org_b}/member-tags/{tag}", token=key).status_code == 404
    assert api.call("patch", f"{org_b}/member-tags/{tag}", token=key, json={"label": "x"}).status_code == 404
    assert api.call("delete", f"{org_b}/member-tags/{tag}", token=key).status_code == 404
    assert api.call("delete", f"{org_b}/member-tags/bulk?ids={tag}", token=key).json() == {"deleted": 0}
    response = api.call("post", f"{org_b}/member-tags/assignments", token=key,
                        json={"all": False, "included": [user], "tags": [tag]})
    assert response.status_code == 400
    response = api.call("get", f"{org_b}/memberships?tags={tag}", token=key)
    assert response.json()["count"] == 0
    listed = api.call("get", f"{org_b}/memberships", token=key).json()
    assert [row["user"]["email"] for row in listed["results"]] == ["owner@b.test"]
    assert _snapshot_of_a(world) == before
