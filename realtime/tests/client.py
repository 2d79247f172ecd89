"""A websocket client for the tests: what a script or a browser tab sees, one socket at a time."""

import json
import time

import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


def ws_url(base: str, path: str) -> str:
    return base.replace("http://", "ws://", 1) + path


class Socket:
    """One connection; `expect` waits for an event of a type (others are kept for later)."""

    def __init__(self, connection: ClientConnection):
        self.connection = connection
        self.unread: list[dict] = []

    def send(self, type_: str, **fields) -> None:
        self.connection.send(json.dumps({"type": type_, **fields}))

    def _receive(self, timeout: float) -> dict | None:
        try:
            return json.loads(self.connection.recv(timeout=max(timeout, 0)))
        except TimeoutError:
            return None

    def expect(self, type_: str, *, within: float = 1.0, **match) -> dict:
        """The first event of `type_` whose fields include `match`, within `within` seconds."""
        def fits(event):
            return event["type"] == type_ and all(event.get(name) == value for name, value in match.items())

        for index, event in enumerate(self.unread):
            if fits(event):
                return self.unread.pop(index)
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            event = self._receive(left)
            if event is None:
                break
            if fits(event):
                return event
            self.unread.append(event)
        raise AssertionError(f"no {type_} {match or ''} within {within} s; got {[e['type'] for e in self.unread]}")

    def quiet(self, type_: str, *, within: float = 0.5, **match) -> None:
        """No event of `type_` (with `match`) arrives within `within` seconds."""
        try:
            event = self.expect(type_, within=within, **match)
        except AssertionError:
            return
        raise AssertionError(f"unexpected {event}")

    def closed_with(self, *, within: float = 2.0) -> int:
        """The close code the server ends the socket with (reading past any events)."""
        deadline = time.monotonic() + within
        try:
            while time.monotonic() < deadline:
                raw = self.connection.recv(timeout=deadline - time.monotonic())
                self.unread.append(json.loads(raw))
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            pass
        raise AssertionError(f"still open after {within} s")

    def close(self) -> None:
        self.connection.close()


def open_socket(base: str, path: str, *, ticket: str | None = None, session_key: str | None = None,
                origin: str | None = None) -> Socket:
    url = ws_url(base, path)
    if ticket is not None:
        url += ("&" if "?" in url else "?") + f"ticket={ticket}"
    headers = {"Cookie": f"sessionid={session_key}"} if session_key else None
    if session_key and origin is None:
        origin = base  # a browser's own page
    return Socket(connect(url, origin=origin, additional_headers=headers, open_timeout=5, close_timeout=2))


def refusal_code(base: str, path: str, **credentials) -> int:
    """The close code of a connection the server refuses (it accepts, then closes at once)."""
    return open_socket(base, path, **credentials).closed_with()


def ticket_of(base: str, key: str, *, prefix: str = "") -> str:
    """A ticket from POST /api/realtime/ticket with a legacy token."""
    response = requests.post(f"{base}{prefix}/api/realtime/ticket", headers={"Authorization": f"Token {key}"},
                             timeout=5)
    assert response.status_code == 201, response.text
    return response.json()["ticket"]


def api_call(base: str, member, method: str, path: str, json=None) -> requests.Response:
    """An API call on org A's prefix with the member's legacy token."""
    return requests.request(method, f"{base}/o/org-a{path}", json=json, timeout=10,
                            headers={"Authorization": f"Token {member.legacy_key}"})
