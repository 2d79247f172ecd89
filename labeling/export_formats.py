"""Zip exports of OCR annotations: COCO, YOLO, PAGE XML, ALTO XML and plain text.

The direct export (rows from a server-side cursor) and the snapshot conversion (rows read back from
the frozen JSON file) both hand task JSON texts to `zip_stream`, so each format has one
implementation: `documents_of_task` turns one task into documents (one per exported annotation) and
a writer turns documents into archive entries. The archive is written to a small buffer that is
emptied after every task, so memory does not grow with the project (only zipfile's own table of
entry names does, as any zip writer's).

Results are Label Studio's: items sharing an `id` form a region (a `rectangle`/`polygon` geometry,
optionally typed by a `labels`-kind item, transcribed by a per-region `textarea`); coordinates are
percentages of `original_width`/`original_height`; `item_index` is the page of a multi-page image.
"""

import json
import math
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree as ET  # noqa: S405 - builds XML only, never parses input

from labeling.label_config import ParsedConfig

FORMATS = [
    {"name": "COCO", "title": "COCO",
     "description": "Zip with result.json in COCO's object detection layout: images, categories, and "
                    "annotations with pixel boxes, polygon segmentation and the region's transcription "
                    "(\"text\"). Images are not included."},
    {"name": "YOLO", "title": "YOLO",
     "description": "Zip with classes.txt, notes.json and labels/<image>.txt per image: one line per region, "
                    "\"class x_center y_center width height\" normalized to 0-1, polygons as YOLO segmentation "
                    "lines. Images are not included."},
    {"name": "PAGE_XML", "title": "PAGE XML",
     "description": "Zip with one PAGE XML (PRImA 2019-07-15) file per image or page: text regions with pixel "
                    "coordinates, their label and their transcription."},
    {"name": "ALTO_XML", "title": "ALTO XML",
     "description": "Zip with one ALTO v4 file per image or page: text blocks with pixel positions, polygon "
                    "shapes, label tags and the transcription as String CONTENT."},
    {"name": "TEXT", "title": "Plain text",
     "description": "Zip with one task_<id>.txt per task: its transcriptions in reading order "
                    "(top to bottom, then left to right), one region per line."},
]

PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
CREATOR = "Scriptorium"

_GEOMETRY_TYPES = frozenset({"rectangle", "rectanglelabels", "polygon", "polygonlabels"})
# Characters XML 1.0 cannot carry at all, even escaped: dropped from user text.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_UNSAFE_FILE_CHARS = re.compile(r"[^\w.\- ]+")
_COPY_BLOCK = 1 << 16


# --- one task -> documents ------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """What the exports need of a label config: its Image objects and its region labels, in order."""

    images: dict  # object name -> ObjectTag, Image objects only
    labels: list[str]

    @classmethod
    def of(cls, config: ParsedConfig) -> "Layout":
        images = {name: obj for name, obj in config.objects.items() if obj.type == "Image"}
        labels: list[str] = []
        for control in config.controls.values():
            if control.type.endswith("Labels") and any(target in images for target in control.to_name):
                labels.extend(label for label in control.labels if label not in labels)
        return cls(images=images, labels=labels)


@dataclass
class Shape:
    points: list[tuple[float, float]]  # pixels (zeros when the image size is unknown)
    normalized: list[tuple[float, float]]  # fractions of the image, 0..1
    axis_aligned: bool  # an unrotated rectangle: points are its four corners from the top left, clockwise

    @staticmethod
    def _box(points) -> tuple[float, float, float, float]:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self._box(self.points)

    @property
    def normalized_box(self) -> tuple[float, float, float, float]:
        return self._box(self.normalized)

    @property
    def area(self) -> float:
        points = self.points
        twice = sum(points[i][0] * points[i - 1][1] - points[i - 1][0] * points[i][1] for i in range(len(points)))
        return abs(twice) / 2


