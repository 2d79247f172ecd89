"""Label config parsing, validation, templates and config-change safety (pure unit tests, no database)."""

import pytest

from labeling.label_config import (
    OCR_DEFAULT_CONFIG,
    TEMPLATES,
    LabelConfigError,
    ParsedConfig,
    collect_used_labels,
    config_change_orphans,
    get_template,
    parse_label_config,
)


def _raises(xml: str) -> LabelConfigError:
    with pytest.raises(LabelConfigError) as info:
        parse_label_config(xml)
    return info.value


# -- the OCR template ----------------------------------------------------------------------------------------------


def test_ocr_template_controls_objects_and_data_keys():
    config = parse_label_config(OCR_DEFAULT_CONFIG)

    assert set(config.objects) == {"image"}
    image = config.objects["image"]
    assert (image.type, image.value, image.value_list) == ("Image", "ocr", False)
    assert config.data_keys == {"ocr"}

    assert list(config.controls) == ["label", "bbox", "poly", "transcription"]
    assert config.controls["label"].type == "Labels"
    assert config.controls["label"].labels == ["Text", "Handwriting"]
    assert config.controls["bbox"].type == "Rectangle"
    assert config.controls["poly"].type == "Polygon"
    transcription = config.controls["transcription"]
    assert transcription.type == "TextArea"
    assert transcription.to_name == ["image"]
    assert transcription.per_region and transcription.required
    assert not config.controls["label"].per_region and not config.controls["label"].required


def test_ocr_template_label_studio_dict_shape():
    parsed = parse_label_config(OCR_DEFAULT_CONFIG).to_label_studio_dict()

    assert set(parsed) == {"label", "bbox", "poly", "transcription"}
    assert parsed["label"] == {
        "type": "Labels",
        "to_name": ["image"],
        "inputs": [{"type": "Image", "value": "ocr", "valueType": None}],
        "labels": ["Text", "Handwriting"],
        "labels_attrs": {
            "Text": {"value": "Text", "background": "green"},
            "Handwriting": {"value": "Handwriting", "background": "blue"},
        },
    }
    assert parsed["bbox"]["labels"] == [] and parsed["bbox"]["labels_attrs"] == {}
    assert parsed["transcription"]["type"] == "TextArea"
    assert parsed["transcription"]["inputs"] == [{"type": "Image", "value": "ocr", "valueType": None}]


# -- templates -----------------------------------------------------------------------------------------------------


def test_template_gallery_has_the_expected_entries():
    ids = [t["id"] for t in TEMPLATES]
    assert ids[0] == "ocr"
    assert len(ids) == len(set(ids))
    assert {"ocr", "ocr-multipage", "ocr-labeled-regions", "document-classification", "bounding-boxes",
            "text-classification"} <= set(ids)
    for template in TEMPLATES:
        assert set(template) == {"id", "title", "group", "description", "config"}
        assert all(isinstance(v, str) and v for v in template.values())
    assert get_template("ocr")["config"] == OCR_DEFAULT_CONFIG
    assert get_template("nope") is None


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t["id"])
def test_every_template_parses(template):
    config = parse_label_config(template["config"])
    assert config.controls and config.objects
    assert config.to_label_studio_dict()


def test_multipage_template_uses_value_list():
    config = parse_label_config(get_template("ocr-multipage")["config"])
    image = config.objects["image"]
    assert image.value_list and image.value == "pages"
    assert config.data_keys == {"pages"}
    assert config.to_label_studio_dict()["bbox"]["inputs"] == [{"type": "Image", "valueList": "pages",
                                                                "valueType": None}]


def test_labeled_regions_template_has_labeled_tools():
    config = parse_label_config(get_template("ocr-labeled-regions")["config"])
    assert config.controls["bbox"].type == "RectangleLabels"
    assert config.controls["poly"].type == "PolygonLabels"
    assert config.controls["bbox"].labels == ["Text", "Handwriting"]


# -- accepted variations --------------------------------------------------------------------------------------------


def test_generous_layout_comments_declaration_and_alias():
    config = parse_label_config(
        """<?xml version="1.0" encoding="UTF-8"?>
        <View style="display: flex">
          <!-- a comment -->
          <Style>.x { color: red }</Style>
          <Header value="$title"/>
          <Collapse><Panel value="Document">
            <View><Image name="img" value="$image" valueType="url"/></View>
          </Panel></Collapse>
          <Choices name="kind" toName="img" choice="multiple">
            <View><Choice value="Invoice" alias="inv"/></View>
            <Choice value="Receipt"/>
          </Choices>
          <Filter name="f" toName="kind" minlength="0"/>
          <Relations><Relation value="next"/></Relations>
        </View>"""
    )
    assert config.controls["kind"].labels == ["inv", "Receipt"]
    assert config.objects["img"].value_type == "url"
    assert config.data_keys == {"image"}  # the Header's $title is layout, not a required data key


def test_empty_view_is_valid():
    config = parse_label_config("<View></View>")
    assert config.controls == {} and config.objects == {} and config.data_keys == set()


