"""The reception desk's pages (server-rendered, Jinja2): ``/desk/...``.

Officers sign in through the API's session login (``api.auth.require_officer``); every page works
without JavaScript (forms and links), and ``static/desk.js`` adds drag-and-drop, upload
progress, live processing status, the page viewer, zoom and field highlighting. Personal ID
numbers travel only in POST bodies, never in URLs, and pages show them masked except in the
input the officer types into.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.routing import NoMatchFound

from api.auth import Principal, require_officer
from api.desk.drafts import Draft, DraftNotFound, PageEdit
from api.desk.edits import DATE_FIELDS, EditError, normalize_rotation, rotate_image, rotated_size
from api.desk.i18n import LANG_COOKIE, LANGUAGES, pick_language, translator
from api.desk.service import THUMB_LONG_SIDE, DeskError, DeskService, encode_jpeg, mask_id
from ingest.pipeline import PipelineError
from ingest.settings import Settings, load_settings
from ocr.catalog import load_catalog
from ocr.validators import PROVINCES
from repository import StorageUnavailable
from repository.audit import AuditEntry

log = logging.getLogger("sohoa.desk")

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
templates = Jinja2Templates(directory=str(HERE / "templates"))
_service_lock = threading.Lock()


def open_service(app: Any) -> DeskService:
    """The app's DeskService, created once; creating it resumes unfinished drafts."""
    state = app.state
    service = getattr(state, "desk", None)
    if service is None:
        with _service_lock:
            service = getattr(state, "desk", None)
            if service is None:
                settings: Settings = getattr(state, "settings", None) or load_settings()
                options = getattr(getattr(state, "services", None), "options", None)
                service = DeskService(settings,
                                      max_files=getattr(options, "max_files", None),
                                      max_upload_bytes=getattr(options, "max_upload_bytes", None))
                service.resume()
                state.desk = service
    return service


@asynccontextmanager
async def desk_lifespan(app: Any) -> AsyncIterator[None]:
    """Start the desk with the server (drafts left unfinished are processed at once), stop it
    with the server (queued work stays on disk for the next start)."""
    try:
        await run_in_threadpool(open_service, app)
    except Exception:  # the API must start anyway; the first desk request retries and reports
        log.exception("desk: could not start; will retry on the first desk request")
    try:
        yield
    finally:
        service = getattr(app.state, "desk", None)
        if service is not None:
            await run_in_threadpool(service.close)
            app.state.desk = None


router = APIRouter(prefix="/desk", include_in_schema=False, lifespan=desk_lifespan)


# ---- plumbing ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeskUser:
    id: str
    display_name: str
    kind: str  # officer | supervisor

    @property
    def supervisor(self) -> bool:
        return self.kind == "supervisor"


def desk_user(principal: Principal = Depends(require_officer)) -> DeskUser:
    return DeskUser(id=principal.id, display_name=principal.name, kind=principal.kind)


def desk_service(request: Request) -> DeskService:
    return open_service(request.app)


def language(request: Request, lang: str | None = Query(None, max_length=5)) -> str:
    return pick_language(lang, request.cookies.get(LANG_COOKIE),
                         request.headers.get("accept-language"))


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def type_names(lang: str) -> dict[str, str]:
    return {t.code: (t.name_vi if lang == "vi" else t.name_en) for t in load_catalog().types}


