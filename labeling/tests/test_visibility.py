"""Who sees which projects and whose work (labeling.access through the API): project membership,
projects that hide other annotators' work, reviewers, and per-project role overrides."""

import json
from urllib.parse import quote

import pytest
from django_tenants.utils import tenant_context

from accounts.access import denial_message, overrides_changed
from accounts.models import OrganizationPermission, Role
from conftest import _member, ocr_result
from labeling.models import Project, ProjectRole
from labeling.tests.project_access import add_project_members
from workspaces.models import WorkspaceMembership

pytestmark = pytest.mark.django_db


def _project_with_tasks(owner, title: str, tasks: int = 2) -> tuple[int, list[int]]:
    project = owner("post", "/api/projects/", {"title": title}).json()
    ids = owner("post", f"/api/projects/{project['id']}/import?return_task_ids=1",
                [{"ocr": f"https://example.test/{n}.png"} for n in range(tasks)]).json()["task_ids"]
    return project["id"], ids


def _annotate(call, task_id: int, text: str) -> dict:
    response = call("post", f"/api/tasks/{task_id}/annotations", {"result": ocr_result(text=text)})
    assert response.status_code == 201, response.content
    return response.json()


def _listed_projects(call) -> set[int]:
    return {project["id"] for project in call("get", "/api/projects/?page_size=1000").json()["results"]}


def _dm_task_ids(call, project_id: int, *items) -> list[int]:
    query = {"filters": {"conjunction": "and", "items": list(items)}, "selectedItems": {"all": True, "excluded": []}}
    response = call("get", f"/api/tasks/?project={project_id}&query={quote(json.dumps(query))}")
    assert response.status_code == 200, response.content
    return [task["id"] for task in response.json()["tasks"]]


def _texts(annotations: list[dict]) -> list[str]:
    return [annotation["result"][2]["value"]["text"][0] for annotation in annotations]


# --- projects --------------------------------------------------------------------------------------

def test_an_annotator_outside_a_project_gets_404_and_does_not_list_it(world, owner, annotator):
    project_id, (task_id, _) = _project_with_tasks(owner, "Not yours")
    annotation = _annotate(owner, task_id, "secret")

    for path in (f"/api/projects/{project_id}", f"/api/projects/{project_id}/tasks", f"/api/tasks/{task_id}",
                 f"/api/tasks/?project={project_id}", f"/api/annotations/{annotation['id']}",
                 f"/api/projects/{project_id}/next", f"/api/dm/project/?project={project_id}",
                 f"/api/projects/{project_id}/annotation-history"):
        response = annotator("get", path)
        assert response.status_code == 404, path
        assert b"secret" not in response.content
    assert annotator("post", f"/api/tasks/{task_id}/annotations", {"result": ocr_result()}).status_code == 404
    assert project_id not in _listed_projects(annotator)
    assert world.project_a.pk in _listed_projects(annotator), "the project they are a member of"
    counted = {row["id"] for row in annotator("get", "/api/projects/counts").json()["results"]}
    assert project_id not in counted and world.project_a.pk in counted
    assert all(row["project"] != project_id for row in annotator("get", "/api/comments/").json())
    assert project_id in _listed_projects(owner)

    add_project_members(world, project_id, world.annotator_a)
    assert annotator("get", f"/api/projects/{project_id}").status_code == 200
    assert project_id in _listed_projects(annotator)


def test_a_workspace_member_sees_the_workspace_projects(world, owner, as_member):
    outsider = _member(email="workspace-annotator@a.test", organization=world.org_a, role=Role.ANNOTATOR)
    call = as_member(outsider)
    project_id, _ = _project_with_tasks(owner, "In A's workspace", tasks=1)
    with tenant_context(world.org_a):
        Project.objects.filter(pk=project_id).update(workspace_id=world.workspace_a.pk)
    assert call("get", f"/api/projects/{project_id}").status_code == 404
    with tenant_context(world.org_a):
        WorkspaceMembership.objects.create(workspace=world.workspace_a, user=outsider.user)
    assert call("get", f"/api/projects/{project_id}").status_code == 200
    assert project_id in _listed_projects(call)


