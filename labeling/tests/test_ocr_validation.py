"""Annotation result validation against the OCR label configs (pure unit tests, no database)."""

import copy
import math

import pytest

from labeling import ocr_validation
from labeling.label_config import OCR_DEFAULT_CONFIG, get_template, parse_label_config
from labeling.ocr_validation import ResultError, result_errors, validate_result

OCR = parse_label_config(OCR_DEFAULT_CONFIG)
OCR_MULTIPAGE = parse_label_config(get_template("ocr-multipage")["config"])
OCR_LABELED = parse_label_config(get_template("ocr-labeled-regions")["config"])
CLASSIFY = parse_label_config(get_template("document-classification")["config"])

BOX = {"x": 10, "y": 5.5, "width": 30, "height": 4, "rotation": 0}
TRIANGLE = [[10, 10], [40, 12], [20, 30]]


def _region(region_id: str, *, box: dict | None = None, label: str | None = "Text", text="Hello") -> list[dict]:
    """The three items Label Studio writes for one OCR rectangle region."""
    geometry = dict(box or BOX)
    items = [{"id": region_id, "from_name": "bbox", "to_name": "image", "type": "rectangle", "value": geometry,
              "original_width": 2480, "original_height": 3508, "image_rotation": 0}]
    if label is not None:
        items.append({"id": region_id, "from_name": "label", "to_name": "image", "type": "labels",
                      "value": {**geometry, "labels": [label]}})
    if text is not None:
        items.append({"id": region_id, "from_name": "transcription", "to_name": "image", "type": "textarea",
                      "value": {**geometry, "text": [text] if isinstance(text, str) else text}})
    return items


def _polygon_region(region_id: str, points, *, text="Hello") -> list[dict]:
    items = [{"id": region_id, "from_name": "poly", "to_name": "image", "type": "polygon",
              "value": {"points": points, "closed": True}}]
    if text is not None:
        items.append({"id": region_id, "from_name": "transcription", "to_name": "image", "type": "textarea",
                      "value": {"points": points, "text": [text]}})
    return items


def _error(result, config=OCR, **kwargs) -> ResultError:
    with pytest.raises(ResultError) as info:
        validate_result(result=result, config=config, **kwargs)
    return info.value


def _assert_error(result, *, region_id, field, contains="", config=OCR, **kwargs) -> ResultError:
    err = _error(result, config=config, **kwargs)
    assert (err.region_id, err.field) == (region_id, field), str(err)
    assert contains in err.message, str(err)
    return err


# -- valid results -------------------------------------------------------------------------------------------------


def test_valid_rectangle_labels_and_transcription():
    validate_result(result=_region("r1") + _region("r2", label="Handwriting", text="Hi there"), config=OCR)


def test_valid_polygon_with_transcription():
    validate_result(result=_polygon_region("p1", TRIANGLE), config=OCR)


def test_valid_mixed_and_concave_polygon():
    concave = [[10, 10], [50, 10], [50, 50], [30, 20], [10, 50]]
    validate_result(result=_region("r1") + _polygon_region("p1", concave), config=OCR)


def test_valid_edges_of_the_image():
    validate_result(result=_region("r1", box={"x": 0, "y": 0, "width": 100, "height": 100}), config=OCR)
    almost = {"x": 60, "y": 0, "width": 40.0000000001, "height": 10}
    validate_result(result=_region("r1", box=almost), config=OCR)


def test_valid_empty_result_and_text_as_string():
    validate_result(result=[], config=OCR)
    items = _region("r1")
    items[2]["value"]["text"] = "plain string"
    validate_result(result=items, config=OCR)


def test_valid_polygon_with_explicit_closing_point():
    validate_result(result=_polygon_region("p1", [*TRIANGLE, TRIANGLE[0]]), config=OCR)


def test_valid_labeled_regions_template():
    result = [
        {"id": "a", "from_name": "bbox", "to_name": "image", "type": "rectanglelabels",
         "value": {**BOX, "rectanglelabels": ["Handwriting"]}},
        {"id": "a", "from_name": "transcription", "to_name": "image", "type": "textarea", "value": {"text": ["x"]}},
        {"id": "b", "from_name": "poly", "to_name": "image", "type": "PolygonLabels",
         "value": {"points": TRIANGLE, "polygonlabels": ["Text"]}},
        {"id": "b", "from_name": "transcription", "to_name": "image", "type": "textarea", "value": {"text": ["y"]}},
        {"type": "relation", "from_id": "a", "to_id": "b", "direction": "right", "labels": []},
    ]
    validate_result(result=result, config=OCR_LABELED)