@dataclass
class Region:
    id: str
    to_name: str
    page: int
    labels: list[str]
    text: str
    geometry: tuple[str, dict] | None  # ("rectangle", value) or ("polygon", value), percentages
    size: tuple[float, float] | None  # original_width/height of the image it was drawn on
    shape: Shape | None = None  # set once the page's size is known


@dataclass
class Page:
    object_name: str
    index: int  # position in the object's page list (0 for a single image)
    url: str
    file_name: str  # the image's file name from its URL, else task-<id>[-page-<n>]
    width: float
    height: float
    regions: list[Region]  # in reading order

    @property
    def stem(self) -> str:
        return PurePosixPath(self.file_name).stem or self.file_name


@dataclass
class Document:
    """One exported annotation of a task, split into the pages (images) its regions lie on."""

    task_id: int
    annotation_id: int
    created_at: str
    updated_at: str
    several: bool  # the task has several exported annotations: file names carry the annotation id
    pages: list[Page] = field(default_factory=list)

    @property
    def suffix(self) -> str:
        return f"-annotation-{self.annotation_id}" if self.several else ""


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _geometry_of(value) -> tuple[str, dict] | None:
    if not isinstance(value, dict):
        return None
    points = value.get("points")
    if isinstance(points, list):
        pairs = [(_number(p[0]), _number(p[1])) for p in points if isinstance(p, list | tuple) and len(p) >= 2]
        if len(pairs) >= 3 and all(x is not None and y is not None for x, y in pairs):
            return "polygon", {"points": pairs}
        return None
    box = {key: _number(value.get(key)) for key in ("x", "y", "width", "height")}
    if any(v is None for v in box.values()):
        return None
    box["rotation"] = _number(value.get("rotation")) or 0.0
    return "rectangle", box


def _text_of(value) -> str:
    text = value.get("text") if isinstance(value, dict) else None
    if isinstance(text, str):
        return text
    if isinstance(text, list):
        return "\n".join(part for part in text if isinstance(part, str))
    return ""


def _regions_of(result) -> list[Region]:
    """Group result items into regions by their shared id, in the order regions first appear."""
    groups: dict[str, list[dict]] = {}
    for index, item in enumerate(result if isinstance(result, list) else []):
        if not isinstance(item, dict) or item.get("type") == "relation":
            continue
        key = str(item["id"]) if item.get("id") is not None else f"#{index}"
        groups.setdefault(key, []).append(item)
    regions = []
    for region_id, items in groups.items():
        geometry = next((g for item in items if item.get("type") in _GEOMETRY_TYPES
                         if (g := _geometry_of(item.get("value")))), None)
        geometry = geometry or next((g for item in items if (g := _geometry_of(item.get("value")))), None)
        labels: list[str] = []
        text_parts = []
        for item in items:
            kind, value = str(item.get("type") or ""), item.get("value")
            if kind.endswith("labels") and isinstance(value, dict) and isinstance(value.get(kind), list):
                labels.extend(v for v in value[kind] if isinstance(v, str) and v not in labels)
            elif kind == "textarea" and (text := _text_of(value)):
                text_parts.append(text)
        size = next(((w, h) for item in items
                     if (w := _number(item.get("original_width"))) and (h := _number(item.get("original_height")))),
                    None)
        page = next((item["item_index"] for item in items
                     if isinstance(item.get("item_index"), int) and not isinstance(item["item_index"], bool)
                     and item["item_index"] >= 0), 0)
        regions.append(Region(id=region_id, to_name=str(items[0].get("to_name") or ""), page=page, labels=labels,
                              text="\n".join(text_parts), geometry=geometry, size=size))
    return regions


