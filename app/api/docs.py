"""The metering API's documentation page, /api/v1/docs, with Swagger UI served by the console
itself: its files come from the pinned flask-swagger-ui package (only read from disk, Flask is
never imported), so the page works offline and within the console's Content-Security-Policy."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

DOCS_PATH = "/api/v1/docs"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def _swagger_ui_dist() -> Path:
    spec = find_spec("flask_swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("flask-swagger-ui is not installed (pyproject.toml pins it)")
    return Path(next(iter(spec.submodule_search_locations))) / "dist"


def add_docs(api: FastAPI, docs_path: str = DOCS_PATH, openapi_url: str = "", title: str = "") -> None:
    """Swagger UI at `docs_path` for the document at `openapi_url` (by default the app's own)."""
    openapi_url = openapi_url or api.openapi_url or ""
    title = title or api.title
    dist = _swagger_ui_dist()

    @api.get(docs_path, include_in_schema=False)
    async def _docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} documentation",
            swagger_js_url=f"{docs_path}/swagger-ui-bundle.js",
            swagger_css_url=f"{docs_path}/swagger-ui.css",
            swagger_favicon_url=f"{docs_path}/favicon-32x32.png",
            # Swagger UI's default validator badge is an image from swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    for name, media_type in ASSETS.items():
        # One fixed route per file: no path from the request ever reaches the file system.
        async def serve(path: Path = dist / name, media_type: str = media_type) -> FileResponse:
            return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})

        api.add_api_route(f"{docs_path}/{name}", serve, methods=["GET"], include_in_schema=False)