def test_valid_multipage_item_index():
    items = _region("r1")
    for item in items:
        item["to_name"] = "image"
        item["item_index"] = 2
    validate_result(result=items, config=OCR_MULTIPAGE, page_count=3)
    validate_result(result=items, config=OCR_MULTIPAGE)  # page count unknown: any index >= 0


def test_required_can_be_skipped():
    validate_result(result=_region("r1", text=None), config=OCR, require_required=False)


# -- rectangles ----------------------------------------------------------------------------------------------------


def test_box_overflows_right_edge():
    items = _region("r1", box={"x": 80, "y": 5, "width": 25, "height": 4})
    err = _assert_error(items, region_id="r1", field="value.width", contains="x + width must not exceed 100")
    assert str(err) == 'region "r1": value.width: x + width must not exceed 100 (got 105)'
    assert err.index == 0


def test_box_overflows_bottom_edge():
    _assert_error(_region("r1", box={"x": 0, "y": 90, "width": 5, "height": 20}), region_id="r1",
                  field="value.height", contains="y + height")


def test_box_negative_y():
    err = _assert_error(_region("r1", box={"x": 1, "y": -2, "width": 5, "height": 5}), region_id="r1",
                        field="value.y")
    assert str(err) == 'region "r1": value.y: must be between 0 and 100'


def test_box_zero_width():
    _assert_error(_region("r7", box={"x": 1, "y": 2, "width": 0, "height": 5}), region_id="r7",
                  field="value.width", contains="greater than 0")


def test_box_missing_coordinate():
    _assert_error(_region("r1", box={"x": 1, "y": 2, "width": 5}), region_id="r1", field="value.height",
                  contains="required")


def test_box_nan():
    _assert_error(_region("r1", box={"x": math.nan, "y": 2, "width": 5, "height": 5}), region_id="r1",
                  field="value.x", contains="finite")


def test_box_infinity():
    _assert_error(_region("r1", box={"x": 1, "y": 2, "width": math.inf, "height": 5}), region_id="r1",
                  field="value.width", contains="finite")


def test_box_bool_is_not_a_number():
    _assert_error(_region("r1", box={"x": True, "y": 2, "width": 5, "height": 5}), region_id="r1",
                  field="value.x", contains="must be a number")


def test_box_string_is_not_a_number():
    _assert_error(_region("r1", box={"x": "1", "y": 2, "width": 5, "height": 5}), region_id="r1",
                  field="value.x", contains="must be a number")


def test_rotated_box_checks_anchor_only():
    validate_result(result=_region("r1", box={"x": 90, "y": 5, "width": 30, "height": 4, "rotation": 90}),
                    config=OCR)
    _assert_error(_region("r1", box={"x": 101, "y": 5, "width": 3, "height": 4, "rotation": 45}),
                  region_id="r1", field="value.x")


# -- polygons ------------------------------------------------------------------------------------------------------


def test_polygon_with_two_points():
    err = _assert_error(_polygon_region("p1", [[1, 1], [5, 5]]), region_id="p1", field="value.points",
                        contains="at least 3 points")
    assert str(err) == 'region "p1": value.points: a polygon needs at least 3 points (got 2)'


def test_bow_tie_polygon_self_intersects():
    bow_tie = [[10, 10], [50, 50], [50, 10], [10, 50]]
    _assert_error(_polygon_region("p1", bow_tie), region_id="p1", field="value.points",
                  contains="intersects itself (edges 0-1 and 2-3)")


def test_polygon_touching_itself_counts_as_intersection():
    # vertex 3 lies on edge 0-1
    touching = [[10, 10], [50, 10], [50, 40], [30, 10], [10, 40]]
    _assert_error(_polygon_region("p1", touching), region_id="p1", field="value.points", contains="intersects")


def test_polygon_collinear_overlap_counts_as_intersection():
    # edges 0-1 and 3-4 run along y=10 and overlap between x=20 and x=30
    overlapping = [[10, 10], [30, 10], [30, 30], [20, 10], [20, 40]]
    _assert_error(_polygon_region("p1", overlapping), region_id="p1", field="value.points", contains="intersects")


def test_polygon_folding_back_on_itself():
    _assert_error(_polygon_region("p1", [[10, 10], [40, 10], [20, 10], [20, 30]]), region_id="p1",
                  field="value.points", contains="intersects")


def test_polygon_point_out_of_range():
    err = _assert_error(_polygon_region("p1", [[10, 10], [40, 12], [20, 100.5]]), region_id="p1",
                        field="value.points[2]", contains="outside 0..100")
    assert str(err) == 'region "p1": value.points[2]: (20, 100.5) is outside 0..100'


