"""Label maps: class id -> human-readable name, from the label files models ship with.

Three formats, by file suffix:

- ``.txt`` (or anything else): one name per line, line N (from 0) names class N;
- ``.pbtxt``: a TF Object Detection API ``label_map.pbtxt`` (``item { id: 1
  name: "..." display_name: "..." }``; ids are 1-based, id 0 stays unnamed);
- ``.yaml`` / ``.yml``: an ultralytics ``metadata.yaml`` (``names: {0: person,
  ...}`` or a list), or a file holding only that mapping or list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

_ITEM = re.compile(r"\bitem\s*\{([^{}]*)\}")
_FIELD = re.compile(r"\b(id|name|display_name)\s*:\s*(?:\"((?:[^\"\\]|\\.)*)\"|'([^']*)'|(-?\d+))")


class LabelFileError(ValueError):
    """A label file that is not in the format its suffix names."""


@dataclass(frozen=True)
class LabelMap:
    """Names indexed by class id: line N of the file (from 0) names class N."""

    names: tuple[str, ...] = ()

    @classmethod
    def from_file(cls, path: Path) -> LabelMap:
        """Read a label file in the format its suffix names (see the module's docstring).

        Raises OSError when it cannot be read, :class:`LabelFileError` when it
        is not in that format.
        """
        text = path.read_text(encoding="utf-8")
        suffix = path.suffix.lower()
        if suffix == ".pbtxt":
            return cls._of_ids(_label_map_items(text))
        if suffix in (".yaml", ".yml"):
            return cls._of_ids(_yaml_names(text))
        # A line's index is its class id; blank lines keep their id.
        return cls(tuple(line.strip() for line in text.splitlines()))

    @classmethod
    def _of_ids(cls, names: Mapping[int, str]) -> LabelMap:
        if not names:
            raise LabelFileError("names no class")
        table = [""] * (max(names) + 1)
        for class_id, name in names.items():
            table[class_id] = name
        return cls(tuple(table))

    @classmethod
    def of(cls, names: Sequence[str]) -> LabelMap:
        """Build a label map from names in class-id order."""
        return cls(tuple(names))

    def name(self, class_id: int) -> str:
        """The label of ``class_id``, or the id as text when the file doesn't name it."""
        if 0 <= class_id < len(self.names) and self.names[class_id]:
            return self.names[class_id]
        return str(class_id)

    def __len__(self) -> int:
        return len(self.names)


def _label_map_items(text: str) -> dict[int, str]:
    """``id -> display_name`` (else ``name``) of every ``item`` of a label_map.pbtxt."""
    names: dict[int, str] = {}
    for number, item in enumerate(_ITEM.findall(text), start=1):
        found = {
            key: quoted or single or digits for key, quoted, single, digits in _FIELD.findall(item)
        }
        if "id" not in found or not found["id"].isdigit():
            raise LabelFileError(f"item {number} has no id")
        name = found.get("display_name") or found.get("name")
        if not name:
            raise LabelFileError(f"item {number} (id {found['id']}) has no name")
        names[int(found["id"])] = name
    return names


def _yaml_names(text: str) -> dict[int, str]:
    """The ``names`` of an ultralytics metadata.yaml (a mapping or a list)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise LabelFileError("is not YAML") from None
    names = data.get("names", data) if isinstance(data, dict) else data
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not all(
        isinstance(key, int) and key >= 0 and isinstance(value, str | int)
        for key, value in names.items()
    ):
        raise LabelFileError("has no names: a list, or class id -> name")
    return {key: str(value) for key, value in names.items()}
