"""OpenAPI documentation (/docs) of GET /steps, /pipelines... and POST /pipelines/preview:
request examples and every answer with an example, as the service really gives them."""

import json
from typing import Any

from pipeline_service.api.pipeline_schemas import CAR_DETECTION_EXAMPLE
from pipeline_service.api.preconditions import ETAG_HEADER
from pipeline_service.api.process_docs import NOT_AN_IMAGE, TOO_LARGE
from pipeline_service.api.schemas import Problem
from pipeline_service.errors import (
    ADMIN_TOKEN_CHALLENGE,
    AdminDisabled,
    AdminTokenMissing,
    AdminTokenWrong,
    InvalidPipeline,
    PipelineChanged,
    StepProblem,
)
from pipeline_service.pipeline.step import step_catalogue
from service_kit.openapi import json_example, problem_example, problem_response

# The real catalogue, so its example cannot drift from what GET /steps answers.
STEP_CATALOGUE = json_example(step_catalogue())

CAR_DETECTION_STEPS = [  # as seeded (seed.sql)
    {"type": "decode", "params": {}},
    {"type": "resize", "params": {"width": 640, "height": 640}},
    {"type": "normalize", "params": {"mode": "minmax_uint8"}},
    {"type": "base64", "params": {"encoding": "raw"}},
    {"type": "detect", "params": {}},
    {"type": "save", "params": {}},
]
CAR_DETECTION = {
    "id": 1,
    "name": "car-detection",
    "description": "Decode a JPEG, resize to 640x640, normalize, base64, detect cars, save the "
    "result.",
    "version": 1,
    "is_active": True,
    "created_at": "2026-11-20T09:12:44.108311Z",
    "updated_at": "2026-11-20T09:12:44.108311Z",
}
GRAY_IN = CAR_DETECTION_EXAMPLE  # also the example in the PipelineIn schema
# What the service stores and answers for GRAY_IN: every param, defaults filled in.
GRAY_STEPS = [
    {"type": "decode", "params": {"color": "color"}},
    {"type": "grayscale", "params": {"keep_channels": True}},
    {"type": "resize", "params": {"width": 640, "height": 640, "interpolation": "linear"}},
    {"type": "normalize", "params": {"mode": "minmax_uint8"}},
    {"type": "base64", "params": {"encoding": "jpeg", "jpeg_quality": 90}},
    {"type": "detect", "params": {}},
    {"type": "filter_detections", "params": {"labels": [1], "min_confidence": 0.5}},
    {"type": "save", "params": {}},
]
COLOR_IN = {  # the PUT example: version 2 of the same pipeline drops the grayscale step
    **GRAY_IN,
    "description": "Car detection at 640x640, keeping confident cars only.",
    "steps": [step for step in GRAY_IN["steps"] if step["type"] != "grayscale"],
}
COLOR_STEPS = [step for step in GRAY_STEPS if step["type"] != "grayscale"]
GRAY_V1_AT = "2026-11-21T20:31:07.254193Z"
GRAY_V2_AT = "2026-11-21T20:40:52.871406Z"
GRAY = {
    "id": 2,
    "name": GRAY_IN["name"],
    "description": GRAY_IN["description"],
    "version": 1,
    "is_active": True,
    "created_at": GRAY_V1_AT,
    "updated_at": GRAY_V1_AT,
}
GRAY_V2 = {**GRAY, "description": COLOR_IN["description"], "version": 2, "updated_at": GRAY_V2_AT}

