"""A socket that stops talking is closed (4408) once REALTIME_IDLE_TIMEOUT_SECONDS pass, and what
it held is given back; one that pings stays."""

import time

import pytest
from django.db import connection

from conftest import _database_url_of, start_daphne
from realtime.tests.client import open_socket, ticket_of


@pytest.fixture(scope="module")
def impatient_server_url(world, django_db_blocker):
    """daphne on the test database that closes sockets silent for 1.5 s."""
    with django_db_blocker.unblock():
        url = _database_url_of(connection.settings_dict)
    server, base = start_daphne(url, extra_env={"REALTIME_IDLE_TIMEOUT_SECONDS": "1.5"})
    yield base
    server.terminate()
    server.wait(timeout=15)


def test_a_silent_socket_is_closed_and_its_lock_released(world, impatient_server_url, lock_project, stream):
    watcher = stream(world.manager_a)  # on the patient server
    talker = open_socket(impatient_server_url, f"/o/org-a/ws/projects/{lock_project.pk}/",
                         ticket=ticket_of(impatient_server_url, world.reviewer_a.legacy_key))
    silent = open_socket(impatient_server_url, f"/o/org-a/ws/projects/{lock_project.pk}/",
                         ticket=ticket_of(impatient_server_url, world.annotator_a.legacy_key))
    silent.expect("hello")
    silent.send("task.open", task=lock_project.task_ids[0])
    silent.expect("task.lock_granted")
    started = time.monotonic()
    for _ in range(5):
        time.sleep(0.5)
        talker.send("ping")
    assert silent.closed_with(within=0.1) == 4408
    assert time.monotonic() - started < 2.6
    assert watcher.expect("task.unlocked", task=lock_project.task_ids[0])["reason"] == "disconnected"
    talker.expect("pong")
    talker.close()
