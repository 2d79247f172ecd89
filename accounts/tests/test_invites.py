"""Invitations: the shareable link, email invites, revoking, and the accept page."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts import invites
from accounts.models import AuditEvent, Invite, Membership, Role, User
from accounts.tokens import hash_secret
from conftest import PASSWORD
from labeling.models import ProjectMember
from tenants.resolver import SESSION_ORGANIZATION_KEY
from workspaces.models import WorkspaceMembership

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver/invite/([\w-]+)/")


@pytest.fixture
def send(owner, django_capture_on_commit_callbacks):
    """POST /api/invite/send-email as org A's Owner, running the after-commit email sending."""
    def call(body, caller=None):
        with django_capture_on_commit_callbacks(execute=True):
            return (caller or owner)("post", "/api/invite/send-email", body)
    return call


def _token_mailed_to(email: str) -> str:
    messages = [message for message in mail.outbox if message.to == [email]]
    assert len(messages) == 1, [message.to for message in mail.outbox]
    return LINK.search(messages[0].body).group(1)


def _audited(action: str, organization) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(organization=organization, action=action))


def _signup(client, token: str, **fields):
    body = {"email": "", "password": PASSWORD, "first_name": "New", "last_name": "Person", **fields}
    return client.post(f"/invite/{token}/", body)


# --- The shareable link ------------------------------------------------------------------------

def test_invite_link_is_made_once_and_shown_again(world, owner):
    first = owner("get", "/api/invite")
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["invite_url"] == f"http://testserver/invite/{body['token']}/"
    assert owner("get", "/api/invite/").json() == body, "same link on every call"
    link = Invite.objects.get(token_hash=hash_secret(body["token"]))
    assert (link.organization_id, link.email, link.role) == (world.org_a.pk, "", world.org_a.default_role)
    assert body["token"] not in link.token_encrypted, "stored encrypted"


def test_reset_token_replaces_the_link_and_the_old_one_stops_working(world, owner, client):
    old = owner("get", "/api/invite").json()["token"]
    response = owner("post", "/api/invite/reset-token")
    assert response.status_code == 200, response.content
    new = response.json()["token"]
    assert new != old and response.json()["invite_url"].endswith(f"/invite/{new}/")
    assert owner("get", "/api/invite").json()["token"] == new
    assert client.get(f"/invite/{old}/").status_code == 410
    assert client.get(f"/invite/{new}/").status_code == 200
    assert len(_audited("invite.link_reset", world.org_a)) == 1


@pytest.mark.parametrize("role", ["MA", "RE", "AN"])
def test_roles_without_members_invite_are_refused(world, as_member, role):
    call = as_member(world.members_a()[role])
    for method, path in [("get", "/api/invite"), ("post", "/api/invite/reset-token"),
                         ("post", "/api/invite/send-email"), ("post", "/api/invite/revoke")]:
        response = call(method, path, {"emails": ["x@y.test"], "email": "x@y.test"} if method == "post" else None)
        assert response.status_code == 403, (path, response.content)
        assert "members.invite" in response.json()["detail"]


# --- Email invites ------------------------------------------------------------------------------

def test_send_email_invites_each_address_and_mails_its_link(world, send):
    response = send({"emails": ["New.Person@Example.test", "second@example.test"], "role": "RE",
                     "projects": [world.project_a.pk], "workspaces": [world.workspace_a.pk]})
    assert response.status_code == 200, response.content
    assert response.json()["invited"] == ["new.person@example.test", "second@example.test"]
    assert response.json()["already_members"] == []
    rows = Invite.objects.filter(organization=world.org_a, email__in=["new.person@example.test",
                                                                      "second@example.test"])
    assert rows.count() == 2
    for row in rows:
        assert (row.role, row.project_ids, row.workspace_ids) == ("RE", [world.project_a.pk], [world.workspace_a.pk])
        assert row.expires_at > timezone.now() + timedelta(days=1)
        assert row.created_by == world.owner_a.user
        token = _token_mailed_to(row.email)
        assert row.token_hash == hash_secret(token)
    message = mail.outbox[0]
    assert "Org A" in message.subject and "Reviewer" in message.body
    events = _audited("invite.sent", world.org_a)
    assert len(events) == 1 and events[0].details["emails"] == ["new.person@example.test", "second@example.test"]
    tokens = [_token_mailed_to(email) for email in events[0].details["emails"]]
    assert not any(token in str(events[0].details) for token in tokens), "no secrets in the audit"


