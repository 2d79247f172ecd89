"""`/api/saml/settings` and `/validate-metadata-url`: Label Studio Enterprise's shape, validation
that names the field, the domain rules, provider presets, SSO-only after a passed test login, who
may read and change them, the SSRF guard on metadata URLs, and the official SDK's client."""

import http.server
import threading

import pytest
from lxml import etree

from accounts.models import AuditEvent
from sso import saml
from sso.models import SamlSettings

pytestmark = pytest.mark.django_db

SETTINGS = "/o/org-a/api/saml/settings"
VALIDATE = "/o/org-a/api/saml/settings/validate-metadata-url"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
LS_FIELDS = {"domain", "idp_provider", "metadata_url", "metadata_xml", "mapping_email", "mapping_first_name",
             "mapping_last_name", "mapping_groups", "roles_groups", "workspaces_groups", "projects_groups",
             "acs_url", "login_url", "logout_url", "metadata_xml_url", "nameid_format"}
OUR_FIELDS = {"sso_only", "allow_idp_initiated", "sign_authn_requests", "tested_at", "entity_id", "idp_entity_id",
              "test_login_url"}


def _post(api, member, body, path=SETTINGS):
    return api.call("post", path, token=member.legacy_key, json=body)


def _errors(answer, field):
    assert answer.status_code == 400, answer.content
    return " ".join(answer.json()["validation_errors"][field])


def _without(metadata_xml: str, tag: str) -> str:
    root = etree.fromstring(metadata_xml.encode())
    for node in list(root.iter(f"{{{MD}}}{tag}")):
        node.getparent().remove(node)
    return etree.tostring(root).decode()


def test_get_answers_label_studio_s_shape_with_our_sp_urls(world, saml_a, api):
    answer = api.call("get", SETTINGS, token=world.owner_a.legacy_key)
    body = answer.json()
    assert answer.status_code == 200 and set(body) == LS_FIELDS | OUR_FIELDS
    assert body["acs_url"] == "http://testserver/o/org-a/saml/acs"
    assert body["login_url"] == "http://testserver/o/org-a/saml/login"
    assert body["logout_url"] == "http://testserver/o/org-a/saml/sls"
    assert body["metadata_xml_url"] == body["entity_id"] == "http://testserver/o/org-a/saml/metadata"
    assert body["test_login_url"] == "http://testserver/o/org-a/saml/login?test=1"
    assert body["idp_entity_id"] == saml_a.idp.entity_id and body["domain"] == "a.test"
    assert body["nameid_format"] == "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    assert (body["sso_only"], body["tested_at"]) == (False, None)
    assert b"PRIVATE KEY" not in answer.content


def test_an_organization_without_settings_reads_defaults(world, api):
    body = api.call("get", "/api/saml/settings", token=world.owner_b.legacy_key).json()
    assert (body["domain"], body["metadata_xml"], body["idp_entity_id"], body["roles_groups"]) == ("", "", None, [])
    assert body["acs_url"] == "http://testserver/o/org-b/saml/acs"
    assert not SamlSettings.objects.filter(organization=world.org_b).exists()  # a read writes nothing


def test_post_is_a_partial_update_audited_by_field(world, saml_a, api):
    before = api.call("get", SETTINGS, token=world.owner_a.legacy_key).json()
    answer = _post(api, world.admin_a, {"domain": " A.test , Sub.A.test ", "allow_idp_initiated": True,
                                        "roles_groups": [["Reviewer", "reviewers"]]})
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["domain"] == "a.test,sub.a.test" and body["allow_idp_initiated"] is True
    assert body["roles_groups"] == [["Reviewer", "reviewers"]]
    assert {key: body[key] for key in ("metadata_xml", "mapping_email", "idp_provider")} == \
        {key: before[key] for key in ("metadata_xml", "mapping_email", "idp_provider")}
    event = AuditEvent.objects.filter(organization=world.org_a, action="saml.settings_changed").latest("id")
    assert event.actor == world.admin_a.user
    assert event.details["fields"] == ["allow_idp_initiated", "domain", "roles_groups"]
    assert _post(api, world.admin_a, {}).status_code == 201  # nothing to change, nothing audited
    assert AuditEvent.objects.filter(organization=world.org_a, action="saml.settings_changed").latest("id") == event


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"metadata_xml": "<not-xml"}, "metadata_xml", "not well-formed"),
    ({"metadata_xml": '<!DOCTYPE m [<!ENTITY e "x">]><m>&e;</m>'}, "metadata_xml", "DTD"),
    ({"idp_provider": "ping"}, "idp_provider", "okta, azure, google, custom"),
    ({"allow_idp_initiated": "yes"}, "allow_idp_initiated", "true or false"),
    ({"mapping_email": ["email"]}, "mapping_email", "string"),
    ({"mapping_groups": "g" * 1025}, "mapping_groups", "1024"),
    ({"roles_groups": [["Owner", "root"]]}, "roles_groups", "Owners are made by an Owner"),
    ({"workspaces_groups": [["Nowhere", "g"]]}, "workspaces_groups", "No workspace titled"),
    ({"projects_groups": [{"project_id": 999999, "group": "g", "role": "Inherit"}]}, "projects_groups",
     "No project 999999"),
    ({"domain": "not a domain"}, "domain", "not a valid domain"),
    ({"domain": "a.test,localhost"}, "domain", "not a valid domain"),
    ({"domain": "gmail.com"}, "domain", "public mail service"),
    ({"domain": "corp.test,Outlook.com"}, "domain", "public mail service"),
    ({"metadata_url": "ftp://idp.example.com/metadata"}, "metadata_url", "http"),
])
def test_bad_settings_are_refused_naming_the_field(world, saml_a, api, body, field, words):
    before = api.call("get", SETTINGS, token=world.owner_a.legacy_key).json()
    assert words in _errors(_post(api, world.owner_a, body), field)
    assert api.call("get", SETTINGS, token=world.owner_a.legacy_key).json() == before


