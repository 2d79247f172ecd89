"""Browsers connect with their session cookie, under the rules HTTP applies to that session:
the site's own origin, an active membership, a project they may see, single sign-on's scoping
and the organization's session policy."""

import time

import pytest
from django.test import override_settings

from accounts.session_policy import SESSION_ACTIVE_KEY, SESSION_STARTED_KEY
from realtime.auth import origin_allowed
from realtime.tests.client import open_socket, refusal_code
from sso.sessions import SSO_ORGANIZATION_KEY
from tenants.resolver import SESSION_ORGANIZATION_KEY


def test_a_session_connects_from_the_site_itself_only(world, live_server_url, lock_project, session_of):
    session = session_of(world.annotator_a.user)
    path = f"/o/org-a/ws/projects/{lock_project.pk}/"
    socket = open_socket(live_server_url, path, session_key=session)
    assert socket.expect("hello")["you"]["email"] == "annotator@a.test"
    socket.close()
    assert refusal_code(live_server_url, path, session_key=session, origin="https://evil.example") == 4403
    assert refusal_code(live_server_url, path, session_key=session,
                        origin=live_server_url.replace("127.0.0.1", "localhost")) == 4403


@override_settings(CSRF_TRUSTED_ORIGINS=["https://labels.example.com", "https://*.example.org"])
def test_trusted_origins_are_allowed():
    assert origin_allowed(origin="http://127.0.0.1:8000", host="127.0.0.1:8000")
    assert origin_allowed(origin="https://labels.example.com", host="internal:8000")
    assert origin_allowed(origin="https://team.example.org", host="internal:8000")
    assert not origin_allowed(origin="http://labels.example.com", host="internal:8000")
    assert not origin_allowed(origin="https://labels.example.com.evil.test", host="internal:8000")
    assert not origin_allowed(origin=None, host="127.0.0.1:8000")
    assert not origin_allowed(origin="null", host="127.0.0.1:8000")


def test_no_session_or_an_ended_one_is_not_authenticated(world, live_server_url, lock_project):
    path = f"/o/org-a/ws/projects/{lock_project.pk}/"
    assert refusal_code(live_server_url, path) == 4401
    assert refusal_code(live_server_url, path, session_key="not-a-session-key") == 4401


def test_a_project_the_annotator_cannot_see_is_refused(world, live_server_url, lock_project, session_of,
                                                       in_schema):
    from labeling.models import Project

    hidden = in_schema(world.org_a, lambda: Project.objects.create(title="Owner only", created_by=world.owner_a.user))
    try:
        session = session_of(world.annotator_a.user)
        assert refusal_code(live_server_url, f"/o/org-a/ws/projects/{hidden.pk}/", session_key=session) == 4403
        assert refusal_code(live_server_url, "/o/org-a/ws/projects/999999/", session_key=session) == 4404
        assert refusal_code(live_server_url, "/o/no-such-org/ws/user/", session_key=session) == 4404
        owner = session_of(world.owner_a.user)
        socket = open_socket(live_server_url, f"/o/org-a/ws/projects/{hidden.pk}/", session_key=owner)
        socket.expect("hello")
        socket.close()
    finally:
        in_schema(world.org_a, hidden.delete)


def test_another_organizations_session_is_refused(world, live_server_url, lock_project, session_of):
    session = session_of(world.owner_b.user)
    assert refusal_code(live_server_url, f"/o/org-a/ws/projects/{lock_project.pk}/", session_key=session) == 4403
    assert refusal_code(live_server_url, "/o/org-a/ws/user/", session_key=session) == 4403


def test_a_bare_path_follows_the_sessions_organization(world, live_server_url, lock_project, session_of):
    session = session_of(world.annotator_a.user, **{SESSION_ORGANIZATION_KEY: world.org_a.pk})
    socket = open_socket(live_server_url, f"/ws/projects/{lock_project.pk}/", session_key=session)
    assert socket.expect("hello")["project"] == lock_project.pk
    socket.close()
    # B's owner's session on B: A's project id is no project there.
    session = session_of(world.owner_b.user, **{SESSION_ORGANIZATION_KEY: world.org_b.pk})
    assert refusal_code(live_server_url, f"/ws/projects/{lock_project.pk}/", session_key=session) == 4404


def test_a_session_made_by_another_organizations_sso_is_refused(world, live_server_url, lock_project, session_of):
    session = session_of(world.annotator_a.user, **{SSO_ORGANIZATION_KEY: world.org_b.pk})
    assert refusal_code(live_server_url, f"/o/org-a/ws/projects/{lock_project.pk}/", session_key=session) == 4403


@pytest.fixture
def a_is_sso_only(world, django_db_blocker):
    from sso.models import SamlSettings
    from sso.selectors import sso_only_changed

    with django_db_blocker.unblock():
        existing = SamlSettings.objects.filter(organization=world.org_a).first()
        before = existing.sso_only if existing else None
        SamlSettings.objects.update_or_create(organization=world.org_a, defaults={"sso_only": True})
        sso_only_changed(world.org_a.pk)
    yield
    with django_db_blocker.unblock():
        if before is None:
            SamlSettings.objects.filter(organization=world.org_a).delete()
        else:
            SamlSettings.objects.filter(organization=world.org_a).update(sso_only=before)
        sso_only_changed(world.org_a.pk)


def test_an_sso_only_organization_takes_only_its_own_sso_sessions(world, live_server_url, lock_project,
                                                                  session_of, a_is_sso_only):
    path = f"/o/org-a/ws/projects/{lock_project.pk}/"
    assert refusal_code(live_server_url, path, session_key=session_of(world.annotator_a.user)) == 4403
    made_by_a = session_of(world.annotator_a.user, **{SSO_ORGANIZATION_KEY: world.org_a.pk})
    socket = open_socket(live_server_url, path, session_key=made_by_a)
    socket.expect("hello")
    socket.close()


def test_the_session_policy_applies_at_connect(world, live_server_url, lock_project, session_of):
    long_ago = time.time() - 60 * 24 * 3600  # past the default 14 days
    session = session_of(world.annotator_a.user, **{SESSION_STARTED_KEY: long_ago, SESSION_ACTIVE_KEY: time.time()})
    assert refusal_code(live_server_url, f"/o/org-a/ws/projects/{lock_project.pk}/", session_key=session) == 4401