def test_role_defaults_to_the_organization_default_role(world, send):
    assert send({"emails": ["plain@example.test"]}).status_code == 200
    assert Invite.objects.get(organization=world.org_a, email="plain@example.test").role == world.org_a.default_role


def test_reinviting_an_address_replaces_its_pending_invite(world, send, client):
    send({"emails": ["again@example.test"], "role": "AN"})
    first = _token_mailed_to("again@example.test")
    mail.outbox.clear()
    send({"emails": ["again@example.test"], "role": "MA"})
    second = _token_mailed_to("again@example.test")
    assert client.get(f"/invite/{first}/").status_code == 410
    assert client.get(f"/invite/{second}/").status_code == 200
    pending = invites.pending_invites_of(organization=world.org_a, email="again@example.test")
    assert [invite.role for invite in pending] == ["MA"]


def test_members_are_reported_not_reinvited(world, send):
    response = send({"emails": ["ANNOTATOR@a.test", "fresh@example.test"]})
    assert response.status_code == 200
    assert response.json()["invited"] == ["fresh@example.test"]
    assert response.json()["already_members"] == ["annotator@a.test"]
    assert not Invite.objects.filter(email="annotator@a.test").exists()
    assert [message.to for message in mail.outbox] == [["fresh@example.test"]]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"emails": ["ok@example.test", "not-an-email"]}, "emails", "not-an-email"),
        ({"emails": "ok@example.test"}, "emails", "list"),
        ({"emails": []}, "emails", "non-empty"),
        ({}, "emails", "non-empty"),
        ({"emails": ["ok@example.test"], "role": "DI"}, "role", "OW, AD, MA, RE, AN"),
        ({"emails": ["ok@example.test"], "role": "XX"}, "role", "XX"),
        ({"emails": ["ok@example.test"], "projects": [999999]}, "projects", "999999"),
        ({"emails": ["ok@example.test"], "projects": "1"}, "projects", "integers"),
        ({"emails": ["ok@example.test"], "workspaces": [999999]}, "workspaces", "999999"),
        ({"emails": ["ok@example.test"], "workspaces": [True]}, "workspaces", "integers"),
        ({"emails": ["ok@example.test"], "user_type": "viewonly"}, "user_type", "seats"),
    ],
)
def test_bad_send_email_input_is_a_400_naming_the_field_and_sends_nothing(world, send, body, field, message):
    response = send(body)
    assert response.status_code == 400, response.content
    errors = response.json()["validation_errors"]
    assert field in errors, errors
    assert message in str(errors[field])
    assert mail.outbox == []
    assert not Invite.objects.filter(email="ok@example.test").exists()


def test_only_an_owner_invites_an_owner(world, as_member, send):
    response = send({"emails": ["boss@example.test"], "role": "OW"}, caller=as_member(world.admin_a))
    assert response.status_code == 400
    assert "Only an Owner" in str(response.json()["validation_errors"]["role"])
    assert send({"emails": ["boss@example.test"], "role": "OW"}).status_code == 200
    assert send({"emails": ["admin2@example.test"], "role": "AD"},
                caller=as_member(world.admin_a)).status_code == 200


def _forget_overrides(organization) -> None:
    """Cache keys are per schema (django_tenants' key function): forget them in both."""
    from accounts.access import overrides_changed

    overrides_changed(organization.pk)
    with tenant_context(organization):
        overrides_changed(organization.pk)


