"""Label Studio compatible labeling configurations: parsing, validation and a template gallery.

A labeling configuration ("label config") is an XML document whose root is ``<View>``. It holds three
kinds of tags:

* object tags (``Image``, ``Text``, ...) display task data. They have a ``name`` and a ``value="$key"``
  naming a key of the task's ``data`` (``Image`` may use ``valueList="$pages"`` for a multi-page document);
* control tags (``Labels``, ``Rectangle``, ``TextArea``, ...) produce annotation results. They have a
  ``name`` and a ``toName`` (comma-separated) listing the object tags they annotate; label-bearing
  controls hold ``<Label value=.../>`` or ``<Choice value=.../>`` children;
* everything else is layout (``View``, ``Header``, ``Style``, ...) and is accepted as is.

This module is pure Python (no Django): `parse_label_config` turns XML into a `ParsedConfig` or raises
`LabelConfigError` with a message naming the offending tag and attribute. The XML parser never loads a
DTD, resolves entities or touches the network, and any ``<!DOCTYPE``/``<!ENTITY`` is refused outright.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

__all__ = [
    "CONTROL_TAGS",
    "LABELED_CONTROL_TAGS",
    "LAYOUT_TAGS",
    "MAX_CONFIG_CHARS",
    "OBJECT_TAGS",
    "OCR_DEFAULT_CONFIG",
    "TEMPLATES",
    "Control",
    "LabelConfigError",
    "ObjectTag",
    "ParsedConfig",
    "collect_used_labels",
    "config_change_orphans",
    "get_template",
    "parse_label_config",
]

#: Refuse configurations larger than this many characters (real ones are a few kilobytes).
MAX_CONFIG_CHARS = 1_000_000

#: Tags that display task data; each needs ``name`` and ``value="$key"`` (``Image`` may use ``valueList``).
OBJECT_TAGS: frozenset[str] = frozenset(
    {
        "Audio",
        "AudioPlus",
        "Chat",
        "HyperText",
        "Image",
        "List",
        "Markdown",
        "Paragraphs",
        "PDF",
        "Table",
        "Text",
        "TimeSeries",
        "Video",
    }
)

#: Object tags that accept ``valueList`` instead of ``value`` (multi-page documents).
VALUE_LIST_OBJECT_TAGS: frozenset[str] = frozenset({"Image"})

#: Controls whose labels come from ``<Label>``/``<Choice>`` children.
LABELED_CONTROL_TAGS: frozenset[str] = frozenset(
    {
        "BitmaskLabels",
        "BrushLabels",
        "Choices",
        "EllipseLabels",
        "HyperTextLabels",
        "KeyPointLabels",
        "Labels",
        "ParagraphLabels",
        "PolygonLabels",
        "RectangleLabels",
        "Taxonomy",
        "TimelineLabels",
        "TimeSeriesLabels",
        "VideoRectangleLabels",
    }
)

#: Every control tag this module knows; each needs ``name`` and ``toName``.
CONTROL_TAGS: frozenset[str] = LABELED_CONTROL_TAGS | frozenset(
    {
        "Bitmask",
        "Brush",
        "DateTime",
        "Ellipse",
        "KeyPoint",
        "MagicWand",
        "Number",
        "Pairwise",
        "Polygon",
        "Ranker",
        "Rating",
        "Rectangle",
        "TextArea",
        "VideoRectangle",
    }
)

#: Child tags carrying one label/choice value of their nearest enclosing control.
LABEL_TAGS: frozenset[str] = frozenset({"Label", "Choice"})

#: Layout and helper tags: accepted without checks (a ``toName`` on them is not validated either).
LAYOUT_TAGS: frozenset[str] = frozenset(
    {
        "Bucket",
        "Channel",
        "Collapse",
        "Filter",
        "Header",
        "Panel",
        "Relation",
        "Relations",
        "Repeater",
        "Shortcut",
        "Style",
        "View",
    }
)

_CHILD_TAG_FOR = {"Choices": "Choice", "Taxonomy": "Choice"}  # everything else holds <Label>
_DOCTYPE_RE = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_XML_DECL_RE = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)


class LabelConfigError(ValueError):
    """An invalid label config.

    ``message`` names the tag and attribute at fault, e.g.
    ``<Rectangle name="bbox"> toName="img": no object tag named "img"``; ``line`` is the 1-based source
    line when known. ``str()`` is the message followed by `` (line N)`` when the line is known.
    """

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(f"{message} (line {line})" if line else message)


@dataclass(frozen=True)
class ObjectTag:
    """An object tag: ``type`` is the tag (``Image``), ``value`` the data key without ``$``
    (for ``valueList`` objects the list's key) and ``value_list`` tells which attribute was used."""

    name: str
    type: str
    value: str
    value_list: bool = False
    value_type: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Control:
    """A control tag.

    ``labels`` are the label/choice values in document order (``alias`` when given, else ``value``,
    as Label Studio stores them in results); ``labels_attrs`` maps each to the attributes of its tag.
    """

    name: str
    type: str
    to_name: list[str]
    labels: list[str] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)
    labels_attrs: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def result_type(self) -> str:
        """The ``type`` of the result items this control produces (``RectangleLabels`` -> ``rectanglelabels``)."""
        return self.type.lower()

    @property
    def per_region(self) -> bool:
        """True for ``perRegion="true"``: one result item per region, sharing the region's id."""
        return self.attrs.get("perRegion", "").strip().lower() == "true"

    @property
    def required(self) -> bool:
        """True for ``required="true"``."""
        return self.attrs.get("required", "").strip().lower() == "true"

    @property
    def dynamic_labels(self) -> bool:
        """True when labels come from task data (``value="$options"``) or an ``apiUrl``; ``labels`` may then be
        incomplete and values are not checked against it."""
        return self.attrs.get("value", "").startswith("$") or bool(self.attrs.get("apiUrl"))

    @property
    def multiple(self) -> bool:
        """True when several labels/choices may be picked at once (``choice="multiple"``)."""
        return self.attrs.get("choice", "single").strip().lower() == "multiple"


