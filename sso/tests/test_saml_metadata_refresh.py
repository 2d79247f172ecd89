"""IdP metadata fetched again from its URL: an IdP that rolls its signing certificate publishes
the new one there, and the daily job (sso.refresh_saml_metadata) takes it; a failed fetch keeps
what is stored."""

import dataclasses
import http.server
import threading

import pytest

from accounts.models import AuditEvent
from sso import saml
from sso.models import SamlSettings
from sso.tasks import refresh_saml_metadata

pytestmark = pytest.mark.django_db


@pytest.fixture
def idp_site():
    """An HTTP server on loopback whose `body` (and `status`) the test changes."""
    site = {"body": b"", "status": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(site["status"])
            self.send_header("Content-Type", "application/samlmetadata+xml")
            self.send_header("Content-Length", str(len(site["body"])))
            self.end_headers()
            self.wfile.write(site["body"])

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    site["endpoint"] = f"127.0.0.1:{server.server_address[1]}"
    yield site
    server.shutdown()
    server.server_close()


def test_a_rolled_certificate_is_taken_by_the_refresh(world, saml_a, impostor_a, idp_site, client, api, settings):
    settings.SSRF_PROTECTION_ALLOWLIST = [idp_site["endpoint"]]
    idp_site["body"] = saml_a.idp.metadata_xml.encode()
    url = f"http://{idp_site['endpoint']}/metadata"
    assert saml_a.configure(api, metadata_url=url)["metadata_url"] == url
    assert saml.saml_metadata_refresh(organization=world.org_a) is False  # the same metadata

    # The IdP rolls its key: same entity id, new certificate, published at the URL.
    rolled = dataclasses.replace(saml_a, idp=impostor_a)
    idp_site["body"] = impostor_a.metadata_xml.encode()
    refused = rolled.login(client, email="rollover@a.test")
    assert refused.status_code >= 400  # not yet: the stored metadata has the old certificate
    assert refresh_saml_metadata()["changed"] == 1  # org A's (other organizations have no URL)
    stored = SamlSettings.objects.get(organization=world.org_a)
    assert stored.metadata_xml == impostor_a.metadata_xml.strip() and stored.metadata_url == url
    event = AuditEvent.objects.filter(organization=world.org_a, action="saml.settings_changed").order_by("-id").first()
    assert event.actor_id is None and "metadata_xml" in event.details["fields"]
    accepted = rolled.login(client, email="rollover@a.test")
    assert accepted.status_code == 302, accepted.content
    assert saml_a.login(client, email="old-key@a.test").status_code >= 400  # the old key no longer opens it


def test_a_failed_fetch_keeps_the_stored_metadata(world, saml_a, idp_site, settings):
    settings.SSRF_PROTECTION_ALLOWLIST = [idp_site["endpoint"]]
    idp_site["body"] = saml_a.idp.metadata_xml.encode()
    SamlSettings.objects.filter(organization=world.org_a).update(metadata_url=f"http://{idp_site['endpoint']}/m")
    before = SamlSettings.objects.get(organization=world.org_a).metadata_xml
    idp_site["status"] = 503
    assert refresh_saml_metadata()["failed"] >= 1
    idp_site["status"], idp_site["body"] = 200, b"<not-metadata/>"
    assert refresh_saml_metadata()["failed"] >= 1
    assert SamlSettings.objects.get(organization=world.org_a).metadata_xml == before