def test_control_may_come_before_its_object_and_target_several():
    config = parse_label_config(
        '<View><Pairwise name="cmp" toName="left, right"/>'
        '<Text name="left" value="$a"/><Text name="right" value="$b"/></View>'
    )
    assert config.controls["cmp"].to_name == ["left", "right"]
    assert config.data_keys == {"a", "b"}


def test_dynamic_choices_need_no_children():
    config = parse_label_config('<View><Text name="t" value="$text"/>'
                                '<Choices name="c" toName="t" value="$options"/></View>')
    assert config.controls["c"].dynamic_labels
    assert config.to_label_studio_dict()["c"]["dynamic_labels"] is True


def test_repeater_data_key():
    config = parse_label_config(
        '<View><Repeater on="$images" indexFlag="{{idx}}">'
        '<Image name="page_{{idx}}" value="$images[{{idx}}].url"/>'
        '<Rectangle name="box_{{idx}}" toName="page_{{idx}}"/></Repeater></View>'
    )
    assert config.data_keys == {"images"}


# -- malformed configs --------------------------------------------------------------------------------------------


def test_not_xml():
    err = _raises("<View><Image name='a' value='$a'></View>")
    assert err.message.startswith("label config is not well-formed XML:")
    assert err.line == 1


def test_plain_text_is_not_xml():
    assert "not well-formed XML" in _raises("just some text").message


def test_empty_config():
    assert _raises("   ").message == "label config is empty"


def test_root_must_be_view():
    err = _raises('<Image name="image" value="$ocr"/>')
    assert err.message == "root tag must be <View>, got <Image>"


def test_duplicate_names():
    err = _raises('<View>\n<Image name="image" value="$a"/>\n<Text name="image" value="$b"/>\n</View>')
    assert err.message == '<Text name="image"> name="image": duplicate name, already used by <Image> on line 2'
    assert err.line == 3
    assert str(err).endswith("(line 3)")


def test_duplicate_name_between_control_and_object():
    err = _raises('<View><Image name="image" value="$a"/><Rectangle name="image" toName="image"/></View>')
    assert err.message.startswith('<Rectangle name="image"> name="image": duplicate name')


def test_missing_name():
    assert _raises('<View><Image value="$a"/></View>').message == "<Image>: is missing a non-empty name"
    assert _raises('<View><Image name=" " value="$a"/></View>').message == (
        '<Image> name=" ": is missing a non-empty name'
    )


def test_to_name_refers_to_missing_object():
    err = _raises('<View><Image name="image" value="$ocr"/>\n<Rectangle name="bbox" toName="img"/></View>')
    assert err.message == '<Rectangle name="bbox"> toName="img": no object tag named "img"'
    assert err.line == 2


def test_to_name_refers_to_a_control():
    err = _raises('<View><Image name="image" value="$ocr"/><Rectangle name="bbox" toName="image"/>'
                  '<TextArea name="t" toName="bbox"/></View>')
    assert err.message == (
        '<TextArea name="t"> toName="bbox": no object tag named "bbox" (<Rectangle> is not an object tag)'
    )


def test_one_bad_entry_in_a_to_name_list():
    err = _raises('<View><Image name="a" value="$a"/><Rectangle name="r" toName="a,b"/></View>')
    assert err.message == '<Rectangle name="r"> toName="a,b": no object tag named "b"'


def test_missing_to_name():
    err = _raises('<View><Image name="a" value="$a"/><Rectangle name="r"/></View>')
    assert err.message == '<Rectangle name="r">: is missing toName'


def test_value_without_dollar():
    err = _raises('<View><Image name="image" value="ocr"/></View>')
    assert err.message == '<Image name="image"> value="ocr": must reference task data, like "$field"'


def test_missing_value():
    err = _raises('<View><Text name="t"/></View>')
    assert err.message == '<Text name="t">: is missing value="$field"'
    err = _raises('<View><Image name="i"/></View>')
    assert err.message == '<Image name="i">: is missing value="$field" (or valueList="$field")'


def test_value_list_only_on_image():
    err = _raises('<View><Text name="t" valueList="$texts"/></View>')
    assert err.message == '<Text name="t"> valueList="$texts": valueList is only supported on Image'


def test_labels_without_label():
    err = _raises('<View><Image name="image" value="$ocr"/><Labels name="label" toName="image"></Labels></View>')
    assert err.message == '<Labels name="label">: needs at least one <Label value="..."/> child'


def test_choices_without_choice():
    err = _raises('<View><Text name="t" value="$t"/><Choices name="c" toName="t"/></View>')
    assert err.message == '<Choices name="c">: needs at least one <Choice value="..."/> child'


def test_label_without_value():
    err = _raises('<View><Image name="i" value="$i"/><Labels name="l" toName="i"><Label background="red"/>'
                  '</Labels></View>')
    assert err.message == '<Label> in <Labels name="l">: is missing a non-empty value'


def test_duplicate_label_values():
    err = _raises(
        '<View><Image name="i" value="$i"/>\n<Labels name="label" toName="i">\n<Label value="Text"/>\n'
        '<Label value="Text"/>\n</Labels></View>'
    )
    assert err.message == '<Label value="Text"> in <Labels name="label">: duplicate value (first defined on line 3)'
    assert err.line == 4


