"""The labeling screen and the project page, driven in a real browser (Debian's Chromium via
Playwright) against the live server, with its websockets.

Two annotators, Anna and Ben, each in a browser context of their own, in projects of overlap 1
whose tasks each show an image (a PNG uploaded through the import service, served at the
organization's /data/upload/ URL). Anna labels; Ben watches the project page and asks the label
stream.

The live server commits, so the module works in its own organization (made through
accounts.services.signup), never in the shared world, and every test in a project of its own (the
suite runs tests of one module on several workers). Database work runs in a worker thread:
Playwright's sync API keeps an event loop running in the test's thread, where Django refuses ORM
calls.
"""

import io
import json
import re
import urllib.request
import uuid
from dataclasses import dataclass, field

import pytest

from conftest import PASSWORD, in_worker, ocr_result

pytestmark = pytest.mark.browser

SUFFIX = uuid.uuid4().hex[:6]
TRANSCRIPTION = "Dear Sir, 1789"


@dataclass
class Scene:
    slug: str
    organization_id: int
    emails: dict = field(default_factory=dict)
    user_ids: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)


@dataclass
class Project:
    id: int
    title: str
    task_ids: list




def _page_image(number: int) -> bytes:
    """A small scanned-page stand-in (640 x 400): a light page with dark lines of "text"."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 400), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    for line in range(5):
        top = 40 + line * 60
        draw.rectangle([40, top, 600 - 40 * ((line + number) % 3), top + 24], fill=(40, 40, 50))
    stream = io.BytesIO()
    image.save(stream, "PNG")
    return stream.getvalue()


def _build_scene() -> Scene:
    from accounts import services

    owner, organization = services.signup(
        email=f"owner-{SUFFIX}@labeling.test", password=PASSWORD, organization_title=f"Labeling {SUFFIX}",
        first_name="Olive", last_name="Owner",
    )
    people = {"owner": owner}
    for nickname, first in (("anna", "Anna"), ("ben", "Ben")):
        people[nickname] = services.user_create(email=f"{nickname}-{SUFFIX}@labeling.test", password=PASSWORD,
                                                first_name=first, last_name="Annotator")
        services.membership_set(user=people[nickname], organization=organization, role="AN")
    scene = Scene(slug=organization.slug, organization_id=organization.pk)
    for nickname, user in people.items():
        scene.emails[nickname], scene.user_ids[nickname] = user.email, user.pk
        scene.tokens[nickname] = services.legacy_token_issue(user=user, organization=organization)
    return scene


def _build_project(scene: Scene, title: str, tasks: int, transcribed: int) -> Project:
    """An OCR project (the default config) of overlap 1 with Anna and Ben as members, `tasks`
    uploaded images, and the owner's annotation on the first `transcribed` of them."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django_tenants.utils import tenant_context

    from accounts.models import User
    from labeling import services as labeling
    from labeling import uploads
    from labeling.models import ProjectMember, Task
    from tenants.models import Organization

    owner = User.objects.get(pk=scene.user_ids["owner"])
    with tenant_context(Organization.objects.get(pk=scene.organization_id)):
        project = labeling.project_create(user=owner, fields={"title": title, "maximum_annotations": 1})
        uploads.file_uploads_import(project=project, user=owner, files=[
            SimpleUploadedFile(f"letter-{n}.png", _page_image(n), content_type="image/png") for n in range(tasks)])
        ProjectMember.objects.bulk_create([ProjectMember(project=project, user_id=scene.user_ids[nickname])
                                           for nickname in ("anna", "ben")])
        task_ids = list(Task.objects.filter(project=project).order_by("id").values_list("id", flat=True))
        for task in Task.objects.filter(pk__in=task_ids[:transcribed]).select_related("project"):
            labeling.annotation_create(task=task, user=owner, result=ocr_result(text=TRANSCRIPTION))
    return Project(id=project.pk, title=title, task_ids=task_ids)


@pytest.fixture(scope="module")
def scene(live_server_url, django_db_blocker) -> Scene:
    """Built before the browser starts (fixture order), in this module's own organization."""
    return in_worker(django_db_blocker, _build_scene)


