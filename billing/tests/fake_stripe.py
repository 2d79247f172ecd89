"""A small local stand-in for Stripe's HTTP API: the three endpoints billing.stripe_gateway calls,
served on a free loopback port by a threaded http.server, answering the JSON the official library
parses. Every request is recorded (path, decoded form fields, headers) so tests can assert what
the application sent; `fail_next` makes the next request fail the way Stripe fails.

Like Stripe: a secret key is required (`Authorization: Bearer sk_...`), and a repeated
Idempotency-Key returns the first answer again.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

FAKE_SECRET_KEY = "sk_test_fake_scriptorium"


@dataclass
class Recorded:
    method: str
    path: str
    form: dict[str, str]  # Stripe's flattened form keys: "metadata[organization_id]", "line_items[0][price]"
    headers: dict[str, str]

    @property
    def authorization(self) -> str:
        return self.headers.get("Authorization", "")


@dataclass
class FakeStripe:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    failures: list[tuple[int, dict]] = field(default_factory=list)
    _answers_by_idempotency_key: dict[str, tuple[int, dict]] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, path: str) -> list[Recorded]:
        return [request for request in self.requests if request.path == path]

    def fail_next(self, *, status: int = 400, error_type: str = "invalid_request_error",
                  message: str = "No such price: 'price_gone'", code: str = "resource_missing") -> None:
        self.failures.append((status, {"error": {"type": error_type, "message": message, "code": code}}))

    # --- the API -----------------------------------------------------------------------------

    def answer(self, method: str, path: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(Recorded(method=method, path=path, form=form, headers=headers))
            key = headers.get("Idempotency-Key", "")
            if key in self._answers_by_idempotency_key:
                return self._answers_by_idempotency_key[key]
            if not headers.get("Authorization", "").startswith("Bearer sk_"):
                return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided."}}
            if self.failures:
                return self.failures.pop(0)
            number = next(self._ids)
            answer = self._resource(method, path, form, number)
            if key and answer[0] == 200:
                self._answers_by_idempotency_key[key] = answer
            return answer

    def _resource(self, method: str, path: str, form: dict[str, str], number: int) -> tuple[int, dict]:
        common = {"livemode": False, "created": int(time.time()), "metadata": _metadata(form)}
        if (method, path) == ("POST", "/v1/customers"):
            return 200, {"id": f"cus_fake{number}", "object": "customer", "name": form.get("name"),
                         "email": form.get("email"), **common}
        if (method, path) == ("POST", "/v1/checkout/sessions"):
            session_id = f"cs_test_fake{number}"
            return 200, {"id": session_id, "object": "checkout.session", "mode": form.get("mode"),
                         "status": "open", "customer": form.get("customer"),
                         "client_reference_id": form.get("client_reference_id"),
                         "success_url": form.get("success_url"), "cancel_url": form.get("cancel_url"),
                         "subscription": None, "url": f"https://checkout.fake-stripe.test/c/pay/{session_id}",
                         **common}
        if (method, path) == ("POST", "/v1/billing_portal/sessions"):
            session_id = f"bps_fake{number}"
            return 200, {"id": session_id, "object": "billing_portal.session", "customer": form.get("customer"),
                         "return_url": form.get("return_url"),
                         "url": f"https://billing.fake-stripe.test/p/session/{session_id}",
                         "livemode": False, "created": common["created"]}
        return 404, {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL ({path})."}}

    def handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                path, _, query = self.path.partition("?")
                form = dict(parse_qsl(body if method == "POST" else query, keep_blank_values=True))
                status, payload = fake.answer(method, path, form, dict(self.headers))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_fake{len(fake.requests)}")
                # As Stripe does for errors a retry would not fix.
                self.send_header("Stripe-Should-Retry", "false")
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802 - http.server's naming
                self._serve("POST")

            def do_GET(self):  # noqa: N802
                self._serve("GET")

            def log_message(self, *args):
                pass

        return Handler


def _metadata(form: dict[str, str]) -> dict[str, str]:
    return {key[len("metadata["):-1]: value for key, value in form.items()
            if key.startswith("metadata[") and key.endswith("]")}


@contextmanager
def fake_stripe_serving():
    """A FakeStripe listening on 127.0.0.1 (a free port) until the block ends; its `url` is the API base."""
    fake = FakeStripe()
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
