"""Workspaces: CRUD, members (one by one, bulk, paginated), projects moved in and out, personal
workspaces, and what workspace membership makes visible; organization B never reaches A's."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from accounts import services as account_services
from accounts.access import denial_message
from accounts.models import Role
from conftest import PASSWORD, in_org_a
from labeling import services as labeling_services
from labeling.models import Project
from workspaces import services
from workspaces.models import Workspace, WorkspaceMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def workspace(owner):
    """A shared workspace of org A made by its Owner (its only member)."""
    response = owner("post", "/api/workspaces/", {"title": "Transcribers", "description": "Letters"})
    assert response.status_code == 201, response.content
    return response.json()


def _project_in(world, workspace_id, title="Hidden letters") -> Project:
    """A project in the workspace that nobody is an explicit member of (made by the Owner)."""
    def make():
        project = labeling_services.project_create(user=world.owner_a.user, fields={"title": title})
        Project.objects.filter(pk=project.pk).update(workspace_id=workspace_id)
        return project
    return in_org_a(world, make)


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    rows = response.json()
    rows = rows["results"] if isinstance(rows, dict) else rows
    return [row["id"] if "id" in row else row["user"]["id"] for row in rows]


# --- workspaces ------------------------------------------------------------------------------------

def test_create_get_update_archive_and_delete(owner, workspace, world):
    assert workspace["title"] == "Transcribers" and workspace["description"] == "Letters"
    assert workspace["created_by"] == world.owner_a.user.pk
    assert workspace["membership"] == {"user": world.owner_a.user.pk, "workspace": workspace["id"]}
    assert workspace["projects_count"] == 0 and workspace["is_personal"] is False
    assert in_org_a(world, lambda: WorkspaceMembership.objects.filter(
        workspace_id=workspace["id"], user=world.owner_a.user).exists())

    path = f"/api/workspaces/{workspace['id']}/"
    assert owner("get", path).json()["title"] == "Transcribers"
    changed = owner("patch", path, {"title": "Scribes", "color": "#FF0000", "is_archived": True})
    assert changed.status_code == 200, changed.content
    assert changed.json()["title"] == "Scribes" and changed.json()["is_archived"] is True

    assert workspace["id"] in _ids(owner("get", "/api/workspaces/?is_archived=true"))
    assert workspace["id"] not in _ids(owner("get", "/api/workspaces/?is_archived=false"))
    assert workspace["id"] in _ids(owner("get", "/api/workspaces/"))

    assert owner("delete", path).status_code == 204
    assert owner("get", path).status_code == 404
    assert not in_org_a(world, lambda: WorkspaceMembership.objects.filter(workspace_id=workspace["id"]).exists())


def test_projects_count_and_ordering(owner, workspace, world):
    _project_in(world, workspace["id"])
    _project_in(world, workspace["id"], "Second")
    listed = {row["id"]: row for row in owner("get", "/api/workspaces/").json()}
    assert listed[workspace["id"]]["projects_count"] == 2
    assert listed[world.workspace_a.pk]["projects_count"] == 1
    titles = [row["title"] for row in owner("get", "/api/workspaces/?ordering=-title").json()]
    assert titles == sorted(titles, reverse=True)
    bad = owner("get", "/api/workspaces/?ordering=password")
    assert bad.status_code == 400 and "ordering" in bad.json()["validation_errors"]


@pytest.mark.parametrize("body, field", [
    ({}, "title"),
    ({"title": ""}, "title"),
    ({"title": "x" * 1001}, "title"),
    ({"title": "Ok", "color": "#" + "F" * 20}, "color"),
    ({"title": "Ok", "is_archived": "perhaps"}, "is_archived"),
])
def test_create_refuses_bad_input(owner, world, body, field):
    before = in_org_a(world, Workspace.objects.count)
    response = owner("post", "/api/workspaces/", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["validation_errors"]
    assert in_org_a(world, Workspace.objects.count) == before


def test_a_workspace_cannot_become_personal(owner, workspace):
    response = owner("patch", f"/api/workspaces/{workspace['id']}/", {"is_personal": True})
    assert response.status_code == 400 and "is_personal" in response.json()["validation_errors"]


def test_deleting_a_workspace_with_projects_is_refused_until_they_are_moved_out(owner, workspace, world):
    project = _project_in(world, workspace["id"])
    path = f"/api/workspaces/{workspace['id']}/"
    refused = owner("delete", path)
    assert refused.status_code == 400
    assert str(project.pk) in str(refused.json()["validation_errors"]["projects"])
    assert owner("get", path).status_code == 200

    assert owner("delete", f"/api/workspaces/{workspace['id']}/projects/?project={project.pk}").status_code == 204
    assert in_org_a(world, lambda: Project.objects.get(pk=project.pk).workspace_id) is None
    assert owner("delete", path).status_code == 204
    assert in_org_a(world, lambda: Project.objects.filter(pk=project.pk).exists())


def test_matrix_refusals(annotator, manager, workspace):
    refused = annotator("post", "/api/workspaces/", {"title": "Mine"})
    assert refused.status_code == 403 and refused.json()["detail"] == denial_message("workspaces.create")
    made = manager("post", "/api/workspaces/", {"title": "Managed"})
    assert made.status_code == 201
    # Deleting workspaces is for Owners and Administrators by default, even one's own.
    refused = manager("delete", f"/api/workspaces/{made.json()['id']}/")
    assert refused.status_code == 403 and refused.json()["detail"] == denial_message("workspaces.delete")


# --- visibility ------------------------------------------------------------------------------------

def test_members_see_a_workspace_others_do_not_and_admins_see_all(owner, admin, manager, annotator, workspace,
                                                                  world):
    path = f"/api/workspaces/{workspace['id']}/"
    assert workspace["id"] not in _ids(annotator("get", "/api/workspaces/"))
    assert annotator("get", path).status_code == 404
    assert manager("get", path).status_code == 404
    assert manager("patch", path, {"title": "Taken"}).status_code == 404
    # Administrators see every workspace (workspaces.view_all) without being members.
    assert workspace["id"] in _ids(admin("get", "/api/workspaces/"))
    assert admin("get", path).json()["membership"] is None

    assert owner("post", f"{path}memberships/", {"user": world.annotator_a.user.pk}).status_code == 200
    assert workspace["id"] in _ids(annotator("get", "/api/workspaces/"))
    assert annotator("get", path).json()["membership"]["user"] == world.annotator_a.user.pk


def test_an_annotator_sees_a_project_after_joining_its_workspace_and_not_after_leaving(owner, annotator,
                                                                                        workspace, world):
    project = _project_in(world, workspace["id"])
    user_id = world.annotator_a.user.pk
    assert annotator("get", f"/api/projects/{project.pk}/").status_code == 404

    assert owner("post", f"/api/workspaces/{workspace['id']}/memberships/", {"user": user_id}).status_code == 200
    assert annotator("get", f"/api/projects/{project.pk}/").status_code == 200
    assert project.pk in _ids(annotator("get", f"/api/workspaces/{workspace['id']}/projects/"))

    left = owner("delete", f"/api/workspaces/{workspace['id']}/memberships/?user_id={user_id}")
    assert left.status_code == 204
    assert annotator("get", f"/api/projects/{project.pk}/").status_code == 404
    assert annotator("get", f"/api/workspaces/{workspace['id']}/projects/").status_code == 404


def test_a_manager_outside_the_workspace_does_not_see_its_projects_an_admin_does(admin, manager, world):
    project = _project_in(world, world.workspace_a.pk)
    path = f"/api/workspaces/{world.workspace_a.pk}/projects/"
    assert manager("get", path).status_code == 404
    assert manager("get", f"/api/projects/{project.pk}/").status_code == 404
    assert project.pk in _ids(admin("get", path))
    assert admin("get", f"/api/projects/{project.pk}/").status_code == 200


# --- personal workspaces ---------------------------------------------------------------------------

def test_personal_workspace_is_made_once_and_seen_only_by_its_owner_and_admins(owner, manager, annotator,
                                                                                  world):
    personal = in_org_a(world, lambda: services.personal_workspace_for(world.annotator_a.user))
    assert in_org_a(world, lambda: services.personal_workspace_for(world.annotator_a.user)).pk == personal.pk
    assert personal.is_personal and personal.created_by_id == world.annotator_a.user.pk

    mine = annotator("get", "/api/workspaces/?is_personal=true").json()
    assert [row["id"] for row in mine] == [personal.pk]
    assert mine[0]["membership"] == {"user": world.annotator_a.user.pk, "workspace": personal.pk}
    path = f"/api/workspaces/{personal.pk}/"
    assert manager("get", path).status_code == 404
    assert personal.pk not in _ids(manager("get", "/api/workspaces/?include_all_workspaces=true"))
    # Administrators reach it, and list it when they ask for every workspace.
    assert owner("get", path).status_code == 200
    assert personal.pk not in _ids(owner("get", "/api/workspaces/"))
    listed = {row["id"]: row for row in owner("get", "/api/workspaces/?include_all_workspaces=true").json()}
    assert listed[personal.pk]["created_by_user"]["email"] == "annotator@a.test"


def test_personal_workspace_has_no_other_members_and_is_one_per_user(owner, world):
    def forget_personal_workspace():  # live-server tests may have made one already, committed
        mine = Workspace.objects.filter(is_personal=True, created_by_id=world.owner_a.user.pk)
        Project.objects.filter(workspace_id__in=mine.values("pk")).update(workspace_id=None)
        mine.delete()

    in_org_a(world, forget_personal_workspace)
    made = owner("post", "/api/workspaces/", {"title": "Mine", "is_personal": True})
    assert made.status_code == 201 and made.json()["is_personal"] is True
    again = owner("post", "/api/workspaces/", {"title": "Another", "is_personal": True})
    assert again.status_code == 400 and "is_personal" in again.json()["validation_errors"]
    assert in_org_a(world, lambda: services.personal_workspace_for(world.owner_a.user)).pk == made.json()["id"]
    added = owner("post", f"/api/workspaces/{made.json()['id']}/memberships/", {"user": world.annotator_a.user.pk})
    assert added.status_code == 400 and "user" in added.json()["validation_errors"]


def test_the_workspace_of_a_new_project_is_one_the_actor_sees_or_their_personal_one(workspace, world):
    from accounts.access import Actor
    from accounts.models import Membership

    def actor(member):
        return Actor(membership=Membership.objects.get(user=member.user, organization=world.org_a))

    with tenant_context(world.org_a):
        chosen = services.workspace_for_project(actor=actor(world.owner_a), workspace_id=workspace["id"])
        assert chosen.pk == workspace["id"]
        personal = services.workspace_for_project(actor=actor(world.manager_a), workspace_id=None)
        assert personal.is_personal and personal.created_by_id == world.manager_a.user.pk
        for workspace_id in (workspace["id"], 987654):
            with pytest.raises(ValidationError) as caught:
                services.workspace_for_project(actor=actor(world.manager_a), workspace_id=workspace_id)
            assert "workspace" in caught.value.message_dict


# --- memberships -----------------------------------------------------------------------------------

def test_memberships_list_add_remove(owner, workspace, world):
    path = f"/api/workspaces/{workspace['id']}/memberships/"
    user_id = world.reviewer_a.user.pk
    added = owner("post", path, {"user": user_id, "workspace": workspace["id"]})
    assert added.status_code == 200 and added.json() == {"user": user_id, "workspace": workspace["id"]}
    assert owner("post", path, {"user": user_id}).status_code == 200  # already a member: nothing changes
    listed = owner("get", path).json()
    assert {row["user"]["email"] for row in listed} == {"owner@a.test", "reviewer@a.test"}
    row = next(row for row in listed if row["user"]["id"] == user_id)
    assert row["workspace"] == workspace["id"]
    assert row["user"]["organization_membership"] == {"role": "RE", "active": True,
                                                      "organization_id": world.org_a.pk}
    # The legacy SDK removes with a JSON body.
    assert owner("delete", path, {"user": user_id, "workspace": workspace["id"]}).status_code == 204
    gone = owner("delete", path, {"user_id": user_id})
    assert gone.status_code == 400 and "user" in gone.json()["validation_errors"]


def test_memberships_refuse_users_outside_the_organization(owner, workspace, world):
    path = f"/api/workspaces/{workspace['id']}/memberships/"
    deactivated = account_services.user_create(email="gone@a.test", password=PASSWORD)
    account_services.membership_set(user=deactivated, organization=world.org_a, role=Role.DEACTIVATED)
    for body, field in [({"user": world.owner_b.user.pk}, "user"), ({"user": 987654}, "user"),
                        ({"user": deactivated.pk}, "user"), ({"user": "me"}, "user"), ({}, "user"),
                        ({"user": True}, "user")]:
        response = owner("post", path, body)
        assert response.status_code == 400, (body, response.content)
        assert field in response.json()["validation_errors"], body
    assert in_org_a(world, lambda: WorkspaceMembership.objects.filter(workspace_id=workspace["id"]).count()) == 1


def test_bulk_add_and_remove(owner, workspace, world):
    path = f"/api/workspaces/{workspace['id']}/memberships/bulk/"
    ids = [world.reviewer_a.user.pk, world.annotator_a.user.pk]
    assert owner("post", path, {"all": False, "included": ids}).json() == {"assignments": 2}
    assert owner("post", path, {"all": False, "included": ids}).json() == {"assignments": 0}
    # The SDK sends the removal's fields in the query string.
    removed = owner("delete", f"{path}?all=false&included={ids[0]}&included={ids[1]}")
    assert removed.status_code == 200 and removed.json() == {"unassignments": 2}

    everyone = owner("post", path, {"all": True, "excluded": [world.manager_a.user.pk]}).json()["assignments"]
    members = in_org_a(world, lambda: set(WorkspaceMembership.objects.filter(workspace_id=workspace["id"])
                                       .values_list("user_id", flat=True)))
    assert world.manager_a.user.pk not in members and set(ids) <= members
    assert everyone == len(members) - 1  # the Owner was a member already
    cleared = owner("delete", path, {"all": True, "excluded": [world.owner_a.user.pk]}).json()
    assert cleared == {"unassignments": everyone}


def test_bulk_refuses_users_outside_the_organization_and_changes_nothing(owner, workspace, world):
    path = f"/api/workspaces/{workspace['id']}/memberships/bulk/"
    bad = [world.owner_b.user.pk, 987654]
    response = owner("post", path, {"all": False, "included": [world.reviewer_a.user.pk, *bad]})
    assert response.status_code == 400
    message = str(response.json()["validation_errors"]["included"])
    assert all(str(user_id) in message for user_id in bad)
    assert in_org_a(world, lambda: WorkspaceMembership.objects.filter(workspace_id=workspace["id"]).count()) == 1
    for body in ({"all": False}, {"all": False, "included": "1,2"}, {"all": False, "included": ["x"]}):
        response = owner("post", path, body)
        assert response.status_code == 400 and "included" in response.json()["validation_errors"], body
    response = owner("delete", f"{path}?included={world.owner_b.user.pk}")
    assert response.status_code == 400 and "included" in response.json()["validation_errors"]


def _statements_on(queries, table: str) -> list[str]:
    """The first word of each captured statement that touches `table`."""
    return [q["sql"].split()[0].upper() for q in queries if table in q["sql"]]


def test_bulk_writes_are_one_statement_each(world):
    users = [world.admin_a.user.pk, world.manager_a.user.pk, world.reviewer_a.user.pk, world.annotator_a.user.pk]
    with tenant_context(world.org_a):
        workspace = services.workspace_create(user=world.owner_a.user, title="Bulk")
        with CaptureQueriesContext(connection) as queries:
            assert services.workspace_members_add(workspace=workspace, organization_id=world.org_a.pk,
                                                  user_ids=users) == 4
        assert _statements_on(queries, "workspacemembership") == ["INSERT"]
        with CaptureQueriesContext(connection) as queries:
            assert services.workspace_members_remove(workspace=workspace, user_ids=users) == 4
        assert _statements_on(queries, "workspacemembership") == ["DELETE"]


def test_paginated_members(owner, workspace, world):
    base = f"/api/workspaces/{workspace['id']}/memberships/"
    owner("post", f"{base}bulk/", {"all": False, "included": [m.user.pk for m in world.members_a().values()]})
    page = owner("get", f"{base}paginated/?page_size=2").json()
    assert page["count"] == 5 and len(page["results"]) == 2 and page["next"] and page["previous"] is None
    last = owner("get", f"{base}paginated/?page_size=2&page=3").json()
    assert len(last["results"]) == 1 and last["next"] is None
    found = owner("get", f"{base}paginated/?search=reviewer").json()
    assert [row["email"] for row in found["results"]] == ["reviewer@a.test"]
    only = owner("get", f"{base}paginated/?ids={world.admin_a.user.pk},{world.manager_a.user.pk}").json()
    assert {row["id"] for row in only["results"]} == {world.admin_a.user.pk, world.manager_a.user.pk}
    past = owner("get", f"{base}paginated/?page=9")  # empty, not 404: the SDK's pagers read until one is
    assert past.status_code == 200 and past.json()["results"] == [] and past.json()["count"] == 5
    for query in ("page_size=many", "page=0", "ids=a,b"):
        response = owner("get", f"{base}paginated/?{query}")
        assert response.status_code == 400, query


# --- projects --------------------------------------------------------------------------------------

def test_projects_move_in_and_out(owner, annotator, workspace, world):
    base = f"/api/workspaces/{workspace['id']}/projects/"
    project = world.project_a
    moved = owner("post", base, {"project": project.pk})
    assert moved.status_code == 201, moved.content
    assert in_org_a(world, lambda: Project.objects.get(pk=project.pk).workspace_id) == workspace["id"]
    listed = owner("get", base).json()
    assert [row["id"] for row in listed] == [project.pk] and listed[0]["workspace"] == workspace["id"]
    assert owner("get", f"/api/workspaces/{workspace['id']}/").json()["projects_count"] == 1

    wrong = owner("delete", f"/api/workspaces/{world.workspace_a.pk}/projects/?project={project.pk}")
    assert wrong.status_code == 400 and "project" in wrong.json()["validation_errors"]
    for body in ({"project": 987654}, {"project": "x"}, {}):
        response = owner("post", base, body)
        assert response.status_code == 400 and "project" in response.json()["validation_errors"], body
    assert owner("delete", base, {"project": project.pk}).status_code == 204
    assert in_org_a(world, lambda: Project.objects.get(pk=project.pk).workspace_id) is None


def test_moving_projects_needs_workspace_change_and_project_change(annotator, manager, owner, workspace, world):
    owner("post", f"/api/workspaces/{workspace['id']}/memberships/", {"user": world.annotator_a.user.pk})
    refused = annotator("post", f"/api/workspaces/{workspace['id']}/projects/", {"project": world.project_a.pk})
    assert refused.status_code == 403 and refused.json()["detail"] == denial_message("workspaces.change")
    # A Manager's own workspace, but a project they cannot see: refused as unknown.
    own = manager("post", "/api/workspaces/", {"title": "Manager's"}).json()
    hidden = _project_in(world, world.workspace_a.pk)
    response = manager("post", f"/api/workspaces/{own['id']}/projects/", {"project": hidden.pk})
    assert response.status_code == 400 and "project" in response.json()["validation_errors"]
    assert in_org_a(world, lambda: Project.objects.get(pk=hidden.pk).workspace_id) == world.workspace_a.pk


# --- organization B --------------------------------------------------------------------------------

def _snapshot(world):
    with tenant_context(world.org_a):
        return (list(Workspace.objects.order_by("id").values()),
                list(WorkspaceMembership.objects.order_by("id").values()),
                list(Project.objects.order_by("id").values("id", "workspace_id")))


def test_organization_b_never_reaches_a_workspace(api, world):
    before = _snapshot(world)
    token = world.owner_b.legacy_key
    pk = world.workspace_a.pk
    user = world.annotator_a.user.pk
    project = world.project_a.pk
    calls = [
        ("get", f"/api/workspaces/{pk}/", None), ("patch", f"/api/workspaces/{pk}/", {"title": "B was here"}),
        ("delete", f"/api/workspaces/{pk}/", None),
        ("get", f"/api/workspaces/{pk}/memberships/", None),
        ("post", f"/api/workspaces/{pk}/memberships/", {"user": user}),
        ("delete", f"/api/workspaces/{pk}/memberships/?user_id={world.owner_a.user.pk}", None),
        ("post", f"/api/workspaces/{pk}/memberships/bulk/", {"all": True}),
        ("delete", f"/api/workspaces/{pk}/memberships/bulk/?all=true", None),
        ("get", f"/api/workspaces/{pk}/memberships/paginated/", None),
        ("get", f"/api/workspaces/{pk}/projects/", None),
        ("post", f"/api/workspaces/{pk}/projects/", {"project": project}),
        ("delete", f"/api/workspaces/{pk}/projects/?project={project}", None),
    ]
    for method, path, body in calls:
        response = api.call(method, path, token=token, json=body)
        assert response.status_code == 404, (method, path, response.status_code)
        assert b"Transcribers" not in response.content and b"A's workspace" not in response.content
    assert all(row["title"] != "A's workspace" for row in api.call("get", "/api/workspaces/", token=token).json())
    assert _snapshot(world) == before


def test_organization_b_cannot_add_a_users_or_a_projects_to_its_own_workspace(api, world):
    token = world.owner_b.legacy_key
    before = _snapshot(world)
    made = api.call("post", "/api/workspaces/", token=token, json={"title": "B's"})
    assert made.status_code == 201
    path = f"/api/workspaces/{made.json()['id']}"
    added = api.call("post", f"{path}/memberships/", token=token, json={"user": world.annotator_a.user.pk})
    assert added.status_code == 400 and "user" in added.json()["validation_errors"]
    bulk = api.call("post", f"{path}/memberships/bulk/", token=token,
                    json={"all": False, "included": [world.annotator_a.user.pk]})
    assert bulk.status_code == 400
    members = api.call("get", f"{path}/memberships/", token=token).json()
    assert [row["user"]["email"] for row in members] == ["owner@b.test"]
    assert _snapshot(world) == before
