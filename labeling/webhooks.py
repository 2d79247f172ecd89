"""Outgoing webhooks: management services, event emission and delivery (Label Studio's webhooks).

Emission. A domain service calls `emit(project_id=..., action=..., payload_factory=...)` inside its
transaction. The active webhooks that want the action (the project's and the organization-wide
ones; organization-only actions go to organization-wide webhooks only) each get a WebhookDelivery
row, and one Celery job per delivery is queued when the transaction commits: a rolled-back write
sends nothing. `payload_factory` is called at most once, and only when a webhook wants the payload.

Request. `POST <url>` with a JSON body `{"action": "<ACTION>", ...payload}`, the payload keyed as in
Label Studio (ANNOTATION_CREATED: `annotation`, `task`, `project`; TASKS_CREATED: `tasks`,
`project`; ...; see ACTIONS[...]["key"]). A webhook with send_payload=false gets only `action`
and, for project events, `project: {"id": ...}`. Headers: the webhook's own headers, then
`Content-Type: application/json`, `X-Scriptorium-Action`, `X-Scriptorium-Delivery` (the delivery's
id, the same on every retry: receivers can drop duplicates by it) and the signature:

    X-Scriptorium-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

where `secret` is the webhook's signing secret, shown once, in the response that created it. A
receiver recomputes the HMAC over the exact bytes received, compares in constant time, and refuses
a `t` too far from its clock (replays); `verify_signature` below does just that.

Delivery. The URL is checked against SSRF (platform_core.ssrf) when the webhook is saved and again
at every attempt, and the request goes to the address that was checked (no second DNS lookup),
without following redirects. A 2xx is delivered; a connection error, timeout, 429 or 5xx is
retried with exponential backoff (WEBHOOK_RETRY_BACKOFF_SECONDS * 2^(attempt-1)) up to
WEBHOOK_MAX_ATTEMPTS attempts in all; anything else fails at once. Each attempt is recorded on the
delivery (attempts, response_code, status, error). A delivery that is no longer pending is never
sent again, so a redelivered Celery message does nothing.
"""

import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name

from billing import limits as billing_limits
from labeling.models import Annotation, Project, Task, Webhook, WebhookDelivery
from platform_core.crypto import DecryptionError, decrypt, encrypt
from platform_core.ssrf import UnsafeUrlError, pinned_request, vet_url
from tenants.models import Organization

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Scriptorium-Signature"
DELIVERY_HEADER = "X-Scriptorium-Delivery"
ACTION_HEADER = "X-Scriptorium-Action"
# Set by the server on every delivery: a webhook's own headers may not replace them.
RESERVED_HEADERS = frozenset(h.lower() for h in (
    SIGNATURE_HEADER, DELIVERY_HEADER, ACTION_HEADER, "Content-Type", "Content-Length", "Host",
    "Transfer-Encoding", "Connection",
))
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
MAX_HEADERS = 50
MAX_HEADER_VALUE = 4096


def _action(name: str, description: str, key: str, organization_only: bool = False) -> dict:
    return {"name": name, "description": description, "key": key, "organization-only": organization_only}


# Label Studio's ActionsEnum, with the payload key each action carries (`GET /api/webhooks/info/`).
ACTIONS: dict[str, dict] = {
    "PROJECT_CREATED": _action("Project created", "A project was created.", "project", True),
    "PROJECT_UPDATED": _action("Project updated", "A project's settings changed.", "project"),
    "PROJECT_DELETED": _action("Project deleted", "A project was deleted.", "project", True),
    "TASKS_CREATED": _action("Tasks created", "Tasks were imported or created.", "tasks"),
    "TASKS_DELETED": _action("Tasks deleted", "Tasks were deleted.", "tasks"),
    "ANNOTATION_CREATED": _action("Annotation created", "An annotation was submitted.", "annotation"),
    "ANNOTATIONS_CREATED": _action("Annotations created", "Annotations were created in bulk.", "annotation"),
    "ANNOTATION_UPDATED": _action("Annotation updated", "An annotation was changed.", "annotation"),
    "ANNOTATIONS_DELETED": _action("Annotations deleted", "Annotations were deleted.", "annotations"),
    "LABEL_LINK_CREATED": _action("Label link created", "A label was linked to a project.", "label_link"),
    "LABEL_LINK_UPDATED": _action("Label link updated", "A project's label link changed.", "label_link"),
    "LABEL_LINK_DELETED": _action("Label link deleted", "A label was unlinked from a project.", "label_link"),
    "REVIEW_CREATED": _action("Review created", "An annotation was reviewed.", "review"),
    "REVIEW_UPDATED": _action("Review updated", "A review changed.", "review"),
    "REVIEWS_DELETED": _action("Reviews deleted", "Reviews were deleted.", "review"),
}


