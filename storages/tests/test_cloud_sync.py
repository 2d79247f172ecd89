"""Each cloud provider end to end through the API, against the real local server the suite starts
(moto's S3, fake-gcs-server, Azurite): create and validate, sync 1,000 objects (regex, prefix,
recursive), re-sync adds none, tasks resolve to signed URLs that load, the export storage receives
an annotation on submit and loses it on delete, and credentials appear in no response or log."""

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests

from conftest import in_org_a, ocr_result
from storages.models import Storage
from storages.providers import provider_for

pytestmark = pytest.mark.django_db

# 1,000 objects: 500 pages under scans/, 400 under scans/2024/, 60 notes (not pages) and 40
# pages outside the prefix.
LAYOUT = ([f"scans/p-{n:03}.png" for n in range(500)] + [f"scans/2024/p-{n:03}.png" for n in range(400)]
          + [f"scans/note-{n:02}.txt" for n in range(60)] + [f"other/p-{n:02}.png" for n in range(40)])


@dataclass
class Cloud:
    kind: str
    make_container: Callable[[], str]
    put_many: Callable[[str, dict], None]
    fields: Callable[[str], dict]  # the API's fields for a container (options and secrets)
    secret_values: list[str]


@pytest.fixture(params=["s3", "gcs", "azure"])
def cloud(request, settings):
    kind = request.param
    if kind == "s3":
        server = request.getfixturevalue("s3_server")
        settings.SSRF_PROTECTION_ALLOWLIST = [server.allowlist]
        return Cloud(kind, server.make_bucket, server.put_many,
                     lambda bucket: {**server.options(bucket), **server.secrets()},
                     [value for value in server.secrets().values() if len(value) > 8])
    if kind == "gcs":
        server = request.getfixturevalue("gcs_server")
        settings.GCS_API_ENDPOINT = server.endpoint
        return Cloud(kind, lambda: server.make_bucket(f"b-{uuid.uuid4().hex[:12]}"), server.put_many,
                     lambda bucket: {**server.options(bucket), **server.secrets()},
                     [json.loads(server.credentials_json)["private_key"].splitlines()[1]])
    server = request.getfixturevalue("azure_server")
    settings.AZURE_BLOB_ENDPOINT = server.endpoint_template
    return Cloud(kind, lambda: server.make_container(f"c-{uuid.uuid4().hex[:12]}"), server.put_many,
                 lambda container: {**server.options(container), **server.secrets()},
                 [value for value in server.secrets().values() if value and len(value) > 8])


@pytest.fixture
def project(owner):
    response = owner("post", "/api/projects/", {"title": "Cloud scans"})
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _sync(world, storage_id: int) -> Storage:
    from storages import services

    def run():
        services.sync_run(storage=Storage.objects.get(pk=storage_id))
        return Storage.objects.get(pk=storage_id)
    return in_org_a(world, run)


def _provider(world, storage_id: int):
    from storages.services import provider_of

    return in_org_a(world, lambda: provider_of(Storage.objects.get(pk=storage_id)))


