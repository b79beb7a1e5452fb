"""Examples of POST /process_image's answers, for the OpenAPI document (/docs)."""

from pipeline_service.api.schemas import Problem
from service_kit.openapi import problem_example, problem_response

PROCESS_RESULT_EXAMPLE = {
    "run_id": 42,
    "pipeline_id": 1,
    "pipeline_version": 1,
    "status": "succeeded",
    "car_detected": True,
    "box": {
        "top_left_x": 412.0,
        "top_left_y": 288.0,
        "w": 186.0,
        "h": 121.0,
        "conf": 0.87,
        "label": 1,
    },
    "detections": [[412.0, 288.0, 186.0, 121.0, 0.87, 1]],
    "timings_ms": {
        "decode": 7.9,
        "resize": 0.9,
        "normalize": 0.4,
        "base64": 0.6,
        "detect": 3.1,
        "save": 1.4,
    },
    "image": {
        "sha256": "3f1b5e0c4a8d2b7e9f6a1c0d5e4b3a2918f7e6d5c4b3a29180f7e6d5c4b3a291",
        "bytes": 595729,
        "width": 1920,
        "height": 1080,
    },
}

NOT_FOUND = problem_example(404, "There is no active pipeline with id 7.", "pipeline-not-found")
TOO_LARGE = (
    problem_example(
        413, "The upload is larger than 20971520 bytes (MAX_UPLOAD_BYTES).", "upload-too-large"
    ),
    problem_example(
        413,
        "The image is 30000x30000 pixels; at most 50000000 pixels are accepted (MAX_IMAGE_PIXELS).",
        "image-too-large",
    ),
)
NOT_AN_IMAGE = problem_example(
    415,
    "The uploaded file (5120 bytes) could not be decoded: it is a TIFF image (judged from its "
    "first bytes); accepted formats: JPEG, PNG, WebP or BMP.",
    "unsupported-image",
)
UNPROCESSABLE = (
    problem_example(
        422,
        "pipeline_id: Field required; send it as a query parameter (?pipeline_id=1) "
        "or a form field.",
        "invalid-request",
        errors=[
            {
                "field": "pipeline_id",
                "message": "Field required; send it as a query parameter (?pipeline_id=1) "
                "or a form field",
            }
        ],
    ),
    problem_example(
        422,
        "Pipeline 3 is not valid: step 0 (resize): needs image as input but the step before "
        "it gives encoded image bytes.",
        "invalid-pipeline",
        errors=[
            {
                "index": 0,
                "step_type": "resize",
                "message": "needs image as input but the step before it gives encoded image bytes",
                "field": None,
            }
        ],
    ),
)
BAD_GATEWAY = problem_example(
    502,
    "The model service answered HTTP 500 instead of boxes.",
    "model-bad-response",
    run_id=43,
)
DATABASE_UNAVAILABLE = problem_example(
    503,
    "The database cannot be reached (ConnectionRefusedError); try again shortly.",
    "database-unavailable",
)
# The 503 of every route that reads or writes PostgreSQL.
DATABASE_DOWN = problem_response(Problem, "PostgreSQL cannot be reached.", DATABASE_UNAVAILABLE)
UNAVAILABLE = (
    problem_example(
        503,
        "The model service at http://127.0.0.1:8001 cannot be reached (ConnectError); "
        "try again later.",
        "model-unavailable",
        run_id=44,
    ),
    DATABASE_UNAVAILABLE,
)
TIMEOUT = problem_example(
    504,
    "The model service did not answer within 5 s (MODEL_TIMEOUT_S); try again later.",
    "model-timeout",
    run_id=45,
)