@dataclass(frozen=True)
class ParsedConfig:
    """A validated label config.

    ``data_keys`` holds the task-data keys the object tags read (``$ocr`` -> ``"ocr"``; for
    ``value="$images[{{idx}}].url"`` the key is ``images``; a ``Repeater``'s ``on`` key is included too).
    Keys only used by layout tags (``<Header value="$title"/>``) are not included: a task may lack them.
    """

    controls: dict[str, Control]
    objects: dict[str, ObjectTag]
    data_keys: set[str]
    xml: str = ""

    def to_label_studio_dict(self) -> dict[str, dict[str, Any]]:
        """Label Studio's ``parsed_label_config``: ``{control: {type, to_name, inputs, labels, labels_attrs}}``.

        Each input is ``{"type": "Image", "value": "ocr", "valueType": None}`` (``valueList`` replaces
        ``value`` for multi-page objects). ``dynamic_labels: True`` and ``conditionals`` are added when they
        apply, as Label Studio does.
        """
        out: dict[str, dict[str, Any]] = {}
        for name, control in self.controls.items():
            inputs = []
            for target in control.to_name:
                obj = self.objects.get(target)
                if obj is None:
                    continue
                entry: dict[str, Any] = {"type": obj.type, "valueType": obj.value_type}
                entry["valueList" if obj.value_list else "value"] = obj.value
                inputs.append(entry)
            info: dict[str, Any] = {
                "type": control.type,
                "to_name": list(control.to_name),
                "inputs": inputs,
                "labels": list(control.labels),
                "labels_attrs": {label: dict(attrs) for label, attrs in control.labels_attrs.items()},
            }
            conditionals = _conditionals(control)
            if conditionals:
                info["conditionals"] = conditionals
            if control.dynamic_labels:
                info["dynamic_labels"] = True
            out[name] = info
        return out


