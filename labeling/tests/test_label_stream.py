"""The label stream: /next hands out tasks under overlap, skip-queue and lock rules, under concurrency."""

import threading

import pytest
from django.db import connections
from django_tenants.utils import tenant_context

from accounts import services as accounts
from accounts.models import Role
from conftest import Member, ocr_result
from labeling import services
from labeling.models import Project, ProjectMember, TaskLock
from labeling.tests.project_access import add_project_members


@pytest.fixture
def owner(world, api):
    def call(method, path, json=None, member=None):
        token = (member or world.owner_a).legacy_key
        return api.call(method, f"/o/org-a{path}", token=token, json=json)

    return call


@pytest.mark.django_db
def test_next_reserves_a_task_and_is_idempotent_until_annotated(world, owner):
    project = owner("post", "/api/projects/", {"title": "Stream"}).json()
    owner("post", f"/api/projects/{project['id']}/import", [{"ocr": f"{n}.png"} for n in range(3)])
    add_project_members(world, project["id"], world.annotator_a)

    first = owner("get", f"/api/projects/{project['id']}/next").json()
    assert owner("get", f"/api/projects/{project['id']}/next").json()["id"] == first["id"], "same task until done"
    other = owner("get", f"/api/projects/{project['id']}/next", member=world.annotator_a).json()
    assert other["id"] != first["id"], "overlap 1: a reserved task goes to nobody else"

    owner("post", f"/api/tasks/{first['id']}/annotations/", {"result": ocr_result()})
    second = owner("get", f"/api/projects/{project['id']}/next").json()
    assert second["id"] not in (first["id"], other["id"])
    owner("post", f"/api/tasks/{second['id']}/annotations/", {"result": ocr_result()})
    done = owner("get", f"/api/projects/{project['id']}/next")
    assert done.status_code == 404 and "No more tasks" in done.json()["detail"]


@pytest.mark.django_db
def test_overlap_two_gives_a_task_to_two_annotators_but_not_three(world, owner):
    project = owner("post", "/api/projects/", {"title": "Overlap", "maximum_annotations": 2}).json()
    owner("post", f"/api/projects/{project['id']}/import", [{"ocr": "only.png"}])
    add_project_members(world, project["id"], world.annotator_a)
    assert owner("get", f"/api/projects/{project['id']}/next").status_code == 200
    assert owner("get", f"/api/projects/{project['id']}/next", member=world.annotator_a).status_code == 200
    user = accounts.user_create(email="third@a.test", password="Third-annotator-1")
    accounts.membership_set(user=user, organization=world.org_a, role=Role.ANNOTATOR)
    add_project_members(world, project["id"], user)
    third = Member(user=user, legacy_key=accounts.legacy_token_issue(user=user, organization=world.org_a), pat="")
    assert owner("get", f"/api/projects/{project['id']}/next", member=third).status_code == 404


@pytest.mark.django_db
def test_skip_queue_requeue_for_others(world, owner):
    project = owner("post", "/api/projects/", {"title": "Skips", "skip_queue": "REQUEUE_FOR_OTHERS"}).json()
    owner("post", f"/api/projects/{project['id']}/import", [{"ocr": "a.png"}])
    add_project_members(world, project["id"], world.annotator_a)
    task = owner("get", f"/api/projects/{project['id']}/next").json()
    owner("post", f"/api/tasks/{task['id']}/annotations/", {"result": [], "was_cancelled": True})
    assert owner("get", f"/api/projects/{project['id']}/next").status_code == 404, "not back to who skipped it"
    again = owner("get", f"/api/projects/{project['id']}/next", member=world.annotator_a)
    assert again.status_code == 200 and again.json()["id"] == task["id"]


def test_fifty_annotators_never_receive_the_same_task(world, django_db_blocker):
    """50 threads, each a real annotator with its own connection, drain a 1,000-task project."""
    with django_db_blocker.unblock(), tenant_context(world.org_a):
        project = services.project_create(user=world.owner_a.user, fields={"title": "Crowd"})
        services.tasks_import(project=project, user=world.owner_a.user,
                              tasks=[{"data": {"ocr": f"{n}.png"}} for n in range(1000)])
        annotators = []
        for n in range(50):
            user = accounts.user_create(email=f"crowd{n}@a.test", password="Crowd-annotator-1")
            accounts.membership_set(user=user, organization=world.org_a, role=Role.ANNOTATOR)
            annotators.append(user)
        ProjectMember.objects.bulk_create([ProjectMember(project=project, user=user) for user in annotators])

    received: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(annotators))

    def annotate(user):
        try:
            with django_db_blocker.unblock(), tenant_context(world.org_a):
                start.wait()
                mine = received.setdefault(user.pk, [])
                project_row = Project.objects.get(pk=project.pk)
                while (task := services.next_task_for(project=project_row, user=user)) is not None:
                    mine.append(task.pk)
                    services.annotation_create(task=task, user=user, result=ocr_result())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=annotate, args=(user,)) for user in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors, errors[:3]
        handed_out = [task_id for tasks in received.values() for task_id in tasks]
        assert len(handed_out) == len(set(handed_out)) == 1000, "every task exactly once"
        assert sum(1 for tasks in received.values() if tasks) > 10, "the work was shared"
    finally:
        with django_db_blocker.unblock(), tenant_context(world.org_a):
            services.project_delete(project=Project.objects.get(pk=project.pk))
            TaskLock.objects.filter(user__in=annotators).delete()