# --- signing -------------------------------------------------------------------------------------

def signature_header(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(*, secret: str, header: str, body: bytes, tolerance_seconds: int = 300) -> bool:
    """What a receiver does: the signature matches the body and was made recently."""
    parts = dict(part.split("=", 1) for part in (header or "").split(",") if "=" in part)
    if not parts.get("t", "").isdigit() or "v1" not in parts:
        return False
    timestamp = int(parts["t"])
    if abs(time.time() - timestamp) > tolerance_seconds:
        return False
    expected = signature_header(secret=secret, body=body, timestamp=timestamp)
    return hmac.compare_digest(expected, header.strip())


# --- management ----------------------------------------------------------------------------------

WEBHOOK_FLAGS = ("is_active", "send_payload", "send_for_all_actions")


def _clean_url(url) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ValidationError({"url": "Give the URL to send events to."})
    url = url.strip()
    if len(url) > 2048:
        raise ValidationError({"url": "At most 2048 characters."})
    try:
        vet_url(url)
    except UnsafeUrlError as exc:
        raise ValidationError({"url": str(exc)}) from None
    return url


def _clean_headers(headers) -> dict:
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise ValidationError({"headers": "Must be an object of header names to string values."})
    if len(headers) > MAX_HEADERS:
        raise ValidationError({"headers": f"At most {MAX_HEADERS} headers."})
    cleaned = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not HEADER_NAME.match(name):
            raise ValidationError({"headers": f"{name!r} is not a valid header name."})
        if name.lower() in RESERVED_HEADERS:
            raise ValidationError({"headers": f"{name} is set by the server and cannot be given."})
        if not isinstance(value, str):
            raise ValidationError({"headers": f"The value of {name} must be a string."})
        if len(value) > MAX_HEADER_VALUE or any(c in value for c in "\r\n\0"):
            raise ValidationError({"headers": f"The value of {name} is too long or has a line break."})
        cleaned[name] = value
    return cleaned


def _clean_actions(actions) -> list[str]:
    if actions is None:
        return []
    if not isinstance(actions, list | tuple):
        raise ValidationError({"actions": "Must be a list of actions."})
    unknown = [action for action in actions if action not in ACTIONS]
    if unknown:
        raise ValidationError({"actions": f"Unknown actions {unknown}; choose from {sorted(ACTIONS)}."})
    return list(dict.fromkeys(actions))


def _clean_fields(fields: dict) -> dict:
    cleaned = {}
    if "url" in fields:
        cleaned["url"] = _clean_url(fields["url"])
    if "headers" in fields:
        cleaned["headers"] = _clean_headers(fields["headers"])
    if "actions" in fields:
        cleaned["actions"] = _clean_actions(fields["actions"])
    for flag in WEBHOOK_FLAGS:
        if flag in fields:
            if not isinstance(fields[flag], bool):
                raise ValidationError({flag: "Must be true or false."})
            cleaned[flag] = fields[flag]
    return cleaned


@transaction.atomic
def webhook_create(*, project_id: int | None, fields: dict) -> tuple[Webhook, str]:
    """Create a webhook; returns it with its signing secret in clear (shown to the user once)."""
    billing_limits.feature_or_raise(organization_id=connection.tenant.pk, feature="webhooks")
    if "url" not in fields:
        raise ValidationError({"url": "Give the URL to send events to."})
    if project_id is not None and not Project.objects.filter(pk=project_id).exists():
        raise ValidationError({"project": "No project with this id in this organization."})
    secret = secrets.token_urlsafe(32)
    webhook = Webhook(project_id=project_id, secret_encrypted=encrypt(secret), **_clean_fields(fields))
    webhook.save()
    return webhook, secret


@transaction.atomic
def webhook_update(*, webhook: Webhook, fields: dict) -> Webhook:
    """Change a webhook. Its project never changes (as Label Studio's WebhookSerializerForUpdate)."""
    webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
    for name, value in _clean_fields(fields).items():
        setattr(webhook, name, value)
    webhook.save()
    return webhook


def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()


def webhooks_list(*, project_id: int | None = None):
    queryset = Webhook.objects.order_by("id")
    return queryset.filter(project_id=project_id) if project_id is not None else queryset


# --- payloads ------------------------------------------------------------------------------------
# Builders for `payload_factory`, in Label Studio's shapes.

def project_event(project: Project) -> dict:
    from labeling.selectors import project_get
    from labeling.serializers import project_payload

    return {"project": project_payload(project_get(pk=project.pk) or project)}


def project_deleted_event(project_id: int) -> dict:
    return {"project": {"id": project_id}}


def tasks_created_event(project: Project, task_ids: list[int]) -> dict:
    from labeling.serializers import task_payload

    tasks = Task.objects.filter(pk__in=task_ids).order_by("id")
    return {"tasks": [task_payload(task) for task in tasks], **project_event(project)}


def tasks_deleted_event(project: Project, task_ids: list[int]) -> dict:
    return {"tasks": [{"id": task_id} for task_id in task_ids], **project_event(project)}


def annotation_event(annotation: Annotation) -> dict:
    from labeling.serializers import annotation_payload, task_payload

    task = Task.objects.get(pk=annotation.task_id)
    return {"annotation": annotation_payload(annotation), "task": task_payload(task),
            **project_event(annotation.project)}


def annotations_created_event(project: Project, annotation_ids: list[int]) -> dict:
    from labeling.serializers import annotation_payload, task_payload

    annotations = list(Annotation.objects.filter(pk__in=annotation_ids).order_by("id"))
    tasks = Task.objects.filter(pk__in={a.task_id for a in annotations}).order_by("id")
    return {"annotation": [annotation_payload(a) for a in annotations], "task": [task_payload(t) for t in tasks],
            **project_event(project)}


def annotations_deleted_event(project: Project, annotation_ids: list[int]) -> dict:
    return {"annotations": [{"id": annotation_id} for annotation_id in annotation_ids], **project_event(project)}


# --- emission ------------------------------------------------------------------------------------

def _jsonable(payload: dict) -> dict:
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


@dataclass(frozen=True)
class _Hook:
    pk: int
    send_payload: bool


def emit(*, project_id: int | None, action: str, payload_factory: Callable[[], dict]) -> list[int]:
    """Record a delivery per webhook that wants `action`; send them once the transaction commits.

    Returns the ids of the deliveries created (none when no webhook wants the action)."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown webhook action {action!r}")
    organization = getattr(connection, "tenant", None)
    if organization is None or connection.schema_name == get_public_schema_name():
        return []
    organization_wide_only = project_id is None or ACTIONS[action]["organization-only"]
    # Plain SQL: every annotation submit asks this, and the ORM's query building cost more than
    # the query itself.
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT id, send_payload FROM labeling_webhook
               WHERE is_active AND (project_id IS NULL OR (NOT %(org_only)s AND project_id = %(project)s))
                 AND (send_for_all_actions OR actions @> %(action)s::jsonb)
               ORDER BY id""",
            {"org_only": organization_wide_only, "project": project_id, "action": json.dumps([action])},
        )
        hooks = [_Hook(pk=row[0], send_payload=row[1]) for row in cursor.fetchall()]
    if not hooks:
        return []
    summary = {"action": action, **({"project": {"id": project_id}} if project_id is not None else {})}
    full = _jsonable({"action": action, **payload_factory()}) if any(h.send_payload for h in hooks) else None
    deliveries = WebhookDelivery.objects.bulk_create([
        WebhookDelivery(webhook_id=hook.pk, action=action, payload=full if hook.send_payload else summary)
        for hook in hooks
    ])
    delivery_ids = [delivery.pk for delivery in deliveries]
    # A schema set by name (tenant_schemas_celery's restore) carries no organization id: look it up.
    organization_id = getattr(organization, "pk", None) or Organization.objects.get(
        schema_name=connection.schema_name).pk
    # robust: a broker outage must not fail a write that has already committed.
    transaction.on_commit(lambda: _enqueue(organization_id, delivery_ids), robust=True)
    return delivery_ids


