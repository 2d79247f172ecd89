"""Shared test fixtures.

Organizations are provisioned once per session (schemas are DDL, and slow next to a test); every
test then runs inside a transaction that is rolled back. `world` holds org A (owner, annotator)
and org B (owner) with their tokens. Tests that need a real server use `live_server_url`, a
daphne process on the test database.

With CI=true a missing service (Redis, Chromium) fails the test instead of skipping it.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from urllib.parse import quote

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
PASSWORD = "S3cure-Enough-Passw0rd"


def service_missing(reason: str):
    """Skip on a laptop; fail loudly in CI, where every service must be present."""
    if IN_CI:
        pytest.fail(f"CI=true and a required service is missing: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class Member:
    user: object
    legacy_key: str
    pat: str


@dataclass
class World:
    org_a: object
    org_b: object
    owner_a: Member
    annotator_a: Member
    owner_b: Member
    # One member per other role, all members of project_a (so object rules let each role in).
    admin_a: Member = None
    manager_a: Member = None
    reviewer_a: Member = None
    # Org A's labeling objects (committed, in org A's schema).
    project_a: object = None
    task_a: object = None
    annotation_a: object = None
    prediction_a: object = None
    export_a: object = None
    import_a: object = None
    file_upload_a: object = None
    draft_a: object = None
    review_a: object = None
    comment_a: object = None
    history_a: object = None
    view_a: object = None
    webhook_a: object = None
    storage_a: object = None
    # Data manager actions are named, not stored: a stand-in with the name as its "pk".
    action_a: object = None
    # Organization administration (issue 4).
    workspace_a: object = None
    project_role_a: object = None
    pause_a: object = None
    member_tag_a: object = None
    invite_a: object = None
    # SCIM (issue 5): org A's annotator as its IdP provisioned them, in one group of A's IdP.
    scim_user_a: object = None
    scim_group_a: object = None

    def members_a(self) -> dict:
        """Org A's member of each active role, by role code."""
        return {"OW": self.owner_a, "AD": self.admin_a, "MA": self.manager_a, "RE": self.reviewer_a,
                "AN": self.annotator_a}


def ocr_result(region: str = "r1", text: str = "Hello", *, x: float = 10, y: float = 10, label: str = "Text") -> list:
    """One OCR region as Label Studio's editor sends it: box, its label, its transcription."""
    geometry = {"x": x, "y": y, "width": 20, "height": 5, "rotation": 0}
    common = {"id": region, "to_name": "image", "original_width": 1000, "original_height": 800}
    return [
        {**common, "from_name": "bbox", "type": "rectangle", "value": geometry},
        {**common, "from_name": "label", "type": "labels", "value": {**geometry, "labels": [label]}},
        {**common, "from_name": "transcription", "type": "textarea", "value": {**geometry, "text": [text]}},
    ]


def _labeling_objects_of(organization, owner) -> dict:
    from django_tenants.utils import tenant_context

    from labeling import services as labeling

    with tenant_context(organization):
        project = labeling.project_create(user=owner, fields={"title": "A's OCR project"})
        imported = labeling.tasks_import(
            project=project, user=owner,
            tasks=[{"data": {"ocr": f"https://example.test/a/{n}.png"}} for n in range(3)],
        )
        from labeling.models import Task

        task = Task.objects.get(pk=imported.task_ids[0])
        annotation = labeling.annotation_create(task=task, user=owner, result=ocr_result())
        prediction = labeling.prediction_create(task=task, result=ocr_result("p1"), score=0.5, model_version="v1")
        export = labeling.export_snapshot_create(project=project, user=owner)
        from labeling.models import ImportJob

        import_job = ImportJob.objects.create(project=project, created_by=owner, status=ImportJob.Status.COMPLETED,
                                              task_count=3)
        extras = _more_labeling_objects(project=project, task=task, annotation=annotation, owner=owner)
    return {"project_a": project, "task_a": task, "annotation_a": annotation, "prediction_a": prediction,
            "export_a": export, "import_a": import_job, **extras}


