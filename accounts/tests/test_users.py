"""/api/users/ (the organization's people), /api/current-user and its hotkeys."""

import pytest

from accounts.access import denial_message
from accounts.models import AuditEvent, Membership, PersonalAccessToken, Role, User
from accounts.tokens import hash_secret
from conftest import PASSWORD
from tenants.models import Organization

pytestmark = pytest.mark.django_db

USERS = "/api/users/"


def _user_url(user) -> str:
    return f"{USERS}{user.pk}/"


# --- List ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["OW", "AD", "MA"])
def test_list_shows_this_organizations_people_only(world, as_member, role):
    response = as_member(world.members_a()[role])("get", USERS)

    assert response.status_code == 200, response.content
    rows = response.json()
    emails = {row["email"] for row in rows}
    assert {"owner@a.test", "admin@a.test", "manager@a.test", "reviewer@a.test", "annotator@a.test",
            "paused@a.test"} <= emails
    assert "owner@b.test" not in emails
    expected = dict(Membership.objects.filter(organization=world.org_a).values_list("user__email", "role"))
    for row in rows:
        assert row["organization_membership"]["role"] == expected[row["email"]]
        assert row["organization_membership"]["organization_id"] == world.org_a.pk
        # Another organization of theirs never shows.
        assert [m["organization_id"] for m in row["org_membership"]] == [world.org_a.pk]
        assert row["active_organization"] == world.org_a.pk
        assert {"id", "username", "first_name", "last_name", "avatar", "initials", "custom_hotkeys",
                "allow_newsletters", "last_activity", "lse_fields", "pause"} <= set(row)


def test_list_orders_as_asked(world, owner):
    ids = [row["id"] for row in owner("get", f"{USERS}?ordering=-id").json()]
    assert ids == sorted(ids, reverse=True)
    emails = [row["email"] for row in owner("get", f"{USERS}?ordering=email").json()]
    assert emails == sorted(emails)


def test_bad_ordering_is_400(world, owner):
    response = owner("get", f"{USERS}?ordering=password")
    assert response.status_code == 400
    assert "ordering" in response.json()["validation_errors"]


@pytest.mark.parametrize("role", ["RE", "AN"])
def test_list_is_refused_below_manager(world, as_member, role):
    response = as_member(world.members_a()[role])("get", USERS)
    assert response.status_code == 403
    assert response.json()["detail"] == denial_message("users.view")


# --- Create ----------------------------------------------------------------------------------------

def test_create_makes_an_account_without_password_in_the_default_role(world, owner):
    Organization.objects.filter(pk=world.org_a.pk).update(default_role=Role.REVIEWER)

    response = owner("post", USERS, json={"email": "New.Person@a.test", "first_name": "New",
                                          "username": "newbie"})

    assert response.status_code == 201, response.content
    body = response.json()
    user = User.objects.get(email="new.person@a.test")
    assert body["id"] == user.pk and body["first_name"] == "New" and body["username"] == "newbie"
    assert body["organization_membership"]["role"] == Role.REVIEWER
    assert not user.has_usable_password()
    assert Membership.objects.get(user=user, organization=world.org_a).role == Role.REVIEWER
    event = AuditEvent.objects.filter(organization=world.org_a, action="member.created").latest("id")
    assert event.actor_id == world.owner_a.user.pk
    assert event.details["user_id"] == user.pk and event.details["new_account"] is True


def test_create_with_an_existing_email_adds_the_account_as_member(world, owner):
    b_owner = world.owner_b.user

    response = owner("post", USERS, json={"email": "owner@b.test", "first_name": "Changed"})

    assert response.status_code == 201, response.content
    assert Membership.objects.get(user=b_owner, organization=world.org_a).role == world.org_a.default_role
    b_owner.refresh_from_db()
    assert b_owner.first_name == "Bea"  # their profile is theirs
    assert Membership.objects.get(user=b_owner, organization=world.org_b).role == Role.OWNER
    assert response.json()["org_membership"] == [response.json()["organization_membership"]]


def test_sdk_style_create_with_the_email_as_username(world, owner):
    response = owner("post", USERS, json={"username": "sdk.person@a.test"})
    assert response.status_code == 201
    assert response.json()["email"] == "sdk.person@a.test"


