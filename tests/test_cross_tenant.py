"""Tenant isolation: organization B's credentials never read or change organization A's data.

Every route of the tenant URLconf is called with B's legacy token, B's JWT access token and B's
browser session, against `/o/<a>/...`, with every method. Later issues extend SAMPLE_IDS with one
of A's objects per path parameter; a route with a parameter that has no sample fails the suite, so
no new route escapes it.

Labeling data lives in A's schema: besides the public rows (`snapshot_of_a`), the walk checks
A's projects, tasks, annotations and predictions are unchanged.
"""

import re

import pytest
from django.contrib.admindocs.views import extract_views_from_urlpatterns, simplify_regex
from django.urls import get_resolver

from accounts.models import LegacyToken, Membership, OrganizationTokenSettings, PersonalAccessToken
from accounts.tokens import hash_secret
from sso.models import SamlSettings, ScimGroup, ScimGroupMember, ScimSettings, ScimToken, ScimUser, SsoGrant

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")
# Answer anyone: discovery and health (no organization data in them).
OPEN_ROUTES = {"/", "/health", "/api/version/", "/api/version"}
# The credential travels in the body: covered by test_body_credentials_of_b_are_refused_on_a.
BODY_CREDENTIAL_ROUTES = {"/api/token/refresh/", "/api/token/blacklist/"}
# SAML's endpoints answer people who are not members yet and the IdP's POSTs (metadata, login,
# assertion consumer, logout): what they accept from whom is proven in sso/tests/test_saml_*.py,
# which also send one organization's responses to another's endpoints.
SAML_ROUTE_PREFIX = "/saml/"
CATCH_ALL = re.compile(r"<var>/?$")


def tenant_routes() -> list[str]:
    routes = set()
    for _view, regex, _namespace, _name in extract_views_from_urlpatterns(
        get_resolver("platform_core.urls_tenant").url_patterns
    ):
        route = simplify_regex(regex)
        if route.startswith("/<var>") or CATCH_ALL.fullmatch(route.lstrip("/")):
            continue  # the (api|scim) catch-all 404
        routes.add(route)
    return sorted(routes)


# Route prefix -> which of A's objects fills its first path parameter. A new route whose
# parameter no prefix covers fails the suite: add its sample here.
SAMPLES = [
    ("/api/projects/roles/", "project_role_a"),
    ("/api/projects/", "project_a"),
    ("/api/organizations/", "org_a"),
    ("/api/workspaces/", "workspace_a"),
    ("/api/users/", "annotator_user_a"),
    ("/api/token/", "pat_row_a"),
    # Pages.
    ("/settings/workspaces/", "workspace_a"),
    ("/projects/", "project_a"),
    ("/api/tasks/", "task_a"),
    ("/api/annotations/", "annotation_a"),
    ("/api/predictions/", "prediction_a"),
    ("/api/import/file-upload/", "file_upload_a"),
    ("/api/drafts/", "draft_a"),
    ("/api/annotation-reviews/", "review_a"),
    ("/api/annotation-history/", "history_a"),
    ("/api/comments/", "comment_a"),
    ("/api/dm/views/", "view_a"),
    ("/api/dm/actions/", "action_a"),
    ("/api/webhooks/", "webhook_a"),
    # Cloud storages (issue 7): `<kind>` takes the sample's type (concrete()), then its id.
    ("/api/storages/", "storage_a"),
    ("/tasks/", "task_a"),
    # SCIM (issue 5): the IdP's resources by their SCIM ids, and the SCIM tokens API.
    ("/scim/v2/Users/", "scim_user_a"),
    ("/scim/v2/Groups/", "scim_group_a"),
    ("/api/scim/tokens/", "scim_token_a"),
]


# Later path parameters, by name.
NAMED_SAMPLES = {
    "export_pk": "export_a", "import_pk": "import_a", "task_pk": "task_a",
    "user_pk": "annotator_user_a", "tag_pk": "member_tag_a", "pause_pk": "pause_a",
}


def _sample(world, attribute: str):
    if attribute == "annotator_user_a":
        return world.annotator_a.user
    if attribute == "pat_row_a":
        return PersonalAccessToken.objects.get(token_hash=hash_secret(world.owner_a.pat))
    if attribute == "scim_token_a":
        from sso.services import scim_token_create

        existing = ScimToken.objects.filter(organization=world.org_a, label="A's SCIM token").first()
        return existing or scim_token_create(organization=world.org_a, actor=world.owner_a.user,
                                             label="A's SCIM token")[0]
    return getattr(world, attribute)


def _stored_upload_name(world) -> str:
    return world.file_upload_a.file.name.removeprefix("uploads/")