def _corners(geometry: tuple[str, dict], width: float, height: float) -> list[tuple[float, float]]:
    kind, value = geometry
    if kind == "polygon":
        return [(x * width / 100, y * height / 100) for x, y in value["points"]]
    x, y = value["x"] * width / 100, value["y"] * height / 100
    w, h = value["width"] * width / 100, value["height"] * height / 100
    # Label Studio rotates a rectangle clockwise around its top-left corner, in pixels.
    angle = math.radians(value["rotation"])
    cos, sin = math.cos(angle), math.sin(angle)
    right = (x + w * cos, y + w * sin)
    return [(x, y), right, (right[0] - h * sin, right[1] + h * cos), (x - h * sin, y + h * cos)]


def _shape(geometry: tuple[str, dict], width: float, height: float) -> Shape:
    axis_aligned = geometry[0] == "rectangle" and geometry[1]["rotation"] % 360 == 0
    if width and height:
        points = _corners(geometry, width, height)
        normalized = [(x / width, y / height) for x, y in points]
    else:  # size unknown: percentages still place it; rotation then ignores the aspect ratio
        normalized = [(x / 100, y / 100) for x, y in _corners(geometry, 100, 100)]
        points = [(0.0, 0.0)] * len(normalized)
    return Shape(points=points, normalized=normalized, axis_aligned=axis_aligned)


def file_name_of(url: str) -> str:
    """The image's file name from its URL (Label Studio's local-files URLs carry it in `?d=`)."""
    if not isinstance(url, str) or not url or url.startswith("data:"):
        return ""
    parts = urlsplit(url)
    name = unquote(parts.path).rsplit("/", 1)[-1]
    if not name and parts.query:
        name = PurePosixPath(parse_qs(parts.query).get("d", [""])[0]).name
    name = _XML_INVALID.sub("", _UNSAFE_FILE_CHARS.sub("_", name)).strip(" .")
    return name[:200]


def _page_urls(task_data: dict, obj) -> list[str]:
    source = task_data.get(obj.value) if isinstance(task_data, dict) else None
    items = source if obj.value_list and isinstance(source, list) else [source]
    return [item if isinstance(item, str) else (item.get("url") if isinstance(item, dict) else "") or ""
            for item in items]


def _reading_order(region: Region) -> tuple:
    if region.shape is None:  # no position: after the placed regions, in result order
        return (1, 0.0, 0.0)
    left, top, _, _ = region.shape.normalized_box
    return (0, top, left)


def documents_of_task(task: dict, layout: Layout) -> Iterator[Document]:
    """Each non-cancelled annotation of the task (as the JSON_MIN export picks them), page by page."""
    annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    for annotation in annotations:
        regions = _regions_of(annotation.get("result"))
        used = {region.to_name for region in regions}
        targets = [name for name in layout.images if name in used] or list(layout.images)[:1]
        pages: dict[tuple[str, int], list[Region]] = {}
        urls: dict[tuple[str, int], str] = {}
        for name in targets:
            for index, url in enumerate(_page_urls(task.get("data") or {}, layout.images[name])):
                pages[(name, index)] = []
                urls[(name, index)] = url
        for region in regions:  # regions on objects or pages the data does not list still get a page
            pages.setdefault((region.to_name, region.page), []).append(region)
        fallback_size = next((region.size for region in regions if region.size), None)
        document = Document(task_id=task["id"], annotation_id=annotation["id"],
                            created_at=str(annotation.get("created_at") or ""),
                            updated_at=str(annotation.get("updated_at") or ""), several=len(annotations) > 1)
        for (name, index), page_regions in pages.items():
            width, height = next((r.size for r in page_regions if r.size), None) or fallback_size or (0, 0)
            for region in page_regions:
                region.shape = _shape(region.geometry, width, height) if region.geometry else None
            page_regions.sort(key=_reading_order)
            url = urls.get((name, index), "")
            unnamed = f"task-{document.task_id}" + (f"-page-{index + 1}" if index else "")
            document.pages.append(Page(object_name=name, index=index, url=url, file_name=file_name_of(url) or unnamed,
                                       width=_plain(width), height=_plain(height), regions=page_regions))
        yield document


# --- writers --------------------------------------------------------------------------------------

