"""The official SDK 2.x users, session_policy, tokens, jwt_settings and activity_logs clients
against a real server (daphne on the test database).

No django_db mark: what the test creates is committed so the server process sees it, and the
fixture puts everything back (its Administrator, the people it adds, policies, token settings,
audit events).
"""

import pytest
from label_studio_sdk.client import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from accounts import services
from accounts.models import AuditEvent, OrganizationTokenSettings, Role, SessionPolicy, User
from conftest import PASSWORD

SDK_ADMIN = "sdk-admin@a.test"
SDK_CREATED = "sdk-created@a.test"


@pytest.fixture
def sdk_admin(world, django_db_blocker):
    """A committed Administrator of org A with its own tokens (the test resets and rotates them)."""
    organization = world.org_a
    with django_db_blocker.unblock():
        last_event = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        token_settings = OrganizationTokenSettings.objects.get(organization=organization)
        saved_token_settings = {name: getattr(token_settings, name) for name in services.TOKEN_SETTINGS_FIELDS}
        had_policy = SessionPolicy.objects.filter(organization=organization).exists()
        user = services.user_create(email=SDK_ADMIN, password=PASSWORD, first_name="Sdk")
        services.membership_set(user=user, organization=organization, role=Role.ADMINISTRATOR)
        key = services.legacy_token_issue(user=user, organization=organization)
        _, pat = services.personal_access_token_create(user=user, organization=organization)
    yield user, key, pat
    with django_db_blocker.unblock():
        OrganizationTokenSettings.objects.filter(organization=organization).update(**saved_token_settings)
        if not had_policy:
            SessionPolicy.objects.filter(organization=organization).delete()
        User.objects.filter(email__in=[SDK_ADMIN, SDK_CREATED]).delete()
        AuditEvent.objects.filter(id__gt=last_event).delete()


def _status_of(call) -> int:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value.status_code


def test_sdk_users_client(world, live_server_url, sdk_admin, django_db_blocker):
    user, key, pat = sdk_admin
    client = LabelStudio(base_url=live_server_url, api_key=key)
    b_client = LabelStudio(base_url=live_server_url, api_key=world.owner_b.legacy_key)

    people = client.users.list(ordering="email")
    emails = [person.email for person in people]
    assert emails == sorted(emails) and SDK_ADMIN in emails and "owner@b.test" not in emails
    assert client.users.get(id=world.annotator_a.user.pk).email == "annotator@a.test"

    created = client.users.create(username=SDK_CREATED, email=SDK_CREATED, first_name="Made")
    assert created.email == SDK_CREATED and created.organization_membership.role == "AN"
    assert client.users.update(id=created.id, last_name="By SDK").last_name == "By SDK"
    assert _status_of(lambda: b_client.users.get(id=created.id)) == 404
    assert _status_of(lambda: b_client.users.update(id=created.id, first_name="B")) == 404
    assert _status_of(lambda: b_client.users.delete(id=created.id)) == 404
    client.users.delete(id=created.id)
    assert _status_of(lambda: client.users.get(id=created.id)) == 404
    with django_db_blocker.unblock():
        assert User.objects.filter(email=SDK_CREATED).exists()  # the account stays

    me = client.users.get_current_user()
    assert me.email == SDK_ADMIN and me.organization_membership.role == "AD"
    updated = client.users.update_current_user(first_name="Renamed", allow_newsletters=False,
                                               custom_hotkeys={"annotation:submit": "ctrl+enter"})
    assert (updated.first_name, updated.allow_newsletters) == ("Renamed", False)
    assert client.users.get_hotkeys().custom_hotkeys == {"annotation:submit": "ctrl+enter"}
    assert client.users.update_hotkeys(custom_hotkeys={"a": "b"}).custom_hotkeys == {"a": "b"}

    # The legacy token: stored hashed (no value to show), reset gives a new one that works.
    assert client.users.get_token().detail
    new_key = client.users.reset_token().token
    assert new_key and new_key != key
    assert _status_of(lambda: client.users.get_current_user()) == 401
    assert LabelStudio(base_url=live_server_url, api_key=new_key).users.whoami().email == SDK_ADMIN


def test_sdk_session_policy_client(world, live_server_url, sdk_admin):
    _, key, pat = sdk_admin
    client = LabelStudio(base_url=live_server_url, api_key=pat)

    policy = client.session_policy.get()
    assert policy.max_session_age >= 1 and policy.max_time_between_activity >= 1
    changed = client.session_policy.update(max_session_age=720, max_time_between_activity=60)
    assert (changed.max_session_age, changed.max_time_between_activity) == (720, 60)
    assert client.session_policy.get().max_session_age == 720
    assert _status_of(lambda: client.session_policy.update(max_session_age=0)) == 400
    # Org B's owner sees and changes B's policy only.
    b_client = LabelStudio(base_url=live_server_url, api_key=world.owner_b.legacy_key)
    assert b_client.session_policy.get().max_session_age == 60 * 24 * 14
    annotator = LabelStudio(base_url=live_server_url, api_key=world.annotator_a.legacy_key)
    assert annotator.session_policy.get().max_session_age == 720
    assert _status_of(lambda: annotator.session_policy.update(max_session_age=5)) == 403


def test_sdk_tokens_and_jwt_settings_clients(world, live_server_url, sdk_admin, django_db_blocker):
    user, key, pat = sdk_admin
    client = LabelStudio(base_url=live_server_url, api_key=key)

    created = client.tokens.create()
    assert created.token and created.expires_at
    assert len(client.tokens.list(ordering="-created_at")) >= 2
    assert client.tokens.refresh(refresh=created.token).access
    rotated = client.tokens.rotate(refresh=created.token).refresh
    assert rotated and rotated != created.token
    assert _status_of(lambda: client.tokens.refresh(refresh=created.token)) == 401
    client.tokens.blacklist(refresh=rotated)
    assert _status_of(lambda: client.tokens.refresh(refresh=rotated)) == 401

    assert 1 <= client.jwt_settings.get().api_token_ttl_days <= 365
    changed = client.jwt_settings.update(api_token_ttl_days=30, api_tokens_enabled=True,
                                         legacy_api_tokens_enabled=True)
    assert changed.api_token_ttl_days == 30
    assert client.jwt_settings.get().api_token_ttl_days == 30
    annotator = LabelStudio(base_url=live_server_url, api_key=world.annotator_a.legacy_key)
    assert _status_of(lambda: annotator.jwt_settings.update(api_token_ttl_days=1)) == 403

    with django_db_blocker.unblock():
        actions = set(AuditEvent.objects.filter(organization=world.org_a, actor=user)
                      .values_list("action", flat=True))
    assert {"token.created", "token.rotated", "token.revoked", "token.settings_changed"} <= actions


def test_sdk_activity_logs_client(world, live_server_url, sdk_admin):
    _, key, _ = sdk_admin
    client = LabelStudio(base_url=live_server_url, api_key=key)
    client.users.get_current_user()
    logs = client.activity_logs.list(page=1, page_size=10)
    assert logs is not None
    annotator = LabelStudio(base_url=live_server_url, api_key=world.annotator_a.legacy_key)
    assert _status_of(lambda: annotator.activity_logs.list()) == 403
