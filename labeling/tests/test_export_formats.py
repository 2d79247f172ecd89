"""COCO, YOLO, PAGE XML, ALTO XML and plain-text exports: file contents, direct export and snapshot
conversion alike, escaping, and a project of a few thousand tasks."""

import io
import json
import zipfile
from xml.etree import ElementTree as ET

import pytest
from django_tenants.utils import tenant_context

from conftest import ocr_result
from labeling import services
from labeling.label_config import get_template

pytestmark = pytest.mark.django_db

ZIP_FORMATS = ["COCO", "YOLO", "PAGE_XML", "ALTO_XML", "TEXT"]
PAGE = "{http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15}"
ALTO = "{http://www.loc.gov/standards/alto/ns-v4#}"


def _polygon(region, points, text, *, label="Handwriting", page=None, size=(1000, 800)):
    common = {"id": region, "to_name": "image", "original_width": size[0], "original_height": size[1]}
    if page is not None:
        common["item_index"] = page
    return [
        {**common, "from_name": "poly", "type": "polygon", "value": {"points": points}},
        {**common, "from_name": "label", "type": "labels", "value": {"points": points, "labels": [label]}},
        {**common, "from_name": "transcription", "type": "textarea", "value": {"points": points, "text": [text]}},
    ]


def _on_page(items, page, size=None):
    for item in items:
        item["item_index"] = page
        if size:
            item["original_width"], item["original_height"] = size
    return items


@pytest.fixture
def ocr_project(owner):
    """A multi-page OCR project: a one-page letter (two rectangles, one polygon), a two-page book, a task
    whose only annotation was cancelled, and a task nobody annotated."""
    project = owner("post", "/api/projects/", {"title": "Letters",
                                               "label_config": get_template("ocr-multipage")["config"]}).json()
    letter = [
        *_on_page(ocr_result("w", "World", x=60, y=10), 0),  # listed first, read second: same line, to the right
        *_polygon("q", [[50, 40], [80, 40], [65, 60]], "Quill", page=0),
        *_on_page(ocr_result("h", "Hello", x=10, y=10), 0),
    ]
    book = [
        *_on_page(ocr_result("p2", "Second page", x=5, y=5), 1, size=(1200, 1600)),
        *_on_page(ocr_result("p1", "First page", x=5, y=50, label="Handwriting"), 0),
    ]
    tasks = [
        {"data": {"pages": ["https://example.test/scans/letter.png"]}, "annotations": [{"result": letter}]},
        {"data": {"pages": ["https://example.test/scans/book-p1.png", "https://example.test/scans/book-p2.png"]},
         "annotations": [{"result": book}]},
        {"data": {"pages": ["https://example.test/scans/skipped.png"]},
         "annotations": [{"result": [], "was_cancelled": True}]},
        {"data": {"pages": ["https://example.test/scans/untouched.png"]}},
    ]
    response = owner("post", f"/api/projects/{project['id']}/import?return_task_ids=true", tasks)
    assert response.status_code == 201, response.content
    project["task_ids"] = response.json()["task_ids"]
    return project


