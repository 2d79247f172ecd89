"""The activity log: what the middleware records of each API call, and GET /api/activity-logs/."""

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import DatabaseError
from django.utils import timezone
from django_tenants.utils import tenant_context

from labeling.models import ActivityLog
from labeling.tasks import purge_activity_log, purge_activity_logs

pytestmark = pytest.mark.django_db


def _log_of(organization) -> list[ActivityLog]:
    with tenant_context(organization):
        return list(ActivityLog.objects.order_by("id"))


def _last_entry(world) -> ActivityLog:
    return _log_of(world.org_a)[-1]


def test_a_call_is_recorded_with_who_what_and_where(world, client):
    project_id = world.project_a.pk
    response = client.get(
        f"/o/org-a/api/projects/{project_id}/?with_counts=1",
        headers={"Authorization": f"Token {world.owner_a.legacy_key}", "User-Agent": "sdk-test/1.0",
                 "Referer": "https://app.example.test/projects"},
    )
    assert response.status_code == 200
    entry = _last_entry(world)
    assert (entry.user_id, entry.email) == (world.owner_a.user.pk, "owner@a.test")
    assert (entry.request_method, entry.request_url) == ("GET", f"/api/projects/{project_id}/?with_counts=1")
    assert (entry.response_code, entry.project_id) == ("200", project_id)
    assert entry.duration is not None and entry.duration >= 0
    assert (entry.ip_address, entry.user_agent) == ("127.0.0.1", "sdk-test/1.0")
    assert entry.http_referer == "https://app.example.test/projects"
    assert entry.user_session is None  # a token, not a browser session
    assert entry.extra_data is None


def test_one_row_per_call_and_project_from_the_query(world, owner):
    before = len(_log_of(world.org_a))
    owner("get", f"/api/tasks/?project={world.project_a.pk}")
    owner("get", "/api/projects/")
    entries = _log_of(world.org_a)[before:]
    assert [e.request_url for e in entries] == [f"/api/tasks/?project={world.project_a.pk}", "/api/projects/"]
    assert [e.project_id for e in entries] == [world.project_a.pk, None]


def test_credentials_in_the_query_string_never_reach_the_log(world, owner):
    owner("get", "/api/projects/?title=keep-me&token=tok-123&api_key=key-456&client_secret=sec-789"
                 "&password=pw-000&access_token=acc-111&X-Amz-Signature=sig-222")
    entry = _last_entry(world)
    assert entry.request_url == "/api/projects/?title=keep-me"
    with tenant_context(world.org_a):
        stored = str(list(ActivityLog.objects.values()))
    for leaked in ("tok-123", "key-456", "sec-789", "pw-000", "acc-111", "sig-222"):
        assert leaked not in stored


def test_the_request_body_is_not_stored(world, owner):
    response = owner("post", "/api/projects/", {"title": "body-marker-title", "description": "body-marker-desc"})
    assert response.status_code == 201
    entry = _last_entry(world)
    assert (entry.request_method, entry.request_url, entry.response_code) == ("POST", "/api/projects/", "201")
    with tenant_context(world.org_a):
        stored = str(list(ActivityLog.objects.filter(pk=entry.pk).values()))
    assert "body-marker" not in stored


def test_client_errors_are_recorded_with_their_code(world, owner, api):
    owner("get", "/api/projects/987654/")
    assert (_last_entry(world).response_code, _last_entry(world).project_id) == ("404", 987654)
    owner("post", "/api/projects/", {"maximum_annotations": "many"})
    assert (_last_entry(world).request_method, _last_entry(world).response_code) == ("POST", "400")
    api.call("get", "/o/org-a/api/activity-logs/", token=world.annotator_a.legacy_key)
    entry = _last_entry(world)
    assert (entry.email, entry.response_code) == ("annotator@a.test", "403")


def test_browser_sessions_record_a_session_prefix(world, client):
    client.force_login(world.owner_a.user)
    assert client.get("/o/org-a/api/projects/").status_code == 200
    entry = _last_entry(world)
    assert entry.user_session == client.session.session_key[:8]
    assert entry.email == "owner@a.test"


