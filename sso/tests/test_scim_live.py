"""Against the real server (daphne on the test database): the SCIM checker scim2-tester over HTTP
on a SCIM token of an organization of its own, and the official SDK's SCIM settings client.

No django_db mark: what these tests create must be committed for the server process to see it.
"""

# ruff: noqa: E402 - the shared SCIM fixtures are registered for assert rewriting before they are imported
import pytest

pytest.register_assert_rewrite("sso.tests.scim_fixtures")
pytest_plugins = ["sso.tests.scim_fixtures"]

from collections import Counter

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError
from scim2_client import BaseSyncSCIMClient, RequestNetworkException
from scim2_tester import Status, check_server

from accounts.models import Membership, Role
from sso.models import ScimSettings, ScimUser

# The only checks allowed to be skipped, each for a reason scim2-tester itself gives: we answer
# 501 to a search across resource types (RFC 7644 3.4.3 makes it optional), which it reports as
# not supported by the server.
ALLOWED_SKIPS = {("search_with_attributes", "POST /.search: searching several resource types at once is not "
                                            "supported by the server")}


class HttpxScimClient(BaseSyncSCIMClient):
    """scim2-client's engine interface over httpx (the project's HTTP client)."""

    def __init__(self, client: httpx.Client, **kwargs):
        super().__init__(**kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        url = self.client.build_request("GET", endpoint).url
        base = self.client.base_url
        return url.scheme == base.scheme and url.host == base.host and url.port == base.port \
            and url.raw_path.startswith(base.raw_path)

    def _parse_json(self, response):
        return response.json()

    def request(self, method: str, url: str, **kwargs):
        try:
            return self.client.request(method, url, **kwargs)
        except httpx.RequestError as exc:
            raise RequestNetworkException() from exc


def _run_checker(base_url: str, token: str, **options):
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        return check_server(HttpxScimClient(http), **options)


def _problems(results, *, allowed_skips=ALLOWED_SKIPS) -> list[str]:
    problems = []
    for result in results:
        if result.status == Status.SUCCESS:
            continue
        if result.status == Status.SKIPPED and (result.title, result.reason) in allowed_skips:
            continue
        problems.append(f"{result.status.name} {result.resource_type or ''} {result.title}: {result.reason} "
                        f"{str(result.data)[:400] if result.data is not None else ''}")
    return problems


def test_scim2_tester_reports_no_failures(scim_live_org, live_server_url, django_db_blocker):
    results = _run_checker(f"{live_server_url}/o/{scim_live_org.slug}/scim/v2", scim_live_org.scim_token)

    assert not _problems(results), "\n".join(_problems(results))
    titles = Counter(result.title for result in results if result.status == Status.SUCCESS)
    # The whole suite ran, for both resource types: discovery, CRUD and every PATCH operation.
    for title in ("service_provider_config_endpoint", "query_all_resource_types", "access_schema_by_id",
                  "random_url", "object_creation", "object_query", "object_query_without_id",
                  "object_query_with_attributes", "object_list_with_attributes", "object_replacement",
                  "object_deletion", "check_add_attribute", "check_remove_attribute", "check_replace_attribute"):
        assert titles[title] >= 1, f"{title} did not succeed: {titles}"
    for resource_type in ("User", "Group"):
        assert {r.title for r in results if r.resource_type == resource_type and r.status == Status.SUCCESS} >= {
            "object_creation", "object_deletion", "check_add_attribute", "check_remove_attribute",
            "check_replace_attribute"}, resource_type
    with django_db_blocker.unblock():
        # The checker cleans up after itself: what it made was deleted through SCIM, memberships too.
        assert not ScimUser.objects.filter(organization=scim_live_org.organization).exists()
        assert set(Membership.objects.filter(organization=scim_live_org.organization)
                   .values_list("user_id", flat=True)) == {scim_live_org.owner.pk}


def test_scim2_tester_discovers_the_service_on_the_bare_host(scim_live_org, live_server_url):
    """The token names the organization: `/scim/v2/` is the same service provider (the CRUD
    checks above run on the organization's URL; tests of the bare host are in test_scim_isolation)."""
    results = _run_checker(f"{live_server_url}/scim/v2", scim_live_org.scim_token, include_tags={"discovery", "misc"})
    filtered = {(r.title, r.reason) for r in results if r.reason == "Skipped due to tag filtering"}
    assert not _problems(results, allowed_skips=ALLOWED_SKIPS | filtered), "\n".join(_problems(results))
    assert {r.title for r in results if r.status == Status.SUCCESS} >= {
        "service_provider_config_endpoint", "query_resource_type_by_id", "access_schema_by_id", "random_url"}


def test_sdk_reads_and_updates_scim_settings(scim_live_org, live_server_url, django_db_blocker):
    client = LabelStudio(base_url=live_server_url, api_key=scim_live_org.owner_key)
    assert client.sso.scim.get().roles_groups == []

    updated = client.sso.scim.update(roles_groups=[["Manager", "editors"], ["Annotator", "staff"]],
                                     workspaces_groups=[], projects_groups=[])
    assert updated.roles_groups == [["Manager", "editors"], ["Annotator", "staff"]]
    read = client.sso.scim.get()
    assert read.roles_groups == [["Manager", "editors"], ["Annotator", "staff"]]
    assert read.scim_base_url == f"{live_server_url}/o/{scim_live_org.slug}/scim/v2/"
    assert read.scim_bare_url == f"{live_server_url}/scim/v2/"

    with pytest.raises(ApiError) as refused:
        client.sso.scim.update(roles_groups=[["Owner", "root"]])
    assert refused.value.status_code == 400 and "roles_groups" in str(refused.value.body)
    with django_db_blocker.unblock():
        assert ScimSettings.objects.get(organization=scim_live_org.organization).roles_groups == [
            ["Manager", "editors"], ["Annotator", "staff"]]
        assert Membership.objects.get(user=scim_live_org.owner).role == Role.OWNER
