"""Request options and JSON bodies of the inference endpoints, validated with marshmallow.

Unknown options are rejected (``unknown=RAISE``) so a misspelt ``min_scor``
is a 422 naming the field, not a silently ignored default. The same schemas
read query strings (every value a string; ``labels`` comma-separated) and
JSON bodies (``labels`` an array).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from adapter.mapping.detection import DEFAULT_MAX_RESULTS, DEFAULT_MIN_SCORE

MAX_RESULTS_LIMIT = 100
TOP_K_LIMIT = 100
MAX_LABELS = 100
MAX_LABEL_LENGTH = 128
_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+(;[\w.+-]+=[\w.+-]+)*;base64,", re.ASCII)
_BASE64_TEXT = re.compile(r"^[A-Za-z0-9+/]*={0,2}$", re.ASCII)


class LabelFilter(fields.Field[frozenset[str]]):
    """Label names to keep: ``"7,3"`` in a query string, ``["7", "3"]`` in JSON."""

    default_error_messages = {  # noqa: RUF012  # marshmallow's own convention
        "invalid": "Give label names as an array of strings (comma-separated in a query).",
        "empty": "Give at least one label name.",
        "too_many": f"Give at most {MAX_LABELS} label names.",
        "too_long": f"A label name is at most {MAX_LABEL_LENGTH} characters.",
    }

    def __init__(self, *, text: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = text  # whether "7,3" is accepted (query strings) besides arrays

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> frozenset[str]:
        if isinstance(value, str) and self.text:
            names = [name.strip() for name in value.split(",")]
        elif isinstance(value, list) and all(isinstance(name, str) for name in value):
            names = [name.strip() for name in value]
        else:
            raise self.make_error("invalid")
        names = [name for name in names if name]
        if not names:
            raise self.make_error("empty")
        if len(names) > MAX_LABELS:
            raise self.make_error("too_many")
        if any(len(name) > MAX_LABEL_LENGTH for name in names):
            raise self.make_error("too_long")
        return frozenset(names)


class Base64Image(fields.Field[bytes]):
    """An image as base64 text (padding optional), or as a ``data:`` URL."""

    default_error_messages = {  # noqa: RUF012  # marshmallow's own convention
        "invalid": "Not valid base64.",
        "type": "Give the image as a base64 string.",
    }

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> bytes:
        if not isinstance(value, str):
            raise self.make_error("type")
        text = _DATA_URL.sub("", value, count=1)
        text = "".join(text.split())  # line breaks from `base64` tools are common
        if not _BASE64_TEXT.match(text) or len(text.rstrip("=")) % 4 == 1:
            raise self.make_error("invalid")
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise self.make_error("invalid") from None


class ServingOptionsSchema(Schema):
    """``version``: a version number or label the registry lets requests pick (default none)."""

    class Meta:
        unknown = RAISE

    version = fields.String(
        load_default=None, validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    )
    labels = LabelFilter(load_default=None)


class DetectOptionsSchema(ServingOptionsSchema):
    """``min_score`` in [0, 1] (default 0.5), ``max_results`` in [1, 100] (default 100),
    ``masks`` (default false): each detection's mask, for models with a masks output."""

    masks = fields.Boolean(load_default=False)

    min_score = fields.Float(
        load_default=DEFAULT_MIN_SCORE, validate=validate.Range(min=0.0, max=1.0)
    )
    max_results = fields.Integer(
        load_default=DEFAULT_MAX_RESULTS, validate=validate.Range(min=1, max=MAX_RESULTS_LIMIT)
    )


class ClassifyOptionsSchema(ServingOptionsSchema):
    """``top_k`` in [1, 100]: how many classes to return (default 5; every class at or
    above ``min_score`` for multi-label models); ``min_score`` in [0, 1]: the least
    probability returned (default 0.5 for multi-label models, else 0)."""

    min_score = fields.Float(load_default=None, validate=validate.Range(min=0.0, max=1.0))

    top_k = fields.Integer(load_default=None, validate=validate.Range(min=1, max=TOP_K_LIMIT))


class ImageSchema(Schema):
    """``{"b64": "..."}``: one image in a JSON body."""

    class Meta:
        unknown = RAISE

    b64 = Base64Image(required=True)


class JsonNumber(fields.Float):
    """A JSON number: text like ``"0.5"`` is refused (fine in a query string, not in JSON)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> float:
        if isinstance(value, str):
            raise self.make_error("invalid")
        return float(super()._deserialize(value, attr, data, **kwargs))


class _ImagesBody:
    """The image fields of a JSON body: exactly one of ``image`` and ``images``.

    Options in a JSON body have JSON types: numbers as numbers, whole numbers
    for integers, ``labels`` as an array.
    """

    labels = LabelFilter(text=False, load_default=None)
    image = fields.Nested(ImageSchema)
    images = fields.List(fields.Nested(ImageSchema), validate=validate.Length(min=1))

    @validates_schema
    def _one_input(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if ("image" in data) == ("images" in data):
            raise ValidationError(
                "Give either 'image' (one image) or 'images' (an array of images).", "image"
            )


class DetectBodySchema(_ImagesBody, DetectOptionsSchema):
    """A detect request as JSON: the image(s) and the detect options."""

    min_score = JsonNumber(
        load_default=DEFAULT_MIN_SCORE, validate=validate.Range(min=0.0, max=1.0)
    )
    max_results = fields.Integer(
        strict=True,
        load_default=DEFAULT_MAX_RESULTS,
        validate=validate.Range(min=1, max=MAX_RESULTS_LIMIT),
    )
    masks = fields.Boolean(truthy={True}, falsy={False}, load_default=False)


class ClassifyBodySchema(_ImagesBody, ClassifyOptionsSchema):
    """A classify request as JSON: the image(s) and the classify options."""

    top_k = fields.Integer(
        strict=True, load_default=None, validate=validate.Range(min=1, max=TOP_K_LIMIT)
    )
    min_score = JsonNumber(load_default=None, validate=validate.Range(min=0.0, max=1.0))


DETECT_OPTIONS = DetectOptionsSchema()
CLASSIFY_OPTIONS = ClassifyOptionsSchema()
DETECT_BODY = DetectBodySchema()
CLASSIFY_BODY = ClassifyBodySchema()
