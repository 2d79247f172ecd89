"""An organization's administration pages, driven in a real browser (Debian's Chromium via Playwright).

The live server commits, so every test works in this module's own organization (made through
accounts.services.signup), never in the shared world. Database work runs in a worker thread:
Playwright's sync API keeps an event loop running in the test's thread, where Django refuses ORM
calls.
"""

import re
import uuid
from dataclasses import dataclass, field

import pytest

from conftest import PASSWORD, in_worker

pytestmark = pytest.mark.browser

SUFFIX = uuid.uuid4().hex[:6]
# Audit actions the tests below performed, in order; the audit-log test looks for each.
PERFORMED: list[str] = []


@dataclass
class Scene:
    slug: str
    organization_id: int
    emails: dict = field(default_factory=dict)  # nickname -> email
    user_ids: dict = field(default_factory=dict)  # nickname -> user id
    projects: dict = field(default_factory=dict)  # title -> project id




PEOPLE = [  # nickname, first, last, role
    ("admin", "Adam", "Admin", "AD"),
    ("manager", "Mona", "Manager", "MA"),
    ("reviewer", "Rita", "Reviewer", "RE"),
    ("anna", "Anna", "Annotator", "AN"),
    ("ben", "Ben", "Annotator", "AN"),
    ("cleo", "Cleo", "Annotator", "AN"),
    ("dora", "Dora", "Annotator", "AN"),
]


def _build_scene() -> Scene:
    from django_tenants.utils import tenant_context

    from accounts import services
    from labeling import services as labeling
    from labeling.models import ProjectMember

    owner, organization = services.signup(
        email=f"owner-{SUFFIX}@pages.test", password=PASSWORD, organization_title=f"Pages {SUFFIX}",
        first_name="Olive", last_name="Owner",
    )
    scene = Scene(slug=organization.slug, organization_id=organization.pk)
    scene.emails["owner"], scene.user_ids["owner"] = owner.email, owner.pk
    for nickname, first, last, role in PEOPLE:
        user = services.user_create(email=f"{nickname}-{SUFFIX}@pages.test", password=PASSWORD,
                                    first_name=first, last_name=last)
        services.membership_set(user=user, organization=organization, role=role)
        scene.emails[nickname], scene.user_ids[nickname] = user.email, user.pk
    with tenant_context(organization):
        for title in ("Letters", "Ledgers"):
            project = labeling.project_create(user=owner, fields={"title": title})
            scene.projects[title] = project.pk
        # Anna sees Letters (so its members page refuses her rather than hiding it) and no other.
        ProjectMember.objects.create(project_id=scene.projects["Letters"], user_id=scene.user_ids["anna"])
    return scene


@pytest.fixture(scope="module")
def scene(live_server_url, django_db_blocker) -> Scene:
    """Built before the browser starts (fixture order), in this module's own organization."""
    return in_worker(django_db_blocker, _build_scene)


@pytest.fixture(scope="module")
def browser(scene, chromium_browser):
    return chromium_browser


def login(browser, base: str, email: str):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{base}/accounts/login/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r".*/o/[^/]+/$"))
    return page


@pytest.fixture
def as_person(browser, live_server_url, scene):
    """`as_person("owner")` -> a logged-in page (its context is closed after the test)."""
    pages = []

    def open_page(nickname: str):
        page = login(browser, live_server_url, scene.emails[nickname])
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.context.close()


def org_url(live_server_url: str, scene: Scene, path: str = "") -> str:
    return f"{live_server_url}/o/{scene.slug}/{path}"


def confirm(page, label: str) -> None:
    dialog = page.locator("#confirm-dialog")
    dialog.get_by_role("button", name=label).click()
    dialog.wait_for(state="hidden")


def flash_says(page, text: str) -> None:
    page.locator("#flash").filter(has_text=text).wait_for()


def member_row(page, email: str):
    return page.locator(f"tr[data-testid=member-row][data-email='{email}']")


def visible_member_emails(page) -> set[str]:
    return set(page.locator("tr[data-testid=member-row]").evaluate_all("rows => rows.map(r => r.dataset.email)"))