def test_an_inviter_grants_at_most_their_own_role(world, as_member, send):
    from accounts.models import OrganizationPermission

    OrganizationPermission.objects.create(organization=world.org_a, permission="members.invite", roles=["MA"])
    _forget_overrides(world.org_a)
    try:
        manager = as_member(world.manager_a)
        refused = send({"emails": ["up@example.test"], "role": "AD"}, caller=manager)
        assert refused.status_code == 400, refused.content
        assert "above your own" in str(refused.json()["validation_errors"]["role"])
        assert send({"emails": ["up@example.test"], "role": "MA"}, caller=manager).status_code == 200
    finally:
        _forget_overrides(world.org_a)


def test_revoke_withdraws_pending_invites_of_an_address(world, owner, send, client):
    send({"emails": ["gone@example.test"]})
    token = _token_mailed_to("gone@example.test")
    response = owner("post", "/api/invite/revoke", {"email": "Gone@Example.test"})
    assert response.status_code == 200, response.content
    assert response.json()["revoked"] == 1
    assert client.get(f"/invite/{token}/").status_code == 410
    assert len(_audited("invite.revoked", world.org_a)) == 1
    again = owner("post", "/api/invite/revoke", {"email": "gone@example.test"})
    assert again.status_code == 404
    bad = owner("post", "/api/invite/revoke", {"email": "nope"})
    assert bad.status_code == 400 and "email" in bad.json()["validation_errors"]
    assert owner("post", "/api/invite/revoke", {}).status_code == 400


# --- Accepting ----------------------------------------------------------------------------------

def test_new_person_signs_up_through_an_email_invite(world, send, client):
    send({"emails": ["newbie@example.test"], "role": "RE", "projects": [world.project_a.pk],
          "workspaces": [world.workspace_a.pk]})
    token = _token_mailed_to("newbie@example.test")
    mail.outbox.clear()
    page = client.get(f"/invite/{token}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Org A" in html and "Reviewer" in html
    assert 'value="newbie@example.test"' in html, "email prefilled"
    assert f"/accounts/login/?next=/invite/{token}/" in html

    response = _signup(client, token, email="someone-else@example.test")
    assert response.status_code == 302, response.content
    assert response["Location"] == "/o/org-a/"
    user = User.objects.get(email="newbie@example.test")
    assert not User.objects.filter(email="someone-else@example.test").exists(), "the invited address is used"
    assert Membership.objects.get(user=user, organization=world.org_a).role == Role.REVIEWER
    with tenant_context(world.org_a):
        assert ProjectMember.objects.filter(project=world.project_a, user_id=user.pk, enabled=True).exists()
        assert WorkspaceMembership.objects.filter(workspace=world.workspace_a, user_id=user.pk).exists()
    invite = Invite.objects.get(token_hash=hash_secret(token))
    assert invite.accepted_by == user and invite.accepted_at is not None
    user.refresh_from_db()
    assert user.active_organization_id == world.org_a.pk
    assert client.session[SESSION_ORGANIZATION_KEY] == world.org_a.pk
    assert mail.outbox == [], "the invitation proved the address: no confirmation email"
    home = client.get("/o/org-a/")
    assert home.status_code == 200 and "Reviewer" in home.content.decode()
    accepted = _audited("invite.accepted", world.org_a)
    assert len(accepted) == 1 and accepted[0].actor == user and accepted[0].details["via"] == "email"

    client.logout()
    assert client.get(f"/invite/{token}/").status_code == 410, "email invites are single-use"


def test_bad_signup_fields_on_the_invite_page_are_a_400(world, send, client):
    send({"emails": ["weak@example.test"]})
    token = _token_mailed_to("weak@example.test")
    response = _signup(client, token, password="password")
    assert response.status_code == 400
    assert "password" in response.context["form"].errors
    assert not User.objects.filter(email="weak@example.test").exists()
    assert Invite.objects.get(token_hash=hash_secret(token)).accepted_at is None


def test_existing_user_logged_in_joins_with_the_button(world, send, client):
    send({"emails": ["owner@b.test"], "role": "MA", "projects": [world.project_a.pk]})
    token = _token_mailed_to("owner@b.test")
    client.force_login(world.owner_b.user)
    page = client.get(f"/invite/{token}/")
    assert page.status_code == 200 and "Join Org A" in page.content.decode()
    response = client.post(f"/invite/{token}/")
    assert response.status_code == 302 and response["Location"] == "/o/org-a/"
    assert Membership.objects.get(user=world.owner_b.user, organization=world.org_a).role == Role.MANAGER
    assert Membership.objects.get(user=world.owner_b.user, organization=world.org_b).role == Role.OWNER
    with tenant_context(world.org_a):
        assert ProjectMember.objects.filter(project=world.project_a, user_id=world.owner_b.user.pk).exists()
    assert client.get("/o/org-a/").status_code == 200
    assert client.post(f"/invite/{token}/").status_code == 410


def test_anonymous_with_an_existing_account_is_sent_to_log_in_and_back(world, send, client):
    send({"emails": ["owner@b.test"]})
    token = _token_mailed_to("owner@b.test")
    html = client.get(f"/invite/{token}/").content.decode()
    assert f'href="/accounts/login/?next=/invite/{token}/"' in html
    assert 'data-testid="invite-signup"' not in html
    login = client.post(f"/accounts/login/?next=/invite/{token}/", {"login": "owner@b.test", "password": PASSWORD})
    assert login.status_code == 302 and login["Location"] == f"/invite/{token}/"


def test_email_invite_is_refused_to_another_account(world, client):
    client.force_login(world.annotator_a.user)
    page = client.get("/invite/a-invite-token-of-the-test-world/")
    assert page.status_code == 403
    html = page.content.decode()
    assert "invitee@a.test" in html and "annotator@a.test" in html and "Log out" in html
    assert client.post("/invite/a-invite-token-of-the-test-world/").status_code == 403
    world.invite_a.refresh_from_db()
    assert world.invite_a.accepted_at is None


def test_email_matching_is_case_insensitive(world, client):
    user = User.objects.create_user("invitee@a.test", PASSWORD)
    User.objects.filter(pk=user.pk).update(email="Invitee@A.test")
    user.refresh_from_db()
    client.force_login(user)
    assert client.post("/invite/a-invite-token-of-the-test-world/").status_code == 302
    assert Membership.objects.get(user=user, organization=world.org_a).role == Role.ANNOTATOR


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"revoked_at": timezone.now()}, 410, "withdrawn"),
        ({"expires_at": timezone.now() - timedelta(minutes=1)}, 410, "expired"),
        ({"accepted_at": timezone.now()}, 410, "already been used"),
    ],
)
def test_unusable_email_invites_show_why(world, client, change, status, message):
    Invite.objects.filter(pk=world.invite_a.pk).update(**change)
    page = client.get("/invite/a-invite-token-of-the-test-world/")
    assert page.status_code == status
    assert message in page.content.decode()
    assert _signup(client, "a-invite-token-of-the-test-world").status_code == status
    assert not User.objects.filter(email="invitee@a.test").exists()