def render(request: Request, template: str, *, user: DeskUser, lang: str, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    t = translator(lang)
    names = type_names(lang)
    response = templates.TemplateResponse(request, template, {
        "t": t, "lang": lang, "other_lang": next(x for x in LANGUAGES if x != lang),
        "officer": user, "desk_name": _settings(request).desk,
        "url": lambda name, **params: request.app.url_path_for(name, **params),
        "static": lambda name: request.app.url_path_for("desk_static", name=name),
        "mask": mask_id, "type_name": lambda code: names.get(code, code),
        "logout_url": _logout_url(request), "error": None, "notice": None,
        **context,
    }, status_code=status_code)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    response.headers["Cache-Control"] = "no-store"
    return response


def _settings(request: Request) -> Settings:
    return desk_service(request).settings


def _logout_url(request: Request) -> str | None:
    """The session sign-out form's address (``api.routes_auth``), when the app has one."""
    try:
        return str(request.app.url_path_for("logout_form"))
    except NoMatchFound:
        return None


def audit(request: Request, user: DeskUser, action: str, **fields: Any) -> None:
    """An entry in the API's hash-chained audit log (no personal numbers in ``details``)."""
    services = getattr(request.app.state, "services", None)
    if services is not None:
        services.audit(AuditEntry(actor=f"user:{user.id}", actor_kind=user.kind, action=action,
                                  agency_code=services.settings.agency_code, **fields))


NEUTRAL_DETAILS = frozenset({"unsupported_type", "too_many_files"})  # a file name, a number
# the confirming user cannot sign personally (Circular 01/2023/TT-VPCP Art. 8): say why and what to do
SIGNING_CODES = frozenset({"no_signing_key", "signer_disabled", "signing_key_unusable", "signing_failed"})


def error_message(exc: DeskError, lang: str) -> str:
    """The officer's message for a refusal; the validator's English detail only on English pages."""
    text = translator(lang)(f"error.{exc.code}")
    if exc.detail and (lang == "en" or exc.code in NEUTRAL_DETAILS):
        text += f" ({exc.detail})"
    return text


def _draft_for(service: DeskService, draft_id: str, user: DeskUser) -> Draft:
    """The draft, if this user may work on it (its officer, or any supervisor)."""
    try:
        draft = service.store.get(draft_id)
    except DraftNotFound:
        raise DeskPageError(404, "not_found") from None
    if draft.officer != user.id and not user.supervisor:
        raise DeskPageError(403, "forbidden")
    return draft


class DeskPageError(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status, self.code = status, code


def _error_page(request: Request, user: DeskUser, lang: str, exc: DeskPageError) -> Response:
    t = translator(lang)
    if wants_json(request):
        return JSONResponse({"code": exc.code, "message": t(f"error.{exc.code}")}, exc.status)
    return render(request, "message.html", user=user, lang=lang, status_code=exc.status,
                  title=t("error.title"), error=t(f"error.{exc.code}"))


# ---- pages ---------------------------------------------------------------------------------------
@router.get("", name="desk_queue")
def queue_page(request: Request, user: DeskUser = Depends(desk_user),
               lang: str = Depends(language)) -> Response:
    service = desk_service(request)
    return render(request, "queue.html", user=user, lang=lang, nav="queue",
                  drafts=service.today(user.id), show_officer=False)


@router.get("/review-queue", name="desk_review_queue")
def review_queue_page(request: Request, user: DeskUser = Depends(desk_user),
                      lang: str = Depends(language)) -> Response:
    if not user.supervisor:
        return _error_page(request, user, lang, DeskPageError(403, "forbidden"))
    return render(request, "review_queue.html", user=user, lang=lang, nav="review",
                  drafts=desk_service(request).review_queue())


def _new_form(request: Request, user: DeskUser, lang: str, *, owner_id: str = "",
              dossier_code: str = "", error: str | None = None, status_code: int = 200) -> Response:
    service = desk_service(request)
    return render(request, "new.html", user=user, lang=lang, nav="new", status_code=status_code,
                  owner_id=owner_id, dossier_code=dossier_code, error=error,
                  recent_owners=service.recent_owners(user.id),
                  provinces=",".join(PROVINCES), this_year=date.today().year)


@router.get("/new", name="desk_new")
def new_page(request: Request, user: DeskUser = Depends(desk_user),
             lang: str = Depends(language)) -> Response:
    return _new_form(request, user, lang)


@router.post("/drafts", name="desk_receive")
async def receive(request: Request, user: DeskUser = Depends(desk_user),
                  lang: str = Depends(language)) -> Response:
    form = await request.form()
    owner_id = str(form.get("owner_id") or "")
    dossier_code = str(form.get("dossier_code") or "")
    files: list[tuple[str, bytes]] = []
    for item in form.getlist("files"):
        if hasattr(item, "read"):
            files.append((item.filename or "scan", await item.read()))
    service = desk_service(request)
    try:
        draft = await run_in_threadpool(service.receive, officer=user.id, owner_id=owner_id,
                                        dossier_code=dossier_code, files=files)
    except DeskError as exc:
        message = error_message(exc, lang)
        if wants_json(request):
            return JSONResponse({"code": exc.code, "message": message}, 400)
        return _new_form(request, user, lang, owner_id=owner_id, dossier_code=dossier_code,
                         error=message, status_code=400)
    audit(request, user, "desk.receive", details={"draft": draft.id, "files": len(draft.uploads)})
    url = request.app.url_path_for("desk_draft", draft_id=draft.id)
    if wants_json(request):
        return JSONResponse({"id": draft.id, "url": str(url)}, 201)
    return RedirectResponse(str(url), status_code=303)


@router.get("/drafts/{draft_id}", name="desk_draft")
def draft_page(request: Request, draft_id: str, page: int = Query(0, ge=0),
               saved: bool = Query(False), user: DeskUser = Depends(desk_user),
               lang: str = Depends(language)) -> Response:
    service = desk_service(request)
    try:
        draft = _draft_for(service, draft_id, user)
    except DeskPageError as exc:
        return _error_page(request, user, lang, exc)
    notice = translator(lang)("review.saved") if saved and draft.status == "ready" else None
    return _draft_view(request, service, draft, user, lang, current=page, notice=notice)


_STEPS = ("received", "recognizing", "rendering", "ready")


def _draft_view(request: Request, service: DeskService, draft: Draft, user: DeskUser, lang: str,
                *, current: int = 0, error: str | None = None, notice: str | None = None,
                status_code: int = 200) -> Response:
    if draft.status in ("received", "processing"):
        step = _STEPS.index(draft.stage) if draft.stage in _STEPS else 0
        return render(request, "progress.html", user=user, lang=lang, draft=draft,
                      step_index=step, started=draft.created_at.isoformat())
    if draft.status == "failed":
        return render(request, "failed.html", user=user, lang=lang, draft=draft)
    if draft.status in ("confirmed",) and draft.outcome is not None:
        return render(request, "done.html", user=user, lang=lang, draft=draft)
    return _review(request, service, draft, user, lang, current=current, error=error,
                   notice=notice, status_code=status_code)


def _review(request: Request, service: DeskService, draft: Draft, user: DeskUser, lang: str, *,
            current: int, error: str | None, notice: str | None, status_code: int) -> Response:
    from api.desk.edits import arrange  # local: only the review needs the arranged analysis

    t = translator(lang)
    analysis = service.analysis(draft.id)
    arranged = arrange(analysis, draft.pages)
    pages = []
    for pos, edit in enumerate(draft.pages):
        height, width = analysis.pages[edit.index].archive_image.shape[:2]
        w, h = rotated_size(width, height, edit.rotation)
        scale = THUMB_LONG_SIDE / max(w, h)
        params = {"draft_id": draft.id, "index": str(edit.index)}
        suffix = f"?rot={edit.rotation}" if edit.rotation else ""
        pages.append({
            "pos": pos, "index": edit.index, "rotation": edit.rotation,
            "thumb_url": str(request.app.url_path_for("desk_thumb", **params)) + suffix,
            "view_url": str(request.app.url_path_for("desk_page", **params)) + suffix,
            "thumb_w": round(w * scale), "thumb_h": round(h * scale),
            "issues": arranged.pages[pos].quality,
        })
    issues = [{"severity": q.severity,
               "text": f"{t('page_of', n=pos + 1)}: {q.message_vi if lang == 'vi' else q.message_en}"}
              for pos, page in enumerate(arranged.pages) for q in page.quality]
    names = type_names(lang)
    scores = dict(analysis.classification.candidates)  # the classifier's view of each type
    types = [(code, names[code] + (f" — {scores[code]:.0%}" if scores.get(code, 0) >= 0.01 else ""))
             for code in load_catalog().codes]
    rearranged = [(p.index, p.rotation) for p in draft.pages] != [(i, 0) for i in range(draft.page_count)]
    rows = service.field_rows(draft)
    try:
        problem = service.signing_problem(user.id)
    except StorageUnavailable:
        problem = None  # confirming will say that the repository is unavailable
    return render(request, "review.html", user=user, lang=lang, draft=draft, pages=pages,
                  current=min(current, len(pages) - 1), issues=issues,
                  rows=rows, types=types, date_fields=DATE_FIELDS,
                  reasons=service.attention(draft, rows),
                  signing_problem=t(f"error.{problem}") if problem and error is None else None,
                  rearranged=rearranged, error=error, notice=notice, status_code=status_code)


@router.get("/drafts/{draft_id}/status", name="desk_draft_status")
def draft_status(request: Request, draft_id: str, user: DeskUser = Depends(desk_user),
                 lang: str = Depends(language)) -> Response:
    service = desk_service(request)
    try:
        draft = _draft_for(service, draft_id, user)
    except DeskPageError as exc:
        return JSONResponse({"code": exc.code}, exc.status)
    t = translator(lang)
    label = t(f"progress.{draft.stage}") if draft.stage in _STEPS else t(f"status.{draft.status}")
    return JSONResponse({"status": draft.status, "stage": draft.stage, "stage_label": label,
                         "pages": draft.page_count,
                         "error": draft.error.code if draft.error else None},
                        headers={"Cache-Control": "no-store"})


def parse_pages(values: list[str]) -> list[PageEdit]:
    edits = []
    for value in values:
        index, _, rotation = value.partition(":")
        try:
            edits.append(PageEdit(index=int(index), rotation=normalize_rotation(int(rotation or 0))))
        except (ValueError, EditError):
            raise DeskError("pages", value) from None
    return edits


def apply_action(pages: list[PageEdit], action: str) -> list[PageEdit]:
    """The arrangement after one page button (``up:N``, ``down:N``, ``rotate:N``, ``delete:N``)."""
    verb, _, arg = action.partition(":")
    if verb not in ("up", "down", "rotate", "delete"):
        return pages
    try:
        pos = int(arg)
    except ValueError:
        raise DeskError("pages", action) from None
    if not 0 <= pos < len(pages):
        raise DeskError("pages", action)
    out = list(pages)
    if verb == "up" and pos > 0:
        out[pos - 1], out[pos] = out[pos], out[pos - 1]
    elif verb == "down" and pos < len(out) - 1:
        out[pos + 1], out[pos] = out[pos], out[pos + 1]
    elif verb == "rotate":
        out[pos] = PageEdit(index=out[pos].index, rotation=(out[pos].rotation + 90) % 360)
    elif verb == "delete" and len(out) > 1:
        del out[pos]
    return out


def _focus_after(action: str, count: int) -> int:
    verb, _, arg = action.partition(":")
    if not arg.isdigit():
        return 0
    pos = int(arg) + {"up": -1, "down": 1}.get(verb, 0)
    return max(0, min(pos, count - 1))


@router.post("/drafts/{draft_id}", name="desk_draft_update")
async def update_draft(request: Request, draft_id: str, user: DeskUser = Depends(desk_user),
                       lang: str = Depends(language)) -> Response:
    service = desk_service(request)
    try:
        draft = _draft_for(service, draft_id, user)
    except DeskPageError as exc:
        return _error_page(request, user, lang, exc)
    form = await request.form()
    actions = [str(a) for a in form.getlist("action")]
    action = actions[-1] if actions else "save"
    doc_type = str(form.get("doc_type") or "") or None
    values = {key[len("field."):]: str(value) for key, value in form.multi_items()
              if key.startswith("field.") and isinstance(value, str)}
    t = translator(lang)
    url = str(request.app.url_path_for("desk_draft", draft_id=draft_id))
    try:
        if action == "restore":
            pages = [PageEdit(index=i) for i in range(draft.page_count)]
        else:
            pages = apply_action(parse_pages([str(p) for p in form.getlist("page")]), action)
        type_changed = doc_type is not None and doc_type != draft.effective_type
        draft = await run_in_threadpool(service.save_review, draft_id, doc_type=doc_type,
                                        values=values, pages=pages)
        if action == "confirm" and not type_changed:
            done = await run_in_threadpool(service.confirm, draft_id, user.id)
            if done.outcome is not None:
                o = done.outcome
                audit(request, user, "record.create", record_uri=o.uri, record_version=o.version,
                      owner_key=o.owner_key, details={"draft": draft_id, "doc_type": o.doc_type,
                                                      "sha256": o.sha256, "verdict": o.verdict,
                                                      "signed_by": o.officer})
            return RedirectResponse(url, status_code=303)
        if type_changed:
            return _review(request, service, draft, user, lang, current=0, error=None,
                           notice=t("review.type_changed"), status_code=200)
    except DeskError as exc:
        draft = service.store.get(draft_id)
        if exc.code in SIGNING_CODES:
            log.warning("desk: user %s cannot sign draft %s: %s", user.id, draft_id, exc.code)
            audit(request, user, "record.create", outcome="denied",
                  details={"draft": draft_id, "reason": exc.code})
            message = error_message(exc, lang)
        else:
            message = t(f"error.{exc.code}")
        return _draft_view(request, service, draft, user, lang, error=message, status_code=400)
    except StorageUnavailable:
        log.warning("desk: storage unavailable while confirming draft %s", draft_id)
        draft = service.store.get(draft_id)
        return _draft_view(request, service, draft, user, lang, error=t("error.unavailable"),
                           status_code=503)
    except PipelineError as exc:  # conversion or signing refused the document: say why
        log.warning("desk: confirming draft %s failed: %s", draft_id, exc.code)
        draft = service.store.get(draft_id)
        return _draft_view(request, service, draft, user, lang,
                           error=f"{t('error.internal')} ({exc.message})", status_code=422)
    if action == "save":
        return RedirectResponse(f"{url}?saved=1", status_code=303)
    focus = _focus_after(action, len(draft.pages))
    return RedirectResponse(f"{url}?page={focus}" if focus else url, status_code=303)


@router.post("/drafts/{draft_id}/retry", name="desk_retry")
def retry(request: Request, draft_id: str, user: DeskUser = Depends(desk_user),
          lang: str = Depends(language)) -> Response:
    service = desk_service(request)
    try:
        _draft_for(service, draft_id, user)
    except DeskPageError as exc:
        return _error_page(request, user, lang, exc)
    service.retry(draft_id)
    return RedirectResponse(str(request.app.url_path_for("desk_draft", draft_id=draft_id)),
                            status_code=303)


@router.post("/drafts/{draft_id}/same-owner", name="desk_same_owner")
def same_owner(request: Request, draft_id: str, user: DeskUser = Depends(desk_user),
               lang: str = Depends(language)) -> Response:
    """The new-dossier form pre-filled with this draft's owner (the ID stays out of the URL)."""
    service = desk_service(request)
    try:
        draft = _draft_for(service, draft_id, user)
    except DeskPageError as exc:
        return _error_page(request, user, lang, exc)
    return _new_form(request, user, lang, owner_id=draft.owner_id,
                     dossier_code=draft.dossier_code or "")


@router.get("/drafts/{draft_id}/receipt.pdf", name="desk_receipt")
def receipt(request: Request, draft_id: str, user: DeskUser = Depends(desk_user),
            lang: str = Depends(language)) -> Response:
    service = desk_service(request)
    try:
        draft = _draft_for(service, draft_id, user)
    except DeskPageError as exc:
        return _error_page(request, user, lang, exc)
    path = service.store.receipt_path(draft.id)
    if draft.status != "confirmed" or not path.exists():
        return _error_page(request, user, lang, DeskPageError(404, "not_found"))
    return FileResponse(path, media_type="application/pdf",
                        filename=f"phieu-xac-nhan-{draft.id}.pdf", content_disposition_type="inline",
                        headers={"Cache-Control": "private, no-store"})


def _page_image(request: Request, draft_id: str, index: int, rot: int, kind: str,
                user: DeskUser) -> Response:
    service = desk_service(request)
    try:
        _draft_for(service, draft_id, user)
        rotation = normalize_rotation(rot)
    except (DeskPageError, EditError):
        return Response(status_code=404)
    path = service.store.page_image(draft_id, index, kind)  # type: ignore[arg-type]
    if not path.exists():
        return Response(status_code=404)
    data = path.read_bytes()
    if rotation:
        import cv2
        import numpy as np
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        data = encode_jpeg(rotate_image(image, rotation), max(image.shape[:2]), 85)
    return Response(data, media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})


@router.get("/drafts/{draft_id}/pages/{index}.jpg", name="desk_page")
def page_view(request: Request, draft_id: str, index: int, rot: int = Query(0),
              user: DeskUser = Depends(desk_user)) -> Response:
    return _page_image(request, draft_id, index, rot, "pages", user)


@router.get("/drafts/{draft_id}/thumbs/{index}.jpg", name="desk_thumb")
def page_thumb(request: Request, draft_id: str, index: int, rot: int = Query(0),
               user: DeskUser = Depends(desk_user)) -> Response:
    return _page_image(request, draft_id, index, rot, "thumbs", user)


@router.get("/static/{name}", name="desk_static")
def static(name: str) -> Response:
    path = STATIC_DIR / name
    if "/" in name or path.suffix not in STATIC_TYPES or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix],
                        headers={"Cache-Control": "public, max-age=300"})
