"""Project members (one by one, bulk, paginated), annotator pauses (and their effect on the label
stream and on submits), per-project role overrides (and their effect on permissions); organization
B never reaches A's."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from accounts.access import denial_message
from accounts.models import AuditEvent, Membership, MemberTag, MemberTagAssignment
from conftest import in_org_a, ocr_result
from labeling import members, services
from labeling.models import Annotation, AnnotatorPause, Project, ProjectMember, ProjectRole, Task, TaskLock
from workspaces.models import Workspace, WorkspaceMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(world) -> Project:
    """A project of the Owner's with three tasks, outside any workspace, with no members yet."""
    def make():
        project = services.project_create(user=world.owner_a.user, fields={"title": "Parish registers"})
        services.tasks_import(project=project, user=world.owner_a.user,
                              tasks=[{"data": {"ocr": f"https://example.test/p/{n}.png"}} for n in range(3)])
        return project
    return in_org_a(world, make)


def _emails(response) -> set[str]:
    assert response.status_code == 200, response.content
    rows = response.json()
    return {row["email"] for row in (rows["results"] if isinstance(rows, dict) else rows)}


def _member_ids(world, project) -> set[int]:
    return in_org_a(world, lambda: set(ProjectMember.objects.filter(project=project).values_list("user_id", flat=True)))


# --- members ---------------------------------------------------------------------------------------

def test_add_list_and_remove_a_member_who_then_sees_the_project(owner, annotator, project, world):
    path = f"/api/projects/{project.pk}/members/"
    user_id = world.annotator_a.user.pk
    assert annotator("get", f"/api/projects/{project.pk}/").status_code == 404
    added = owner("post", path, {"user": user_id})
    assert added.status_code == 201 and added.json() == {"user": user_id}
    assert owner("post", path, {"user": user_id}).status_code == 201  # already a member: nothing changes
    assert _emails(owner("get", path)) == {"annotator@a.test"}
    assert _emails(owner("get", f"{path}?user_ids={world.owner_a.user.pk}")) == set()
    assert annotator("get", f"/api/projects/{project.pk}/").status_code == 200
    # Reading the members needs only to see the project.
    assert _emails(annotator("get", path)) == {"annotator@a.test"}

    assert owner("delete", f"{path}?user={user_id}").status_code == 204
    again = owner("delete", path, {"user": user_id})
    assert again.status_code == 400 and "user" in again.json()["validation_errors"]
    assert annotator("get", f"/api/projects/{project.pk}/").status_code == 404


def test_members_refuse_bad_users_and_roles_without_projects_change(owner, annotator, project, world):
    path = f"/api/projects/{project.pk}/members/"
    for body in ({"user": world.owner_b.user.pk}, {"user": 987654}, {"user": "x"}, {}, {"user": None}):
        response = owner("post", path, body)
        assert response.status_code == 400 and "user" in response.json()["validation_errors"], body
    assert _member_ids(world, project) == set()
    # An annotator working in the project may read, not manage, its members.
    owner("post", path, {"user": world.annotator_a.user.pk})
    refused = annotator("post", path, {"user": world.reviewer_a.user.pk})
    assert refused.status_code == 403 and refused.json()["detail"] == denial_message("projects.change")
    assert _member_ids(world, project) == {world.annotator_a.user.pk}


def test_bulk_add_and_remove(owner, project, world):
    path = f"/api/projects/{project.pk}/members/bulk/"
    ids = [world.reviewer_a.user.pk, world.annotator_a.user.pk]
    first = owner("post", path, {"all": False, "included": ids}).json()
    assert first == {"assignments": 2, "skipped_user_ids": []}
    again = owner("post", path, {"all": False, "included": [*ids, world.manager_a.user.pk]}).json()
    assert again == {"assignments": 1, "skipped_user_ids": sorted(ids)}
    removed = owner("delete", f"{path}?all=false&included={ids[0]},{ids[1]}")
    assert removed.status_code == 200 and removed.json() == {"unassignments": 2}
    assert _member_ids(world, project) == {world.manager_a.user.pk}

    # all=true takes the query's filters: here every active Annotator but one.
    annotators = owner("post", f"{path}?role=AN", {"all": True, "excluded": [world.annotator_a.user.pk]}).json()
    added = _member_ids(world, project) - {world.manager_a.user.pk}
    assert annotators["assignments"] == len(added) >= 1 and world.annotator_a.user.pk not in added
    roles = dict(Membership.objects.filter(organization=world.org_a, user_id__in=added).values_list("user_id", "role"))
    assert set(roles.values()) == {"AN"}
    cleared = owner("delete", path, {"all": True, "excluded": [world.manager_a.user.pk]}).json()
    assert cleared == {"unassignments": len(added)}


