"""What no event announces still ends a socket: every REALTIME_ACCESS_RECHECK_SECONDS an open
socket checks that its person may still use it. Removed from the project (not the organization):
the project stream closes with 4403 and the person's own stream stays; logged out: 4401."""

import pytest
from django.db import connection

from conftest import _database_url_of, start_daphne
from realtime.tests.client import open_socket, ticket_of

RECHECK_SECONDS = 0.5
PROMPTLY = 3 * RECHECK_SECONDS + 1


@pytest.fixture(scope="module")
def rechecking_server_url(world, django_db_blocker):
    with django_db_blocker.unblock():
        url = _database_url_of(connection.settings_dict)
    server, base = start_daphne(url, extra_env={"REALTIME_ACCESS_RECHECK_SECONDS": str(RECHECK_SECONDS)})
    yield base
    server.terminate()
    server.wait(timeout=15)


def test_removed_from_the_project_closes_its_stream_only(world, rechecking_server_url, lock_project, stream,
                                                         in_schema):
    from labeling.models import ProjectMember

    base = rechecking_server_url
    watcher = stream(world.manager_a)
    project_socket = open_socket(base, f"/o/org-a/ws/projects/{lock_project.pk}/",
                                 ticket=ticket_of(base, world.annotator_a.legacy_key))
    project_socket.expect("hello")
    project_socket.send("task.open", task=lock_project.task_ids[0])
    project_socket.expect("task.lock_granted")
    user_socket = open_socket(base, "/ws/user/", ticket=ticket_of(base, world.annotator_a.legacy_key))
    user_socket.expect("hello")

    in_schema(world.org_a, lambda: ProjectMember.objects.filter(
        project=lock_project, user=world.annotator_a.user).delete())
    try:
        assert project_socket.closed_with(within=PROMPTLY) == 4403
        assert watcher.expect("task.unlocked", task=lock_project.task_ids[0], within=2)["reason"] == "disconnected"
        user_socket.send("ping")
        user_socket.expect("pong", within=2)
    finally:
        in_schema(world.org_a, lambda: ProjectMember.objects.get_or_create(
            project=lock_project, user=world.annotator_a.user))
        user_socket.close()


def test_a_logout_closes_the_sessions_sockets(world, rechecking_server_url, lock_project, session_of,
                                              django_db_blocker):
    from django.contrib.sessions.backends.db import SessionStore

    session_key = session_of(world.annotator_a.user)
    kept_key = session_of(world.reviewer_a.user)
    path = f"/o/org-a/ws/projects/{lock_project.pk}/"
    ended = open_socket(rechecking_server_url, path, session_key=session_key)
    ended.expect("hello")
    kept = open_socket(rechecking_server_url, path, session_key=kept_key)
    kept.expect("hello")
    with django_db_blocker.unblock():
        SessionStore(session_key).delete()  # what logging out does
    assert ended.closed_with(within=PROMPTLY) == 4401
    kept.send("ping")
    kept.expect("pong", within=2)
    kept.close()
