"""Fixtures of the realtime tests: committed projects served by real daphne processes.

These tests talk to servers in other processes, so what they set up is committed (no django_db
mark) and removed by the fixture that made it.
"""

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from realtime.tests.client import open_socket, ticket_of


@pytest.fixture
def lock_project(world, django_db_blocker):
    """A project of org A with three tasks (overlap 1); A's owner, manager, reviewer and
    annotator are its members. Deleted afterwards, with its locks and annotations."""
    from labeling import services
    from labeling.models import ProjectMember, Task

    with django_db_blocker.unblock(), tenant_context(world.org_a):
        project = services.project_create(user=world.owner_a.user, fields={"title": "Realtime locks"})
        services.tasks_import(project=project, user=world.owner_a.user,
                              tasks=[{"data": {"ocr": f"https://example.test/rt/{n}.png"}} for n in range(3)])
        for member in (world.manager_a, world.reviewer_a, world.annotator_a):
            ProjectMember.objects.create(project=project, user=member.user)
        project.task_ids = list(Task.objects.filter(project=project).order_by("id").values_list("pk", flat=True))
    yield project
    with django_db_blocker.unblock(), tenant_context(world.org_a):
        services.project_delete(project=project)


@pytest.fixture
def session_of(django_db_blocker):
    """`session_of(user, **extra)`: a logged-in browser session's key (extra keys stored in it)."""
    def login(user, **extra) -> str:
        with django_db_blocker.unblock():
            client = Client()
            client.force_login(user)
            session = client.session
            for name, value in extra.items():
                session[name] = value
            session.save()
            return session.session_key
    return login


@pytest.fixture
def in_schema(django_db_blocker):
    """`in_schema(organization, fn)`: fn() committed in the organization's schema."""
    def run(organization, function):
        with django_db_blocker.unblock(), tenant_context(organization):
            return function()
    return run


@pytest.fixture
def stream(world, live_server_url, lock_project):
    """`stream(member)`: a project socket of that member of org A, greeted already."""
    sockets = []

    def connect(member, *, base=live_server_url):
        socket = open_socket(base, f"/o/org-a/ws/projects/{lock_project.pk}/",
                             ticket=ticket_of(base, member.legacy_key, prefix="/o/org-a"))
        socket.hello = socket.expect("hello")
        sockets.append(socket)
        return socket

    yield connect
    for socket in sockets:
        socket.close()