def _conditionals(control: Control) -> dict[str, str] | None:
    if not control.per_region:
        return None
    for attr, kind in (("whenTagName", "tag"), ("whenLabelValue", "label"), ("whenChoiceValue", "choice")):
        if control.attrs.get(attr):
            return {"type": kind, "name": control.attrs[attr]}
    return None


def _describe(el: etree._Element) -> str:
    name = (el.get("name") or "").strip()
    return f'<{el.tag} name="{name}">' if name else f"<{el.tag}>"


def _fail(el: etree._Element, message: str, *, attr: str | None = None) -> LabelConfigError:
    where = _describe(el)
    if attr is not None:
        where += f' {attr}="{el.get(attr, "")}"' if el.get(attr) is not None else f" {attr}"
    return LabelConfigError(f"{where}: {message}", line=el.sourceline)


def _data_key(variable: str) -> str:
    """``$images[{{idx}}].url`` -> ``images``; ``$ocr`` -> ``ocr``."""
    key = variable[1:] if variable.startswith("$") else variable
    return re.split(r"[\[.]", key, maxsplit=1)[0]


def _parse_xml(xml: str) -> etree._Element:
    if not isinstance(xml, str):
        raise LabelConfigError("label config must be a string")
    if len(xml) > MAX_CONFIG_CHARS:
        raise LabelConfigError(f"label config is too large ({len(xml)} characters, at most {MAX_CONFIG_CHARS})")
    text = _XML_DECL_RE.sub("", xml.lstrip("\ufeff"), count=1)
    if not text.strip():
        raise LabelConfigError("label config is empty")
    if _DOCTYPE_RE.search(text):
        raise LabelConfigError("label config must not contain a DOCTYPE or ENTITY declaration")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(text, parser)
    except etree.XMLSyntaxError as exc:
        msg = exc.msg or str(exc)
        raise LabelConfigError(f"label config is not well-formed XML: {msg}", line=exc.lineno or None) from None
    if root.getroottree().docinfo.doctype:  # belt and braces: the pre-scan should have caught it
        raise LabelConfigError("label config must not contain a DOCTYPE or ENTITY declaration")
    return root


def _nearest_control(el: etree._Element) -> etree._Element | None:
    parent = el.getparent()
    while parent is not None:
        if parent.tag in CONTROL_TAGS:
            return parent
        parent = parent.getparent()
    return None


