"""Validation of Label Studio annotation results against a parsed label config (OCR first).

A result is a list of items such as::

    {"id": "r1", "from_name": "bbox", "to_name": "image", "type": "rectangle",
     "value": {"x": 10, "y": 5, "width": 30, "height": 4, "rotation": 0},
     "original_width": 2480, "original_height": 3508, "image_rotation": 0}

Coordinates are percentages of the image (0..100). Items sharing an ``id`` describe one region: in the OCR
template a region is a ``rectangle`` or ``polygon`` item, plus a ``labels`` item and a per-region
``textarea`` item (the transcription) with the same id. ``relation`` items (``from_id``/``to_id``) link
regions and need no ``from_name``.

`validate_result` checks the whole list and raises `ResultError` for the first problem; the exception's
``errors`` attribute lists every problem found, in result order, then the missing required items
(`result_errors` returns that list without raising).
Pure Python, no Django.
"""

import math
from dataclasses import dataclass
from typing import Any

from labeling.label_config import Control, ParsedConfig

__all__ = [
    "EPSILON",
    "GEOMETRY_TYPES",
    "MAX_POLYGON_POINTS",
    "POLYGON_PAIR_BUDGET",
    "POLYGON_PAIR_BUDGET_PER_POINT",
    "ResultError",
    "result_errors",
    "validate_result",
]

#: Tolerance for the 0..100 bounds (float rounding of converted pixel coordinates).
EPSILON = 1e-6
#: Polygons with more points are refused.
MAX_POLYGON_POINTS = 10_000
#: Edge pairs the self-intersection test may compare in one result: a base plus so many per polygon point
#: in the result, so the work stays linear in the payload size. Natural outlines need 3 to 7 per point; only
#: adversarial shapes (dense zigzags) exhaust it, and are then refused.
POLYGON_PAIR_BUDGET = 200_000
POLYGON_PAIR_BUDGET_PER_POINT = 10

#: Result types that create a region on their own (a geometry drawn on the object).
GEOMETRY_TYPES: frozenset[str] = frozenset(
    {
        "rectangle",
        "rectanglelabels",
        "polygon",
        "polygonlabels",
        "keypoint",
        "keypointlabels",
        "ellipse",
        "ellipselabels",
        "brush",
        "brushlabels",
        "bitmask",
        "bitmasklabels",
        "videorectangle",
    }
)
_RECT_TYPES = frozenset({"rectangle", "rectanglelabels"})
_POLYGON_TYPES = frozenset({"polygon", "polygonlabels"})
_POINT_TYPES = frozenset({"keypoint", "keypointlabels"})
_ELLIPSE_TYPES = frozenset({"ellipse", "ellipselabels"})
#: Label-type items on text-like objects (start/end spans) are regions too; on images they attach to one.
_SPAN_LABEL_TYPES = frozenset({"labels", "hypertextlabels", "paragraphlabels", "timeserieslabels"})