@pytest.mark.parametrize("body, field", [
    ({"email": "not-an-email"}, "email"),
    ({"username": "no-email-here"}, "email"),
    ({}, "email"),
    ({"email": "annotator@a.test"}, "email"),
    ({"email": "pw@a.test", "password": "S3cure-Enough-Passw0rd"}, "password"),
    ({"email": "long@a.test", "first_name": "x" * 300}, "first_name"),
])
def test_bad_create_is_400_naming_the_field(world, owner, body, field):
    before = User.objects.count(), Membership.objects.count()
    response = owner("post", USERS, json=body)
    assert response.status_code == 400, response.content
    assert field in response.json()["validation_errors"]
    assert (User.objects.count(), Membership.objects.count()) == before


@pytest.mark.parametrize("role", ["MA", "RE", "AN"])
def test_create_needs_an_administrator(world, as_member, role):
    response = as_member(world.members_a()[role])("post", USERS, json={"email": "x@a.test"})
    assert response.status_code == 403
    assert not User.objects.filter(email="x@a.test").exists()


# --- Retrieve, update ------------------------------------------------------------------------------

def test_get_one_member(world, owner):
    response = owner("get", _user_url(world.annotator_a.user))
    assert response.status_code == 200
    assert response.json()["email"] == "annotator@a.test"
    assert response.json()["organization_membership"]["role"] == Role.ANNOTATOR


def test_someone_of_another_organization_is_404(world, owner):
    for method in ("get", "patch", "delete"):
        response = owner(method, _user_url(world.owner_b.user), json={"first_name": "X"} if method == "patch" else None)
        assert response.status_code == 404, method
    assert owner("get", f"{USERS}999999999/").status_code == 404


def test_members_change_their_own_profile(world, annotator):
    response = annotator("patch", _user_url(world.annotator_a.user), json={"first_name": "Anna", "phone": "123"})
    assert response.status_code == 200, response.content
    assert response.json()["first_name"] == "Anna"
    world.annotator_a.user.refresh_from_db()
    assert (world.annotator_a.user.first_name, world.annotator_a.user.phone) == ("Anna", "123")


def test_changing_someone_else_needs_users_change(world, annotator):
    response = annotator("patch", _user_url(world.reviewer_a.user), json={"first_name": "Hacked"})
    assert response.status_code == 403
    assert response.json()["detail"] == denial_message("users.change")
    world.reviewer_a.user.refresh_from_db()
    assert world.reviewer_a.user.first_name != "Hacked"


def test_administrators_change_profiles_but_not_personal_settings(world, as_member):
    admin = as_member(world.admin_a)
    target = world.annotator_a.user
    assert admin("patch", _user_url(target), json={"last_name": "Renamed"}).status_code == 200
    target.refresh_from_db()
    assert target.last_name == "Renamed"

    for field, value in [("password", "An0ther-Passw0rd!"), ("custom_hotkeys", {"a": "b"}),
                         ("allow_newsletters", True), ("active_organization", world.org_a.pk)]:
        response = admin("patch", _user_url(target), json={field: value})
        assert response.status_code == 400, field
        assert field in response.json()["validation_errors"]
    target.refresh_from_db()
    assert target.check_password("S3cure-Enough-Passw0rd")


def test_an_administrator_cannot_change_or_remove_an_owner(world, as_member):
    admin = as_member(world.admin_a)
    for method, body in [("patch", {"first_name": "X"}), ("delete", None)]:
        response = admin(method, _user_url(world.owner_a.user), json=body)
        assert response.status_code == 403, method
        assert response.json()["detail"].startswith("Only an Owner")
    world.owner_a.user.refresh_from_db()
    assert world.owner_a.user.first_name == "Ada"
    assert Membership.objects.filter(user=world.owner_a.user, organization=world.org_a).exists()


# --- Delete ----------------------------------------------------------------------------------------

def test_delete_removes_the_member_but_not_the_account(world, as_member, api):
    target = world.annotator_a.user
    response = as_member(world.admin_a)("delete", _user_url(target))

    assert response.status_code == 204
    assert not Membership.objects.filter(user=target, organization=world.org_a).exists()
    assert User.objects.filter(pk=target.pk, is_active=True).exists()
    refused = api.call("get", "/api/current-user", token=world.annotator_a.legacy_key)
    assert refused.status_code == 403
    event = AuditEvent.objects.filter(organization=world.org_a, action="member.removed").latest("id")
    assert event.details["user_id"] == target.pk and event.actor_id == world.admin_a.user.pk


