"""The SSRF guard: every non-public address is refused however it is written, the allowlist lets
named endpoints through, and requests go to the address that was checked (no second lookup)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from platform_core.ssrf import UnsafeUrlError, VettedUrl, pinned_request, vet_url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://localhost/", "this server"),
        ("http://LocalHost.:8000/", "this server"),
        ("http://foo.localhost:8000/", "this server"),
        ("http://127.0.0.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://2130706433/", "loopback"),  # decimal
        ("http://0x7f.1/", "loopback"),  # hex
        ("http://017700000001/", "loopback"),  # octal
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://[64:ff9b::7f00:1]/", "loopback"),  # NAT64
        ("http://[2002:7f00:1::]/", "loopback"),  # 6to4
        ("http://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata
        ("http://[fd00:ec2::254]/", "private"),  # AWS metadata over IPv6
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://10.0.0.1/", "private"),
        ("http://172.16.5.4:8080/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://[fc00::1]/", "private"),
        ("http://100.64.0.1/", "CGNAT"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://239.255.255.250:1900/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://255.255.255.255/", "reserved"),
        ("http://metadata.google.internal/computeMetadata/v1/", "resolved"),  # unresolvable here: refused too
        ("http://no-such-host.invalid/", "resolved"),
    ],
)
def test_non_public_destinations_are_refused(settings, url, why):
    settings.SSRF_PROTECTION_ALLOWLIST = []
    with pytest.raises(UnsafeUrlError) as refused:
        vet_url(url)
    assert why in str(refused.value)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://93.184.215.14/", "http://"),
        ("file:///etc/passwd", "http://"),
        ("javascript:alert(1)", "http://"),
        ("http:///path-only", "no host"),
        ("", "Give a URL"),
        ("http://user:pw@93.184.215.14/", "Credentials"),
        ("http://93.184.215.14:99999/", "Malformed"),
    ],
)
def test_malformed_urls_are_refused(url, why):
    with pytest.raises(UnsafeUrlError) as refused:
        vet_url(url)
    assert why in str(refused.value)


def test_public_addresses_pass_without_any_connection(settings):
    settings.SSRF_PROTECTION_ALLOWLIST = []
    vetted = vet_url("https://93.184.215.14/hooks/in?x=1")
    assert (vetted.scheme, vetted.host, vetted.port, vetted.addresses) == ("https", "93.184.215.14", 443,
                                                                          ("93.184.215.14",))
    assert vetted.request_target == "/hooks/in?x=1"
    assert vet_url("http://[2606:4700::1111]:8080/").addresses == ("2606:4700::1111",)


def test_allowlist_lets_listed_endpoints_through_and_nothing_else(settings):
    settings.SSRF_PROTECTION_ALLOWLIST = "localhost:8080, 10.0.0.7:9000,[::1]:7000"  # as the env var gives it
    assert vet_url("http://localhost:8080/hook").host == "localhost"
    assert vet_url("http://10.0.0.7:9000/").addresses == ("10.0.0.7",)
    assert vet_url("http://[::1]:7000/").addresses == ("::1",)
    for refused in ("http://localhost:8081/", "http://10.0.0.7/", "http://10.0.0.8:9000/", "http://[::1]:7001/"):
        with pytest.raises(UnsafeUrlError):
            vet_url(refused)


def test_allowlisted_address_covers_other_spellings_of_it(settings):
    settings.SSRF_PROTECTION_ALLOWLIST = ["127.0.0.1:8080"]
    assert vet_url("http://2130706433:8080/").addresses == ("127.0.0.1",)
    with pytest.raises(UnsafeUrlError):
        vet_url("http://2130706433:8081/")


class _Recorder(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        self.server.seen.append((self.path, self.headers.get("Host"), self.rfile.read(length)))
        if self.path.startswith("/moved"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def loopback_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_request_goes_to_the_vetted_address_with_the_name_as_host(loopback_server):
    port = loopback_server.server_address[1]
    # A name that resolved to 127.0.0.1 at check time: the request must use that address, not look
    # the name up again (it does not resolve at all here, so a second lookup would fail).
    vetted = VettedUrl(url=f"http://hooks.example.test:{port}/in?a=1", scheme="http", host="hooks.example.test",
                       port=port, addresses=("127.0.0.1",))
    response = pinned_request(vetted, method="POST", body=b'{"x":1}', headers={"Content-Type": "application/json"})
    assert (response.status, response.body) == (200, b"ok")
    assert loopback_server.seen == [("/in?a=1", f"hooks.example.test:{port}", b'{"x":1}')]


def test_redirects_are_not_followed(settings, loopback_server):
    port = loopback_server.server_address[1]
    settings.SSRF_PROTECTION_ALLOWLIST = [f"127.0.0.1:{port}"]
    response = pinned_request(vet_url(f"http://127.0.0.1:{port}/moved"), method="POST", body=b"{}")
    assert response.status == 302
    assert [path for path, _host, _body in loopback_server.seen] == ["/moved"]