def test_sync_resolve_and_export(world, owner, project, cloud, caplog, eager_celery,
                                 django_capture_on_commit_callbacks):
    caplog.set_level(logging.DEBUG)
    container = cloud.make_container()
    cloud.put_many(container, {key: b"\x89PNG " + key.encode() for key in LAYOUT})
    fields = cloud.fields(container)
    answers = []

    response = owner("post", f"/api/storages/{cloud.kind}/validate", {"project": project, **fields})
    assert response.status_code == 200, response.content
    response = owner("post", f"/api/storages/{cloud.kind}/", {
        "project": project, "title": "Pages", "prefix": "scans", "regex_filter": r"\.png$",
        "use_blob_urls": True, "recursive_scan": True, "presign_ttl": 5, **fields})
    assert response.status_code == 201, response.content
    answers.append(response.content)
    storage_id = response.json()["id"]

    synced = _sync(world, storage_id)
    assert (synced.status, synced.last_sync_count) == ("completed", 900), synced.traceback
    assert _sync(world, storage_id).last_sync_count == 0  # re-sync adds none
    shallow = owner("post", f"/api/storages/{cloud.kind}/", {"project": project, "prefix": "scans/",
                                                             "regex_filter": r"\.png$", "use_blob_urls": True,
                                                             **fields}).json()
    assert _sync(world, shallow["id"]).last_sync_count == 500  # not recursive: scans/2024/ left out

    # A task's reference resolves to a signed URL that loads the object.
    listed = owner("get", f"/api/tasks/?project={project}&page_size=1").json()["tasks"][0]
    assert listed["data"]["image" if "image" in listed["data"] else next(iter(listed["data"]))].startswith(
        {"s3": "s3://", "gcs": "gs://", "azure": "azure-blob://"}[cloud.kind])
    detail = owner("get", f"/api/tasks/{listed['id']}").json()
    url = next(iter(detail["data"].values()))
    assert url.startswith("http://127.0.0.1:"), url
    loaded = requests.get(url, timeout=10)
    assert loaded.status_code == 200 and loaded.content.startswith(b"\x89PNG scans/")

    # Export: an annotation is written on submit and removed on delete.
    target = owner("post", f"/api/storages/export/{cloud.kind}/", {
        "project": project, "prefix": "annotations", "can_delete_objects": True, **fields})
    assert target.status_code == 201, target.content
    answers.append(target.content)
    with django_capture_on_commit_callbacks(execute=True):
        annotation = owner("post", f"/api/tasks/{listed['id']}/annotations/", {"result": ocr_result()}).json()
    provider = _provider(world, target.json()["id"])
    stored = json.loads(provider.read(f"annotations/{annotation['id']}"))
    assert stored["id"] == annotation["id"] and stored["result"] == annotation["result"]
    with django_capture_on_commit_callbacks(execute=True):
        assert owner("delete", f"/api/annotations/{annotation['id']}/").status_code == 204
    assert list(provider.keys(prefix="annotations", recursive=True)) == []

    # The export storage's sync writes every annotation of the project.
    with django_capture_on_commit_callbacks(execute=True):
        for task in owner("get", f"/api/tasks/?project={project}&page_size=3").json()["tasks"]:
            owner("post", f"/api/tasks/{task['id']}/annotations/", {"result": ocr_result()})
    assert _sync(world, target.json()["id"]).last_sync_count == 3
    assert len(list(provider.keys(prefix="annotations", recursive=True))) == 3

    answers.append(owner("get", f"/api/storages/{cloud.kind}/{storage_id}").content)
    answers.append(owner("get", f"/api/storages/?project={project}").content)
    for secret in cloud.secret_values:
        assert all(secret.encode() not in answer for answer in answers)
        assert secret not in caplog.text


def test_bad_credentials_are_refused_naming_the_field(owner, project, cloud):
    container = cloud.make_container()
    fields = cloud.fields(container)
    response = owner("post", f"/api/storages/{cloud.kind}/", {"project": project, **fields,
                                                              **_missing_container_field(cloud.kind)})
    assert response.status_code == 400, response.content
    assert set(response.json()["validation_errors"]) & {"bucket", "container"}
    assert owner("get", f"/api/storages/?project={project}").json() == []  # nothing saved


def _missing_container_field(kind: str) -> dict:
    return {"container": "no-such-container"} if kind == "azure" else {"bucket": "no-such-bucket-here"}


def test_provider_for_is_the_api_kind(cloud):
    # The registry hands out the right class for each API type.
    assert provider_for(kind=cloud.kind, options={}, secrets={}).kind == cloud.kind


def test_without_presigning_the_proxy_streams_the_object(world, owner, project, cloud, api):
    """presign off: the task's reference becomes the storage proxy, which streams the object (in
    pieces: it is larger than one) to members who see the task, and to nobody else."""
    container = cloud.make_container()
    page = bytes(range(256)) * 3000  # 768 kB: three pieces of the proxy's 256 kB
    cloud.put_many(container, {"big/page.png": page})
    storage = owner("post", f"/api/storages/{cloud.kind}/", {
        "project": project, "prefix": "big", "use_blob_urls": True, "presign": False, **cloud.fields(container)})
    assert storage.status_code == 201, storage.content
    assert _sync(world, storage.json()["id"]).last_sync_count == 1
    task = owner("get", f"/api/tasks/?project={project}").json()["tasks"][0]
    url = next(iter(owner("get", f"/api/tasks/{task['id']}").json()["data"].values()))
    assert url.startswith(f"/o/org-a/tasks/{task['id']}/presign/?fileuri=")
    served = api.call("get", url, token=world.owner_a.legacy_key)
    assert served.status_code == 200 and served.streaming
    assert b"".join(served.streaming_content) == page
    assert api.call("get", url, token=world.annotator_a.legacy_key).status_code == 404
    assert api.call("get", url.replace("/o/org-a/", "/o/org-b/"), token=world.owner_b.legacy_key).status_code == 404
