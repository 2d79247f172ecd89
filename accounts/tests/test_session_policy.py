"""The session policy: its API, and its enforcement on browser sessions with a controlled clock."""

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone

from accounts import session_policy
from accounts.access import denial_message
from accounts.models import AuditEvent, Membership, Role, SessionPolicy
from conftest import PASSWORD
from platform_core import clock

pytestmark = pytest.mark.django_db

POLICY = "/api/session-policy/"
ME_IN_A = "/o/org-a/api/current-user"
ME_IN_B = "/o/org-b/api/current-user"


@pytest.fixture
def moment(monkeypatch):
    """The clock of the session policy: `moment.advance(minutes=...)` moves it."""

    class Moment:
        now = timezone.now()

        def advance(self, **delta):
            self.now += timedelta(**delta)

    current = Moment()
    monkeypatch.setattr(clock, "now", lambda: current.now)
    return current


def _policy(organization, **minutes):
    SessionPolicy.objects.update_or_create(organization=organization, defaults=minutes)


# --- API -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["OW", "AD", "MA", "RE", "AN"])
def test_every_member_reads_the_policy(world, as_member, role):
    response = as_member(world.members_a()[role])("get", POLICY)
    assert response.status_code == 200
    body = response.json()
    assert body["max_session_age"] == body["max_time_between_activity"] == 60 * 24 * 14
    assert set(body) == {"max_session_age", "max_time_between_activity", "created_at", "updated_at"}


@pytest.mark.parametrize("role", ["OW", "AD"])
def test_admins_change_it_and_the_change_is_audited(world, as_member, role):
    member = world.members_a()[role]
    response = as_member(member)("patch", POLICY, json={"max_session_age": 600})

    assert response.status_code == 200, response.content
    assert response.json()["max_session_age"] == 600
    assert response.json()["max_time_between_activity"] == 60 * 24 * 14
    assert response.json()["created_at"] and response.json()["updated_at"]
    assert SessionPolicy.objects.get(organization=world.org_a).max_session_age == 600
    event = AuditEvent.objects.filter(organization=world.org_a, action="session_policy.changed").latest("id")
    assert event.actor_id == member.user.pk
    assert event.details == {"max_session_age": {"from": 60 * 24 * 14, "to": 600}}


@pytest.mark.parametrize("role", ["MA", "RE", "AN"])
def test_other_roles_cannot_change_it(world, as_member, role):
    response = as_member(world.members_a()[role])("patch", POLICY, json={"max_session_age": 5})
    assert response.status_code == 403
    assert response.json()["detail"] == denial_message("session_policy.change")
    assert not SessionPolicy.objects.filter(organization=world.org_a).exists()


@pytest.mark.parametrize("field", ["max_session_age", "max_time_between_activity"])
@pytest.mark.parametrize("value", [0, -5, 2147483648, "soon", True, None, 1.5, [30]])
def test_bad_minutes_are_400_naming_the_field(world, owner, field, value):
    response = owner("patch", POLICY, json={field: value})
    assert response.status_code == 400, response.content
    assert list(response.json()["validation_errors"]) == [field]
    assert not SessionPolicy.objects.filter(organization=world.org_a).exists()


def test_limits_are_accepted(world, owner):
    response = owner("patch", POLICY, json={"max_session_age": 1, "max_time_between_activity": 2147483647})
    assert response.status_code == 200
    assert (response.json()["max_session_age"], response.json()["max_time_between_activity"]) == (1, 2147483647)


def test_cross_tenant_b_changes_only_its_own_policy(world, api):
    response = api.call("patch", POLICY, token=world.owner_b.legacy_key, json={"max_session_age": 7})
    assert response.status_code == 200
    assert SessionPolicy.objects.get(organization=world.org_b).max_session_age == 7
    assert not SessionPolicy.objects.filter(organization=world.org_a).exists()
    on_a = api.call("patch", f"/o/org-a{POLICY}", token=world.owner_b.legacy_key, json={"max_session_age": 7})
    assert on_a.status_code == 403
    assert not SessionPolicy.objects.filter(organization=world.org_a).exists()


# --- Enforcement -----------------------------------------------------------------------------------

def test_idle_session_is_logged_out_with_401_on_the_api(world, client, moment):
    _policy(world.org_a, max_time_between_activity=30)
    client.force_login(world.annotator_a.user)
    assert client.get(ME_IN_A).status_code == 200

    moment.advance(minutes=29)
    assert client.get(ME_IN_A).status_code == 200
    moment.advance(minutes=29)  # active 29 minutes ago: still fine
    assert client.get(ME_IN_A).status_code == 200
    moment.advance(minutes=31)
    expired = client.get(ME_IN_A)

    assert expired.status_code == 401
    assert expired.json()["code"] == "session_expired"
    assert "inactive" in expired.json()["detail"]
    # Logged out: going back (even with the clock unchanged) needs a new login.
    assert "_auth_user_id" not in client.session
    assert client.get(ME_IN_A).status_code == 401