def test_polygon_point_not_a_pair():
    _assert_error(_polygon_region("p1", [[10, 10], [40, 12, 3], [20, 30]]), region_id="p1",
                  field="value.points[1]", contains="[x, y] pair")
    _assert_error(_polygon_region("p1", [[10, 10], [40, False], [20, 30]]), region_id="p1",
                  field="value.points[1]", contains="[x, y] pair")


def test_polygon_nan_point():
    _assert_error(_polygon_region("p1", [[10, 10], [40, 12], [math.nan, 30]]), region_id="p1",
                  field="value.points[2][0]", contains="finite")


def test_polygon_zero_area_and_repeated_points():
    _assert_error(_polygon_region("p1", [[10, 10], [20, 20], [20, 20], [5, 30]]), region_id="p1",
                  field="value.points[2]", contains="repeats")
    _assert_error(_polygon_region("p1", [[10, 10], [20, 20], [30, 30]]), region_id="p1", field="value.points")


def test_polygon_points_must_be_a_list():
    _assert_error(_polygon_region("p1", "10,10 20,20 30,10"), region_id="p1", field="value.points",
                  contains="list")


def test_polygon_with_many_points_passes():
    n = 3000
    circle = [[50 + 40 * math.cos(2 * math.pi * i / n), 50 + 40 * math.sin(2 * math.pi * i / n)] for i in range(n)]
    validate_result(result=_polygon_region("p1", circle), config=OCR)


def test_polygon_too_intricate_to_check_is_refused(monkeypatch):
    monkeypatch.setattr(ocr_validation, "POLYGON_PAIR_BUDGET", 0)
    monkeypatch.setattr(ocr_validation, "POLYGON_PAIR_BUDGET_PER_POINT", 2)
    n = 200  # a valid but dense zigzag: every edge spans most of the page both ways
    zigzag = [[(i % 2) * 60 + 5 + 30 * i / n, 5 + (i % 2) * 30 + 60 * i / n] for i in range(n)] + [[0.1, 99], [0.1, 1]]
    _assert_error(_polygon_region("p1", zigzag), region_id="p1", field="value.points", contains="too intricate")
    monkeypatch.setattr(ocr_validation, "POLYGON_PAIR_BUDGET", 10**9)
    validate_result(result=_polygon_region("p1", zigzag), config=OCR)


def test_polygon_with_too_many_points(monkeypatch):
    monkeypatch.setattr(ocr_validation, "MAX_POLYGON_POINTS", 3)
    _assert_error(_polygon_region("p1", [[10, 10], [20, 10], [20, 20], [10, 20]]), region_id="p1",
                  field="value.points", contains="at most 3 points")


# -- labels, names and types ---------------------------------------------------------------------------------------


def test_unknown_label():
    err = _assert_error(_region("r1", label="Stamp"), region_id="r1", field="value.labels")
    assert err.message == '"Stamp" is not a label of control "label"'


def test_labels_must_be_strings():
    items = _region("r1")
    items[1]["value"]["labels"] = "Text"
    _assert_error(items, region_id="r1", field="value.labels", contains="list of strings")


def test_single_choice_control_refuses_two_labels():
    items = _region("r1")
    items[1]["value"]["labels"] = ["Text", "Handwriting"]
    _assert_error(items, region_id="r1", field="value.labels", contains="only one")


def test_unknown_from_name():
    items = _region("r1")
    items[2]["from_name"] = "ocr_text"
    err = _assert_error(items, region_id="r1", field="from_name")
    assert err.message == 'no control named "ocr_text" in the label config'
    assert err.index == 2


def test_to_name_not_in_to_name_list():
    items = _region("r1")
    items[0]["to_name"] = "page"
    err = _assert_error(items, region_id="r1", field="to_name")
    assert err.message == '"page" is not a target of control "bbox" (toName: image)'


def test_type_mismatch():
    items = _region("r1")
    items[0]["type"] = "polygon"
    err = _assert_error(items, region_id="r1", field="type")
    assert err.message == 'expected "rectangle" for <Rectangle name="bbox">, got "polygon"'


def test_type_is_case_insensitive():
    items = _region("r1")
    items[0]["type"] = "Rectangle"
    items[1]["type"] = "LABELS"
    validate_result(result=items, config=OCR)


def test_value_must_be_an_object():
    items = _region("r1")
    items[0]["value"] = [1, 2]
    _assert_error(items, region_id="r1", field="value", contains="object")


def test_result_must_be_a_list_of_objects():
    err = _error({"id": "r1"})
    assert (err.region_id, err.field, str(err)) == (None, "result", "result: result: must be a list of objects")
    err = _error(["nope"])
    assert str(err) == "result[0]: must be an object"


def test_item_without_id_is_reported_by_index():
    items = _region("r1")
    del items[0]["id"]
    items[0]["value"]["x"] = 200
    err = _error(items)
    assert err.region_id is None and err.index == 0
    assert str(err).startswith("result[0]: value.x:")


