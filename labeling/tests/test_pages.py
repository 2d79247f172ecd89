"""The project page and the labeling screen (labeling/views.py): who may open which, what each role
is shown, what the page scripts start from, and the static files they load from the live server."""

import json
import re
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.access import overrides_changed
from accounts.models import OrganizationPermission
from conftest import in_org_a
from labeling import services
from labeling.models import Project, TaskLock

pytestmark = pytest.mark.django_db


def page_config(response) -> dict:
    match = re.search(rb'<script id="page-config" type="application/json">(.*?)</script>', response.content, re.S)
    assert match, "the page hands its script a page-config"
    return json.loads(match.group(1))


@pytest.fixture
def signed_in(client):
    """`signed_in(member)` -> the test client with that member's browser session."""
    def login(member):
        client.force_login(member.user)
        return client
    return login


def project_path(world, suffix: str = "", *, slug: str = "org-a", pk: int | None = None) -> str:
    return f"/o/{slug}/projects/{pk or world.project_a.pk}/{suffix}"


def test_the_owner_gets_every_part_of_the_project_page(world, signed_in):
    response = signed_in(world.owner_a).get(project_path(world))
    assert response.status_code == 200
    for part in (b'data-testid="label-button"', b'data-testid="import-card"', b'data-testid="export-card"',
                 b'data-testid="members-link"', b'data-testid="task-table"'):
        assert part in response.content
    config = page_config(response)
    assert config["can"] == {"label": True, "tasks": True, "import": True, "export": True, "members": True,
                             "storages": True}
    assert config["apiBase"] == "/o/org-a/api"
    assert config["socketPath"] == f"/o/org-a/ws/projects/{world.project_a.pk}/"
    assert config["me"]["email"] == "owner@a.test"
    # Counts come with the page; the history authors the feed will name, too.
    assert b'data-count="task_number">3<' in response.content
    assert str(world.owner_a.user.pk) in config["people"]


def test_an_annotator_gets_the_table_and_the_label_button_but_no_import_export_or_members(world, signed_in):
    response = signed_in(world.annotator_a).get(project_path(world))
    assert response.status_code == 200
    assert b'data-testid="label-button"' in response.content
    for absent in (b'data-testid="import-card"', b'data-testid="export-card"', b'data-testid="members-link"'):
        assert absent not in response.content
    assert page_config(response)["can"] == {"label": True, "tasks": True, "import": False, "export": False,
                                             "members": False, "storages": False}


def test_a_manager_who_sees_only_their_own_annotations_gets_no_export(world, signed_in):
    """The export API refuses someone without `annotations.view_all` where others' work is hidden."""
    OrganizationPermission.objects.create(organization=world.org_a, permission="annotations.view_all",
                                          roles=["OW", "AD"])
    _forget_overrides(world.org_a)
    try:
        in_org_a(world, lambda: Project.objects.filter(pk=world.project_a.pk).update(annotator_sees_others=False))
        response = signed_in(world.manager_a).get(project_path(world))
        assert response.status_code == 200
        assert page_config(response)["can"]["import"] is True
        assert page_config(response)["can"]["export"] is False
        assert b'data-testid="export-card"' not in response.content
    finally:
        _forget_overrides(world.org_a)


def _forget_overrides(organization) -> None:
    """Cache keys are per schema (django_tenants' key function): forget them in both."""
    overrides_changed(organization.pk)
    with tenant_context(organization):
        overrides_changed(organization.pk)


def test_a_project_the_member_cannot_see_is_not_found_on_both_pages(world, signed_in):
    hidden = in_org_a(world, lambda: services.project_create(user=world.owner_a.user, fields={"title": "Hidden"}))
    client = signed_in(world.annotator_a)
    for suffix in ("", "label"):
        response = client.get(project_path(world, suffix, pk=hidden.pk))
        assert response.status_code == 404, suffix
        assert b"Hidden" not in response.content
    assert signed_in(world.owner_a).get(project_path(world, pk=hidden.pk)).status_code == 200