def test_bulk_refuses_users_outside_the_organization_and_changes_nothing(owner, project, world):
    path = f"/api/projects/{project.pk}/members/bulk/"
    bad = [world.owner_b.user.pk, 987654]
    response = owner("post", path, {"all": False, "included": [world.reviewer_a.user.pk, *bad]})
    assert response.status_code == 400
    assert all(str(user_id) in str(response.json()["validation_errors"]["included"]) for user_id in bad)
    assert _member_ids(world, project) == set()
    for body in ({"all": False}, {"all": False, "included": [0]}, {"all": False, "roles": "AN"}):
        assert owner("post", path, body).status_code == 400, body
    for query in ("role=XX", "last_activity__gte=yesterday", "tags=a"):
        assert owner("post", f"{path}?{query}", {"all": True}).status_code == 400, query
    assert _member_ids(world, project) == set()


def test_bulk_roles_need_projects_roles_and_are_audited_once(owner, manager, project, world):
    path = f"/api/projects/{project.pk}/members/bulk/"
    roles = [{"user_id": world.annotator_a.user.pk, "role": "RE"}]
    # A member, so that the refusal is for the role (projects.roles), not a 404.
    owner("post", f"/api/projects/{project.pk}/members/", {"user": world.manager_a.user.pk})
    refused = manager("post", path, {"all": False, "included": [world.annotator_a.user.pk], "roles": roles})
    assert refused.status_code == 403 and refused.json()["detail"] == denial_message("projects.roles")
    assert _member_ids(world, project) == {world.manager_a.user.pk}

    done = owner("post", path, {"all": False, "included": [], "roles": [
        *roles, {"user_id": world.reviewer_a.user.pk, "role": "MA"}]})
    assert done.status_code == 200 and done.json()["assignments"] == 2
    stored = in_org_a(world, lambda: dict(ProjectRole.objects.filter(project=project).values_list("user_id", "role")))
    assert stored == {world.annotator_a.user.pk: "RE", world.reviewer_a.user.pk: "MA"}
    events = AuditEvent.objects.filter(organization=world.org_a, action="project.role_changed")
    assert events.count() == 1
    assert events.get().details["roles"] == {str(world.annotator_a.user.pk): [None, "RE"],
                                             str(world.reviewer_a.user.pk): [None, "MA"]}
    wrong = owner("post", path, {"all": False, "included": [], "roles": [{"user_id": world.admin_a.user.pk,
                                                                         "role": "DI"}]})
    assert wrong.status_code == 400 and "role" in wrong.json()["validation_errors"]
    assert world.admin_a.user.pk not in _member_ids(world, project)  # all or nothing


def test_bulk_writes_are_one_statement_each(project, world):
    users = [world.admin_a.user.pk, world.manager_a.user.pk, world.reviewer_a.user.pk, world.annotator_a.user.pk]
    with tenant_context(world.org_a):
        with CaptureQueriesContext(connection) as queries:
            assert members.project_members_add(project=project, organization_id=world.org_a.pk,
                                               user_ids=users) == sorted(users)
        assert [q["sql"].split()[0] for q in queries if "labeling_projectmember" in q["sql"]] == ["INSERT"]
        with CaptureQueriesContext(connection) as queries:
            assert members.project_members_remove(project=project, user_ids=users) == 4
        assert [q["sql"].split()[0] for q in queries if "labeling_projectmember" in q["sql"]] == ["DELETE"]