def test_metadata_must_describe_an_idp_that_signs_and_has_a_redirect_sso_endpoint(world, saml_a, api, client):
    our_own_sp_metadata = client.get(f"{saml_a.root}/metadata").content.decode()
    assert "no identity provider" in _errors(_post(api, world.owner_a, {"metadata_xml": our_own_sp_metadata}),
                                             "metadata_xml")
    no_certificate = _without(saml_a.idp.metadata_xml, "KeyDescriptor")
    assert "signing certificate" in _errors(_post(api, world.owner_a, {"metadata_xml": no_certificate}),
                                            "metadata_xml")
    no_sso = _without(saml_a.idp.metadata_xml, "SingleSignOnService")
    assert "SingleSignOnService" in _errors(_post(api, world.owner_a, {"metadata_xml": no_sso}), "metadata_xml")


def test_a_domain_claimed_by_another_organization_is_refused(world, saml_a, saml_b, api):
    assert "already claimed by another organization" in _errors(
        _post(api, world.owner_a, {"domain": "a.test,B.test"}), "domain")
    assert api.call("get", "/api/saml/settings", token=world.owner_b.legacy_key).json()["domain"] == "b.test"


@pytest.mark.parametrize(("provider", "expected"), [
    ("okta", {"mapping_email": "email", "mapping_first_name": "firstName", "mapping_last_name": "lastName",
              "mapping_groups": "groups"}),
    ("azure", {"mapping_email": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
               "mapping_first_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
               "mapping_last_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
               "mapping_groups": "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"}),
    ("google", {"mapping_email": "email", "mapping_first_name": "first_name", "mapping_last_name": "last_name",
                "mapping_groups": "groups"}),
])
def test_a_provider_preset_fills_the_attribute_names_not_given(world, saml_a, api, provider, expected):
    body = _post(api, world.owner_a, {"idp_provider": provider, "mapping_groups": "", "mapping_email": None}).json()
    assert body["idp_provider"] == provider
    assert {key: body[key] for key in expected} == expected
    given = _post(api, world.owner_a, {"idp_provider": provider, "mapping_email": "mail"}).json()
    assert given["mapping_email"] == "mail" and given["mapping_groups"] == expected["mapping_groups"]


def test_an_entra_id_login_uses_the_preset_claim_names(world, saml_a, api, client):
    _post(api, world.owner_a, {"idp_provider": "azure"})
    claims = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"
    request = saml_a.start_login(client)
    xml = saml_a.idp.login_response(
        email="ignored@a.test", name_id="opaque-object-id", in_response_to=request.id, acs_url=saml_a.acs_url,
        sp_entity_id=saml_a.entity_id, attributes={
            f"{claims}/emailaddress": ["grace@a.test"], f"{claims}/givenname": ["Grace"],
            f"{claims}/surname": ["Hopper"],
            "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups": ["g-1", "g-2"]})
    assert saml_a.post(client, xml).status_code == 302
    from accounts.models import User

    assert User.objects.filter(email="grace@a.test", first_name="Grace", last_name="Hopper").exists()


def test_sso_only_needs_a_test_login_passed_after_the_last_idp_change(world, saml_a, impostor_a, api, client):
    assert "test login" in _errors(_post(api, world.owner_a, {"sso_only": True}), "sso_only")
    client.force_login(world.owner_a.user)
    request = saml_a.start_login(client, test=True)
    assert saml_a.post(client, saml_a.response_to(request, email="owner@a.test")).status_code == 200
    # Saving the same IdP again (the settings page re-sends everything) does not undo the test.
    assert _post(api, world.owner_a, {"metadata_xml": saml_a.idp.metadata_xml, "metadata_url": ""}).status_code == 201
    answer = _post(api, world.owner_a, {"sso_only": True})
    assert answer.status_code == 201 and answer.json()["sso_only"] is True
    assert _post(api, world.owner_a, {"sso_only": False}).json()["sso_only"] is False
    # A new IdP certificate is a change: test again before SSO-only.
    assert _post(api, world.owner_a, {"metadata_xml": impostor_a.metadata_xml}).status_code == 201
    assert "test login" in _errors(_post(api, world.owner_a, {"sso_only": True}), "sso_only")