def _more_labeling_objects(*, project, task, annotation, owner) -> dict:
    """One of each object with its own route, for the cross-tenant walk."""
    import io
    import types

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from labeling import collaboration, data_manager, uploads
    from labeling.models import AnnotationHistory, FileUpload, Webhook
    from storages.models import Storage

    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    stored = uploads.file_uploads_import(project=project, user=owner, commit_to_project=False,
                                         files=[SimpleUploadedFile("a.png", png.getvalue())])
    review = collaboration.review_create(annotation=annotation, user=owner, accepted=True)
    return {
        "file_upload_a": FileUpload.objects.get(pk=stored.file_upload_ids[0]),
        "draft_a": collaboration.draft_save(task=task, user=owner, result=ocr_result(text="draft")),
        "review_a": review,
        "comment_a": collaboration.comment_create(user=owner, annotation=annotation, text="A's comment"),
        "history_a": AnnotationHistory.objects.filter(annotation_id=annotation.pk).first(),
        "view_a": data_manager.view_create(project=project, user=owner, data={"title": "A's tab"}),
        # Created directly: the service's SSRF guard would refuse a name that does not resolve here.
        # Inactive and organization-wide, so the webhook tests' deliveries and listings are their own.
        "webhook_a": Webhook.objects.create(url="https://hooks.example.test/a", is_active=False,
                                            headers={"Authorization": "Bearer a-receiver"}),
        "action_a": types.SimpleNamespace(pk="predictions_to_annotations"),
        # Created directly (no connection to validate): a local-files import storage of A's project.
        "storage_a": Storage.objects.create(project=project, direction=Storage.Direction.IMPORT, kind="localfiles",
                                            title="A's storage", options={"path": "a-files"}),
    }


def _administration_objects_of(organization, *, owner, project, members: dict) -> dict:
    """Workspace, project members, a role override, a pause, a member tag and an invite of org A."""
    from django_tenants.utils import tenant_context

    from accounts import services
    from accounts.models import Invite, Membership, MemberTag, Role
    from accounts.tokens import hash_secret
    from labeling.models import AnnotatorPause, ProjectMember, ProjectRole
    from platform_core.crypto import encrypt
    from workspaces.models import Workspace, WorkspaceMembership

    paused = services.user_create(email="paused@a.test", password=PASSWORD)
    services.membership_set(user=paused, organization=organization, role=Role.ANNOTATOR)
    with tenant_context(organization):
        workspace = Workspace.objects.create(title="A's workspace", created_by=owner)
        WorkspaceMembership.objects.create(workspace=workspace, user=owner)
        project.workspace_id = workspace.pk
        project.save(update_fields=["workspace_id"])
        for member in [*members.values(), paused]:
            user = getattr(member, "user", member)
            ProjectMember.objects.get_or_create(project=project, user=user)
        project_role = ProjectRole.objects.create(project=project, user=members["RE"].user, role=Role.REVIEWER)
        pause = AnnotatorPause.objects.create(project=project, user=paused, paused_by=owner,
                                              verbose_reason="Checking quality")
    tag = MemberTag.objects.create(organization=organization, label="A's tag", created_by=owner)
    tag.assignments.create(membership=Membership.objects.get(user=owner, organization=organization))
    token = "a-invite-token-of-the-test-world"
    invite = Invite.objects.create(organization=organization, email="invitee@a.test", role=Role.ANNOTATOR,
                                   token_hash=hash_secret(token), token_encrypted=encrypt(token),
                                   created_by=owner)
    return {"workspace_a": workspace, "project_role_a": project_role, "pause_a": pause,
            "member_tag_a": tag, "invite_a": invite}


def _scim_objects_of(organization) -> dict:
    """Org A's annotator linked as a SCIM User (their membership and role stay) and a SCIM Group
    holding them; org A has no SCIM mappings, so the group gives nothing."""
    from sso import scim

    scim_user = scim.scim_user_create(organization=organization, payload={
        "userName": "annotator@a.test", "displayName": "A's annotator", "externalId": "a-idp-annotator",
        "emails": [{"value": "annotator@a.test", "primary": True}],
    })
    group = scim.scim_group_create(organization=organization, payload={
        "displayName": "A's SCIM group", "members": [{"value": str(scim_user.pk)}],
    })
    return {"scim_user_a": scim_user, "scim_group_a": group}


def _member(*, email: str, organization, role: str) -> Member:
    from accounts import services
    from accounts.models import User

    user = User.objects.filter(email=email).first() or services.user_create(email=email, password=PASSWORD)
    services.membership_set(user=user, organization=organization, role=role)
    key = services.legacy_token_issue(user=user, organization=organization)
    _, pat = services.personal_access_token_create(user=user, organization=organization)
    return Member(user=user, legacy_key=key, pat=pat)


