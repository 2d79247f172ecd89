"""Storages API and sync, with the providers that need no emulator: local files (a folder of this
machine below the allowed root) and Redis (this machine's). Who may see and change storages,
secrets never returned, sync and re-sync, export on submit and delete, URI resolution."""

import json
import logging
from urllib.parse import urlsplit

import pytest
import redis

from conftest import in_org_a, ocr_result
from storages.models import ExportLink, ImportLink, Storage

pytestmark = pytest.mark.django_db

REDIS_SECRET = "hunter2-redis-not-set"


@pytest.fixture
def files_root(tmp_path, settings):
    """LOCAL_FILES_DOCUMENT_ROOT with org A's folder holding 12 page images and 3 task files."""
    settings.LOCAL_FILES_DOCUMENT_ROOT = str(tmp_path)
    scans = tmp_path / "org-a" / "scans"
    (scans / "2024" / "march").mkdir(parents=True)
    for n in range(4):
        (scans / f"page-{n}.png").write_bytes(b"\x89PNG page %d" % n)
        (scans / "2024" / f"page-{n}.png").write_bytes(b"\x89PNG 2024 %d" % n)
        (scans / "2024" / "march" / f"page-{n}.png").write_bytes(b"\x89PNG march %d" % n)
    (scans / "notes.txt").write_text("not a page")
    tasks = tmp_path / "org-a" / "tasks"
    tasks.mkdir()
    for n in range(3):
        (tasks / f"task-{n}.json").write_text(json.dumps({"data": {"ocr": f"/data/local-files/?d=scans/page-{n}.png"},
                                                          "predictions": [{"result": [], "score": 0.5}]}))
    (tmp_path / "org-b").mkdir()
    (tmp_path / "org-b" / "secret.png").write_bytes(b"B's page")
    return tmp_path


@pytest.fixture
def project(owner):
    response = owner("post", "/api/projects/", {"title": "Scans"})
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _create(caller, kind, body, *, export=False):
    path = f"/api/storages/{'export/' if export else ''}{kind}/"
    return caller("post", path, body)


def _body(response) -> bytes:
    """A served object's bytes (the proxy streams them)."""
    return b"".join(response.streaming_content) if response.streaming else response.content


def _sync(world, storage_id):
    from storages import services

    def run():
        services.sync_run(storage=Storage.objects.get(pk=storage_id))
        return Storage.objects.get(pk=storage_id)
    return in_org_a(world, run)


def test_types_are_label_studios(owner):
    for path in ("/api/storages/types", "/api/storages/export/types"):
        response = owner("get", path)
        assert response.status_code == 200
        assert [t["name"] for t in response.json()] == ["s3", "gcs", "azure", "redis", "localfiles"]


def test_local_files_sync_blobs_with_regex_and_recursion_then_resync_adds_none(world, owner, project, files_root):
    response = _create(owner, "localfiles", {"project": project, "title": "Pages", "path": "scans",
                                             "regex_filter": r"\.png$", "use_blob_urls": True,
                                             "recursive_scan": True})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["type"], body["status"], body["path"], body["recursive_scan"]) == ("localfiles", "initialized",
                                                                                    "scans", True)
    storage = _sync(world, body["id"])
    assert (storage.status, storage.last_sync_count) == ("completed", 12)  # notes.txt left out by the regex
    again = _sync(world, body["id"])
    assert (again.status, again.last_sync_count) == ("completed", 0)
    assert in_org_a(world, lambda: ImportLink.objects.filter(storage_id=body["id"]).count()) == 12
    tasks = owner("get", f"/api/tasks/?project={project}&page_size=100").json()["tasks"]
    assert len(tasks) == 12
    assert all(task["data"]["ocr"].startswith("/data/local-files/?d=scans/") for task in tasks)

    # Not recursive, with a prefix: only the folder's own files.
    shallow = _create(owner, "localfiles", {"project": project, "path": "scans", "prefix": "2024",
                                            "use_blob_urls": True}).json()
    assert _sync(world, shallow["id"]).last_sync_count == 4


def test_json_task_files_bring_their_predictions(world, owner, project, files_root):
    body = _create(owner, "localfiles", {"project": project, "path": "tasks", "regex_filter": r"\.json$"}).json()
    assert _sync(world, body["id"]).last_sync_count == 3
    tasks = owner("get", f"/api/tasks/?project={project}&fields=all").json()["tasks"]
    assert sorted(task["data"]["ocr"] for task in tasks)[0] == "/data/local-files/?d=scans/page-0.png"
    assert all(len(task["predictions"]) == 1 for task in tasks)