def _plain(number: float) -> int | float:
    return int(number) if float(number).is_integer() else round(number, 2)


def _decimal(number: float) -> str:
    """A short decimal for text formats: at most six places, no trailing zeros."""
    text = f"{number:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _xml_text(text: str) -> str:
    return _XML_INVALID.sub("", text)


def _xml_root(tag: str, namespace: str, schema_location: str) -> ET.Element:
    # ElementTree's default_namespace refuses unprefixed attributes, so the elements stay unqualified
    # and the root declares the default namespace itself.
    return ET.Element(tag, {"xmlns": namespace, f"{{{XSI_NS}}}schemaLocation": f"{namespace} {schema_location}"})


def _xml_bytes(root: ET.Element) -> bytes:
    ET.indent(root)  # only adds whitespace between elements; text content stays as it is
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


class Categories:
    """Label -> class id: the config's labels first, then labels met only in results, as met."""

    def __init__(self, labels: Iterable[str]):
        self.ids: dict[str, int] = {}
        for label in labels:
            self.id_of(label)

    def id_of(self, label: str) -> int:
        return self.ids.setdefault(label, len(self.ids))

    @property
    def names(self) -> list[str]:
        return list(self.ids)


def _entry_name(archive: zipfile.ZipFile, *, folder: str, document: Document, page: Page, extension: str) -> str:
    """`<image stem>.<ext>`, made unique by the task id (then its page) when another image shares it."""
    stem = page.stem + document.suffix
    candidates = [stem, f"{stem}-task-{document.task_id}", f"{stem}-task-{document.task_id}-page-{page.index + 1}"]
    for candidate in candidates:
        name = f"{folder}{candidate}{extension}"
        try:
            archive.getinfo(name)
        except KeyError:
            return name
    return name


class Writer:
    """Turns documents into archive entries. `finish` yields whenever the output may be flushed."""

    def __init__(self, archive: zipfile.ZipFile, layout: Layout):
        self.archive = archive
        self.categories = Categories(layout.labels)

    def add(self, document: Document) -> None:
        raise NotImplementedError

    def finish(self) -> Iterator[None]:
        yield


class CocoWriter(Writer):
    """result.json: the images array is written as tasks come; annotations are spooled to a temporary
    file and copied after it, and categories (known only at the end) close the document."""

    def __init__(self, archive, layout):
        super().__init__(archive, layout)
        self.output = archive.open("result.json", "w", force_zip64=True)
        self.spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish
        self.image_count = self.annotation_count = 0
        self.output.write(b'{"images": [')

    def _write(self, handle, entry: dict, first: bool) -> None:
        handle.write((("\n" if first else ",\n") + json.dumps(entry, ensure_ascii=False)).encode())

    def add(self, document):
        for page in document.pages:
            image_id = self.image_count
            self._write(self.output, {
                "id": image_id, "width": page.width, "height": page.height,
                "file_name": page.file_name, "task_id": document.task_id,
                "annotation_id": document.annotation_id, "page": page.index,
            }, first=image_id == 0)
            self.image_count += 1
            for region in page.regions:
                if region.shape is None or not region.labels:
                    continue
                x, y, w, h = region.shape.box
                shape = region.shape
                self._write(self.spool, {
                    "id": self.annotation_count, "image_id": image_id,
                    "category_id": self.categories.id_of(region.labels[0]),
                    "segmentation": [] if shape.axis_aligned
                    else [[round(c, 2) for point in shape.points for c in point]],
                    "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
                    "ignore": 0, "iscrowd": 0, "area": round(shape.area, 2), "text": region.text,
                }, first=self.annotation_count == 0)
                self.annotation_count += 1

    def finish(self):
        self.output.write(b'\n], "annotations": [')
        self.spool.seek(0)
        while block := self.spool.read(_COPY_BLOCK):
            self.output.write(block)
            yield
        self.spool.close()
        categories = [{"id": i, "name": name} for name, i in self.categories.ids.items()]
        tail = {"categories": categories, "info": {
            "year": datetime.now().year, "version": "1.0", "description": "", "contributor": CREATOR,
            "url": "", "date_created": datetime.now().isoformat(timespec="seconds"),
        }}
        self.output.write(b"\n], " + json.dumps(tail, ensure_ascii=False)[1:].encode() + b"\n")
        self.output.close()
        yield