def test_annotators_and_managers_may_not_read_or_change_the_settings(world, saml_a, api):
    for member in (world.annotator_a, world.manager_a, world.reviewer_a):
        assert api.call("get", SETTINGS, token=member.legacy_key).status_code == 403
        assert _post(api, member, {"domain": "evil.test"}).status_code == 403
        assert api.call("delete", SETTINGS, token=member.legacy_key).status_code == 403
        assert _post(api, member, {"metadata_url": "https://x.example.com"}, path=VALIDATE).status_code == 403
    assert api.call("get", SETTINGS, token=world.admin_a.legacy_key).status_code == 200
    assert SamlSettings.objects.get(organization=world.org_a).domain == "a.test"


def test_org_b_cannot_read_or_change_org_a_s_settings(world, saml_a, api):
    b = world.owner_b.legacy_key
    assert api.call("get", SETTINGS, token=b).status_code == 403
    assert api.call("post", SETTINGS, token=b, json={"domain": "evil.test"}).status_code == 403
    assert api.call("delete", SETTINGS, token=b).status_code == 403
    on_the_bare_host = api.call("post", "/api/saml/settings", token=b, json={"domain": "b-corp.test"})
    assert on_the_bare_host.status_code == 201 and "/o/org-b/" in on_the_bare_host.json()["acs_url"]
    assert SamlSettings.objects.get(organization=world.org_a).domain == "a.test"
    assert SamlSettings.objects.get(organization=world.org_b).domain == "b-corp.test"


def test_delete_resets_everything_but_the_sp_key_pair(world, saml_a, api, client):
    _post(api, world.owner_a, {"roles_groups": [["Manager", "editors"]], "allow_idp_initiated": True})
    certificate = SamlSettings.objects.get(organization=world.org_a).sp_certificate
    assert api.call("delete", SETTINGS, token=world.owner_a.legacy_key).status_code == 204
    body = api.call("get", SETTINGS, token=world.owner_a.legacy_key).json()
    assert (body["domain"], body["metadata_xml"], body["idp_entity_id"], body["roles_groups"],
            body["allow_idp_initiated"], body["mapping_email"]) == ("", "", None, [], False, None)
    assert SamlSettings.objects.get(organization=world.org_a).sp_certificate == certificate
    assert AuditEvent.objects.filter(organization=world.org_a, action="saml.settings_reset").exists()
    assert client.get(f"{saml_a.root}/login").status_code == 404


# --- metadata URLs and the SSRF guard ------------------------------------------------------------

@pytest.fixture
def metadata_server(saml_a):
    """IdP A's metadata served over HTTP on loopback, as an intranet IdP would serve it."""
    body = saml_a.idp.metadata_xml.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path != "/metadata":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/samlmetadata+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_loopback_metadata_url_is_refused_unless_allow_listed(world, saml_a, api, metadata_server, settings):
    url = f"http://{metadata_server}/metadata"
    assert "loopback" in _errors(_post(api, world.owner_a, {"metadata_url": url}), "metadata_url")
    checked = _post(api, world.owner_a, {"metadata_url": url}, path=VALIDATE)
    assert checked.status_code == 200
    assert checked.json()["valid"] is False and "loopback" in checked.json()["detail"]

    settings.SSRF_PROTECTION_ALLOWLIST = [metadata_server]
    checked = _post(api, world.owner_a, {"metadata_url": url}, path=VALIDATE).json()
    assert checked == {"valid": True, "detail": checked["detail"], "idp_entity_id": saml_a.idp.entity_id}
    assert SamlSettings.objects.get(organization=world.org_a).metadata_url == ""  # checking saves nothing
    body = _post(api, world.owner_a, {"metadata_url": url, "metadata_xml": "ignored"}).json()
    assert body["metadata_url"] == url and body["idp_entity_id"] == saml_a.idp.entity_id
    assert body["metadata_xml"] == saml_a.idp.metadata_xml.strip()
    missing = _post(api, world.owner_a, {"metadata_url": f"http://{metadata_server}/nothing"}, path=VALIDATE).json()
    assert missing["valid"] is False and "404" in missing["detail"]


def test_validate_metadata_url_needs_a_url(world, api):
    assert "metadata URL" in _errors(_post(api, world.owner_a, {}, path=VALIDATE), "metadata_url")


def test_an_http_metadata_url_on_a_public_host_is_refused(monkeypatch):
    """Plain http lets anyone on the path swap the IdP's certificate: https only, unless allow-listed."""
    from platform_core import ssrf

    monkeypatch.setattr(ssrf, "_resolve", lambda host, port: ("93.184.215.14",))
    with pytest.raises(Exception, match="must use https"):
        saml.metadata_fetch("http://idp.example.com/metadata")