def concrete(route: str, world) -> str:
    if "<" not in route:
        return route
    if route.startswith("/data/upload/"):
        return re.sub(r"<\w+>", _stored_upload_name(world), route)
    prefix = next((attribute for prefix, attribute in SAMPLES if route.startswith(prefix)), None)
    assert prefix, f"cross-tenant suite: add a sample of A's objects for {route} to SAMPLES"
    if "<kind>" in route:
        route = route.replace("<kind>", _sample(world, prefix).kind)
        if "<" not in route:
            return route
    route = re.sub(r"<\w+>", str(_sample(world, prefix).pk), route, count=1)

    def named(match):
        if match.group(1) == "permission":
            return "projects.create"
        assert match.group(1) in NAMED_SAMPLES, f"cross-tenant suite: add <{match.group(1)}> to NAMED_SAMPLES"
        return str(_sample(world, NAMED_SAMPLES[match.group(1)]).pk)

    return re.sub(r"<(\w+)>", named, route)


def snapshot_of_a(world) -> tuple:
    from django_tenants.utils import tenant_context

    from accounts import models as accounts
    from labeling import models
    from storages import models as storages
    from workspaces import models as workspaces

    org = world.org_a
    with tenant_context(org):
        labeling_rows = (
            list(models.Project.objects.order_by("id").values("id", "title", "label_config", "updated_at")),
            list(models.Task.objects.order_by("id").values("id", "data", "updated_at", "comment_count")),
            list(models.Annotation.objects.order_by("id").values("id", "result", "updated_at", "ground_truth")),
            list(models.Prediction.objects.order_by("id").values("id", "result")),
            list(models.FileUpload.objects.order_by("id").values("id", "file")),
            list(models.AnnotationDraft.objects.order_by("id").values("id", "result", "updated_at")),
            list(models.AnnotationReview.objects.order_by("id").values("id", "accepted")),
            list(models.AnnotationHistory.objects.order_by("id").values("id")),
            list(models.Comment.objects.order_by("id").values("id", "text", "is_resolved")),
            list(models.TaskAssignment.objects.order_by("id").values("id", "assignee_id")),
            list(models.DataManagerView.objects.order_by("id").values("id", "data", "order")),
            list(models.Webhook.objects.order_by("id").values("id", "url", "headers", "is_active")),
            list(models.ExportSnapshot.objects.order_by("id").values("id", "status")),
            list(models.ProjectMember.objects.order_by("id").values("id", "user_id", "enabled")),
            list(models.ProjectRole.objects.order_by("id").values("id", "user_id", "role")),
            list(models.AnnotatorPause.objects.order_by("id").values("id", "user_id", "updated_at")),
            list(models.Project.objects.order_by("id").values("id", "workspace_id")),
            list(workspaces.Workspace.objects.order_by("id").values("id", "title", "is_archived", "updated_at")),
            list(workspaces.WorkspaceMembership.objects.order_by("id").values("id", "workspace_id", "user_id")),
            list(storages.Storage.objects.order_by("id").values()),
            list(storages.ImportLink.objects.order_by("id").values()),
            list(storages.ExportLink.objects.order_by("id").values()),
        )
    administration = (
        list(accounts.OrganizationPermission.objects.filter(organization=org).values("permission", "roles")),
        list(accounts.MemberTag.objects.filter(organization=org).order_by("id").values("id", "label")),
        sorted(accounts.MemberTagAssignment.objects.filter(tag__organization=org).values_list(
            "tag_id", "membership_id")),
        list(accounts.Invite.objects.filter(organization=org).order_by("id").values(
            "id", "email", "role", "revoked_at", "accepted_at", "token_hash")),
        list(accounts.SessionPolicy.objects.filter(organization=org).values()),
        accounts.AuditEvent.objects.filter(organization=org).count(),
        list(type(org).objects.filter(pk=org.pk).values(
            "title", "default_role", "contact_info", "external_id", "embed_domains", "deleted_at")),
    )
    single_sign_on = (
        list(ScimSettings.objects.filter(organization=org).values()),
        list(ScimToken.objects.filter(organization=org).order_by("id").values("id", "token_hash", "revoked_at")),
        list(ScimUser.objects.filter(organization=org).order_by("id").values(
            "id", "user_id", "user_name", "display_name", "external_id", "active", "resource", "updated_at")),
        list(ScimGroup.objects.filter(organization=org).order_by("id").values(
            "id", "display_name", "external_id", "resource", "updated_at")),
        sorted(ScimGroupMember.objects.filter(group__organization=org).values_list("group_id", "user_id")),
        list(SsoGrant.objects.filter(organization=org).order_by("id").values()),
        list(SamlSettings.objects.filter(organization=org).values()),
    )
    return labeling_rows + administration + single_sign_on + (
        sorted(Membership.objects.filter(organization=org).values_list("user_id", "role")),
        sorted(LegacyToken.objects.filter(organization=org).values_list("key_hash", "scopes")),
        sorted(PersonalAccessToken.objects.filter(organization=org).values_list("jti", "blacklisted_at")),
        list(OrganizationTokenSettings.objects.filter(organization=org).values()),
        sorted(type(world.owner_a.user).objects.filter(memberships__organization=org).values_list(
            "email", "first_name", "last_name")),
    )


