"""Liveness, readiness and Prometheus metrics (no authentication: they reveal no records)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from api.auth import services_of
from repository import RepositoryError

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ok: bool
    db: dict
    store: dict


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, summary="Database and object store answer",
            responses={503: {"model": Readiness, "description": "a dependency is down"}})
def readyz(request: Request) -> JSONResponse:
    services = services_of(request)
    try:
        report = services.repository.check()
    except (RepositoryError, ValueError) as exc:
        report = {"ok": False, "db": {"ok": False, "error": str(exc)}, "store": {"ok": False}}
    body = Readiness(ok=bool(report["ok"]), db=report["db"], store=report["store"])
    return JSONResponse(body.model_dump(), status_code=200 if body.ok else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(request: Request) -> Response:
    return Response(generate_latest(services_of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
