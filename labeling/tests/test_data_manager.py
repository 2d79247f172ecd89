"""The data manager: filters, ordering and selection on /api/tasks/, views (tabs), actions, project state."""

import json
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from django_tenants.utils import tenant_context

from conftest import ocr_result
from labeling import services
from labeling.models import (
    Annotation,
    AnnotationDraft,
    AnnotationReview,
    DataManagerView,
    FileUpload,
    Prediction,
    Task,
    TaskAssignment,
)
from labeling.tests.project_access import add_project_members

pytestmark = pytest.mark.django_db


@pytest.fixture
def dm(world):
    """Five tasks whose columns differ in known ways. Returns the project and task ids by name."""
    owner_user, annotator_user = world.owner_a.user, world.annotator_a.user
    with tenant_context(world.org_a):
        project = services.project_create(user=owner_user, fields={"title": "DM project"})
        imported = services.tasks_import(project=project, user=owner_user, tasks=[
            {"data": {"ocr": "1.png", "city": "Paris", "n": 3, "flag": True, "when": "2021-01-05",
                      "tags": ["a", "b"]}},
            {"data": {"ocr": "2.png", "city": "Berlin", "n": 10, "flag": False, "when": "2022-06-01"}},
            {"data": {"ocr": "3.png", "city": "paris", "n": "7", "flag": True}},
            {"data": {"ocr": "4.png", "city": "Rome", "n": "many"}},
            {"data": {"ocr": "5.png"}},
        ])
        t = dict(zip(["t1", "t2", "t3", "t4", "t5"], imported.task_ids, strict=True))
        tasks = {name: Task.objects.get(pk=pk) for name, pk in t.items()}
        services.annotation_create(task=tasks["t1"], user=owner_user, result=ocr_result("r1", "Hello"),
                                   ground_truth=True)
        reviewed = services.annotation_create(task=tasks["t2"], user=annotator_user, result=ocr_result("r1", "World"))
        services.annotation_create(task=tasks["t2"], user=owner_user, result=[], was_cancelled=True)
        services.prediction_create(task=tasks["t3"], result=ocr_result("p1", "Predicted"), score=0.9,
                                   model_version="v1")
        services.prediction_create(task=tasks["t1"], result=ocr_result("p2", "Guess"), score=0.3, model_version="v2")
        AnnotationReview.objects.create(annotation=reviewed, created_by=owner_user, accepted=True)
        TaskAssignment.objects.create(task=tasks["t5"], assignee=annotator_user, type=TaskAssignment.Type.ANNOTATE)
        TaskAssignment.objects.create(task=tasks["t1"], assignee=annotator_user, type=TaskAssignment.Type.REVIEW)
        Task.objects.filter(pk=t["t4"]).update(comment_count=2, unresolved_comment_count=1)
        upload = FileUpload.objects.create(project=project, file="uploads/2024/01/01/scan-042.pdf",
                                           original_name="scan-042.pdf")
        Task.objects.filter(pk=t["t5"]).update(file_upload=upload)
        for year, name in enumerate(t, start=2021):
            Task.objects.filter(pk=t[name]).update(created_at=datetime(year, 1, 1, tzinfo=UTC))
    add_project_members(world, project.pk, world.annotator_a)
    return {"project": project.pk, **t}


def _item(column, operator, kind, value):
    return {"filter": f"filter:tasks:{column}", "operator": operator, "type": kind, "value": value}


def _listed(owner, dm, *, filters=None, ordering=None, selected=None, extra=""):
    query = {"filters": filters, "ordering": ordering or [],
             "selectedItems": selected or {"all": True, "excluded": []}}
    response = owner("get", f"/api/tasks/?project={dm['project']}&page_size=100{extra}"
                            f"&query={quote(json.dumps(query))}")
    assert response.status_code == 200, response.content
    return response.json()


def _names(dm, ids) -> list[str]:
    by_id = {pk: name for name, pk in dm.items() if name != "project"}
    return [by_id[pk] for pk in ids]


def _filtered(owner, dm, *items, conjunction="and") -> set[str]:
    body = _listed(owner, dm, filters={"conjunction": conjunction, "items": list(items)})
    return set(_names(dm, [task["id"] for task in body["tasks"]]))


