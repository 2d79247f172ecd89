"""SCIM of organization A never reads, creates or changes anything of organization B, even for a
person who is a member of both."""

# ruff: noqa: E402 - the shared SCIM fixtures are registered for assert rewriting before they are imported
import pytest

pytest.register_assert_rewrite("sso.tests.scim_fixtures")
pytest_plugins = ["sso.tests.scim_fixtures"]

from accounts.models import LegacyToken, Membership, PersonalAccessToken, Role, User
from sso.models import ScimGroup, ScimGroupMember, ScimUser
from sso.tests.scim_fixtures import member_with_tokens, scim_error_of

pytestmark = pytest.mark.django_db


def _b_state(world) -> tuple:
    return (
        list(ScimUser.objects.filter(organization=world.org_b).order_by("id").values()),
        list(ScimGroup.objects.filter(organization=world.org_b).order_by("id").values()),
        sorted(ScimGroupMember.objects.filter(group__organization=world.org_b).values_list("group_id", "user_id")),
        sorted(Membership.objects.filter(organization=world.org_b).values_list("user_id", "role")),
        sorted(LegacyToken.objects.filter(organization=world.org_b).values_list("key_hash", flat=True)),
        sorted(PersonalAccessToken.objects.filter(organization=world.org_b).values_list("jti", "blacklisted_at")),
    )


def test_a_token_of_a_on_b_s_prefix_is_refused(scim_a):
    for path in ("/Users", "/Groups", "/ServiceProviderConfig", "/Nope"):
        response = scim_a.client.get(f"/o/org-b/scim/v2{path}", headers={"Authorization": f"Bearer {scim_a.token}"})
        scim_error_of(response, 403)


def test_each_token_sees_its_own_organization_on_the_bare_host(world, scim_a, scim_b):
    b_user = scim_b.create_user("b.only@example.test")
    scim_b.create_group("B's group", [b_user["id"]])
    a_users = scim_a.get("/Users", bare=True).json()
    assert {r["id"] for r in a_users["Resources"]} == {str(world.scim_user_a.pk)}
    assert b"b.only" not in scim_a.get("/Users", bare=True, query={"filter": 'userName co "b.only"'}).content
    assert {r["displayName"] for r in scim_a.get("/Groups", bare=True).json()["Resources"]} == {"A's SCIM group"}
    b_users = scim_b.get("/Users", bare=True).json()
    assert {r["id"] for r in b_users["Resources"]} == {b_user["id"]}
    assert b"a.test" not in scim_b.get("/Users", bare=True).content
    assert b"A's" not in scim_b.get("/Groups", bare=True).content


@pytest.mark.parametrize("bare", [True, False])
def test_a_cannot_touch_b_s_users_or_groups_by_id(world, scim_a, scim_b, bare):
    b_user = scim_b.create_user("b.target@example.test", displayName="B's person")
    b_group = scim_b.create_group("B's team", [b_user["id"]])
    before = _b_state(world)
    for path in (f"/Users/{b_user['id']}", f"/Groups/{b_group['id']}"):
        scim_error_of(scim_a.get(path, bare=bare), 404)
        scim_error_of(scim_a.put(path, {"userName": "stolen@example.test", "displayName": "stolen"}, bare=bare), 404)
        scim_error_of(scim_a.patch(path, [{"op": "replace", "value": {"active": False, "displayName": "x"}}],
                                   bare=bare), 404)
        scim_error_of(scim_a.delete(path, bare=bare), 404)
    # Nor put B's user into A's groups.
    scim_error_of(scim_a.patch(f"/Groups/{world.scim_group_a.pk}", [
        {"op": "add", "path": "members", "value": [{"value": b_user["id"]}]}], bare=bare), 400, "invalidValue")
    assert _b_state(world) == before


def test_a_person_in_both_organizations_keeps_b_whatever_a_s_scim_does(world, scim_a, scim_b, api):
    person, a_key, _ = member_with_tokens("both@shared.test", world.org_a, role=Role.REVIEWER)
    User.objects.filter(pk=person.pk).update(first_name="Kit", last_name="Both")
    _, b_key, b_pat = member_with_tokens("both@shared.test", world.org_b, role=Role.MANAGER)
    b_access = api.access_for(b_pat)
    in_a = scim_a.create_user("kit@idp-a", email="both@shared.test", given="Kathleen", family="Alpha")
    before = _b_state(world)

    # A's IdP renames them and changes their email: A's view changes, the account does not.
    changed = scim_a.patch(f"/Users/{in_a['id']}", [
        {"op": "replace", "path": "name.givenName", "value": "K."},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "k.alpha@idp-a.test"}]).json()
    assert changed["name"]["givenName"] == "K." and changed["emails"][0]["value"] == "k.alpha@idp-a.test"
    person.refresh_from_db()
    assert (person.first_name, person.last_name, person.email) == ("Kit", "Both", "both@shared.test")

    # A deactivates them: A's access ends, B's membership and tokens stay.
    scim_a.patch(f"/Users/{in_a['id']}", [{"op": "replace", "path": "active", "value": False}])
    assert Membership.objects.get(user=person, organization=world.org_a).role == Role.DEACTIVATED
    assert api.call("get", "/api/current-user/whoami", token=a_key).status_code == 401
    assert api.call("get", "/api/current-user/whoami", token=b_key).status_code == 200
    assert api.call("get", "/o/org-b/api/current-user/whoami", bearer=b_access).status_code == 200
    assert _b_state(world) == before

    # B's IdP provisions the same person on its own: its own record, its own userName.
    in_b = scim_b.create_user("kit@idp-a", email="both@shared.test")
    assert ScimUser.objects.get(pk=in_b["id"]).user == person and in_b["id"] != in_a["id"]
    assert Membership.objects.get(user=person, organization=world.org_b).role == Role.MANAGER

    # A deletes them: B is untouched.
    after_b_linked = _b_state(world)
    assert scim_a.delete(f"/Users/{in_a['id']}").status_code == 204
    assert Membership.objects.get(user=person, organization=world.org_b).role == Role.MANAGER
    assert api.call("get", "/api/current-user/whoami", token=b_key).status_code == 200
    assert _b_state(world) == after_b_linked
    assert scim_b.get(f"/Users/{in_b['id']}").status_code == 200
