"""`/api/scim/settings` (Label Studio's shape) and `/api/scim/tokens`: who may read and change
them, validation, and the re-sync of every SCIM-managed member after a change (Celery)."""

# ruff: noqa: E402 - the shared SCIM fixtures are registered for assert rewriting before they are imported
import pytest

pytest.register_assert_rewrite("sso.tests.scim_fixtures")
pytest_plugins = ["sso.tests.scim_fixtures"]

from django_tenants.utils import tenant_context

from accounts.models import AuditEvent, Role
from labeling.models import Project
from sso import tasks
from sso.models import ScimSettings, ScimToken, ScimUser
from sso.tests.scim_fixtures import ScimCalls, access_in_a, scim_error_of
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch) -> list:
    """The organization ids `sso.scim_resync` was enqueued for (the broker is not called)."""
    calls = []
    monkeypatch.setattr(tasks.scim_resync, "delay", lambda organization_id: calls.append(organization_id))
    return calls


def test_settings_answer_label_studio_s_shape_and_the_urls_to_give_the_idp(world, owner, admin):
    body = owner("get", "/api/scim/settings").json()
    assert body == {"roles_groups": [], "workspaces_groups": [], "projects_groups": [],
                    "scim_base_url": "http://testserver/o/org-a/scim/v2/", "scim_bare_url": "http://testserver/scim/v2/"}
    assert admin("get", "/api/scim/settings").status_code == 200


@pytest.mark.parametrize("role", ["manager", "reviewer", "annotator"])
def test_only_administrators_see_or_change_scim(world, request, role):
    call = request.getfixturevalue(role)
    for method, path, body in (("get", "/api/scim/settings", None), ("post", "/api/scim/settings", {}),
                               ("get", "/api/scim/tokens", None), ("post", "/api/scim/tokens", {"label": "x"})):
        assert call(method, path, body).status_code == 403, (role, method, path)
    assert not ScimToken.objects.filter(organization=world.org_a, label="x").exists()


def test_a_change_is_stored_audited_and_resyncs_members_after_commit(world, owner, enqueued,
                                                                     django_capture_on_commit_callbacks):
    with tenant_context(world.org_a):
        Workspace.objects.create(title="Ledgers", created_by=world.owner_a.user)
        project = Project.objects.create(title="Charters", created_by=world.owner_a.user)
    data = {"roles_groups": [["manager", "editors"]], "workspaces_groups": [["Ledgers", "editors"]],
            "projects_groups": [{"project_id": project.pk, "group": "editors", "role": "reviewer"}]}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = owner("post", "/api/scim/settings", data)
    assert response.status_code == 201, response.content
    assert response.json()["roles_groups"] == [["Manager", "editors"]]
    assert response.json()["projects_groups"] == [{"project_id": project.pk, "group": "editors", "role": "Reviewer"}]
    assert len(callbacks) == 1 and enqueued == [world.org_a.pk]
    assert ScimSettings.objects.get(organization=world.org_a).workspaces_groups == [["Ledgers", "editors"]]
    assert AuditEvent.objects.filter(organization=world.org_a, action="scim.settings_changed").exists()
    assert owner("get", "/api/scim/settings").json()["roles_groups"] == [["Manager", "editors"]]