def test_duplicate_item_for_a_control_in_one_region():
    items = _region("r1")
    items.append(copy.deepcopy(items[2]))
    _assert_error(items, region_id="r1", field="from_name", contains="duplicate")


def test_bad_original_size():
    items = _region("r1")
    items[0]["original_width"] = 0
    _assert_error(items, region_id="r1", field="original_width", contains="positive")


def test_choices_validation():
    good = [{"id": "c", "from_name": "document_type", "to_name": "image", "type": "choices",
             "value": {"choices": ["Invoice"]}}]
    validate_result(result=good, config=CLASSIFY)
    bad = copy.deepcopy(good)
    bad[0]["value"]["choices"] = ["Passport"]
    _assert_error(bad, config=CLASSIFY, region_id="c", field="value.choices", contains='"Passport"')


def test_relation_must_point_at_regions():
    items = _region("r1") + [{"type": "relation", "from_id": "r1", "to_id": "zz"}]
    err = _error(items)
    assert (err.field, err.index) == ("to_id", 3)


# -- per-region transcriptions and required ------------------------------------------------------------------------


def test_textarea_per_region_with_unknown_region_id():
    items = _region("r1")
    items[2]["id"] = "ghost"
    err = _error(items)
    assert (err.region_id, err.field) == ("ghost", "id")
    assert "per-region" in err.message
    # and the real region now lacks its transcription
    assert [str(e) for e in err.errors] == [
        str(err),
        'region "r1": transcription: required',
    ]


def test_textarea_per_region_without_id():
    items = _region("r1")
    del items[2]["id"]
    err = _error(items)
    assert (err.region_id, err.field, err.index) == (None, "id", 2)


def test_missing_required_transcription_for_a_region():
    items = _region("r1") + _region("r2", text=None)
    err = _assert_error(items, region_id="r2", field="transcription", contains="required")
    assert str(err) == 'region "r2": transcription: required'


def test_missing_required_transcription_for_a_polygon():
    _assert_error(_polygon_region("p1", TRIANGLE, text=None), region_id="p1", field="transcription")


def test_blank_transcription_does_not_count():
    _assert_error(_region("r1", text=["  "]), region_id="r1", field="transcription", contains="required")


def test_required_non_per_region_control():
    result = [{"id": "x", "from_name": "document_type", "to_name": "image", "type": "choices",
               "value": {"choices": []}}]
    err = _error(result, config=CLASSIFY)
    assert str(err) == "result: document_type: required"


def test_when_label_value_limits_required_regions():
    config = parse_label_config(
        OCR_DEFAULT_CONFIG.replace('perRegion="true"', 'perRegion="true" whenLabelValue="Handwriting"')
    )
    validate_result(result=_region("r1", label="Text", text=None), config=config)
    with pytest.raises(ResultError) as info:
        validate_result(result=_region("r1", label="Handwriting", text=None), config=config)
    assert str(info.value) == 'region "r1": transcription: required'


# -- multi-page ----------------------------------------------------------------------------------------------------


def test_item_index_beyond_page_count():
    items = _region("r1")
    for item in items:
        item["item_index"] = 3
    err = _assert_error(items, config=OCR_MULTIPAGE, page_count=3, region_id="r1", field="item_index")
    assert err.message == "must be less than the page count (3)"


def test_item_index_must_be_a_non_negative_int():
    items = _region("r1")
    items[0]["item_index"] = -1
    _assert_error(items, config=OCR_MULTIPAGE, region_id="r1", field="item_index")
    items[0]["item_index"] = True
    _assert_error(items, config=OCR_MULTIPAGE, region_id="r1", field="item_index")


# -- error collection ----------------------------------------------------------------------------------------------


def test_all_errors_are_collected_in_order():
    items = _region("r1", box={"x": 1, "y": -1, "width": 5, "height": 5}) + _region("r2", label="Stamp", text=None)
    errors = result_errors(result=items, config=OCR)
    # r1's labels and textarea items repeat the bad geometry: reported once, for the rectangle
    assert [str(e) for e in errors] == [
        'region "r1": value.y: must be between 0 and 100',
        'region "r2": value.labels: "Stamp" is not a label of control "label"',
        'region "r2": transcription: required',
    ]
    assert [e.index for e in errors] == [0, 4, None]
    with pytest.raises(ResultError) as info:
        validate_result(result=items, config=OCR)
    assert [str(e) for e in info.value.errors] == [str(e) for e in errors]
    assert info.value.as_dict() == {"region_id": "r1", "index": 0, "field": "value.y",
                                    "message": "must be between 0 and 100"}
    assert isinstance(info.value, ValueError)