def parse_label_config(xml: str) -> ParsedConfig:
    """Parse and validate a label config, raising `LabelConfigError` on the first problem found.

    Checks, in document order: well-formed XML without DTD/entities; root tag ``<View>``; every object and
    control tag has a non-empty ``name`` (no commas) unique across all of them; object tags have
    ``value="$key"`` (``Image`` may use ``valueList="$key"`` instead); tags with a ``toName`` must be known
    controls (or layout helpers such as ``Filter``); every ``toName`` entry names an existing object tag;
    label-bearing controls (``Labels``, ``Choices``, ``*Labels``, ``Taxonomy``) hold at least one
    ``<Label>``/``<Choice>`` with a ``value`` unless their labels are dynamic (``value="$key"`` or
    ``apiUrl``), and those values are unique per control (``Taxonomy`` paths may repeat leaf names).
    Unknown tags without ``toName`` are treated as layout. ``<View></View>`` (no tags at all) is valid.
    """
    root = _parse_xml(xml)
    if root.tag != "View":
        raise LabelConfigError(f"root tag must be <View>, got <{root.tag}>", line=root.sourceline)

    elements = [el for el in root.iter() if isinstance(el.tag, str)]
    seen_names: dict[str, etree._Element] = {}
    objects: dict[str, ObjectTag] = {}
    control_elements: list[etree._Element] = []
    data_keys: set[str] = set()

    def claim_name(el: etree._Element) -> str:
        raw = el.get("name")
        if raw is None or not raw.strip():
            raise _fail(el, "is missing a non-empty name", attr=None if raw is None else "name")
        name = raw.strip()
        if "," in name:
            raise _fail(el, "names must not contain commas (toName is a comma-separated list)", attr="name")
        if name in seen_names:
            other = seen_names[name]
            raise _fail(el, f"duplicate name, already used by <{other.tag}> on line {other.sourceline}", attr="name")
        seen_names[name] = el
        return name

    for el in elements:
        tag = el.tag
        if tag in OBJECT_TAGS:
            name = claim_name(el)
            value, value_list = el.get("value"), el.get("valueList")
            if value is not None and value_list is not None:
                raise _fail(el, "use either value or valueList, not both", attr="valueList")
            if value_list is not None:
                if tag not in VALUE_LIST_OBJECT_TAGS:
                    raise _fail(el, f"valueList is only supported on {', '.join(sorted(VALUE_LIST_OBJECT_TAGS))}",
                                attr="valueList")
                attr, variable = "valueList", value_list.strip()
            elif value is not None:
                attr, variable = "value", value.strip()
            else:
                raise _fail(el, 'is missing value="$field"' + (' (or valueList="$field")' if tag == "Image" else ""))
            if not variable.startswith("$") or len(variable) < 2:
                raise _fail(el, 'must reference task data, like "$field"', attr=attr)
            objects[name] = ObjectTag(
                name=name,
                type=tag,
                value=variable[1:],
                value_list=attr == "valueList",
                value_type=el.get("valueType"),
                attrs=dict(el.attrib),
            )
            data_keys.add(_data_key(variable))
        elif tag in CONTROL_TAGS:
            claim_name(el)
            control_elements.append(el)
        elif tag == "Repeater":
            on = (el.get("on") or "").strip()
            if on.startswith("$") and len(on) > 1:
                data_keys.add(_data_key(on))
        elif tag in LABEL_TAGS:
            if _nearest_control(el) is None:
                raise _fail(el, "must be inside a control tag such as <Labels> or <Choices>")
        elif tag not in LAYOUT_TAGS and el.get("toName") is not None:
            raise _fail(el, f"unknown control tag <{tag}>", attr="toName")

    controls: dict[str, Control] = {}
    for el in control_elements:
        name = el.get("name", "").strip()
        to_name_raw = el.get("toName")
        if to_name_raw is None:
            raise _fail(el, "is missing toName")
        to_name = [part.strip() for part in to_name_raw.split(",") if part.strip()]
        if not to_name:
            raise _fail(el, "must name at least one object tag", attr="toName")
        for target in to_name:
            if target not in objects:
                kind = f" (<{seen_names[target].tag}> is not an object tag)" if target in seen_names else ""
                raise _fail(el, f'no object tag named "{target}"{kind}', attr="toName")
        labels, labels_attrs = _collect_labels(el)
        control = Control(
            name=name, type=el.tag, to_name=to_name, labels=labels, attrs=dict(el.attrib), labels_attrs=labels_attrs
        )
        if el.tag in LABELED_CONTROL_TAGS and not labels and not control.dynamic_labels:
            child = _CHILD_TAG_FOR.get(el.tag, "Label")
            raise _fail(el, f'needs at least one <{child} value="..."/> child')
        controls[name] = control

    return ParsedConfig(controls=controls, objects=objects, data_keys=data_keys, xml=xml)


def _collect_labels(control_el: etree._Element) -> tuple[list[str], dict[str, dict[str, str]]]:
    labels: list[str] = []
    attrs: dict[str, dict[str, str]] = {}
    lines: dict[str, int | None] = {}
    unique = control_el.tag != "Taxonomy"  # taxonomy leaves may share names under different parents
    for child in control_el.iter():
        if child is control_el or not isinstance(child.tag, str) or child.tag not in LABEL_TAGS:
            continue
        if _nearest_control(child) is not control_el:
            continue
        value = (child.get("alias") or child.get("value") or "").strip()
        if not value:
            raise LabelConfigError(
                f'<{child.tag}> in {_describe(control_el)}: is missing a non-empty value', line=child.sourceline
            )
        if value in attrs:
            if unique:
                raise LabelConfigError(
                    f'<{child.tag} value="{value}"> in {_describe(control_el)}: duplicate value '
                    f"(first defined on line {lines[value]})",
                    line=child.sourceline,
                )
            continue
        labels.append(value)
        attrs[value] = dict(child.attrib)
        lines[value] = child.sourceline
    return labels, attrs