def test_the_suite_sees_the_api(world):
    routes = tenant_routes()
    assert "/api/current-user/whoami" in routes and "/api/token/" in routes


def guarded_routes() -> list[str]:
    return [route for route in tenant_routes()
            if route not in OPEN_ROUTES | BODY_CREDENTIAL_ROUTES and not route.startswith(SAML_ROUTE_PREFIX)]


@pytest.mark.parametrize("route", guarded_routes())
def test_b_credentials_cannot_touch_a(world, api, client, route):
    path = "/o/org-a" + concrete(route, world)
    before = snapshot_of_a(world)
    b_access = api.access_for(world.owner_b.pat)
    for method in METHODS:
        for kind, kwargs in (("legacy", {"token": world.owner_b.legacy_key}), ("jwt", {"bearer": b_access})):
            response = api.call(method, path, json={}, **kwargs)
            assert response.status_code in (401, 403, 404), f"{method.upper()} {path} with B's {kind} token"
            assert b"a.test" not in response.content
    client.force_login(world.owner_b.user)
    for method in METHODS:
        response = getattr(client, method)(path)
        assert response.status_code in (302, 401, 403, 404), f"{method.upper()} {path} with B's session"
        assert b"a.test" not in response.content
    assert snapshot_of_a(world) == before


@pytest.mark.parametrize("route", [route for route in guarded_routes() if "<" not in route])
def test_bare_routes_with_b_credentials_stay_in_b(world, api, route):
    before = snapshot_of_a(world)
    response = api.call("get", route, token=world.owner_b.legacy_key)
    assert b"a.test" not in response.content
    assert b"Org A" not in response.content
    assert snapshot_of_a(world) == before


# Names of org A's objects and people: none may appear in an answer to B.
A_MARKERS = (b"a.test", b"Org A", b"A's ")


@pytest.mark.parametrize("route", [route for route in guarded_routes() if "<" in route and route.startswith("/api/")])
def test_a_ids_on_the_bare_host_with_b_credentials_stay_in_b(world, api, route):
    """B's token on the bare host routes to B: A's ids in the path must find nothing of A."""
    path = concrete(route, world)
    before = snapshot_of_a(world)
    for method in METHODS:
        response = api.call(method, path, token=world.owner_b.legacy_key, json={})
        assert response.status_code < 500, f"{method.upper()} {path}: {response.status_code}"
        content = b"".join(response.streaming_content) if response.streaming else response.content
        assert not any(marker in content for marker in A_MARKERS), f"{method.upper()} {path} leaked A: {content[:300]}"
    assert snapshot_of_a(world) == before


def test_body_credentials_of_b_are_refused_on_a(world, api):
    before = snapshot_of_a(world)
    refresh = api.call("post", "/o/org-a/api/token/refresh/", json={"refresh": world.owner_b.pat})
    assert refresh.status_code == 403
    blacklist = api.call("post", "/o/org-a/api/token/blacklist/", json={"refresh": world.owner_b.pat})
    assert blacklist.status_code == 404
    assert api.call("post", "/api/token/refresh/", json={"refresh": world.owner_b.pat}).status_code == 200
    assert snapshot_of_a(world) == before


def test_a_pat_rotated_through_b_is_refused(world, api):
    response = api.call(
        "post", "/api/token/rotate/", token=world.owner_b.legacy_key, json={"refresh": world.owner_a.pat}
    )
    assert response.status_code == 400
    assert api.call("post", "/api/token/refresh/", json={"refresh": world.owner_a.pat}).status_code == 200


def test_uploaded_files_on_the_bare_host_follow_the_token(world, api):
    path = f"/data/upload/{_stored_upload_name(world)}"
    own = api.call("get", path, token=world.owner_a.legacy_key)
    assert own.status_code == 200 and b"".join(own.streaming_content).startswith(b"\x89PNG")
    assert api.call("get", path, token=world.owner_b.legacy_key).status_code == 404
    assert api.call("get", path).status_code in (302, 401, 403, 404)