def test_a_file_that_is_not_a_task_fails_the_sync_with_its_name(world, owner, project, files_root):
    body = _create(owner, "localfiles", {"project": project, "path": "scans", "regex_filter": r"notes"}).json()
    storage = _sync(world, body["id"])
    assert storage.status == "failed" and "notes.txt is not JSON" in storage.traceback
    assert owner("get", f"/api/storages/localfiles/{body['id']}").json()["traceback"] == storage.traceback


def test_paths_outside_the_organizations_folder_are_refused(owner, project, files_root):
    for path in ("../org-b", str(files_root / "org-b"), "/etc", "missing-folder"):
        response = _create(owner, "localfiles", {"project": project, "path": path})
        assert response.status_code == 400 and "path" in response.json()["validation_errors"], (path, response.content)


def test_local_files_are_served_to_those_who_see_the_project_only(world, owner, annotator, api, project,
                                                                  files_root):
    body = _create(owner, "localfiles", {"project": project, "path": "scans", "use_blob_urls": True}).json()
    _sync(world, body["id"])
    served = owner("get", "/data/local-files/?d=scans/page-1.png")
    assert _body(served) == b"\x89PNG page 1" and served["Content-Type"] == "image/png"
    (files_root / "org-a" / "scans" / "trap.html").write_text("<script>alert(document.cookie)</script>")
    trap = owner("get", "/data/local-files/?d=scans/trap.html")
    assert "sandbox" in trap["Content-Security-Policy"] and trap["X-Content-Type-Options"] == "nosniff"
    assert annotator("get", "/data/local-files/?d=scans/page-1.png").status_code == 404  # not a project member
    assert owner("get", "/data/local-files/?d=../org-b/secret.png").status_code == 404
    response = api.call("get", "/o/org-b/data/local-files/?d=scans/page-1.png", token=world.owner_b.legacy_key)
    assert response.status_code == 404


def test_redis_import_and_export_never_return_the_password(world, owner, project, settings, caplog, eager_celery,
                                                           django_capture_on_commit_callbacks):
    settings.SSRF_PROTECTION_ALLOWLIST = ["127.0.0.1:6379"]
    client = redis.Redis(host="127.0.0.1", port=6379, db=0)
    prefix = f"scriptorium-test-{project}:"
    for n in range(5):
        client.set(f"{prefix}task:{n}", json.dumps({"ocr": f"https://example.test/{n}.png"}))
    try:
        caplog.set_level(logging.DEBUG)
        response = _create(owner, "redis", {"project": project, "host": "127.0.0.1", "port": 6379, "db": 0,
                                            "path": prefix, "password": REDIS_SECRET})
        # This machine's Redis has no password: AUTH with one is refused, and said so on `password`.
        assert response.status_code == 400 and "password" in response.json()["validation_errors"]
        response = _create(owner, "redis", {"project": project, "host": "127.0.0.1", "port": 6379, "db": 0,
                                            "path": prefix})
        assert response.status_code == 201, response.content
        assert _sync(world, response.json()["id"]).last_sync_count == 5

        target = _create(owner, "redis", {"project": project, "host": "127.0.0.1", "port": 6379, "db": 0,
                                          "path": f"{prefix}out:", "can_delete_objects": True}, export=True)
        assert target.status_code == 201, target.content
        task_id = owner("get", f"/api/tasks/?project={project}").json()["tasks"][0]["id"]
        with django_capture_on_commit_callbacks(execute=True):
            annotation = owner("post", f"/api/tasks/{task_id}/annotations/", {"result": ocr_result()}).json()
        stored = json.loads(client.get(f"{prefix}out:{annotation['id']}"))
        assert stored["id"] == annotation["id"] and stored["task"]["id"] == task_id
        with django_capture_on_commit_callbacks(execute=True):
            assert owner("delete", f"/api/annotations/{annotation['id']}/").status_code == 204
        assert not client.keys(f"{prefix}out:*")
        assert in_org_a(world, lambda: ExportLink.objects.count()) == 0
        assert REDIS_SECRET not in caplog.text
    finally:
        for key in client.keys(f"{prefix}*"):
            client.delete(key)