def test_label_outside_a_control():
    err = _raises('<View><Label value="x"/></View>')
    assert err.message == "<Label>: must be inside a control tag such as <Labels> or <Choices>"


def test_unknown_control_tag():
    err = _raises('<View><Image name="i" value="$i"/><Scribble name="s" toName="i"/></View>')
    assert err.message == '<Scribble name="s"> toName="i": unknown control tag <Scribble>'


def test_xxe_entity_is_refused():
    xml = (
        '<?xml version="1.0"?>\n<!DOCTYPE View [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        '<View><Header value="&xxe;"/><Image name="i" value="$i"/></View>'
    )
    assert _raises(xml).message == "label config must not contain a DOCTYPE or ENTITY declaration"


def test_billion_laughs_is_refused():
    xml = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><View>&lol2;</View>'
    assert "DOCTYPE" in _raises(xml).message


def test_undeclared_entity_is_not_xml():
    assert "not well-formed XML" in _raises("<View>&foo;</View>").message


def test_error_is_a_value_error():
    with pytest.raises(ValueError, match="no object tag"):
        parse_label_config('<View><Rectangle name="r" toName="x"/></View>')


# -- config changes ------------------------------------------------------------------------------------------------


def _ocr() -> ParsedConfig:
    return parse_label_config(OCR_DEFAULT_CONFIG)


def _ocr_with(replace: str, by: str) -> ParsedConfig:
    assert replace in OCR_DEFAULT_CONFIG
    return parse_label_config(OCR_DEFAULT_CONFIG.replace(replace, by))


def test_orphans_none_when_unchanged_or_only_additions():
    used = {"label": {"Text", "Handwriting"}, "bbox": set(), "transcription": set()}
    assert config_change_orphans(old=_ocr(), new=_ocr(), used=used) == []
    added = _ocr_with('<Label value="Handwriting" background="blue"/>',
                      '<Label value="Handwriting" background="blue"/><Label value="Stamp"/>')
    assert config_change_orphans(old=_ocr(), new=added, used=used) == []


def test_orphans_removed_unused_things_are_safe():
    new = _ocr_with('<Polygon name="poly" toName="image" strokeWidth="3"/>', "")
    new = parse_label_config(new.xml.replace('<Label value="Handwriting" background="blue"/>', ""))
    assert config_change_orphans(old=_ocr(), new=new, used={"label": {"Text"}, "bbox": set()}) == []


def test_orphans_removed_control():
    new = _ocr_with('<Polygon name="poly" toName="image" strokeWidth="3"/>', "")
    assert config_change_orphans(old=_ocr(), new=new, used={"poly": set(), "bbox": set()}) == [
        'control "poly" is used by existing annotations but was removed'
    ]


def test_orphans_removed_label():
    new = _ocr_with('<Label value="Handwriting" background="blue"/>', "")
    assert config_change_orphans(old=_ocr(), new=new, used={"label": {"Text", "Handwriting"}}) == [
        'label "Handwriting" of "label" is used by existing annotations but was removed'
    ]


def test_orphans_changed_type():
    new = parse_label_config(
        OCR_DEFAULT_CONFIG.replace("<Labels", "<Choices").replace("</Labels>", "</Choices>")
        .replace("<Label ", "<Choice ")
    )
    assert config_change_orphans(old=_ocr(), new=new, used={"label": {"Text"}}) == [
        'control "label" is used by existing annotations but changed type from Labels to Choices'
    ]


def test_orphans_ignore_things_the_old_config_did_not_have():
    assert config_change_orphans(old=_ocr(), new=_ocr(), used={"ghost": set(), "label": {"Stamp"}}) == []


def test_orphans_several_sorted():
    new = parse_label_config(
        '<View><Image name="image" value="$ocr"/>'
        '<Labels name="label" toName="image"><Label value="Printed"/></Labels></View>'
    )
    used = {"transcription": set(), "label": {"Text", "Handwriting"}, "bbox": set()}
    assert config_change_orphans(old=_ocr(), new=new, used=used) == [
        'control "bbox" is used by existing annotations but was removed',
        'label "Handwriting" of "label" is used by existing annotations but was removed',
        'label "Text" of "label" is used by existing annotations but was removed',
        'control "transcription" is used by existing annotations but was removed',
    ]


def test_collect_used_labels():
    results = [
        [
            {"id": "r1", "from_name": "bbox", "to_name": "image", "type": "rectangle", "value": {"x": 1}},
            {"id": "r1", "from_name": "label", "to_name": "image", "type": "labels", "value": {"labels": ["Text"]}},
            {"id": "r1", "from_name": "transcription", "type": "textarea", "value": {"text": ["hi"]}},
        ],
        [{"id": "r2", "from_name": "label", "type": "labels", "value": {"labels": ["Handwriting"]}}, "junk"],
        "not a list",
    ]
    assert collect_used_labels(results=results) == {
        "bbox": set(),
        "label": {"Text", "Handwriting"},
        "transcription": set(),
    }