def config_change_orphans(*, old: ParsedConfig, new: ParsedConfig, used: dict[str, set[str]]) -> list[str]:
    """What replacing ``old`` by ``new`` would orphan among existing annotation results.

    ``used`` maps each control name appearing in existing results to the label/choice values used with it
    (an empty set when the control is used without labels, e.g. a ``TextArea``); `collect_used_labels`
    builds it from results. Reported, sorted by control then label:

    * ``control "label" is used by existing annotations but was removed`` (in ``old``, not in ``new``);
    * ``control "label" is used by existing annotations but changed type from Labels to Choices``;
    * ``label "Handwriting" of "label" is used by existing annotations but was removed`` (in ``old``'s labels,
      or ``old`` had dynamic labels; not in ``new``'s, and ``new``'s labels are not dynamic).

    Controls or labels absent from ``old`` as well are not reported: this change did not orphan them.
    An empty list means the change is safe.
    """
    problems: list[str] = []
    for control_name in sorted(used):
        before = old.controls.get(control_name)
        if before is None:
            continue
        after = new.controls.get(control_name)
        if after is None:
            problems.append(f'control "{control_name}" is used by existing annotations but was removed')
            continue
        if after.type != before.type:
            problems.append(
                f'control "{control_name}" is used by existing annotations but changed type '
                f"from {before.type} to {after.type}"
            )
            continue
        if after.dynamic_labels:
            continue
        old_labels, new_labels = set(before.labels), set(after.labels)
        for label in sorted(used[control_name]):
            if label not in new_labels and (label in old_labels or before.dynamic_labels):
                problems.append(
                    f'label "{label}" of "{control_name}" is used by existing annotations but was removed'
                )
    return problems


def collect_used_labels(*, results: Iterable[Any]) -> dict[str, set[str]]:
    """Build `config_change_orphans`' ``used`` mapping from annotation results (each a Label Studio result list).

    Label values are read from ``value[<type>]`` (``labels``, ``rectanglelabels``, ``choices``, ...) and from
    ``value.taxonomy`` paths; malformed items are skipped.
    """
    used: dict[str, set[str]] = {}
    for result in results:
        if not isinstance(result, list):
            continue
        for item in result:
            if not isinstance(item, dict) or not isinstance(item.get("from_name"), str):
                continue
            labels = used.setdefault(item["from_name"], set())
            value = item.get("value")
            item_type = str(item.get("type", "")).lower()
            if not isinstance(value, dict):
                continue
            picked = value.get(item_type)
            if item_type == "taxonomy" and isinstance(picked, list):
                for path in picked:
                    if isinstance(path, list):
                        labels.update(v for v in path if isinstance(v, str))
            elif (item_type.endswith("labels") or item_type == "choices") and isinstance(picked, list):
                labels.update(v for v in picked if isinstance(v, str))
    return used


# --------------------------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------------------------

_OCR_TRANSCRIPTION = """\
  <TextArea name="transcription" toName="image"
            perRegion="true" required="true" editable="true"
            maxSubmissions="1" rows="5"
            placeholder="Recognized Text" displayMode="region-list"/>"""

def _ocr_config(image_source: str) -> str:
    """The OCR layout around one Image tag source (`value="$ocr"` or `valueList="$pages"`)."""
    return f"""\
<View>
  <Image name="image" {image_source}/>
  <Labels name="label" toName="image">
    <Label value="Text" background="green"/>
    <Label value="Handwriting" background="blue"/>
  </Labels>
  <Rectangle name="bbox" toName="image" strokeWidth="3"/>
  <Polygon name="poly" toName="image" strokeWidth="3"/>
{_OCR_TRANSCRIPTION}
</View>
"""


#: The standard OCR project: regions drawn as rectangles or polygons, typed Text/Handwriting, each transcribed.
OCR_DEFAULT_CONFIG = _ocr_config('value="$ocr"')
_OCR_MULTIPAGE_CONFIG = _ocr_config('valueList="$pages"')