class ResultError(ValueError):
    """One problem in an annotation result.

    ``region_id`` is the item's ``id`` (None when the item has none or the problem is not about one item),
    ``index`` the item's position in the result list (when known), ``field`` a path inside the item such as
    ``value.points[2]``, ``value.x``, ``from_name`` or a control name for a missing required item, and
    ``message`` the human explanation. ``str()`` reads ``region "r1": value.x: must be between 0 and 100``
    (``result[3]: ...`` when the item has no id). When raised by `validate_result`, ``errors`` holds every
    problem found (this one first).
    """

    def __init__(self, *, region_id: str | None, field: str, message: str, index: int | None = None) -> None:
        self.region_id = region_id
        self.field = field
        self.message = message
        self.index = index
        self.errors: list[ResultError] = [self]
        super().__init__(self._render())

    def _render(self) -> str:
        if self.region_id is not None:
            where = f'region "{self.region_id}"'
        elif self.index is not None:
            where = f"result[{self.index}]"
        else:
            where = "result"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form for API error bodies."""
        return {"region_id": self.region_id, "index": self.index, "field": self.field, "message": self.message}


def validate_result(
    *, result: Any, config: ParsedConfig, require_required: bool = True, page_count: int | None = None
) -> None:
    """Validate a Label Studio ``result`` list against ``config``; raise `ResultError` (with ``errors``) if invalid.

    Per item: an object; ``from_name`` names a control; ``to_name`` is one of that control's ``toName``;
    ``type`` equals the control's tag lowercased (case-insensitive); ``value`` is an object whose numbers are
    all finite. By type:

    * rectangles: ``x``, ``y``, ``width``, ``height`` numbers (never booleans), ``0 <= x, y``, ``width,
      height > 0``, ``x + width <= 100`` and ``y + height <= 100`` (tolerance `EPSILON`), optional numeric
      ``rotation``; a rotated rectangle (rotation not a multiple of 360) only has its ``x``/``y`` checked to
      lie in 0..100, since its extent depends on the image's aspect ratio;
    * polygons: ``points`` a list of at least 3 ``[x, y]`` pairs within 0..100, no two consecutive points
      equal, non-zero area, and no self-intersection (non-adjacent edges must not touch, adjacent edges must
      not fold back on each other; a final point repeating the first is tolerated); optional boolean ``closed``;
      at most `MAX_POLYGON_POINTS` points; shapes so intricate that the check would exceed its edge-pair
      budget (`POLYGON_PAIR_BUDGET` plus `POLYGON_PAIR_BUDGET_PER_POINT` per polygon point, for the whole
      result) are refused;
    * key points: ``x``, ``y`` within 0..100; ellipses: centre within 0..100 and positive radii;
    * other item types whose value carries geometry (the ``labels``/``textarea`` items of a region repeat it)
      get the same checks for what they carry;
    * labels (``labels``, ``rectanglelabels``, ``polygonlabels``, ...) and ``choices``: a list of strings,
      each one of the control's labels (unless the control's labels are dynamic), at most one unless the
      control has ``choice="multiple"``; ``taxonomy``: a list of paths (lists of strings);
    * ``textarea``: ``text`` a string or a list of strings; ``rating``/``number``: a finite number
      (``rating`` within 0..maxRating, ``number`` within min..max when set); ``datetime``: a string;
    * per-region controls (``perRegion="true"``): the item's ``id`` is the id of a region in this result on
      the same object (a region: an item of a geometry type, or a span ``labels`` item);
    * ``item_index`` (multi-page objects), when present: an integer >= 0, and < ``page_count`` when the
      caller passes it and the target object uses ``valueList``;
    * ``original_width``/``original_height``: positive numbers; ``image_rotation``: a number;
    * one item per (``id``, ``from_name``) pair.

    When ``require_required`` and the result is non-empty, every ``required="true"`` control must have an
    item with content (non-blank text, a non-empty selection); a per-region required control needs one for
    every region on its objects (restricted by ``whenTagName``/``whenLabelValue``/``whenChoiceValue``),
    reported as ``region "r1": transcription: required``.
    """
    errors = result_errors(result=result, config=config, require_required=require_required, page_count=page_count)
    if errors:
        first = errors[0]
        first.errors = errors
        raise first


def result_errors(
    *, result: Any, config: ParsedConfig, require_required: bool = True, page_count: int | None = None
) -> list[ResultError]:
    """Every problem `validate_result` would report, in order (empty when the result is valid).

    The same problem reported for several items of one region (the ``labels`` and ``textarea`` items repeat
    the region's geometry) is listed once, for the first item.
    """
    found = _Validator(config=config, page_count=page_count).run(result=result, require_required=require_required)
    errors: list[ResultError] = []
    seen: set[tuple[str, str, str]] = set()
    for error in found:
        if error.region_id is not None:
            key = (error.region_id, error.field, error.message)
            if key in seen:
                continue
            seen.add(key)
        errors.append(error)
    return errors


# --------------------------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    """A number (never a bool) that is neither NaN nor infinite (huge integers count as infinite)."""
    if not _is_number(value):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _region_key(raw: Any) -> str | None:
    if isinstance(raw, str) and raw:
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    return None


def _find_non_finite(value: Any, path: str) -> str | None:
    """The path of the first NaN/infinite float inside ``value``, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        for key, sub in value.items():
            found = _find_non_finite(sub, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            found = _find_non_finite(sub, f"{path}[{i}]")
            if found:
                return found
    return None


class _Stop(Exception):
    """Abandon the current item (its error is already recorded)."""


@dataclass
class _Region:
    to_name: str
    types: set[str]
    from_names: set[str]
    labels: set[str]


class _Validator:
    def __init__(self, *, config: ParsedConfig, page_count: int | None) -> None:
        self.config = config
        self.page_count = page_count
        self.errors: list[ResultError] = []
        self._region_id: str | None = None
        self._index: int | None = None
        self._pair_budget = [POLYGON_PAIR_BUDGET]

    # -- error helpers ------------------------------------------------------------------------------------------

    def _error(self, field: str, message: str) -> None:
        self.errors.append(ResultError(region_id=self._region_id, field=field, message=message, index=self._index))

    def _stop(self, field: str, message: str) -> _Stop:
        self._error(field, message)
        return _Stop()

    def _number(self, value: dict, key: str, *, required: bool = True) -> float | None:
        if key not in value:
            if required:
                raise self._stop(f"value.{key}", "is required")
            return None
        number = value[key]
        if not _is_number(number):
            raise self._stop(f"value.{key}", "must be a number")
        if not _finite(number):
            raise self._stop(f"value.{key}", "must be a finite number")
        return float(number)

    def _in_percent_range(self, field: str, number: float) -> None:
        if number < -EPSILON or number > 100 + EPSILON:
            raise self._stop(field, "must be between 0 and 100")

    # -- driver -------------------------------------------------------------------------------------------------

    def run(self, *, result: Any, require_required: bool) -> list[ResultError]:
        if not isinstance(result, list):
            self.errors.append(ResultError(region_id=None, field="result", message="must be a list of objects"))
            return self.errors
        regions = self._collect_regions(result)
        self._pair_budget[0] += POLYGON_PAIR_BUDGET_PER_POINT * sum(
            len(item["value"]["points"])
            for item in result
            if isinstance(item, dict) and isinstance(item.get("value"), dict)
            and isinstance(item["value"].get("points"), list)
        )
        seen_pairs: set[tuple[str, str]] = set()
        for index, item in enumerate(result):
            self._index = index
            self._region_id = _region_key(item.get("id")) if isinstance(item, dict) else None
            try:
                control = self._check_item(item, regions)
            except _Stop:
                continue
            if control is None:
                continue
            if self._region_id is not None:
                pair = (self._region_id, control.name)
                if pair in seen_pairs:
                    self._error("from_name", f'duplicate item for control "{control.name}" in this region')
                    continue
                seen_pairs.add(pair)
        self._index = None
        self._region_id = None
        if require_required and result:
            self._check_required(result, regions)
        return self.errors

    def _collect_regions(self, result: list) -> dict[str, _Region]:
        """Regions by id: geometry items and span label items, with what else the result says about them."""
        regions: dict[str, _Region] = {}
        for item in result:
            if not isinstance(item, dict):
                continue
            key = _region_key(item.get("id"))
            item_type = str(item.get("type", "")).lower()
            if key is None:
                continue
            is_region = item_type in GEOMETRY_TYPES or (
                item_type in _SPAN_LABEL_TYPES and isinstance(item.get("value"), dict) and "start" in item["value"]
            )
            if is_region and key not in regions:
                regions[key] = _Region(to_name=str(item.get("to_name", "")), types=set(), from_names=set(),
                                       labels=set())
        for item in result:
            if not isinstance(item, dict):
                continue
            region = regions.get(_region_key(item.get("id")) or "")
            if region is None:
                continue
            item_type = str(item.get("type", "")).lower()
            region.types.add(item_type)
            if isinstance(item.get("from_name"), str):
                region.from_names.add(item["from_name"])
            value = item.get("value")
            if isinstance(value, dict) and isinstance(value.get(item_type), list):
                region.labels.update(v for v in value[item_type] if isinstance(v, str))
        return regions

    # -- one item -----------------------------------------------------------------------------------------------

    def _check_item(self, item: Any, regions: dict[str, _Region]) -> Control | None:
        if not isinstance(item, dict):
            raise self._stop("", "must be an object")
        raw_id = item.get("id")
        if raw_id is not None and self._region_id is None:
            raise self._stop("id", "must be a non-empty string")
        item_type = item.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise self._stop("type", "is required")
        item_type = item_type.lower()
        if item_type == "relation":
            self._check_relation(item, regions)
            return None

        from_name = item.get("from_name")
        if not isinstance(from_name, str) or not from_name:
            raise self._stop("from_name", "is required")
        control = self.config.controls.get(from_name)
        if control is None:
            raise self._stop("from_name", f'no control named "{from_name}" in the label config')
        to_name = item.get("to_name")
        if not isinstance(to_name, str) or not to_name:
            raise self._stop("to_name", "is required")
        if to_name not in control.to_name:
            targets = ", ".join(control.to_name)
            raise self._stop("to_name", f'"{to_name}" is not a target of control "{from_name}" (toName: {targets})')
        if item_type != control.result_type:
            raise self._stop("type", f'expected "{control.result_type}" for <{control.type} name="{from_name}">, '
                             f'got "{item["type"]}"')
        value = item.get("value")
        if not isinstance(value, dict):
            raise self._stop("value", "must be an object")
        bad = _find_non_finite(value, "value")
        if bad:
            raise self._stop(bad, "must be a finite number")

        self._check_item_meta(item, to_name)
        self._check_geometry(item_type, value)
        self._check_payload(item_type, value, control)
        if control.per_region:
            self._check_region_link(control, to_name, regions)
        return control

    def _check_item_meta(self, item: dict, to_name: str) -> None:
        for key in ("original_width", "original_height"):
            if key in item and item[key] is not None:
                size = item[key]
                if not _finite(size) or size <= 0:
                    raise self._stop(key, "must be a positive number")
        if "image_rotation" in item and item["image_rotation"] is not None:
            rotation = item["image_rotation"]
            if not _finite(rotation):
                raise self._stop("image_rotation", "must be a finite number")
        if "item_index" in item and item["item_index"] is not None:
            page = item["item_index"]
            if not isinstance(page, int) or isinstance(page, bool) or page < 0:
                raise self._stop("item_index", "must be an integer >= 0")
            target = self.config.objects.get(to_name)
            if self.page_count is not None and target is not None and target.value_list and page >= self.page_count:
                raise self._stop("item_index", f"must be less than the page count ({self.page_count})")

    def _check_region_link(self, control: Control, to_name: str, regions: dict[str, _Region]) -> None:
        if self._region_id is None:
            raise self._stop("id", f'is required: "{control.name}" is per-region and must share its region\'s id')
        region = regions.get(self._region_id)
        if region is None:
            raise self._stop("id", f'"{control.name}" is per-region but no region in this result has this id')
        if region.to_name != to_name:
            raise self._stop("to_name", f'the region is on "{region.to_name}", not "{to_name}"')

    def _check_relation(self, item: dict, regions: dict[str, _Region]) -> None:
        for key in ("from_id", "to_id"):
            ref = _region_key(item.get(key))
            if ref is None:
                raise self._stop(key, "is required")
            if ref not in regions:
                raise self._stop(key, f'no region with id "{ref}" in this result')
        direction = item.get("direction")
        if direction is not None and direction not in ("left", "right", "bi"):
            raise self._stop("direction", 'must be "left", "right" or "bi"')
        labels = item.get("labels")
        if labels is not None and not (isinstance(labels, list) and all(isinstance(v, str) for v in labels)):
            raise self._stop("labels", "must be a list of strings")

    # -- geometry -----------------------------------------------------------------------------------------------

    def _check_geometry(self, item_type: str, value: dict) -> None:
        if item_type in _RECT_TYPES:
            self._check_rectangle(value)
        elif item_type in _POLYGON_TYPES:
            self._check_polygon(value)
        elif item_type in _POINT_TYPES:
            self._check_point(value)
        elif item_type in _ELLIPSE_TYPES:
            self._check_ellipse(value)
        elif item_type not in GEOMETRY_TYPES:
            # labels/textarea items of a region repeat its geometry: check whatever they carry
            if "points" in value:
                self._check_polygon(value)
            elif all(k in value for k in ("x", "y", "width", "height")):
                self._check_rectangle(value)
            elif "x" in value and "y" in value:
                self._check_point(value)

    def _check_rectangle(self, value: dict) -> None:
        x = self._number(value, "x")
        y = self._number(value, "y")
        width = self._number(value, "width")
        height = self._number(value, "height")
        rotation = self._number(value, "rotation", required=False) or 0.0
        self._in_percent_range("value.x", x)
        self._in_percent_range("value.y", y)
        if width <= 0:
            raise self._stop("value.width", "must be greater than 0")
        if height <= 0:
            raise self._stop("value.height", "must be greater than 0")
        if rotation % 360 != 0:
            return  # the rotated extent depends on the aspect ratio: only the anchor is checked
        if x + width > 100 + EPSILON:
            raise self._stop("value.width", f"x + width must not exceed 100 (got {x + width:g})")
        if y + height > 100 + EPSILON:
            raise self._stop("value.height", f"y + height must not exceed 100 (got {y + height:g})")

    def _check_point(self, value: dict) -> None:
        self._in_percent_range("value.x", self._number(value, "x"))
        self._in_percent_range("value.y", self._number(value, "y"))
        width = self._number(value, "width", required=False)
        if width is not None and width < 0:
            raise self._stop("value.width", "must not be negative")

    def _check_ellipse(self, value: dict) -> None:
        self._in_percent_range("value.x", self._number(value, "x"))
        self._in_percent_range("value.y", self._number(value, "y"))
        for key in ("radiusX", "radiusY"):
            if self._number(value, key) <= 0:
                raise self._stop(f"value.{key}", "must be greater than 0")
        self._number(value, "rotation", required=False)

    def _check_polygon(self, value: dict) -> None:
        raw = value.get("points")
        if not isinstance(raw, list):
            raise self._stop("value.points", "must be a list of [x, y] points")
        if len(raw) < 3:
            raise self._stop("value.points", f"a polygon needs at least 3 points (got {len(raw)})")
        if len(raw) > MAX_POLYGON_POINTS:
            raise self._stop("value.points", f"at most {MAX_POLYGON_POINTS} points are allowed (got {len(raw)})")
        points: list[tuple[float, float]] = []
        for i, point in enumerate(raw):
            field = f"value.points[{i}]"
            if not (isinstance(point, list | tuple) and len(point) == 2 and all(_is_number(c) for c in point)):
                raise self._stop(field, "must be an [x, y] pair of numbers")
            px, py = point
            if not (_finite(px) and _finite(py)):
                raise self._stop(field, "must contain finite numbers")
            if not (-EPSILON <= px <= 100 + EPSILON and -EPSILON <= py <= 100 + EPSILON):
                raise self._stop(field, f"({px:g}, {py:g}) is outside 0..100")
            points.append((float(px), float(py)))
        closed = value.get("closed")
        if closed is not None and not isinstance(closed, bool):
            raise self._stop("value.closed", "must be true or false")
        if len(points) > 3 and points[-1] == points[0]:
            points = points[:-1]  # an explicit closing point repeats the first one
        for i in range(len(points)):
            if points[i] == points[(i + 1) % len(points)]:
                raise self._stop(f"value.points[{(i + 1) % len(points)}]", "repeats the previous point")
        try:
            crossing = _self_intersection(points, self._pair_budget)
        except _TooComplex:
            raise self._stop(
                "value.points", "the polygon is too intricate to check for self-intersection; simplify it"
            ) from None
        if crossing is not None:
            a, b = crossing
            n = len(points)
            raise self._stop(
                "value.points",
                f"the polygon intersects itself (edges {a}-{(a + 1) % n} and {b}-{(b + 1) % n})",
            )
        if abs(_signed_area(points)) <= EPSILON:
            raise self._stop("value.points", "the polygon has zero area")

    # -- payloads -----------------------------------------------------------------------------------------------

    def _check_payload(self, item_type: str, value: dict, control: Control) -> None:
        if item_type.endswith("labels") or item_type == "choices":
            self._check_label_list(item_type, value, control)
        elif item_type == "taxonomy":
            self._check_taxonomy(value, control)
        elif item_type == "textarea":
            text = value.get("text")
            if isinstance(text, str):
                return
            if not isinstance(text, list) or not all(isinstance(t, str) for t in text):
                raise self._stop("value.text", "must be a string or a list of strings")
        elif item_type == "rating":
            rating = self._number(value, "rating")
            top = _float_attr(control, "maxRating")
            top = 5.0 if top is None else top
            if rating < 0 or rating > top:
                raise self._stop("value.rating", f"must be between 0 and {top:g}")
        elif item_type == "number":
            number = self._number(value, "number")
            low, high = _float_attr(control, "min"), _float_attr(control, "max")
            if low is not None and number < low:
                raise self._stop("value.number", f"must be at least {low:g}")
            if high is not None and number > high:
                raise self._stop("value.number", f"must be at most {high:g}")
        elif item_type == "datetime" and not isinstance(value.get("datetime"), str):
            raise self._stop("value.datetime", "must be a string")

    def _check_label_list(self, item_type: str, value: dict, control: Control) -> None:
        field = f"value.{item_type}"
        picked = value.get(item_type)
        if item_type not in value:
            raise self._stop(field, "is required")
        if not isinstance(picked, list) or not all(isinstance(v, str) for v in picked):
            raise self._stop(field, "must be a list of strings")
        if len(picked) > 1 and not control.multiple:
            raise self._stop(field, f'only one value is allowed (control "{control.name}" is not choice="multiple")')
        if control.dynamic_labels:
            return
        allowed = set(control.labels)
        for label in picked:
            if label not in allowed:
                raise self._stop(field, f'"{label}" is not a label of control "{control.name}"')

    def _check_taxonomy(self, value: dict, control: Control) -> None:
        paths = value.get("taxonomy")
        if not isinstance(paths, list) or not all(
            isinstance(path, list) and path and all(isinstance(v, str) for v in path) for path in paths
        ):
            raise self._stop("value.taxonomy", "must be a list of paths (non-empty lists of strings)")
        if control.dynamic_labels:
            return
        allowed = set(control.labels)
        for path in paths:
            for label in path:
                if label not in allowed:
                    raise self._stop("value.taxonomy", f'"{label}" is not a choice of control "{control.name}"')

    # -- required -----------------------------------------------------------------------------------------------

    def _check_required(self, result: list, regions: dict[str, _Region]) -> None:
        satisfied: dict[str, set[str | None]] = {}
        for item in result:
            if not isinstance(item, dict) or not isinstance(item.get("from_name"), str):
                continue
            control = self.config.controls.get(item["from_name"])
            if control is None or not _has_content(item, control):
                continue
            satisfied.setdefault(control.name, set()).add(_region_key(item.get("id")))
        for control in self.config.controls.values():
            if not control.required:
                continue
            done = satisfied.get(control.name, set())
            if not control.per_region:
                if not done:
                    self.errors.append(ResultError(region_id=None, field=control.name, message="required"))
                continue
            for region_id, region in regions.items():
                if region.to_name in control.to_name and _condition_applies(control, region) and region_id not in done:
                    self.errors.append(ResultError(region_id=region_id, field=control.name, message="required"))


def _float_attr(control: Control, attr: str) -> float | None:
    try:
        number = float(control.attrs[attr])
    except (KeyError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _has_content(item: dict, control: Control) -> bool:
    value = item.get("value")
    if not isinstance(value, dict):
        return False
    item_type = control.result_type
    if item_type == "textarea":
        text = value.get("text")
        texts = [text] if isinstance(text, str) else text if isinstance(text, list) else []
        return any(isinstance(t, str) and t.strip() for t in texts)
    if item_type in value:
        return value[item_type] not in (None, "", [], {})
    return True  # geometry-only controls: the item itself is the content


def _condition_applies(control: Control, region: _Region) -> bool:
    if control.attrs.get("whenTagName"):
        return control.attrs["whenTagName"] in region.from_names
    if control.attrs.get("whenLabelValue"):
        return control.attrs["whenLabelValue"] in region.labels
    if control.attrs.get("whenChoiceValue"):
        return control.attrs["whenChoiceValue"] in region.labels
    return True


# -- polygon geometry ------------------------------------------------------------------------------------------

_Point = tuple[float, float]


def _signed_area(points: list[_Point]) -> float:
    total = 0.0
    for i, (x1, y1) in enumerate(points):
        x2, y2 = points[(i + 1) % len(points)]
        total += x1 * y2 - x2 * y1
    return total / 2


def _orientation(a: _Point, b: _Point, c: _Point) -> int:
    """1 counter-clockwise, -1 clockwise, 0 collinear (within a small tolerance)."""
    cross = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    if abs(cross) <= 1e-12:
        return 0
    return 1 if cross > 0 else -1


def _on_segment(a: _Point, b: _Point, p: _Point) -> bool:
    """For p collinear with a-b: is p within the segment's bounding box?"""
    return min(a[0], b[0]) - 1e-12 <= p[0] <= max(a[0], b[0]) + 1e-12 and (
        min(a[1], b[1]) - 1e-12 <= p[1] <= max(a[1], b[1]) + 1e-12
    )


def _segments_touch(p1: _Point, p2: _Point, q1: _Point, q2: _Point) -> bool:
    """Do closed segments p1-p2 and q1-q2 share any point (crossing, touching or collinear overlap)?"""
    o1, o2 = _orientation(p1, p2, q1), _orientation(p1, p2, q2)
    o3, o4 = _orientation(q1, q2, p1), _orientation(q1, q2, p2)
    if o1 != o2 and o3 != o4 and 0 not in (o1, o2, o3, o4):
        return True
    return (
        (o1 == 0 and _on_segment(p1, p2, q1))
        or (o2 == 0 and _on_segment(p1, p2, q2))
        or (o3 == 0 and _on_segment(q1, q2, p1))
        or (o4 == 0 and _on_segment(q1, q2, p2))
    )


class _TooComplex(Exception):
    """The self-intersection test ran out of its edge-pair budget."""


def _self_intersection(points: list[_Point], budget: list[int]) -> tuple[int, int] | None:
    """A pair of edge indices (i < j) that makes the closed polygon non-simple, or None.

    Edge i runs from point i to point i+1 (the last edge closes the ring). Non-adjacent edges must share no
    point at all; adjacent edges share their common vertex and must not fold back along each other.

    Edges are swept along the axis where they overlap least, so natural outlines (even with thousands of
    points) compare few pairs; ``budget[0]`` (shared by every polygon of one result) is decremented per pair
    compared and `_TooComplex` is raised when it runs out, bounding the work on adversarial zigzags.
    """
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):  # adjacent edges: a -> b -> c folding back onto a-b is a collinear overlap
        a, b = edges[i]
        c = edges[(i + 1) % n][1]
        if _orientation(a, b, c) == 0 and (b[0] - a[0]) * (c[0] - b[0]) + (b[1] - a[1]) * (c[1] - b[1]) < 0:
            j = (i + 1) % n
            return (min(i, j), max(i, j))
    spread_x = sum(abs(p[0] - q[0]) for p, q in edges)
    spread_y = sum(abs(p[1] - q[1]) for p, q in edges)
    axis, other = (0, 1) if spread_x <= spread_y else (1, 0)
    spans = [
        (min(p[axis], q[axis]), max(p[axis], q[axis]), min(p[other], q[other]), max(p[other], q[other]))
        for p, q in edges
    ]
    order = sorted(range(n), key=lambda k: spans[k][0])
    for pos, i in enumerate(order):
        _, hi, lo_o, hi_o = spans[i]
        for j in order[pos + 1 :]:
            budget[0] -= 1
            if budget[0] < 0:
                raise _TooComplex
            lo_j, _, lo_oj, hi_oj = spans[j]
            if lo_j > hi + 1e-12:
                break
            if abs(i - j) in (1, n - 1) or lo_oj > hi_o + 1e-12 or hi_oj < lo_o - 1e-12:
                continue
            if _segments_touch(*edges[i], *edges[j]):
                return (min(i, j), max(i, j))
    return None
