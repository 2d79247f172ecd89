"""Drafts, annotation history, reviews, comments, task assignments (and the label stream with
them), bulk annotations, imported predictions and model versions."""

import csv
import io

import pytest

from accounts.models import Role
from conftest import _member, in_org_a, ocr_result
from labeling.models import Annotation, AnnotationDraft, AnnotationHistory, Prediction, Task, TaskAssignment
from labeling.tests.project_access import add_project_members

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(owner, world):
    project = owner("post", "/api/projects/", {"title": "Collaboration"}).json()
    tasks = [{"ocr": f"https://example.test/{n}.png"} for n in range(4)]
    ids = owner("post", f"/api/projects/{project['id']}/import?return_task_ids=1", tasks).json()["task_ids"]
    add_project_members(world, project["id"], world.annotator_a, world.reviewer_a)
    return {**project, "task_ids": ids}


# --- drafts ----------------------------------------------------------------------------------------

def test_a_draft_is_private_shown_with_the_task_and_replaced_by_the_submit(owner, annotator, project, world):
    task_id = project["task_ids"][0]
    draft = annotator("post", f"/api/tasks/{task_id}/drafts", {"result": ocr_result(text="half"), "lead_time": 3})
    assert draft.status_code == 201, draft.content
    again = annotator("post", f"/api/tasks/{task_id}/drafts", {"result": ocr_result(text="more")})
    assert again.json()["id"] == draft.json()["id"]  # one draft per user and task, overwritten
    task = annotator("get", f"/api/tasks/{task_id}").json()
    assert [d["result"][2]["value"]["text"] for d in task["drafts"]] == [["more"]]
    assert owner("get", f"/api/tasks/{task_id}").json()["drafts"] == []
    assert owner("get", f"/api/drafts/{draft.json()['id']}").status_code == 404

    assert annotator("post", f"/api/tasks/{task_id}/annotations", {"result": ocr_result()}).status_code == 201
    assert not in_org_a(world, lambda: AnnotationDraft.objects.filter(task_id=task_id).exists())


def test_a_draft_must_be_a_list_of_results(annotator, project, world):
    task_id = project["task_ids"][0]
    response = annotator("post", f"/api/tasks/{task_id}/drafts", {"result": "oops"})
    assert response.status_code == 400 and "result" in response.json()["validation_errors"]
    assert annotator("post", f"/api/tasks/{task_id}/drafts", {"lead_time": 1}).status_code == 400
    assert not in_org_a(world, lambda: AnnotationDraft.objects.filter(task_id=task_id).exists())


def test_draft_update_and_delete_by_its_author(annotator, project):
    task_id = project["task_ids"][1]
    draft = annotator("post", f"/api/tasks/{task_id}/drafts", {"result": []}).json()
    updated = annotator("patch", f"/api/drafts/{draft['id']}", {"result": ocr_result(), "was_postponed": True})
    assert updated.status_code == 200 and updated.json()["was_postponed"] is True
    assert annotator("delete", f"/api/drafts/{draft['id']}").status_code == 204
    assert annotator("get", f"/api/tasks/{task_id}/drafts").json() == []


# --- history and reviews ---------------------------------------------------------------------------

