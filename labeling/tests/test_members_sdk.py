"""The official SDK 2.x clients of project members, pauses and project roles against a real server.

No django_db mark: what these tests create is committed for the server to see, so each test
deletes what it made.
"""

import pytest
from django_tenants.utils import tenant_context
from label_studio_sdk.client import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from accounts.models import AuditEvent
from conftest import ocr_result
from labeling import services
from labeling.models import Project


@pytest.fixture
def sdk_project(world, django_db_blocker):
    """A committed project of org A's Owner with one task, deleted afterwards (members, roles and
    pauses go with it)."""
    with django_db_blocker.unblock(), tenant_context(world.org_a):
        project = services.project_create(user=world.owner_a.user, fields={"title": "SDK members project"})
        imported = services.tasks_import(project=project, user=world.owner_a.user,
                                         tasks=[{"data": {"ocr": "https://example.test/sdk.png"}}])
        project.sdk_task_id = imported.task_ids[0]
    yield project
    with django_db_blocker.unblock():
        AuditEvent.objects.filter(organization=world.org_a, action="project.role_changed",
                                  details__project=project.pk).delete()
        with tenant_context(world.org_a):
            Project.objects.filter(pk=project.pk).delete()


def test_sdk_project_members(world, live_server_url, sdk_project):
    client = LabelStudio(base_url=live_server_url, api_key=world.owner_a.legacy_key)
    reviewer, annotator = world.reviewer_a.user.pk, world.annotator_a.user.pk
    assert client.projects.members.add(sdk_project.pk, user=annotator).user == annotator
    client.projects.members.remove(sdk_project.pk, user=annotator)
    added = client.projects.members.bulk.post(sdk_project.pk, all_=False, included=[reviewer, annotator])
    assert added.assignments == 2 and added.skipped_user_ids == []
    members = list(client.projects.members.paginated.list(sdk_project.pk, page_size=2, implicit=False))
    assert sorted(m.email for m in members) == ["annotator@a.test", "reviewer@a.test"]
    assert all(m.implicit_member is False for m in members)
    removed = client.projects.members.bulk.delete(sdk_project.pk, all_=False, included=f"{reviewer},{annotator}")
    assert removed.unassignments == 2


def test_sdk_pauses_and_the_label_stream(world, live_server_url, sdk_project):
    client = LabelStudio(base_url=live_server_url, api_key=world.owner_a.legacy_key)
    annotator = world.annotator_a.user.pk
    client.projects.members.add(sdk_project.pk, user=annotator)
    labeler = LabelStudio(base_url=live_server_url, api_key=world.annotator_a.legacy_key)

    pause = client.projects.pauses.create(sdk_project.pk, annotator, reason="MANUAL", verbose_reason="Quality check")
    assert pause.user == annotator and pause.reason == "MANUAL" and pause.paused_by.id == world.owner_a.user.pk
    assert [p.id for p in client.projects.pauses.list(sdk_project.pk, annotator)] == [pause.id]
    assert client.projects.pauses.get(sdk_project.pk, annotator, pause.id).verbose_reason == "Quality check"
    changed = client.projects.pauses.update(sdk_project.pk, annotator, pause.id, verbose_reason="Back soon")
    assert changed.verbose_reason == "Back soon"
    task_id = sdk_project.sdk_task_id
    with pytest.raises(ApiError) as caught:
        labeler.annotations.create(task_id, result=ocr_result())
    assert caught.value.status_code == 409 and "Back soon" in str(caught.value.body)
    client.projects.pauses.delete(sdk_project.pk, annotator, pause.id)
    assert client.projects.pauses.list(sdk_project.pk, annotator) == []
    assert labeler.annotations.create(task_id, result=ocr_result()).completed_by == annotator

def test_sdk_project_roles(world, live_server_url, sdk_project):
    client = LabelStudio(base_url=live_server_url, api_key=world.owner_a.legacy_key)
    annotator = world.annotator_a.user.pk
    client.projects.members.add(sdk_project.pk, user=annotator)
    role = client.projects.roles.add(project=sdk_project.pk, user=annotator, role="RE")
    assert role.project == sdk_project.pk and role.user == annotator and role.role == "RE"
    assert [r.id for r in client.projects.roles.get(sdk_project.pk)] == [role.id]
    own = LabelStudio(base_url=live_server_url, api_key=world.annotator_a.legacy_key).projects.roles.list(
        ids=[sdk_project.pk])
    assert [(r.id, r.role) for r in own] == [(role.id, "RE")]
    client.projects.roles.remove(role.id)
    assert client.projects.roles.get(sdk_project.pk) == []
    with pytest.raises(ApiError) as caught:
        client.projects.roles.add(project=sdk_project.pk, user=annotator, role="DI")
    assert caught.value.status_code == 400