def test_paginated_members_explicit_and_implicit(owner, annotator, project, world):
    """Explicit: the annotator. Implicit: the reviewer through the workspace, the manager through
    a role override, the creator (Owner) and the Administrator through their organization role."""
    def arrange():
        workspace = Workspace.objects.create(title="Registers", created_by=world.owner_a.user)
        WorkspaceMembership.objects.create(workspace=workspace, user=world.reviewer_a.user)
        Project.objects.filter(pk=project.pk).update(workspace_id=workspace.pk)
        ProjectMember.objects.create(project=project, user=world.annotator_a.user)
        ProjectRole.objects.create(project=project, user=world.manager_a.user, role="AN")
        AnnotatorPause.objects.create(project=project, user=world.annotator_a.user, paused_by=world.owner_a.user,
                                      verbose_reason="Checking")
    in_org_a(world, arrange)
    tag = MemberTag.objects.create(organization=world.org_a, label="Latin")
    MemberTagAssignment.objects.create(tag=tag, membership=Membership.objects.get(
        user=world.annotator_a.user, organization=world.org_a))
    path = f"/api/projects/{project.pk}/members/paginated/"

    everyone = owner("get", f"{path}?ordering=email").json()
    rows = {row["email"]: row for row in everyone["results"]}
    assert set(rows) == {"owner@a.test", "admin@a.test", "manager@a.test", "reviewer@a.test", "annotator@a.test"}
    assert [row["email"] for row in everyone["results"]] == sorted(rows)
    assert rows["annotator@a.test"]["implicit_member"] is False
    assert rows["reviewer@a.test"]["implicit_member"] is True
    assert rows["manager@a.test"]["project_role"] == "AN" and rows["admin@a.test"]["project_role"] is None
    assert rows["annotator@a.test"]["tags"] == [{"id": tag.pk, "label": "Latin"}]
    assert rows["annotator@a.test"]["pause"]["verbose_reason"] == "Checking"
    assert rows["reviewer@a.test"]["pause"] is None

    assert _emails(owner("get", f"{path}?implicit=false")) == {"annotator@a.test"}
    assert "annotator@a.test" not in _emails(owner("get", f"{path}?implicit=true"))
    # The project role wins over the organization role.
    assert _emails(owner("get", f"{path}?role=AN")) == {"annotator@a.test", "manager@a.test"}
    assert _emails(owner("get", f"{path}?no_annotators=true")) == {"owner@a.test", "admin@a.test",
                                                                   "reviewer@a.test"}
    assert _emails(owner("get", f"{path}?search=review")) == {"reviewer@a.test"}
    assert _emails(owner("get", f"{path}?tags={tag.pk}")) == {"annotator@a.test"}
    assert _emails(owner("get", f"{path}?ids={world.admin_a.user.pk}")) == {"admin@a.test"}
    by_role = [row["email"] for row in owner("get", f"{path}?ordering=-role").json()["results"]]
    # By effective role code, descending: RE, OW, AN (annotator; manager by override), AD.
    assert by_role[0] == "reviewer@a.test" and by_role[-1] == "admin@a.test"

    page = owner("get", f"{path}?page_size=2&page=2").json()
    assert page["count"] == 5 and len(page["results"]) == 2 and page["next"] and page["previous"]
    assert owner("get", f"{path}?page=4&page_size=2").json()["results"] == []
    for query in ("ordering=password", "role=XX", "page_size=0", "last_activity__gte=soon"):
        response = owner("get", f"{path}?{query}")
        assert response.status_code == 400, query
    assert annotator("get", path).status_code == 200  # members see who they work with


# --- pauses ----------------------------------------------------------------------------------------

@pytest.fixture
def working_annotator(owner, project, world):
    owner("post", f"/api/projects/{project.pk}/members/", {"user": world.annotator_a.user.pk})
    return world.annotator_a.user