@pytest.fixture(scope="module")
def browser(scene, chromium_browser):
    return chromium_browser


@pytest.fixture
def new_project(scene, django_db_blocker):
    """`new_project("Title", tasks=3, transcribed=0)` -> a Project of this test's own."""
    def build(title: str, *, tasks: int = 3, transcribed: int = 0) -> Project:
        return in_worker(django_db_blocker, _build_project, scene, f"{title} {uuid.uuid4().hex[:4]}", tasks,
                         transcribed)
    return build


def login(browser, base: str, email: str):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/accounts/login/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r".*/o/[^/]+/$"))
    return page


@pytest.fixture
def as_person(browser, live_server_url, scene):
    """`as_person("anna")` -> a logged-in page (its context is closed after the test). An uncaught
    error in any page of the context fails the test."""
    pages, errors = [], []

    def open_page(nickname: str):
        page = login(browser, live_server_url, scene.emails[nickname])
        page.context.on("weberror", lambda error: errors.append(f"{nickname}: {error.error}"))
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.context.close()
    assert not errors, errors


def api_call(live_server_url: str, scene: Scene, nickname: str, method: str, path: str, body=None):
    """The organization's API with a person's legacy token (as a script would call it)."""
    request = urllib.request.Request(
        f"{live_server_url}/o/{scene.slug}/api{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {scene.tokens[nickname]}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the live server
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def project_url(live_server_url: str, scene: Scene, project: Project, path: str = "") -> str:
    return f"{live_server_url}/o/{scene.slug}/projects/{project.id}/{path}"


def wait_live(page) -> None:
    page.locator("[data-testid=live-status][data-state=open]").wait_for()


def task_row(page, task_id: int):
    return page.locator(f"tr[data-testid=task-row][data-task-id='{task_id}']")


def open_task_on_screen(page, live_server_url: str, scene: Scene, project: Project, task_id: int | None = None) -> int:
    """The labeling screen, on `task_id` (task.open over the socket) or on the label stream's next
    task; waits until the editor shows the task's image. Returns the task id on screen."""
    page.goto(project_url(live_server_url, scene, project, f"label?task={task_id}" if task_id else "label"))
    page.locator("body[data-task-id]").wait_for()
    page.get_by_test_id("editor").locator("canvas").first.wait_for()
    return int(page.locator("body").get_attribute("data-task-id"))


def draw_region(page, *, left: float, top: float, right: float, bottom: float, label: str = "Text") -> None:
    """Pick a label, then drag a rectangle on the image (corners in image pixels; shown 1:1)."""
    editor = page.get_by_test_id("editor")
    editor.locator(".lsf-label").filter(has_text=label).first.click()
    image = editor.locator("img").first.bounding_box()
    page.mouse.move(image["x"] + left, image["y"] + top)
    page.mouse.down()
    page.mouse.move(image["x"] + (left + right) / 2, image["y"] + (top + bottom) / 2, steps=4)
    page.mouse.move(image["x"] + right, image["y"] + bottom, steps=4)
    page.mouse.up()
    editor.locator("li[aria-label=region]").first.wait_for()


def transcribe_first_region(page, text: str) -> None:
    """The editor takes a transcription only for the selected region: select it, then type."""
    region = page.get_by_test_id("editor").locator("li[aria-label=region]").first
    region.locator(".lsf-region-item__title").click()
    page.get_by_test_id("editor").get_by_text("No Region selected").wait_for(state="hidden")
    area = region.locator("textarea")
    area.fill(text)
    area.press("Enter")
    region.get_by_text(text).wait_for()


def editor_result(page) -> list:
    """What the editor would submit now (its own serialization)."""
    return page.evaluate("() => window.Htx.annotationStore.selected.serializeAnnotation()")


def test_two_annotators_lock_label_stream_live_counts_and_round_trip(as_person, live_server_url, scene,
                                                                     new_project):
    project = new_project("Parish letters")
    anna, ben = as_person("anna"), as_person("ben")
    target = project.task_ids[0]

    # Ben watches the project page (from the organization's front page), live.
    ben.get_by_test_id("project-link").filter(has_text=project.title).click()
    ben.wait_for_url(project_url(live_server_url, scene, project))
    task_row(ben, target).wait_for()
    wait_live(ben)
    assert task_row(ben, target).get_by_test_id("task-annotations").inner_text() == "0"
    assert task_row(ben, target).get_by_test_id("lock-badge").count() == 0

    # Anna opens the task on the labeling screen (task.open takes her lock); Ben sees it within 1 s.
    assert open_task_on_screen(anna, live_server_url, scene, project, target) == target
    assert anna.locator("body").get_attribute("data-mode") == "edit"
    badge = task_row(ben, target).locator(f"[data-testid=lock-badge][data-user-id='{scene.user_ids['anna']}']")
    badge.wait_for(timeout=1000)
    assert "Anna" in badge.inner_text()
    ben.get_by_test_id("activity").get_by_text(f"locked task {target}").wait_for()

    # The label stream never gives Anna's task to Ben, over HTTP with his token...
    status, given = api_call(live_server_url, scene, "ben", "GET", f"/projects/{project.id}/next")
    assert status == 200 and given["id"] != target
    # ... nor on his labeling screen, even when he skips through everything else it has.
    ben_screen = ben.context.new_page()
    assert open_task_on_screen(ben_screen, live_server_url, scene, project) == given["id"], "the task reserved for him"
    assert ben_screen.locator("body").get_attribute("data-mode") == "edit"
    seen = [given["id"]]
    while True:
        ben_screen.get_by_test_id("editor").locator("button[aria-label=skip-task]").click()
        ben_screen.get_by_text(f"Task {seen[-1]} skipped.").wait_for()
        ben_screen.wait_for_function(
            f"() => document.body.dataset.taskId !== '{seen[-1]}'"
            " || document.querySelector('[data-testid=no-more-tasks]')")
        if ben_screen.get_by_test_id("no-more-tasks").count():
            break
        ben_screen.get_by_test_id("editor").locator("canvas").first.wait_for()
        seen.append(int(ben_screen.locator("body").get_attribute("data-task-id")))
    assert target not in seen and sorted(seen) == project.task_ids[1:]
    status, _ = api_call(live_server_url, scene, "ben", "GET", f"/projects/{project.id}/next")
    assert status == 404
    # Ben's own table counted his skips live.
    for skipped in seen:
        task_row(ben, skipped).get_by_test_id("task-cancelled").filter(has_text="1").wait_for()
    # Opening Anna's task by id gives Ben a read-only view that names her.
    assert open_task_on_screen(ben_screen, live_server_url, scene, project, target) == target
    assert ben_screen.locator("body").get_attribute("data-mode") == "read-only"
    assert "Anna" in ben_screen.get_by_test_id("task-notice").inner_text()
    assert ben_screen.locator("button[aria-label=submit]").count() == 0
    ben_screen.screenshot(path="/tmp/scriptorium-label-read-only.png")
    ben_screen.close()

    # Anna draws a rectangle, labels it, selects it, transcribes it and submits.
    draw_region(anna, left=60, top=50, right=300, bottom=90)
    transcribe_first_region(anna, TRANSCRIPTION)
    submitted_result = editor_result(anna)
    anna.screenshot(path="/tmp/scriptorium-label-screen.png")
    anna.get_by_test_id("editor").locator("button[aria-label=submit]").click()
    anna.get_by_text(f"Task {target} saved.").wait_for()

    # Ben's table counts it without a reload, and the lock is gone.
    task_row(ben, target).get_by_test_id("task-annotations").filter(has_text="1").wait_for(timeout=5000)
    task_row(ben, target).get_by_test_id("lock-badge").first.wait_for(state="detached")
    ben.get_by_test_id("activity").get_by_text(f"submitted an annotation on task {target}").first.wait_for()
    ben.locator("[data-count=total_annotations_number]").filter(has_text="1").wait_for()
    ben.screenshot(path="/tmp/scriptorium-project-page.png", full_page=True)

    # Anna's screen moved on: Ben's skipped tasks are requeued for others.
    anna.wait_for_function(f"() => document.body.dataset.taskId && document.body.dataset.taskId !== '{target}'")

    # The annotation round-trips through the API intact: the box, its label and its transcription.
    status, annotations = api_call(live_server_url, scene, "owner", "GET", f"/tasks/{target}/annotations")
    assert status == 200 and len(annotations) == 1
    status, annotation = api_call(live_server_url, scene, "owner", "GET", f"/annotations/{annotations[0]['id']}")
    assert status == 200
    assert annotation["completed_by"] == scene.user_ids["anna"] and annotation["was_cancelled"] is False
    assert annotation["result"] == submitted_result
    by_type = {item["type"]: item for item in annotation["result"]}
    assert set(by_type) == {"rectangle", "labels", "textarea"}
    assert len({item["id"] for item in annotation["result"]}) == 1, "one region: box, label, text"
    box = by_type["rectangle"]["value"]
    assert by_type["rectangle"]["from_name"] == "bbox"
    assert (box["x"], box["y"], box["width"], box["height"]) == pytest.approx((9.375, 12.5, 37.5, 10), abs=0.5)
    assert by_type["labels"]["value"]["labels"] == ["Text"]
    assert by_type["textarea"]["from_name"] == "transcription"
    assert by_type["textarea"]["value"]["text"] == [TRANSCRIPTION]


def test_a_draft_is_saved_while_editing_and_restored_on_reopen_then_skipped(as_person, live_server_url, scene,
                                                                            new_project):
    project = new_project("Drafts", tasks=1)
    task_id = project.task_ids[0]
    anna = as_person("anna")
    assert open_task_on_screen(anna, live_server_url, scene, project, task_id) == task_id
    draw_region(anna, left=40, top=160, right=420, bottom=200, label="Handwriting")
    anna.get_by_test_id("draft-status").filter(has_text="Draft saved").wait_for(timeout=10_000)
    status, drafts = api_call(live_server_url, scene, "anna", "GET", f"/tasks/{task_id}/drafts")
    assert status == 200 and len(drafts) == 1
    assert {item["type"] for item in drafts[0]["result"]} == {"rectangle", "labels"}

    anna.reload()
    anna.locator("body[data-task-id]").wait_for()
    anna.get_by_test_id("task-notice").filter(has_text="draft").wait_for()
    anna.get_by_test_id("editor").locator("li[aria-label=region]").first.wait_for()
    assert anna.get_by_test_id("editor").locator("li[aria-label=region]").count() == 1
    assert editor_result(anna) == drafts[0]["result"]

    # Skipping is an annotation marked cancelled; the screen moves on.
    anna.get_by_test_id("editor").locator("button[aria-label=skip-task]").click()
    anna.get_by_text(f"Task {task_id} skipped.").wait_for()
    anna.wait_for_function(f"() => document.body.dataset.taskId !== '{task_id}'"
                           " || document.querySelector('[data-testid=no-more-tasks]')")
    status, annotations = api_call(live_server_url, scene, "owner", "GET", f"/tasks/{task_id}/annotations")
    assert status == 200 and [a["was_cancelled"] for a in annotations] == [True]


# A browser whose websockets never connect (as before the realtime server, or behind a proxy
# that drops them): the handshake fails, as it does against a server without the route.
NO_WEBSOCKETS = """
window.WebSocket = class extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    setTimeout(() => this.dispatchEvent(Object.assign(new Event("close"), { code: 1006 })), 20);
  }
  send() { throw new Error("not connected"); }
  close() {}
};
"""


def test_without_websockets_the_pages_work_without_live_updates(as_person, live_server_url, scene, new_project):
    project = new_project("Offline", tasks=2)
    # Anna's reservation from the label stream is a lock the pages show without a socket.
    _, reserved = api_call(live_server_url, scene, "anna", "GET", f"/projects/{project.id}/next")
    ben = as_person("ben")
    ben.context.add_init_script(NO_WEBSOCKETS)
    ben.goto(project_url(live_server_url, scene, project))
    task_row(ben, reserved["id"]).get_by_test_id("lock-badge").wait_for()
    assert ben.get_by_test_id("live-status").get_attribute("data-state") in ("connecting", "closed")
    assert "live updates are on" in ben.get_by_test_id("presence").inner_text()

    anna = as_person("anna")
    anna.context.add_init_script(NO_WEBSOCKETS)
    assert open_task_on_screen(anna, live_server_url, scene, project) == reserved["id"]
    assert anna.locator("body").get_attribute("data-mode") == "edit"
    assert "Live updates are off" in anna.get_by_test_id("task-notice").inner_text()
    anna.get_by_test_id("editor").locator("button[aria-label=submit]").wait_for()


def test_the_owner_imports_and_exports_from_the_project_page(as_person, live_server_url, scene, new_project):
    project = new_project("Exports", tasks=1, transcribed=1)
    _, first = api_call(live_server_url, scene, "owner", "GET", f"/tasks/{project.task_ids[0]}")
    owner = as_person("owner")
    owner.goto(project_url(live_server_url, scene, project))
    wait_live(owner)
    tasks = owner.locator("[data-count=task_number]")
    assert tasks.inner_text() == "1"

    # Tasks as JSON, then an image file (multipart, with the CSRF token): each bar ends in its count.
    owner.get_by_label("Or tasks as JSON").fill(json.dumps([{"ocr": first["data"]["ocr"]}]))
    owner.get_by_role("button", name="Import", exact=True).click()
    owner.locator("#import-progress").get_by_text("Imported 1 task.").wait_for()
    tasks.filter(has_text="2").wait_for()
    owner.get_by_label("Files").set_input_files(
        files=[{"name": "letter-9.png", "mimeType": "image/png", "buffer": _page_image(9)}])
    owner.get_by_role("button", name="Import", exact=True).click()
    owner.locator("#flash").get_by_text("Imported 1 task.").wait_for()
    tasks.filter(has_text="3").wait_for()
    owner.get_by_test_id("task-table").get_by_role("img").first.wait_for()

    # An export snapshot, as JSON and converted to CSV, downloaded from the link the page shows.
    owner.get_by_role("button", name="Export", exact=True).click()
    link = owner.get_by_test_id("export-download")
    link.filter(has_text="Download JSON").wait_for()
    exported = owner.request.get(link.evaluate("a => a.href"))
    assert exported.status == 200
    annotated = {task["id"]: task for task in exported.json()}
    texts = [item["value"]["text"] for item in annotated[project.task_ids[0]]["annotations"][0]["result"]
             if item["type"] == "textarea"]
    assert texts == [[TRANSCRIPTION]]
    owner.get_by_label("Export format").select_option("CSV")
    owner.get_by_role("button", name="Export", exact=True).click()
    link.filter(has_text="Download CSV").wait_for()
    converted = owner.request.get(link.evaluate("a => a.href"))
    assert converted.status == 200 and TRANSCRIPTION in converted.text()
    owner.screenshot(path="/tmp/scriptorium-project-import-export.png", full_page=True)


def test_tasks_someone_else_imports_appear_live(as_person, live_server_url, scene, new_project):
    project = new_project("Live imports", tasks=1)
    ben = as_person("ben")
    ben.goto(project_url(live_server_url, scene, project))
    wait_live(ben)
    assert ben.locator("tr[data-testid=task-row]").count() == 1
    status, _ = api_call(live_server_url, scene, "owner", "POST", f"/projects/{project.id}/import",
                         [{"ocr": f"https://example.test/live/{n}.png"} for n in range(2)])
    assert status == 201
    ben.locator("tr[data-testid=task-row]").nth(2).wait_for()
    ben.get_by_test_id("activity").get_by_text("2 tasks were imported").wait_for()
    ben.locator("[data-count=task_number]", has_text="3").wait_for()
