"""SCIM Users of an organization: who an account becomes, filters and pages, PUT and PATCH, and
what deactivating or deleting does to the member."""

# ruff: noqa: E402 - the shared SCIM fixtures are registered for assert rewriting before they are imported
import pytest

pytest.register_assert_rewrite("sso.tests.scim_fixtures")
pytest_plugins = ["sso.tests.scim_fixtures"]

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from accounts import services as accounts
from accounts.models import AuditEvent, LegacyToken, Membership, PersonalAccessToken, Role, User
from conftest import PASSWORD
from labeling.models import ProjectMember
from sso.models import ScimGroupMember, ScimUser, SsoGrant
from sso.tests.scim_fixtures import USER_URN, access_in_a, account, member_with_tokens, scim_error_of
from workspaces.models import WorkspaceMembership

pytestmark = pytest.mark.django_db


# --- creation ------------------------------------------------------------------------------------

def test_a_new_person_gets_an_account_without_password_and_the_default_role(world, scim_a):
    response = scim_a.post("/Users", {
        "schemas": [USER_URN], "userName": "grace", "externalId": "idp-42", "displayName": "Grace H.",
        "name": {"givenName": "Grace", "familyName": "Hopper"},
        "emails": [{"value": "g.home@example.test", "type": "home"},
                   {"value": "Grace@Example.test", "type": "work", "primary": True}],
    })
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"] == body["meta"]["location"] == f"http://testserver/o/org-a/scim/v2/Users/{body['id']}"
    assert response["ETag"] == body["meta"]["version"] and body["meta"]["version"].startswith('W/"')
    assert body["userName"] == "grace" and body["externalId"] == "idp-42" and "groups" not in body
    user = account("grace@example.test")  # the primary email, lowercased
    assert (user.first_name, user.last_name, user.has_usable_password()) == ("Grace", "Hopper", False)
    assert Membership.objects.get(user=user, organization=world.org_a).role == world.org_a.default_role
    assert AuditEvent.objects.filter(organization=world.org_a, action="scim.user_created",
                                     target_id=str(user.pk)).exists()


def test_the_user_name_is_the_email_when_no_email_is_given(scim_a):
    scim_a.post("/Users", {"userName": "Ada@Example.test"})
    assert account("ada@example.test")
    assert scim_error_of(scim_a.post("/Users", {"userName": "not-an-email"}), 400, "invalidValue").startswith(
        "A User needs an email address")
    scim_error_of(scim_a.post("/Users", {"userName": "x", "emails": [{"value": "nope", "primary": True}]}),
                  400, "invalidValue")
    scim_error_of(scim_a.post("/Users", {"emails": [{"value": "nobody@example.test"}]}), 400, "invalidValue")
    scim_error_of(scim_a.post("/Users", {"userName": "y@example.test", "active": "maybe"}), 400, "invalidValue")


def test_a_user_name_is_unique_in_the_organization_whatever_its_case(world, scim_a):
    scim_a.create_user("Lin@example.test")
    detail = scim_error_of(scim_a.post("/Users", {"userName": "LIN@example.test",
                                                  "emails": [{"value": "other@example.test"}]}), 409, "uniqueness")
    assert "lin@example.test" in detail.lower()
    # Another account already provisioned here under another userName.
    scim_error_of(scim_a.post("/Users", {"userName": "lin-again", "emails": [{"value": "lin@example.test"}]}),
                  409, "uniqueness")
    assert ScimUser.objects.filter(organization=world.org_a, user_name__iexact="lin@example.test").count() == 1


def test_an_existing_account_is_linked_and_keeps_its_role_here(world, scim_a):
    reviewer = world.reviewer_a.user
    body = scim_a.create_user("reviewer-at-idp", email="Reviewer@A.test", given="Rhea")
    assert ScimUser.objects.get(pk=body["id"]).user == reviewer
    assert Membership.objects.get(user=reviewer, organization=world.org_a).role == Role.REVIEWER
    reviewer.refresh_from_db()
    assert reviewer.first_name == "Rhea"  # a member of org A only: the profile follows A's IdP