def pytest_configure(config):
    """Cache keys of this run apart from other runs on the same Redis, for this process and the
    servers it starts: allauth's rate limits (one confirmation email per address per cooldown) and
    entries keyed by organization id (each run's test database counts ids from 1) would otherwise
    leak between runs."""
    from django.conf import settings

    os.environ["CACHE_KEY_PREFIX"] = f"test-{os.getpid()}-"
    for name, alias in settings.CACHES.items():
        alias["KEY_PREFIX"] = os.environ["CACHE_KEY_PREFIX"] + ("shared" if name == "shared" else "")
    # The realtime server's Redis keys and channel-layer groups too (group names carry schema
    # names, which every run's organizations share).
    settings.CACHE_KEY_PREFIX = os.environ["CACHE_KEY_PREFIX"]
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"{settings.CACHE_KEY_PREFIX}asgi"
    # Organizations made by the tests start without plan limits (the servers they start too); the
    # billing tests put theirs on limited plans (billing.services.plan_set).
    os.environ["BILLING_SIGNUP_PLAN"] = "enterprise"
    settings.BILLING_SIGNUP_PLAN = "enterprise"


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker, tmp_path_factory):
    """The test database, always: live-server tests commit through it without a django_db mark.

    Media (uploads, export snapshots) goes to a temporary folder, for this process and the servers
    it starts."""
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    media = tmp_path_factory.mktemp("media")
    settings.MEDIA_ROOT = str(media)
    os.environ["MEDIA_ROOT"] = str(media)

    # One test database per pytest process, so two runs on one server never drop each other's.
    database = settings.DATABASES["default"]
    database.setdefault("TEST", {})["NAME"] = f"test_{database['NAME']}_{os.getpid()}"
    with django_db_blocker.unblock():
        _drop_test_databases_of_dead_runs(database["NAME"])
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"}, serialized_aliases=set())
    yield
    with django_db_blocker.unblock():
        teardown_databases(config, verbosity=0)


def _drop_test_databases_of_dead_runs(name: str) -> None:
    """Test databases left by runs that were killed before their teardown."""
    from django.db import connection

    from platform_core.embedded import process_alive

    with connection._nodb_cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [f"test_{name}_%"])
        for (datname,) in cursor.fetchall():
            pid = datname.rsplit("_", 1)[-1]
            if pid.isdigit() and not process_alive(int(pid)):
                cursor.execute(f'DROP DATABASE IF EXISTS "{datname}" WITH (FORCE)')


@pytest.fixture(scope="session")
def world(django_db_setup, django_db_blocker) -> World:
    from accounts import services
    from accounts.models import Role
    from tenants.services import warm_pool_refill

    with django_db_blocker.unblock():
        warm_pool_refill(target_size=2)
        owner_a_user = services.user_create(email="owner@a.test", password=PASSWORD, first_name="Ada")
        org_a = services.organization_create_with_owner(user=owner_a_user, title="Org A", slug="org-a")
        owner_b_user = services.user_create(email="owner@b.test", password=PASSWORD, first_name="Bea")
        org_b = services.organization_create_with_owner(user=owner_b_user, title="Org B", slug="org-b")
        members = {
            role: _member(email=f"{name}@a.test", organization=org_a, role=role)
            for role, name in [(Role.OWNER, "owner"), (Role.ADMINISTRATOR, "admin"), (Role.MANAGER, "manager"),
                               (Role.REVIEWER, "reviewer"), (Role.ANNOTATOR, "annotator")]
        }
        labeling_objects = _labeling_objects_of(org_a, owner_a_user)
        return World(
            org_a=org_a,
            org_b=org_b,
            owner_a=members[Role.OWNER],
            admin_a=members[Role.ADMINISTRATOR],
            manager_a=members[Role.MANAGER],
            reviewer_a=members[Role.REVIEWER],
            annotator_a=members[Role.ANNOTATOR],
            owner_b=_member(email="owner@b.test", organization=org_b, role=Role.OWNER),
            **labeling_objects,
            **_administration_objects_of(org_a, owner=owner_a_user, project=labeling_objects["project_a"],
                                         members=members),
            **_scim_objects_of(org_a),
        )


@pytest.fixture
def api(client):
    """Django test client with helpers for token auth."""

    class Api:
        def __init__(self, client):
            self.client = client

        def call(self, method: str, path: str, *, token: str | None = None, bearer: str | None = None,
                 json=None):
            headers = {}
            if token:
                headers["Authorization"] = f"Token {token}"
            if bearer:
                headers["Authorization"] = f"Bearer {bearer}"
            kwargs = {"headers": headers}
            if json is not None:
                kwargs.update(data=json, content_type="application/json")
            return getattr(self.client, method.lower())(path, **kwargs)

        def access_for(self, pat: str) -> str:
            response = self.call("post", "/api/token/refresh/", json={"refresh": pat})
            assert response.status_code == 200, response.content
            return response.json()["access"]

    return Api(client)