class YoloWriter(Writer):
    def add(self, document):
        for page in document.pages:
            lines = []
            for region in page.regions:
                if region.shape is None or not region.labels:
                    continue
                class_id = self.categories.id_of(region.labels[0])
                clamp = [(min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)) for x, y in region.shape.normalized]
                if region.shape.axis_aligned:
                    left, top = clamp[0]
                    right, bottom = clamp[2]
                    numbers = [(left + right) / 2, (top + bottom) / 2, right - left, bottom - top]
                else:
                    numbers = [c for point in clamp for c in point]
                lines.append(" ".join([str(class_id), *map(_decimal, numbers)]) + "\n")
            name = _entry_name(self.archive, folder="labels/", document=document, page=page, extension=".txt")
            self.archive.writestr(name, "".join(lines))

    def finish(self):
        names = self.categories.names
        self.archive.writestr("classes.txt", "".join(f"{name}\n" for name in names))
        notes = {"categories": [{"id": i, "name": name} for i, name in enumerate(names)],
                 "info": {"year": datetime.now().year, "version": "1.0", "contributor": CREATOR}}
        self.archive.writestr("notes.json", json.dumps(notes, ensure_ascii=False, indent=2))
        yield


def _points_attribute(points: list[tuple[float, float]], page: Page) -> str:
    """PAGE's pointsType: non-negative integer pairs "x,y x,y ..." within the image."""
    def clamp(value: float, limit: float) -> int:
        value = max(0, round(value))
        return min(value, int(limit)) if limit else value

    return " ".join(f"{clamp(x, page.width)},{clamp(y, page.height)}" for x, y in points)


def _custom(pairs: dict[str, dict]) -> str:
    """PAGE's `custom` attribute syntax, `name {key:value;}`, with its delimiters escaped."""
    def escape(value: str) -> str:
        return re.sub(r"[\\{};:]", lambda m: f"\\u{ord(m.group()):04x}", _xml_text(value))

    return " ".join(f"{name} {{{'; '.join(f'{k}:{escape(str(v))}' for k, v in values.items())};}}"
                    for name, values in pairs.items())


class PageXmlWriter(Writer):
    def add(self, document):
        for page in document.pages:
            root = _xml_root("PcGts", PAGE_NS, f"{PAGE_NS}/pagecontent.xsd")
            metadata = ET.SubElement(root, "Metadata")
            ET.SubElement(metadata, "Creator").text = CREATOR
            ET.SubElement(metadata, "Created").text = document.created_at
            ET.SubElement(metadata, "LastChange").text = document.updated_at or document.created_at
            element = ET.SubElement(root, "Page", {
                "imageFilename": page.file_name,
                "imageWidth": str(round(page.width)), "imageHeight": str(round(page.height)),
            })
            for number, region in enumerate(r for r in page.regions if r.shape is not None):
                points = _points_attribute(region.shape.points, page)
                custom = {"readingOrder": {"index": number}}
                if region.labels:
                    custom["structure"] = {"type": region.labels[0]}
                block = ET.SubElement(element, "TextRegion",
                                      {"id": f"region_{number + 1}", "custom": _custom(custom)})
                ET.SubElement(block, "Coords", {"points": points})
                line = ET.SubElement(block, "TextLine", {"id": f"region_{number + 1}_line_1"})
                ET.SubElement(line, "Coords", {"points": points})
                for parent in (line, block):
                    equiv = ET.SubElement(parent, "TextEquiv")
                    ET.SubElement(equiv, "Unicode").text = _xml_text(region.text)
            name = _entry_name(self.archive, folder="", document=document, page=page, extension=".xml")
            self.archive.writestr(name, _xml_bytes(root))