def test_history_records_submit_update_and_review(owner, annotator, reviewer, project):
    task_id = project["task_ids"][0]
    annotation = annotator("post", f"/api/tasks/{task_id}/annotations", {"result": ocr_result(text="v1")}).json()
    annotator("patch", f"/api/annotations/{annotation['id']}", {"result": ocr_result(text="v2")})
    review = reviewer("post", "/api/annotation-reviews/", {"annotation": annotation["id"], "accepted": False,
                                                           "comment": "Wrong word"})
    assert review.status_code == 201, review.content
    entries = owner("get", f"/api/annotation-history/?annotation={annotation['id']}").json()
    assert [e["action"] for e in entries] == ["rejected", "updated", "submitted"]
    assert entries[2]["result"][2]["value"]["text"] == ["v1"]
    assert entries[0]["review_id"] == review.json()["id"]
    assert owner("get", f"/api/annotation-history/{entries[1]['id']}").json()["action"] == "updated"
    page = owner("get", f"/api/projects/{project['id']}/annotation-history/?page_size=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2
    # The reviewer's comment landed on the annotation.
    comments = owner("get", f"/api/comments/?annotation={annotation['id']}").json()
    assert [c["text"] for c in comments] == ["Wrong word"]


def test_a_reviewer_fixing_the_result_replaces_it(annotator, reviewer, project, world):
    task_id = project["task_ids"][0]
    annotation = annotator("post", f"/api/tasks/{task_id}/annotations", {"result": ocr_result(text="teh")}).json()
    review = reviewer("post", "/api/annotation-reviews/", {"annotation": annotation["id"], "accepted": True,
                                                           "result": ocr_result(text="the")})
    assert review.status_code == 201
    body = review.json()
    assert body["accepted"] is True and body["fixed_annotation_history"] is not None
    stored = in_org_a(world, lambda: Annotation.objects.get(pk=annotation["id"]))
    assert stored.result[2]["value"]["text"] == ["the"] and stored.last_action == "fixed_and_accepted"
    listed = reviewer("get", f"/api/annotation-reviews/?annotation={annotation['id']}").json()
    assert [r["id"] for r in listed] == [body["id"]]


def test_an_invalid_fix_is_400_and_changes_nothing(annotator, reviewer, project, world):
    task_id = project["task_ids"][0]
    annotation = annotator("post", f"/api/tasks/{task_id}/annotations", {"result": ocr_result(text="ok")}).json()
    bad = ocr_result(region="r1")
    bad[2]["id"] = "ghost"  # a transcription of a region that does not exist
    response = reviewer("post", "/api/annotation-reviews/", {"annotation": annotation["id"], "accepted": True,
                                                             "result": bad})
    assert response.status_code == 400
    assert "ghost" in str(response.json())
    stored = in_org_a(world, lambda: Annotation.objects.get(pk=annotation["id"]))
    assert stored.result[2]["value"]["text"] == ["ok"]
    assert not in_org_a(world, lambda: stored.reviews.exists())


def test_reviews_need_a_reviewer_role_and_a_verdict(annotator, reviewer, project):
    task_id = project["task_ids"][0]
    annotation = annotator("post", f"/api/tasks/{task_id}/annotations", {"result": ocr_result()}).json()
    assert annotator("post", "/api/annotation-reviews/",
                     {"annotation": annotation["id"], "accepted": True}).status_code == 403
    missing = reviewer("post", "/api/annotation-reviews/", {"annotation": annotation["id"]})
    assert missing.status_code == 400 and "accepted" in missing.json()["validation_errors"]
    unknown = reviewer("post", "/api/annotation-reviews/", {"annotation": 999999, "accepted": True})
    assert unknown.status_code == 400 and "annotation" in unknown.json()["validation_errors"]


def test_history_deletion_is_for_admins(owner, annotator, project):
    task_id = project["task_ids"][0]
    annotation = annotator("post", f"/api/tasks/{task_id}/annotations", {"result": ocr_result()}).json()
    assert annotator("delete", f"/api/annotation-history/?annotation={annotation['id']}").status_code == 403
    removed = owner("delete", f"/api/annotation-history/?annotation={annotation['id']}")
    assert removed.json() == {"removed": 1}


# --- comments --------------------------------------------------------------------------------------

def test_comments_keep_task_counters_and_belong_to_their_author(owner, annotator, project, world):
    task_id = project["task_ids"][2]
    annotation = annotator("post", f"/api/tasks/{task_id}/annotations", {"result": ocr_result()}).json()
    comment = owner("post", "/api/comments/", {"annotation": annotation["id"], "text": "Check line 2",
                                               "region_ref": {"id": "r1"}})
    assert comment.status_code == 201, comment.content
    task = owner("get", f"/api/tasks/{task_id}").json()
    assert (task["comment_count"], task["unresolved_comment_count"]) == (1, 1)
    assert task["last_comment_updated_at"] is not None

    assert annotator("patch", f"/api/comments/{comment.json()['id']}", {"text": "mine now"}).status_code == 403
    resolved = owner("patch", f"/api/comments/{comment.json()['id']}", {"is_resolved": True}).json()
    assert resolved["is_resolved"] is True and resolved["resolved_at"] is not None
    assert owner("get", f"/api/tasks/{task_id}").json()["unresolved_comment_count"] == 0

    exported = owner("get", f"/api/comments/export/?projects={project['id']}")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert [(r["text"], r["created_by"]) for r in rows] == [("Check line 2", "owner@a.test")]
    expanded = owner("get", f"/api/comments/?projects={project['id']}&expand_created_by=true").json()
    assert expanded[0]["created_by"]["email"] == "owner@a.test"

    assert owner("delete", f"/api/comments/{comment.json()['id']}").status_code == 204
    assert owner("get", f"/api/tasks/{task_id}").json()["comment_count"] == 0


def test_a_comment_needs_a_target_and_text(owner, project):
    assert "annotation" in owner("post", "/api/comments/", {"text": "hi"}).json()["validation_errors"]
    assert "annotation" in owner("post", "/api/comments/", {"annotation": 999999, "text": "hi"}).json()[
        "validation_errors"]


# --- assignments and the label stream ---------------------------------------------------------------

def test_assigned_tasks_go_to_their_assignee_first_and_to_no_one_else(owner, world, as_member, project):
    first, second = (_member(email=f"ann{n}@a.test", organization=world.org_a, role=Role.ANNOTATOR)
                     for n in (1, 2))
    add_project_members(world, project["id"], first, second)
    assigned = project["task_ids"][2]
    response = owner("post", f"/api/projects/{project['id']}/tasks/{assigned}/assignees",
                     {"type": "AN", "users": [first.user.pk]})
    assert response.status_code == 200, response.content
    assert [a["assignee"] for a in response.json()] == [first.user.pk]

    assert as_member(first)("get", f"/api/projects/{project['id']}/next").json()["id"] == assigned
    # The other annotator drains the project and never receives the assigned task.
    other = as_member(second)
    seen = []
    while (task := other("get", f"/api/projects/{project['id']}/next")).status_code == 200:
        seen.append(task.json()["id"])
        assert other("post", f"/api/tasks/{seen[-1]}/annotations", {"result": ocr_result()}).status_code == 201
    assert assigned not in seen and len(seen) == 3


def test_bulk_assignment_with_selected_items(owner, world, project):
    selected = {"all": True, "excluded": [project["task_ids"][0]]}
    response = owner("post", f"/api/projects/{project['id']}/tasks/assignees",
                     {"type": "RE", "users": [world.annotator_a.user.pk], "selectedItems": selected})
    assert response.status_code == 201 and response.json() == {"assignments": 3, "async": False}
    again = owner("post", f"/api/projects/{project['id']}/tasks/assignees",
                  {"type": "RE", "users": [world.annotator_a.user.pk], "selectedItems": selected})
    assert again.json()["assignments"] == 0  # already assigned
    task = project["task_ids"][1]
    owner("delete", f"/api/projects/{project['id']}/tasks/{task}/assignees?type=RE")
    assert in_org_a(world, lambda: TaskAssignment.objects.filter(task__project_id=project["id"]).count()) == 2


def test_assignments_are_for_active_members_and_managers(owner, annotator, world, project):
    task = project["task_ids"][0]
    stranger = owner("post", f"/api/projects/{project['id']}/tasks/{task}/assignees",
                     {"type": "AN", "users": [world.owner_b.user.pk]})
    assert stranger.status_code == 400 and "users" in stranger.json()["validation_errors"]
    bad_type = owner("post", f"/api/projects/{project['id']}/tasks/{task}/assignees",
                     {"type": "XX", "users": [world.annotator_a.user.pk]})
    assert bad_type.status_code == 400 and "type" in bad_type.json()["validation_errors"]
    assert annotator("post", f"/api/projects/{project['id']}/tasks/{task}/assignees",
                     {"type": "AN", "users": [world.annotator_a.user.pk]}).status_code == 403
    assert not in_org_a(world, lambda: TaskAssignment.objects.filter(task_id=task).exists())


# --- bulk annotations, predictions -----------------------------------------------------------------

def test_bulk_annotations_create_and_delete(owner, project, world):
    created = owner("post", "/api/annotations/bulk/", {"project": project["id"], "result": ocr_result(),
                                                        "selectedItems": {"all": False,
                                                                          "included": project["task_ids"][:3]}})
    assert created.status_code == 201, created.content
    ids = [row["id"] for row in created.json()]
    assert len(ids) == 3
    labeled = in_org_a(world, lambda: Task.objects.filter(project_id=project["id"], is_labeled=True).count())
    assert labeled == 3
    deleted = owner("post", "/api/annotations/bulk-delete/", {"project": project["id"], "ids": ids[:2]})
    assert deleted.json() == {"deleted_count": 2}
    assert in_org_a(world, lambda: Task.objects.filter(project_id=project["id"], is_labeled=True).count()) == 1


def test_bulk_annotation_with_an_invalid_result_creates_nothing(owner, project, world):
    bad = ocr_result(x=99)
    response = owner("post", "/api/annotations/bulk/", {"tasks": project["task_ids"], "result": bad})
    assert response.status_code == 400 and "result" in response.json()["validation_errors"]
    assert not in_org_a(world, lambda: Annotation.objects.filter(project_id=project["id"]).exists())


def test_predictions_import_and_model_versions(owner, project, world):
    ids = project["task_ids"]
    predictions = [{"task": ids[0], "result": ocr_result("p"), "score": 0.8, "model_version": "tess-5"},
                   {"task": ids[1], "result": ocr_result("p"), "model_version": "tess-5"},
                   {"task": ids[1], "result": ocr_result("q"), "model_version": "paddle-2"}]
    response = owner("post", f"/api/projects/{project['id']}/import/predictions", predictions)
    assert response.status_code == 201 and response.json() == {"created": 3}
    assert owner("get", f"/api/tasks/{ids[1]}").json()["total_predictions"] == 2
    versions = owner("get", f"/api/projects/{project['id']}/model-versions").json()
    assert versions == {"paddle-2": 1, "tess-5": 2}


def test_a_bad_prediction_rejects_the_whole_import(owner, project, world):
    ids = project["task_ids"]
    response = owner("post", f"/api/projects/{project['id']}/import/predictions",
                     [{"task": ids[0], "result": ocr_result("p")}, {"task": 999999, "result": ocr_result("p")},
                      {"task": ids[1], "result": "nope"}])
    assert response.status_code == 400
    errors = response.json()["validation_errors"]
    assert "predictions[2].result" in errors
    assert not in_org_a(world, lambda: Prediction.objects.filter(project_id=project["id"]).exists())
    unknown_task = owner("post", f"/api/projects/{project['id']}/import/predictions",
                         [{"task": 999999, "result": ocr_result("p")}])
    assert "task" in unknown_task.json()["validation_errors"]


def test_history_survives_in_the_project_until_the_project_goes(owner, project, world):
    task_id = project["task_ids"][0]
    owner("post", f"/api/tasks/{task_id}/annotations", {"result": ocr_result()})
    assert in_org_a(world, lambda: AnnotationHistory.objects.filter(project_id=project["id"]).count()) == 1
    assert owner("delete", f"/api/projects/{project['id']}").status_code == 204
    assert not in_org_a(world, lambda: AnnotationHistory.objects.filter(project_id=project["id"]).exists())


def test_bulk_assignment_follows_data_manager_filters(owner, world, project):
    filters = {"conjunction": "and", "items": [
        {"filter": "filter:tasks:id", "operator": "greater", "type": "Number", "value": project["task_ids"][1]}]}
    response = owner("post", f"/api/projects/{project['id']}/tasks/assignees",
                     {"type": "AN", "users": [world.annotator_a.user.pk], "filters": filters,
                      "selectedItems": {"all": True, "excluded": []}})
    assert response.status_code == 201 and response.json()["assignments"] == 2
    assigned = in_org_a(world, lambda: sorted(TaskAssignment.objects.filter(
        task__project_id=project["id"]).values_list("task_id", flat=True)))
    assert assigned == project["task_ids"][2:]
    bad = owner("post", f"/api/projects/{project['id']}/tasks/assignees",
                {"type": "AN", "users": [world.annotator_a.user.pk], "selectedItems": {"all": True},
                 "filters": {"conjunction": "and", "items": [{"filter": "filter:tasks:nope", "operator": "equal",
                                                              "type": "Number", "value": 1}]}})
    assert bad.status_code == 400 and "filters" in bad.json()["validation_errors"]


def test_comments_on_a_draft_move_to_the_submitted_annotation(annotator, project, world):
    task_id = project["task_ids"][3]
    draft = annotator("post", f"/api/tasks/{task_id}/drafts", {"result": []}).json()
    comment = annotator("post", "/api/comments/", {"draft": draft["id"], "text": "Line 3 is smudged"}).json()
    annotation = annotator("post", f"/api/tasks/{task_id}/annotations", {"result": ocr_result()}).json()
    moved = annotator("get", f"/api/comments/{comment['id']}").json()
    assert (moved["annotation"], moved["draft"]) == (annotation["id"], None)
    assert annotator("get", f"/api/drafts/{draft['id']}").status_code == 404
