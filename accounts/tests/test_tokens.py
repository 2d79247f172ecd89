"""API tokens: legacy keys and JWT PATs, org-bound, scoped, hashed, expiring, blacklistable."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services
from accounts.models import LegacyToken, OrganizationTokenSettings, PersonalAccessToken

pytestmark = pytest.mark.django_db

WHOAMI = "/api/current-user/whoami"


def test_tokens_are_stored_hashed(world):
    stored = {row.key_hash for row in LegacyToken.objects.all()}
    assert world.owner_a.legacy_key not in stored
    assert services.hash_secret(world.owner_a.legacy_key) in stored
    pat_rows = PersonalAccessToken.objects.values_list("token_hash", flat=True)
    assert world.owner_a.pat not in pat_rows
    assert services.hash_secret(world.owner_a.pat) in pat_rows


def test_pat_trades_for_access_token_that_authenticates(world, api):
    access = api.access_for(world.owner_a.pat)
    response = api.call("get", WHOAMI, bearer=access)
    assert response.status_code == 200
    assert response.json()["email"] == "owner@a.test"


def test_refresh_token_is_not_accepted_as_bearer(world, api):
    response = api.call("get", WHOAMI, bearer=world.owner_a.pat)
    assert response.status_code == 401
    assert "access" in response.json()["detail"]


@pytest.mark.parametrize("header", ["Token nope", "Token ", "Bearer abc.def.ghi", "Bearer x"])
def test_malformed_or_unknown_token_is_401_with_a_message(world, client, header):
    response = client.get(WHOAMI, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["detail"]


def test_blacklisted_pat_and_its_access_tokens_are_refused(world, api):
    _, pat = services.personal_access_token_create(user=world.owner_a.user, organization=world.org_a)
    access = api.access_for(pat)

    assert api.call("post", "/api/token/blacklist/", json={"refresh": pat}).status_code == 204

    refused = api.call("post", "/api/token/refresh/", json={"refresh": pat})
    assert refused.status_code == 401
    assert "blacklisted" in refused.json()["detail"]
    assert api.call("get", WHOAMI, bearer=access).status_code == 401


def test_blacklisting_an_unknown_token_is_404(world, api):
    _, pat = services.personal_access_token_create(user=world.owner_a.user, organization=world.org_a)
    PersonalAccessToken.objects.filter(token_hash=services.hash_secret(pat)).delete()
    assert api.call("post", "/api/token/blacklist/", json={"refresh": pat}).status_code == 404


def test_expired_pat_is_refused(world, api):
    pat_row, pat = services.personal_access_token_create(user=world.owner_a.user, organization=world.org_a)
    access = api.access_for(pat)
    PersonalAccessToken.objects.filter(pk=pat_row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    refused = api.call("post", "/api/token/refresh/", json={"refresh": pat})
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]
    assert api.call("get", WHOAMI, bearer=access).status_code == 401


def test_expired_legacy_token_is_refused(world, api):
    key = services.legacy_token_issue(user=world.annotator_a.user, organization=world.org_a)
    LegacyToken.objects.filter(key_hash=services.hash_secret(key)).update(expires_at=timezone.now())
    response = api.call("get", WHOAMI, token=key)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_rotate_issues_a_new_pat_and_blacklists_the_old(world, api):
    _, pat = services.personal_access_token_create(user=world.owner_a.user, organization=world.org_a)
    response = api.call("post", "/api/token/rotate/", token=world.owner_a.legacy_key, json={"refresh": pat})
    assert response.status_code == 200
    new = response.json()["refresh"]
    assert api.call("post", "/api/token/refresh/", json={"refresh": pat}).status_code == 401
    assert api.call("post", "/api/token/refresh/", json={"refresh": new}).status_code == 200


def test_list_and_create_pats_with_scopes_and_expiry(world, api):
    created = api.call("post", "/api/token/", token=world.owner_a.legacy_key, json={"scopes": ["read"], "ttl_days": 7})
    assert created.status_code == 201
    body = created.json()
    assert body["scopes"] == ["read"]
    listed = api.call("get", "/api/token/", token=world.owner_a.legacy_key).json()
    assert body["id"] in [row["id"] for row in listed]
    assert all(set(row) >= {"token", "created_at", "expires_at"} for row in listed)
    assert body["token"] not in str(listed), "a PAT is shown only once"


def test_bad_token_create_input_names_the_field(world, api):
    response = api.call("post", "/api/token/", token=world.owner_a.legacy_key, json={"scopes": ["root"]})
    assert response.status_code == 400
    assert "scopes" in response.json()["validation_errors"]
    response = api.call("post", "/api/token/", token=world.owner_a.legacy_key, json={"ttl_days": 9999})
    assert response.status_code == 400
    assert "ttl_days" in response.json()["validation_errors"]


def test_read_scope_cannot_write(world, api):
    _, pat = services.personal_access_token_create(
        user=world.owner_a.user, organization=world.org_a, scopes=["read"]
    )
    access = api.access_for(pat)
    assert api.call("get", WHOAMI, bearer=access).status_code == 200
    response = api.call("post", "/api/current-user/reset-token/", bearer=access)
    assert response.status_code == 403
    assert "write" in response.json()["detail"]


def test_a_token_cannot_mint_a_broader_token(world, api):
    _, pat = services.personal_access_token_create(
        user=world.owner_a.user, organization=world.org_a, scopes=["read", "write"]
    )
    response = api.call("post", "/api/token/", bearer=api.access_for(pat), json={"scopes": ["read", "admin"]})
    assert response.status_code == 400
    assert "scopes" in response.json()["validation_errors"]


def test_effective_right_is_role_and_scope_for_jwt_settings(world, api):
    payload = {"api_token_ttl_days": 30, "api_tokens_enabled": True, "legacy_api_tokens_enabled": True}
    # Owner with admin scope: allowed.
    response = api.call("post", "/api/jwt/settings", token=world.owner_a.legacy_key, json=payload)
    assert response.status_code == 201
    assert response.json()["api_token_ttl_days"] == 30
    # Owner without the admin scope: refused.
    _, pat = services.personal_access_token_create(
        user=world.owner_a.user, organization=world.org_a, scopes=["read", "write"]
    )
    assert api.call("post", "/api/jwt/settings", bearer=api.access_for(pat), json=payload).status_code == 403
    # Annotator with every scope: refused by role.
    assert api.call("post", "/api/jwt/settings", token=world.annotator_a.legacy_key, json=payload).status_code == 403
    # Everyone may read.
    assert api.call("get", "/api/jwt/settings", token=world.annotator_a.legacy_key).status_code == 200


def test_jwt_settings_validation(world, api):
    response = api.call("post", "/api/jwt/settings", token=world.owner_a.legacy_key, json={"api_token_ttl_days": 0})
    assert response.status_code == 400
    assert "api_token_ttl_days" in response.json()["validation_errors"]


def test_disabling_legacy_tokens_refuses_them(world, api):
    OrganizationTokenSettings.objects.filter(organization=world.org_a).update(legacy_api_tokens_enabled=False)
    response = api.call("get", WHOAMI, token=world.owner_a.legacy_key)
    assert response.status_code == 401
    assert "disabled" in response.json()["detail"]
    assert api.call("get", WHOAMI, token=world.owner_b.legacy_key).status_code == 200


def test_reset_legacy_token_replaces_the_old_one(world, api):
    key = services.legacy_token_issue(user=world.annotator_a.user, organization=world.org_a)
    response = api.call("post", "/api/current-user/reset-token/", token=key)
    assert response.status_code == 201
    new_key = response.json()["token"]
    assert api.call("get", WHOAMI, token=key).status_code == 401
    assert api.call("get", WHOAMI, token=new_key).status_code == 200


def test_current_user_token_issues_a_key_once(world, client):
    client.force_login(world.annotator_a.user)
    LegacyToken.objects.filter(user=world.annotator_a.user).delete()
    first = client.get("/o/org-a/api/current-user/token").json()
    assert len(first["token"]) == 40
    second = client.get("/o/org-a/api/current-user/token").json()
    assert "token" not in second
    assert "reset-token" in second["detail"]


def test_whoami_shape_matches_label_studio(world, api):
    body = api.call("get", WHOAMI, token=world.annotator_a.legacy_key).json()
    assert body["organization_membership"] == {"role": "AN", "active": True, "organization_id": world.org_a.pk}
    required = {"id", "email", "username", "initials", "avatar", "last_activity", "lse_fields", "org_membership"}
    assert required <= set(body)


def test_current_user_update(world, api):
    response = api.call("patch", "/api/current-user", token=world.annotator_a.legacy_key, json={"first_name": "Ann"})
    assert response.status_code == 200
    assert response.json()["first_name"] == "Ann"


def test_soft_deleted_user_loses_every_credential(world, api, client):
    from accounts.models import User

    user = User.objects.get(pk=world.annotator_a.user.pk)
    access = api.access_for(world.annotator_a.pat)
    services.user_soft_delete(user=user)

    assert User.objects.filter(pk=user.pk).exists(), "soft delete keeps the row"
    for response in (
        api.call("get", WHOAMI, token=world.annotator_a.legacy_key),
        api.call("get", WHOAMI, bearer=access),
        api.call("post", "/api/token/refresh/", json={"refresh": world.annotator_a.pat}),
    ):
        assert response.status_code == 401
        assert "deactivated" in response.json()["detail"]
    client.force_login(user)
    assert client.get("/o/org-a/").status_code == 302, "sessions of inactive users are not honoured"