# --- Members ------------------------------------------------------------------------------------

def test_members_search_filter_change_role_and_deactivate(as_person, live_server_url, scene):
    page = as_person("owner")
    page.get_by_test_id("settings-link").click()
    page.wait_for_url(re.compile(r".*/settings/members$"))
    member_row(page, scene.emails["dora"]).wait_for()
    assert page.get_by_test_id("members-count").inner_text() == "8 members"

    page.get_by_label("Search members").fill("annotator")
    page.get_by_test_id("members-count").filter(has_text="4 members").wait_for()
    assert visible_member_emails(page) == {scene.emails[n] for n in ("anna", "ben", "cleo", "dora")}
    page.get_by_label("Search members").fill("")

    page.get_by_role("group", name="Filter by role").get_by_role("button", name="Manager").click()
    page.get_by_test_id("members-count").filter(has_text="1 member").wait_for()
    assert visible_member_emails(page) == {scene.emails["manager"]}
    page.get_by_role("group", name="Filter by role").get_by_role("button", name="Reviewer").click()
    page.get_by_test_id("members-count").filter(has_text="2 members").wait_for()
    page.get_by_role("group", name="Filter by role").get_by_role("button", name="All").click()
    page.get_by_test_id("members-count").filter(has_text="8 members").wait_for()

    # The owner's own row has no controls: nobody deactivates themselves from here.
    assert member_row(page, scene.emails["owner"]).locator("select, button").count() == 0

    page.get_by_label(f"Role of {scene.emails['ben']}").select_option("RE")
    flash_says(page, f"{scene.emails['ben']} is now Reviewer")
    PERFORMED.append("member.role_changed")

    member_row(page, scene.emails["dora"]).get_by_role("button", name="Deactivate").click()
    confirm(page, "Deactivate")
    flash_says(page, f"{scene.emails['dora']} is deactivated")
    PERFORMED.append("member.deactivated")

    page.reload()
    member_row(page, scene.emails["dora"]).wait_for()
    assert page.get_by_label(f"Role of {scene.emails['ben']}").input_value() == "RE"
    assert page.get_by_label(f"Role of {scene.emails['dora']}").input_value() == "DI"
    assert member_row(page, scene.emails["dora"]).get_by_role("button", name="Deactivate").count() == 0
    page.screenshot(path="/tmp/scriptorium-admin-members.png", full_page=True)
    page.get_by_role("group", name="Filter by role").get_by_role("button", name="Deactivated").click()
    page.get_by_test_id("members-count").filter(has_text="1 member").wait_for()
    assert visible_member_emails(page) == {scene.emails["dora"]}


def test_a_refused_role_change_shows_the_api_error_inline(as_person, live_server_url, scene):
    page = as_person("admin")
    page.goto(org_url(live_server_url, scene, "settings/members"))
    member_row(page, scene.emails["owner"]).wait_for()
    # An Administrator cannot change an Owner: the API refuses and the page says why, in place.
    page.get_by_label(f"Role of {scene.emails['owner']}").select_option("AN")
    error = page.locator("#members-error")
    error.wait_for()
    assert error.inner_text().strip()
    assert page.get_by_label(f"Role of {scene.emails['owner']}").input_value() == "OW"


# --- Invites ------------------------------------------------------------------------------------

