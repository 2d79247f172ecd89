"""The official SDK 2.x organizations client against a real server (daphne on the test database).

No django_db mark: what the test creates is committed so the server process sees it, and the
test puts everything back (organization settings, its member, tags, overrides, audit events).
"""

import pytest
from label_studio_sdk.client import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from accounts import services
from accounts.access import PERMISSIONS
from accounts.models import AuditEvent, Membership, MemberTag, OrganizationPermission, Role, User
from conftest import PASSWORD

SDK_EMAIL = "sdk-member@a.test"
OVERRIDDEN = "webhooks.view"


@pytest.fixture
def sdk_member(world, django_db_blocker):
    """A committed Annotator of org A for the SDK to change and remove; everything the test
    changed in org A is put back afterwards."""
    organization = world.org_a
    with django_db_blocker.unblock():
        last_event = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        settings = {name: getattr(organization, name) for name in ("title", "default_role", "embed_domains")}
        user = services.user_create(email=SDK_EMAIL, password=PASSWORD, first_name="Sdk")
        services.membership_set(user=user, organization=organization, role=Role.ANNOTATOR)
    yield user
    with django_db_blocker.unblock():
        for name, value in settings.items():
            setattr(organization, name, value)
        organization.save(update_fields=list(settings))
        MemberTag.objects.filter(organization=organization, label__startswith="sdk-").delete()
        OrganizationPermission.objects.filter(organization=organization, permission=OVERRIDDEN).delete()
        User.objects.filter(email=SDK_EMAIL).delete()
        AuditEvent.objects.filter(id__gt=last_event).delete()


def test_sdk_organizations_client(world, live_server_url, sdk_member, django_db_blocker):
    org_id = world.org_a.pk
    client = LabelStudio(base_url=live_server_url, api_key=world.owner_a.legacy_key)
    on_org_url = LabelStudio(base_url=f"{live_server_url}/o/org-a", api_key=world.owner_a.pat)

    # Organizations.
    assert [org.id for org in client.organizations.list()] == [org_id]
    assert [org.id for org in on_org_url.organizations.list(ordering="-title")] == [org_id]
    organization = client.organizations.get(id=org_id)
    assert organization.title == "Org A" and organization.default_role == "AN"
    changed = client.organizations.update(id=org_id, title="Org A (SDK)", embed_domains=[{"domain": "sdk.example"}])
    assert changed.title == "Org A (SDK)" and changed.embed_domains == [{"domain": "sdk.example"}]
    assert client.organizations.update_default_role(id=org_id, default_role="RE").default_role == "RE"
    with pytest.raises(ApiError) as caught:
        client.organizations.get(id=world.org_b.pk)
    assert caught.value.status_code == 404

    # Members: the pager walks every page (and stops at the first empty one).
    every = list(client.organizations.members.list(id=org_id, page=1, page_size=2))
    assert SDK_EMAIL in {member.user.email for member in every}
    assert len(every) == len({member.id for member in every})
    [found] = list(client.organizations.members.list(id=org_id, role=["AN"], search="sdk-member"))
    assert found.role == "AN" and found.user.id == sdk_member.pk
    detail = client.organizations.members.get(id=org_id, user_pk=sdk_member.pk, contributed_to_projects=True)
    assert detail.user == sdk_member.pk and detail.annotations_count == 0
    assert client.organizations.members.update(id=org_id, user_id=sdk_member.pk, role="RE").role == "RE"

    # Member tags.
    tag = client.organizations.member_tags.create(id=org_id, label="sdk-tag")
    assert tag.label == "sdk-tag" and tag.member_count == 0
    listed = client.organizations.member_tags.list(id=org_id, search="sdk-")
    assert [row.label for row in listed.results] == ["sdk-tag"] and listed.count == 1
    assert client.organizations.member_tags.get(id=org_id, tag_pk=tag.id).id == tag.id
    assert client.organizations.member_tags.update(id=org_id, tag_pk=tag.id, label="sdk-renamed").label == "sdk-renamed"
    assigned = client.organizations.member_tags.assign(
        id=org_id, all_=False, included=[sdk_member.pk], bulk_organization_member_tag_assignment_request_tags=[tag.id])
    assert assigned.assigned == 1
    assert client.organizations.member_tags.get(id=org_id, tag_pk=tag.id).member_count == 1
    assert client.organizations.member_tags.bulk.post(id=org_id, labels=["sdk-a", "sdk-b", "sdk-a"]).created == 2
    with django_db_blocker.unblock():
        bulk_ids = list(MemberTag.objects.filter(organization=world.org_a, label__in=["sdk-a", "sdk-b"])
                        .values_list("pk", flat=True))
    deleted = client.organizations.member_tags.bulk.delete(id=org_id, ids=",".join(map(str, bulk_ids)))
    assert deleted.deleted == 2
    client.organizations.member_tags.delete(id=org_id, tag_pk=tag.id)
    with pytest.raises(ApiError) as caught:
        client.organizations.member_tags.get(id=org_id, tag_pk=tag.id)
    assert caught.value.status_code == 404

    # Permission overrides.
    options = client.organizations.permissions.get_options(id=org_id)
    assert {option.permission for option in options} == set(PERMISSIONS)
    created = client.organizations.permissions.create(id=org_id, permission=OVERRIDDEN, roles=["AD", "OW"])
    assert created.roles == ["OW", "AD"] and created.default == list(PERMISSIONS[OVERRIDDEN].default)
    assert [row.permission for row in client.organizations.permissions.list(id=org_id)] == [OVERRIDDEN]
    assert client.organizations.permissions.get(id=org_id, permission_key=OVERRIDDEN).roles == ["OW", "AD"]
    replaced = client.organizations.permissions.replace(id=org_id, permission_key=OVERRIDDEN, permission=OVERRIDDEN,
                                                        roles=["OW"])
    assert replaced.roles == ["OW"]
    updated = client.organizations.permissions.update(id=org_id, permission_key=OVERRIDDEN, roles=["OW", "MA"])
    assert updated.roles == ["OW", "MA"]
    with pytest.raises(ApiError) as caught:
        client.organizations.permissions.create(id=org_id, permission="no.such.key", roles=["OW"])
    assert caught.value.status_code == 400
    client.organizations.permissions.delete(id=org_id, permission_key=OVERRIDDEN)
    assert client.organizations.permissions.list(id=org_id) == []

    # Removal last: the member's access ends, and they are gone from the organization.
    client.organizations.members.delete(id=org_id, user_pk=sdk_member.pk)
    with django_db_blocker.unblock():
        assert not Membership.objects.filter(user=sdk_member, organization=world.org_a).exists()
    with pytest.raises(ApiError) as caught:
        client.organizations.members.get(id=org_id, user_pk=sdk_member.pk)
    assert caught.value.status_code == 404
    with pytest.raises(ApiError) as caught:
        client.organizations.members.delete(id=org_id, user_pk=world.owner_a.user.pk)
    assert caught.value.status_code == 405
