"""SCIM Groups: their members get what the organization's SCIM mappings give, and lose it when
they leave, when the group is renamed away from a mapping or deleted. Nothing given by hand is
taken."""

# ruff: noqa: E402 - the shared SCIM fixtures are registered for assert rewriting before they are imported
import pytest

pytest.register_assert_rewrite("sso.tests.scim_fixtures")
pytest_plugins = ["sso.tests.scim_fixtures"]

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from accounts.models import AuditEvent, Role
from sso.models import ScimGroup, ScimUser
from sso.tests.scim_fixtures import GROUP_URN, access_in_a, scim_error_of
from workspaces.models import WorkspaceMembership

pytestmark = pytest.mark.django_db

NOTHING = {"workspaces": set(), "projects": set(), "project_roles": {}}


@pytest.fixture
def pair(scim_a) -> dict[str, str]:
    return {"ann": scim_a.create_user("ann@example.test")["id"], "bo": scim_a.create_user("bo@example.test")["id"]}


def _user(pk) -> object:
    return ScimUser.objects.get(pk=pk).user


def _members(scim, group_id) -> set[str]:
    return {member["value"] for member in scim.get(f"/Groups/{group_id}").json().get("members", [])}


def test_create_read_and_list_groups(world, scim_a, pair):
    response = scim_a.post("/Groups", {"schemas": [GROUP_URN], "displayName": "Archivists", "externalId": "g-1",
                                       "members": [{"value": pair["ann"], "display": "Ann"}]})
    assert response.status_code == 201, response.content
    group = response.json()
    assert response["Location"] == f"http://testserver/o/org-a/scim/v2/Groups/{group['id']}"
    assert group["members"] == [{"value": pair["ann"], "type": "User",
                                 "$ref": f"http://testserver/o/org-a/scim/v2/Users/{pair['ann']}"}]
    assert AuditEvent.objects.filter(organization=world.org_a, action="scim.group_created").exists()
    ann = scim_a.get(f"/Users/{pair['ann']}").json()
    assert ann["groups"] == [{"value": group["id"], "display": "Archivists",
                              "$ref": f"http://testserver/o/org-a/scim/v2/Groups/{group['id']}"}]

    found = scim_a.get("/Groups", query={"filter": 'displayName eq "archivists"'}).json()
    assert [g["id"] for g in found["Resources"]] == [group["id"]]
    assert scim_a.get("/Groups", query={"filter": 'externalId eq "g-1"'}).json()["totalResults"] == 1
    assert scim_a.get("/Groups", query={"filter": 'externalId eq "G-1"'}).json()["totalResults"] == 0
    scim_error_of(scim_a.get("/Groups", query={"filter": 'members.value eq "1"'}), 400, "invalidFilter")
    lean = scim_a.get("/Groups", query={"excludedAttributes": "members"}).json()["Resources"]
    assert lean and all("members" not in g for g in lean)
    one = scim_a.get(f"/Groups/{group['id']}", query={"excludedAttributes": "members"}).json()
    assert "members" not in one and one["displayName"] == "Archivists"


def test_members_are_not_even_read_when_excluded(world, scim_a):
    members = [scim_a.create_user(f"m{n}@example.test")["id"] for n in range(3)]
    group = scim_a.create_group("Readers", members)

    def queries(**query) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert scim_a.get(f"/Groups/{group['id']}", query=query).status_code == 200
        return len([q for q in captured.captured_queries if "sso_scimgroupmember" in q["sql"]])

    assert queries() == 1 and queries(excludedAttributes="members") == 0


def test_group_names_are_unique_and_members_must_be_users_here(world, scim_a, scim_b, pair):
    scim_a.create_group("Unique")
    scim_error_of(scim_a.post("/Groups", {"displayName": "Unique"}), 409, "uniqueness")
    scim_error_of(scim_a.post("/Groups", {"displayName": "  "}), 400, "invalidValue")
    scim_error_of(scim_a.post("/Groups", {"displayName": "Ghosts", "members": [{"value": "999999"}]}),
                  400, "invalidValue")
    scim_error_of(scim_a.post("/Groups", {"displayName": "Ghosts", "members": [{"value": "not-an-id"}]}),
                  400, "invalidValue")
    scim_error_of(scim_a.post("/Groups", {"displayName": "Nested", "members": [
        {"value": pair["ann"], "type": "Group"}]}), 400, "invalidValue")
    b_user = scim_b.create_user("b-person@example.test")
    scim_error_of(scim_a.post("/Groups", {"displayName": "Ghosts", "members": [{"value": b_user["id"]}]}),
                  400, "invalidValue")
    assert not ScimGroup.objects.filter(organization=world.org_a, display_name="Ghosts").exists()


