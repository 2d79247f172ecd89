"""The official label-studio-sdk 2.x against a real server (daphne on the test database).

No django_db mark: what these tests create must be committed for the server process to see it.
"""

import pytest
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from accounts import services


def _base_urls(live_server_url):
    return [live_server_url, f"{live_server_url}/o/org-a/"]


@pytest.mark.parametrize("kind", ["legacy", "pat"])
def test_whoami_with_legacy_token_and_pat_on_bare_host_and_org_url(world, live_server_url, kind):
    key = world.owner_a.legacy_key if kind == "legacy" else world.owner_a.pat
    for base_url in _base_urls(live_server_url):
        me = LabelStudio(base_url=base_url, api_key=key).users.whoami()
        assert me.email == "owner@a.test", base_url
        assert me.active_organization == world.org_a.pk


@pytest.mark.parametrize("kind", ["legacy", "pat"])
def test_token_of_b_on_a_url_is_403(world, live_server_url, kind):
    key = world.owner_b.legacy_key if kind == "legacy" else world.owner_b.pat
    with pytest.raises(ApiError) as caught:
        LabelStudio(base_url=f"{live_server_url}/o/org-a/", api_key=key).users.whoami()
    assert caught.value.status_code == 403


def test_blacklisted_pat_gets_401(world, live_server_url, django_db_blocker):
    with django_db_blocker.unblock():
        _, pat = services.personal_access_token_create(user=world.owner_a.user, organization=world.org_a)
    client = LabelStudio(base_url=live_server_url, api_key=pat)
    assert client.users.whoami().email == "owner@a.test"
    client.tokens.blacklist(refresh=pat)
    with pytest.raises(ApiError) as caught:
        LabelStudio(base_url=live_server_url, api_key=pat).users.whoami()
    assert caught.value.status_code == 401


def test_expired_pat_gets_401(world, live_server_url, django_db_blocker):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import PersonalAccessToken

    with django_db_blocker.unblock():
        row, pat = services.personal_access_token_create(user=world.owner_a.user, organization=world.org_a)
        PersonalAccessToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ApiError) as caught:
        LabelStudio(base_url=live_server_url, api_key=pat).users.whoami()
    assert caught.value.status_code == 401


def test_sdk_token_and_jwt_settings_clients(world, live_server_url):
    client = LabelStudio(base_url=live_server_url, api_key=world.owner_a.legacy_key)
    created = client.tokens.create()
    assert created.token
    assert any(row.expires_at for row in client.tokens.list())
    settings = client.jwt_settings.get()
    assert 1 <= settings.api_token_ttl_days <= 365
    assert client.versions.get().edition == "Enterprise"
