"""Import (JSON, JSON lines, CSV, TSV, TXT), task listing and CRUD, annotations with OCR validation, export."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context

from conftest import ocr_result
from labeling.models import Annotation, Task

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(owner):
    return owner("post", "/api/projects/", {"title": "Import target"}).json()


def _task_count(world, project_id) -> int:
    with tenant_context(world.org_a):
        return Task.objects.filter(project_id=project_id).count()


def _upload(client, world, project_id, name, content: bytes):
    return client.post(
        f"/o/org-a/api/projects/{project_id}/import?return_task_ids=1",
        {"file": SimpleUploadedFile(name, content)},
        headers={"Authorization": f"Token {world.owner_a.legacy_key}"},
    )


def test_import_json_list_with_annotations_and_predictions(owner, project, world):
    tasks = [
        {"data": {"ocr": "https://example.test/1.png"}, "annotations": [{"result": ocr_result()}],
         "predictions": [{"result": ocr_result("p"), "score": 0.9, "model_version": "tess-5"}]},
        {"ocr": "https://example.test/2.png"},
    ]
    response = owner("post", f"/api/projects/{project['id']}/import?return_task_ids=true", tasks)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["task_count"], body["annotation_count"], body["prediction_count"]) == (2, 1, 1)
    assert len(body["task_ids"]) == 2
    first = owner("get", f"/api/tasks/{body['task_ids'][0]}/").json()
    assert first["is_labeled"] is True and first["total_annotations"] == 1 and first["total_predictions"] == 1
    assert first["annotations"][0]["result"][2]["value"]["text"] == ["Hello"]


@pytest.mark.parametrize(
    ("name", "content", "count"),
    [
        ("tasks.json", json.dumps([{"ocr": "a.png"}, {"ocr": "b.png"}]).encode(), 2),
        ("tasks.jsonl", b'{"ocr": "a.png"}\n\n{"data": {"ocr": "b.png"}}\n', 2),
        ("tasks.csv", b"ocr,source\na.png,scan\n\"b,1.png\",fax\n", 2),
        ("tasks.tsv", b"ocr\tsource\na.png\tscan\n", 1),
        ("tasks.txt", b"a.png\nb.png\n\nc.png\n", 3),
    ],
)
def test_import_files_of_each_format(client, world, project, name, content, count):
    response = _upload(client, world, project["id"], name, content)
    assert response.status_code == 201, response.content
    assert response.json()["task_count"] == count
    assert _task_count(world, project["id"]) == count


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("bad.json", b"[{\"ocr\": ", "not valid JSON"),
        ("bad.jsonl", b'{"ocr": "a"}\n{oops}\n', "line 2"),
        ("bad.csv", b"ocr,other\na.png\n", "line 2"),
        ("missing.csv", b"image\na.png\n", "'ocr'"),
        ("bad.exe", b"MZ", "unsupported"),
    ],
)
def test_bad_files_are_400_and_import_nothing(client, world, project, name, content, fragment):
    response = _upload(client, world, project["id"], name, content)
    assert response.status_code == 400, response.content
    assert fragment in json.dumps(response.json())
    assert _task_count(world, project["id"]) == 0


def test_an_invalid_annotation_in_an_import_rejects_the_whole_import(owner, world, project):
    bad = ocr_result()
    bad[0]["value"]["x"] = 95  # 95 + width 20 > 100
    tasks = [{"ocr": "ok.png"}, {"data": {"ocr": "bad.png"}, "annotations": [{"result": bad}]}]
    response = owner("post", f"/api/projects/{project['id']}/import", tasks)
    assert response.status_code == 400
    assert "task #2" in json.dumps(response.json())
    assert _task_count(world, project["id"]) == 0


def test_task_listing_pages_and_ends_with_404(owner, project):
    owner("post", f"/api/projects/{project['id']}/import", [{"ocr": f"{n}.png"} for n in range(5)])
    first = owner("get", f"/api/tasks/?project={project['id']}&page=1&page_size=2&fields=all").json()
    assert first["total"] == 5 and len(first["tasks"]) == 2 and first["tasks"][0]["annotations"] == []
    third = owner("get", f"/api/tasks/?project={project['id']}&page=3&page_size=2").json()
    assert len(third["tasks"]) == 1
    assert owner("get", f"/api/tasks/?project={project['id']}&page=4&page_size=2").status_code == 404
    selected = json.dumps({"selectedItems": {"all": False, "included": [first["tasks"][1]["id"]]}})
    only = owner("get", f"/api/tasks/?project={project['id']}&query={selected}").json()
    assert [t["id"] for t in only["tasks"]] == [first["tasks"][1]["id"]]


def test_task_listing_query_count_does_not_grow_with_page_size(owner, project):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    owner("post", f"/api/projects/{project['id']}/import",
          [{"data": {"ocr": f"{n}.png"}, "annotations": [{"result": ocr_result()}],
            "predictions": [{"result": ocr_result("p")}]} for n in range(60)])
    counts = {}
    for size in (5, 60):
        with CaptureQueriesContext(connection) as queries:
            response = owner("get", f"/api/tasks/?project={project['id']}&page_size={size}&fields=all")
        assert len(response.json()["tasks"]) == size
        counts[size] = len(queries)
    assert counts[5] == counts[60], counts


def test_task_crud(owner, project):
    created = owner("post", "/api/tasks/", {"project": project["id"], "data": {"ocr": "x.png"}})
    assert created.status_code == 201, created.content
    task_id = created.json()["id"]
    assert owner("patch", f"/api/tasks/{task_id}/", {"data": {"ocr": "y.png"}}).json()["data"] == {"ocr": "y.png"}
    refused = owner("patch", f"/api/tasks/{task_id}/", {"data": {"image": "y.png"}})
    assert refused.status_code == 400 and "'ocr'" in json.dumps(refused.json())
    assert owner("post", "/api/tasks/", {"project": project["id"], "data": "nope"}).status_code == 400
    assert owner("delete", f"/api/tasks/{task_id}/").status_code == 204
    assert owner("get", f"/api/tasks/{task_id}/").status_code == 404


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda r: r[0]["value"].update(x=90), "x + width"),
        (lambda r: r[0]["value"].update(width=0), "width"),
        (lambda r: r[1]["value"].update(labels=["Stamp"]), "Stamp"),
        (lambda r: r[2].update(id="ghost"), "ghost"),
        (lambda r: r.pop(2), "transcription"),
        (lambda r: r[0].update(from_name="nope"), "nope"),
        (lambda r: r[0]["value"].update(y="ten"), "value.y"),
    ],
)
def test_bad_ocr_annotations_are_400_naming_region_and_field(owner, world, mutate, fragment):
    result = ocr_result()
    mutate(result)
    with tenant_context(world.org_a):
        before = Annotation.objects.count()
    response = owner("post", f"/api/tasks/{world.task_a.pk}/annotations/", {"result": result})
    assert response.status_code == 400, response.content
    assert fragment in json.dumps(response.json())
    with tenant_context(world.org_a):
        assert Annotation.objects.count() == before


def test_polygon_annotations(owner, world):
    def polygon(points):
        common = {"id": "g1", "to_name": "image"}
        return [
            {**common, "from_name": "poly", "type": "polygon", "value": {"points": points}},
            {**common, "from_name": "transcription", "type": "textarea", "value": {"points": points, "text": ["x"]}},
        ]

    ok = owner("post", f"/api/tasks/{world.task_a.pk}/annotations/", {"result": polygon([[1, 1], [30, 1], [30, 9]])})
    assert ok.status_code == 201, ok.content
    bow_tie = owner("post", f"/api/tasks/{world.task_a.pk}/annotations/",
                    {"result": polygon([[0, 0], [10, 10], [10, 0], [0, 10]])})
    assert bow_tie.status_code == 400 and "g1" in json.dumps(bow_tie.json())
    two_points = owner("post", f"/api/tasks/{world.task_a.pk}/annotations/", {"result": polygon([[0, 0], [1, 1]])})
    assert two_points.status_code == 400


def test_annotation_crud_updates_task_counters(owner, project):
    task_id = owner("post", f"/api/projects/{project['id']}/import?return_task_ids=true",
                    [{"ocr": "a.png"}]).json()["task_ids"][0]
    annotation = owner("post", f"/api/tasks/{task_id}/annotations", {"result": ocr_result(), "lead_time": 3.5})
    assert annotation.status_code == 201
    annotation_id = annotation.json()["id"]
    assert owner("get", f"/api/tasks/{task_id}/").json()["is_labeled"] is True
    updated = owner("patch", f"/api/annotations/{annotation_id}/", {"result": ocr_result(text="World")})
    assert updated.json()["result"][2]["value"]["text"] == ["World"]
    assert [a["id"] for a in owner("get", f"/api/tasks/{task_id}/annotations/").json()] == [annotation_id]
    assert owner("delete", f"/api/annotations/{annotation_id}/").status_code == 204
    task = owner("get", f"/api/tasks/{task_id}/").json()
    assert task["is_labeled"] is False and task["total_annotations"] == 0


def test_skipped_annotation_counts_as_cancelled(owner, project):
    task_id = owner("post", f"/api/projects/{project['id']}/import?return_task_ids=true",
                    [{"ocr": "a.png"}]).json()["task_ids"][0]
    response = owner("post", f"/api/tasks/{task_id}/annotations/", {"result": [], "was_cancelled": "true"})
    assert response.status_code == 201
    task = owner("get", f"/api/tasks/{task_id}/").json()
    assert task["cancelled_annotations"] == 1 and task["is_labeled"] is False


def test_predictions_api(owner, world):
    created = owner("post", "/api/predictions/", {"task": world.task_a.pk, "result": ocr_result("m1"), "score": 0.7})
    assert created.status_code == 201, created.content
    listed = owner("get", f"/api/predictions/?task={world.task_a.pk}").json()
    assert created.json()["id"] in [p["id"] for p in listed]
    bad = owner("post", "/api/predictions/", {"task": world.task_a.pk, "result": [{"from_name": "x"}]})
    assert bad.status_code == 400


@pytest.mark.parametrize("param", ["exportType", "export_type"])
def test_export_json_streams_annotated_tasks(owner, project, param):
    ids = owner("post", f"/api/projects/{project['id']}/import?return_task_ids=true",
                [{"data": {"ocr": "a.png"}, "annotations": [{"result": ocr_result()}]}, {"ocr": "b.png"}]
                ).json()["task_ids"]
    response = owner("get", f"/api/projects/{project['id']}/export?{param}=JSON")
    assert response.status_code == 200
    exported = json.loads(b"".join(response.streaming_content))
    assert [t["id"] for t in exported] == ids[:1]
    assert exported[0]["annotations"][0]["result"][2]["value"]["text"] == ["Hello"]
    everything = json.loads(b"".join(owner(
        "get", f"/api/projects/{project['id']}/export?{param}=JSON&download_all_tasks=true").streaming_content))
    assert [t["id"] for t in everything] == ids


def test_export_min_csv_and_unknown_type(owner, project):
    owner("post", f"/api/projects/{project['id']}/import",
          [{"data": {"ocr": "a.png"}, "annotations": [{"result": ocr_result(text="Ink")}]}])
    rows = json.loads(b"".join(owner("get", f"/api/projects/{project['id']}/export?exportType=JSON_MIN")
                               .streaming_content))
    assert rows[0]["ocr"] == "a.png" and rows[0]["transcription"] == [["Ink"]]
    text = b"".join(owner("get", f"/api/projects/{project['id']}/export?exportType=CSV").streaming_content).decode()
    table = list(csv.DictReader(io.StringIO(text)))
    assert table[0]["ocr"] == "a.png" and "Ink" in table[0]["transcription"]
    bad = owner("get", f"/api/projects/{project['id']}/export?exportType=PDF")
    assert bad.status_code == 400 and "exportType" in bad.json()["validation_errors"]


def test_export_snapshots_create_convert_download(owner, project):
    owner("post", f"/api/projects/{project['id']}/import",
          [{"data": {"ocr": "a.png"}, "annotations": [{"result": ocr_result(text="Quill")}]}, {"ocr": "b.png"}])
    created = owner("post", f"/api/projects/{project['id']}/exports/", {"title": "Nightly"})
    assert created.status_code == 201, created.content
    snapshot = created.json()
    assert snapshot["status"] == "completed" and snapshot["counters"]["task_number"] == 2

    # The snapshot is frozen: later annotations do not change it.
    owner("delete", f"/api/projects/{project['id']}/tasks/")
    downloaded = owner("get", f"/api/projects/{project['id']}/exports/{snapshot['id']}/download?exportType=JSON")
    assert downloaded.status_code == 200
    tasks = json.loads(b"".join(downloaded.streaming_content))
    assert len(tasks) == 2 and tasks[0]["annotations"][0]["result"][2]["value"]["text"] == ["Quill"]

    not_yet = owner("get", f"/api/projects/{project['id']}/exports/{snapshot['id']}/download?exportType=CSV")
    assert not_yet.status_code == 400
    converted = owner("post", f"/api/projects/{project['id']}/exports/{snapshot['id']}/convert",
                      {"export_type": "CSV"})
    assert converted.status_code == 200 and converted.json()["export_type"] == "CSV"
    detail = owner("get", f"/api/projects/{project['id']}/exports/{snapshot['id']}").json()
    assert detail["converted_formats"][0]["status"] == "completed"
    table = b"".join(owner("get", f"/api/projects/{project['id']}/exports/{snapshot['id']}/download"
                               f"?exportType=CSV").streaming_content).decode()
    assert "Quill" in table and "a.png" in table

    listed = owner("get", f"/api/projects/{project['id']}/exports/").json()
    assert [s["id"] for s in listed] == [snapshot["id"]]
    assert owner("delete", f"/api/projects/{project['id']}/exports/{snapshot['id']}").status_code == 204
    assert owner("get", f"/api/projects/{project['id']}/exports/{snapshot['id']}").status_code == 404


def test_import_cost_does_not_depend_on_existing_tasks(owner, project):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    batch = [{"data": {"ocr": f"{n}.png"}, "annotations": [{"result": ocr_result()}]} for n in range(50)]
    counts = []
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert owner("post", f"/api/projects/{project['id']}/import", batch).status_code == 201
        counts.append([q["sql"].split()[0] for q in queries.captured_queries])
        owner("post", f"/api/projects/{project['id']}/import", [{"ocr": f"{n}.png"} for n in range(2000)])
    assert counts[0] == counts[1], "the same statements, whatever the project already holds"
    assert not any("labeling_task" in q["sql"] and q["sql"].lstrip().upper().startswith("SELECT")
                   for q in queries.captured_queries), "an import never reads tasks"


def test_large_imports_become_jobs_polled_until_done(owner, world, project, settings):
    from labeling.tasks import run_import_job

    settings.IMPORT_SYNC_MAX_TASKS = 3
    accepted = owner("post", f"/api/projects/{project['id']}/import?return_task_ids=true",
                     [{"ocr": f"{n}.png"} for n in range(5)])
    assert accepted.status_code == 201 and set(accepted.json()) == {"import"}
    job_url = f"/api/projects/{project['id']}/imports/{accepted.json()['import']}/"
    assert owner("get", job_url).json()["status"] == "created"
    assert _task_count(world, project["id"]) == 0

    run_import_job.run(world.org_a.pk, accepted.json()["import"])  # what the Celery worker runs
    done = owner("get", job_url).json()
    assert done["status"] == "completed" and done["task_count"] == 5 and len(done["task_ids"]) == 5
    assert _task_count(world, project["id"]) == 5


def test_a_failing_import_job_records_the_error_and_imports_nothing(owner, world, project, settings):
    from labeling.tasks import run_import_job

    settings.IMPORT_SYNC_MAX_TASKS = 1
    accepted = owner("post", f"/api/projects/{project['id']}/import", [{"ocr": "a.png"}, {"image": "b.png"}])
    run_import_job.run(world.org_a.pk, accepted.json()["import"])
    failed = owner("get", f"/api/projects/{project['id']}/imports/{accepted.json()['import']}").json()
    assert failed["status"] == "failed" and "task #2" in failed["error"] and "'ocr'" in failed["error"]
    assert _task_count(world, project["id"]) == 0