def test_a_deactivated_account_is_not_provisioned(world, scim_a):
    user = accounts.user_create(email="gone@example.test", password=PASSWORD)
    accounts.user_soft_delete(user=user)
    scim_error_of(scim_a.post("/Users", {"userName": "gone@example.test"}), 400, "invalidValue")
    assert not Membership.objects.filter(user=user).exists()


# --- filters and pages ---------------------------------------------------------------------------

@pytest.fixture
def people(scim_a) -> dict[str, str]:
    """Three Users besides A's annotator (world.scim_user_a): name -> SCIM id."""
    return {
        "ann": scim_a.create_user("ann.lee@north.test", externalId="EXT-1", displayName="Ann Lee")["id"],
        "bob": scim_a.create_user("bob@south.test", email="robert@south.test", externalId="ext-2",
                                  displayName="Bob Stone")["id"],
        "cy": scim_a.create_user("cy@north.test", externalId="EXT-3", displayName="Cy Annan", active=False)["id"],
    }


def _found(scim, filter_text: str, **query) -> set[str]:
    response = scim.get("/Users", query={"filter": filter_text, **query})
    assert response.status_code == 200, (filter_text, response.content)
    body = response.json()
    assert body["totalResults"] == len(body["Resources"])
    return {resource["id"] for resource in body["Resources"]}


@pytest.mark.parametrize(("filter_text", "expected"), [
    ('userName eq "ANN.LEE@north.test"', {"ann"}),
    ('username EQ "bob@south.test"', {"bob"}),
    ('userName co "north"', {"ann", "cy"}),
    ('userName sw "b"', {"bob"}),
    ('externalId eq "EXT-1"', {"ann"}),
    ('externalId eq "ext-1"', set()),  # externalId is case-exact
    ('externalId sw "EXT"', {"ann", "cy"}),
    ('emails.value eq "Robert@South.test"', {"bob"}),
    ('emails co "south"', {"bob"}),
    ('emails.value sw "cy@"', {"cy"}),
    ('displayName co "ann"', {"ann", "cy"}),
    ('displayName eq "Bob Stone"', {"bob"}),
    ("active eq false", {"cy"}),
    ('externalId pr and userName co ".test" and active eq true', {"ann", "bob"}),
    ('userName sw "ann" or userName sw "cy"', {"ann", "cy"}),
    ('(userName sw "ann" or userName sw "bob") and externalId eq "ext-2"', {"bob"}),
    ('userName sw "ann" or (userName sw "bob" and active eq false)', {"ann"}),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "cy@north.test"', {"cy"}),
    ('displayName co "Nobody"', set()),
])
def test_filters(scim_a, people, filter_text, expected):
    assert _found(scim_a, filter_text) - {str(pk) for pk in _others()} == {people[name] for name in expected}


def _others():
    return ScimUser.objects.exclude(user_name__in=["ann.lee@north.test", "bob@south.test", "cy@north.test"]) \
        .values_list("pk", flat=True)


def test_present_finds_who_has_the_attribute(world, scim_a, people):
    assert _found(scim_a, "externalId pr") == {*people.values(), str(world.scim_user_a.pk)}
    assert _found(scim_a, "displayName pr") == {*people.values(), str(world.scim_user_a.pk)}
    assert _found(scim_a, "emails pr") == {*people.values(), str(world.scim_user_a.pk)}
    assert _found(scim_a, "active pr") == set(people.values())  # A's annotator was provisioned without it


