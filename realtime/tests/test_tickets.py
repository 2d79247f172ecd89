"""Tickets: what a script connects with. One use, short-lived, bound to its organization; a
long-lived token never goes in a URL."""

import time

import requests
from django_tenants.utils import tenant_context

from realtime.tests.client import open_socket, refusal_code, ticket_of
from realtime.tickets import ticket_issue


def test_a_ticket_opens_one_connection_once(world, live_server_url, lock_project):
    ticket = ticket_of(live_server_url, world.annotator_a.legacy_key)
    socket = open_socket(live_server_url, f"/o/org-a/ws/projects/{lock_project.pk}/", ticket=ticket)
    hello = socket.expect("hello")
    assert hello["project"] == lock_project.pk
    assert hello["you"]["email"] == "annotator@a.test"
    assert any(entry["user"]["email"] == "annotator@a.test" for entry in hello["presence"])
    socket.close()
    # Used: refused, whichever path.
    assert refusal_code(live_server_url, f"/o/org-a/ws/projects/{lock_project.pk}/", ticket=ticket) == 4401
    assert refusal_code(live_server_url, "/ws/user/", ticket=ticket) == 4401


def test_the_ticket_api_answers_a_ticket_with_its_lifetime(world, live_server_url):
    response = requests.post(f"{live_server_url}/api/realtime/ticket",
                             headers={"Authorization": f"Token {world.owner_a.legacy_key}"}, timeout=5)
    assert response.status_code == 201
    assert response.json()["expires_in"] == 60
    assert len(response.json()["ticket"]) >= 40
    anonymous = requests.post(f"{live_server_url}/api/realtime/ticket", timeout=5)
    assert anonymous.status_code in (401, 403)


def test_an_expired_ticket_is_refused(world, live_server_url):
    ticket = ticket_issue(user_id=world.owner_a.user.pk, organization_id=world.org_a.pk,
                          scopes=frozenset({"read"}), ttl_seconds=1)
    time.sleep(1.2)
    assert refusal_code(live_server_url, "/ws/user/", ticket=ticket) == 4401


def test_a_ticket_of_b_never_opens_a_stream_of_a(world, live_server_url, lock_project, in_schema):
    from labeling.models import Project

    ticket = ticket_of(live_server_url, world.owner_b.legacy_key)
    assert refusal_code(live_server_url, f"/o/org-a/ws/projects/{lock_project.pk}/", ticket=ticket) == 4403
    # On a bare path the ticket names the organization: B's projects only, even with A's project id.
    ticket = ticket_of(live_server_url, world.owner_b.legacy_key)
    assert refusal_code(live_server_url, f"/ws/projects/{lock_project.pk}/", ticket=ticket) == 4404
    b_project = in_schema(world.org_b, lambda: Project.objects.create(
        id=lock_project.pk, title="B's project with A's id", created_by=world.owner_b.user))
    try:
        socket = open_socket(live_server_url, f"/ws/projects/{lock_project.pk}/",
                             ticket=ticket_of(live_server_url, world.owner_b.legacy_key))
        hello = socket.expect("hello")
        assert hello["you"]["email"] == "owner@b.test"
        socket.close()
    finally:
        in_schema(world.org_b, b_project.delete)


def test_a_token_in_the_url_is_refused(world, live_server_url, lock_project):
    for parameter in ("token", "access_token"):
        path = f"/o/org-a/ws/projects/{lock_project.pk}/?{parameter}={world.owner_a.legacy_key}"
        assert refusal_code(live_server_url, path) == 4401
    # Even beside a good ticket.
    ticket = ticket_of(live_server_url, world.owner_a.legacy_key)
    path = f"/ws/projects/{lock_project.pk}/?token={world.owner_a.legacy_key}"
    assert refusal_code(live_server_url, path, ticket=ticket) == 4401


def test_a_ticket_keeps_the_scopes_of_its_token(world, live_server_url, lock_project, django_db_blocker):
    """A read-only token's ticket watches the project but takes no lock."""
    from accounts import services

    with django_db_blocker.unblock():
        pat, refresh = services.personal_access_token_create(user=world.annotator_a.user, organization=world.org_a,
                                                             scopes=["read"])
    access = requests.post(f"{live_server_url}/api/token/refresh/", json={"refresh": refresh}, timeout=5).json()
    response = requests.post(f"{live_server_url}/api/realtime/ticket",
                             headers={"Authorization": f"Bearer {access['access']}"}, timeout=5)
    assert response.status_code == 201, response.text
    socket = open_socket(live_server_url, f"/ws/projects/{lock_project.pk}/", ticket=response.json()["ticket"])
    socket.expect("hello")
    socket.send("task.open", task=lock_project.task_ids[0])
    assert socket.expect("error")["code"] == "permission_denied"
    socket.close()
    with django_db_blocker.unblock(), tenant_context(world.org_a):
        from labeling.models import TaskLock

        assert not TaskLock.objects.filter(task_id=lock_project.task_ids[0]).exists()
    with django_db_blocker.unblock():
        pat.delete()
