"""The permission matrix, walked: every API route, every method it declares, every role of org A.

For each route of the tenant URLconf served by a DRF view, the view's `permissions` names the
permission of each HTTP method. Each of org A's members (OW AD MA RE AN, all members of project_a)
calls it with their legacy token on `/o/org-a/...`, A's sample objects filling the path (the
cross-tenant suite's `concrete`). A role the matrix does not allow gets 403 with
`denial_message(key)`; an allowed role never sees that message. Every call runs in a savepoint that
is rolled back, so each starts from the same world and nothing sticks.

Also: every API view declares a permission for every method it implements (an undeclared method
fails here, not in production), organization overrides change the answer (but never remove an
`always` role), and a token missing a scope is refused naming it.
"""

from dataclasses import dataclass

import pytest
from django.contrib.admindocs.views import extract_views_from_urlpatterns, simplify_regex
from django.db import transaction
from django.urls import get_resolver

from accounts import services as accounts
from accounts.access import (
    PERMISSIONS,
    MatrixPermission,
    denial_message,
    overrides_changed,
    overrides_of,
    roles_for,
)
from accounts.models import ALL_SCOPES, OrganizationPermission, Role
from platform_core.api import OpenApiView
from tests.test_cross_tenant import BODY_CREDENTIAL_ROUTES, OPEN_ROUTES, SAML_ROUTE_PREFIX, concrete, tenant_routes

pytestmark = pytest.mark.django_db

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Endpoint:
    route: str
    view: type
    method: str
    permission: str


def _view_classes() -> dict[str, type]:
    """Route (as tenant_routes() spells it) -> the class of the view serving it, when one is."""
    found = {}
    for view, regex, _namespace, _name in extract_views_from_urlpatterns(
        get_resolver("platform_core.urls_tenant").url_patterns
    ):
        view_class = getattr(view, "cls", None) or getattr(view, "view_class", None)
        if view_class is not None:
            found[simplify_regex(regex)] = view_class
    return found


def _guarded_api_views() -> dict[str, type]:
    """The DRF views behind the matrix: every route but the open and body-credential ones and
    views that authenticate nobody (platform_core.api.OpenApiView)."""
    classes = _view_classes()
    guarded = {}
    for route in tenant_routes():
        view_class = classes.get(route)
        if route in OPEN_ROUTES | BODY_CREDENTIAL_ROUTES or view_class is None:
            continue
        if route.startswith(("/scim/", SAML_ROUTE_PREFIX)):
            continue  # the IdP's endpoints: a SCIM token or a signed assertion decides, not a role (sso/tests)
        if not hasattr(view_class, "permission_classes") or issubclass(view_class, OpenApiView):
            continue  # a page (Django view) or an open endpoint
        guarded[route] = view_class
    return guarded


def _implemented_methods(view_class: type) -> list[str]:
    return [method for method in HTTP_METHODS if callable(getattr(view_class, method.lower(), None))]


def endpoints() -> list[Endpoint]:
    return [
        Endpoint(route, view_class, method, view_class.permissions[method])
        for route, view_class in _guarded_api_views().items()
        for method in _implemented_methods(view_class)
        if method in (getattr(view_class, "permissions", None) or {})
    ]


def _detail(response) -> str | None:
    if response.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        return body.get("detail") if isinstance(body, dict) else None
    return None


def _call_and_roll_back(api, method: str, path: str, **credential):
    """One call in a savepoint rolled back at once: every call meets the same world."""
    with transaction.atomic():
        response = api.call(method, path, json=None if method == "GET" else {}, **credential)
        if response.streaming:  # exports, files: read to the end, which closes them
            b"".join(response.streaming_content)
        transaction.set_rollback(True)
    return response


# --- every API view declares every method ---------------------------------------------------------

def test_the_walk_sees_the_labeling_and_account_api(world):
    routes = {endpoint.route for endpoint in endpoints()}
    assert {"/api/projects/", "/api/tasks/<pk>/", "/api/annotation-reviews/", "/api/current-user/whoami"} <= routes


def test_every_api_view_declares_a_known_permission_for_each_method_it_implements():
    problems = []
    for route, view_class in _guarded_api_views().items():
        if MatrixPermission not in view_class.permission_classes:
            problems.append(f"{route}: {view_class.__name__} does not use MatrixPermission")
        declared = getattr(view_class, "permissions", None) or {}
        implemented = _implemented_methods(view_class)
        problems += [f"{route}: {view_class.__name__} declares no permission for {method}"
                     for method in implemented if method not in declared]
        problems += [f"{route}: {view_class.__name__} declares {method} it does not implement"
                     for method in declared if method not in implemented]
        problems += [f"{route}: {view_class.__name__}.{method} names unknown permission {key!r}"
                     for method, key in declared.items() if key not in PERMISSIONS]
    assert not problems, "\n".join(problems)


# --- role x permission ----------------------------------------------------------------------------

