"""Request options of the inference endpoints, validated with marshmallow.

Unknown options are rejected (``unknown=RAISE``) so a misspelt ``min_scor``
is a 422 naming the field, not a silently ignored default.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from adapter.mapping.classification import DEFAULT_TOP_K
from adapter.mapping.detection import DEFAULT_MAX_RESULTS, DEFAULT_MIN_SCORE

MAX_RESULTS_LIMIT = 100
TOP_K_LIMIT = 100


class ServingOptionsSchema(Schema):
    """``version``: a version number or label the registry lets requests pick (default none)."""

    class Meta:
        unknown = RAISE

    version = fields.String(
        load_default=None, validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    )


class DetectOptionsSchema(ServingOptionsSchema):
    """``min_score`` in [0, 1] (default 0.5), ``max_results`` in [1, 100] (default 100)."""

    min_score = fields.Float(
        load_default=DEFAULT_MIN_SCORE, validate=validate.Range(min=0.0, max=1.0)
    )
    max_results = fields.Integer(
        load_default=DEFAULT_MAX_RESULTS, validate=validate.Range(min=1, max=MAX_RESULTS_LIMIT)
    )


class ClassifyOptionsSchema(ServingOptionsSchema):
    """``top_k`` in [1, 100] (default 5): how many classes to return."""

    top_k = fields.Integer(
        load_default=DEFAULT_TOP_K, validate=validate.Range(min=1, max=TOP_K_LIMIT)
    )


DETECT_OPTIONS = DetectOptionsSchema()
CLASSIFY_OPTIONS = ClassifyOptionsSchema()