@pytest.mark.parametrize("filter_text", [
    'title eq "x"', 'meta.lastModified gt "2020-01-01"', 'userName ne "x"', 'userName ew "x"',
    'not (userName eq "x")', 'userName eq', 'userName "x"', '(userName eq "x"', 'userName eq "x")',
    'userName eq "x" and', 'emails[type eq "work"]', 'active eq "yes"', 'userName eq true',
    'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x"', 'userName eq "unclosed',
])
def test_bad_filters_are_invalid_filter(scim_a, filter_text):
    scim_error_of(scim_a.get("/Users", query={"filter": filter_text}), 400, "invalidFilter")


def test_pages_are_one_based_by_id(world, scim_a, people):
    everyone = _found(scim_a, 'userName co "@"')
    ordered = sorted(everyone, key=int)
    page = scim_a.get("/Users", query={"startIndex": "2", "count": "2"}).json()
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (len(everyone), 2, 2)
    assert [r["id"] for r in page["Resources"]] == ordered[1:3]
    assert scim_a.get("/Users", query={"count": "0"}).json()["Resources"] == []
    assert scim_a.get("/Users", query={"count": "0"}).json()["totalResults"] == len(everyone)
    beyond = scim_a.get("/Users", query={"startIndex": "99"}).json()
    assert (beyond["totalResults"], beyond["Resources"]) == (len(everyone), [])
    assert scim_a.get("/Users", query={"startIndex": "-5", "count": "1"}).json()["Resources"][0]["id"] == ordered[0]
    scim_error_of(scim_a.get("/Users", query={"count": "many"}), 400, "invalidValue")
    # POST .search reads the same parameters from a SearchRequest.
    searched = scim_a.post("/Users/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                                              "filter": 'userName sw "bob"', "attributes": ["userName"]}).json()
    assert [r["id"] for r in searched["Resources"]] == [people["bob"]]
    assert set(searched["Resources"][0]) == {"schemas", "id", "userName"}


def test_a_page_costs_the_same_queries_for_3_users_or_1000_and_count_is_capped(world, scim_a):
    users = User.objects.bulk_create([User(email=f"bulk{n}@bulk.test", username=f"bulk{n}@bulk.test")
                                      for n in range(1005)])
    rows = ScimUser.objects.bulk_create([ScimUser(organization=world.org_a, user=user, user_name=user.email,
                                                  resource={"userName": user.email}) for user in users])
    group = scim_a.create_group("bulk-group", [str(row.pk) for row in rows[:50]])
    assert len(group["members"]) == 50

    def timed(count: int) -> tuple[int, dict]:
        with CaptureQueriesContext(connection) as queries:
            body = scim_a.get("/Users", query={"count": str(count)}).json()
        return len(queries), body

    small_queries, small = timed(3)
    big_queries, big = timed(5000)
    assert len(small["Resources"]) == 3 and big["itemsPerPage"] == 1000 and big["totalResults"] == 1006
    assert big_queries == small_queries
    assert sum(1 for r in big["Resources"] if r.get("groups")) == 51  # the bulk group's 50, and A's annotator
    with CaptureQueriesContext(connection) as group_queries:
        groups = scim_a.get("/Groups", query={"count": "1000"}).json()
    assert {g["displayName"]: len(g.get("members", [])) for g in groups["Resources"]}["bulk-group"] == 50
    assert len(group_queries) == small_queries


# --- reading one ---------------------------------------------------------------------------------

def test_attributes_and_excluded_attributes(world, scim_a):
    path = f"/Users/{world.scim_user_a.pk}"
    only = scim_a.get(path, query={"attributes": "userName,name.givenName,emails.value"}).json()
    assert set(only) == {"schemas", "id", "userName", "emails"}
    assert only["emails"] == [{"value": "annotator@a.test"}]
    without = scim_a.get(path, query={"excludedAttributes": "groups,emails,meta"}).json()
    assert {"groups", "emails", "meta"}.isdisjoint(without) and without["userName"] == "annotator@a.test"
    assert scim_a.get(path, query={"excludedAttributes": "id"}).json()["id"] == str(world.scim_user_a.pk)


def test_if_none_match_answers_304_until_the_user_changes(world, scim_a):
    path = f"/Users/{world.scim_user_a.pk}"
    version = scim_a.get(path)["ETag"]
    assert scim_a.get(path, headers={"If-None-Match": version}).status_code == 304
    scim_a.patch(path, [{"op": "replace", "path": "displayName", "value": "Annie"}])
    assert scim_a.get(path, headers={"If-None-Match": version}).status_code == 200


# --- PUT -----------------------------------------------------------------------------------------

def test_put_replaces_the_user_and_can_change_the_user_name(world, scim_a):
    created = scim_a.create_user("old.name@example.test", displayName="Shown", externalId="x1")
    path = f"/Users/{created['id']}"
    replaced = scim_a.put(path, {"schemas": [USER_URN], "userName": "new.name@example.test",
                                 "name": {"givenName": "New", "familyName": "Name"},
                                 "emails": [{"value": "new.name@example.test", "primary": True}]})
    assert replaced.status_code == 200, replaced.content
    body = replaced.json()
    assert body["userName"] == "new.name@example.test" and "displayName" not in body and "externalId" not in body
    assert _found(scim_a, 'userName eq "new.name@example.test"') == {created["id"]}
    assert _found(scim_a, 'userName eq "old.name@example.test"') == set()
    user = ScimUser.objects.get(pk=created["id"]).user
    assert (user.email, user.first_name) == ("new.name@example.test", "New")  # in org A alone: the account follows
    scim_error_of(scim_a.put(path, {"userName": world.scim_user_a.user_name.upper(),
                                    "emails": [{"value": "new.name@example.test"}]}), 409, "uniqueness")
    scim_error_of(scim_a.put(path, {"emails": [{"value": "new.name@example.test"}]}), 400, "invalidValue")


def test_a_stale_if_match_is_refused_with_412(world, scim_a):
    created = scim_a.create_user("etag@example.test")
    path = f"/Users/{created['id']}"
    first = created["meta"]["version"]
    changed = scim_a.patch(path, [{"op": "replace", "path": "displayName", "value": "One"}],
                           headers={"If-Match": first})
    assert changed.status_code == 200 and changed["ETag"] != first
    scim_error_of(scim_a.patch(path, [{"op": "replace", "path": "displayName", "value": "Two"}],
                               headers={"If-Match": first}), 412)
    scim_error_of(scim_a.delete(path, headers={"If-Match": first}), 412)
    assert scim_a.get(path).json()["displayName"] == "One"
    assert scim_a.delete(path, headers={"If-Match": changed["ETag"]}).status_code == 204


# --- PATCH ---------------------------------------------------------------------------------------

@pytest.fixture
def grace(scim_a) -> str:
    return scim_a.create_user("grace@navy.test", displayName="Grace",
                              emails=[{"value": "grace@navy.test", "type": "work", "primary": True},
                                      {"value": "grace@home.test", "type": "home"}])["id"]


def _patched(scim, pk, operations) -> dict:
    response = scim.patch(f"/Users/{pk}", operations)
    assert response.status_code == 200, response.content
    return response.json()


def test_patch_paths_and_values(scim_a, grace):
    body = _patched(scim_a, grace, [
        {"op": "replace", "path": "name.givenName", "value": "Amazing"},
        {"op": "add", "path": "name.familyName", "value": "Hopper"},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "rear.admiral@navy.test"},
        {"op": "remove", "path": 'emails[type eq "home"]'},
        {"op": "add", "path": "externalId", "value": "E-1"},
    ])
    assert body["name"] == {"givenName": "Amazing", "familyName": "Hopper"}
    assert body["emails"] == [{"value": "rear.admiral@navy.test", "type": "work", "primary": True}]
    assert ScimUser.objects.get(pk=grace).user.email == "rear.admiral@navy.test"
    # A path-less value's keys may be paths; add to a multi-valued attribute appends.
    body = _patched(scim_a, grace, [
        {"op": "replace", "value": {"displayName": "G. Hopper", "name.formatted": "Grace Hopper"}},
        {"op": "add", "path": "emails", "value": [{"value": "gh@other.test", "type": "other", "primary": True}]},
    ])
    assert body["displayName"] == "G. Hopper" and body["name"]["formatted"] == "Grace Hopper"
    # The new primary is the only primary one.
    assert [(e["value"], e.get("primary")) for e in body["emails"]] == [
        ("rear.admiral@navy.test", False), ("gh@other.test", True)]
    body = _patched(scim_a, grace, [{"op": "remove", "path": "name"}, {"op": "remove", "path": "displayName"}])
    assert "name" not in body and "displayName" not in body