@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMINISTRATOR, Role.MANAGER, Role.REVIEWER, Role.ANNOTATOR])
def test_each_role_gets_exactly_what_the_matrix_allows(world, api, role):
    member = world.members_a()[role]
    problems = []
    for endpoint in endpoints():
        try:
            path = "/o/org-a" + concrete(endpoint.route, world)
        except AssertionError as missing_sample:
            problems.append(f"{endpoint.route}: {missing_sample}")
            continue
        response = _call_and_roll_back(api, endpoint.method, path, token=member.legacy_key)
        denial = denial_message(endpoint.permission)
        where = f"{endpoint.method} {endpoint.route} ({endpoint.permission}) as {role}"
        if role in roles_for(endpoint.permission, {}):
            if response.status_code == 403 and _detail(response) == denial:
                problems.append(f"{where}: allowed by the matrix, refused with its denial")
            elif response.status_code >= 500:
                problems.append(f"{where}: {response.status_code}")
        elif (response.status_code, _detail(response)) != (403, denial):
            problems.append(f"{where}: not allowed, answered {response.status_code} {_detail(response)!r}")
    assert not problems, "\n".join(problems)


# --- organization overrides -----------------------------------------------------------------------

@pytest.fixture
def override(world):
    """`override(permission, roles)`: an OrganizationPermission row of org A, as the settings page
    writes it; the cached overrides are dropped before and after the test."""
    def set_roles(permission: str, roles: list[str]) -> None:
        OrganizationPermission.objects.update_or_create(
            organization=world.org_a, permission=permission, defaults={"roles": roles})
        overrides_changed(world.org_a.pk)

    overrides_changed(world.org_a.pk)
    yield set_roles
    overrides_changed(world.org_a.pk)


def test_an_override_lets_annotators_create_projects_and_stops_managers(world, as_member, override):
    annotator, manager = as_member(world.annotator_a), as_member(world.manager_a)
    assert annotator("post", "/api/projects/", {"title": "Not yet"}).json()["detail"] == \
        denial_message("projects.create")

    override("projects.create", [Role.OWNER, Role.ADMINISTRATOR, Role.ANNOTATOR])
    created = annotator("post", "/api/projects/", {"title": "An annotator's project"})
    assert created.status_code == 201, created.content
    refused = manager("post", "/api/projects/", {"title": "A manager's project"})
    assert refused.status_code == 403 and refused.json()["detail"] == denial_message("projects.create")
    # The annotator created it, so sees it; the owner sees every project.
    assert annotator("get", f"/api/projects/{created.json()['id']}").status_code == 200


def test_an_override_cannot_remove_an_always_role(world, api, override):
    """An override naming only Administrators for an Owner-always permission leaves the Owner in."""
    endpoint = next((e for e in endpoints() if Role.OWNER in PERMISSIONS[e.permission].always
                     and "<" not in e.route), None)
    assert endpoint is not None, "no bare route declares a permission with an `always` role"
    override(endpoint.permission, [Role.ADMINISTRATOR])
    assert roles_for(endpoint.permission, overrides_of(world.org_a.pk)) == {Role.ADMINISTRATOR, Role.OWNER}
    path = "/o/org-a" + endpoint.route
    owner_answer = _call_and_roll_back(api, endpoint.method, path, token=world.owner_a.legacy_key)
    assert _detail(owner_answer) != denial_message(endpoint.permission), f"{endpoint.method} {endpoint.route}"
    override(endpoint.permission, [Role.OWNER])
    admin_answer = _call_and_roll_back(api, endpoint.method, path, token=world.admin_a.legacy_key)
    assert (admin_answer.status_code, _detail(admin_answer)) == (403, denial_message(endpoint.permission))


def test_every_always_role_survives_any_override(world, override):
    for key, spec in PERMISSIONS.items():
        if spec.always:
            override(key, [])
            assert set(spec.always) <= roles_for(key, overrides_of(world.org_a.pk)), key


# --- token scopes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("missing", ALL_SCOPES)
def test_a_token_without_a_scope_is_refused_naming_it(world, api, missing):
    """The owner may do everything; a PAT without `missing` may not do what needs it."""
    endpoint = next(e for e in endpoints() if PERMISSIONS[e.permission].scope == missing and "<" not in e.route)
    _, refresh = accounts.personal_access_token_create(
        user=world.owner_a.user, organization=world.org_a, scopes=[s for s in ALL_SCOPES if s != missing])
    response = _call_and_roll_back(api, endpoint.method, "/o/org-a" + endpoint.route, bearer=api.access_for(refresh))
    assert response.status_code == 403, f"{endpoint.method} {endpoint.route}"
    assert _detail(response) == f"This token lacks the '{missing}' scope."


def test_a_read_only_token_reads_but_does_not_write(world, api):
    _, refresh = accounts.personal_access_token_create(user=world.owner_a.user, organization=world.org_a,
                                                       scopes=["read"])
    access = api.access_for(refresh)
    assert api.call("get", "/o/org-a/api/projects/", bearer=access).status_code == 200
    refused = api.call("post", "/o/org-a/api/projects/", bearer=access, json={"title": "Nope"})
    assert refused.status_code == 403 and refused.json()["detail"] == "This token lacks the 'write' scope."