def test_membership_gives_and_takes_back_what_the_mappings_say(world, scim_a, mapped_a, pair):
    ann = _user(pair["ann"])
    with tenant_context(world.org_a):
        WorkspaceMembership.objects.create(workspace=world.workspace_a, user_id=ann.pk)  # given by hand
    editors = scim_a.create_group("editors", [pair["ann"]])
    assert access_in_a(world, ann) == {"role": Role.MANAGER, "workspaces": {"Ledgers", world.workspace_a.title},
                                       "projects": {"Charters"}, "project_roles": {"Charters": Role.REVIEWER}}
    assert access_in_a(world, _user(pair["bo"]))["role"] == world.org_a.default_role

    # Entra ID's removal: path "members" with the values to remove.
    response = scim_a.patch(f"/Groups/{editors['id']}", [
        {"op": "Remove", "path": "members", "value": [{"value": pair["ann"]}]}])
    assert response.status_code == 200 and "members" not in response.json()
    assert access_in_a(world, ann) == {"role": world.org_a.default_role, "workspaces": {world.workspace_a.title},
                                       "projects": set(), "project_roles": {}}


def test_patch_member_forms(scim_a, pair):
    group = scim_a.create_group("forms")
    path = f"/Groups/{group['id']}"
    assert scim_a.patch(path, [{"op": "add", "path": "members",
                                "value": [{"value": pair["ann"]}, {"value": pair["bo"]}]}]).status_code == 200
    assert _members(scim_a, group["id"]) == {pair["ann"], pair["bo"]}
    # Adding someone twice changes nothing; removing someone absent neither.
    scim_a.patch(path, [{"op": "add", "path": "members", "value": [{"value": pair["ann"]}]}])
    scim_a.patch(path, [{"op": "remove", "path": 'members[value eq "999999"]'}])
    assert _members(scim_a, group["id"]) == {pair["ann"], pair["bo"]}
    # Okta's removal: a filtered path.
    scim_a.patch(path, [{"op": "remove", "path": f'members[value eq "{pair["bo"]}"]'}])
    assert _members(scim_a, group["id"]) == {pair["ann"]}
    # A path-less add of members, then replace them all, then remove all.
    scim_a.patch(path, [{"op": "add", "value": {"members": [{"value": pair["bo"]}]}}])
    assert _members(scim_a, group["id"]) == {pair["ann"], pair["bo"]}
    scim_a.patch(path, [{"op": "replace", "path": "members", "value": [{"value": pair["bo"]}]}])
    assert _members(scim_a, group["id"]) == {pair["bo"]}
    scim_a.patch(path, [{"op": "remove", "path": "members"}])
    assert _members(scim_a, group["id"]) == set()
    scim_error_of(scim_a.patch(path, [{"op": "add", "path": "members", "value": [{"value": "424242"}]}]),
                  400, "invalidValue")
    scim_error_of(scim_a.patch(path, [{"op": "remove", "path": "displayName"}]), 400, "invalidValue")


def test_a_rename_resyncs_every_member(world, scim_a, mapped_a, pair):
    group = scim_a.create_group("editors", [pair["ann"], pair["bo"]])
    assert {access_in_a(world, _user(pk))["role"] for pk in pair.values()} == {Role.MANAGER}
    # Okta renames with a path-less replace that repeats the id.
    response = scim_a.patch(f"/Groups/{group['id']}", [
        {"op": "replace", "value": {"id": group["id"], "displayName": "staff"}}])
    assert response.json()["displayName"] == "staff"
    for pk in pair.values():
        assert access_in_a(world, _user(pk)) == {"role": Role.ANNOTATOR, **NOTHING}
    scim_error_of(scim_a.patch(f"/Groups/{world.scim_group_a.pk}", [
        {"op": "replace", "path": "displayName", "value": "staff"}]), 409, "uniqueness")


def test_put_replaces_name_and_members(world, scim_a, mapped_a, pair):
    group = scim_a.create_group("staff", [pair["ann"]])
    replaced = scim_a.put(f"/Groups/{group['id']}", {"schemas": [GROUP_URN], "displayName": "editors",
                                                    "members": [{"value": pair["bo"]}]})
    assert replaced.status_code == 200, replaced.content
    assert {m["value"] for m in replaced.json()["members"]} == {pair["bo"]}
    assert access_in_a(world, _user(pair["bo"]))["workspaces"] == {"Ledgers"}
    assert access_in_a(world, _user(pair["ann"])) == {"role": world.org_a.default_role, **NOTHING}
    scim_error_of(scim_a.put(f"/Groups/{group['id']}", {"displayName": "editors"},
                             headers={"If-Match": group["meta"]["version"]}), 412)


def test_deleting_a_group_takes_back_what_it_gave(world, scim_a, mapped_a, pair):
    group = scim_a.create_group("editors", [pair["ann"]])
    assert access_in_a(world, _user(pair["ann"]))["projects"] == {"Charters"}
    assert scim_a.delete(f"/Groups/{group['id']}").status_code == 204
    scim_error_of(scim_a.get(f"/Groups/{group['id']}"), 404)
    assert access_in_a(world, _user(pair["ann"])) == {"role": world.org_a.default_role, **NOTHING}
    assert "groups" not in scim_a.get(f"/Users/{pair['ann']}").json()
    assert AuditEvent.objects.filter(organization=world.org_a, action="scim.group_deleted").exists()


def test_an_owner_in_a_mapped_group_stays_owner(world, scim_a, mapped_a):
    owner = scim_a.create_user("owner-idp", email="owner@a.test")
    scim_a.create_group("staff", [owner["id"]])
    assert access_in_a(world, world.owner_a.user)["role"] == Role.OWNER