PIPELINE_LIST = json_example(
    [
        CAR_DETECTION,
        {**GRAY_V2, "is_active": False, "updated_at": "2026-11-21T20:52:19.330872Z"},
    ],
    "Active pipelines by id (here with include_deleted=true: pipeline 2 was deleted).",
)
ONE_PIPELINE = {
    **json_example({**CAR_DETECTION, "steps": CAR_DETECTION_STEPS}),
    "headers": ETAG_HEADER,
}
NOT_MODIFIED = {
    "description": "Not Modified: the copy you have (If-None-Match) is the current version.",
    "headers": ETAG_HEADER,
}
CREATED = {
    **json_example({**GRAY, "steps": GRAY_STEPS}, "Created; its params as stored."),
    "headers": {
        "Location": {"description": "Its address: /pipelines/{id}.", "schema": {"type": "string"}},
        **ETAG_HEADER,
    },
}
REPLACED = {
    **json_example({**GRAY_V2, "steps": COLOR_STEPS}, "Replaced; the version went up."),
    "headers": ETAG_HEADER,
}
VERSIONS = json_example(
    [
        {k: GRAY[k] for k in ("version", "name", "description")}
        | {"created_at": GRAY_V1_AT, "steps": GRAY_STEPS},
        {k: GRAY_V2[k] for k in ("version", "name", "description")}
        | {"created_at": GRAY_V2_AT, "steps": COLOR_STEPS},
    ]
)

PIPELINE_BODY_EXAMPLES: dict[str, Any] = {
    "car detection, grayscale": {
        "summary": "Grayscale variant that keeps only confident cars",
        "value": GRAY_IN,
    },
    "car detection": {
        "summary": "The seeded car-detection pipeline (params left out take their default)",
        "value": {
            "name": "car-detection-copy",
            "description": CAR_DETECTION["description"],
            "steps": CAR_DETECTION_STEPS,
        },
    },
}
REPLACEMENT_BODY_EXAMPLES: dict[str, Any] = {
    "drop the grayscale step": {
        "summary": "Pipeline 2 without its grayscale step",
        "value": COLOR_IN,
    },
}
PIPELINE_ID_EXAMPLES = {"car detection": {"value": 1}}
INCLUDE_DELETED_EXAMPLES = {"with deleted ones": {"value": True}}

ADMIN_ONLY = {
    401: {
        **problem_response(Problem, "No bearer token.", AdminTokenMissing().body()),
        "headers": {
            "WWW-Authenticate": {
                "description": ADMIN_TOKEN_CHALLENGE,
                "schema": {"type": "string"},
            }
        },
    },
    403: problem_response(
        Problem,
        "Wrong token, or PIPELINE_ADMIN_TOKEN is not configured.",
        AdminTokenWrong().body(),
        AdminDisabled().body(),
    ),
}
NOT_FOUND = problem_response(
    Problem,
    "No active pipeline with that id.",
    problem_example(404, "There is no active pipeline with id 7.", "pipeline-not-found"),
)
CHANGED_MEANWHILE = problem_response(
    Problem,
    "If-Match names a version the pipeline is no longer at; nothing was written.",
    problem_example(412, str(PipelineChanged(2, 3)), "pipeline-changed", current_version=3),
)
NEVER_EXISTED = problem_response(
    Problem,
    "No pipeline with that id, active or deleted.",
    problem_example(404, "There is no pipeline with id 7.", "pipeline-not-found"),
)


def _invalid_request(field: str, message: str) -> dict[str, Any]:
    """A 422 as the validation handler words it (see problems.py)."""
    return problem_example(
        422,
        f"{field}: {message}.",
        "invalid-request",
        errors=[{"field": field, "message": message}],
    )


def _invalid_pipeline(*problems: StepProblem) -> dict[str, Any]:
    """A 422 for a definition that cannot run, worded by the service's own InvalidPipeline."""
    detail = InvalidPipeline(list(problems)).detail
    return problem_example(422, detail, "invalid-pipeline", errors=[p.as_dict() for p in problems])


NEEDS_DECODE_FIRST = StepProblem(
    0,
    "resize",
    "needs image as input but the pipeline starts with encoded image bytes (the upload); "
    "put decode before it",
)
BAD_PIPELINE_ID = _invalid_request(
    "pipeline_id", "Input should be a valid integer, unable to parse string as an integer"
)
MISSING_NAME = _invalid_request("name", "Field required")
STEPS_IN_WRONG_ORDER = _invalid_pipeline(
    StepProblem(0, "resize", "Input should be greater than or equal to 1", "width"),
    NEEDS_DECODE_FIRST,
    StepProblem(
        1,
        "decode",
        "needs encoded image bytes as input but the step before it gives image; it can only "
        "be the first step",
    ),
)
NAME_TAKEN = _invalid_pipeline(
    StepProblem(
        None,
        None,
        "the name 'car-detection-gray' is already used by pipeline 2; choose another",
        "name",
    )
)
INVALID_DEFINITION = (
    "The body is not valid; `errors` lists every problem (step index, type, field)."
)

