"""Fixtures of the SCIM suites (sso/tests/test_scim_*.py import them).

`scim_a` / `scim_b` call org A's / B's SCIM endpoints with a fresh SCIM token of that
organization, in the test's rolled-back transaction; `mapped_a` gives org A SCIM group mappings
onto a workspace and a project made for the test. `scim_live_org` is an organization of its own,
committed, for the tests against the real daphne server.
"""

import json
import uuid
from dataclasses import dataclass

import pytest
from django_tenants.utils import tenant_context

from accounts import services as accounts
from accounts.models import Membership, Role, User
from conftest import PASSWORD
from sso.models import ScimSettings
from sso.services import scim_token_create

SCIM_JSON = "application/scim+json"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimCalls:
    """SCIM requests through Django's test client: `scim.get("/Users")`, `scim.post("/Users", body)`.
    Paths are relative to the SCIM base (`/o/<slug>/scim/v2` by default, or `bare=True`)."""

    def __init__(self, client, *, token: str, slug: str):
        self.client, self.token, self.slug = client, token, slug

    def call(self, method: str, path: str, body=None, *, bare: bool = False, token: str | None = None,
             headers: dict | None = None, query: dict | None = None):
        base = "/scim/v2" if bare else f"/o/{self.slug}/scim/v2"
        all_headers = {"Authorization": f"Bearer {token or self.token}", **(headers or {})}
        kwargs = {"headers": all_headers}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type=SCIM_JSON)
        if query is not None:
            if method.lower() != "get":
                raise ValueError("query parameters are for GET")
            kwargs["data"] = query
        return getattr(self.client, method.lower())(base + path, **kwargs)

    def get(self, path, **kwargs):
        return self.call("get", path, **kwargs)

    def post(self, path, body, **kwargs):
        return self.call("post", path, body, **kwargs)

    def put(self, path, body, **kwargs):
        return self.call("put", path, body, **kwargs)

    def patch(self, path, operations, **kwargs):
        return self.call("patch", path, {"schemas": [PATCH_OP], "Operations": operations}, **kwargs)

    def delete(self, path, **kwargs):
        return self.call("delete", path, **kwargs)

    # Helpers for the usual sequences.
    def create_user(self, user_name: str, *, email: str | None = None, given: str = "Grace", family: str = "Hopper",
                    **extra) -> dict:
        body = {"schemas": [USER_URN], "userName": user_name, "name": {"givenName": given, "familyName": family},
                "emails": [{"value": email or user_name, "type": "work", "primary": True}], "active": True, **extra}
        response = self.post("/Users", body)
        assert response.status_code == 201, response.content
        return response.json()

    def create_group(self, name: str, members: list[str] = (), **extra) -> dict:
        body = {"schemas": [GROUP_URN], "displayName": name, "members": [{"value": pk} for pk in members], **extra}
        response = self.post("/Groups", body)
        assert response.status_code == 201, response.content
        return response.json()


def scim_error_of(response, status: int, scim_type: str | None = None) -> str:
    """Assert the answer is a SCIM error with this status (and scimType); returns its detail."""
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"].startswith(SCIM_JSON)
    body = response.json()
    assert body["schemas"] == [ERROR_URN] and body["status"] == str(status), body
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body["detail"]


def token_of(organization, actor) -> str:
    _, value = scim_token_create(organization=organization, actor=actor, label="test IdP")
    return value


@pytest.fixture
def scim_a(world, client) -> ScimCalls:
    return ScimCalls(client, token=token_of(world.org_a, world.owner_a.user), slug="org-a")


@pytest.fixture
def scim_b(world, client) -> ScimCalls:
    return ScimCalls(client, token=token_of(world.org_b, world.owner_b.user), slug="org-b")


@dataclass
class Mapped:
    workspace: object
    project: object
    settings: ScimSettings


@pytest.fixture
def mapped_a(world) -> Mapped:
    """Org A's SCIM mappings: group "editors" -> Manager + workspace "Ledgers" + project "Charters"
    as Reviewer; group "staff" -> Annotator."""
    from labeling.models import Project
    from sso.grants import mappings_clean
    from workspaces.models import Workspace

    with tenant_context(world.org_a):
        workspace = Workspace.objects.create(title="Ledgers", created_by=world.owner_a.user)
        project = Project.objects.create(title="Charters", created_by=world.owner_a.user)
    cleaned = mappings_clean(organization=world.org_a, data={
        "roles_groups": [["Manager", "editors"], ["Annotator", "staff"]],
        "workspaces_groups": [["Ledgers", "editors"]],
        "projects_groups": [{"project_id": project.pk, "group": "editors", "role": "Reviewer"}],
    })
    row, _ = ScimSettings.objects.update_or_create(organization=world.org_a, defaults=cleaned)
    return Mapped(workspace=workspace, project=project, settings=row)


def access_in_a(world, user) -> dict:
    """What a user has in org A: role, workspace titles, project titles, project roles."""
    from labeling.models import ProjectMember, ProjectRole
    from workspaces.models import WorkspaceMembership

    membership = Membership.objects.filter(user=user, organization=world.org_a).first()
    with tenant_context(world.org_a):
        return {
            "role": membership.role if membership else None,
            "workspaces": set(WorkspaceMembership.objects.filter(user_id=user.pk)
                              .values_list("workspace__title", flat=True)),
            "projects": set(ProjectMember.objects.filter(user_id=user.pk).values_list("project__title", flat=True)),
            "project_roles": dict(ProjectRole.objects.filter(user_id=user.pk)
                                  .values_list("project__title", "role")),
        }


def account(email: str) -> User:
    return User.objects.get(email=email)


def member_with_tokens(email: str, organization, *, role=Role.ANNOTATOR) -> tuple[User, str, str]:
    """A person in `organization` with a legacy key and a PAT there (an existing account SCIM links)."""
    user = User.objects.filter(email=email).first() or accounts.user_create(email=email, password=PASSWORD)
    accounts.membership_set(user=user, organization=organization, role=role)
    key = accounts.legacy_token_issue(user=user, organization=organization)
    _, pat = accounts.personal_access_token_create(user=user, organization=organization)
    return user, key, pat


@dataclass
class LiveOrg:
    organization: object
    owner: User
    owner_key: str
    scim_token: str
    slug: str


@pytest.fixture(scope="module")
def scim_live_org(world, django_db_blocker) -> LiveOrg:
    """An organization of its own for the live-server tests (their writes are committed)."""
    with django_db_blocker.unblock():
        suffix = uuid.uuid4().hex[:8]
        owner = accounts.user_create(email=f"owner-{suffix}@scim-live.test", password=PASSWORD)
        organization = accounts.organization_create_with_owner(user=owner, title=f"SCIM live {suffix}",
                                                               slug=f"scim-live-{suffix}")
        key = accounts.legacy_token_issue(user=owner, organization=organization)
        token = token_of(organization, owner)
    return LiveOrg(organization=organization, owner=owner, owner_key=key, scim_token=token, slug=organization.slug)