def test_invites_send_revoke_and_reset_the_link(as_person, live_server_url, scene):
    page = as_person("owner")
    page.goto(org_url(live_server_url, scene, "settings/invites"))
    link = page.get_by_test_id("invite-link")
    page.wait_for_function("() => document.querySelector('[data-testid=invite-link]').value.includes('/invite')")
    first_link = link.input_value()

    page.get_by_role("button", name="Reset link").click()
    confirm(page, "Reset link")
    flash_says(page, "The invite link was reset")
    assert link.input_value() != first_link
    PERFORMED.append("invite.link_reset")

    page.get_by_label("Email addresses").fill("not-an-address")
    page.get_by_role("button", name="Send invites").click()
    page.locator("#invite-error").wait_for()
    assert "emails" in page.locator("#invite-error").inner_text()

    invitee = f"newcomer-{SUFFIX}@pages.test"
    page.get_by_label("Email addresses").fill(invitee)
    page.get_by_label("Role").select_option("RE")
    page.get_by_label("Letters").check()
    page.get_by_role("button", name="Send invites").click()
    flash_says(page, f"Invited {invitee}")
    PERFORMED.append("invite.sent")
    row = page.locator(f"tr[data-testid=invite-row][data-email='{invitee}']")
    assert "Reviewer" in row.inner_text()
    page.screenshot(path="/tmp/scriptorium-admin-invites.png", full_page=True)

    row.get_by_role("button", name="Revoke").click()
    confirm(page, "Revoke")
    flash_says(page, f"The invite to {invitee} was revoked")
    assert page.locator(f"tr[data-testid=invite-row][data-email='{invitee}']").count() == 0
    PERFORMED.append("invite.revoked")


# --- Workspaces ---------------------------------------------------------------------------------

def test_workspace_create_add_a_member_and_move_a_project_in(as_person, live_server_url, scene):
    page = as_person("owner")
    page.goto(org_url(live_server_url, scene, "settings/workspaces"))
    page.get_by_label("Title").fill("Archive room")
    page.get_by_label("Description").fill("Scans waiting for transcription")
    page.get_by_role("button", name="Create workspace").click()
    page.wait_for_url(re.compile(r".*/settings/workspaces/\d+$"))
    assert page.get_by_test_id("workspace-title").inner_text() == "Archive room"

    page.get_by_label("Member to add").select_option(str(scene.user_ids["reviewer"]))
    page.get_by_role("button", name="Add member").click()
    page.locator(f"tr[data-testid=workspace-member-row][data-email='{scene.emails['reviewer']}']").wait_for()

    page.get_by_label("Project to move in").select_option(str(scene.projects["Ledgers"]))
    page.get_by_role("button", name="Move project in").click()
    page.locator(f"tr[data-testid=workspace-project-row][data-project-id='{scene.projects['Ledgers']}']").wait_for()

    page.goto(org_url(live_server_url, scene, "settings/workspaces"))
    row = page.locator("tr[data-testid=workspace-row]").filter(has_text="Archive room")
    row.wait_for()
    assert row.get_by_test_id("projects-count").inner_text() == "1"
    page.screenshot(path="/tmp/scriptorium-admin-workspaces.png", full_page=True)


# --- Project members ----------------------------------------------------------------------------

def project_member_row(page, email: str):
    return page.locator(f"tr[data-testid=project-member-row][data-email='{email}']")


def test_project_members_add_remove_and_pause(as_person, live_server_url, scene):
    page = as_person("owner")
    page.get_by_test_id("project-item").filter(has_text="Letters").get_by_role("link", name="Members").click()
    page.wait_for_url(re.compile(rf".*/projects/{scene.projects['Letters']}/members$"))

    for nickname in ("ben", "cleo"):
        page.get_by_label("Member to add").select_option(str(scene.user_ids[nickname]))
        page.get_by_role("button", name="Add to project").click()
        project_member_row(page, scene.emails[nickname]).wait_for()

    project_member_row(page, scene.emails["cleo"]).get_by_role("button", name="Remove").click()
    confirm(page, "Remove")
    flash_says(page, f"{scene.emails['cleo']} was removed from the project")
    project_member_row(page, scene.emails["cleo"]).wait_for(state="detached")

    project_member_row(page, scene.emails["ben"]).get_by_role("button", name="Pause").click()
    page.get_by_label("Message to the member").fill("Checking the last batch first")
    page.locator("#pause-dialog").get_by_role("button", name="Pause").click()
    flash_says(page, f"{scene.emails['ben']} is paused")

    page.reload()
    ben = project_member_row(page, scene.emails["ben"])
    ben.get_by_test_id("paused-badge").wait_for()
    assert ben.get_by_role("button", name="Resume").is_visible()
    page.screenshot(path="/tmp/scriptorium-admin-project-members.png", full_page=True)


# --- Session policy -----------------------------------------------------------------------------

