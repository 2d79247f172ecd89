"""The request sequences of Microsoft Entra ID and Okta provisioning, with their payloads and
dialects, and what the person notices: their role, the workspaces and projects groups give and
take back, and the end of their access (API tokens and browser session) once deactivated."""

# ruff: noqa: E402 - the shared SCIM fixtures are registered for assert rewriting before they are imported
import pytest

pytest.register_assert_rewrite("sso.tests.scim_fixtures")
pytest_plugins = ["sso.tests.scim_fixtures"]

from accounts import services as accounts
from accounts.models import Membership, Role
from sso.models import ScimUser
from sso.tests.scim_fixtures import GROUP_URN, PATCH_OP, USER_URN, access_in_a, scim_error_of

pytestmark = pytest.mark.django_db

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
EDITOR = {"role": Role.MANAGER, "workspaces": {"Ledgers"}, "projects": {"Charters"},
          "project_roles": {"Charters": Role.REVIEWER}}


def _ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    return response.json() if response.content else {}


def _uses_the_app(world, user, client, api) -> tuple[str, str]:
    """The person works in org A: an API key, a PAT's access token, a browser session."""
    key = accounts.legacy_token_issue(user=user, organization=world.org_a)
    _, pat = accounts.personal_access_token_create(user=user, organization=world.org_a)
    access = api.access_for(pat)
    client.force_login(user)
    assert api.call("get", "/api/current-user/whoami", token=key).status_code == 200
    assert client.get("/o/org-a/").status_code == 200
    return key, access


def _access_has_ended(world, user, client, api, key: str, access: str) -> None:
    assert Membership.objects.get(user=user, organization=world.org_a).role == Role.DEACTIVATED
    assert api.call("get", "/api/current-user/whoami", token=key).status_code == 401
    assert api.call("get", "/api/current-user/whoami", bearer=access).status_code == 401
    assert api.call("get", "/o/org-a/api/projects/", token=key).status_code == 401
    assert client.get("/o/org-a/").status_code == 403
    assert client.get("/o/org-a/api/current-user/whoami").status_code == 403


def _patch(operations: list) -> dict:
    return {"schemas": [PATCH_OP], "Operations": operations}


def test_entra_id_provisioning_sequence(world, scim_a, mapped_a, client, api):
    scim = scim_a
    # Entra ID looks the user up first, then creates them with what its attribute mappings give.
    query = {"filter": 'userName eq "alex.wu@contoso.test"'}
    assert _ok(scim.get("/Users", query=query))["totalResults"] == 0
    created = _ok(scim.call("post", "/Users", {
        "schemas": [USER_URN, ENTERPRISE],
        "externalId": "8f3c2a", "userName": "alex.wu@contoso.test", "active": True, "displayName": "Alex Wu",
        "emails": [{"primary": True, "type": "work", "value": "alex.wu@contoso.test"}],
        "meta": {"resourceType": "User"}, "title": "Archivist", "preferredLanguage": "en-GB",
        "name": {"formatted": "Alex Wu", "familyName": "Wu", "givenName": "Alex"},
        "addresses": [{"type": "work", "country": "GB", "primary": True}],
        ENTERPRISE: {"department": "Records", "employeeNumber": "17"},
    }), 201)
    user_id = created["id"]
    assert not {"title", "addresses", ENTERPRISE} & set(created)
    found = _ok(scim.get("/Users", query=query))
    assert [r["id"] for r in found["Resources"]] == [user_id]
    alex = ScimUser.objects.get(pk=user_id).user
    assert access_in_a(world, alex) == {"role": world.org_a.default_role, "workspaces": set(), "projects": set(),
                                        "project_roles": {}}

    # Attribute updates: capitalized ops, filtered email path, extension attributes, several at once.
    updated = _ok(scim.call("patch", f"/Users/{user_id}", _patch([
        {"op": "Replace", "path": "displayName", "value": "Alex W."},
        {"op": "Replace", "path": "name.familyName", "value": "Wu-Li"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "alex.wuli@contoso.test"},
        {"op": "Add", "path": f"{ENTERPRISE}:department", "value": "Archives"},
    ])))
    assert updated["displayName"] == "Alex W." and updated["name"]["familyName"] == "Wu-Li"
    alex.refresh_from_db()
    assert (alex.email, alex.last_name) == ("alex.wuli@contoso.test", "Wu-Li")

    # Groups: created empty, read lean, members added and removed by value lists.
    group = _ok(scim.call("post", "/Groups", {"schemas": [GROUP_URN], "externalId": "g-77", "displayName": "editors",
                                             "members": []}), 201)
    lean = _ok(scim.get("/Groups", query={"excludedAttributes": "members", "filter": 'displayName eq "editors"'}))
    assert [g["id"] for g in lean["Resources"]] == [group["id"]] and "members" not in lean["Resources"][0]
    _ok(scim.call("patch", f"/Groups/{group['id']}", _patch([
        {"op": "Add", "path": "members", "value": [{"value": user_id}]}])))
    assert access_in_a(world, alex) == EDITOR
    _ok(scim.call("patch", f"/Groups/{group['id']}", _patch([
        {"op": "Remove", "path": "members", "value": [{"value": user_id}]}])))
    assert access_in_a(world, alex) == {"role": world.org_a.default_role, "workspaces": set(), "projects": set(),
                                        "project_roles": {}}
    _ok(scim.call("patch", f"/Groups/{group['id']}", _patch([
        {"op": "Add", "path": "members", "value": [{"value": user_id}]}])))
    assert access_in_a(world, alex) == EDITOR

    # Unassigned in Entra ID: a string boolean.
    key, access = _uses_the_app(world, alex, client, api)
    disabled = _ok(scim.call("patch", f"/Users/{user_id}", _patch([
        {"op": "Replace", "path": "active", "value": "False"}])))
    assert disabled["active"] is False
    _access_has_ended(world, alex, client, api, key, access)
    assert _ok(scim.get("/Users", query={"filter": "active eq false"}))["Resources"][0]["id"] == user_id

    # Deleted at last: they leave the organization, with what the group gave.
    assert scim.delete(f"/Users/{user_id}").status_code == 204
    assert not Membership.objects.filter(user=alex, organization=world.org_a).exists()
    assert access_in_a(world, alex) == {"role": None, "workspaces": set(), "projects": set(), "project_roles": {}}
    assert _ok(scim.get(f"/Groups/{group['id']}")).get("members") is None