def test_patch_creates_the_value_a_filtered_path_names_when_it_is_missing(scim_a, grace):
    body = _patched(scim_a, grace, [{"op": "add", "path": 'emails[type eq "other"].value', "value": "o@x.test"}])
    assert {"value": "o@x.test", "type": "other"} in body["emails"]
    scim_error_of(scim_a.patch(f"/Users/{grace}", [
        {"op": "replace", "path": 'emails[value co "nowhere"].type', "value": "work"}]), 400, "noTarget")
    scim_error_of(scim_a.patch(f"/Users/{grace}", [
        {"op": "replace", "path": 'emails[type eq "nowhere"]', "value": {"value": "q@x.test"}}]), 400, "noTarget")


def test_patch_ignores_attributes_we_do_not_keep(scim_a, grace):
    body = _patched(scim_a, grace, [
        {"op": "Add", "path": "title", "value": "Rear Admiral"},
        {"op": "Replace", "path": 'phoneNumbers[type eq "work"].value', "value": "+1 555"},
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
         "value": "Navy"},
        {"op": "Replace", "value": {"preferredLanguage": "en", "displayName": "Kept"}},
    ])
    assert body["displayName"] == "Kept"
    assert not {"title", "phoneNumbers", "preferredLanguage"} & set(body)
    assert not any(key.startswith("urn:ietf:params:scim:schemas:extension") for key in body)