def test_session_policy_is_set_in_the_page(as_person, live_server_url, scene):
    page = as_person("owner")
    page.goto(org_url(live_server_url, scene, "settings/session-policy"))
    max_age = page.get_by_label("Maximum session age (minutes)")
    page.wait_for_function("() => document.getElementById('policy-max-age').value !== ''")

    max_age.fill("0")
    page.get_by_role("button", name="Save policy").click()
    page.locator("#policy-error").wait_for()
    assert "max_session_age" in page.locator("#policy-error").inner_text()

    max_age.fill("720")
    page.get_by_label("Maximum time between activity (minutes)").fill("90")
    page.get_by_role("button", name="Save policy").click()
    flash_says(page, "Session policy saved")
    PERFORMED.append("session_policy.changed")

    page.reload()
    page.wait_for_function("() => document.getElementById('policy-max-age').value === '720'")
    assert page.get_by_label("Maximum time between activity (minutes)").input_value() == "90"
    assert "12 h" in page.locator("#policy-max-age-hint").inner_text()


# --- API tokens ---------------------------------------------------------------------------------

def test_api_token_is_shown_once_then_gone_and_can_be_revoked(as_person, live_server_url, scene):
    page = as_person("owner")
    page.goto(org_url(live_server_url, scene, "settings/tokens"))
    page.get_by_test_id("tokens-body").locator("tr").first.wait_for()

    page.get_by_label("Read").check()
    page.get_by_label("Write").uncheck()
    page.get_by_label("Admin").uncheck()
    page.get_by_label("Expires after (days)").fill("7")
    page.get_by_role("button", name="Create token").click()
    page.get_by_test_id("token-once").wait_for()
    token = page.get_by_test_id("token-value").inner_text()
    assert token.count(".") == 2  # a JWT
    PERFORMED.append("token.created")
    page.screenshot(path="/tmp/scriptorium-admin-token.png", full_page=True)
    row = page.locator("tr[data-testid=token-row]").first
    row.filter(has_text="read").wait_for()
    assert "write" not in row.inner_text()

    page.get_by_role("button", name="Done").click()
    assert page.get_by_test_id("token-once").is_hidden()
    page.reload()
    page.locator("tr[data-testid=token-row]").first.wait_for()
    assert token not in page.content()
    assert page.get_by_test_id("token-once").is_hidden()

    row = page.locator("tr[data-testid=token-row]").first
    row.get_by_role("button", name="Revoke").click()
    confirm(page, "Revoke")
    flash_says(page, "was revoked")
    page.locator("tr[data-testid=token-row]").first.filter(has_text="Revoked").wait_for()
    PERFORMED.append("token.revoked")


# --- Permission matrix --------------------------------------------------------------------------

def test_permission_matrix_change_and_reset(as_person, live_server_url, scene):
    page = as_person("owner")
    page.goto(org_url(live_server_url, scene, "settings/permissions"))
    reviewer_exports = page.get_by_label("exports.create: Reviewer")
    assert not reviewer_exports.is_checked()
    # An Owner always keeps the permissions that keep the organization in their hands.
    assert page.get_by_label("permissions.change: Owner").is_disabled()

    page.screenshot(path="/tmp/scriptorium-admin-permissions.png")
    reviewer_exports.check()
    flash_says(page, "exports.create")
    PERFORMED.append("permission.changed")
    page.reload()
    assert page.get_by_label("exports.create: Reviewer").is_checked()
    row = page.locator("tr[data-permission='exports.create']")
    row.get_by_role("button", name="Reset to default").click()
    confirm(page, "Reset")
    flash_says(page, "back to its default roles")
    assert not page.get_by_label("exports.create: Reviewer").is_checked()


# --- Audit log ----------------------------------------------------------------------------------