CASES = [
    # (column, operator, type, value (a callable takes the task ids), expected tasks)
    ("id", "greater", "Number", lambda t: t["t3"], {"t4", "t5"}),
    ("id", "in", "Number", lambda t: {"min": t["t2"], "max": t["t4"]}, {"t2", "t3", "t4"}),
    ("id", "not_in_list", "Number", lambda t: [t["t1"], t["t2"]], {"t3", "t4", "t5"}),
    ("inner_id", "equal", "Number", 1, {"t1"}),
    ("total_annotations", "greater", "Number", 0, {"t1", "t2"}),
    ("total_annotations", "greater", "Number", 0.5, {"t1", "t2"}),
    ("total_annotations", "less", "Number", "0.5", {"t3", "t4", "t5"}),
    ("cancelled_annotations", "greater_or_equal", "Number", 1, {"t2"}),
    ("total_predictions", "equal", "Number", 1, {"t1", "t3"}),
    ("data.n", "greater", "Number", 5, {"t2", "t3"}),
    ("data.n", "less_or_equal", "Number", 3, {"t1"}),
    ("data.n", "not_equal", "Number", 10, {"t1", "t3", "t4", "t5"}),
    ("data.city", "contains", "String", "PAR", {"t1", "t3"}),
    ("data.city", "equal", "String", "Paris", {"t1"}),
    ("data.city", "not_equal", "String", "Paris", {"t2", "t3", "t4", "t5"}),
    ("data.city", "starts_with", "String", "ro", {"t4"}),
    ("data.city", "regex", "String", "^[BR]", {"t2", "t4"}),
    ("data.city", "empty", "String", True, {"t5"}),
    ("data.city", "not_exists", "String", None, {"t5"}),
    ("data.ocr", "ends_with", "Image", "3.png", {"t3"}),
    ("data.flag", "equal", "Boolean", True, {"t1", "t3"}),
    ("data.flag", "not_equal", "Boolean", True, {"t2", "t4", "t5"}),
    ("data.when", "greater", "Datetime", "2021-06-01T00:00:00.000Z", {"t2"}),
    ("data.tags", "contains", "List", "a", {"t1"}),
    ("created_at", "less", "Datetime", "2022-06-01T00:00:00.000Z", {"t1", "t2"}),
    ("created_at", "in", "Datetime", {"min": "2022-06-01T00:00:00.000Z", "max": "2024-06-01"}, {"t3", "t4"}),
    ("completed_at", "empty", "Datetime", True, {"t3", "t4", "t5"}),
    ("completed_at", "empty", "Datetime", False, {"t1", "t2"}),
    ("updated_at", "greater", "Datetime", "2000-01-01T00:00:00Z", {"t1", "t2", "t3", "t4", "t5"}),
    ("is_labeled", "equal", "Boolean", False, {"t3", "t4", "t5"}),
    ("annotations_results", "contains", "String", "hello", {"t1"}),
    ("annotations_results", "not_contains", "String", "hello", {"t2", "t3", "t4", "t5"}),
    ("annotations_results", "empty", "String", False, {"t1", "t2"}),
    ("predictions_results", "contains", "String", "Predicted", {"t3"}),
    ("predictions_score", "greater", "Number", 0.5, {"t3"}),
    ("predictions_model_versions", "equal", "String", "v1", {"t3"}),
    ("predictions_model_versions", "in_list", "List", ["v1", "v2"], {"t1", "t3"}),
    ("file_upload", "contains", "String", "scan-042", {"t5"}),
    ("ground_truth", "equal", "Boolean", True, {"t1"}),
    ("comments", "greater", "Number", 0, {"t4"}),
    ("unresolved_comment_count", "equal", "Number", 1, {"t4"}),
    ("reviewed", "equal", "Boolean", True, {"t2"}),
    ("reviews_accepted", "equal", "Number", 1, {"t2"}),
]