def test_nobody_removes_themselves(world, owner, as_member):
    assert owner("delete", _user_url(world.owner_a.user)).status_code == 405
    assert as_member(world.admin_a)("delete", _user_url(world.admin_a.user)).status_code == 405
    assert Membership.objects.filter(user=world.owner_a.user, organization=world.org_a, role=Role.OWNER).exists()
    assert Membership.objects.filter(user=world.admin_a.user, organization=world.org_a).exists()


def test_an_owner_removes_another_owner(world, owner, as_member):
    Membership.objects.filter(user=world.admin_a.user, organization=world.org_a).update(role=Role.OWNER)
    assert as_member(world.admin_a)("delete", _user_url(world.owner_a.user)).status_code == 204
    assert not Membership.objects.filter(user=world.owner_a.user, organization=world.org_a).exists()


@pytest.mark.parametrize("role", ["MA", "RE", "AN"])
def test_delete_needs_members_change(world, as_member, role):
    response = as_member(world.members_a()[role])("delete", _user_url(world.annotator_a.user))
    assert response.status_code == 403
    assert Membership.objects.filter(user=world.annotator_a.user, organization=world.org_a).exists()


def test_removed_member_browser_session_loses_access(world, client, as_member):
    client.force_login(world.annotator_a.user)
    assert client.get("/o/org-a/api/current-user").status_code == 200
    assert as_member(world.owner_a)("delete", _user_url(world.annotator_a.user)).status_code == 204
    assert client.get("/o/org-a/api/current-user").status_code == 403


# --- Cross-tenant ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method, body", [("get", None), ("patch", {"first_name": "FromB"}), ("delete", None)])
def test_b_cannot_reach_a_users_by_id(world, api, method, body):
    for member in world.members_a().values():
        response = api.call(method, _user_url(member.user), token=world.owner_b.legacy_key, json=body)
        assert response.status_code == 404, (method, member.user.email)
        member.user.refresh_from_db()
        assert member.user.first_name != "FromB"
        assert Membership.objects.filter(user=member.user, organization=world.org_a).exists()


def test_b_lists_and_creates_only_in_b(world, api):
    listed = api.call("get", USERS, token=world.owner_b.legacy_key).json()
    assert [row["email"] for row in listed] == ["owner@b.test"]
    created = api.call("post", USERS, token=world.owner_b.legacy_key, json={"email": "annotator@a.test"})
    assert created.status_code == 201
    assert Membership.objects.get(user=world.annotator_a.user, organization=world.org_a).role == Role.ANNOTATOR
    assert created.json()["org_membership"] == [created.json()["organization_membership"]]
    assert created.json()["organization_membership"]["organization_id"] == world.org_b.pk


def test_b_token_on_a_url_is_refused(world, api):
    response = api.call("get", f"/o/org-a{USERS}", token=world.owner_b.legacy_key)
    assert response.status_code == 403


# --- Current user and hotkeys ----------------------------------------------------------------------

def test_current_user_accepts_what_the_sdk_sends(world, annotator):
    response = annotator("patch", "/api/current-user", json={
        "first_name": "Ann", "allow_newsletters": True, "custom_hotkeys": {"annotation:submit": "ctrl+enter"},
        "active_organization": world.org_a.pk, "date_joined": "2020-01-01T00:00:00Z",
        "is_email_verified": True, "onboarding_state": "complete", "email_notification_settings": {}})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["first_name"], body["allow_newsletters"]) == ("Ann", True)
    assert body["custom_hotkeys"] == {"annotation:submit": "ctrl+enter"}
    user = User.objects.get(pk=world.annotator_a.user.pk)
    assert user.active_organization_id == world.org_a.pk
    assert user.date_joined.year != 2020