_OCR_LABELED_REGIONS_CONFIG = f"""\
<View>
  <Image name="image" value="$ocr"/>
  <RectangleLabels name="bbox" toName="image" strokeWidth="3">
    <Label value="Text" background="green"/>
    <Label value="Handwriting" background="blue"/>
  </RectangleLabels>
  <PolygonLabels name="poly" toName="image" strokeWidth="3">
    <Label value="Text" background="green"/>
    <Label value="Handwriting" background="blue"/>
  </PolygonLabels>
{_OCR_TRANSCRIPTION}
</View>
"""

_DOCUMENT_CLASSIFICATION_CONFIG = """\
<View>
  <Image name="image" value="$image"/>
  <Header value="What kind of document is this?"/>
  <Choices name="document_type" toName="image" choice="single" showInline="true" required="true">
    <Choice value="Invoice"/>
    <Choice value="Receipt"/>
    <Choice value="Letter"/>
    <Choice value="Form"/>
    <Choice value="Other"/>
  </Choices>
</View>
"""

_BOUNDING_BOXES_CONFIG = """\
<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image">
    <Label value="Title" background="#1f77b4"/>
    <Label value="Paragraph" background="#2ca02c"/>
    <Label value="Table" background="#ff7f0e"/>
    <Label value="Figure" background="#d62728"/>
    <Label value="Signature" background="#9467bd"/>
  </RectangleLabels>
</View>
"""

_TEXT_CLASSIFICATION_CONFIG = """\
<View>
  <Text name="text" value="$text"/>
  <Header value="Choose the text sentiment"/>
  <Choices name="sentiment" toName="text" choice="single" showInline="true">
    <Choice value="Positive"/>
    <Choice value="Negative"/>
    <Choice value="Neutral"/>
  </Choices>
</View>
"""

_OCR_GROUP = "Optical Character Recognition"

#: Template gallery, first entry the default. Each: ``{"id", "title", "group", "description", "config"}``.
TEMPLATES: list[dict[str, str]] = [
    {
        "id": "ocr",
        "title": "Optical Character Recognition",
        "group": _OCR_GROUP,
        "description": "Draw rectangles or polygons around text, mark it as printed text or handwriting, "
        "and transcribe each region.",
        "config": OCR_DEFAULT_CONFIG,
    },
    {
        "id": "ocr-multipage",
        "title": "OCR of multi-page documents",
        "group": _OCR_GROUP,
        "description": "The OCR template for documents with several pages: the task's \"pages\" field is a list "
        "of image URLs, one per page.",
        "config": _OCR_MULTIPAGE_CONFIG,
    },
    {
        "id": "ocr-labeled-regions",
        "title": "OCR with labeled regions",
        "group": _OCR_GROUP,
        "description": "OCR where the region's type is picked with the drawing tool itself "
        "(RectangleLabels and PolygonLabels), then transcribed.",
        "config": _OCR_LABELED_REGIONS_CONFIG,
    },
    {
        "id": "document-classification",
        "title": "Document classification",
        "group": "Computer Vision",
        "description": "Pick the kind of document shown in the image.",
        "config": _DOCUMENT_CLASSIFICATION_CONFIG,
    },
    {
        "id": "bounding-boxes",
        "title": "Layout bounding boxes",
        "group": "Computer Vision",
        "description": "Draw labeled boxes around layout elements such as titles, paragraphs and tables.",
        "config": _BOUNDING_BOXES_CONFIG,
    },
    {
        "id": "text-classification",
        "title": "Text classification",
        "group": "Natural Language Processing",
        "description": "Classify a text's sentiment as positive, negative or neutral.",
        "config": _TEXT_CLASSIFICATION_CONFIG,
    },
]


def get_template(template_id: str) -> dict[str, str] | None:
    """The `TEMPLATES` entry with this id (a copy), or None."""
    for template in TEMPLATES:
        if template["id"] == template_id:
            return dict(template)
    return None
