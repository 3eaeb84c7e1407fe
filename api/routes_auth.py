"""Desk sign-in: an HTML form at ``/login`` and the same as JSON under ``/v1/auth``."""
from __future__ import annotations

from datetime import timedelta
from html import escape
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from api.auth import (SESSION_COOKIE, Principal, limit_failed_attempts, current_principal, principal_from_user,
                      services_of)
from api.errors import ApiProblem
from repository.access import UserInfo
from repository.audit import AuditEntry

router = APIRouter(tags=["auth"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    kind: str
    id: str
    name: str
    via: str
    agency_code: str | None = None
    owner_ref: str | None = None


def safe_next(target: str | None) -> str:
    """Only same-site paths (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _sign_in(request: Request, username: str, password: str) -> tuple[UserInfo, str] | None:
    services = services_of(request)
    user = services.access.check_user_password(username, password)
    if user is None:
        services.audit(AuditEntry(actor="anonymous", actor_kind="anonymous", action="auth.login",
                                  outcome="failed", details={"user": username[:64]}))
        limit_failed_attempts(request)
        return None
    token = services.access.open_session(user.name, timedelta(hours=services.options.session_hours))
    services.audit(AuditEntry(actor=f"user:{user.name}", actor_kind=user.role, action="auth.login"))
    return user, token


def _set_cookie(request: Request, response: Response, token: str) -> None:
    options = services_of(request).options
    response.set_cookie(SESSION_COOKIE, token, max_age=int(options.session_hours * 3600), httponly=True,
                        secure=options.cookie_secure, samesite="lax", path="/")


def _login_page(next_path: str, error: str | None = None) -> str:
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Đăng nhập — sohoa</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}}
label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.5rem;font-size:1rem}}
button{{margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem}}.error{{color:#b00020}}</style></head>
<body><h1>Đăng nhập / Sign in</h1>{message}
<form method="post" action="/login">
<input type="hidden" name="next" value="{escape(next_path)}">
<label for="username">Tên đăng nhập / Username</label>
<input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Mật khẩu / Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Đăng nhập</button>
</form></body></html>"""


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(next: str | None = None) -> HTMLResponse:
    return HTMLResponse(_login_page(safe_next(next)))


@router.post("/login", include_in_schema=False)
def login_submit(request: Request, username: Annotated[str, Form(max_length=64)],
                 password: Annotated[str, Form(max_length=1024)],
                 next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    signed = _sign_in(request, username, password)
    target = safe_next(next)
    if signed is None:
        return HTMLResponse(_login_page(target, "Sai tên đăng nhập hoặc mật khẩu / Wrong username or password"),
                            status_code=401)
    response = RedirectResponse(target, status_code=303)
    _set_cookie(request, response, signed[1])
    return response


@router.post("/logout", include_in_schema=False)
def logout_form(request: Request) -> Response:
    _end_session(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _end_session(request: Request) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        services = services_of(request)
        user = services.access.session_user(token)
        services.access.close_session(token)
        if user is not None:
            services.audit(AuditEntry(actor=f"user:{user.name}", actor_kind=user.role, action="auth.logout"))


@router.post("/v1/auth/login", response_model=Me, summary="Desk user sign-in (sets the session cookie)",
             responses={401: {"description": "wrong username or password"}})
def login_json(request: Request, body: LoginRequest, response: Response) -> Me:
    signed = _sign_in(request, body.username, body.password)
    if signed is None:
        raise ApiProblem(401, "invalid_login", "wrong username or password")
    user, token = signed
    _set_cookie(request, response, token)
    p = principal_from_user(user, services_of(request).settings.agency_code)
    return Me(kind=p.kind, id=p.id, name=p.name, via=p.via, agency_code=p.agency_code)


@router.post("/v1/auth/logout", status_code=204, summary="End the desk session")
def logout_json(request: Request) -> Response:
    _end_session(request)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/v1/auth/me", response_model=Me, summary="Who the credentials belong to")
def me(principal: Annotated[Principal, Depends(current_principal)]) -> Me:
    return Me(kind=principal.kind, id=principal.id, name=principal.name, via=principal.via,
              agency_code=principal.agency_code, owner_ref=principal.owner_key)
