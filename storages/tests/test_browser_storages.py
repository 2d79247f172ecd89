"""Files of every provider load in the labeling screen (Debian's Chromium through Playwright): the
editor gets the task with its reference resolved to a signed URL on the local server (moto's S3,
fake-gcs-server, Azurite) or to the storage proxy (local files, presigning off), and the image
really loads (its natural size is the page's).

The daphne here knows the emulators (SSRF allow-list, endpoints, the local-files root) and runs
Celery jobs eagerly; the module works in an organization of its own, made through signup."""

import io
import json
import re
import urllib.request
import uuid

import pytest
from django.db import connection

from conftest import PASSWORD, _database_url_of, in_worker, start_daphne

pytestmark = pytest.mark.browser

SUFFIX = uuid.uuid4().hex[:6]
PAGE_SIZE = (320, 200)


def _page_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", PAGE_SIZE, (250, 248, 240))
    ImageDraw.Draw(image).rectangle([20, 20, 300, 44], fill=(40, 40, 50))
    stream = io.BytesIO()
    image.save(stream, "PNG")
    return stream.getvalue()




@pytest.fixture(scope="module")
def files_root(tmp_path_factory):
    return tmp_path_factory.mktemp("browser-local-files")


@pytest.fixture(scope="module")
def server_url(world, django_db_blocker, s3_server, gcs_server, azure_server, files_root):
    with django_db_blocker.unblock():
        url = _database_url_of(connection.settings_dict)
    server, base = start_daphne(url, extra_env={
        "SSRF_PROTECTION_ALLOWLIST": s3_server.allowlist, "CELERY_TASK_ALWAYS_EAGER": "true",
        "LOCAL_FILES_DOCUMENT_ROOT": str(files_root), "GCS_API_ENDPOINT": gcs_server.endpoint,
        "AZURE_BLOB_ENDPOINT": azure_server.endpoint_template})
    yield base
    server.terminate()
    server.wait(timeout=15)


def _signup():
    from accounts import services

    owner, organization = services.signup(email=f"owner-{SUFFIX}@storages.test", password=PASSWORD,
                                          organization_title=f"Storages {SUFFIX}", first_name="Sam")
    return {"slug": organization.slug, "email": owner.email,
            "token": services.legacy_token_issue(user=owner, organization=organization)}


@pytest.fixture(scope="module")
def scene(server_url, django_db_blocker):
    return in_worker(django_db_blocker, _signup)


def api(server_url, scene, method, path, body=None):
    request = urllib.request.Request(
        f"{server_url}/o/{scene['slug']}/api{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {scene['token']}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the test's daphne
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _storage_fields(kind, request, files_root, scene) -> tuple[dict, str]:
    """(the API's fields, what the signed URL starts with) for a container holding two pages."""
    pages = {f"pages/page-{n}.png": _page_png() for n in range(2)}
    if kind == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = server.make_bucket()
        server.put_many(bucket, pages, content_type="image/png")
        return {**server.options(bucket), **server.secrets()}, server.endpoint
    if kind == "gcs":
        server = request.getfixturevalue("gcs_server")
        bucket = server.make_bucket(f"browser-{uuid.uuid4().hex[:10]}")
        server.put_many(bucket, pages, content_type="image/png")
        return {**server.options(bucket), **server.secrets()}, server.endpoint
    if kind == "azure":
        server = request.getfixturevalue("azure_server")
        container = f"browser-{uuid.uuid4().hex[:10]}"
        server.make_container(container)
        server.put_many(container, pages)
        return {**server.options(container), **server.secrets()}, f"http://127.0.0.1:{server.port}/"
    folder = files_root / scene["slug"] / f"set-{uuid.uuid4().hex[:6]}"
    (folder / "pages").mkdir(parents=True)
    for key, data in pages.items():
        (folder / key).write_bytes(data)
    return {"path": folder.name}, f"/o/{scene['slug']}/tasks/"


@pytest.fixture(scope="module")
def page(chromium_browser, server_url, scene):
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{server_url}/accounts/login/")
    page.locator("input[name=login]").fill(scene["email"])
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r".*/o/[^/]+/$"))
    yield page
    context.close()


@pytest.mark.parametrize("kind", ["s3", "gcs", "azure", "localfiles"])
def test_a_storage_file_loads_in_the_labeling_screen(kind, request, server_url, scene, page, files_root):
    fields, url_start = _storage_fields(kind, request, files_root, scene)
    status, project = api(server_url, scene, "POST", "/projects/", {"title": f"{kind} pages"})
    assert status == 201, project
    status, storage = api(server_url, scene, "POST", f"/storages/{kind}/", {
        "project": project["id"], "prefix": "pages", "use_blob_urls": True, "regex_filter": r"\.png$", **fields})
    assert status == 201, storage
    status, synced = api(server_url, scene, "POST", f"/storages/{kind}/{storage['id']}/sync")
    assert status == 200, synced
    status, after = api(server_url, scene, "GET", f"/storages/{kind}/{storage['id']}")
    assert (after["status"], after["last_sync_count"]) == ("completed", 2), after

    page.goto(f"{server_url}/o/{scene['slug']}/projects/{project['id']}/label")
    page.locator("body[data-task-id]").wait_for()
    image = page.get_by_test_id("editor").locator("img").first
    image.wait_for()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    source = image.get_attribute("src")
    assert source.startswith(url_start) or source.startswith(f"{server_url}{url_start}"), source
    size = image.evaluate("(img) => [img.naturalWidth, img.naturalHeight]")
    assert tuple(size) == PAGE_SIZE


def test_the_owner_connects_and_syncs_a_storage_on_its_page(server_url, scene, page, files_root, s3_server):
    bucket = s3_server.make_bucket()
    s3_server.put_many(bucket, {f"scans/page-{n}.png": _page_png() for n in range(3)}, content_type="image/png")
    status, project = api(server_url, scene, "POST", "/projects/", {"title": "Storage page"})
    assert status == 201, project
    page.goto(f"{server_url}/o/{scene['slug']}/projects/{project['id']}/")
    page.get_by_test_id("storages-link").click()
    page.wait_for_url(re.compile(r".*/storages/?$"))
    page.get_by_test_id("import-storages").get_by_text("None yet.").wait_for()

    page.locator("#storage-type").select_option("s3")
    page.locator("#storage-field-title").fill("Scans bucket")
    page.locator("#storage-field-bucket").fill("no-such-bucket")
    page.locator("#storage-field-s3_endpoint").fill(s3_server.endpoint)
    page.locator("#storage-field-aws_access_key_id").fill("AKIAPAGETEST")
    page.locator("#storage-field-aws_secret_access_key").fill("page-secret-never-shown")
    page.locator("#storage-field-prefix").fill("scans")
    page.locator("#storage-field-use_blob_urls").check()
    page.locator("#storage-validate").click()
    page.locator("#storage-form-error li[data-field=bucket]").wait_for()  # the field at fault is named

    page.locator("#storage-field-bucket").fill(bucket)
    page.locator("#storage-validate").click()
    page.locator("#flash").get_by_text("The connection works.").wait_for()
    page.locator("#storage-save").click()
    row = page.get_by_test_id("import-storages").get_by_test_id("storage-row")
    row.get_by_text("Scans bucket").wait_for()
    assert "page-secret-never-shown" not in page.content()
    row.get_by_test_id("storage-sync").click()
    row.get_by_test_id("storage-status").filter(has_text="completed").wait_for()
    assert row.get_by_test_id("storage-count").inner_text() == "3"
    status, tasks = api(server_url, scene, "GET", f"/tasks/?project={project['id']}")
    assert tasks["total"] == 3
