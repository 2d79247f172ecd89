"""The official label-studio-sdk 2.x invite clients against a real server (daphne on the test database).

No django_db mark: the server commits what these calls create, so the test removes it afterwards.
"""

import pytest
from label_studio_sdk.client import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from accounts.models import AuditEvent, Invite
from accounts.tokens import hash_secret


@pytest.fixture
def org_b_invites_cleaned(world, django_db_blocker):
    yield
    with django_db_blocker.unblock():
        Invite.objects.filter(organization=world.org_b).delete()
        AuditEvent.objects.filter(organization=world.org_b, action__startswith="invite.").delete()


def test_sdk_invite_link_send_revoke_and_reset(world, live_server_url, django_db_blocker, org_b_invites_cleaned):
    client = LabelStudio(base_url=live_server_url, api_key=world.owner_b.legacy_key)

    link = client.organizations.invites.get_invite_link()
    assert link.token and link.invite_url == f"{live_server_url}/invite/{link.token}/"
    assert client.organizations.invites.get_invite_link().token == link.token

    client.organizations.invites.send_email(emails=["sdk-invitee@example.test"], role="AN")
    with django_db_blocker.unblock():
        sent = Invite.objects.get(organization=world.org_b, email="sdk-invitee@example.test")
        assert (sent.role, sent.revoked_at, sent.created_by_id) == ("AN", None, world.owner_b.user.pk)

    client.organizations.invites.revoke_invite(email="sdk-invitee@example.test")
    with pytest.raises(ApiError) as caught:
        client.organizations.invites.revoke_invite(email="sdk-invitee@example.test")
    assert caught.value.status_code == 404
    with pytest.raises(ApiError) as caught:
        client.organizations.invites.send_email(emails=["not-an-email"], role="AN")
    assert caught.value.status_code == 400

    reset = client.organizations.reset_token()
    assert reset.token != link.token and reset.invite_url.endswith(f"/invite/{reset.token}/")
    with django_db_blocker.unblock():
        assert Invite.objects.get(token_hash=hash_secret(link.token)).revoked_at is not None
        assert Invite.objects.get(token_hash=hash_secret(reset.token)).organization_id == world.org_b.pk
