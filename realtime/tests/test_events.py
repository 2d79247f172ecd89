"""Events of the labeling work, as the people on a project see them: published after commit
only, with the counts a task table needs, and never outside their organization."""

import pytest
from django.db import transaction
from django_tenants.utils import tenant_context

from conftest import ocr_result
from realtime import events
from realtime.tests.client import api_call, open_socket, ticket_of

WITHIN = 1.0


class Rollback(Exception):
    pass


def _task(world, task_id, django_db_blocker):
    from labeling.models import Task

    with django_db_blocker.unblock(), tenant_context(world.org_a):
        return Task.objects.select_related("project").get(pk=task_id)


def test_a_rolled_back_annotation_publishes_nothing(world, lock_project, stream, django_db_blocker):
    from labeling import services

    watcher = stream(world.manager_a)
    task = _task(world, lock_project.task_ids[0], django_db_blocker)
    with django_db_blocker.unblock(), tenant_context(world.org_a), pytest.raises(Rollback), transaction.atomic():
        services.annotation_create(task=task, user=world.owner_a.user, result=ocr_result())
        raise Rollback
    events.flush()
    watcher.quiet("annotation.created", within=0.5)
    with django_db_blocker.unblock(), tenant_context(world.org_a):
        annotation = services.annotation_create(task=task, user=world.owner_a.user, result=ocr_result())
    assert watcher.expect("annotation.created", within=WITHIN)["annotation"] == annotation.pk


def test_annotation_update_delete_and_bulk_changes(world, live_server_url, lock_project, stream):
    first, second, third = lock_project.task_ids
    watcher = stream(world.annotator_a)
    created = api_call(live_server_url, world.manager_a, "post", f"/api/tasks/{first}/annotations",
                       {"result": ocr_result()}).json()
    watcher.expect("annotation.created", annotation=created["id"], within=WITHIN)

    response = api_call(live_server_url, world.manager_a, "patch", f"/api/annotations/{created['id']}",
                        {"result": ocr_result(text="Fixed")})
    assert response.status_code == 200, response.text
    updated = watcher.expect("annotation.updated", annotation=created["id"], within=WITHIN)
    assert updated["user"]["id"] == world.manager_a.user.pk

    response = api_call(live_server_url, world.manager_a, "delete", f"/api/annotations/{created['id']}")
    assert response.status_code == 204, response.text
    deleted = watcher.expect("annotation.deleted", within=WITHIN)
    assert (deleted["annotations"], deleted["tasks"]) == ([created["id"]], [first])
    assert deleted["task_counts"][str(first)]["total_annotations"] == 0

    response = api_call(live_server_url, world.manager_a, "post", "/api/annotations/bulk",
                        {"tasks": [second, third], "result": ocr_result()})
    assert response.status_code in (200, 201), response.text
    bulk = watcher.expect("annotation.bulk_created", within=WITHIN)
    assert bulk["tasks"] == [second, third] and len(bulk["annotations"]) == 2
    assert bulk["task_counts"][str(second)]["is_labeled"] is True

    response = api_call(live_server_url, world.manager_a, "post", "/api/annotations/bulk-delete",
                        {"project": lock_project.pk, "ids": bulk["annotations"]})
    assert response.status_code == 200, response.text
    deleted = watcher.expect("annotation.deleted", within=WITHIN)
    assert sorted(deleted["annotations"]) == sorted(bulk["annotations"]) and deleted["tasks"] == [second, third]


def test_a_review_is_news(world, live_server_url, lock_project, stream):
    watcher = stream(world.annotator_a)
    annotation = api_call(live_server_url, world.annotator_a, "post", f"/api/tasks/{lock_project.task_ids[0]}"
                          "/annotations", {"result": ocr_result()}).json()
    response = api_call(live_server_url, world.reviewer_a, "post", "/api/annotation-reviews/",
                        {"annotation": annotation["id"], "accepted": True})
    assert response.status_code == 201, response.text
    review = watcher.expect("review.created", within=WITHIN)
    assert (review["review"], review["annotation"], review["task"], review["accepted"]) == (
        response.json()["id"], annotation["id"], lock_project.task_ids[0], True)
    assert review["user"]["id"] == world.reviewer_a.user.pk


