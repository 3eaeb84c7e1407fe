"""The record downloads without FastAPI's per-request machinery.

``GET /v1/records/{uri}/pdf`` and its three siblings are what agencies call in bulk; FastAPI's
routing (a regex per route until one matches, in nested routers) and dependency solving cost as
much Python time per request as the access decision itself. :class:`FastReads` sits in front of
the router and serves those four routes when the request is the plain, common case — a GET with
a well-formed path and at most ``delivery=proxy|redirect``, and an API key verified within the
key cache's lifetime — by calling the same functions in the same order as the FastAPI routes:
rate limit (:func:`api.auth.admit`), principal kind (:func:`api.auth.check_kind`), read context
(:func:`api.auth.read_context`), then :func:`api.routes_records.download`. Errors are answered
by the application's own exception handlers.

Everything else (another route or method, any other query parameter, a parameter FastAPI would
reject, a session cookie, a key not in the cache, a malformed header) goes to FastAPI untouched,
so validation errors, authentication failures and the OpenAPI schema stay FastAPI's; only the
fast case is served here, with the same answer. ``tests/test_api_fast_reads.py`` compares both
paths request by request.
"""
from __future__ import annotations

import re

from fastapi import FastAPI
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import admit, cached_key_principal, check_kind, read_context
from api.routes_records import MAX_VERSION, READER_KINDS, download
from api.routes_records import router as records_router

_PATH = re.compile(r"^/v1/records/(?P<uri>[^/]{1,160})(?:/versions/(?P<version>[1-9][0-9]{0,6}))?/(?P<what>pdf|record)$")
_QUERIES = {b"": "proxy", b"delivery=proxy": "proxy", b"delivery=redirect": "redirect"}
_TEMPLATES = {(False, "pdf"): "/v1/records/{uri}/pdf", (False, "record"): "/v1/records/{uri}/record",
              (True, "pdf"): "/v1/records/{uri}/versions/{version}/pdf",
              (True, "record"): "/v1/records/{uri}/versions/{version}/record"}


class FastReads:
    """ASGI middleware: serves the common record downloads itself (see the module doc)."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app, self.fastapi_app = app, fastapi_app
        by_path = {r.path: r for r in records_router.routes if isinstance(r, Route) and "GET" in (r.methods or ())}
        # the FastAPI route each request would have matched (metrics label by its template)
        self._routes = {k: by_path[path] for k, path in _TEMPLATES.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        match = _PATH.match(scope["path"])
        delivery = _QUERIES.get(scope.get("query_string", b"")) if match else None
        version = int(match["version"]) if match and match["version"] else None
        if delivery is None or (version is not None and version > MAX_VERSION):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        principal = cached_key_principal(request)
        if principal is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self._routes[(version is not None, match["what"])]
        try:
            admit(request, principal)
            check_kind(principal, READER_KINDS)
            ctx = await read_context(request)
            response = await download(request, principal, ctx, match["uri"], version, match["what"], delivery)
        except Exception as exc:  # answered like FastAPI's ExceptionMiddleware would
            handler = self._handler(exc)
            if handler is None:
                raise  # the server-error handler answers, as for any route
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception):  # noqa: ANN202 (the app's exception handler or None)
        handlers = self.fastapi_app.exception_handlers
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            if cls in handlers:
                return handlers[cls]
        return None