def test_unknown_token_is_a_404_page(world, client):
    page = client.get("/invite/no-such-token/")
    assert page.status_code == 404 and "not valid" in page.content.decode()
    assert client.post("/invite/no-such-token/").status_code == 404


def test_shareable_link_is_reusable_and_grants_the_default_role(world, owner, client):
    token = owner("get", "/api/invite").json()["token"]
    for n in range(2):
        response = _signup(client, token, email=f"linked{n}@example.test")
        assert response.status_code == 302, response.content
        user = User.objects.get(email=f"linked{n}@example.test")
        assert Membership.objects.get(user=user, organization=world.org_a).role == world.org_a.default_role
        client.logout()
    assert [event.details["via"] for event in _audited("invite.accepted", world.org_a)] == ["link", "link"]
    assert Invite.objects.get(token_hash=hash_secret(token)).accepted_at is None
    owner("post", "/api/invite/reset-token")
    assert client.get(f"/invite/{token}/").status_code == 410
    assert _signup(client, token, email="late@example.test").status_code == 410


def test_accepting_never_downgrades_a_member(world, owner, client):
    token = owner("get", "/api/invite").json()["token"]
    client.force_login(world.admin_a.user)
    assert client.post(f"/invite/{token}/").status_code == 302
    assert Membership.objects.get(user=world.admin_a.user, organization=world.org_a).role == Role.ADMINISTRATOR


