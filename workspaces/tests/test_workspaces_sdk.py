"""The official SDK 2.x workspaces client against a real server (daphne on the test database).

No django_db mark: what these tests create is committed for the server to see, so each test
deletes what it made.
"""

import pytest
from django_tenants.utils import tenant_context
from label_studio_sdk.client import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from labeling import services as labeling_services
from labeling.models import Project
from workspaces.models import Workspace


@pytest.fixture
def sdk_project(world, django_db_blocker):
    """A committed project of org A's Owner, deleted afterwards."""
    with django_db_blocker.unblock(), tenant_context(world.org_a):
        project = labeling_services.project_create(user=world.owner_a.user, fields={"title": "SDK workspace project"})
    yield project
    with django_db_blocker.unblock(), tenant_context(world.org_a):
        Project.objects.filter(pk=project.pk).delete()


def test_sdk_workspaces_members_and_projects(world, live_server_url, sdk_project, django_db_blocker):
    client = LabelStudio(base_url=live_server_url, api_key=world.owner_a.legacy_key)
    reviewer, annotator = world.reviewer_a.user.pk, world.annotator_a.user.pk
    workspace = client.workspaces.create(title="SDK team", description="Made by the SDK", color="#00FF00")
    try:
        assert workspace.title == "SDK team" and workspace.created_by == world.owner_a.user.pk
        assert workspace.id in [w.id for w in client.workspaces.list()]
        assert client.workspaces.get(workspace.id).projects_count == 0
        updated = client.workspaces.update(workspace.id, title="SDK scribes", is_archived=True)
        assert updated.title == "SDK scribes" and updated.is_archived
        assert workspace.id in [w.id for w in client.workspaces.list(is_archived=True)]
        assert workspace.id not in [w.id for w in client.workspaces.list(is_archived=False)]

        client.workspaces.members.create(workspace.id, user=annotator)
        assert {m.user.email for m in client.workspaces.members.list(workspace.id)} == {
            "owner@a.test", "annotator@a.test"}
        client.workspaces.members.delete(workspace.id, user_id=annotator)
        assert client.workspaces.members.bulk.post(workspace.id, all_=False,
                                                   included=[reviewer, annotator]).assignments == 2
        # The pager reads page after page until one is empty.
        pager = client.workspaces.members.paginated.list(workspace.id, page_size=2)
        assert sorted(user.email for user in pager) == ["annotator@a.test", "owner@a.test", "reviewer@a.test"]
        removed = client.workspaces.members.bulk.delete(workspace.id, all_=False, included=f"{reviewer},{annotator}")
        assert removed.unassignments == 2

        client.workspaces.projects.add(workspace.id, project=sdk_project.pk)
        assert [p.id for p in client.workspaces.projects.list(workspace.id)] == [sdk_project.pk]
        client.workspaces.projects.remove(workspace.id, project=sdk_project.pk)
        assert client.workspaces.projects.list(workspace.id) == []

        outsider = LabelStudio(base_url=live_server_url, api_key=world.owner_b.legacy_key)
        with pytest.raises(ApiError) as caught:
            outsider.workspaces.get(workspace.id)
        assert caught.value.status_code == 404

        client.workspaces.delete(workspace.id)
        with pytest.raises(ApiError) as caught:
            client.workspaces.get(workspace.id)
        assert caught.value.status_code == 404
    finally:
        with django_db_blocker.unblock(), tenant_context(world.org_a):
            Workspace.objects.filter(pk=workspace.id).delete()