def test_pause_stops_the_label_stream_and_submits_until_deleted(owner, annotator, project, working_annotator,
                                                                 world):
    task = annotator("get", f"/api/projects/{project.pk}/next")
    assert task.status_code == 200, task.content
    assert in_org_a(world, lambda: TaskLock.objects.filter(user=working_annotator).count()) == 1
    base = f"/api/projects/{project.pk}/members/{working_annotator.pk}/pauses/"
    made = owner("post", base, {"reason": "MANUAL", "verbose_reason": "Too many typos"})
    assert made.status_code == 201, made.content
    pause = made.json()
    assert pause["user"] == working_annotator.pk and pause["project"] == project.pk
    assert pause["paused_by"]["email"] == "owner@a.test" and pause["deleted_at"] is None
    # The task the stream had reserved for them goes back to the others.
    assert in_org_a(world, lambda: TaskLock.objects.filter(user=working_annotator).count()) == 0

    paused = annotator("get", f"/api/projects/{project.pk}/next")
    assert paused.status_code == 409 and "Too many typos" in paused.json()["detail"]
    submit = annotator("post", f"/api/tasks/{task.json()['id']}/annotations", {"result": ocr_result()})
    assert submit.status_code == 409 and "paused" in submit.json()["detail"]
    assert not in_org_a(world, lambda: Annotation.objects.filter(completed_by=working_annotator).exists())
    # Elsewhere they work as before.
    other = world.project_a
    assert annotator("get", f"/api/projects/{other.pk}/next").status_code in (200, 404)

    assert owner("delete", f"{base}{pause['id']}/").status_code == 204
    assert annotator("get", f"/api/projects/{project.pk}/next").status_code == 200
    submit = annotator("post", f"/api/tasks/{task.json()['id']}/annotations", {"result": ocr_result()})
    assert submit.status_code == 201, submit.content


def test_pause_list_get_update(owner, project, working_annotator):
    base = f"/api/projects/{project.pk}/members/{working_annotator.pk}/pauses/"
    first = owner("post", base, {"reason": "ANNOTATION_LIMIT"}).json()
    assert first["verbose_reason"] == ""
    second = owner("post", base, {"reason": "MANUAL", "verbose_reason": "Review"}).json()
    assert [row["id"] for row in owner("get", base).json()] == [second["id"], first["id"]]
    assert [row["id"] for row in owner("get", f"{base}?ordering=id").json()] == [first["id"], second["id"]]
    assert owner("get", f"{base}{first['id']}/").json()["reason"] == "ANNOTATION_LIMIT"
    changed = owner("patch", f"{base}{first['id']}/", {"verbose_reason": "Limit of 100 reached"})
    assert changed.status_code == 200 and changed.json()["verbose_reason"] == "Limit of 100 reached"
    assert changed.json()["reason"] == "ANNOTATION_LIMIT"
    replaced = owner("put", f"{base}{first['id']}/", {"reason": "CUSTOM_SCRIPT"})
    assert replaced.status_code == 200 and replaced.json()["reason"] == "CUSTOM_SCRIPT"


def test_pauses_refuse_bad_input_and_unknown_ids(owner, annotator, project, working_annotator, world):
    base = f"/api/projects/{project.pk}/members/{working_annotator.pk}/pauses/"
    for body, field in [({}, "reason"), ({"reason": "BORED"}, "reason"),
                        ({"reason": "MANUAL", "verbose_reason": 5}, "verbose_reason")]:
        response = owner("post", base, body)
        assert response.status_code == 400 and field in response.json()["validation_errors"], body
    assert owner("get", f"{base}?ordering=user__password").status_code == 400
    pause = owner("post", base, {"reason": "MANUAL"}).json()
    assert owner("patch", f"{base}{pause['id']}/", {"reason": "SOMETIMES"}).status_code == 400
    assert owner("put", f"{base}{pause['id']}/", {"verbose_reason": "no reason"}).status_code == 400
    # Another user's pause, a user of another organization, an unknown pause: 404.
    other = f"/api/projects/{project.pk}/members/{world.reviewer_a.user.pk}/pauses/{pause['id']}/"
    assert owner("get", other).status_code == 404
    assert owner("get", f"/api/projects/{project.pk}/members/{world.owner_b.user.pk}/pauses/").status_code == 404
    assert owner("delete", f"{base}987654/").status_code == 404
    refused = annotator("get", base)
    assert refused.status_code == 403 and refused.json()["detail"] == denial_message("projects.change")