def test_current_user_password_change_is_validated(world, annotator):
    weak = annotator("patch", "/api/current-user", json={"password": "123", "current_password": PASSWORD})
    assert weak.status_code == 400 and "password" in weak.json()["validation_errors"]
    no_current = annotator("patch", "/api/current-user", json={"password": "A-much-better-Passw0rd"})
    assert no_current.status_code == 400 and "current_password" in no_current.json()["validation_errors"]
    wrong = annotator("patch", "/api/current-user", json={"password": "A-much-better-Passw0rd",
                                                          "current_password": "not-it"})
    assert wrong.status_code == 400 and "current_password" in wrong.json()["validation_errors"]
    assert User.objects.get(pk=world.annotator_a.user.pk).check_password(PASSWORD)
    assert annotator("patch", "/api/current-user", json={"password": "A-much-better-Passw0rd",
                                                         "current_password": PASSWORD}).status_code == 200
    assert User.objects.get(pk=world.annotator_a.user.pk).check_password("A-much-better-Passw0rd")


def test_active_organization_must_be_ones_own(world, annotator):
    response = annotator("patch", "/api/current-user", json={"active_organization": world.org_b.pk})
    assert response.status_code == 400
    assert "active_organization" in response.json()["validation_errors"]


def test_hotkeys_round_trip(world, annotator):
    assert annotator("get", "/api/current-user/hotkeys/").json() == {"custom_hotkeys": {}}
    keys = {"annotation:submit": "ctrl+enter", "region:delete": {"key": "backspace", "active": False}}
    response = annotator("patch", "/api/current-user/hotkeys/", json={"custom_hotkeys": keys})
    assert response.status_code == 200, response.content
    assert response.json() == {"custom_hotkeys": keys}
    assert annotator("get", "/api/current-user/hotkeys").json() == {"custom_hotkeys": keys}
    assert annotator("get", "/api/current-user").json()["custom_hotkeys"] == keys


@pytest.mark.parametrize("body", [
    {"custom_hotkeys": ["ctrl+s"]},
    {"custom_hotkeys": {"annotation:submit": 5}},
    {"custom_hotkeys": {"annotation:submit": ""}},
    {"custom_hotkeys": {"": "ctrl+s"}},
    {"custom_hotkeys": {"a": {"key": "x", "active": "yes"}}},
    {"custom_hotkeys": {"a": {"key": "x", "script": "alert(1)"}}},
    {},
])
def test_bad_hotkeys_are_400(world, annotator, body):
    response = annotator("patch", "/api/current-user/hotkeys/", json=body)
    assert response.status_code == 400, response.content
    assert "custom_hotkeys" in response.json()["validation_errors"]
    assert User.objects.get(pk=world.annotator_a.user.pk).custom_hotkeys is None


def test_per_project_hotkeys_are_refused(world, annotator):
    response = annotator("patch", f"/api/current-user/hotkeys/?project={world.project_a.pk}",
                         json={"custom_hotkeys": {"a": "b"}})
    assert response.status_code == 400
    assert "project" in response.json()["validation_errors"]


# --- Revoking a token by id (the settings page) ----------------------------------------------------

def _pat_row(member):
    return PersonalAccessToken.objects.get(token_hash=hash_secret(member.pat))


def test_revoke_own_token_by_id(world, api):
    row = _pat_row(world.annotator_a)
    response = api.call("delete", f"/api/token/{row.pk}/", token=world.annotator_a.legacy_key)
    assert response.status_code == 204
    row.refresh_from_db()
    assert row.blacklisted_at is not None
    assert api.call("post", "/api/token/refresh/", json={"refresh": world.annotator_a.pat}).status_code == 401
    event = AuditEvent.objects.filter(organization=world.org_a, action="token.revoked").latest("id")
    assert event.target_id == str(row.pk) and event.actor_id == world.annotator_a.user.pk
    # Again: nothing more to do.
    assert api.call("delete", f"/api/token/{row.pk}", token=world.annotator_a.legacy_key).status_code == 204


def test_someone_elses_token_is_404(world, api):
    for caller, member in [(world.owner_a, world.annotator_a), (world.owner_b, world.annotator_a),
                           (world.annotator_a, world.owner_b)]:
        row = _pat_row(member)
        response = api.call("delete", f"/api/token/{row.pk}/", token=caller.legacy_key)
        assert response.status_code == 404
        row.refresh_from_db()
        assert row.blacklisted_at is None
