"""The interactive API docs at /docs, whole from this server: Swagger UI's script, stylesheet and icon
come from a pinned package (fastapi-offline, in the server's lock) instead of a public CDN.

FastAPI's own /docs page loads them from jsdelivr: on a cluster without internet access (an
air-gapped one, or one whose egress is closed) the page stays blank. Swagger UI's online validator is
switched off too (``validatorUrl: null``): it would send the schema out of the cluster.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from .endpoints import DOCS_ASSETS_URL, DOCS_URL, OPENAPI_URL

# swagger-ui-bundle.js, swagger-ui.css and favicon.png (Swagger UI 5, which reads OpenAPI 3.1).
ASSETS = Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """Serve /docs and its assets; the app itself is created with FastAPI's own docs_url=None."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    app.add_api_route(DOCS_URL, docs, methods=["GET"], include_in_schema=False)