def _enqueue(organization_id: int, delivery_ids: list[int]) -> None:
    from labeling.tasks import deliver_webhook

    queue = settings.WEBHOOK_DELIVERY_QUEUE or None
    for delivery_id in delivery_ids:
        deliver_webhook.apply_async(args=[organization_id, delivery_id], queue=queue)


# --- delivery ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AttemptOutcome:
    status: str  # a WebhookDelivery.Status, or "skipped" when nothing was sent
    retry_in: float | None = None  # seconds until the next attempt, when one is due


SKIPPED = AttemptOutcome(status="skipped")


def _post(delivery: WebhookDelivery) -> tuple[bool, int | None, str]:
    """Send once. Returns (worth retrying, response code, error message or "")."""
    webhook = delivery.webhook
    if not webhook.is_active:
        return False, None, "The webhook was deactivated before this delivery was sent."
    try:
        vetted = vet_url(webhook.url)
    except UnsafeUrlError as exc:
        return False, None, f"Refused by the SSRF guard: {exc}"
    try:
        secret = decrypt(webhook.secret_encrypted)
    except DecryptionError as exc:
        return False, None, str(exc)
    body = json.dumps(delivery.payload, cls=DjangoJSONEncoder, separators=(",", ":")).encode()
    headers = {
        **(webhook.headers or {}),
        "Content-Type": "application/json",
        "User-Agent": f"Scriptorium-Webhooks/{settings.APP_VERSION}",
        ACTION_HEADER: delivery.action,
        DELIVERY_HEADER: str(delivery.pk),
    }
    if secret:
        headers[SIGNATURE_HEADER] = signature_header(secret=secret, body=body)
    try:
        response = pinned_request(vetted, method="POST", body=body, headers=headers,
                                  timeout=settings.WEBHOOK_TIMEOUT_SECONDS, max_body=1024)
    except urllib3.exceptions.SSLError as exc:
        return False, None, f"TLS failed: {exc}"
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return True, None, f"Could not reach the receiver: {exc}"
    code = response.status
    if 200 <= code < 300:
        return False, code, ""
    if 300 <= code < 400:
        return False, code, f"The receiver answered {code} (redirects are not followed)."
    return code >= 500 or code == 429, code, f"The receiver answered {code}."


def delivery_attempt(*, delivery_id: int) -> AttemptOutcome:
    """Make one attempt at a pending delivery, in the current organization's schema.

    The row stays locked while sending, so a duplicate of the Celery message handled at the same
    time skips it instead of sending twice."""
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("webhook").filter(pk=delivery_id).first())
        if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
            return SKIPPED
        delivery.attempts += 1
        transient, code, error = _post(delivery)
        delivery.response_code, delivery.error = code, error[:2000]
        retry_in = None
        if not error:
            delivery.status, delivery.delivered_at = WebhookDelivery.Status.DELIVERED, timezone.now()
        elif transient and delivery.attempts < settings.WEBHOOK_MAX_ATTEMPTS:
            retry_in = settings.WEBHOOK_RETRY_BACKOFF_SECONDS * 2 ** (delivery.attempts - 1)
        else:
            delivery.status = WebhookDelivery.Status.FAILED
        delivery.save(update_fields=["attempts", "response_code", "error", "status", "delivered_at"])
    if error:
        logger.info("webhook delivery %s attempt %s: %s", delivery.pk, delivery.attempts, error)
    return AttemptOutcome(status=delivery.status, retry_in=retry_in)