def test_another_organizations_project_id_is_not_found(world, signed_in):
    pk = world.project_a.pk
    with tenant_context(world.org_b):
        assert not Project.objects.filter(pk=pk).exists(), "org B has no project of that id"
    client = signed_in(world.owner_b)
    for suffix in ("", "label"):
        response = client.get(project_path(world, suffix, slug="org-b", pk=pk))
        assert response.status_code == 404
        assert b"A's OCR project" not in response.content
        # On A's prefix B is no member at all.
        response = client.get(project_path(world, suffix, pk=pk))
        assert response.status_code == 403
        assert b"A's OCR project" not in response.content


def test_signed_out_visitors_are_sent_to_log_in(world, client):
    response = client.get(project_path(world, "label"))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_the_labeling_screen_loads_the_editor_with_the_projects_config(world, signed_in):
    response = signed_in(world.annotator_a).get(project_path(world, "label"))
    assert response.status_code == 200
    for asset in (b"/static/label-studio/js/main.js", b"/static/label-studio/css/main.css",
                  b"/static/labeling/realtime.js", b"/static/labeling/label.js"):
        assert asset in response.content
    config = page_config(response)
    assert config["labelConfig"] == world.project_a.label_config
    assert config["task"] is None
    assert config["socketPath"] == f"/o/org-a/ws/projects/{world.project_a.pk}/"
    given = signed_in(world.annotator_a).get(project_path(world, f"label?task={world.task_a.pk}"))
    assert page_config(given)["task"] == world.task_a.pk


def test_without_the_right_to_label_the_screen_is_refused_and_the_button_gone(world, signed_in):
    OrganizationPermission.objects.create(organization=world.org_a, permission="annotations.create",
                                          roles=["OW", "AD", "MA", "RE"])
    _forget_overrides(world.org_a)
    try:
        client = signed_in(world.annotator_a)
        refused = client.get(project_path(world, "label"))
        assert refused.status_code == 403
        assert b"annotations.create" in refused.content or b"Label tasks" in refused.content
        page = client.get(project_path(world))
        assert page.status_code == 200
        assert b'data-testid="label-button"' not in page.content
        assert page_config(page)["can"]["label"] is False
    finally:
        _forget_overrides(world.org_a)


def test_the_pages_start_from_the_locks_in_force(world, signed_in):
    now = timezone.now()
    tasks = in_org_a(world, lambda: list(world.project_a.tasks.order_by("id")[:2]))

    def lock():
        TaskLock.objects.create(task=tasks[0], user=world.annotator_a.user, expires_at=now + timedelta(minutes=5))
        TaskLock.objects.create(task=tasks[1], user=world.reviewer_a.user, expires_at=now - timedelta(seconds=1))

    in_org_a(world, lock)
    locks = page_config(signed_in(world.owner_a).get(project_path(world)))["locks"]
    assert [(entry["task"], entry["user"]["email"]) for entry in locks] == [(tasks[0].pk, "annotator@a.test")]
    assert set(locks[0]["user"]) == {"id", "email", "first_name", "last_name"}
    assert page_config(signed_in(world.owner_a).get(project_path(world, "label")))["locks"] == locks


@pytest.mark.live
def test_the_live_server_serves_the_editor_bundle_and_the_page_scripts(live_server_url):
    for path, kind, marker in (
        ("/static/label-studio/js/main.js", "javascript", b"LabelStudio"),
        ("/static/label-studio/css/main.css", "text/css", b".lsf-"),
        ("/static/labeling/realtime.js", "javascript", b"window.Realtime"),
        ("/static/labeling/label.js", "javascript", b"new LabelStudio"),
        ("/static/labeling/project.js", "javascript", b"job.progress"),
        ("/static/labeling/labeling.css", "text/css", b".project-grid"),
    ):
        with urllib.request.urlopen(f"{live_server_url}{path}", timeout=10) as response:  # noqa: S310 - loopback
            assert response.status == 200, path
            assert kind in response.headers["Content-Type"], path
            assert marker in response.read(), path
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{live_server_url}/static/label-studio/js/nothing.js", timeout=10)  # noqa: S310
    assert missing.value.code == 404