LIST_INVALID = problem_response(
    Problem,
    "include_deleted is not a boolean.",
    _invalid_request(
        "include_deleted", "Input should be a valid boolean, unable to interpret input"
    ),
)
ID_INVALID = problem_response(
    Problem, "The pipeline id is not a positive integer.", BAD_PIPELINE_ID
)
CREATE_INVALID = problem_response(
    Problem, INVALID_DEFINITION, MISSING_NAME, STEPS_IN_WRONG_ORDER, NAME_TAKEN
)
REPLACE_INVALID = problem_response(
    Problem, INVALID_DEFINITION, MISSING_NAME, STEPS_IN_WRONG_ORDER, NAME_TAKEN, BAD_PIPELINE_ID
)

# POST /pipelines/preview
PREVIEW_DEFINITION = json.dumps(
    {
        "steps": [
            {"type": "decode"},
            {"type": "crop", "params": {"x": 0, "y": 0, "w": 640, "h": 360}},
            {"type": "gaussian_blur", "params": {"kernel_size": 5}},
            {"type": "resize", "params": {"width": 320, "height": 320}},
            {"type": "base64"},
            {"type": "detect"},
        ]
    }
)
PREVIEW_FORM = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "examples": {
                    "a definition": {
                        "summary": "Try steps before saving them",
                        "value": {
                            "image": "<the bytes of a JPEG>",
                            "definition": PREVIEW_DEFINITION,
                        },
                    },
                    "a stored pipeline": {
                        "summary": "See what pipeline 1 does to this image",
                        "value": {"image": "<the bytes of a JPEG>", "pipeline_id": 1},
                    },
                }
            }
        }
    }
}


def _image_step(index: int, type_: str, ms: float, shape: list[int]) -> dict[str, Any]:
    return {
        "index": index,
        "type": type_,
        "ms": ms,
        "shape": shape,
        "dtype": "uint8",
        "min": 0.0,
        "max": 255.0,
        "encoding": None,
        "base64_chars": None,
    }


PREVIEWED = json_example(  # PREVIEW_DEFINITION on a 1920x1080 parking-lot photo
    {
        "steps": [
            _image_step(0, "decode", 15.334, [1080, 1920, 3]),
            _image_step(1, "crop", 0.012, [360, 640, 3]),
            _image_step(2, "gaussian_blur", 0.637, [360, 640, 3]),
            _image_step(3, "resize", 0.11, [320, 320, 3]),
            {
                **_image_step(4, "base64", 0.226, [320, 320, 3]),
                "min": None,
                "max": None,
                "encoding": "raw",
                "base64_chars": 409600,
            },
        ],
        "not_run": [{"index": 5, "type": "detect"}],
        "image": {"bytes": 791668, "width": 1920, "height": 1080},
    }
)
PREVIEW_NOT_FOUND = problem_response(
    Problem,
    "No active pipeline with that pipeline_id.",
    problem_example(404, "There is no active pipeline with id 7.", "pipeline-not-found"),
)
PREVIEW_TOO_LARGE = problem_response(
    Problem, "Upload or image larger than the configured limit.", *TOO_LARGE
)
PREVIEW_NOT_AN_IMAGE = problem_response(Problem, "The file is not a decodable image.", NOT_AN_IMAGE)
PREVIEW_INVALID = problem_response(
    Problem,
    "Both or neither of definition and pipeline_id, a malformed definition, or steps that "
    "cannot run (`errors` lists every problem).",
    _invalid_request(
        "definition",
        "send either a definition (JSON) or the pipeline_id of a stored pipeline, not both "
        "and not neither",
    ),
    _invalid_request("definition.steps.0.params", "Input should be an object"),
    _invalid_pipeline(NEEDS_DECODE_FIRST),
)
