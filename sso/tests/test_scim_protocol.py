"""The SCIM service provider as a protocol: discovery documents, who may call it, and errors in
SCIM's format everywhere (RFC 7644 sections 3.12 and 4)."""

# ruff: noqa: E402 - the shared SCIM fixtures are registered for assert rewriting before they are imported
import pytest

pytest.register_assert_rewrite("sso.tests.scim_fixtures")
pytest_plugins = ["sso.tests.scim_fixtures"]

from scim2_models import Schema, ScimProvider, ServiceProviderConfig

from sso.models import ScimToken
from sso.tests.scim_fixtures import ERROR_URN, SCIM_JSON, USER_URN, scim_error_of

pytestmark = pytest.mark.django_db


def test_service_provider_config_tells_what_we_support(scim_a):
    response = scim_a.get("/ServiceProviderConfig")
    assert response.status_code == 200 and response["Content-Type"].startswith(SCIM_JSON)
    config = response.json()
    assert config["patch"]["supported"] is True and config["bulk"]["supported"] is False
    assert config["filter"] == {"supported": True, "maxResults": 1000}
    assert config["etag"]["supported"] is True and config["sort"]["supported"] is False
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    assert config["meta"]["location"] == "http://testserver/o/org-a/scim/v2/ServiceProviderConfig"
    ServiceProviderConfig.model_validate(config)


def test_the_published_schema_is_what_we_store_and_clients_can_build_models_from_it(scim_a):
    schemas = scim_a.get("/Schemas").json()["Resources"]
    by_id = {schema["id"]: schema for schema in schemas}
    user = by_id[USER_URN]
    attributes = {attribute["name"]: attribute for attribute in user["attributes"]}
    assert set(attributes) == {"userName", "name", "displayName", "emails", "active", "groups"}
    assert {sub["name"] for sub in attributes["name"]["subAttributes"]} == {"givenName", "familyName", "formatted"}
    assert {sub["name"] for sub in attributes["emails"]["subAttributes"]} == {"value", "type", "primary"}
    assert attributes["groups"]["mutability"] == "readOnly"
    assert attributes["emails"]["required"] is True and attributes["userName"]["uniqueness"] == "server"
    group = by_id["urn:ietf:params:scim:schemas:core:2.0:Group"]
    assert {attribute["name"] for attribute in group["attributes"]} == {"displayName", "members"}

    one = scim_a.get(f"/Schemas/{USER_URN}")
    assert one.status_code == 200 and one.json()["attributes"] == user["attributes"]
    resource_types = scim_a.get("/ResourceTypes").json()["Resources"]
    assert {(rt["name"], rt["endpoint"], rt["schema"]) for rt in resource_types} == {
        ("User", "/Users", USER_URN), ("Group", "/Groups", "urn:ietf:params:scim:schemas:core:2.0:Group")}
    assert scim_a.get("/ResourceTypes/Group").json()["endpoint"] == "/Groups"
    # What a SCIM client does with them (scim2-tester too): one model per resource type.
    provider = ScimProvider.from_discovery([Schema.model_validate(schema) for schema in schemas], [], None)
    assert provider is not None


def test_locations_follow_the_base_the_client_used(world, scim_a):
    bare = scim_a.get("/ResourceTypes/User", bare=True).json()
    assert bare["meta"]["location"] == "http://testserver/scim/v2/ResourceTypes/User"
    user = scim_a.get(f"/Users/{world.scim_user_a.pk}", bare=True).json()
    assert user["meta"]["location"] == f"http://testserver/scim/v2/Users/{world.scim_user_a.pk}"
    assert user["groups"][0]["$ref"] == f"http://testserver/scim/v2/Groups/{world.scim_group_a.pk}"


@pytest.mark.parametrize("path", ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas"])
def test_discovery_endpoints_take_get_only(scim_a, path):
    for method in ("post", "put", "patch", "delete"):
        response = scim_a.call(method, path, {})
        scim_error_of(response, 405)
        assert response["Allow"] == "GET"


def test_unknown_scim_paths_are_scim_404s(scim_a):
    for path in ("/Nope", "/ResourceTypes/Nope", f"/Schemas/{USER_URN}x", "/Users/abc", "/Users/999999",
                 "/Groups/999999"):
        scim_error_of(scim_a.get(path), 404)
    scim_error_of(scim_a.get("/Users/1/extra"), 404)


def test_searching_across_resource_types_is_not_implemented(scim_a):
    scim_error_of(scim_a.post("/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
                  501)


def _refused_401(response) -> None:
    assert response.status_code == 401, response.content
    assert response["Content-Type"].startswith(SCIM_JSON)
    assert response.json()["schemas"] == [ERROR_URN]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("where", ["/scim/v2/Users", "/o/org-a/scim/v2/Users", "/scim/v2/Nope",
                                   "/o/org-a/scim/v2/ServiceProviderConfig"])
def test_without_a_scim_token_nothing_is_served(world, client, api, where):
    _refused_401(client.get(where))
    _refused_401(api.call("get", where, token=world.owner_a.legacy_key))
    _refused_401(api.call("get", where, bearer=api.access_for(world.owner_a.pat)))
    _refused_401(api.call("get", where, bearer="scim_not-a-token-of-ours"))
    client.force_login(world.owner_a.user)
    # An Owner's browser session is not the identity provider.
    _refused_401(client.get(where))
    _refused_401(client.post(where, data="{}", content_type=SCIM_JSON))


def test_a_revoked_token_is_refused_at_once(world, scim_a):
    assert scim_a.get("/Users").status_code == 200
    ScimToken.objects.filter(organization=world.org_a).update(revoked_at="2020-01-01T00:00:00Z")
    _refused_401(scim_a.get("/Users"))
    _refused_401(scim_a.get("/Users", bare=True))


def test_bodies_are_scim_json_or_json(scim_a):
    created = scim_a.client.post("/o/org-a/scim/v2/Users", data='{"userName": "json@example.test"}',
                                 content_type="application/json",
                                 headers={"Authorization": f"Bearer {scim_a.token}"})
    assert created.status_code == 201, created.content
    assert created["Content-Type"].startswith(SCIM_JSON)
    scim_error_of(scim_a.client.post("/o/org-a/scim/v2/Users", data="userName=x", content_type="text/plain",
                                     headers={"Authorization": f"Bearer {scim_a.token}"}), 415)
    scim_error_of(scim_a.client.post("/o/org-a/scim/v2/Users", data="{not json", content_type=SCIM_JSON,
                                     headers={"Authorization": f"Bearer {scim_a.token}"}), 400, "invalidSyntax")
    scim_error_of(scim_a.post("/Users", ["a list"]), 400, "invalidSyntax")


def test_the_token_records_when_it_was_last_used(world, scim_a):
    token = ScimToken.objects.filter(organization=world.org_a).latest("id")
    assert token.last_used_at is None
    scim_a.get("/ServiceProviderConfig")
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_an_unexpected_failure_is_a_scim_500_that_changed_nothing(world, scim_a, monkeypatch):
    from sso import scim

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(scim, "access_resync", broken)
    response = scim_a.post("/Groups", {"displayName": "Half-made", "members": [{"value": str(world.scim_user_a.pk)}]})
    scim_error_of(response, 500)
    assert b"boom" not in response.content
    assert scim_a.get("/Groups", query={"filter": 'displayName eq "Half-made"'}).json()["totalResults"] == 0