def test_forwarded_for_is_believed_only_behind_a_trusted_proxy(world, client, settings):
    headers = {"Authorization": f"Token {world.owner_a.legacy_key}", "X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
    client.get("/o/org-a/api/projects/", headers=headers)
    assert _last_entry(world).ip_address == "127.0.0.1"
    settings.ACTIVITY_LOG_TRUSTED_PROXIES = 1
    client.get("/o/org-a/api/projects/", headers=headers)
    assert _last_entry(world).ip_address == "203.0.113.9"  # what our one proxy saw; the left entry is hearsay


def test_nothing_is_recorded_when_disabled(world, owner, settings):
    settings.ACTIVITY_LOG_ENABLED = False
    before = len(_log_of(world.org_a))
    owner("get", "/api/projects/")
    assert len(_log_of(world.org_a)) == before


def test_a_failure_to_record_never_breaks_the_request(world, owner, monkeypatch):
    from labeling import activity

    def broken_insert(row):
        raise DatabaseError("the log table is unavailable")

    monkeypatch.setattr(activity, "_insert", broken_insert)
    response = owner("get", "/api/projects/")
    assert response.status_code == 200 and response.json()["count"] >= 1


def test_only_owners_and_administrators_read_the_log(world, owner, api):
    assert api.call("get", "/o/org-a/api/activity-logs/", token=world.annotator_a.legacy_key).status_code == 403
    response = owner("get", "/api/activity-logs/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data", "recordsTotal", "recordsFiltered"}
    item = body["data"][0]
    assert set(item) >= {"id", "datetime", "user_id", "email", "request_method", "request_url", "response_code",
                         "duration", "ip_address", "user_agent", "http_referer", "project_id",
                         "workspace_owner_id", "organization_id", "user_session", "extra_data"}
    assert item["organization_id"] == world.org_a.pk


def test_organizations_never_see_each_others_calls(world, api):
    api.call("get", "/api/projects/?marker=from-b", token=world.owner_b.legacy_key)  # bare: routed to org B
    api.call("get", "/o/org-a/api/projects/?marker=from-b-on-a", token=world.owner_b.legacy_key)  # refused
    assert not [e for e in _log_of(world.org_a) if e.email == "owner@b.test" or "from-b" in e.request_url]
    assert [e.request_url for e in _log_of(world.org_b)][-1] == "/api/projects/?marker=from-b"

    api.call("get", "/o/org-a/api/projects/?marker=a-only", token=world.owner_a.legacy_key)
    for path in ("/api/activity-logs/?page_size=1000", "/o/org-a/api/activity-logs/"):
        response = api.call("get", path, token=world.owner_b.legacy_key)
        assert b"a-only" not in response.content and b"owner@a.test" not in response.content
    assert api.call("get", "/o/org-a/api/activity-logs/", token=world.owner_b.legacy_key).status_code in (403, 404)


def test_filters_paging_and_ordering(world, owner, api):
    with tenant_context(world.org_a):
        ActivityLog.objects.all().delete()
    project_id = world.project_a.pk
    owner("get", f"/api/projects/{project_id}/tasks/")
    owner("post", "/api/projects/", {"title": "Filtered"})
    api.call("get", "/o/org-a/api/projects/", token=world.annotator_a.legacy_key)
    owner("get", "/api/templates/")

    def logs(query=""):
        response = owner("get", f"/api/activity-logs/{query}")
        assert response.status_code == 200, response.content
        return response.json()

    def urls(query=""):
        """The URLs found, leaving out the reads of the log (each is logged after it answered)."""
        data = logs(f"?page_size=1000&{query}")["data"]
        return [e["request_url"] for e in data if not e["request_url"].startswith("/api/activity-logs")]

    everything = logs()
    assert everything["recordsTotal"] == everything["recordsFiltered"] == 4
    assert [e["request_url"] for e in everything["data"]] == [
        "/api/templates/", "/api/projects/", "/api/projects/", f"/api/projects/{project_id}/tasks/"]
    assert len(logs()["data"]) == 5  # the first read is there now

    assert urls("method=POST") == ["/api/projects/"]
    assert len(urls("method=all")) == 4
    assert urls(f"user={world.annotator_a.user.pk}") == ["/api/projects/"]
    assert urls(f"project_id={project_id}") == [f"/api/projects/{project_id}/tasks/"]
    assert urls(f"project={project_id}") == [f"/api/projects/{project_id}/tasks/"]
    assert urls(urlencode({"search": "projects AND tasks"})) == [f"/api/projects/{project_id}/tasks/"]
    assert urls(urlencode({"search": "templates or tasks"})) == ["/api/templates/",
                                                                  f"/api/projects/{project_id}/tasks/"]

    today = timezone.now().date()
    assert len(urls(urlencode({"start_date": today - timedelta(days=1), "end_date": today}))) == 4
    assert urls(urlencode({"end_date": today - timedelta(days=1)})) == []
    assert urls(urlencode({"start_date": (timezone.now() + timedelta(hours=1)).isoformat()})) == []

    first = logs("?page_size=2&page=1&ordering=id")
    second = logs("?page_size=2&page=2&ordering=id")
    assert [e["request_url"] for e in first["data"] + second["data"]][:4] == [
        f"/api/projects/{project_id}/tasks/", "/api/projects/", "/api/projects/", "/api/templates/"]
    assert len(first["data"]) == 2 and first["recordsFiltered"] > 2
    datatables = logs("?start=1&length=1&ordering=id")
    assert [e["request_url"] for e in datatables["data"]] == ["/api/projects/"]
    assert owner("get", "/api/activity-logs/?page=500&page_size=100").status_code == 404

    for query, field in (("?method=TRACE", "method"), ("?start_date=yesterday", "start_date"),
                         ("?ordering=email", "ordering"), ("?user=abc", "user")):
        response = owner("get", f"/api/activity-logs/{query}")
        assert response.status_code == 400 and field in response.json()["validation_errors"]


def test_retention_purges_old_entries_only(world, owner, settings):
    settings.ACTIVITY_LOG_RETENTION_DAYS = 30
    owner("get", "/api/projects/?age=old")
    owner("get", "/api/projects/?age=new")
    with tenant_context(world.org_a):
        ActivityLog.objects.filter(request_url__endswith="age=old").update(
            datetime=timezone.now() - timedelta(days=31))
    with tenant_context(world.org_b):
        ActivityLog.objects.create(request_method="GET", request_url="/api/b-old", response_code="200")
        ActivityLog.objects.filter(request_url="/api/b-old").update(datetime=timezone.now() - timedelta(days=31))

    assert purge_activity_log.run(world.org_a.pk) >= 1
    urls = [e.request_url for e in _log_of(world.org_a)]
    assert "/api/projects/?age=new" in urls and "/api/projects/?age=old" not in urls
    assert "/api/b-old" in [e.request_url for e in _log_of(world.org_b)]  # another organization's job

    # The beat job fans out one purge per organization (run in-process here).
    from platform_core.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        assert purge_activity_logs.apply().get() >= 2
    finally:
        app.conf.task_always_eager = saved
    assert "/api/b-old" not in [e.request_url for e in _log_of(world.org_b)]
    assert "/api/projects/?age=new" in [e.request_url for e in _log_of(world.org_a)]
