"""Swagger UI at /docs with its JavaScript and CSS served by the service itself, so the page
works on a machine without internet (FastAPI's default page loads them from a CDN).

The files come from the `fastapi-swagger` package, which republishes swagger-ui-dist on
each Swagger UI release (docs/decisions/0015-swagger-ui-assets.md). The page is FastAPI's
own, set up as its documentation on self-hosting the docs assets describes: the app is
created with `docs_url=None, redoc_url=None`, then `serve_docs(app)`. ReDoc stays off: one
docs page is enough, and it would need a second asset package.
"""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
ASSETS_PACKAGE = ("fastapi_swagger", "resources")  # swagger-ui-bundle.js, swagger-ui.css, ...

# Swagger UI asks validator.swagger.io about the document unless told not to.
SWAGGER_UI_PARAMETERS: dict[str, Any] = {"validatorUrl": None}


def serve_docs(app: FastAPI) -> None:
    """GET /docs (Swagger UI) and its assets under /docs/assets, none of it in the schema."""
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError("create the app with docs_url=None, redoc_url=None: serve_docs adds /docs")
    app.mount(ASSETS_URL, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        assets = root + ASSETS_URL
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), **SWAGGER_UI_PARAMETERS},
        )
