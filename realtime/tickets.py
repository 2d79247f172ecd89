"""Websocket tickets: what a script passes as `?ticket=` instead of its long-lived API token.

A ticket is a random value good for one connection within REALTIME_TICKET_TTL_SECONDS, bound to
the user, the organization and the scopes of the credential that asked for it. Redis keeps only
its hash (a dump of Redis opens nothing), and redeeming is one GETDEL: of two connections racing
with the same ticket, one wins.

The key cannot carry the schema name: a ticket on a bare `/ws/` path is what names the
organization.
"""

import json
import secrets
from dataclasses import dataclass

from django.conf import settings

from accounts.tokens import hash_secret
from realtime import store


@dataclass(frozen=True)
class Ticket:
    user_id: int
    organization_id: int
    scopes: frozenset[str]


def _ticket_key(value: str) -> str:
    return store.key("ticket", hash_secret(value))


def ticket_issue(*, user_id: int, organization_id: int, scopes: frozenset[str],
                 ttl_seconds: int | None = None) -> str:
    value = secrets.token_urlsafe(32)
    claim = {"user": user_id, "organization": organization_id, "scopes": sorted(scopes)}
    store.client().set(_ticket_key(value), json.dumps(claim),
                       ex=ttl_seconds or settings.REALTIME_TICKET_TTL_SECONDS)
    return value


def ticket_redeem(*, value: str) -> Ticket | None:
    """The ticket's claim, once: None when it is unknown, used or expired."""
    if not value or len(value) > 128:
        return None
    raw = store.client().getdel(_ticket_key(value))
    if raw is None:
        return None
    claim = json.loads(raw)
    return Ticket(user_id=claim["user"], organization_id=claim["organization"], scopes=frozenset(claim["scopes"]))
