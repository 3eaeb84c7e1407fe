"""Errors as RFC 9457 ``application/problem+json`` with a stable machine ``code``.

Routes raise :class:`ApiProblem` (or one of the repository/pipeline errors mapped below); every
response body of an error has the same shape::

    {"type": "urn:sohoa:problem:<code>", "title": "...", "status": 403, "code": "<code>",
     "detail": "...", "instance": "/v1/..."}

``not_found_or_forbidden`` is the one body for "no such record" and "you may not read it", so a
caller without access cannot learn whether a record exists.
"""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from repository import IntegrityFailure, InvalidRequest, RecordNotFound, StorageUnavailable

log = logging.getLogger(__name__)
PROBLEM_MEDIA = "application/problem+json"

_TITLES = {
    400: "Bad request", 401: "Authentication required", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "Content too large", 415: "Unsupported media type",
    422: "Invalid request", 429: "Too many requests", 500: "Internal error", 503: "Service unavailable",
}


class Problem(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


class ApiProblem(Exception):
    def __init__(self, status: int, code: str, detail: str, *, headers: dict[str, str] | None = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers = headers or {}
        self.errors = errors


class LoginRequired(ApiProblem):
    """No valid desk session: pages redirect to the login form, API calls get 401."""

    def __init__(self, detail: str = "sign in first") -> None:
        super().__init__(401, "login_required", detail, headers={"WWW-Authenticate": 'Cookie realm="sohoa"'})


def not_found_or_forbidden() -> ApiProblem:
    return ApiProblem(403, "not_found_or_forbidden",
                      "the record does not exist or you are not allowed to read it")


def unauthenticated(detail: str = "missing or invalid credentials") -> ApiProblem:
    return ApiProblem(401, "unauthenticated", detail, headers={"WWW-Authenticate": 'Bearer realm="sohoa"'})


def forbidden(detail: str) -> ApiProblem:
    return ApiProblem(403, "forbidden", detail)


def invalid(detail: str, code: str = "invalid_request") -> ApiProblem:
    return ApiProblem(422, code, detail)


def problem_response(request: Request, status: int, code: str, detail: str,
                     headers: dict[str, str] | None = None,
                     errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    body = Problem(type=f"urn:sohoa:problem:{code}", title=_TITLES.get(status, "Error"), status=status,
                   code=code, detail=detail, instance=request.url.path, errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers,
                        media_type=PROBLEM_MEDIA)


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.method == "GET" and "text/html" in accept


def _safe_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Validation errors without the submitted values (they may hold personal numbers)."""
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if _wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            from urllib.parse import quote
            return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
        return problem_response(request, exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(ApiProblem)
    async def _problem(request: Request, exc: ApiProblem) -> Response:
        return problem_response(request, exc.status, exc.code, exc.detail, exc.headers, exc.errors)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return problem_response(request, 422, "invalid_request", "the request is not valid",
                                errors=_safe_errors(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, f"http_{exc.status_code}")
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "error")
        return problem_response(request, exc.status_code, code, detail, dict(exc.headers or {}))

    @app.exception_handler(InvalidRequest)
    async def _invalid(request: Request, exc: InvalidRequest) -> Response:
        return problem_response(request, 422, "invalid_request", str(exc))

    @app.exception_handler(RecordNotFound)
    async def _missing(request: Request, exc: RecordNotFound) -> Response:
        return problem_response(request, 404, "not_found", "not found")

    @app.exception_handler(StorageUnavailable)
    async def _unavailable(request: Request, exc: StorageUnavailable) -> Response:
        log.warning("storage unavailable: %s", exc)
        return problem_response(request, 503, "storage_unavailable",
                                "storage is unavailable; nothing was changed, retry later",
                                {"Retry-After": "5"})

    @app.exception_handler(IntegrityFailure)
    async def _integrity(request: Request, exc: IntegrityFailure) -> Response:
        log.error("integrity failure: %s", exc)
        return problem_response(request, 500, "integrity_failure",
                                "the stored object failed its integrity check; operators were alerted")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, "internal_error", "internal error")