def test_export_and_import_jobs_report_progress(world, live_server_url, lock_project, stream, django_db_blocker,
                                                monkeypatch):
    from labeling import services
    from labeling.models import ImportJob
    from labeling.tasks import run_import_job

    watcher = stream(world.annotator_a)
    response = api_call(live_server_url, world.manager_a, "post", f"/api/projects/{lock_project.pk}/exports", {})
    assert response.status_code == 201, response.text
    snapshot = response.json()["id"]
    started = watcher.expect("job.progress", within=WITHIN, status="in_progress")
    assert (started["job"], started["done"], started["total"], started["percent"]) == (
        {"kind": "export", "id": snapshot}, 0, 3, 0.0)
    done = watcher.expect("job.progress", within=WITHIN, status="completed")
    assert (done["done"], done["total"], done["percent"]) == (3, 3, 100.0)

    # The job runs here rather than on Celery (test_two_processes.py has a worker run one).
    monkeypatch.setattr(run_import_job, "delay", lambda *args: None)
    with django_db_blocker.unblock(), tenant_context(world.org_a):
        job = services.import_job_create(
            project=lock_project, tasks=[{"data": {"ocr": "https://example.test/rt/new.png"}}] * 2,
            user=world.owner_a.user, found_formats={}, data_columns=["ocr"])
        services.import_job_run(job=ImportJob.objects.select_related("project", "created_by").get(pk=job.pk))
    started = watcher.expect("job.progress", within=WITHIN, job={"kind": "import", "id": job.pk})
    assert (started["status"], started["done"], started["total"]) == ("in_progress", 0, 2)
    done = watcher.expect("job.progress", within=WITHIN, job={"kind": "import", "id": job.pk})
    assert (done["status"], done["done"], done["percent"]) == ("completed", 2, 100.0)


def test_events_of_a_never_reach_b_even_on_the_same_project_id(world, live_server_url, lock_project, stream,
                                                               in_schema):
    from labeling import services
    from labeling.models import Project, Task

    def b_project():
        project = Project.objects.create(id=lock_project.pk, title="B's twin", created_by=world.owner_b.user,
                                         label_config=lock_project.label_config)
        services.tasks_import(project=project, user=world.owner_b.user,
                              tasks=[{"data": {"ocr": f"https://example.test/b/{n}.png"}} for n in range(3)])
        return project, list(Task.objects.filter(project=project).order_by("id").values_list("pk", flat=True))

    twin, b_tasks = in_schema(world.org_b, b_project)
    try:
        b_socket = open_socket(live_server_url, f"/ws/projects/{twin.pk}/",
                               ticket=ticket_of(live_server_url, world.owner_b.legacy_key))
        b_socket.expect("hello")
        a_annotator, a_watcher = stream(world.annotator_a), stream(world.manager_a)
        a_annotator.send("task.open", task=lock_project.task_ids[0])
        a_watcher.expect("task.locked", within=WITHIN)
        api_call(live_server_url, world.annotator_a, "post", f"/api/tasks/{lock_project.task_ids[0]}/annotations",
                 {"result": ocr_result()})
        a_watcher.expect("annotation.created", within=WITHIN)
        # B's socket heard none of it, yet it is live: B's own lock reaches it.
        b_socket.send("task.open", task=b_tasks[0])
        b_socket.expect("task.lock_granted")
        b_locked = b_socket.expect("task.locked", within=WITHIN)
        assert b_locked["user"]["email"] == "owner@b.test"
        assert [event["type"] for event in b_socket.unread] == []
        a_watcher.quiet("task.locked", within=0.3, task=b_tasks[0])
        b_socket.close()
    finally:
        in_schema(world.org_b, lambda: services.project_delete(project=twin))


def test_tasks_imported_and_deleted_are_news(world, live_server_url, lock_project, stream):
    watcher = stream(world.annotator_a)
    response = api_call(live_server_url, world.manager_a, "post", f"/api/projects/{lock_project.pk}/import",
                        [{"ocr": f"https://example.test/new/{n}.png"} for n in range(4)])
    assert response.status_code == 201, response.text
    assert watcher.expect("tasks.created", within=WITHIN)["count"] == 4
    task_id = response.json().get("task_ids", [None])[0] or max(
        task["id"] for task in api_call(live_server_url, world.manager_a, "get",
                                        f"/api/tasks/?project={lock_project.pk}&page_size=100").json()["tasks"])
    response = api_call(live_server_url, world.manager_a, "delete", f"/api/tasks/{task_id}")
    assert response.status_code == 204, response.text
    assert watcher.expect("tasks.deleted", within=WITHIN)["count"] == 1