@pytest.mark.parametrize(("column", "operator", "kind", "value", "expected"), CASES,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_each_column_filters_to_the_known_tasks(owner, dm, column, operator, kind, value, expected):
    value = value(dm) if callable(value) else value
    assert _filtered(owner, dm, _item(column, operator, kind, value)) == expected


def test_odd_data_never_fails_a_filter(owner, dm, world):
    with tenant_context(world.org_a):
        project = Task.objects.get(pk=dm["t1"]).project
        odd = services.tasks_import(project=project, user=world.owner_a.user, tasks=[
            {"data": {"ocr": "a.png", "n": "1e999", "it's \"odd\"": 1}},
            {"data": {"ocr": "b.png", "n": " 12 "}},
            {"data": {"ocr": "c.png", "n": "NaN"}},
            {"data": {"ocr": "d.png", "n": "9e99999"}},
            {"data": {"ocr": "e.png", "n": {"nested": 1}}},
        ]).task_ids
    greater = _listed(owner, dm, filters={"conjunction": "and", "items": [_item("data.n", "greater", "Number", 11)]})
    assert {task["id"] for task in greater["tasks"]} == {odd[0], odd[1]}
    quoted = _item('data.it\'s "odd"', "equal", "Number", 1)
    assert [task["id"] for task in _listed(owner, dm, filters={"conjunction": "and", "items": [quoted]})["tasks"]] == [
        odd[0]]
    ordered = _listed(owner, dm, ordering=["-tasks:data.n"])["tasks"]
    assert [task["id"] for task in ordered][:3] == [odd[0], odd[1], dm["t2"]]


def test_people_columns_take_user_ids(owner, dm, world):
    annotator_id, owner_id = world.annotator_a.user.pk, world.owner_a.user.pk
    # Annotated by the annotator (t2) or assigned to them to annotate (t5).
    assert _filtered(owner, dm, _item("annotators", "contains", "List", annotator_id)) == {"t2", "t5"}
    assert _filtered(owner, dm, _item("annotators", "not_contains", "List", [owner_id])) == {"t3", "t4", "t5"}
    assert _filtered(owner, dm, _item("reviewers", "contains", "List", owner_id)) == {"t2"}
    # The annotator is t1's assigned reviewer.
    assert _filtered(owner, dm, _item("reviewers", "contains", "List", annotator_id)) == {"t1"}


def test_and_or_conjunctions(owner, dm):
    paris = _item("data.city", "equal", "String", "Paris")
    big = _item("data.n", "greater", "Number", 5)
    assert _filtered(owner, dm, paris, big, conjunction="or") == {"t1", "t2", "t3"}
    assert _filtered(owner, dm, paris, big, conjunction="and") == set()
    flagged = _item("data.flag", "equal", "Boolean", True)
    unannotated = _item("total_annotations", "equal", "Number", 0)
    assert _filtered(owner, dm, flagged, unannotated) == {"t3"}


def test_ordering_on_a_data_field_and_on_total_annotations(owner, dm):
    def order(*ordering):
        return _names(dm, [task["id"] for task in _listed(owner, dm, ordering=list(ordering))["tasks"]])

    # Numbers and numeric strings by value (3, "7", 10), then other text; tasks without the key last.
    assert order("tasks:data.n") == ["t1", "t3", "t2", "t4", "t5"]
    assert order("-tasks:data.n") == ["t2", "t3", "t1", "t4", "t5"]
    cities = _listed(owner, dm, ordering=["-tasks:data.city"], selected={"all": True, "excluded": [dm["t3"]]})
    assert _names(dm, [task["id"] for task in cities["tasks"]]) == ["t4", "t1", "t2", "t5"]
    assert order("tasks:total_annotations") == ["t3", "t4", "t5", "t1", "t2"]
    assert order("-tasks:total_annotations") == ["t1", "t2", "t3", "t4", "t5"]
    assert order("-tasks:id") == ["t5", "t4", "t3", "t2", "t1"]
    # Pages follow the ordering.
    query = quote(json.dumps({"ordering": ["-tasks:id"]}))
    second = owner("get", f"/api/tasks/?project={dm['project']}&page=2&page_size=2&query={query}").json()
    assert _names(dm, [task["id"] for task in second["tasks"]]) == ["t3", "t2"]
    assert second["total"] == 5


def test_selected_items_excluded_and_included_with_a_filter(owner, dm):
    excluded = _listed(owner, dm, selected={"all": True, "excluded": [dm["t1"], dm["t2"]]})
    assert set(_names(dm, [task["id"] for task in excluded["tasks"]])) == {"t3", "t4", "t5"}
    assert excluded["total"] == 3
    paris = {"conjunction": "and", "items": [_item("data.city", "contains", "String", "par")]}
    body = _listed(owner, dm, filters=paris, selected={"all": False, "included": [dm["t1"], dm["t2"]]})
    assert _names(dm, [task["id"] for task in body["tasks"]]) == ["t1"]
    assert (body["total"], body["total_annotations"], body["total_predictions"]) == (1, 1, 1)
    # A filter whose value is still null (the DM saves it while it is being typed) keeps every task.
    pending = _listed(owner, dm, filters={"conjunction": "and", "items": [_item("id", "greater", "Number", None)]})
    assert pending["total"] == 5
    # page_size=-1, the legacy SDK's default, is every task on one page.
    everything = owner("get", f"/api/tasks/?project={dm['project']}&page_size=-1").json()
    assert len(everything["tasks"]) == 5


@pytest.mark.parametrize(
    ("query", "fragments"),
    [
        ({"filters": {"conjunction": "and", "items": [_item("colour", "equal", "String", "red")]}},
         ["items[0]", "filter:tasks:colour", "unknown column"]),
        ({"filters": {"conjunction": "and", "items": [_item("id", "bigger", "Number", 1)]}},
         ["items[0]", "filter:tasks:id", "unknown operator 'bigger'"]),
        ({"filters": {"conjunction": "and", "items": [_item("id", "equal", "Number", 1),
                                                      _item("data.n", "greater", "Number", "ten")]}},
         ["items[1]", "filter:tasks:data.n", "must be a number", "'ten'"]),
        ({"filters": {"conjunction": "and", "items": [_item("data.city", "regex", "String", "(unclosed")]}},
         ["items[0]", "filter:tasks:data.city", "invalid regular expression"]),
        ({"filters": {"conjunction": "and", "items": [_item("created_at", "less", "Datetime", "yesterday")]}},
         ["items[0]", "filter:tasks:created_at", "ISO 8601"]),
        ({"filters": {"conjunction": "xor", "items": []}}, ["filters", "xor"]),
        ({"ordering": ["tasks:colour"]}, ["ordering", "colour"]),
        ({"selectedItems": {"all": False, "included": ["x"]}}, ["selectedItems", "'x'"]),
    ],
)
def test_bad_queries_are_400_naming_the_item(owner, dm, query, fragments):
    response = owner("get", f"/api/tasks/?project={dm['project']}&query={quote(json.dumps(query))}")
    assert response.status_code == 400, response.content
    text = json.dumps(response.json())
    for fragment in fragments:
        assert fragment in text, (fragment, text)


def test_malformed_query_json_is_400(owner, dm):
    response = owner("get", f"/api/tasks/?project={dm['project']}&query={quote('{filters: nope')}")
    assert response.status_code == 400
    assert "query" in response.json()["validation_errors"]


def test_query_count_per_page_is_fixed_with_filters_and_ordering(owner, world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    project = owner("post", "/api/projects/", {"title": "Many tasks"}).json()
    owner("post", f"/api/projects/{project['id']}/import",
          [{"data": {"ocr": f"{n}.png", "n": n}, "annotations": [{"result": ocr_result()}],
            "predictions": [{"result": ocr_result("p"), "score": n / 100, "model_version": "v1"}]}
           for n in range(60)])
    query = quote(json.dumps({
        "filters": {"conjunction": "and", "items": [
            _item("data.n", "greater_or_equal", "Number", 0),
            _item("annotations_results", "contains", "String", "Hello"),
            _item("predictions_score", "less", "Number", 1)]},
        "ordering": ["-tasks:data.n"],
    }))
    counts = {}
    for size in (5, 60):
        with CaptureQueriesContext(connection) as queries:
            response = owner("get", f"/api/tasks/?project={project['id']}&page_size={size}&fields=all&query={query}")
        tasks = response.json()["tasks"]
        assert len(tasks) == size
        assert [task["data"]["n"] for task in tasks] == list(range(59, 59 - size, -1))
        counts[size] = len(queries)
    assert counts[5] == counts[60], counts


# --- views ---------------------------------------------------------------------------------------

def test_views_crud_order_and_reset(owner, dm):
    paris = {"conjunction": "and", "items": [_item("data.city", "contains", "String", "par")]}
    created = owner("post", "/api/dm/views/", {"project": dm["project"], "data": {
        "title": "Paris", "filters": paris, "ordering": ["-tasks:id"], "hiddenColumns": {"explore": ["tasks:inner_id"]},
    }})
    assert created.status_code == 201, created.content
    view = created.json()
    assert view["project"] == dm["project"] and view["ordering"] == ["-tasks:id"]
    assert view["data"]["hiddenColumns"] == {"explore": ["tasks:inner_id"]}
    assert view["filter_group"]["conjunction"] == "and"
    assert view["filter_group"]["filters"][0]["column"] == "filter:tasks:data.city"

    listed = owner("get", f"/api/tasks/?view={view['id']}").json()
    assert _names(dm, [task["id"] for task in listed["tasks"]]) == ["t3", "t1"]

    elsewhere = owner("post", "/api/projects/", {"title": "Elsewhere"}).json()
    assert owner("get", f"/api/tasks/?project={elsewhere['id']}&view={view['id']}").status_code == 400
    assert owner("get", "/api/tasks/?view=999999").status_code == 404

    def listed_views():
        return [v["id"] for v in owner("get", f"/api/dm/views/?project={dm['project']}").json()]

    second = owner("post", "/api/dm/views/", {"project": dm["project"], "data": {"title": "All"}}).json()
    assert listed_views() == [view["id"], second["id"]]
    assert owner("get", f"/api/dm/views/{view['id']}/").json()["data"]["title"] == "Paris"

    patched = owner("patch", f"/api/dm/views/{view['id']}/", {"data": {
        "title": "Labeled", "filters": {"conjunction": "and", "items": [_item("is_labeled", "equal", "Boolean", True)]},
    }})
    assert patched.status_code == 200, patched.content
    assert patched.json()["data"]["title"] == "Labeled" and patched.json()["ordering"] == []
    listed = owner("get", f"/api/tasks/?project={dm['project']}&view={view['id']}").json()
    assert _names(dm, [task["id"] for task in listed["tasks"]]) == ["t1", "t2"]

    put = owner("put", f"/api/dm/views/{second['id']}", {"data": {"title": "Renamed"}, "project": dm["project"]})
    assert put.status_code == 200 and put.json()["data"]["title"] == "Renamed"

    reordered = owner("post", "/api/dm/views/order/", {"project": dm["project"], "ids": [second["id"], view["id"]]})
    assert reordered.status_code == 200, reordered.content
    assert listed_views() == [second["id"], view["id"]]
    assert owner("post", "/api/dm/views/order/", {"project": dm["project"], "ids": [999999]}).status_code == 400

    assert owner("delete", f"/api/dm/views/{second['id']}/").status_code == 204
    assert owner("get", f"/api/dm/views/{second['id']}/").status_code == 404
    owner("post", "/api/dm/views/", {"project": dm["project"], "data": {"title": "Another"}})
    assert owner("delete", f"/api/dm/views/reset/?project={dm['project']}").status_code == 204
    assert owner("get", f"/api/dm/views/?project={dm['project']}").json() == []


def test_view_with_bad_filters_is_400_and_not_stored(owner, dm, world):
    bad = {"conjunction": "and", "items": [_item("id", "equal", "Number", 1), _item("nope", "equal", "String", "x")]}
    response = owner("post", "/api/dm/views/", {"project": dm["project"], "data": {"title": "Bad", "filters": bad}})
    assert response.status_code == 400
    assert "items[1] (filter:tasks:nope)" in json.dumps(response.json())
    assert owner("post", "/api/dm/views/", {"data": {"title": "No project"}}).status_code == 400
    view = owner("post", "/api/dm/views/", {"project": dm["project"], "data": {"title": "Good"}}).json()
    refused = owner("patch", f"/api/dm/views/{view['id']}/", {"data": {"filters": bad}})
    assert refused.status_code == 400
    with tenant_context(world.org_a):
        assert DataManagerView.objects.filter(project_id=dm["project"]).count() == 1
        assert DataManagerView.objects.get(pk=view["id"]).filter_group is None


def test_an_annotator_may_not_change_others_views_or_reset(owner, annotator, dm):
    view = owner("post", "/api/dm/views/", {"project": dm["project"], "data": {"title": "Owner's"}}).json()
    assert annotator("get", f"/api/dm/views/{view['id']}/").status_code == 200
    assert annotator("patch", f"/api/dm/views/{view['id']}/", {"data": {"title": "Mine"}}).status_code == 403
    assert annotator("delete", f"/api/dm/views/{view['id']}/").status_code == 403
    assert annotator("delete", f"/api/dm/views/reset/?project={dm['project']}").status_code == 403
    own = annotator("post", "/api/dm/views/", {"project": dm["project"], "data": {"title": "Annotator's"}})
    assert own.status_code == 201
    assert annotator("delete", f"/api/dm/views/{own.json()['id']}/").status_code == 204


# --- actions -------------------------------------------------------------------------------------

def _run(call, dm, action, body):
    return call("post", f"/api/dm/actions/?id={action}&project={dm['project']}", body)


def _select(*ids):
    return {"selectedItems": {"all": False, "included": list(ids)}}


def test_actions_list_and_forms(owner, annotator, dm):
    actions = owner("get", f"/api/dm/actions/?project={dm['project']}").json()
    by_id = {action["id"]: action for action in actions}
    assert {"delete_tasks", "delete_tasks_annotations", "delete_tasks_predictions", "predictions_to_annotations",
            "delete_ground_truths", "remove_duplicates"} <= set(by_id)
    assert set(by_id["delete_tasks"]) >= {"id", "title", "order", "permission", "experimental", "dialog"}
    assert by_id["delete_tasks"]["dialog"]["type"] == "confirm"
    form = by_id["predictions_to_annotations"]["dialog"]["form"]
    assert form[0]["fields"][0]["options"] == ["v1", "v2"]
    assert annotator("get", f"/api/dm/actions/?project={dm['project']}").json() == []
    assert owner("get", f"/api/dm/actions/predictions_to_annotations/form/?project={dm['project']}").json() == form
    assert owner("get", f"/api/dm/actions/delete_tasks/form/?project={dm['project']}").json() == []
    assert owner("get", f"/api/dm/actions/launch_rockets/form/?project={dm['project']}").status_code == 404
    assert owner("get", "/api/dm/actions/").status_code == 400


def test_delete_tasks_with_filters_and_selection(owner, dm, world):
    body = {"filters": {"conjunction": "and", "items": [_item("data.city", "contains", "String", "par")]},
            "selectedItems": {"all": True, "excluded": [dm["t3"]]}}
    response = _run(owner, dm, "delete_tasks", body)
    assert response.status_code == 200, response.content
    assert response.json()["processed_items"] == 1
    with tenant_context(world.org_a):
        remaining = set(Task.objects.filter(project_id=dm["project"]).values_list("pk", flat=True))
        assert remaining == {dm["t2"], dm["t3"], dm["t4"], dm["t5"]}
        assert not Annotation.objects.filter(task_id=dm["t1"]).exists()
        assert not Prediction.objects.filter(task_id=dm["t1"]).exists()


def test_delete_annotations_updates_counters(owner, dm, world):
    with tenant_context(world.org_a):
        AnnotationDraft.objects.create(task_id=dm["t2"], user=world.owner_a.user, result=[])
    response = _run(owner, dm, "delete_tasks_annotations", _select(dm["t1"], dm["t2"]))
    assert response.status_code == 200, response.content
    assert response.json()["processed_items"] == 3
    with tenant_context(world.org_a):
        assert not Annotation.objects.filter(project_id=dm["project"]).exists()
        assert not AnnotationDraft.objects.filter(task_id=dm["t2"]).exists()
        counters = set(Task.objects.filter(pk__in=[dm["t1"], dm["t2"]])
                       .values_list("total_annotations", "cancelled_annotations", "is_labeled"))
        assert counters == {(0, 0, False)}


def test_delete_predictions_updates_counters(owner, dm, world):
    with tenant_context(world.org_a):
        prediction = Prediction.objects.get(task_id=dm["t1"])
        Annotation.objects.filter(task_id=dm["t1"]).update(parent_prediction=prediction)
    response = _run(owner, dm, "delete_tasks_predictions", {"selectedItems": {"all": True, "excluded": []}})
    assert response.status_code == 200, response.content
    assert response.json()["processed_items"] == 2
    with tenant_context(world.org_a):
        assert not Prediction.objects.filter(project_id=dm["project"]).exists()
        assert set(Task.objects.filter(project_id=dm["project"]).values_list("total_predictions", flat=True)) == {0}
        assert Annotation.objects.get(task_id=dm["t1"]).parent_prediction_id is None


def test_predictions_to_annotations_as_the_legacy_sdk_sends_it(owner, dm, world):
    # Exactly the body of the legacy SDK's create_annotations_from_predictions(model_versions=["v1"]).
    body = {"filters": {"conjunction": "and", "items": []}, "model_version": ["v1"], "ordering": [],
            "project": dm["project"], "selectedItems": {"all": True, "excluded": []}}
    response = owner("post", f"/api/dm/actions?id=predictions_to_annotations&project={dm['project']}", body)
    assert response.status_code == 200, response.content
    assert response.json()["processed_items"] == 1
    with tenant_context(world.org_a):
        created = Annotation.objects.get(task_id=dm["t3"])
        prediction = Prediction.objects.get(task_id=dm["t3"])
        assert created.result == prediction.result and created.parent_prediction_id == prediction.pk
        assert created.completed_by_id == world.owner_a.user.pk
        task = Task.objects.get(pk=dm["t3"])
        assert (task.total_annotations, task.is_labeled) == (1, True)
        assert Annotation.objects.filter(task_id=dm["t1"]).count() == 1  # v2 only: untouched
    every = _run(owner, dm, "predictions_to_annotations", {"selectedItems": {"all": True, "excluded": []}})
    assert every.json()["processed_items"] == 2
    assert _run(owner, dm, "predictions_to_annotations", {"model_version": 3, **_select(dm["t1"])}).status_code == 400


def test_delete_ground_truths(owner, dm, world):
    response = _run(owner, dm, "delete_ground_truths", _select(dm["t1"], dm["t2"]))
    assert response.status_code == 200 and response.json()["processed_items"] == 1
    with tenant_context(world.org_a):
        assert not Annotation.objects.filter(project_id=dm["project"], ground_truth=True).exists()


def test_assignment_and_review_actions(owner, dm, world):
    assert _run(owner, dm, "delete_annotators", _select(dm["t5"], dm["t1"])).json()["processed_items"] == 1
    assert _run(owner, dm, "delete_reviewers", _select(dm["t1"])).json()["processed_items"] == 1
    assert _run(owner, dm, "delete_tasks_reviews", _select(dm["t2"])).json()["processed_items"] == 1
    with tenant_context(world.org_a):
        assert not TaskAssignment.objects.filter(task__project_id=dm["project"]).exists()
        assert not AnnotationReview.objects.filter(annotation__project_id=dm["project"]).exists()


def test_remove_duplicates_keeps_the_first_and_moves_annotations(owner, dm, world):
    with tenant_context(world.org_a):
        project = Task.objects.get(pk=dm["t1"]).project
        copies = services.tasks_import(project=project, user=world.owner_a.user, tasks=[
            {"data": {"tags": ["a", "b"], "when": "2021-01-05", "flag": True, "n": 3, "city": "Paris", "ocr": "1.png"}},
            {"data": {"ocr": "1.png", "city": "Paris", "n": 3, "flag": True, "when": "2021-01-05", "tags": ["a", "b"]},
             "annotations": [{"result": ocr_result("r9", "Copy")}]},
        ]).task_ids
    response = _run(owner, dm, "remove_duplicates", {"selectedItems": {"all": True, "excluded": []}})
    assert response.status_code == 200, response.content
    assert response.json()["processed_items"] == 2
    with tenant_context(world.org_a):
        assert not Task.objects.filter(pk__in=copies).exists()
        assert Task.objects.filter(project=project).count() == 5
        kept = Task.objects.get(pk=dm["t1"])
        assert kept.total_annotations == 2
        assert sorted(a.result[2]["value"]["text"][0] for a in kept.annotations.all()) == ["Copy", "Hello"]


def test_actions_refuse_annotators_bad_ids_and_missing_selection(owner, annotator, dm, world):
    refused = _run(annotator, dm, "delete_tasks", {"selectedItems": {"all": True, "excluded": []}})
    assert refused.status_code == 403
    assert _run(owner, dm, "launch_rockets", _select(dm["t1"])).status_code == 400
    missing = _run(owner, dm, "delete_tasks", {})
    assert missing.status_code == 400 and "selectedItems" in missing.json()["validation_errors"]
    unknown = {"conjunction": "and", "items": [_item("x", "equal", "String", 1)]}
    bad = _run(owner, dm, "delete_tasks", {"filters": unknown, "selectedItems": {"all": True, "excluded": []}})
    assert bad.status_code == 400 and "filter:tasks:x" in json.dumps(bad.json())
    with tenant_context(world.org_a):
        assert Task.objects.filter(project_id=dm["project"]).count() == 5


def test_actions_follow_a_view(owner, dm, world):
    view = owner("post", "/api/dm/views/", {"project": dm["project"], "data": {
        "filters": {"conjunction": "and", "items": [_item("is_labeled", "equal", "Boolean", False)]}}}).json()
    response = owner("post", f"/api/dm/actions/?id=delete_tasks&project={dm['project']}&view={view['id']}",
                     {"selectedItems": {"all": True, "excluded": [dm["t5"]]}})
    assert response.status_code == 200 and response.json()["processed_items"] == 2
    with tenant_context(world.org_a):
        assert set(Task.objects.filter(project_id=dm["project"]).values_list("pk", flat=True)) == {
            dm["t1"], dm["t2"], dm["t5"]}


# --- project state -------------------------------------------------------------------------------

def test_dm_project_state(owner, annotator, dm):
    owner("post", "/api/dm/views/", {"project": dm["project"], "data": {"title": "Tab"}})
    state = owner("get", f"/api/dm/project/?project={dm['project']}").json()
    assert (state["task_count"], state["annotation_count"], state["prediction_count"]) == (5, 2, 2)
    assert state["common_data_columns"] == ["city", "flag", "n", "ocr", "tags", "when"]
    assert state["data_types"] == {"ocr": "Image"}
    columns = {column["id"]: column for column in state["columns"]}
    assert columns["data.ocr"]["type"] == "Image" and columns["data.ocr"]["parent"] == "data"
    assert columns["total_annotations"]["type"] == "Number"
    assert "regex" in state["filters"]["operators"]["String"]
    assert [view["data"]["title"] for view in state["views"]] == ["Tab"]
    assert state["can_delete_tasks"] is True
    assert annotator("get", f"/api/dm/project/?project={dm['project']}").json()["can_delete_tasks"] is False
    assert owner("get", "/api/dm/project/?project=999999").status_code == 404


# --- the official SDK against a real server ------------------------------------------------------

@pytest.mark.django_db(transaction=False, databases=[])
def test_sdk_lists_tasks_with_a_filter_and_a_view(world, live_server_url):
    from label_studio_sdk import LabelStudio
    from label_studio_sdk.data_manager import Column, Filters, Operator, Type

    client = LabelStudio(base_url=live_server_url, api_key=world.owner_a.legacy_key)
    project = client.projects.create(title="SDK DM")
    try:
        client.projects.import_tasks(id=project.id, request=[
            {"ocr": f"{n}.png", "city": city, "n": n} for n, city in enumerate(["Paris", "Berlin", "paris", "Rome"])
        ])
        filters = Filters.create(Filters.AND, [
            Filters.item(Column.data("city"), Operator.CONTAINS, Type.String, Filters.value("par")),
        ])
        query = json.dumps({"filters": filters, "ordering": ["-" + Column.data("n")]})
        page = client.tasks.list(project=project.id, query=query, fields="all")
        assert [task.data["n"] for task in page.items] == [2, 0]
        assert [task.data["n"] for task in client.tasks.list(project=project.id, query=query)] == [2, 0]

        view = client.views.create(project=project.id, data={"title": "Big", "filters": Filters.create(
            Filters.AND, [Filters.item(Column.data("n"), Operator.GREATER, Type.Number, Filters.value(1))])})
        assert [task.data["n"] for task in client.tasks.list(project=project.id, view=view.id).items] == [2, 3]
        assert [v.id for v in client.views.list(project=project.id)] == [view.id]
    finally:
        client.projects.delete(id=project.id)