class AltoWriter(Writer):
    def add(self, document):
        for page in document.pages:
            placed = [r for r in page.regions if r.shape is not None]
            root = _xml_root("alto", ALTO_NS, "http://www.loc.gov/standards/alto/v4/alto-4-2.xsd")
            description = ET.SubElement(root, "Description")
            ET.SubElement(description, "MeasurementUnit").text = "pixel"
            source = ET.SubElement(description, "sourceImageInformation")
            ET.SubElement(source, "fileName").text = page.file_name
            labels = [label for region in placed for label in region.labels]
            if labels:
                tags = ET.SubElement(root, "Tags")
                for label in dict.fromkeys(labels):
                    ET.SubElement(tags, "OtherTag", {
                        "ID": f"label_{self.categories.id_of(label)}", "LABEL": _xml_text(label),
                        "DESCRIPTION": "region label",
                    })
            layout = ET.SubElement(root, "Layout")
            size = {"WIDTH": str(round(page.width)), "HEIGHT": str(round(page.height))}
            element = ET.SubElement(layout, "Page",
                                    {"ID": f"page_{page.index + 1}", "PHYSICAL_IMG_NR": str(page.index + 1), **size})
            space = ET.SubElement(element, "PrintSpace", {"HPOS": "0", "VPOS": "0", **size})
            for number, region in enumerate(placed, start=1):
                x, y, w, h = region.shape.box
                box = {"HPOS": str(round(x)), "VPOS": str(round(y)), "WIDTH": str(round(w)), "HEIGHT": str(round(h))}
                attributes = {"ID": f"block_{number}", **box}
                if region.labels:
                    attributes["TAGREFS"] = " ".join(f"label_{self.categories.id_of(label)}" for label in region.labels)
                block = ET.SubElement(space, "TextBlock", attributes)
                if not region.shape.axis_aligned:
                    shape = ET.SubElement(block, "Shape")
                    ET.SubElement(shape, "Polygon", {
                        "POINTS": " ".join(f"{round(px)},{round(py)}" for px, py in region.shape.points),
                    })
                line = ET.SubElement(block, "TextLine", {"ID": f"line_{number}", **box})
                ET.SubElement(line, "String",
                              {"ID": f"string_{number}", "CONTENT": _xml_text(region.text), **box})
            name = _entry_name(self.archive, folder="", document=document, page=page, extension=".xml")
            self.archive.writestr(name, _xml_bytes(root))


class TextWriter(Writer):
    def add(self, document):
        texts = [region.text for page in document.pages for region in page.regions if region.text]
        self.archive.writestr(f"task_{document.task_id}{document.suffix}.txt",
                              "".join(f"{text}\n" for text in texts))


WRITERS: dict[str, type[Writer]] = {
    "COCO": CocoWriter, "YOLO": YoloWriter, "PAGE_XML": PageXmlWriter, "ALTO_XML": AltoWriter, "TEXT": TextWriter,
}


# --- the archive ----------------------------------------------------------------------------------

class _Drain:
    """A write-only sink for zipfile (no seek/tell: zipfile then writes data descriptors) whose
    contents are taken out after every task."""

    def __init__(self):
        self._data = bytearray()

    def write(self, data) -> int:
        self._data += data
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self._data)
        self._data.clear()
        return data


def zip_stream(rows: Callable[[], Iterable[str]], *, export_type: str, config: ParsedConfig) -> Iterator[bytes]:
    """The export as zip bytes, one chunk per task, from task JSON texts."""
    layout = Layout.of(config)
    sink = _Drain()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        writer = WRITERS[export_type](archive, layout)
        for row in rows():
            for document in documents_of_task(json.loads(row), layout):
                writer.add(document)
            if chunk := sink.take():
                yield chunk
        for _ in writer.finish():
            if chunk := sink.take():
                yield chunk
    yield sink.take()