def test_redis_on_a_private_address_is_refused_unless_allowed(owner, project, settings):
    settings.SSRF_PROTECTION_ALLOWLIST = []
    for host in ("127.0.0.1", "169.254.169.254", "10.0.0.5", "localhost"):
        response = _create(owner, "redis", {"project": project, "host": host, "port": 6379})
        assert response.status_code == 400, (host, response.content)
        assert "host" in response.json()["validation_errors"]


def test_secrets_are_write_only_and_kept_on_update(world, owner, project, settings):
    settings.SSRF_PROTECTION_ALLOWLIST = ["127.0.0.1:6379"]
    created = _create(owner, "redis", {"project": project, "host": "127.0.0.1", "port": 6379, "path": "x:"}).json()
    assert "password" not in created
    stored = in_org_a(world, lambda: Storage.objects.get(pk=created["id"]))
    assert stored.secrets_encrypted == "" and stored.options["host"] == "127.0.0.1"
    response = owner("patch", f"/api/storages/redis/{created['id']}", {"title": "Renamed"})
    assert response.status_code == 200 and response.json()["title"] == "Renamed"
    listed = owner("get", f"/api/storages/?project={project}").json()
    assert [item["id"] for item in listed] == [created["id"]] and "password" not in listed[0]


def test_bad_fields_are_named(owner, project, files_root):
    cases = [({"path": "scans", "regex_filter": "(["}, "regex_filter"),
             ({"path": "scans", "presign_ttl": 0}, "presign_ttl"),
             ({"path": "scans", "use_blob_urls": "sometimes"}, "use_blob_urls")]
    for body, field in cases:
        response = _create(owner, "localfiles", {"project": project, **body})
        assert response.status_code == 400 and field in response.json()["validation_errors"], (body, response.content)
    assert owner("post", "/api/storages/ftp/", {"project": project}).status_code == 404


def test_roles_and_other_organizations(world, owner, annotator, api, project, files_root):
    body = _create(owner, "localfiles", {"project": project, "path": "scans"}).json()
    assert annotator("get", f"/api/storages/?project={project}").status_code in (403, 404)
    assert annotator("get", f"/api/storages/localfiles/{body['id']}").status_code in (403, 404)
    assert _create(annotator, "localfiles", {"project": project, "path": "scans"}).status_code in (400, 403)
    detail = f"/api/storages/localfiles/{body['id']}"
    for method, path in [("get", detail), ("patch", detail), ("delete", detail), ("post", f"{detail}/sync")]:
        response = api.call(method, f"/o/org-b{path}", token=world.owner_b.legacy_key, json={})
        assert response.status_code == 404, (method, path, response.status_code)
    assert in_org_a(world, lambda: Storage.objects.filter(pk=body["id"]).exists())


def test_the_sync_endpoint_runs_the_job(world, owner, project, files_root, eager_celery,
                                        django_capture_on_commit_callbacks):
    body = _create(owner, "localfiles", {"project": project, "path": "scans", "use_blob_urls": True}).json()
    with django_capture_on_commit_callbacks(execute=True):
        response = owner("post", f"/api/storages/localfiles/{body['id']}/sync")
    assert response.status_code == 200 and response.json()["status"] == "queued"
    after = owner("get", f"/api/storages/localfiles/{body['id']}").json()
    assert (after["status"], after["last_sync_count"]) == ("completed", 5)
    assert after["last_sync_job"]


def test_task_detail_resolves_local_references_for_the_editor(world, owner, annotator, api, project, files_root):
    body = _create(owner, "localfiles", {"project": project, "path": "scans", "use_blob_urls": True,
                                         "regex_filter": "png$"}).json()
    _sync(world, body["id"])
    task = owner("get", f"/api/tasks/?project={project}").json()["tasks"][0]
    detail = owner("get", f"/api/tasks/{task['id']}").json()
    url = detail["data"]["ocr"]
    assert urlsplit(url).path == f"/o/org-a/tasks/{task['id']}/presign/"
    assert _body(api.call("get", url, token=world.owner_a.legacy_key)).startswith(b"\x89PNG")
    assert api.call("get", url, token=world.annotator_a.legacy_key).status_code == 404  # not in the project
    assert owner("get", f"/api/tasks/{task['id']}?resolve_uri=false").json()["data"]["ocr"].startswith(
        "/data/local-files/?d=")