def _direct(owner, project_id, export_type, query="") -> zipfile.ZipFile:
    response = owner("get", f"/api/projects/{project_id}/export?exportType={export_type}{query}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].endswith('.zip"')
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.testzip() is None
    return archive


def _files(archive: zipfile.ZipFile) -> dict[str, bytes]:
    return {name: archive.read(name) for name in archive.namelist()}


def _coco(archive) -> dict:
    assert archive.namelist() == ["result.json"]
    return json.loads(archive.read("result.json"))


def test_formats_are_listed(owner, ocr_project):
    listed = owner("get", f"/api/projects/{ocr_project['id']}/export/formats").json()
    names = [f["name"] for f in listed]
    assert names[:4] == ["JSON", "JSON_MIN", "CSV", "TSV"] and names[4:] == ZIP_FORMATS
    assert all(f["title"] and f["description"] for f in listed)


def test_coco(owner, ocr_project):
    letter, book, _, _ = ocr_project["task_ids"]
    coco = _coco(_direct(owner, ocr_project["id"], "COCO"))
    assert coco["categories"] == [{"id": 0, "name": "Text"}, {"id": 1, "name": "Handwriting"}]
    images = [(i["id"], i["file_name"], i["width"], i["height"], i["task_id"], i["page"]) for i in coco["images"]]
    assert images == [(0, "letter.png", 1000, 800, letter, 0), (1, "book-p1.png", 1000, 800, book, 0),
                      (2, "book-p2.png", 1200, 1600, book, 1)]
    found = [(a["image_id"], a["category_id"], a["bbox"], a["text"]) for a in coco["annotations"]]
    assert found == [
        (0, 0, [100, 80, 200, 40], "Hello"),
        (0, 0, [600, 80, 200, 40], "World"),
        (0, 1, [500, 320, 300, 160], "Quill"),
        (1, 1, [50, 400, 200, 40], "First page"),
        (2, 0, [60, 80, 240, 80], "Second page"),  # 5% of 1200 x 1600
    ]
    hello, _, quill = coco["annotations"][:3]
    assert hello["segmentation"] == [] and hello["area"] == 8000
    assert quill["segmentation"] == [[500, 320, 800, 320, 650, 480]] and quill["area"] == 24000
    assert [a["id"] for a in coco["annotations"]] == [0, 1, 2, 3, 4]


def test_yolo(owner, ocr_project):
    files = _files(_direct(owner, ocr_project["id"], "YOLO"))
    assert sorted(files) == ["classes.txt", "labels/book-p1.txt", "labels/book-p2.txt", "labels/letter.txt",
                             "notes.json"]
    assert files["classes.txt"].decode() == "Text\nHandwriting\n"
    assert json.loads(files["notes.json"])["categories"] == [{"id": 0, "name": "Text"},
                                                             {"id": 1, "name": "Handwriting"}]
    assert files["labels/letter.txt"].decode().splitlines() == [
        "0 0.2 0.125 0.2 0.05",
        "0 0.7 0.125 0.2 0.05",
        "1 0.5 0.4 0.8 0.4 0.65 0.6",
    ]
    assert files["labels/book-p1.txt"].decode() == "1 0.15 0.525 0.2 0.05\n"
    assert files["labels/book-p2.txt"].decode() == "0 0.15 0.075 0.2 0.05\n"


def test_page_xml(owner, ocr_project):
    files = _files(_direct(owner, ocr_project["id"], "PAGE_XML"))
    assert sorted(files) == ["book-p1.xml", "book-p2.xml", "letter.xml"]
    root = ET.fromstring(files["letter.xml"])
    assert root.tag == f"{PAGE}PcGts" and root.find(f"{PAGE}Metadata/{PAGE}Creator").text
    page = root.find(f"{PAGE}Page")
    assert (page.get("imageFilename"), page.get("imageWidth"), page.get("imageHeight")) == ("letter.png", "1000", "800")
    regions = page.findall(f"{PAGE}TextRegion")
    assert [r.find(f"{PAGE}Coords").get("points") for r in regions] == [
        "100,80 300,80 300,120 100,120", "600,80 800,80 800,120 600,120", "500,320 800,320 650,480",
    ]
    assert [r.find(f"{PAGE}TextLine/{PAGE}TextEquiv/{PAGE}Unicode").text for r in regions] == ["Hello", "World",
                                                                                             "Quill"]
    assert [r.find(f"{PAGE}TextEquiv/{PAGE}Unicode").text for r in regions] == ["Hello", "World", "Quill"]
    assert "structure {type:Handwriting;}" in regions[2].get("custom")
    assert len({r.get("id") for r in regions}) == 3
    second = ET.fromstring(files["book-p2.xml"]).find(f"{PAGE}Page")
    assert (second.get("imageWidth"), second.get("imageHeight")) == ("1200", "1600")
    assert second.find(f"{PAGE}TextRegion/{PAGE}Coords").get("points") == "60,80 300,80 300,160 60,160"


def test_alto_xml(owner, ocr_project):
    files = _files(_direct(owner, ocr_project["id"], "ALTO_XML"))
    assert sorted(files) == ["book-p1.xml", "book-p2.xml", "letter.xml"]
    root = ET.fromstring(files["letter.xml"])
    assert root.find(f"{ALTO}Description/{ALTO}MeasurementUnit").text == "pixel"
    page = root.find(f"{ALTO}Layout/{ALTO}Page")
    assert (page.get("WIDTH"), page.get("HEIGHT")) == ("1000", "800")
    strings = page.findall(f"{ALTO}PrintSpace/{ALTO}TextBlock/{ALTO}TextLine/{ALTO}String")
    assert [(s.get("CONTENT"), s.get("HPOS"), s.get("VPOS"), s.get("WIDTH"), s.get("HEIGHT")) for s in strings] == [
        ("Hello", "100", "80", "200", "40"), ("World", "600", "80", "200", "40"), ("Quill", "500", "320", "300", "160"),
    ]
    blocks = page.findall(f"{ALTO}PrintSpace/{ALTO}TextBlock")
    assert blocks[0].find(f"{ALTO}Shape") is None
    assert blocks[2].find(f"{ALTO}Shape/{ALTO}Polygon").get("POINTS") == "500,320 800,320 650,480"
    tags = {t.get("ID"): t.get("LABEL") for t in root.iter(f"{ALTO}OtherTag")}
    assert [tags[b.get("TAGREFS")] for b in blocks] == ["Text", "Text", "Handwriting"]


def test_plain_text_in_reading_order_and_cancelled_work_left_out(owner, ocr_project):
    letter, book, skipped, untouched = ocr_project["task_ids"]
    files = _files(_direct(owner, ocr_project["id"], "TEXT", "&download_all_tasks=true"))
    assert sorted(files) == sorted([f"task_{letter}.txt", f"task_{book}.txt"])
    assert files[f"task_{letter}.txt"].decode() == "Hello\nWorld\nQuill\n"
    assert files[f"task_{book}.txt"].decode() == "First page\nSecond page\n"


@pytest.mark.parametrize("export_type", ZIP_FORMATS)
def test_snapshot_conversion_gives_the_direct_export(owner, ocr_project, export_type):
    direct = _files(_direct(owner, ocr_project["id"], export_type))
    base = f"/api/projects/{ocr_project['id']}/exports"
    snapshot = owner("post", f"{base}/", {"title": export_type}).json()
    converted = owner("post", f"{base}/{snapshot['id']}/convert", {"export_type": export_type})
    assert converted.status_code == 200, converted.content
    downloaded = owner("get", f"{base}/{snapshot['id']}/download?exportType={export_type}")
    assert downloaded.status_code == 200
    assert downloaded["Content-Disposition"].endswith('.zip"')
    from_snapshot = _files(zipfile.ZipFile(io.BytesIO(b"".join(downloaded.streaming_content))))
    if export_type == "COCO":  # info carries the creation date
        direct, from_snapshot = ({k: v for k, v in json.loads(files["result.json"]).items() if k != "info"}
                                 for files in (direct, from_snapshot))
    if export_type == "YOLO":
        direct.pop("notes.json"), from_snapshot.pop("notes.json")
    assert from_snapshot == direct


def test_unknown_format_is_400_naming_the_field(owner, ocr_project):
    bad = owner("get", f"/api/projects/{ocr_project['id']}/export?exportType=DOCX")
    assert bad.status_code == 400 and "exportType" in bad.json()["validation_errors"]
    snapshot = owner("post", f"/api/projects/{ocr_project['id']}/exports/", {}).json()
    refused = owner("post", f"/api/projects/{ocr_project['id']}/exports/{snapshot['id']}/convert",
                    {"export_type": "DOCX"})
    assert refused.status_code == 400 and "exportType" in refused.json()["validation_errors"]
    assert owner("get", f"/api/projects/{ocr_project['id']}/exports/{snapshot['id']}").json()["converted_formats"] == []


def test_markup_in_transcriptions_is_escaped_and_round_trips(owner):
    project = owner("post", "/api/projects/", {"title": "Markup"}).json()
    text = 'a <b> & "c" \'d\' </Unicode>]]>'
    owner("post", f"/api/projects/{project['id']}/import",
          [{"data": {"ocr": "https://example.test/m.png?x=1&y=<2>"},
            "annotations": [{"result": ocr_result(text=text + "\x01")}]}])
    page = ET.fromstring(_direct(owner, project["id"], "PAGE_XML").read("m.xml"))
    assert page.find(f"{PAGE}Page/{PAGE}TextRegion/{PAGE}TextEquiv/{PAGE}Unicode").text == text
    assert page.find(f"{PAGE}Page").get("imageFilename") == "m.png"
    alto = ET.fromstring(_direct(owner, project["id"], "ALTO_XML").read("m.xml"))
    assert next(alto.iter(f"{ALTO}String")).get("CONTENT") == text
    assert _coco(_direct(owner, project["id"], "COCO"))["annotations"][0]["text"] == text + "\x01"
    (plain,) = _files(_direct(owner, project["id"], "TEXT")).values()
    assert plain.decode() == text + "\x01\n"


def test_clashing_image_names_and_several_annotations_get_distinct_files(owner):
    project = owner("post", "/api/projects/", {"title": "Clash"}).json()
    ids = owner("post", f"/api/projects/{project['id']}/import?return_task_ids=true", [
        {"data": {"ocr": "https://example.test/a/scan.png"}, "annotations": [{"result": ocr_result(text="A")}]},
        {"data": {"ocr": "https://example.test/b/scan.png"},
         "annotations": [{"result": ocr_result(text="B1")}, {"result": ocr_result(text="B2")}]},
        {"data": {"ocr": "https://example.test/c/scan.png"}, "annotations": [{"result": ocr_result(text="C")}]},
        {"data": {"ocr": "/data/local-files/?d=inbox%2Fold%20deed.png"}, "annotations": [{"result": ocr_result()}]},
        {"data": {"ocr": "data:image/png;base64,iVBORw0KGgo="}, "annotations": [{"result": ocr_result()}]},
    ]).json()["task_ids"]
    yolo = _files(_direct(owner, project["id"], "YOLO"))
    labels = sorted(name for name in yolo if name.startswith("labels/"))
    annotations = owner("get", f"/api/tasks/{ids[1]}/annotations/").json()
    first, second = sorted(a["id"] for a in annotations)
    assert labels == sorted([
        "labels/scan.txt", f"labels/scan-annotation-{first}.txt", f"labels/scan-annotation-{second}.txt",
        f"labels/scan-task-{ids[2]}.txt", "labels/old deed.txt", f"labels/task-{ids[4]}.txt",
    ])
    text = _files(_direct(owner, project["id"], "TEXT"))
    assert {name: text[name] for name in list(text)[:3]} == {
        f"task_{ids[0]}.txt": b"A\n", f"task_{ids[1]}-annotation-{first}.txt": b"B1\n",
        f"task_{ids[1]}-annotation-{second}.txt": b"B2\n"}
    images = _coco(_direct(owner, project["id"], "COCO"))["images"]
    assert [image["file_name"] for image in images] == ["scan.png"] * 4 + ["old deed.png", f"task-{ids[4]}"]


def test_thousands_of_tasks_export(owner, world):
    with tenant_context(world.org_a):
        project = services.project_create(user=world.owner_a.user, fields={"title": "Bulk"})
        services.tasks_import(project=project, user=world.owner_a.user, tasks=[
            {"data": {"ocr": f"https://example.test/bulk/{n}.png"},
             "annotations": [{"result": ocr_result(f"r{n}", f"line {n}", y=n % 90)}]}
            for n in range(2000)
        ])
    coco = _coco(_direct(owner, project.pk, "COCO"))
    assert len(coco["images"]) == 2000 and len(coco["annotations"]) == 2000
    assert coco["annotations"][1999]["bbox"] == [100, 1999 % 90 * 8, 200, 40]
    yolo = _direct(owner, project.pk, "YOLO").namelist()
    assert len([name for name in yolo if name.startswith("labels/")]) == 2000
    for export_type in ("PAGE_XML", "ALTO_XML"):
        assert len(_direct(owner, project.pk, export_type).namelist()) == 2000
    # The archive is streamed as it is written: at least one chunk per task, not one blob at the end.
    chunks = list(owner("get", f"/api/projects/{project.pk}/export?exportType=TEXT").streaming_content)
    assert len(chunks) >= 2000
    text = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert len(text.namelist()) == 2000 and text.read(text.namelist()[-1]) == b"line 1999\n"


def test_a_conversion_that_fails_is_marked_failed(owner, world, ocr_project):
    from django.core.files.storage import default_storage

    from labeling import exports
    from labeling.models import ConvertedExport, ExportSnapshot

    snapshot = owner("post", f"/api/projects/{ocr_project['id']}/exports/", {}).json()
    with tenant_context(world.org_a):
        stored = ExportSnapshot.objects.select_related("project").get(pk=snapshot["id"])
        with default_storage.open(stored.file.name, "wb") as handle:
            handle.write(b"[\n{broken\n]\n")
        converted = ConvertedExport.objects.create(snapshot=stored, export_type="COCO")
        with pytest.raises(ValueError):
            exports.convert_snapshot(converted=converted)
        converted.refresh_from_db()
        assert converted.status == "failed" and converted.traceback
