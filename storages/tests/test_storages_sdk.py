"""The official SDK's import_storage and export_storage clients against daphne, with the real
local servers behind (moto's S3, fake-gcs-server, Azurite, a local folder). The daphne here runs
Celery jobs eagerly (in the request that queued them), so a sync is done when its call returns."""

import uuid

import pytest
from django.db import connection
from django_tenants.utils import tenant_context
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from conftest import _database_url_of, ocr_result, start_daphne

PAGES = {f"pages/p-{n:02}.png": b"\x89PNG %d" % n for n in range(20)}


@pytest.fixture(scope="module")
def storage_server(world, django_db_blocker, s3_server, gcs_server, azure_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("local-files")
    (root / "org-a" / "pages").mkdir(parents=True)
    for key, data in PAGES.items():
        (root / "org-a" / key).write_bytes(data)
    with django_db_blocker.unblock():
        url = _database_url_of(connection.settings_dict)
    server, base = start_daphne(url, extra_env={
        "SSRF_PROTECTION_ALLOWLIST": s3_server.allowlist, "CELERY_TASK_ALWAYS_EAGER": "true",
        "LOCAL_FILES_DOCUMENT_ROOT": str(root), "GCS_API_ENDPOINT": gcs_server.endpoint,
        "AZURE_BLOB_ENDPOINT": azure_server.endpoint_template})
    yield base
    server.terminate()
    server.wait(timeout=15)


@pytest.fixture
def sdk_project(world, django_db_blocker):
    """A committed project of org A, deleted afterwards with what its storages brought."""
    from labeling import services

    with django_db_blocker.unblock(), tenant_context(world.org_a):
        project = services.project_create(user=world.owner_a.user, fields={"title": f"SDK {uuid.uuid4().hex[:6]}"})
    yield project
    with django_db_blocker.unblock(), tenant_context(world.org_a):
        services.project_delete(project=project)


def _client(base, world):
    return LabelStudio(base_url=f"{base}/o/org-a/", api_key=world.owner_a.legacy_key)


def test_s3_import_and_export_through_the_sdk(world, storage_server, sdk_project, s3_server):
    client = _client(storage_server, world)
    bucket = s3_server.make_bucket()
    s3_server.put_many(bucket, PAGES, content_type="image/png")
    keys = {"aws_access_key_id": "AKIAEXAMPLEKEY", "aws_secret_access_key": "sdk-secret-not-echoed",
            "s3endpoint": s3_server.endpoint, "region_name": "us-east-1"}

    assert {t.name for t in client.import_storage.list_types()} >= {"s3", "gcs", "azure", "redis", "localfiles"}
    client.import_storage.s3.validate(project=sdk_project.pk, bucket=bucket, **keys)
    with pytest.raises(ApiError) as refused:
        client.import_storage.s3.validate(project=sdk_project.pk, bucket="no-such-bucket", **keys)
    assert refused.value.status_code == 400 and "bucket" in str(refused.value.body)

    storage = client.import_storage.s3.create(project=sdk_project.pk, bucket=bucket, prefix="pages",
                                              regex_filter=r"\.png$", use_blob_urls=True, title="Scans", **keys)
    assert (storage.type, storage.bucket, storage.s3endpoint) == ("s3", bucket, s3_server.endpoint)
    assert storage.aws_secret_access_key is None  # write-only
    client.import_storage.s3.sync(id=storage.id)
    synced = client.import_storage.s3.get(id=storage.id)
    assert (synced.status, synced.last_sync_count) == ("completed", 20)
    client.import_storage.s3.sync(id=storage.id)
    assert client.import_storage.s3.get(id=storage.id).last_sync_count == 0
    assert [s.id for s in client.import_storage.s3.list(project=sdk_project.pk)] == [storage.id]
    assert client.import_storage.s3.update(id=storage.id, title="Renamed").title == "Renamed"
    tasks = list(client.tasks.list(project=sdk_project.pk))
    assert len(tasks) == 20 and all(t.data["ocr"].startswith(f"s3://{bucket}/pages/") for t in tasks)

    target = client.export_storage.s3.create(project=sdk_project.pk, bucket=bucket, prefix="out",
                                             can_delete_objects=True, **keys)
    client.annotations.create(id=tasks[0].id, result=ocr_result())
    client.export_storage.s3.sync(id=target.id)
    assert client.export_storage.s3.get(id=target.id).last_sync_count == 1
    written = s3_server.client.list_objects_v2(Bucket=bucket, Prefix="out/")["Contents"]
    assert len(written) == 1
    assert [s.id for s in client.export_storage.s3.list(project=sdk_project.pk)] == [target.id]
    client.export_storage.s3.delete(id=target.id)
    client.import_storage.s3.delete(id=storage.id)
    assert client.import_storage.s3.list(project=sdk_project.pk) == []
    assert len(list(client.tasks.list(project=sdk_project.pk))) == 20  # the tasks stay


def test_gcs_azure_and_local_files_through_the_sdk(world, storage_server, sdk_project, gcs_server, azure_server):
    client = _client(storage_server, world)
    bucket = gcs_server.make_bucket(f"sdk-{uuid.uuid4().hex[:10]}")
    gcs_server.put_many(bucket, PAGES, content_type="image/png")
    gcs = client.import_storage.gcs.create(project=sdk_project.pk, prefix="pages",
                                           use_blob_urls=True, **gcs_server.options(bucket) | gcs_server.secrets())
    client.import_storage.gcs.sync(id=gcs.id)
    assert client.import_storage.gcs.get(id=gcs.id).last_sync_count == 20

    container = f"sdk-{uuid.uuid4().hex[:10]}"
    azure_server.make_container(container)
    azure_server.put_many(container, PAGES)
    azure = client.import_storage.azure.create(project=sdk_project.pk, prefix="pages", use_blob_urls=True,
                                               **azure_server.options(container), **azure_server.secrets())
    assert azure.account_key is None
    client.import_storage.azure.sync(id=azure.id)
    assert client.import_storage.azure.get(id=azure.id).last_sync_count == 20

    local = client.import_storage.local.create(project=sdk_project.pk, path="pages", use_blob_urls=True)
    client.import_storage.local.sync(id=local.id)
    assert client.import_storage.local.get(id=local.id).last_sync_count == 20
    assert len(list(client.tasks.list(project=sdk_project.pk))) == 60