def test_a_thousand_local_files_and_redis_keys(world, owner, project, tmp_path, settings):
    """1,000 objects per provider: regex, prefix and recursion pick exactly what they should."""
    settings.LOCAL_FILES_DOCUMENT_ROOT = str(tmp_path)
    settings.SSRF_PROTECTION_ALLOWLIST = ["127.0.0.1:6379"]
    base = tmp_path / "org-a" / "bulk"
    (base / "deep").mkdir(parents=True)
    for n in range(600):
        (base / f"p-{n:03}.png").write_bytes(b"png")
    for n in range(350):
        (base / "deep" / f"p-{n:03}.png").write_bytes(b"png")
    for n in range(50):
        (base / f"n-{n:02}.txt").write_bytes(b"txt")
    recursive = _create(owner, "localfiles", {"project": project, "path": "bulk", "use_blob_urls": True,
                                              "regex_filter": r"\.png$", "recursive_scan": True}).json()
    assert _sync(world, recursive["id"]).last_sync_count == 950
    shallow = _create(owner, "localfiles", {"project": project, "path": "bulk", "use_blob_urls": True,
                                            "regex_filter": r"\.png$"}).json()
    assert _sync(world, shallow["id"]).last_sync_count == 600
    assert _sync(world, recursive["id"]).last_sync_count == 0

    client = redis.Redis(host="127.0.0.1", port=6379, db=0)
    prefix = f"scriptorium-bulk-{project}:"
    pipe = client.pipeline()
    for n in range(1000):
        pipe.set(f"{prefix}{'keep' if n < 900 else 'skip'}:{n}", json.dumps({"ocr": f"https://example.test/{n}.png"}))
    pipe.execute()
    try:
        storage = _create(owner, "redis", {"project": project, "host": "127.0.0.1", "port": 6379, "path": prefix,
                                           "regex_filter": ":keep:"}).json()
        assert _sync(world, storage["id"]).last_sync_count == 900
        assert _sync(world, storage["id"]).last_sync_count == 0
    finally:
        client.delete(*client.keys(f"{prefix}*"))


def test_local_export_writes_on_submit_and_deletes_only_when_allowed(world, owner, project, files_root, eager_celery,
                                                                     django_capture_on_commit_callbacks):
    source = _create(owner, "localfiles", {"project": project, "path": "scans", "use_blob_urls": True,
                                           "regex_filter": r"\.png$"}).json()
    _sync(world, source["id"])
    (files_root / "org-a" / "out-kept").mkdir()
    (files_root / "org-a" / "out-deleted").mkdir()
    kept = _create(owner, "localfiles", {"project": project, "path": "out-kept"}, export=True)
    deleted = _create(owner, "localfiles", {"project": project, "path": "out-deleted", "can_delete_objects": True},
                      export=True)
    assert kept.status_code == 201 and deleted.status_code == 201, (kept.content, deleted.content)
    assert kept.json()["can_delete_objects"] is False and "presign" not in kept.json()
    task_id = owner("get", f"/api/tasks/?project={project}").json()["tasks"][0]["id"]
    with django_capture_on_commit_callbacks(execute=True):
        annotation = owner("post", f"/api/tasks/{task_id}/annotations/", {"result": ocr_result()}).json()
    for folder in ("out-kept", "out-deleted"):
        written = json.loads((files_root / "org-a" / folder / str(annotation["id"])).read_text())
        assert (written["id"], written["task"]["id"]) == (annotation["id"], task_id)
    with django_capture_on_commit_callbacks(execute=True):
        owner("patch", f"/api/annotations/{annotation['id']}/", {"result": ocr_result(text="changed")})
    assert "changed" in (files_root / "org-a" / "out-kept" / str(annotation["id"])).read_text()
    with django_capture_on_commit_callbacks(execute=True):
        assert owner("delete", f"/api/annotations/{annotation['id']}/").status_code == 204
    assert (files_root / "org-a" / "out-kept" / str(annotation["id"])).exists()
    assert not (files_root / "org-a" / "out-deleted" / str(annotation["id"])).exists()


def test_a_sync_reports_its_progress(world, owner, project, files_root, monkeypatch):
    from realtime import events

    heard = []
    monkeypatch.setattr(events, "job_progress", lambda **event: heard.append(event))
    body = _create(owner, "localfiles", {"project": project, "path": "scans", "use_blob_urls": True,
                                         "recursive_scan": True}).json()
    _sync(world, body["id"])
    assert {(event["kind"], event["job_id"], event["project_id"]) for event in heard} == {
        ("storage_sync", body["id"], project)}
    assert heard[0]["status"] == "in_progress" and heard[0]["done"] == 0
    assert (heard[-1]["status"], heard[-1]["done"], heard[-1]["percent"]) == ("completed", 13, 100.0)