def test_okta_provisioning_sequence(world, scim_a, mapped_a, client, api):
    scim = scim_a
    query = {"filter": 'userName eq "sam.lee@okta.test"', "startIndex": "1", "count": "100"}
    assert _ok(scim.get("/Users", query=query))["Resources"] == []
    created = _ok(scim.call("post", "/Users", {
        "schemas": [USER_URN], "userName": "sam.lee@okta.test", "locale": "en-US", "externalId": "00u1abcd",
        "name": {"givenName": "Sam", "familyName": "Lee"}, "displayName": "Sam Lee",
        "emails": [{"primary": True, "value": "sam.lee@okta.test", "type": "work"}],
        "groups": [], "password": "Okta-Sends-1-Sometimes", "active": True,
    }), 201)
    user_id = created["id"]
    sam = ScimUser.objects.get(pk=user_id).user
    # The password Okta may send is neither kept nor set: the account has no usable password.
    assert not sam.has_usable_password()
    assert "Okta-Sends" not in str(ScimUser.objects.get(pk=user_id).resource) and "password" not in created

    # Okta updates profiles with a PUT of the whole user.
    replaced = _ok(scim.call("put", f"/Users/{user_id}", {
        "schemas": [USER_URN], "id": user_id, "userName": "sam.lee@okta.test", "externalId": "00u1abcd",
        "name": {"givenName": "Samantha", "familyName": "Lee"}, "displayName": "Samantha Lee",
        "emails": [{"primary": True, "value": "sam.lee@okta.test", "type": "work"}], "active": True,
    }))
    assert replaced["displayName"] == "Samantha Lee"
    sam.refresh_from_db()
    assert sam.first_name == "Samantha"

    # Push groups: create, add with display, remove by filtered path, rename with a path-less replace.
    group = _ok(scim.call("post", "/Groups", {"schemas": [GROUP_URN], "displayName": "editors", "members": []}), 201)
    path = f"/Groups/{group['id']}"
    _ok(scim.call("patch", path, _patch([
        {"op": "add", "path": "members", "value": [{"value": user_id, "display": "sam.lee@okta.test"}]}])))
    assert access_in_a(world, sam) == EDITOR
    _ok(scim.call("patch", path, _patch([{"op": "remove", "path": f'members[value eq "{user_id}"]'}])))
    assert access_in_a(world, sam)["workspaces"] == set()
    _ok(scim.call("patch", path, _patch([{"op": "add", "path": "members", "value": [{"value": user_id}]}])))
    renamed = _ok(scim.call("patch", path, _patch([
        {"op": "replace", "value": {"id": group["id"], "displayName": "staff"}}])))
    assert renamed["displayName"] == "staff"
    assert access_in_a(world, sam) == {"role": Role.ANNOTATOR, "workspaces": set(), "projects": set(),
                                       "project_roles": {}}

    # Deactivation: Okta's path-less replace.
    key, access = _uses_the_app(world, sam, client, api)
    _ok(scim.call("patch", f"/Users/{user_id}", _patch([{"op": "replace", "value": {"active": False}}])))
    _access_has_ended(world, sam, client, api, key, access)
    # Reactivation gives back their role (and what their groups map to); tokens stay revoked.
    _ok(scim.call("patch", f"/Users/{user_id}", _patch([{"op": "replace", "value": {"active": True}}])))
    assert access_in_a(world, sam)["role"] == Role.ANNOTATOR
    assert client.get("/o/org-a/").status_code == 200
    assert api.call("get", "/api/current-user/whoami", token=key).status_code == 401

    assert scim.delete(path).status_code == 204
    assert access_in_a(world, sam)["role"] == world.org_a.default_role
    assert scim.delete(f"/Users/{user_id}").status_code == 204
    scim_error_of(scim.get(f"/Users/{user_id}"), 404)