@pytest.mark.parametrize(("data", "field"), [
    ({"roles_groups": [["Owner", "root"]]}, "roles_groups"),
    ({"workspaces_groups": [["No such workspace", "g"]]}, "workspaces_groups"),
    ({"projects_groups": [{"project_id": 999999, "group": "g", "role": "Inherit"}]}, "projects_groups"),
    ({"projects_groups": "all"}, "projects_groups"),
])
def test_bad_mappings_are_400_naming_the_field_and_nothing_is_enqueued(world, owner, enqueued, data, field,
                                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner("post", "/api/scim/settings", data)
    assert response.status_code == 400
    assert field in response.json()["validation_errors"]
    assert enqueued == [] and not ScimSettings.objects.filter(organization=world.org_a).exists()


def test_the_resync_job_applies_new_mappings_to_every_scim_member_and_takes_back_old_ones(world, owner, scim_a,
                                                                                         enqueued):
    ann = scim_a.create_user("ann@example.test")
    scim_a.create_group("staff", [ann["id"], str(world.scim_user_a.pk)])
    ann_user = ScimUser.objects.get(pk=ann["id"]).user
    assert access_in_a(world, ann_user)["role"] == Role.ANNOTATOR

    owner("post", "/api/scim/settings", {"roles_groups": [["Reviewer", "staff"]]})
    assert access_in_a(world, ann_user)["role"] == Role.ANNOTATOR  # not before the job runs
    assert tasks.scim_resync(world.org_a.pk) == 2
    assert access_in_a(world, ann_user)["role"] == Role.REVIEWER
    assert access_in_a(world, world.annotator_a.user)["role"] == Role.REVIEWER

    owner("post", "/api/scim/settings", {"roles_groups": []})
    tasks.scim_resync(world.org_a.pk)
    assert access_in_a(world, ann_user)["role"] == Role.ANNOTATOR
    assert access_in_a(world, world.annotator_a.user)["role"] == Role.ANNOTATOR
    assert tasks.scim_resync(999999) == 0


# --- tokens --------------------------------------------------------------------------------------

def test_tokens_are_shown_once_listed_without_their_value_and_revocable(world, owner, client):
    created = owner("post", "/api/scim/tokens", {"label": "Entra ID"})
    assert created.status_code == 201, created.content
    body = created.json()
    value = body["token"]
    assert value.startswith("scim_") and body["label"] == "Entra ID" and body["created_by"] == "owner@a.test"
    assert body["token_prefix"] == value[len("scim_"):][:6]
    scim = ScimCalls(client, token=value, slug="org-a")
    assert scim.get("/Users").status_code == 200

    listed = owner("get", "/api/scim/tokens").json()
    assert [row["id"] for row in listed][:1] == [body["id"]]
    assert set(listed[0]) == {"id", "label", "token_prefix", "created_at", "created_by", "last_used_at", "revoked_at"}
    assert value not in str(listed) and listed[0]["last_used_at"] is not None
    assert ScimToken.objects.get(pk=body["id"]).token_hash not in str(listed)

    assert owner("delete", f"/api/scim/tokens/{body['id']}").status_code == 204
    scim_error_of(scim.get("/Users"), 401)
    assert owner("get", "/api/scim/tokens").json()[0]["revoked_at"] is not None
    assert owner("delete", f"/api/scim/tokens/{body['id']}/").status_code == 204  # again: nothing more
    actions = set(AuditEvent.objects.filter(organization=world.org_a).values_list("action", flat=True))
    assert {"scim_token.created", "scim_token.revoked"} <= actions
    assert owner("post", "/api/scim/tokens", {"label": ["not", "text"]}).status_code == 400


def test_tokens_of_another_organization_are_out_of_reach(world, owner, api, scim_b):
    b_token = ScimToken.objects.filter(organization=world.org_b).latest("id")
    assert owner("delete", f"/api/scim/tokens/{b_token.pk}").status_code == 404
    b_token.refresh_from_db()
    assert b_token.revoked_at is None and scim_b.get("/Users").status_code == 200
    a_token = owner("post", "/api/scim/tokens", {"label": "A's IdP"}).json()
    b_listed = api.call("get", "/api/scim/tokens", token=world.owner_b.legacy_key)
    assert b_listed.status_code == 200 and [row["id"] for row in b_listed.json()] == [b_token.pk]
    assert api.call("get", "/o/org-a/api/scim/tokens", token=world.owner_b.legacy_key).status_code == 403
    assert api.call("delete", f"/api/scim/tokens/{a_token['id']}", token=world.owner_b.legacy_key).status_code == 404
    assert ScimToken.objects.get(pk=a_token["id"]).revoked_at is None