@pytest.mark.parametrize(("operations", "scim_type"), [
    ([{"op": "remove"}], "noTarget"),
    ([{"op": "move", "path": "displayName", "value": "x"}], "invalidSyntax"),
    ([{"op": "replace", "path": "groups", "value": []}], "mutability"),
    ([{"op": "replace", "path": "id", "value": "7"}], "mutability"),
    ([{"op": "replace", "path": "meta.created", "value": "x"}], "mutability"),
    ([{"op": "replace", "path": "emails[type eq", "value": "x"}], "invalidPath"),
    ([{"op": "replace", "path": "displayName.first", "value": "x"}], "invalidPath"),
    ([{"op": "replace", "path": 'name[givenName eq "x"]', "value": {}}], "invalidPath"),
    ([{"op": "replace", "path": "active", "value": "maybe"}], "invalidValue"),
    ([{"op": "replace", "path": "displayName", "value": {"not": "a string"}}], "invalidValue"),
    ([{"op": "replace", "value": "not an object"}], "invalidValue"),
    ([{"op": "remove", "path": "userName"}], "invalidValue"),
    ([], "invalidSyntax"),
])
def test_bad_patches_are_refused_and_change_nothing(scim_a, grace, operations, scim_type):
    before = scim_a.get(f"/Users/{grace}").json()
    scim_error_of(scim_a.patch(f"/Users/{grace}", operations), 400, scim_type)
    assert scim_a.get(f"/Users/{grace}").json() == before


def test_a_patch_body_needs_the_patch_op_schema(scim_a, grace):
    response = scim_a.call("patch", f"/Users/{grace}", {"schemas": [USER_URN],
                                                        "Operations": [{"op": "add", "path": "displayName",
                                                                        "value": "x"}]})
    scim_error_of(response, 400, "invalidSyntax")


