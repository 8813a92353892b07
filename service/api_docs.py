"""Interactive API documentation at ``/docs`` (Swagger UI), served offline.

The Swagger UI bundle comes from the ``fastapi-offline`` package (MIT; it ships current
Swagger UI and ReDoc builds so that FastAPI docs need no CDN). Its own page builder and
FastAPI's put the start-up code in an inline ``<script>``, which the site's CSP
(``script-src 'self'``) refuses, so the page here loads the bundle and
``/static/api-docs.js`` as files.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/static/api-docs"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>papers API — Swagger UI</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""


def mount_api_docs(app: FastAPI, path: str = "/docs") -> None:
    """``GET /docs``: Swagger UI over the app's OpenAPI schema; the bundle under ``/static/api-docs``."""
    assets = resources.files("fastapi_offline") / "static"
    app.mount(ASSETS_URL, StaticFiles(directory=str(assets)), name="api-docs-assets")
    page = PAGE.format(assets=ASSETS_URL, openapi=app.openapi_url or "/openapi.json")

    @app.get(path, include_in_schema=False, response_class=HTMLResponse)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(page)
