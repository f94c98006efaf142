"""Corpora, their documents, and uploads, which become ingestion jobs (``sift.app.jobs``).

Example::

    curl -X POST localhost:8000/corpora -H 'Content-Type: application/json' -d '{"name": "notes"}'
    curl -F files=@tides.md -F files=@moon.pdf localhost:8000/corpora/notes/uploads    # -> 202 {"id": "…"}
    curl localhost:8000/jobs/<id>                                                      # per-file progress
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, Request, UploadFile, status

from sift.app.api.access import CurrentUser, editable, manageable, readable, readable_corpora, readable_id, sift_of
from sift.app.api.schemas import CorpusCreate, CorpusOut, Deleted, DocumentOut, Error
from sift.app.jobs import Job, Jobs

logger = logging.getLogger(__name__)

UPLOADS = "/corpora/{name}/uploads"  # multipart bodies, bounded at the edge (sift.app.api.edge) as such
NOT_FOUND = {404: {"model": Error, "description": "No such corpus, or not one the key can read."}}
FORBIDDEN = {403: {"model": Error, "description": "The key's user may read the corpus but not change it."}}

router = APIRouter(tags=["corpora"])


def _jobs(request: Request) -> Jobs:
    return request.app.state.jobs


@router.get("/corpora", summary="List the corpora the key can read")
def list_corpora(request: Request, user: CurrentUser) -> list[CorpusOut]:
    return [CorpusOut(name=name) for name in readable_corpora(request, user)]


@router.post(
    "/corpora",
    status_code=status.HTTP_201_CREATED,
    summary="Create a corpus, owned by the key's user (no-op when it exists and they can edit it)",
    responses={
        400: {"model": Error, "description": "Not a usable name."},
        403: {"model": Error, "description": "A reader's key, or the name is another user's corpus."},
    },
)
def create_corpus(body: CorpusCreate, request: Request, user: CurrentUser) -> CorpusOut:
    return CorpusOut(name=sift_of(request).accounts.create_corpus(user, body.name))


@router.delete(
    "/corpora/{name}",
    summary="Delete a corpus with its documents, conversations and traces (its owner or an admin)",
    responses={**NOT_FOUND, **FORBIDDEN},
)
def delete_corpus(name: str, request: Request, user: CurrentUser) -> Deleted:
    manageable(request, user, name)
    return Deleted(deleted=name, documents=sift_of(request).delete_corpus(name))


@router.get("/corpora/{name}/documents", summary="List a corpus's documents", responses=NOT_FOUND)
def list_documents(name: str, request: Request, user: CurrentUser) -> list[DocumentOut]:
    readable(request, user, name)
    return [DocumentOut(**asdict(d)) for d in sift_of(request).documents(name)]


@router.delete(
    "/corpora/{name}/documents/{document_id}", summary="Delete a document", responses={**NOT_FOUND, **FORBIDDEN}
)
def delete_document(name: str, document_id: int, request: Request, user: CurrentUser) -> Deleted:
    editable(request, user, name)
    return Deleted(deleted=sift_of(request).delete_document(name, document_id))


@router.post(
    UPLOADS,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Upload files to ingest: saved, then queued as a job (poll GET /jobs/{id})",
    responses={
        **NOT_FOUND,
        **FORBIDDEN,
        413: {"model": Error, "description": "A file, or the whole upload, over its limit."},
    },
)
def upload(
    name: str,
    request: Request,
    user: CurrentUser,
    files: Annotated[list[UploadFile], File(description="One or more files (.txt, .md, .pdf, .docx, .html).")],
) -> Job:
    """The files are on disk when this answers, so a server stop loses none of them; each file's result (added,
    unchanged, replaced, or failed with the reason) is in the job once ingested."""
    editable(request, user, name)
    sift = sift_of(request)
    corpus = sift.store.corpus(name)
    if len(files) > sift.settings.max_upload_files:
        most = sift.settings.max_upload_files
        raise HTTPException(413, f"{len(files)} files in one upload; the limit is {most} (SIFT_MAX_UPLOAD_FILES).")
    limit = sift.settings.max_upload_bytes
    for file in files:
        if file.size is not None and file.size > limit:
            raise HTTPException(
                413,
                f"{file.filename!r} is {file.size / 2**20:.1f} MiB; the limit is {limit / 2**20:.1f} MiB "
                "(SIFT_MAX_UPLOAD_MB).",
            )
    return _jobs(request).submit(corpus.name, corpus.id, [(f.filename or "upload", f.file) for f in files])


@router.get(
    "/jobs/{job_id}",
    tags=["jobs"],
    summary="An ingestion job: status, per-file progress and results",
    responses={404: {"model": Error, "description": "No such job."}},
)
def get_job(job_id: str, request: Request, user: CurrentUser) -> Job:
    job = _jobs(request).get(job_id)
    if job is None or not readable_id(request, user, job.corpus_id):
        raise HTTPException(404, f"No job {job_id!r}.")
    return job


@router.get(
    "/corpora/{name}/jobs", tags=["jobs"], summary="A corpus's ingestion jobs, newest first", responses=NOT_FOUND
)
def list_jobs(
    name: str, request: Request, user: CurrentUser, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[Job]:
    readable(request, user, name)
    corpus = sift_of(request).store.corpus(name)
    # Jobs name their corpus; the id check leaves out those of a deleted corpus that had this name.
    return [job for job in _jobs(request).recent(corpus.name, limit) if job.corpus_id == corpus.id]
