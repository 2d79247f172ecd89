"""Projects API: CRUD, label config validation, orphan protection, duplicate, counts."""

import pytest

from conftest import ocr_result

pytestmark = pytest.mark.django_db

OCR_TWO_LABELS = """<View><Image name="image" value="$ocr"/>
<Labels name="label" toName="image"><Label value="Text"/></Labels>
<Rectangle name="bbox" toName="image"/><Polygon name="poly" toName="image"/>
<TextArea name="transcription" toName="image" perRegion="true" required="true"/></View>"""


def test_create_project_defaults_to_the_ocr_template(owner):
    response = owner("post", "/api/projects/", {"title": "Invoices"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["title"] == "Invoices"
    assert '<Image name="image" value="$ocr"/>' in body["label_config"]
    assert body["parsed_label_config"]["transcription"]["type"] == "TextArea"
    assert body["task_number"] == 0


def test_paths_answer_with_and_without_trailing_slash(owner):
    assert owner("post", "/api/projects", {"title": "No slash"}).status_code == 201
    assert owner("get", "/api/projects").status_code == 200
    assert owner("get", "/api/projects/").status_code == 200


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"title": "x"}, "title", "3 to 50"),
        ({"title": "Bad config", "label_config": "<View><Image name='i' value='$img'/>"}, "label_config", ""),
        ({"title": "Bad ref", "label_config": '<View><Image name="i" value="$img"/>'
          '<Labels name="l" toName="nope"><Label value="A"/></Labels></View>'}, "label_config", "nope"),
        ({"title": "Bad overlap", "maximum_annotations": 0}, "maximum_annotations", ""),
        ({"title": "Bad sampling", "sampling": "Random"}, "sampling", ""),
    ],
)
def test_bad_project_input_is_400_naming_the_field(owner, payload, field, fragment):
    response = owner("post", "/api/projects/", payload)
    assert response.status_code == 400, response.content
    errors = response.json()["validation_errors"]
    assert field in errors
    assert fragment in str(errors[field])


def test_validate_endpoint(owner):
    ok = owner("post", "/api/projects/validate/", {"label_config": OCR_TWO_LABELS})
    assert ok.status_code == 200
    bad = owner("post", "/api/projects/validate", {"label_config": "<View><Labels name='x'/></View>"})
    assert bad.status_code == 400
    assert bad.json()["validation_errors"]["label_config"]


def test_config_change_that_orphans_results_is_refused_unless_forced(world, owner):
    project = owner("post", "/api/projects/", {"title": "Orphans"}).json()
    task_ids = owner("post", f"/api/projects/{project['id']}/import?return_task_ids=true",
                     [{"ocr": "https://example.test/1.png"}]).json()["task_ids"]
    created = owner("post", f"/api/tasks/{task_ids[0]}/annotations/",
                    {"result": ocr_result(label="Handwriting")})
    assert created.status_code == 201, created.content

    refused = owner("patch", f"/api/projects/{project['id']}/", {"label_config": OCR_TWO_LABELS})
    assert refused.status_code == 400
    assert "Handwriting" in str(refused.json()["validation_errors"]["label_config"])
    assert owner("get", f"/api/projects/{project['id']}/").json()["label_config"] == project["label_config"]

    forced = owner("patch", f"/api/projects/{project['id']}/?force=true", {"label_config": OCR_TWO_LABELS})
    assert forced.status_code == 200
    assert "Handwriting" not in str(forced.json()["parsed_label_config"])


def test_update_list_counts_duplicate_delete(owner):
    project = owner("post", "/api/projects/", {"title": "Lifecycle"}).json()
    owner("post", f"/api/projects/{project['id']}/import", [{"ocr": f"https://example.test/{n}.png"} for n in range(4)])

    patched = owner("patch", f"/api/projects/{project['id']}/", {"maximum_annotations": 2, "show_skip_button": "false"})
    assert patched.status_code == 200
    assert patched.json()["maximum_annotations"] == 2 and patched.json()["show_skip_button"] is False

    listed = owner("get", "/api/projects/?page_size=100").json()
    row = next(r for r in listed["results"] if r["id"] == project["id"])
    assert row["task_number"] == 4

    counts = owner("get", "/api/projects/counts/").json()["results"]
    assert next(r for r in counts if r["id"] == project["id"])["task_number"] == 4

    copy = owner("post", f"/api/projects/{project['id']}/duplicate/", {"title": "Lifecycle copy"})
    assert copy.status_code == 201
    assert owner("get", f"/api/projects/{copy.json()['id']}/").json()["task_number"] == 4

    assert owner("delete", f"/api/projects/{project['id']}/").status_code == 204
    assert owner("get", f"/api/projects/{project['id']}/").status_code == 404


def test_project_list_past_the_last_page_is_404(owner):
    assert owner("get", "/api/projects/?page=999").status_code == 404


def test_annotator_cannot_create_or_change_projects(world, api):
    response = api.call("post", "/api/projects/", token=world.annotator_a.legacy_key, json={"title": "Nope"})
    assert response.status_code == 403
    response = api.call("patch", f"/api/projects/{world.project_a.pk}/", token=world.annotator_a.legacy_key,
                        json={"title": "Nope"})
    assert response.status_code == 403


def test_templates_gallery(owner):
    templates = owner("get", "/api/templates").json()["templates"]
    assert any("ocr" in t["id"] for t in templates)