def test_the_label_stream_service_honours_pauses(project, world):
    user = world.annotator_a.user
    with tenant_context(world.org_a):
        pause = members.pause_create(project=project, user_id=user.pk, paused_by=world.owner_a.user,
                                     reason="MANUAL")
        with pytest.raises(members.AnnotatorPaused):
            services.next_task_for(project=project, user=user)
        with pytest.raises(members.AnnotatorPaused):
            services.annotation_create(task=Task.objects.filter(project=project).first(), user=user,
                                       result=ocr_result())
        with pytest.raises(members.AnnotatorPaused):
            services.annotations_bulk_create(project=project, user=user, task_ids=[], result=ocr_result())
        members.pause_delete(pause=pause)
        assert services.next_task_for(project=project, user=user) is not None


# --- project roles ---------------------------------------------------------------------------------

def test_a_role_override_changes_what_the_member_may_do_in_that_project_only(owner, annotator, project,
                                                                              working_annotator, world):
    members_path = f"/api/projects/{project.pk}/members/"
    refused = annotator("post", members_path, {"user": world.reviewer_a.user.pk})
    assert refused.status_code == 403

    made = owner("post", "/api/projects/roles/", {"project": project.pk, "user": working_annotator.pk, "role": "MA"})
    assert made.status_code == 201, made.content
    role = made.json()
    assert role == {"id": role["id"], "project": project.pk, "user": working_annotator.pk, "role": "MA",
                    "role_source": "manual"}
    assert annotator("post", members_path, {"user": world.reviewer_a.user.pk}).status_code == 201
    # world.project_a: still an Annotator there.
    elsewhere = annotator("post", f"/api/projects/{world.project_a.pk}/members/", {"user": world.admin_a.user.pk})
    assert elsewhere.status_code == 403

    changed = owner("post", "/api/projects/roles/", {"project": project.pk, "user": working_annotator.pk,
                                                     "role": "RE"})
    assert changed.status_code == 200 and changed.json()["id"] == role["id"]
    assert owner("get", f"/api/projects/roles/{role['id']}/").json()["role"] == "RE"
    assert [row["id"] for row in owner("get", f"/api/projects/{project.pk}/roles").json()] == [role["id"]]
    mine = annotator("get", f"/api/projects/roles/?ids={project.pk}").json()
    assert [row["id"] for row in mine] == [role["id"]]
    assert annotator("get", f"/api/projects/roles/?ids={world.project_a.pk}").json() == []

    assert owner("delete", f"/api/projects/roles/{role['id']}/").status_code == 204
    assert owner("get", f"/api/projects/roles/{role['id']}/").status_code == 404
    assert annotator("post", members_path, {"user": world.admin_a.user.pk}).status_code == 403

    events = AuditEvent.objects.filter(organization=world.org_a, action="project.role_changed").order_by("id")
    assert [event.details["roles"][str(working_annotator.pk)] for event in events] == [
        [None, "MA"], ["MA", "RE"], ["RE", None]]
    assert all(event.actor_id == world.owner_a.user.pk for event in events)


def test_role_overrides_refuse_bad_input(owner, project, world):
    path = "/api/projects/roles/"
    user = world.annotator_a.user.pk
    cases = [
        ({"project": project.pk, "user": user, "role": "DI"}, "role"),
        ({"project": project.pk, "user": user, "role": "XX"}, "role"),
        ({"project": project.pk, "user": user}, "role"),
        ({"project": project.pk, "user": world.owner_b.user.pk, "role": "AN"}, "user"),
        ({"project": project.pk, "user": "me", "role": "AN"}, "user"),
        ({"project": 987654, "user": user, "role": "AN"}, "project"),
        ({"user": user, "role": "AN"}, "project"),
    ]
    for body, field in cases:
        response = owner("post", path, body)
        assert response.status_code == 400 and field in response.json()["validation_errors"], body
    assert not in_org_a(world, lambda: ProjectRole.objects.filter(project=project).exists())
    assert owner("get", "/api/projects/roles/?ordering=secret").status_code == 400
    assert not AuditEvent.objects.filter(organization=world.org_a, action="project.role_changed").exists()