@pytest.fixture
def as_member(world, api):
    """`as_member(member)(method, path, json=None)`: an API call on org A's prefix with that
    member's legacy token."""
    def factory(member):
        def call(method, path, json=None):
            return api.call(method, f"/o/org-a{path}", token=member.legacy_key, json=json)
        return call
    return factory


def _calls_as(name: str, role: str):
    """The fixture `name`: API calls as org A's `world.<name>_a`, its `role`."""
    def calls(world, as_member):
        return as_member(getattr(world, f"{name}_a"))
    calls.__doc__ = f"API calls as org A's {role}."
    return pytest.fixture(calls, name=name)


owner = _calls_as("owner", "Owner")
admin = _calls_as("admin", "Administrator")
manager = _calls_as("manager", "Manager")
reviewer = _calls_as("reviewer", "Reviewer")
annotator = _calls_as("annotator", "Annotator")


def in_org_a(world, query):
    """`query()` run on org A's schema (where its projects, tasks and annotations are)."""
    from django_tenants.utils import tenant_context

    with tenant_context(world.org_a):
        return query()


def in_worker(django_db_blocker, fn, *args, **kwargs):
    """ORM work of a browser test, in a thread of its own (Playwright's sync API keeps an event loop
    in the test's thread, where Django refuses ORM calls), closing its connection after."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def work():
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    with django_db_blocker.unblock(), ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


# --- real peers --------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _database_url_of(settings_dict: dict) -> str:
    host = settings_dict.get("HOST") or settings_dict.get("OPTIONS", {}).get("host") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    password = f":{quote(settings_dict['PASSWORD'], safe='')}" if settings_dict.get("PASSWORD") else ""
    return f"postgres://{settings_dict['USER']}{password}@{quote(host, safe='')}{port}/{settings_dict['NAME']}"


def start_daphne(database_url: str, *, extra_env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """A daphne process on `database_url` (this run's Redis and cache prefix); (process, base URL)
    once it answers /health."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "platform_core.settings",
           **(extra_env or {})}
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "platform_core.asgi:application"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    import urllib.request

    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=1):  # noqa: S310 - loopback
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"daphne did not start: {server.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.2)
    return server, base


def _serve_test_database(django_db_blocker):
    from django.db import connection

    with django_db_blocker.unblock():
        url = _database_url_of(connection.settings_dict)
    server, base = start_daphne(url)
    yield base
    server.terminate()
    server.wait(timeout=15)


@pytest.fixture(scope="session")
def live_server_url(world, django_db_blocker) -> str:
    """daphne serving the test database, as `make run` serves the real one."""
    yield from _serve_test_database(django_db_blocker)


@pytest.fixture(scope="session")
def second_live_server_url(world, django_db_blocker) -> str:
    """Another daphne process on the same database and Redis (realtime events cross processes)."""
    yield from _serve_test_database(django_db_blocker)


@pytest.fixture(scope="session")
def celery_worker_queue(world, redis_url, django_db_blocker, tmp_path_factory) -> str:
    """A Celery worker process on the test database and this run's Redis, consuming a queue of its
    own (other runs may share the broker): send it jobs with `apply_async(queue=...)`."""
    from django.db import connection

    with django_db_blocker.unblock():
        database_url = _database_url_of(connection.settings_dict)
    queue = f"test-worker-{os.getpid()}"
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url}
    worker = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "celery", "-A", "platform_core", "worker", "--pool=solo", "-Q", queue,
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"),  # noqa: SIM115
    )
    try:
        if worker.poll() is not None:
            raise RuntimeError(f"the Celery worker did not start: {log.read_text()[-2000:]}")
        yield queue
    finally:
        worker.terminate()
        worker.wait(timeout=20)


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        service_missing(f"Redis at {url} does not answer ({exc})")
    return url


@pytest.fixture(scope="module")
def chromium_browser():
    """Module-scoped: Playwright's sync API keeps an event loop running, and Django refuses ORM
    calls while one runs, so the browser must be closed before other modules' tests."""
    executable = shutil.which("chromium")
    if executable is None:
        service_missing("Debian's chromium is not installed (make test installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-gpu"],
        )
        yield browser
        browser.close()