# --- projects that hide other annotators' work -------------------------------------------------------

@pytest.fixture
def hidden_work(world, owner, annotator):
    """A project hiding annotators' work from each other: the owner annotated task 1, the annotator
    task 2; the owner commented on their own annotation."""
    project_id, (first, second) = _project_with_tasks(owner, "Hidden work")
    add_project_members(world, project_id, world.annotator_a)
    theirs = _annotate(owner, first, "Owner's words")
    mine = _annotate(annotator, second, "Mine")
    owner("post", "/api/comments/", {"annotation": theirs["id"], "text": "Owner's note"})
    return {"project": project_id, "first": first, "second": second, "theirs": theirs, "mine": mine}


def test_an_annotator_sees_only_their_own_annotations_where_the_project_hides_others(owner, annotator, hidden_work):
    project, first, second = hidden_work["project"], hidden_work["first"], hidden_work["second"]
    assert annotator("get", f"/api/tasks/{first}").json()["annotations"] == []
    assert _texts(annotator("get", f"/api/tasks/{second}").json()["annotations"]) == ["Mine"]
    assert annotator("get", f"/api/tasks/{first}/annotations").json() == []
    assert annotator("get", f"/api/annotations/{hidden_work['theirs']['id']}").status_code == 404
    assert annotator("get", f"/api/annotations/{hidden_work['mine']['id']}").status_code == 200

    listed = annotator("get", f"/api/tasks/?project={project}&fields=all").json()["tasks"]
    assert {task["id"]: _texts(task["annotations"]) for task in listed} == {first: [], second: ["Mine"]}
    plain = annotator("get", f"/api/projects/{project}/tasks").json()
    assert {task["id"]: _texts(task["annotations"]) for task in plain} == {first: [], second: ["Mine"]}
    # The owner (who has annotations.view_all) sees both.
    assert _texts(owner("get", f"/api/tasks/{first}").json()["annotations"]) == ["Owner's words"]

    history = annotator("get", f"/api/annotation-history/?annotation={hidden_work['theirs']['id']}").json()
    assert history == []
    assert [c["text"] for c in annotator("get", f"/api/comments/?projects={project}").json()] == []
    assert [c["text"] for c in owner("get", f"/api/comments/?projects={project}").json()] == ["Owner's note"]


def test_data_manager_filters_cannot_reveal_hidden_work(world, owner, annotator, hidden_work):
    project, first, second = hidden_work["project"], hidden_work["first"], hidden_work["second"]
    by_owner = {"filter": "filter:tasks:annotators", "operator": "contains", "type": "List",
                "value": [world.owner_a.user.pk]}
    owner_words = {"filter": "filter:tasks:annotations_results", "operator": "contains", "type": "String",
                   "value": "Owner's"}
    anything = {"filter": "filter:tasks:annotations_results", "operator": "empty", "type": "String",
                "value": False}
    assert _dm_task_ids(owner, project, by_owner) == [first]
    assert _dm_task_ids(owner, project, owner_words) == [first]
    assert _dm_task_ids(annotator, project, by_owner) == []
    assert _dm_task_ids(annotator, project, owner_words) == []
    assert _dm_task_ids(annotator, project, anything) == [second]
    assert _dm_task_ids(owner, project, anything) == [first, second]


def test_exports_are_refused_to_annotators(annotator, hidden_work):
    project = hidden_work["project"]
    for method, path in (("get", f"/api/projects/{project}/export"), ("get", f"/api/projects/{project}/exports"),
                         ("post", f"/api/projects/{project}/exports")):
        response = annotator(method, path, {} if method == "post" else None)
        assert response.status_code == 403, path
        assert response.json()["detail"] == denial_message("exports.create")


def test_an_override_granting_exports_still_hides_others_work(world, annotator, hidden_work):
    """Exports carry every annotation: granting exports.create to Annotators does not let one who
    sees only their own export the project."""
    OrganizationPermission.objects.create(organization=world.org_a, permission="exports.create",
                                          roles=[Role.OWNER, Role.ADMINISTRATOR, Role.MANAGER, Role.ANNOTATOR])
    overrides_changed(world.org_a.pk)
    try:
        response = annotator("get", f"/api/projects/{hidden_work['project']}/export")
        assert response.status_code == 403
        assert response.json()["detail"] == denial_message("annotations.view_all")
    finally:
        overrides_changed(world.org_a.pk)