def test_roles_need_projects_roles_and_never_exceed_the_granter(admin, manager, project, world):
    owner_id = world.owner_a.user.pk
    refused = manager("post", "/api/projects/roles/", {"project": project.pk, "user": world.annotator_a.user.pk,
                                                       "role": "RE"})
    assert refused.status_code == 403 and refused.json()["detail"] == denial_message("projects.roles")
    assert manager("get", f"/api/projects/roles/{world.project_role_a.pk}/").status_code == 403
    assert manager("get", f"/api/projects/{world.project_a.pk}/roles").status_code == 403
    # Administrators manage roles, below their own: no project Owners, no demoted Owner.
    assert admin("post", "/api/projects/roles/", {"project": project.pk, "user": world.annotator_a.user.pk,
                                                  "role": "AD"}).status_code == 201
    for body in ({"user": world.annotator_a.user.pk, "role": "OW"}, {"user": owner_id, "role": "AN"}):
        response = admin("post", "/api/projects/roles/", {"project": project.pk, **body})
        assert response.status_code == 403, body
    assert in_org_a(world, lambda: dict(ProjectRole.objects.filter(project=project).values_list("user_id", "role"))) \
        == {world.annotator_a.user.pk: "AD"}


# --- organization B --------------------------------------------------------------------------------

def _snapshot(world):
    with tenant_context(world.org_a):
        return (list(ProjectMember.objects.order_by("id").values()),
                list(ProjectRole.objects.order_by("id").values()),
                list(AnnotatorPause.objects.order_by("id").values()),
                list(TaskLock.objects.order_by("id").values()))


def test_organization_b_never_reaches_a_members_pauses_or_roles(api, world):
    before = _snapshot(world)
    audit_before = AuditEvent.objects.filter(organization=world.org_a).count()
    token = world.owner_b.legacy_key
    pk = world.project_a.pk
    pause = world.pause_a
    user = pause.user_id
    calls = [
        ("get", f"/api/projects/{pk}/members/", None),
        ("post", f"/api/projects/{pk}/members/", {"user": world.owner_b.user.pk}),
        ("delete", f"/api/projects/{pk}/members/?user={world.annotator_a.user.pk}", None),
        ("post", f"/api/projects/{pk}/members/bulk/", {"all": True}),
        ("delete", f"/api/projects/{pk}/members/bulk/?all=true", None),
        ("get", f"/api/projects/{pk}/members/paginated/", None),
        ("get", f"/api/projects/{pk}/members/{user}/pauses/", None),
        ("post", f"/api/projects/{pk}/members/{user}/pauses/", {"reason": "MANUAL"}),
        ("get", f"/api/projects/{pk}/members/{user}/pauses/{pause.pk}/", None),
        ("patch", f"/api/projects/{pk}/members/{user}/pauses/{pause.pk}/", {"verbose_reason": "B"}),
        ("put", f"/api/projects/{pk}/members/{user}/pauses/{pause.pk}/", {"reason": "MANUAL"}),
        ("delete", f"/api/projects/{pk}/members/{user}/pauses/{pause.pk}/", None),
        ("get", f"/api/projects/roles/{world.project_role_a.pk}/", None),
        ("delete", f"/api/projects/roles/{world.project_role_a.pk}/", None),
        ("get", f"/api/projects/{pk}/roles", None),
    ]
    for method, path, body in calls:
        response = api.call(method, path, token=token, json=body)
        assert response.status_code == 404, (method, path, response.status_code)
        assert b"paused@a.test" not in response.content and b"Checking quality" not in response.content
    # Ids of A in a body: refused as unknown (B has no such project), and B's own list is empty.
    response = api.call("post", "/api/projects/roles/", token=token,
                        json={"project": pk, "user": world.annotator_a.user.pk, "role": "OW"})
    assert response.status_code == 400
    assert api.call("get", "/api/projects/roles/", token=token).json() == []
    assert _snapshot(world) == before
    assert AuditEvent.objects.filter(organization=world.org_a).count() == audit_before