# --- deactivation, reactivation, deletion --------------------------------------------------------

def test_deactivation_ends_access_here_at_once_and_reactivation_restores_the_role(world, scim_a, api, client):
    person, key, pat = member_with_tokens("rhea@a.test", world.org_a, role=Role.REVIEWER)
    access = api.access_for(pat)
    assert api.call("get", "/api/current-user/whoami", token=key).status_code == 200
    body = scim_a.create_user("rhea@a.test")
    client.force_login(person)
    assert client.get("/o/org-a/").status_code == 200

    _patched(scim_a, body["id"], [{"op": "replace", "path": "active", "value": False}])
    assert Membership.objects.get(user=person, organization=world.org_a).role == Role.DEACTIVATED
    assert api.call("get", "/api/current-user/whoami", token=key).status_code == 401
    assert api.call("get", "/api/current-user/whoami", bearer=access).status_code == 401
    assert api.call("post", "/api/token/refresh/", json={"refresh": pat}).status_code == 401
    assert client.get("/o/org-a/").status_code == 403  # the same browser session, next request
    assert AuditEvent.objects.filter(organization=world.org_a, action="scim.user_deactivated").exists()
    # Deactivating again changes nothing more.
    _patched(scim_a, body["id"], [{"op": "replace", "path": "active", "value": False}])

    reactivated = _patched(scim_a, body["id"], [{"op": "replace", "path": "active", "value": True}])
    assert reactivated["active"] is True and "_scriptorium" not in reactivated
    assert Membership.objects.get(user=person, organization=world.org_a).role == Role.REVIEWER
    assert client.get("/o/org-a/").status_code == 200
    assert AuditEvent.objects.filter(organization=world.org_a, action="scim.user_reactivated").exists()


def test_reactivation_applies_the_group_mappings_again(world, scim_a, mapped_a):
    body = scim_a.create_user("mapped@example.test")
    user = ScimUser.objects.get(pk=body["id"]).user
    _patched(scim_a, body["id"], [{"op": "replace", "path": "active", "value": False}])
    # Joining a group while deactivated gives nothing yet ...
    scim_a.create_group("editors", [body["id"]])
    assert access_in_a(world, user)["role"] == Role.DEACTIVATED
    assert access_in_a(world, user)["workspaces"] == set()
    # ... and everything the group maps to once active again.
    _patched(scim_a, body["id"], [{"op": "replace", "path": "active", "value": True}])
    assert access_in_a(world, user) == {"role": Role.MANAGER, "workspaces": {"Ledgers"}, "projects": {"Charters"},
                                        "project_roles": {"Charters": Role.REVIEWER}}


def test_a_member_deactivated_by_hand_stays_deactivated(world, scim_a):
    """An administrator's deactivation is theirs to undo: SCIM restores only what SCIM took."""
    body = scim_a.create_user("manual@example.test")
    user = ScimUser.objects.get(pk=body["id"]).user
    Membership.objects.filter(user=user, organization=world.org_a).update(role=Role.DEACTIVATED)
    _patched(scim_a, body["id"], [{"op": "replace", "path": "displayName", "value": "Still active at the IdP"}])
    _patched(scim_a, body["id"], [{"op": "replace", "path": "active", "value": False}])
    _patched(scim_a, body["id"], [{"op": "replace", "path": "active", "value": True}])
    assert access_in_a(world, user)["role"] == Role.DEACTIVATED


