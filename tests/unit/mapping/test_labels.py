"""Label files in the formats models ship with: plain lines, label_map.pbtxt, metadata.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.mapping.labels import LabelFileError, LabelMap

# As the TF Object Detection API ships them (mscoco_label_map.pbtxt), comments included.
LABEL_MAP = """\
# COCO, 1-based
item {
  name: "/m/01g317"
  id: 1
  display_name: "person"
}
item {
  name: "/m/0199g"
  id: 2
  display_name: "bicycle"
}
item { id: 4 name: 'motorcycle' }
"""
# As ultralytics writes it next to a SavedModel export.
METADATA = """\
description: Ultralytics YOLO11n model
stride: 32
task: detect
batch: 1
imgsz: [640, 640]
names:
  0: person
  1: bicycle
  2: car
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_text_file_names_class_n_on_line_n(tmp_path: Path) -> None:
    labels = LabelMap.from_file(write(tmp_path, "labels.txt", "background\ncat\n\ndog\n"))
    assert [labels.name(i) for i in range(5)] == ["background", "cat", "2", "dog", "4"]


def test_a_label_map_pbtxt_is_read_by_id_preferring_display_names(tmp_path: Path) -> None:
    labels = LabelMap.from_file(write(tmp_path, "label_map.pbtxt", LABEL_MAP))
    assert labels.names == ("", "person", "bicycle", "", "motorcycle")
    assert labels.name(0) == "0"  # the background stays unnamed


def test_an_ultralytics_metadata_yaml_gives_its_names(tmp_path: Path) -> None:
    labels = LabelMap.from_file(write(tmp_path, "metadata.yaml", METADATA))
    assert labels.names == ("person", "bicycle", "car")


def test_a_yaml_list_of_names_is_read_in_order(tmp_path: Path) -> None:
    labels = LabelMap.from_file(write(tmp_path, "names.yml", "[cat, dog]\n"))
    assert labels.names == ("cat", "dog")


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("label_map.pbtxt", "item { name: 'cat' }", "no id"),
        ("label_map.pbtxt", "item { id: 1 }", "no name"),
        ("label_map.pbtxt", "nothing here", "names no class"),
        ("metadata.yaml", "names: [cat\n", "not YAML"),
        ("metadata.yaml", "names: 3\n", "has no names"),
        ("metadata.yaml", "names: {cat: 0}\n", "has no names"),
    ],
)
def test_a_file_not_in_its_suffixs_format_is_refused(
    tmp_path: Path, name: str, text: str, fragment: str
) -> None:
    with pytest.raises(LabelFileError, match=fragment):
        LabelMap.from_file(write(tmp_path, name, text))
