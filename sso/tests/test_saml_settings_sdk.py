"""The official SDK's `client.sso.saml` (get, update, reset, validate_metadata_url) against a real
server (daphne on the test database).

No django_db mark: what the server writes is committed, and the fixture removes it (org A's SAML
settings row and the audit events) so no other test meets it.
"""

import pytest
from label_studio_sdk.client import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from accounts.models import AuditEvent
from sso.models import SamlSettings
from sso.tests.saml_idp import TestIdentityProvider


@pytest.fixture
def committed_org_a_saml(world, django_db_blocker):
    """What the live server commits to org A's SAML settings, removed afterwards."""
    with django_db_blocker.unblock():
        assert not SamlSettings.objects.filter(organization=world.org_a).exists()
        last_event = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    yield
    with django_db_blocker.unblock():
        SamlSettings.objects.filter(organization=world.org_a).delete()
        AuditEvent.objects.filter(id__gt=last_event).delete()


def test_the_sdk_saml_client(world, live_server_url, saml_keys, committed_org_a_saml):
    idp = TestIdentityProvider(directory=saml_keys.directory, entity_id="https://idp-sdk.example.com/metadata",
                               key_pair=saml_keys.idp_a, sp_metadata=[])
    client = LabelStudio(base_url=live_server_url, api_key=world.owner_a.legacy_key)
    updated = client.sso.saml.update(domain="a.test", idp_provider="okta", metadata_xml=idp.metadata_xml,
                                     roles_groups=[["Annotator", "staff"]],
                                     workspaces_groups=[["A's workspace", "staff"]])
    assert updated.domain == "a.test" and updated.mapping_email == "email"
    got = client.sso.saml.get()
    assert got.acs_url == f"{live_server_url}/o/org-a/saml/acs"
    assert got.roles_groups == [["Annotator", "staff"]] and got.workspaces_groups == [["A's workspace", "staff"]]
    assert got.model_extra["idp_entity_id"] == "https://idp-sdk.example.com/metadata"
    checked = client.sso.saml.validate_metadata_url(metadata_url="http://127.0.0.1:9/metadata")
    assert checked.valid is False
    with pytest.raises(ApiError) as refused:
        client.sso.saml.update(domain="gmail.com")
    assert refused.value.status_code == 400 and "domain" in refused.value.body["validation_errors"]
    b_client = LabelStudio(base_url=f"{live_server_url}/o/org-a/", api_key=world.owner_b.legacy_key)
    with pytest.raises(ApiError) as other_org:
        b_client.sso.saml.get()
    assert other_org.value.status_code == 403
    client.sso.saml.reset()
    assert client.sso.saml.get().domain == ""
