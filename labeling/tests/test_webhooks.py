"""Webhooks: management API, SSRF checks, and deliveries to a real HTTP receiver on loopback.

Deliveries run through Celery: eagerly in-process for most tests (the on-commit callbacks are
executed when the test's `django_capture_on_commit_callbacks` block ends), and once with a real
worker and Redis, on committed data, for the retry path."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection, transaction
from django_tenants.utils import tenant_context

from conftest import _database_url_of, ocr_result
from labeling import services, webhooks
from labeling.models import Project, Webhook, WebhookDelivery
from labeling.tasks import deliver_webhook
from platform_core.crypto import decrypt

ALL_ACTIONS = {
    "PROJECT_CREATED", "PROJECT_UPDATED", "PROJECT_DELETED", "TASKS_CREATED", "TASKS_DELETED", "ANNOTATION_CREATED",
    "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED", "LABEL_LINK_CREATED", "LABEL_LINK_UPDATED",
    "LABEL_LINK_DELETED", "REVIEW_CREATED", "REVIEW_UPDATED", "REVIEWS_DELETED",
}


# --- a real receiver -----------------------------------------------------------------------------

class Receiver:
    def __init__(self):
        self.requests: list[dict] = []
        self.codes: list[int] = []  # answers to give, in order; 200 once exhausted
        self.lock = threading.Lock()

    def handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                if code in (301, 302):
                    self.send_header("Location", "http://169.254.169.254/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler


def _serve(receiver: Receiver):
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def receiver(settings):
    receiver = Receiver()
    server = _serve(receiver)
    receiver.port = server.server_address[1]
    receiver.url = f"http://127.0.0.1:{receiver.port}/hooks/in"
    settings.SSRF_PROTECTION_ALLOWLIST = [f"127.0.0.1:{receiver.port}"]
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def eager_celery(settings):
    from platform_core.celery import app

    # Not propagating: Celery runs an eager task's retries only when its Retry is not re-raised.
    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = 0.01
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


# --- helpers -------------------------------------------------------------------------------------

@pytest.fixture
def owner(db, owner):
    """conftest's owner, with database access (this module has no module-wide django_db mark: one
    test commits for a real Celery worker)."""
    return owner


def _webhooks_of(world):
    with tenant_context(world.org_a):
        return list(Webhook.objects.order_by("id").values("id", "url", "project_id", "headers", "actions"))


def _emit(world, django_capture_on_commit_callbacks, *, project_id, action, payload_factory=lambda: {}):
    """Emit in a transaction of org A that commits: its deliveries are sent when the block ends."""
    with django_capture_on_commit_callbacks(execute=True), tenant_context(world.org_a), transaction.atomic():
        ids = webhooks.emit(project_id=project_id, action=action, payload_factory=payload_factory)
    return ids


def _deliveries(world, ids):
    with tenant_context(world.org_a):
        return list(WebhookDelivery.objects.filter(pk__in=ids).order_by("id"))



# --- management ----------------------------------------------------------------------------------

def test_create_returns_the_secret_once(owner, world, receiver):
    project_id = world.project_a.pk
    response = owner("post", "/api/webhooks/", {
        "url": receiver.url, "project": project_id, "headers": {"Authorization": "Bearer rcv"},
        "send_for_all_actions": False, "actions": ["ANNOTATION_CREATED", "ANNOTATION_UPDATED"],
    })
    assert response.status_code == 201, response.content
    created = response.json()
    assert len(created["secret"]) >= 40
    assert created["project"] == project_id and created["organization"] == world.org_a.pk
    assert created["actions"] == ["ANNOTATION_CREATED", "ANNOTATION_UPDATED"]
    assert created["is_active"] is True and created["send_payload"] is True

    shown = owner("get", f"/api/webhooks/{created['id']}/").json()
    listed = owner("get", "/api/webhooks/").json()
    assert "secret" not in shown and all("secret" not in item for item in listed)
    assert created["secret"] not in json.dumps([shown, listed])
    assert shown == {key: value for key, value in created.items() if key != "secret"}
    with tenant_context(world.org_a):
        stored = Webhook.objects.get(pk=created["id"])
    assert created["secret"] not in stored.secret_encrypted
    assert decrypt(stored.secret_encrypted) == created["secret"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://93.184.215.14/in"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http:///nohost"}, "url"),
        ({}, "url"),
        ({"url": "https://93.184.215.14/", "actions": ["ANNOTATION_CREATED", "EVERYTHING"]}, "actions"),
        ({"url": "https://93.184.215.14/", "actions": "ANNOTATION_CREATED"}, "actions"),
        ({"url": "https://93.184.215.14/", "headers": ["X-A"]}, "headers"),
        ({"url": "https://93.184.215.14/", "headers": {"X-Count": 5}}, "headers"),
        ({"url": "https://93.184.215.14/", "headers": {"X-Nested": {"a": "b"}}}, "headers"),
        ({"url": "https://93.184.215.14/", "headers": {"Bad Name": "x"}}, "headers"),
        ({"url": "https://93.184.215.14/", "headers": {"X-Split": "a\r\nInjected: yes"}}, "headers"),
        ({"url": "https://93.184.215.14/", "headers": {"X-Scriptorium-Signature": "forged"}}, "headers"),
        ({"url": "https://93.184.215.14/", "project": 987654}, "project"),
        ({"url": "https://93.184.215.14/", "is_active": "maybe"}, "is_active"),
    ],
)
def test_create_refuses_bad_input_and_stores_nothing(owner, world, body, field):
    before = _webhooks_of(world)
    response = owner("post", "/api/webhooks/", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["validation_errors"]
    assert _webhooks_of(world) == before


@pytest.mark.parametrize("url", [
    "http://localhost:8080/in", "http://127.1/in", "http://2130706433/in", "http://[::1]/in",
    "http://[::ffff:127.0.0.1]/in", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/in",
    "http://metadata.google.internal/", "http://0x7f.1/",
])
def test_create_and_update_refuse_non_public_urls(owner, world, settings, url):
    settings.SSRF_PROTECTION_ALLOWLIST = []
    before = _webhooks_of(world)
    response = owner("post", "/api/webhooks/", {"url": url})
    assert response.status_code == 400
    assert "url" in response.json()["validation_errors"]
    assert _webhooks_of(world) == before

    created = owner("post", "/api/webhooks/", {"url": "https://93.184.215.14/in"}).json()
    response = owner("patch", f"/api/webhooks/{created['id']}/", {"url": url})
    assert response.status_code == 400 and "url" in response.json()["validation_errors"]
    assert owner("get", f"/api/webhooks/{created['id']}/").json()["url"] == "https://93.184.215.14/in"


def test_update_never_moves_a_webhook_to_another_project(owner, world):
    created = owner("post", "/api/webhooks/", {"url": "https://93.184.215.14/in", "project": world.project_a.pk})
    webhook_id = created.json()["id"]
    other = owner("post", "/api/projects/", {"title": "Other"}).json()
    response = owner("patch", f"/api/webhooks/{webhook_id}/", {"project": other["id"], "is_active": False,
                                                                "headers": {"X-Team": "ocr"}})
    assert response.status_code == 200, response.content
    assert (response.json()["project"], response.json()["is_active"]) == (world.project_a.pk, False)
    assert response.json()["headers"] == {"X-Team": "ocr"}

    put = owner("put", f"/api/webhooks/{webhook_id}/", {"is_active": True})
    assert put.status_code == 400 and "url" in put.json()["validation_errors"]
    put = owner("put", f"/api/webhooks/{webhook_id}/", {"url": "https://93.184.215.14/v2", "project": None})
    assert put.status_code == 200 and put.json()["project"] == world.project_a.pk
    assert put.json()["url"] == "https://93.184.215.14/v2"

    assert owner("delete", f"/api/webhooks/{webhook_id}/").status_code == 204
    assert owner("get", f"/api/webhooks/{webhook_id}/").status_code == 404


def test_list_filters_by_project(owner, world):
    org_wide = owner("post", "/api/webhooks/", {"url": "https://93.184.215.14/org"}).json()
    of_project = owner("post", "/api/webhooks/", {"url": "https://93.184.215.14/p", "project": world.project_a.pk})
    listed = owner("get", f"/api/webhooks/?project={world.project_a.pk}").json()
    assert [item["id"] for item in listed] == [of_project.json()["id"]]
    assert {org_wide["id"], of_project.json()["id"]} <= {item["id"] for item in owner("get", "/api/webhooks/").json()}
    assert owner("get", "/api/webhooks/?project=abc").status_code == 400


def test_annotators_cannot_see_or_manage_webhooks(owner, world, api):
    created = owner("post", "/api/webhooks/", {"url": "https://93.184.215.14/in",
                                               "headers": {"Authorization": "Bearer receiver-credential"}}).json()
    token = world.annotator_a.legacy_key
    for method, path, body in (("get", "/api/webhooks/", None), ("post", "/api/webhooks/", {"url": "https://a.b/"}),
                               ("get", f"/api/webhooks/{created['id']}/", None),
                               ("patch", f"/api/webhooks/{created['id']}/", {"is_active": False}),
                               ("delete", f"/api/webhooks/{created['id']}/", None)):
        response = api.call(method, f"/o/org-a{path}", token=token, json=body)
        assert response.status_code == 403, (method, path)
        assert b"receiver-credential" not in response.content
    assert owner("get", f"/api/webhooks/{created['id']}/").json()["is_active"] is True


def test_info_lists_every_action_in_label_studio_shape(owner, world, api):
    info = api.call("get", "/o/org-a/api/webhooks/info/", token=world.annotator_a.legacy_key).json()
    assert set(info) == ALL_ACTIONS
    assert all(set(item) == {"name", "description", "key", "organization-only"} for item in info.values())
    assert info["ANNOTATION_CREATED"]["key"] == "annotation" and info["TASKS_CREATED"]["key"] == "tasks"
    only_org = owner("get", "/api/webhooks/info/?organization-only=true").json()
    assert set(only_org) == {"PROJECT_CREATED", "PROJECT_DELETED"}
    assert set(owner("get", "/api/webhooks/info/?organization-only=false").json()) == ALL_ACTIONS - set(only_org)


def test_organization_b_cannot_reach_a_webhooks(owner, world, api):
    created = owner("post", "/api/webhooks/", {"url": "https://93.184.215.14/a-secret-path",
                                               "headers": {"Authorization": "Bearer a-receiver"}}).json()
    before = _webhooks_of(world)
    b_token = world.owner_b.legacy_key
    for method in ("get", "patch", "put", "delete"):
        for path in (f"/o/org-a/api/webhooks/{created['id']}/", f"/api/webhooks/{created['id']}/"):
            response = api.call(method, path, token=b_token, json={"url": "https://93.184.215.14/b"})
            assert response.status_code in (403, 404), (method, path)
            assert b"a-secret-path" not in response.content
    assert api.call("get", "/o/org-a/api/webhooks/", token=b_token).status_code in (403, 404)
    own = api.call("get", "/api/webhooks/", token=b_token)
    assert own.status_code == 200 and b"a-secret-path" not in own.content
    assert _webhooks_of(world) == before


# --- delivery ------------------------------------------------------------------------------------

def _annotation(world):
    with tenant_context(world.org_a):
        task = services.task_create(project=world.project_a, data={"ocr": "https://example.test/x.png"})
        return services.annotation_create(task=task, user=world.owner_a.user, result=ocr_result(text="Webhook"))


def test_delivery_is_signed_and_carries_the_payload_and_headers(owner, world, receiver, eager_celery,
                                                               django_capture_on_commit_callbacks):
    created = owner("post", "/api/webhooks/", {"url": receiver.url, "project": world.project_a.pk,
                                               "headers": {"Authorization": "Bearer rcv", "X-Team": "ocr"}}).json()
    annotation = _annotation(world)
    ids = _emit(world, django_capture_on_commit_callbacks, project_id=world.project_a.pk,
                action="ANNOTATION_CREATED", payload_factory=lambda: webhooks.annotation_event(annotation))

    assert len(ids) == 1 and len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["path"] == "/hooks/in"
    body = json.loads(request["body"])
    assert set(body) == {"action", "annotation", "task", "project"}
    assert body["action"] == "ANNOTATION_CREATED"
    assert body["annotation"]["id"] == annotation.pk
    assert body["annotation"]["result"][2]["value"]["text"] == ["Webhook"]
    assert body["task"]["id"] == annotation.task_id and body["project"]["id"] == world.project_a.pk
    headers = request["headers"]
    assert headers["Authorization"] == "Bearer rcv" and headers["X-Team"] == "ocr"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Scriptorium-Action"] == "ANNOTATION_CREATED"
    assert headers["X-Scriptorium-Delivery"] == str(ids[0])
    signature = headers["X-Scriptorium-Signature"]
    assert webhooks.verify_signature(secret=created["secret"], header=signature, body=request["body"])
    assert not webhooks.verify_signature(secret="another-secret", header=signature, body=request["body"])
    assert not webhooks.verify_signature(secret=created["secret"], header=signature, body=request["body"] + b" ")

    delivery = _deliveries(world, ids)[0]
    assert (delivery.status, delivery.attempts, delivery.response_code, delivery.error) == ("delivered", 1, 200, "")
    assert delivery.delivered_at is not None


def test_without_payload_only_the_action_and_project_id_are_sent(owner, world, receiver, eager_celery,
                                                                 django_capture_on_commit_callbacks):
    owner("post", "/api/webhooks/", {"url": receiver.url, "send_payload": False})
    called = []
    _emit(world, django_capture_on_commit_callbacks, project_id=world.project_a.pk, action="PROJECT_UPDATED",
          payload_factory=lambda: called.append(1) or {"project": {"id": 0, "title": "secret title"}})
    assert [json.loads(r["body"]) for r in receiver.requests] == [
        {"action": "PROJECT_UPDATED", "project": {"id": world.project_a.pk}}
    ]
    assert called == []  # no webhook wanted the payload: it was never built


def test_inactive_webhooks_and_unwanted_actions_send_nothing(owner, world, receiver, eager_celery,
                                                            django_capture_on_commit_callbacks):
    owner("post", "/api/webhooks/", {"url": receiver.url + "?inactive", "is_active": False})
    owner("post", "/api/webhooks/", {"url": receiver.url + "?updates", "send_for_all_actions": False,
                                     "actions": ["ANNOTATION_UPDATED"]})
    other = owner("post", "/api/projects/", {"title": "Other"}).json()
    owner("post", "/api/webhooks/", {"url": receiver.url + "?other-project", "project": other["id"]})
    owner("post", "/api/webhooks/", {"url": receiver.url + "?project", "project": world.project_a.pk})

    def emitted(action):
        receiver.requests.clear()
        _emit(world, django_capture_on_commit_callbacks, project_id=world.project_a.pk, action=action)
        return sorted(r["path"].split("?")[1] for r in receiver.requests)

    assert emitted("ANNOTATION_CREATED") == ["project"]
    assert emitted("ANNOTATION_UPDATED") == ["project", "updates"]
    # Organization-only actions go to organization-wide webhooks only.
    assert emitted("PROJECT_CREATED") == []


def test_a_rolled_back_write_sends_nothing(owner, world, receiver, eager_celery, django_capture_on_commit_callbacks):
    owner("post", "/api/webhooks/", {"url": receiver.url})
    with django_capture_on_commit_callbacks(execute=True) as callbacks, tenant_context(world.org_a):
        with pytest.raises(RuntimeError), transaction.atomic():
            webhooks.emit(project_id=world.project_a.pk, action="TASKS_CREATED", payload_factory=lambda: {})
            raise RuntimeError("the write fails after emitting")
        assert not WebhookDelivery.objects.exists()
    assert callbacks == [] and receiver.requests == []


def test_transient_failures_are_retried_until_delivered(owner, world, receiver, eager_celery,
                                                        django_capture_on_commit_callbacks):
    owner("post", "/api/webhooks/", {"url": receiver.url})
    receiver.codes = [500, 503]
    ids = _emit(world, django_capture_on_commit_callbacks, project_id=None, action="PROJECT_CREATED")
    assert len(receiver.requests) == 3
    assert len({r["headers"]["X-Scriptorium-Delivery"] for r in receiver.requests}) == 1
    delivery = _deliveries(world, ids)[0]
    assert (delivery.status, delivery.attempts, delivery.response_code, delivery.error) == ("delivered", 3, 200, "")


def test_retries_stop_at_the_limit_and_client_errors_are_not_retried(owner, world, receiver, eager_celery, settings,
                                                                     django_capture_on_commit_callbacks):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    owner("post", "/api/webhooks/", {"url": receiver.url})
    receiver.codes = [500] * 10
    ids = _emit(world, django_capture_on_commit_callbacks, project_id=None, action="PROJECT_CREATED")
    delivery = _deliveries(world, ids)[0]
    assert len(receiver.requests) == 3
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 3, 500)
    assert "500" in delivery.error

    for code in (404, 302):
        receiver.requests.clear()
        receiver.codes = [code]
        ids = _emit(world, django_capture_on_commit_callbacks, project_id=None, action="PROJECT_CREATED")
        delivery = _deliveries(world, ids)[0]
        assert len(receiver.requests) == 1  # a redirect's Location is never visited
        assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 1, code)


def test_unreachable_receiver_is_retried_then_failed(owner, world, receiver, eager_celery, settings,
                                                     django_capture_on_commit_callbacks):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    owner("post", "/api/webhooks/", {"url": receiver.url})
    with socket.socket() as probe:  # a port nobody listens on (allow-listed: only the connection fails)
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with tenant_context(world.org_a):
        Webhook.objects.update(url=f"http://127.0.0.1:{closed_port}/in")
    settings.SSRF_PROTECTION_ALLOWLIST = [f"127.0.0.1:{closed_port}"]
    ids = _emit(world, django_capture_on_commit_callbacks, project_id=None, action="PROJECT_CREATED")
    delivery = _deliveries(world, ids)[0]
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 2, None)
    assert "Could not reach" in delivery.error


def test_the_ssrf_guard_runs_again_at_send_time(owner, world, receiver, eager_celery, settings,
                                                django_capture_on_commit_callbacks):
    owner("post", "/api/webhooks/", {"url": receiver.url})
    settings.SSRF_PROTECTION_ALLOWLIST = []  # the receiver's loopback address is no longer allowed
    ids = _emit(world, django_capture_on_commit_callbacks, project_id=None, action="PROJECT_CREATED")
    delivery = _deliveries(world, ids)[0]
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 1, None)
    assert "SSRF" in delivery.error and "loopback" in delivery.error
    assert receiver.requests == []


def test_a_redelivered_message_does_not_send_again(owner, world, receiver, eager_celery,
                                                   django_capture_on_commit_callbacks):
    owner("post", "/api/webhooks/", {"url": receiver.url})
    ids = _emit(world, django_capture_on_commit_callbacks, project_id=None, action="PROJECT_CREATED")
    assert len(receiver.requests) == 1
    assert deliver_webhook.apply(args=[world.org_a.pk, ids[0]]).get() == "skipped"
    assert len(receiver.requests) == 1
    assert _deliveries(world, ids)[0].attempts == 1


# --- a real worker -------------------------------------------------------------------------------

def test_a_celery_worker_delivers_after_two_server_errors(world, redis_url, django_db_blocker, settings, tmp_path):
    """Committed data, Redis and a worker process, as in production: 500, 500, then 200."""
    receiver = Receiver()
    receiver.codes = [500, 500]
    server = _serve(receiver)
    port = server.server_address[1]
    queue = f"webhook-test-{os.getpid()}"
    settings.SSRF_PROTECTION_ALLOWLIST = [f"127.0.0.1:{port}"]
    settings.WEBHOOK_DELIVERY_QUEUE = queue
    with django_db_blocker.unblock():
        database_url = _database_url_of(connection.settings_dict)
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url,
           "SSRF_PROTECTION_ALLOWLIST": f"127.0.0.1:{port}", "WEBHOOK_RETRY_BACKOFF_SECONDS": "0.2"}
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "celery", "-A", "platform_core", "worker", "--pool=solo", "-Q", queue,
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"),  # noqa: SIM115
    )
    webhook = None
    try:
        with django_db_blocker.unblock(), tenant_context(world.org_a):
            webhook, secret = webhooks.webhook_create(project_id=None, fields={"url": f"http://127.0.0.1:{port}/w"})
            with transaction.atomic():
                project = Project.objects.create(title="Worker-delivered")
                ids = webhooks.emit(project_id=project.pk, action="PROJECT_CREATED",
                                    payload_factory=lambda: webhooks.project_event(project))
            deadline = time.monotonic() + 60
            while WebhookDelivery.objects.get(pk=ids[0]).status == WebhookDelivery.Status.PENDING:
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"not delivered within 60 s: {log.read_text()}"
                time.sleep(0.1)
            delivery = WebhookDelivery.objects.get(pk=ids[0])
            assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 3, 200)
            assert len(receiver.requests) == 3
            last = receiver.requests[-1]
            assert json.loads(last["body"])["project"]["title"] == "Worker-delivered"
            assert webhooks.verify_signature(secret=secret, header=last["headers"]["X-Scriptorium-Signature"],
                                             body=last["body"])
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        server.shutdown()
        server.server_close()
        with django_db_blocker.unblock(), tenant_context(world.org_a):
            if webhook is not None:
                Webhook.objects.filter(pk=webhook.pk).delete()
            Project.objects.filter(title="Worker-delivered").delete()


def test_domain_writes_through_the_api_send_their_events(owner, world, receiver, eager_celery,
                                                        django_capture_on_commit_callbacks):
    owner("post", "/api/webhooks/", {"url": receiver.url, "project": world.project_a.pk,
                                     "send_for_all_actions": False,
                                     "actions": ["TASKS_CREATED", "ANNOTATION_CREATED", "ANNOTATIONS_DELETED"]})
    with django_capture_on_commit_callbacks(execute=True):
        imported = owner("post", f"/api/projects/{world.project_a.pk}/import?return_task_ids=1",
                         [{"ocr": "https://example.test/hook.png"}]).json()
    with django_capture_on_commit_callbacks(execute=True):
        annotation = owner("post", f"/api/tasks/{imported['task_ids'][0]}/annotations",
                           {"result": ocr_result(text="Sent")}).json()
    with django_capture_on_commit_callbacks(execute=True):
        owner("patch", f"/api/annotations/{annotation['id']}", {"lead_time": 2})  # not subscribed
        owner("delete", f"/api/annotations/{annotation['id']}")
    bodies = [json.loads(request["body"]) for request in receiver.requests]
    assert [body["action"] for body in bodies] == ["TASKS_CREATED", "ANNOTATION_CREATED", "ANNOTATIONS_DELETED"]
    assert [task["id"] for task in bodies[0]["tasks"]] == imported["task_ids"]
    assert bodies[1]["annotation"]["result"][2]["value"]["text"] == ["Sent"]
    assert [a["id"] for a in bodies[2]["annotations"]] == [annotation["id"]]
