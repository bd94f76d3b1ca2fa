"""Label maps: class id -> human-readable name, from a one-name-per-line file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabelMap:
    """Names indexed by class id: line N of the file (from 0) names class N."""

    names: tuple[str, ...] = ()

    @classmethod
    def from_file(cls, path: Path) -> LabelMap:
        """Read a label file; a line's index is its class id, blank lines keep their id."""
        lines = path.read_text(encoding="utf-8").splitlines()
        return cls(tuple(line.strip() for line in lines))

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
