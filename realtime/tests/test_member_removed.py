"""A member removed or deactivated while connected hears `member.removed` on every stream they
have open in that organization, and those sockets close with 4403 at once; the locks they held
through them are given back."""

import uuid

import pytest
import requests

from conftest import _member
from realtime.tests.client import api_call, open_socket, ticket_of

PROMPTLY = 2.0


@pytest.fixture
def leaver(world, lock_project, django_db_blocker):
    """An annotator of org A, member of the lock project, about to leave."""
    from django_tenants.utils import tenant_context

    from labeling.models import ProjectMember

    with django_db_blocker.unblock():
        member = _member(email=f"leaver-{uuid.uuid4().hex[:8]}@a.test", organization=world.org_a, role="AN")
        with tenant_context(world.org_a):
            ProjectMember.objects.create(project=lock_project, user=member.user)
    yield member
    # Gone for good: org A's member lists are the world's again (other suites count them).
    with django_db_blocker.unblock():
        from sso.models import ScimUser

        ScimUser.objects.filter(user=member.user).delete()
        member.user.delete()


def _connected(base, member, project, watcher):
    project_socket = open_socket(base, f"/o/org-a/ws/projects/{project.pk}/",
                                 ticket=ticket_of(base, member.legacy_key))
    project_socket.expect("hello")
    project_socket.send("task.open", task=project.task_ids[0])
    project_socket.expect("task.lock_granted")
    watcher.expect("task.locked", task=project.task_ids[0])
    user_socket = open_socket(base, "/ws/user/", ticket=ticket_of(base, member.legacy_key))
    assert user_socket.expect("hello")["project"] is None
    return project_socket, user_socket


def _assert_put_out(member, sockets, watcher, task_id):
    for socket in sockets:
        assert socket.closed_with(within=PROMPTLY) == 4403
        assert socket.expect("member.removed", within=0)["user"]["id"] == member.user.pk
    assert watcher.expect("task.unlocked", task=task_id, within=PROMPTLY)["reason"] == "disconnected"


def test_removed_through_the_api(world, live_server_url, lock_project, stream, leaver):
    watcher = stream(world.manager_a)
    sockets = _connected(live_server_url, leaver, lock_project, watcher)
    response = api_call(live_server_url, world.owner_a, "delete",
                        f"/api/organizations/{world.org_a.pk}/memberships/{leaver.user.pk}")
    assert response.status_code == 204, response.text
    _assert_put_out(leaver, sockets, watcher, lock_project.task_ids[0])


def test_deactivated_by_a_role_change(world, live_server_url, lock_project, stream, leaver):
    watcher = stream(world.manager_a)
    sockets = _connected(live_server_url, leaver, lock_project, watcher)
    response = api_call(live_server_url, world.owner_a, "patch", f"/api/organizations/{world.org_a.pk}/memberships",
                        {"user_id": leaver.user.pk, "role": "DI"})
    assert response.status_code == 200, response.text
    _assert_put_out(leaver, sockets, watcher, lock_project.task_ids[0])


def test_a_role_change_between_active_roles_keeps_the_sockets(world, live_server_url, lock_project, stream, leaver):
    watcher = stream(world.manager_a)
    project_socket, user_socket = _connected(live_server_url, leaver, lock_project, watcher)
    response = api_call(live_server_url, world.owner_a, "patch", f"/api/organizations/{world.org_a.pk}/memberships",
                        {"user_id": leaver.user.pk, "role": "RE"})
    assert response.status_code == 200, response.text
    project_socket.send("ping")
    project_socket.expect("pong")
    user_socket.quiet("member.removed", within=0.3)


def test_deactivated_and_deleted_by_scim(world, live_server_url, lock_project, stream, leaver, django_db_blocker):
    from sso import scim
    from sso.services import scim_token_create

    with django_db_blocker.unblock():
        scim_user = scim.scim_user_create(organization=world.org_a, payload={
            "userName": leaver.user.email, "emails": [{"value": leaver.user.email, "primary": True}]})
        _, token = scim_token_create(organization=world.org_a, actor=world.owner_a.user, label="realtime test")
    watcher = stream(world.manager_a)
    sockets = _connected(live_server_url, leaver, lock_project, watcher)
    response = requests.patch(
        f"{live_server_url}/o/org-a/scim/v2/Users/{scim_user.pk}", timeout=10,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
        json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations": [{"op": "replace", "value": {"active": False}}]})
    assert response.status_code == 200, response.text
    _assert_put_out(leaver, sockets, watcher, lock_project.task_ids[0])

    # Reactivated, connected again, then deleted by the IdP.
    response = requests.patch(
        f"{live_server_url}/o/org-a/scim/v2/Users/{scim_user.pk}", timeout=10,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
        json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations": [{"op": "replace", "value": {"active": True}}]})
    assert response.status_code == 200, response.text
    with django_db_blocker.unblock():
        from accounts import services

        leaver.legacy_key = services.legacy_token_issue(user=leaver.user, organization=world.org_a)
    sockets = _connected(live_server_url, leaver, lock_project, watcher)
    response = requests.delete(f"{live_server_url}/o/org-a/scim/v2/Users/{scim_user.pk}", timeout=10,
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 204, response.text
    _assert_put_out(leaver, sockets, watcher, lock_project.task_ids[0])