def test_the_last_active_owner_can_be_neither_deactivated_nor_deleted(world, scim_a):
    owner = scim_a.create_user("owner-at-idp", email="owner@a.test")
    path = f"/Users/{owner['id']}"
    detail = scim_error_of(scim_a.patch(path, [{"op": "replace", "value": {"active": False}}]), 400, "mutability")
    assert "last active Owner" in detail
    scim_error_of(scim_a.put(path, {"userName": "owner-at-idp", "emails": [{"value": "owner@a.test"}],
                                    "active": False}), 400, "mutability")
    assert "last active Owner" in scim_error_of(scim_a.delete(path), 409)
    assert Membership.objects.get(user=world.owner_a.user, organization=world.org_a).role == Role.OWNER
    assert LegacyToken.objects.filter(user=world.owner_a.user, organization=world.org_a).exists()
    assert scim_a.get(path).json()["active"] is True

    accounts.membership_set(user=world.admin_a.user, organization=world.org_a, role=Role.OWNER)
    assert scim_a.patch(path, [{"op": "replace", "value": {"active": False}}]).status_code == 200
    assert Membership.objects.get(user=world.owner_a.user, organization=world.org_a).role == Role.DEACTIVATED


def test_delete_removes_the_member_and_what_they_had_here_but_not_the_account(world, scim_a, mapped_a, api):
    person, key, pat = member_with_tokens("leaver@a.test", world.org_a)
    body = scim_a.create_user("leaver@a.test")
    scim_a.create_group("editors", [body["id"]])
    with tenant_context(world.org_a):
        ProjectMember.objects.create(project=world.project_a, user=person)  # given by hand
    assert access_in_a(world, person)["workspaces"] == {"Ledgers"}
    assert SsoGrant.objects.filter(user=person, organization=world.org_a).exists()

    assert scim_a.delete(f"/Users/{body['id']}").status_code == 204
    scim_error_of(scim_a.get(f"/Users/{body['id']}"), 404)
    assert not Membership.objects.filter(user=person, organization=world.org_a).exists()
    with tenant_context(world.org_a):
        assert not WorkspaceMembership.objects.filter(user_id=person.pk).exists()
        assert not ProjectMember.objects.filter(user_id=person.pk).exists()
    assert not SsoGrant.objects.filter(user=person, organization=world.org_a).exists()
    assert not ScimGroupMember.objects.filter(user=person).exists()
    assert not LegacyToken.objects.filter(user=person, organization=world.org_a).exists()
    assert PersonalAccessToken.objects.get(user=person, organization=world.org_a).blacklisted_at is not None
    assert api.call("get", "/api/current-user/whoami", token=key).status_code == 401
    assert User.objects.filter(pk=person.pk, is_active=True).exists()
    assert AuditEvent.objects.filter(organization=world.org_a, action="scim.user_deleted",
                                     target_id=str(person.pk)).exists()
    # Provisioned again later: a new SCIM User, back with the default role only.
    again = scim_a.create_user("leaver@a.test")
    assert again["id"] != body["id"]
    assert access_in_a(world, person) == {"role": world.org_a.default_role, "workspaces": set(),
                                          "projects": set(), "project_roles": {}}


def test_only_a_token_an_owner_made_may_deactivate_or_delete_an_owner(world, scim_a, client):
    from sso.tests.scim_fixtures import ScimCalls, token_of

    second = scim_a.create_user("second-owner@a.test")
    user = ScimUser.objects.get(pk=second["id"]).user
    Membership.objects.filter(user=user, organization=world.org_a).update(role=Role.OWNER)
    path = f"/Users/{second['id']}"
    by_admin = ScimCalls(client, token=token_of(world.org_a, world.admin_a.user), slug="org-a")
    detail = scim_error_of(by_admin.patch(path, [{"op": "replace", "value": {"active": False}}]), 400, "mutability")
    assert "made by an Owner" in detail
    assert "made by an Owner" in scim_error_of(by_admin.delete(path), 409)
    assert access_in_a(world, user)["role"] == Role.OWNER
    # An Owner's token may: this Owner is not the last one.
    _patched(scim_a, second["id"], [{"op": "replace", "path": "active", "value": False}])
    assert access_in_a(world, user)["role"] == Role.DEACTIVATED