def test_a_deactivated_member_cannot_rejoin_through_the_link(world, owner, client):
    token = owner("get", "/api/invite").json()["token"]
    Membership.objects.filter(user=world.annotator_a.user, organization=world.org_a).update(role=Role.DEACTIVATED)
    client.force_login(world.annotator_a.user)
    response = client.post(f"/invite/{token}/")
    assert response.status_code == 403 and "deactivated" in response.content.decode()
    assert Membership.objects.get(user=world.annotator_a.user, organization=world.org_a).role == Role.DEACTIVATED


def test_link_with_not_activated_default_role_waits_for_approval(world, owner, client):
    token = owner("get", "/api/invite").json()["token"]
    type(world.org_a).objects.filter(pk=world.org_a.pk).update(default_role=Role.NOT_ACTIVATED)
    response = _signup(client, token, email="waiting@example.test")
    assert response.status_code == 200 and "activate your membership" in response.content.decode()
    user = User.objects.get(email="waiting@example.test")
    assert Membership.objects.get(user=user, organization=world.org_a).role == Role.NOT_ACTIVATED


def test_label_studio_signup_link_shape_leads_to_the_invite(world, client):
    response = client.get("/user/signup/?token=a-invite-token-of-the-test-world")
    assert response.status_code == 302 and response["Location"] == "/invite/a-invite-token-of-the-test-world/"
    assert client.get("/user/signup")["Location"] == "/signup/"


# --- Tenant isolation ---------------------------------------------------------------------------

def _invites_of_a() -> list[tuple]:
    return list(Invite.objects.filter(organization__slug="org-a")
                .values_list("pk", "email", "role", "token_hash", "revoked_at", "accepted_at"))


def test_b_cannot_read_reset_or_revoke_a_invites(world, api, owner):
    a_token = owner("get", "/api/invite").json()["token"]
    before = _invites_of_a()
    b = world.owner_b.legacy_key
    b_link = api.call("get", "/api/invite", token=b).json()["token"]
    assert b_link != a_token
    assert Invite.objects.get(token_hash=hash_secret(b_link)).organization_id == world.org_b.pk
    assert api.call("post", "/api/invite/reset-token", token=b).status_code == 200
    revoke = api.call("post", "/api/invite/revoke", token=b, json={"email": "invitee@a.test"})
    assert revoke.status_code == 404
    for method, path in [("get", "/o/org-a/api/invite"), ("post", "/o/org-a/api/invite/reset-token"),
                         ("post", "/o/org-a/api/invite/revoke"), ("post", "/o/org-a/api/invite/send-email")]:
        assert api.call(method, path, token=b, json={"email": "invitee@a.test"}).status_code == 403, path
    assert _invites_of_a() == before
    assert owner("get", "/api/invite").json()["token"] == a_token


def test_b_cannot_invite_into_a_projects_or_workspaces(world, api, django_capture_on_commit_callbacks):
    b = world.owner_b.legacy_key
    for field, pk in [("projects", world.project_a.pk), ("workspaces", world.workspace_a.pk)]:
        with django_capture_on_commit_callbacks(execute=True):
            response = api.call("post", "/api/invite/send-email", token=b,
                                json={"emails": ["spy@example.test"], field: [pk]})
        assert response.status_code == 400, response.content
        assert "in this organization" in str(response.json()["validation_errors"][field])
    assert not Invite.objects.filter(email="spy@example.test").exists()
    assert mail.outbox == []


def test_send_email_takes_form_fields_too(world, api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.client.post(
            "/o/org-a/api/invite/send-email",
            {"emails": ["form1@example.test", "form2@example.test"], "role": "AN", "projects": [world.project_a.pk]},
            headers={"Authorization": f"Token {world.owner_a.legacy_key}"},
        )
    assert response.status_code == 200, response.content
    assert sorted(message.to[0] for message in mail.outbox) == ["form1@example.test", "form2@example.test"]
    assert Invite.objects.get(email="form1@example.test").project_ids == [world.project_a.pk]
