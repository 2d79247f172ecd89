"""Uploaded images and PDFs: import into tasks, the two-step import, the FileUpload API, serving the
stored files to members only, and the same on S3 (a real moto server)."""

import io
import json
import socket
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django_tenants.utils import tenant_context
from PIL import Image

from labeling.label_config import get_template
from labeling.models import FileUpload, Task
from labeling.tests.project_access import add_project_members

pytestmark = pytest.mark.django_db


# --- real files ----------------------------------------------------------------------------------

def png_bytes(size=(300, 200), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes(size=(640, 480), color=(20, 120, 220)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def pdf_bytes(pages: int = 3) -> bytes:
    """A real PDF whose pages differ (so each rendered page can be told apart by its colour)."""
    images = [Image.new("RGB", (400, 560), (40 * n, 255 - 40 * n, 90)) for n in range(pages)]
    buffer = io.BytesIO()
    images[0].save(buffer, "PDF", save_all=True, append_images=images[1:], resolution=72)
    return buffer.getvalue()


# --- helpers -------------------------------------------------------------------------------------

def _project(owner, **fields) -> dict:
    response = owner("post", "/api/projects/", {"title": "Uploads", **fields})
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def project(owner):
    return _project(owner)


@pytest.fixture
def multipage_project(owner):
    return _project(owner, label_config=get_template("ocr-multipage")["config"])


def upload(client, token, project_id, *files, query="return_task_ids=1", org="org-a"):
    return client.post(
        f"/o/{org}/api/projects/{project_id}/import?{query}",
        {"file": [SimpleUploadedFile(name, content) for name, content in files]},
        headers={"Authorization": f"Token {token}"},
    )


def fetch(client, token, url, org="org-a"):
    headers = {"Authorization": f"Token {token}"} if token else {}
    response = client.get(f"/o/{org}{url}", headers=headers)
    # Reading a streamed body to its end closes it (the test client's wrapper does).
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def stored_files(world, project_id) -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / "uploads" / world.org_a.schema_name / str(project_id)
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def rows_of(world, project_id) -> tuple[int, int]:
    with tenant_context(world.org_a):
        return (FileUpload.objects.filter(project_id=project_id).count(),
                Task.objects.filter(project_id=project_id).count())


def tasks_of(world, project_id) -> list[Task]:
    with tenant_context(world.org_a):
        return list(Task.objects.filter(project_id=project_id).order_by("id"))


def upload_row(world, pk) -> FileUpload:
    with tenant_context(world.org_a):
        return FileUpload.objects.get(pk=pk)


# --- import --------------------------------------------------------------------------------------

def test_images_become_tasks_with_urls_uploads_and_thumbnails(client, world, project):
    png, jpeg = png_bytes(), jpeg_bytes()
    response = upload(client, world.owner_a.legacy_key, project["id"], ("scan one.png", png), ("photo.JPG", jpeg))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["task_count"] == 2 and len(body["file_upload_ids"]) == 2
    assert body["found_formats"] == {"png": 1, "jpg": 1} and body["data_columns"] == ["ocr"]

    tasks = tasks_of(world, project["id"])
    for task, upload_id, original, size in zip(tasks, body["file_upload_ids"], (png, jpeg), ((300, 200), (640, 480)),
                                               strict=True):
        row = upload_row(world, upload_id)
        assert task.file_upload_id == upload_id
        url = task.data["ocr"]
        assert url.startswith(f"/data/upload/{world.org_a.schema_name}/{project['id']}/{upload_id}/")
        assert row.file.name.startswith(f"uploads/{world.org_a.schema_name}/")
        assert (row.width, row.height) == size and row.size == len(original) and row.pages == []
        assert row.content_type in {"image/png", "image/jpeg"}
        served, content = fetch(client, world.owner_a.legacy_key, url)
        assert served.status_code == 200 and content == original
        with Image.open(Path(settings.MEDIA_ROOT) / row.thumbnail.name) as thumbnail:
            assert thumbnail.format == "JPEG" and max(thumbnail.size) == 256
    assert tasks[0].data["ocr"].endswith("/scan_one.png")


def test_pdf_in_a_multipage_project_is_one_task_with_every_page(client, world, multipage_project):
    response = upload(client, world.owner_a.legacy_key, multipage_project["id"], ("contract.pdf", pdf_bytes(3)))
    assert response.status_code == 201, response.content
    assert response.json()["task_count"] == 1
    [task] = tasks_of(world, multipage_project["id"])
    pages = task.data["pages"]
    assert isinstance(pages, list) and len(pages) == 3
    row = upload_row(world, response.json()["file_upload_ids"][0])
    assert task.file_upload_id == row.pk and len(row.pages) == 3 and row.content_type == "application/pdf"
    assert (row.width, row.height) == (800, 1120)  # 400 x 560 pt at scale 2
    colours = []
    for url in pages:
        served, content = fetch(client, world.owner_a.legacy_key, url)
        assert served.status_code == 200
        with Image.open(io.BytesIO(content)) as page:
            assert page.format == "PNG" and page.size == (800, 1120)
            colours.append(page.convert("RGB").getpixel((400, 560)))
    assert len(set(colours)) == 3, colours  # three different pages, in order
    assert colours[0][0] < colours[1][0] < colours[2][0]
    thumbnail_url = "/data/upload/" + row.thumbnail.name.removeprefix("uploads/")
    thumbnail, _ = fetch(client, world.owner_a.legacy_key, thumbnail_url)
    assert thumbnail.status_code == 200


def test_pdf_in_a_single_image_project_shows_the_first_page_and_keeps_the_list(client, world, project):
    response = upload(client, world.owner_a.legacy_key, project["id"], ("letter.pdf", pdf_bytes(2)))
    assert response.status_code == 201, response.content
    [task] = tasks_of(world, project["id"])
    assert len(task.data["pages"]) == 2 and task.data["ocr"] == task.data["pages"][0]


def _assert_nothing_left(world, project_id):
    assert rows_of(world, project_id) == (0, 0)
    assert stored_files(world, project_id) == []


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("broken.png", png_bytes()[:40] + b"\x00" * 200, "not a valid image"),
        ("cut.jpg", jpeg_bytes()[:300], "not a valid image"),
        ("fake.png", b"just some text, not pixels", "not a valid image"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage", "not a readable PDF"),
        ("drawing.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "unsupported file type"),
        ("icon.ico", b"\x00\x00\x01\x00", "unsupported file type"),
    ],
)
def test_bad_files_are_400_naming_the_file_and_leave_nothing(client, world, project, name, content, fragment):
    response = upload(client, world.owner_a.legacy_key, project["id"], ("good.png", png_bytes()), (name, content))
    assert response.status_code == 400, response.content
    errors = response.json()["validation_errors"]["file"]
    assert any(name in error and fragment in error for error in errors), errors
    _assert_nothing_left(world, project["id"])


def test_an_oversized_file_is_400_naming_it(client, world, project):
    with override_settings(UPLOAD_MAX_FILE_BYTES=1000):
        response = upload(client, world.owner_a.legacy_key, project["id"], ("big.png", png_bytes((800, 800))))
    assert response.status_code == 400, response.content
    assert "big.png" in json.dumps(response.json()) and "limit" in json.dumps(response.json())
    _assert_nothing_left(world, project["id"])


def test_a_pdf_over_the_page_cap_is_400(client, world, multipage_project):
    with override_settings(UPLOAD_PDF_MAX_PAGES=2):
        response = upload(client, world.owner_a.legacy_key, multipage_project["id"], ("long.pdf", pdf_bytes(3)))
    assert response.status_code == 400, response.content
    assert "long.pdf" in json.dumps(response.json()) and "3 pages" in json.dumps(response.json())
    _assert_nothing_left(world, multipage_project["id"])


def test_tasks_failing_after_files_were_stored_leave_no_files(client, world, owner):
    """The files are written before the tasks are checked: the failure must take them away again."""
    config = '<View><Image name="image" value="$ocr"/><Text name="caption" value="$caption"/></View>'
    target = _project(owner, label_config=config)
    response = upload(client, world.owner_a.legacy_key, target["id"], ("a.png", png_bytes()), ("b.pdf", pdf_bytes(2)))
    assert response.status_code == 400, response.content
    assert "caption" in json.dumps(response.json())
    _assert_nothing_left(world, target["id"])


def test_text_files_still_import_and_are_kept_as_uploads(client, world, project):
    response = upload(client, world.owner_a.legacy_key, project["id"], ("tasks.csv", b"ocr,source\na.png,scan\n"),
                      ("more.json", json.dumps([{"ocr": "b.png"}, {"ocr": "c.png"}]).encode()), ("p.png", png_bytes()))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["task_count"] == 4 and len(body["file_upload_ids"]) == 3
    owners = [task.file_upload_id for task in tasks_of(world, project["id"])]
    csv_id, json_id, png_id = body["file_upload_ids"]
    assert owners == [csv_id, json_id, json_id, png_id]


def test_a_large_file_import_becomes_a_job_that_knows_its_uploads(client, world, owner, project, settings):
    from labeling.tasks import run_import_job

    settings.IMPORT_SYNC_MAX_TASKS = 2
    rows = "ocr\n" + "".join(f"{n}.png\n" for n in range(3))
    accepted = upload(client, world.owner_a.legacy_key, project["id"], ("rows.csv", rows.encode()))
    assert accepted.status_code == 201 and set(accepted.json()) == {"import"}, accepted.content
    run_import_job.run(world.org_a.pk, accepted.json()["import"])
    job = owner("get", f"/api/projects/{project['id']}/imports/{accepted.json()['import']}").json()
    assert job["status"] == "completed" and job["task_count"] == 3
    [upload_id] = job["file_upload_ids"]
    assert upload_row(world, upload_id).original_name == "rows.csv"


# --- two-step import -----------------------------------------------------------------------------

def test_commit_to_project_false_then_reimport(client, world, owner, project):
    response = upload(client, world.owner_a.legacy_key, project["id"], ("page.png", png_bytes()),
                      ("rows.csv", b"ocr\nx.png\ny.png\n"), query="commit_to_project=false")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["task_count"] == 0 and len(body["file_upload_ids"]) == 2
    assert rows_of(world, project["id"]) == (2, 0)

    reimported = owner("post", f"/api/projects/{project['id']}/reimport?return_task_ids=1",
                       {"file_upload_ids": body["file_upload_ids"]})
    assert reimported.status_code == 201, reimported.content
    assert reimported.json()["task_count"] == 3 and len(reimported.json()["task_ids"]) == 3
    tasks = tasks_of(world, project["id"])
    assert [t.file_upload_id for t in tasks] == [body["file_upload_ids"][0]] + [body["file_upload_ids"][1]] * 2
    assert tasks[0].data["ocr"].startswith("/data/upload/") and tasks[1].data == {"ocr": "x.png"}

    # Reimporting again replaces those tasks rather than doubling them (as Label Studio does).
    again = owner("post", f"/api/projects/{project['id']}/reimport", {"file_upload_ids": body["file_upload_ids"]})
    assert again.status_code == 201 and rows_of(world, project["id"]) == (2, 3)


@pytest.mark.parametrize("ids", [[], "1", [999999], [True]])
def test_reimport_needs_uploads_of_the_project(owner, world, project, ids):
    response = owner("post", f"/api/projects/{project['id']}/reimport", {"file_upload_ids": ids})
    assert response.status_code == 400, response.content
    assert "file_upload_ids" in response.json()["validation_errors"]


def test_reimport_refuses_an_upload_of_another_project(client, world, owner, project):
    other = _project(owner, title="Other")
    body = upload(client, world.owner_a.legacy_key, other["id"], ("p.png", png_bytes()),
                  query="commit_to_project=false").json()
    response = owner("post", f"/api/projects/{project['id']}/reimport", {"file_upload_ids": body["file_upload_ids"]})
    assert response.status_code == 400
    assert rows_of(world, project["id"]) == (0, 0)


# --- the FileUpload API --------------------------------------------------------------------------

def test_file_uploads_list_detail_and_delete(client, world, owner, project, django_capture_on_commit_callbacks):
    body = upload(client, world.owner_a.legacy_key, project["id"], ("a.png", png_bytes()),
                  ("b.pdf", pdf_bytes(2))).json()
    first, second = body["file_upload_ids"]
    listed = owner("get", f"/api/projects/{project['id']}/file-uploads").json()
    assert [item["id"] for item in listed] == [first, second]
    pdf = listed[1]
    assert pdf["size"] > 0 and pdf["file"].endswith("/b.pdf") and pdf["page_count"] == 2 and len(pdf["pages"]) == 2
    assert pdf["thumbnail"].endswith("/thumbnail.jpg") and pdf["original_name"] == "b.pdf"
    only = owner("get", f"/api/projects/{project['id']}/file-uploads?ids=[{second}]").json()
    assert [item["id"] for item in only] == [second]
    assert owner("get", f"/api/projects/{project['id']}/file-uploads?ids=x").status_code == 400
    assert owner("get", f"/api/import/file-upload/{first}").json()["file"] == listed[0]["file"]

    files_before = stored_files(world, project["id"])
    assert len(files_before) == 2 + 2 + 2  # originals, two thumbnails, two PDF pages
    with django_capture_on_commit_callbacks(execute=True):
        deleted = owner("delete", f"/api/projects/{project['id']}/file-uploads", {"file_upload_ids": [second]})
    assert deleted.status_code == 200 and deleted.json() == {"deleted": 1}
    assert len(stored_files(world, project["id"])) == 2
    served, _ = fetch(client, world.owner_a.legacy_key, pdf["pages"][0])
    assert served.status_code == 404
    # Tasks outlive their upload (Task.file_upload is SET_NULL).
    assert [t.file_upload_id for t in tasks_of(world, project["id"])] == [first, None]

    with django_capture_on_commit_callbacks(execute=True):
        assert owner("delete", f"/api/import/file-upload/{first}").status_code == 204
    assert owner("get", f"/api/import/file-upload/{first}").status_code == 404
    assert stored_files(world, project["id"]) == []


def test_delete_all_uploads_of_a_project(client, world, owner, project, django_capture_on_commit_callbacks):
    upload(client, world.owner_a.legacy_key, project["id"], ("a.png", png_bytes()), ("b.png", png_bytes()))
    with django_capture_on_commit_callbacks(execute=True):
        response = owner("delete", f"/api/projects/{project['id']}/file-uploads")
    assert response.json() == {"deleted": 2}
    assert rows_of(world, project["id"]) == (0, 2) and stored_files(world, project["id"]) == []


def test_patch_replaces_the_file_and_its_task_follows(client, world, owner, project,
                                                     django_capture_on_commit_callbacks):
    body = upload(client, world.owner_a.legacy_key, project["id"], ("a.png", png_bytes())).json()
    upload_id = body["file_upload_ids"][0]
    old_url = tasks_of(world, project["id"])[0].data["ocr"]
    replacement = jpeg_bytes((100, 50))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.patch(
            f"/o/org-a/api/import/file-upload/{upload_id}",
            data=_multipart({"file": ("better.jpg", replacement)}), content_type=f"multipart/form-data; boundary={B}",
            headers={"Authorization": f"Token {world.owner_a.legacy_key}"},
        )
    assert response.status_code == 200, response.content
    assert response.json()["original_name"] == "better.jpg" and response.json()["width"] == 100
    new_url = tasks_of(world, project["id"])[0].data["ocr"]
    assert new_url == response.json()["file"] != old_url
    assert fetch(client, world.owner_a.legacy_key, new_url)[1] == replacement
    assert fetch(client, world.owner_a.legacy_key, old_url)[0].status_code == 404
    assert len(stored_files(world, project["id"])) == 2  # the new file and its thumbnail only
    refused = client.patch(
        f"/o/org-a/api/import/file-upload/{upload_id}",
        data=_multipart({"file": ("rows.csv", b"ocr\nx\n")}), content_type=f"multipart/form-data; boundary={B}",
        headers={"Authorization": f"Token {world.owner_a.legacy_key}"},
    )
    assert refused.status_code == 400 and "rows.csv" in json.dumps(refused.json())


B = "uploadboundary"


def _multipart(files: dict) -> bytes:
    """A multipart body (the test client encodes one only for POST)."""
    parts = []
    for field, (name, content) in files.items():
        parts.append(f'--{B}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
    return b"".join(parts) + f"--{B}--\r\n".encode()


def test_annotators_may_list_but_not_change_uploads(client, world, api, project):
    add_project_members(world, project["id"], world.annotator_a)
    body = upload(client, world.owner_a.legacy_key, project["id"], ("a.png", png_bytes())).json()
    key = world.annotator_a.legacy_key
    assert api.call("get", f"/o/org-a/api/projects/{project['id']}/file-uploads", token=key).status_code == 200
    assert api.call("delete", f"/o/org-a/api/projects/{project['id']}/file-uploads", token=key).status_code == 403
    assert api.call("delete", f"/o/org-a/api/import/file-upload/{body['file_upload_ids'][0]}",
                    token=key).status_code == 403
    refused = upload(client, key, project["id"], ("b.png", png_bytes()))
    assert refused.status_code == 403
    assert rows_of(world, project["id"]) == (1, 1)


# --- serving -------------------------------------------------------------------------------------

def test_serving_is_for_members_of_the_owning_organization_only(client, world, api, project):
    png = png_bytes()
    assert upload(client, world.owner_a.legacy_key, project["id"], ("a.png", png)).status_code == 201
    url = tasks_of(world, project["id"])[0].data["ocr"]
    outsider, body = fetch(client, world.annotator_a.legacy_key, url)
    assert outsider.status_code == 404 and body != png, "an annotator outside the project never gets its files"
    add_project_members(world, project["id"], world.annotator_a)
    assert fetch(client, world.annotator_a.legacy_key, url)[1] == png
    # B's token on A's path: refused by routing, never the file.
    foreign, body = fetch(client, world.owner_b.legacy_key, url)
    assert foreign.status_code in (403, 404) and body != png
    # Nobody signed in: sent to log in.
    anonymous, body = fetch(client, None, url)
    assert anonymous.status_code == 302 and body != png

    # One of B's own files, asked for inside A with A's token: not A's, so 404.
    b_created = api.call("post", "/o/org-b/api/projects/", token=world.owner_b.legacy_key, json={"title": "B project"})
    assert b_created.status_code == 201, b_created.content
    b_project = b_created.json()
    b_png = png_bytes(color=(1, 2, 3))
    upload(client, world.owner_b.legacy_key, b_project["id"], ("b.png", b_png), org="org-b")
    with tenant_context(world.org_b):
        b_url = Task.objects.get(project_id=b_project["id"]).data["ocr"]
    assert fetch(client, world.owner_b.legacy_key, b_url, org="org-b")[1] == b_png
    # Even when A has an upload with the same id as B's (ids are per schema), the name is not A's.
    b_upload_id = int(b_url.split("/")[5])
    with tenant_context(world.org_a):
        if not FileUpload.objects.filter(pk=b_upload_id).exists():
            FileUpload.objects.create(pk=b_upload_id, project_id=project["id"], file=f"uploads/x/{b_upload_id}.png")
        assert FileUpload.objects.filter(pk=b_upload_id).exists()
    cross, body = fetch(client, world.owner_a.legacy_key, b_url)
    assert cross.status_code == 404 and body != b_png

    # A name in A's folder that is no upload's file, and a path walking out of it.
    for bogus in (url.rsplit("/", 1)[0] + "/other.png", url.replace("/data/upload/", "/data/upload/../../"),
                  "/data/upload/settings.py"):
        response, body = fetch(client, world.owner_a.legacy_key, bogus)
        assert response.status_code == 404 and body != png, bogus


# --- S3 / MinIO ----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def s3_storage():
    """A real S3 endpoint (moto's server on a free loopback port) as the default media storage."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {"aws_access_key_id": "minio-test", "aws_secret_access_key": "minio-test-secret",
                   "region_name": "us-east-1"}
    client = boto3.client("s3", endpoint_url=endpoint, **credentials)
    bucket = f"media-{uuid.uuid4().hex[:12]}"  # moto keeps buckets for the whole process
    client.create_bucket(Bucket=bucket)
    storages = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
            "endpoint_url": endpoint, "bucket_name": bucket, "access_key": credentials["aws_access_key_id"],
            "secret_key": credentials["aws_secret_access_key"], "region_name": "us-east-1",
            "signature_version": "s3v4", "addressing_style": "path", "querystring_expire": 60,
        }},
    }
    try:
        with override_settings(STORAGES=storages):
            yield client, bucket
    finally:
        server.stop()


def test_s3_storage_stores_and_serves_through_presigned_redirects(client, world, project, s3_storage):
    from django.core.files.storage import default_storage

    png = png_bytes()
    response = upload(client, world.owner_a.legacy_key, project["id"], ("a.png", png), ("doc.pdf", pdf_bytes(2)))
    assert response.status_code == 201, response.content
    assert type(default_storage._wrapped).__name__ == "S3Storage"
    s3, bucket = s3_storage
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert len(keys) == 2 + 2 + 2 and all(k.startswith(f"uploads/{world.org_a.schema_name}/") for k in keys)
    assert stored_files(world, project["id"]) == []  # nothing went to the local media folder

    image_task, pdf_task = tasks_of(world, project["id"])
    as_a = {"Authorization": f"Token {world.owner_a.legacy_key}"}
    served = client.get(f"/o/org-a{image_task.data['ocr']}", headers=as_a)
    assert served.status_code == 302
    location = served["Location"]
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=60" in location
    with urllib.request.urlopen(location, timeout=10) as remote:  # noqa: S310 - the loopback moto server
        assert remote.read() == png
    page_location = client.get(f"/o/org-a{pdf_task.data['pages'][1]}", headers=as_a)["Location"]
    with urllib.request.urlopen(page_location, timeout=10) as remote:  # noqa: S310
        assert Image.open(io.BytesIO(remote.read())).format == "PNG"
    # B's token is refused before any URL is signed.
    as_b = {"Authorization": f"Token {world.owner_b.legacy_key}"}
    foreign = client.get(f"/o/org-a{image_task.data['ocr']}", headers=as_b)
    assert foreign.status_code in (403, 404) and "Location" not in foreign


def test_s3_failed_import_leaves_no_objects(client, world, owner, s3_storage):
    config = '<View><Image name="image" value="$ocr"/><Text name="caption" value="$caption"/></View>'
    target = _project(owner, label_config=config)
    response = upload(client, world.owner_a.legacy_key, target["id"], ("a.png", png_bytes()))
    assert response.status_code == 400
    s3, bucket = s3_storage
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