def test_old_session_is_logged_out_however_active(world, client, moment):
    _policy(world.org_a, max_session_age=60)
    client.force_login(world.annotator_a.user)
    for _ in range(3):
        assert client.get(ME_IN_A).status_code == 200
        moment.advance(minutes=20)
    assert client.get(ME_IN_A).status_code == 200  # exactly 60 minutes
    moment.advance(minutes=1)
    expired = client.get(ME_IN_A)
    assert expired.status_code == 401
    assert "maximum session age" in expired.json()["detail"]


def test_pages_redirect_to_the_login_page_with_next(world, client, moment):
    _policy(world.org_a, max_time_between_activity=5)
    client.force_login(world.annotator_a.user)
    assert client.get("/o/org-a/").status_code in (200, 302)
    moment.advance(minutes=6)

    response = client.get("/o/org-a/?tab=1")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/o/org-a/%3Ftab%3D1"
    assert "_auth_user_id" not in client.session


def test_session_start_is_the_login_time(world, client, moment):
    _policy(world.org_a, max_session_age=60)
    assert client.login(email=world.annotator_a.user.email, password=PASSWORD)
    moment.advance(minutes=61)  # no request since the login
    assert client.get(ME_IN_A).status_code == 401


def test_policy_of_a_does_not_affect_b(world, client, moment):
    user = world.annotator_a.user
    Membership.objects.create(user=user, organization=world.org_b, role=Role.ANNOTATOR)
    _policy(world.org_a, max_session_age=5)
    client.force_login(user)
    assert client.get(ME_IN_A).status_code == 200
    moment.advance(minutes=10)

    assert client.get(ME_IN_B).status_code == 200
    assert client.get(ME_IN_A).status_code == 401
    # ... and once logged out, the session is gone everywhere.
    assert client.get(ME_IN_B).status_code == 401


def test_activity_in_a_counts_as_activity_of_the_session(world, client, moment):
    """Idle time is the session's: a browser in use in org A is not idle for org B's policy."""
    user = world.annotator_a.user
    Membership.objects.create(user=user, organization=world.org_b, role=Role.ANNOTATOR)
    _policy(world.org_b, max_time_between_activity=10)
    client.force_login(user)
    for _ in range(3):
        moment.advance(minutes=8)
        assert client.get(ME_IN_A).status_code == 200
    assert client.get(ME_IN_B).status_code == 200


def test_token_calls_are_not_affected(world, api, moment):
    _policy(world.org_a, max_session_age=1, max_time_between_activity=1)
    assert api.call("get", "/api/current-user", token=world.annotator_a.legacy_key).status_code == 200
    moment.advance(days=3)
    assert api.call("get", "/api/current-user", token=world.annotator_a.legacy_key).status_code == 200
    assert api.call("get", "/api/current-user", bearer=api.access_for(world.annotator_a.pat)).status_code == 200


def test_bare_api_calls_of_the_browser_follow_the_session_organization(world, client, moment):
    _policy(world.org_a, max_time_between_activity=5)
    client.force_login(world.annotator_a.user)
    assert client.get(ME_IN_A).status_code == 200  # makes org A the session's organization
    assert client.get("/api/current-user").status_code == 200
    moment.advance(minutes=6)
    assert client.get("/api/current-user").status_code == 401


def test_a_changed_policy_applies_at_the_next_request(world, client, owner, moment):
    client.force_login(world.annotator_a.user)
    assert client.get(ME_IN_A).status_code == 200
    moment.advance(minutes=15)
    assert client.get(ME_IN_A).status_code == 200
    assert owner("patch", POLICY, json={"max_session_age": 10}).status_code == 200
    assert client.get(ME_IN_A).status_code == 401


@pytest.mark.parametrize("change", ["remove", "deactivate"])
def test_a_removed_or_deactivated_member_loses_access_at_the_next_request(world, client, change):
    membership = Membership.objects.get(user=world.annotator_a.user, organization=world.org_a)
    client.force_login(world.annotator_a.user)
    assert client.get(ME_IN_A).status_code == 200
    if change == "remove":
        membership.delete()
    else:
        Membership.objects.filter(pk=membership.pk).update(role=Role.DEACTIVATED)
    assert client.get(ME_IN_A).status_code == 403
    assert client.get("/o/org-a/").status_code == 403


def test_last_activity_is_written_at_most_once_a_minute(world, moment):
    session = SessionStore()
    policy = SessionPolicy(organization=world.org_a, max_session_age=600, max_time_between_activity=600)

    assert session_policy.session_expiry(session=session, policy=policy, now=moment.now) is None
    first = dict(session.items())
    session.modified = False

    moment.advance(seconds=50)
    assert session_policy.session_expiry(session=session, policy=policy, now=moment.now) is None
    assert session.modified is False

    moment.advance(seconds=20)
    assert session_policy.session_expiry(session=session, policy=policy, now=moment.now) is None
    assert session.modified is True
    assert session[session_policy.SESSION_ACTIVE_KEY] > first[session_policy.SESSION_ACTIVE_KEY]
    assert session[session_policy.SESSION_STARTED_KEY] == first[session_policy.SESSION_STARTED_KEY]