def test_audit_log_lists_the_actions_of_this_module(as_person, live_server_url, scene):
    page = as_person("owner")
    if not PERFORMED:  # run on its own: make one auditable change first
        page.goto(org_url(live_server_url, scene, "settings/session-policy"))
        page.wait_for_function("() => document.getElementById('policy-max-age').value !== ''")
        page.get_by_label("Maximum session age (minutes)").fill("600")
        page.get_by_role("button", name="Save policy").click()
        flash_says(page, "Session policy saved")
        PERFORMED.append("session_policy.changed")
    page.goto(org_url(live_server_url, scene, "settings/audit"))
    actions = set(page.locator("tr[data-testid=audit-row]").evaluate_all("rows => rows.map(r => r.dataset.action)"))
    assert set(PERFORMED) <= actions, set(PERFORMED) - actions
    page.screenshot(path="/tmp/scriptorium-admin-audit.png", full_page=True)
    assert scene.emails["owner"] in page.get_by_test_id("audit-body").inner_text()

    page.get_by_role("group", name="Filter by kind").get_by_role("link", name="Session policy").click()
    page.wait_for_url(re.compile(r".*action=session_policy$"))
    actions = set(page.locator("tr[data-testid=audit-row]").evaluate_all("rows => rows.map(r => r.dataset.action)"))
    assert actions == {"session_policy.changed"}


# --- Who sees what ------------------------------------------------------------------------------

ADMINISTRATION_PAGES = ["settings/members", "settings/invites", "settings/workspaces", "settings/session-policy",
                        "settings/permissions", "settings/audit", "settings/sso", "settings/scim"]


def test_an_annotator_is_refused_the_settings_pages_and_sees_no_settings_link(as_person, live_server_url, scene):
    page = as_person("anna")
    assert page.get_by_test_id("settings-link").count() == 0
    assert page.get_by_role("link", name="Settings").count() == 0
    assert page.get_by_test_id("project-item").all_inner_texts() == ["Letters"]  # no "Members" link either
    for path in [*ADMINISTRATION_PAGES, f"projects/{scene.projects['Letters']}/members"]:
        response = page.goto(org_url(live_server_url, scene, path))
        assert response.status == 403, path
        assert page.get_by_role("heading", name="Access refused").is_visible(), path
    # A project she cannot see is not found rather than refused.
    assert page.goto(org_url(live_server_url, scene, f"projects/{scene.projects['Ledgers']}/members")).status == 404
    # Their own API tokens stay theirs to manage: the only settings page they have.
    response = page.goto(org_url(live_server_url, scene, "settings"))
    assert response.status == 200
    assert page.url.endswith("/settings/tokens")
    nav = page.get_by_role("navigation", name="Settings")
    assert nav.get_by_role("link").all_inner_texts() == ["API tokens"]


def test_a_manager_sees_only_what_they_may_use(as_person, live_server_url, scene):
    page = as_person("manager")
    page.get_by_test_id("settings-link").click()
    nav = page.get_by_role("navigation", name="Settings")
    assert nav.get_by_role("link").all_inner_texts() == ["Members", "Workspaces", "API tokens"]
    member_row(page, scene.emails["anna"]).wait_for()
    # Members are visible to a Manager; changing them is not, so no controls are drawn.
    assert page.locator("tr[data-testid=member-row] select, tr[data-testid=member-row] button").count() == 0
    assert page.goto(org_url(live_server_url, scene, "settings/invites")).status == 403


def _page_statuses(scene: Scene, nickname: str) -> list[tuple[str, int, int]]:
    """(path, status, status `can` implies) of every settings page, for one member."""
    from django.test import Client

    from accounts.access import Actor, can
    from accounts.models import Membership
    from accounts.views_admin import SECTIONS

    membership = Membership.objects.select_related("user").get(user_id=scene.user_ids[nickname],
                                                               organization_id=scene.organization_id)
    actor = Actor(membership=membership)
    client = Client()
    client.force_login(membership.user)
    checks = []
    for section in SECTIONS:
        status = client.get(f"/o/{scene.slug}/{section.path}").status_code
        checks.append((section.path, status, 200 if can(actor, section.permission) else 403))
    return checks


@pytest.mark.parametrize("nickname", ["owner", "admin", "manager", "reviewer", "anna"])
def test_every_settings_page_answers_as_the_matrix_says(scene, django_db_blocker, nickname):
    for path, status, expected in in_worker(django_db_blocker, _page_statuses, scene, nickname):
        assert status == expected, (nickname, path)
