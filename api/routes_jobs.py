"""Submitting scans for digitization (``/v1/jobs``): multipart upload -> job -> status -> result.

Only this agency converts: its desk users (officer, supervisor) and API clients of the agency
whose code is the server's ``agency_code`` may submit. A job is visible to its submitter (and
admins); to anyone else it looks the same as a job that does not exist.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Header, Path, Request, UploadFile
from fastapi.responses import JSONResponse

from pydantic import BaseModel

from api.auth import Principal, current_principal, owner_ref_of, services_of
from api.errors import ApiProblem, forbidden, invalid
from repository import InvalidRequest
from repository.access import JobInfo

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
JOB_ID = Annotated[str, Path(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")]
NOT_YOURS = {404: {"description": "no such job, or not yours (same body)"}}


class JobOut(BaseModel):
    id: str
    status: str
    owner_ref: str
    doc_type: str | None
    dossier_code: str | None
    files: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result_uri: str | None
    result_version: int | None
    error_code: str | None
    error_message: str | None
    status_url: str
    result_url: str


class JobResult(BaseModel):
    job_id: str
    uri: str
    version: int
    sha256: str
    record_url: str
    pdf_url: str
    structured_record_url: str


def job_out(j: JobInfo) -> JobOut:
    return JobOut(id=j.id, status=j.status, owner_ref=j.owner_key, doc_type=j.doc_type, dossier_code=j.dossier_code,
                  files=j.files, created_at=j.created_at, started_at=j.started_at, finished_at=j.finished_at,
                  result_uri=j.result_uri, result_version=j.result_version, error_code=j.error_code,
                  error_message=j.error_message, status_url=f"/v1/jobs/{j.id}", result_url=f"/v1/jobs/{j.id}/result")


def require_submitter(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    home = services_of(request).settings.agency_code
    if principal.kind in ("officer", "supervisor") or (principal.kind == "agency" and principal.agency_code == home):
        return principal
    raise forbidden("only this agency's desk and intake systems submit scans")


def _own_job(request: Request, principal: Principal, job_id: str) -> JobInfo:
    job = services_of(request).access.get_job(job_id)
    if job is None or (job.submitted_by != principal.ref and principal.kind != "admin"):
        raise ApiProblem(404, "job_not_found", "no such job")
    return job


@router.post("", status_code=202, response_model=JobOut, summary="Submit scans of one document",
             description="The files are the pages of ONE document, in order (JPEG/PNG/TIFF/PDF...). "
                         "Returns at once with a job; poll its `status_url`. An `Idempotency-Key` header "
                         "makes retries safe: the same key returns the first job.")
def submit_job(request: Request,
               files: Annotated[list[UploadFile], File(description="scan files, pages in order")],
               owner_id: Annotated[str, Form(min_length=10, max_length=20,
                                             description="owner: 12-digit personal ID or 10/13-digit enterprise code")],
               principal: Annotated[Principal, Depends(require_submitter)],
               doc_type: Annotated[str | None, Form(max_length=64)] = None,
               dossier_code: Annotated[str | None, Form(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")] = None,
               idempotency_key: Annotated[str | None, Header(max_length=100, pattern=r"^[\x21-\x7e]+$")] = None) -> JSONResponse:
    from ingest.pipeline import DocumentInput, InputFile, PipelineError, owner_kind
    from ocr.catalog import load_catalog

    services = services_of(request)
    opts = services.options
    if not files or len(files) > opts.max_files:
        raise invalid(f"send 1 to {opts.max_files} files", "bad_file_count")
    try:
        owner_key = owner_ref_of(services, owner_id)
        owner_kind(owner_id)
    except (InvalidRequest, PipelineError) as exc:
        raise invalid(getattr(exc, "message", None) or str(exc), "invalid_owner") from None
    if doc_type is not None and doc_type not in load_catalog().codes:
        raise invalid(f"unknown document type {doc_type!r}", "unknown_type")
    inputs, total = [], 0
    for upload in files:
        data = upload.file.read(opts.max_upload_bytes - total + 1)
        total += len(data)
        if total > opts.max_upload_bytes:
            raise ApiProblem(413, "too_large", f"the files exceed {opts.max_upload_bytes} bytes in total")
        if not data:
            raise invalid(f"{upload.filename or 'file'}: empty file", "empty")
        inputs.append(InputFile(name=(upload.filename or f"page{len(inputs) + 1}")[:200], data=data))
    doc = DocumentInput(files=inputs, owner_id=owner_id, doc_type=doc_type, dossier_code=dossier_code)
    job, _ = services.jobs.submit(submitted_by=principal.ref, actor_kind=principal.kind,
                                  agency_code=principal.agency_code, doc=doc, owner_key=owner_key,
                                  idempotency_key=idempotency_key)
    body = job_out(job)
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers={"Location": body.status_url})


@router.get("/{job_id}", response_model=JobOut, responses=NOT_YOURS, summary="Job status")
def job_status(request: Request, job_id: JOB_ID,
               principal: Annotated[Principal, Depends(current_principal)]) -> JobOut:
    return job_out(_own_job(request, principal, job_id))


@router.get("/{job_id}/result", response_model=JobResult, summary="The stored record of a finished job",
            responses={**NOT_YOURS, 409: {"description": "the job is still running (Retry-After) or failed"}})
def job_result(request: Request, job_id: JOB_ID,
               principal: Annotated[Principal, Depends(current_principal)]) -> JobResult:
    job = _own_job(request, principal, job_id)
    if job.status in ("queued", "running"):
        raise ApiProblem(409, "job_pending", f"the job is {job.status}", headers={"Retry-After": "2"})
    if job.status == "failed" or not job.result_uri or job.result_version is None:
        raise ApiProblem(409, "job_failed", f"the job failed: {job.error_code}: {job.error_message}")
    base = f"/v1/records/{job.result_uri}"
    return JobResult(job_id=job.id, uri=job.result_uri, version=job.result_version, sha256=job.result_sha256 or "",
                     record_url=base, pdf_url=f"{base}/versions/{job.result_version}/pdf",
                     structured_record_url=f"{base}/versions/{job.result_version}/record")