def test_a_project_showing_everyones_work_shows_it(owner, annotator, hidden_work):
    assert owner("patch", f"/api/projects/{hidden_work['project']}",
                 {"annotator_sees_others": True}).status_code == 200
    assert _texts(annotator("get", f"/api/tasks/{hidden_work['first']}").json()["annotations"]) == ["Owner's words"]
    assert annotator("get", f"/api/annotations/{hidden_work['theirs']['id']}").status_code == 200


# --- reviewers and per-project roles --------------------------------------------------------------

def test_a_reviewer_sees_reviews_only_in_projects_they_can_see(world, owner, as_member):
    reviewer = as_member(world.reviewer_a)
    elsewhere, (task_id, _) = _project_with_tasks(owner, "Not the reviewer's")
    annotation = _annotate(owner, task_id, "Reviewed elsewhere")
    review = owner("post", "/api/annotation-reviews/", {"annotation": annotation["id"], "accepted": True}).json()
    shared = world.review_a  # in project_a, where the reviewer is a member

    listed = {r["id"] for r in reviewer("get", "/api/annotation-reviews/").json()}
    assert shared.pk in listed and review["id"] not in listed
    assert reviewer("get", f"/api/annotation-reviews/{shared.pk}").status_code == 200
    assert reviewer("get", f"/api/annotation-reviews/{review['id']}").status_code == 404
    assert reviewer("get", f"/api/annotation-reviews/?annotation__task__project={elsewhere}").json() == []
    refused = reviewer("post", "/api/annotation-reviews/", {"annotation": annotation["id"], "accepted": False})
    assert refused.status_code == 400 and "annotation" in refused.json()["validation_errors"]
    assert {r["id"] for r in owner("get", "/api/annotation-reviews/").json()} >= {shared.pk, review["id"]}


def test_a_project_role_override_lets_an_annotator_review_in_that_project_only(world, owner, as_member):
    promoted = _member(email="promoted@a.test", organization=world.org_a, role=Role.ANNOTATOR)
    call = as_member(promoted)
    first, (first_task, _) = _project_with_tasks(owner, "Promoted here")
    second, (second_task, _) = _project_with_tasks(owner, "Annotator there")
    add_project_members(world, first, promoted)
    add_project_members(world, second, promoted)
    with tenant_context(world.org_a):
        ProjectRole.objects.create(project_id=first, user=promoted.user, role=Role.REVIEWER)
    here = _annotate(owner, first_task, "Review me")
    there = _annotate(owner, second_task, "Not for you")

    # Reviewers see others' work: in the first project only.
    assert _texts(call("get", f"/api/tasks/{first_task}").json()["annotations"]) == ["Review me"]
    assert call("get", f"/api/tasks/{second_task}").json()["annotations"] == []

    accepted = call("post", "/api/annotation-reviews/", {"annotation": here["id"], "accepted": True})
    assert accepted.status_code == 201, accepted.content
    owner_review = owner("post", "/api/annotation-reviews/", {"annotation": there["id"], "accepted": True}).json()
    with tenant_context(world.org_a):  # the owner shows the second project's work to annotators
        Project.objects.filter(pk=second).update(annotator_sees_others=True)
    refused = call("post", "/api/annotation-reviews/", {"annotation": there["id"], "accepted": False})
    assert refused.status_code == 403 and refused.json()["detail"] == denial_message("reviews.create")
    listed = {r["id"] for r in call("get", "/api/annotation-reviews/").json()}
    assert listed == {accepted.json()["id"]}, "reviews of the project where they review, not the other"
    assert call("get", f"/api/annotation-reviews/{owner_review['id']}").status_code == 404

    # The override reaches no organization-level permission: still no project creation.
    assert call("post", "/api/projects/", {"title": "Nope"}).json()["detail"] == denial_message("projects.create")
