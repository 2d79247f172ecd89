"""The audit log: events recorded next to administrative writes, read by admins of their own
organization only."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from django.utils import timezone

from accounts import audit, services
from accounts.access import denial_message
from accounts.models import AuditEvent, Membership, OrganizationTokenSettings

pytestmark = pytest.mark.django_db

AUDIT = "/api/audit-log"


def _actions_since(organization, moment) -> list[str]:
    return list(AuditEvent.objects.filter(organization=organization, created_at__gte=moment)
                .order_by("created_at", "id").values_list("action", flat=True))


def test_record_describes_target_actor_and_client_address(world):
    membership = Membership.objects.get(user=world.annotator_a.user, organization=world.org_a)
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.7")

    event = audit.record(organization=world.org_a, actor=world.owner_a.user, action="member.role_changed",
                         target=membership, details={"from": "AN", "to": "RE"}, request=request)

    event.refresh_from_db()
    assert (event.target_type, event.target_id) == ("membership", str(membership.pk))
    assert event.target_repr == str(membership)
    assert event.actor_id == world.owner_a.user.pk
    assert event.ip_address == "203.0.113.7"
    assert event.details == {"from": "AN", "to": "RE"}


def test_record_without_actor_target_or_request(world):
    event = audit.record(organization=world.org_a, actor=None, action="organization.changed")
    assert (event.actor_id, event.target_type, event.target_id, event.ip_address) == (None, "", "", None)
    assert event.details == {}


def test_events_of_filters_by_action_family_actor_and_time(world):
    start = timezone.now()
    audit.record(organization=world.org_a, actor=world.owner_a.user, action="invite.sent")
    audit.record(organization=world.org_a, actor=world.admin_a.user, action="invite.revoked")
    audit.record(organization=world.org_a, actor=world.admin_a.user, action="token.created")
    audit.record(organization=world.org_b, actor=world.owner_b.user, action="invite.sent")

    recent = audit.events_of(organization=world.org_a, since=start)
    assert [e.action for e in recent] == ["token.created", "invite.revoked", "invite.sent"]
    assert [e.action for e in audit.events_of(organization=world.org_a, since=start, action="invite.")] == [
        "invite.revoked", "invite.sent"]
    assert audit.events_of(organization=world.org_a, since=start, action="invite.*").count() == 2
    assert audit.events_of(organization=world.org_a, since=start, action="invite").count() == 0
    assert audit.events_of(organization=world.org_a, since=start, actor_id=world.admin_a.user.pk).count() == 2
    assert audit.events_of(organization=world.org_a, since=start, until=start).count() == 0


@pytest.mark.parametrize("role", ["OW", "AD"])
def test_admins_read_the_audit_log_newest_first(world, as_member, role):
    start = timezone.now()
    audit.record(organization=world.org_a, actor=world.owner_a.user, action="test.first")
    audit.record(organization=world.org_a, actor=world.owner_a.user, action="test.second",
                 details={"why": "because"})

    response = as_member(world.members_a()[role])("get", f"{AUDIT}?action=test.&page_size=10")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 2 and body["next"] is None and body["previous"] is None
    newest = body["results"][0]
    assert newest["action"] == "test.second"
    assert newest["actor"]["email"] == "owner@a.test"
    assert newest["details"] == {"why": "because"}
    assert newest["created_at"] >= start.isoformat()[:19]


@pytest.mark.parametrize("role", ["MA", "RE", "AN"])
def test_other_roles_are_refused(world, as_member, role):
    response = as_member(world.members_a()[role])("get", AUDIT)
    assert response.status_code == 403
    assert response.json()["detail"] == denial_message("audit.view")


def test_org_b_never_sees_org_a_events(world, api):
    audit.record(organization=world.org_a, actor=world.owner_a.user, action="test.secret_of_a")

    response = api.call("get", f"{AUDIT}?page_size=1000", token=world.owner_b.legacy_key)

    assert response.status_code == 200
    assert all(row["action"] != "test.secret_of_a" for row in response.json()["results"])
    assert not AuditEvent.objects.filter(organization=world.org_b, action="test.secret_of_a").exists()
    # A's actor filter from B finds nothing of A either.
    by_a_owner = api.call("get", f"{AUDIT}?actor={world.owner_a.user.pk}", token=world.owner_b.legacy_key)
    assert by_a_owner.json()["count"] == 0


def test_filters_by_actor_and_date_range(world, owner):
    audit.record(organization=world.org_a, actor=world.admin_a.user, action="test.by_admin")
    audit.record(organization=world.org_a, actor=world.owner_a.user, action="test.by_owner")
    AuditEvent.objects.filter(action="test.by_owner").update(created_at=timezone.now() - timedelta(days=3))

    by_admin = owner("get", f"{AUDIT}?action=test.&actor={world.admin_a.user.pk}").json()
    assert [row["action"] for row in by_admin["results"]] == ["test.by_admin"]

    day = (timezone.now() - timedelta(days=1)).date().isoformat()
    recent = owner("get", f"{AUDIT}?action=test.&start_date={day}").json()
    assert [row["action"] for row in recent["results"]] == ["test.by_admin"]
    older = owner("get", f"{AUDIT}?action=test.&end_date={day}").json()
    assert [row["action"] for row in older["results"]] == ["test.by_owner"]


@pytest.mark.parametrize("query, field", [("start_date=yesterday", "start_date"), ("until=2024-13-45", "until"),
                                          ("actor=me", "actor"), ("page_size=abc&page=x", None)])
def test_bad_filters_are_400_naming_the_parameter(world, owner, query, field):
    response = owner("get", f"{AUDIT}?{query}")
    if field is None:  # DRF's paginator: an unreadable page is a 404, as Label Studio answers
        assert response.status_code == 404
        return
    assert response.status_code == 400, response.content
    assert field in response.json()["validation_errors"]


def test_pages(world, owner):
    for n in range(5):
        audit.record(organization=world.org_a, actor=None, action=f"test.page{n}")
    first = owner("get", f"{AUDIT}?action=test.&page_size=2").json()
    assert first["count"] == 5 and first["next"] and first["previous"] is None
    last = owner("get", f"{AUDIT}?action=test.&page_size=2&page=3").json()
    assert [row["action"] for row in last["results"]] == ["test.page0"]


def test_token_lifecycle_is_audited_without_secrets(world, api):
    start = timezone.now()
    key = world.annotator_a.legacy_key

    created = api.call("post", "/api/token/", token=key, json={})
    assert created.status_code == 201
    pat = created.json()["token"]
    rotated = api.call("post", "/api/token/rotate/", token=key, json={"refresh": pat})
    assert rotated.status_code == 200
    new_pat = rotated.json()["refresh"]
    assert api.call("post", "/api/token/blacklist/", json={"refresh": new_pat}).status_code == 204
    reset = api.call("post", "/api/current-user/reset-token/", token=key)
    assert reset.status_code == 201

    assert _actions_since(world.org_a, start) == ["token.created", "token.rotated", "token.revoked",
                                                  "token.legacy_reset"]
    events = AuditEvent.objects.filter(organization=world.org_a, created_at__gte=start)
    assert {e.actor_id for e in events} == {world.annotator_a.user.pk}
    stored = json.dumps([[e.details, e.target_repr] for e in events])
    for secret in (pat, new_pat, reset.json()["token"], key):
        assert secret not in stored


def test_jwt_settings_change_is_audited_with_the_difference(world, owner):
    start = timezone.now()
    current = OrganizationTokenSettings.objects.get(organization=world.org_a)

    response = owner("post", "/api/jwt/settings", json={
        "api_tokens_enabled": True, "legacy_api_tokens_enabled": True,
        "api_token_ttl_days": current.api_token_ttl_days - 1})

    assert response.status_code == 201
    event = AuditEvent.objects.get(organization=world.org_a, created_at__gte=start)
    assert event.action == "token.settings_changed"
    assert event.details == {"api_token_ttl_days": {"from": current.api_token_ttl_days,
                                                    "to": current.api_token_ttl_days - 1}}


def test_services_record_in_the_same_transaction(world):
    """A write that fails leaves no event behind."""
    start = timezone.now()
    with pytest.raises(ValidationError):
        services.legacy_token_issue(user=world.owner_b.user, organization=world.org_b,
                                    key=world.owner_a.legacy_key)
    assert _actions_since(world.org_b, start) == []
