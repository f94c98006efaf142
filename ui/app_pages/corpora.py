"""Corpora: create a corpus, add files to it (several at once, each with its result), list its documents, and
delete a document or the whole corpus — each deletion asks first.

The page owns the upload widgets and the delete confirmations; Sift does the deleting. Added files become an
ingestion job, run by a worker process (``sift.ui.uploads``); the page reads the corpus's latest jobs from SQL and,
while one is unfinished, polls it every second, so the progress survives a reload and the job a closed tab.
With auth on, each control shows only to a user allowed to use it: creating to editors and admins, adding files and
deleting documents to those who can edit the corpus, deleting the corpus to its owner and admins.
"""

import logging
import math

import pandas as pd
import streamlit as st

from sift.ui.confirm import confirm_button
from sift.ui.markdown import escape
from sift.ui.state import CORPUS, current_corpus, current_user, leave_notice, notice_failure, show_notice, sift
from sift.ui.uploads import RESULT_COLOURS, file_row, result_colour, submit_upload, upload_jobs

logger = logging.getLogger("sift.ui.app_pages.corpora")  # run as a script: __name__ is "__main__"

NEW_CORPUS = "new-corpus"
UPLOAD_ROUND = "upload-round"  # part of the uploader's key: a new round starts with an empty uploader
POLL_SECONDS = 1.0


def create_corpus() -> None:
    try:
        st.session_state[CORPUS] = sift().accounts.create_corpus(current_user(), st.session_state[NEW_CORPUS])
        leave_notice("success", f"Corpus “{st.session_state[CORPUS]}” is ready for files.")
    except Exception as exc:  # a readable line for the user, the traceback to the log
        notice_failure(exc, "creating a corpus")
    st.session_state[NEW_CORPUS] = ""


def show_results(rows: list[dict]) -> None:
    st.dataframe(pd.DataFrame(rows).style.map(result_colour, subset=["result"]), hide_index=True)


def add_files(files: list, corpus: str) -> None:
    """Queue the files as a job; the page then shows its progress (upload_progress)."""
    try:
        submit_upload(sift(), files, corpus)
    except Exception as exc:
        notice_failure(exc, "an upload")
    st.session_state[UPLOAD_ROUND] = st.session_state.get(UPLOAD_ROUND, 0) + 1
    st.rerun()  # draws the page again with an empty uploader and the job's progress


def show_job(job) -> None:
    done = sum(f.status in RESULT_COLOURS for f in job.files)
    if job.finished:
        counts = {status: sum(f.status == status for f in job.files) for status in RESULT_COLOURS}
        st.caption("Last upload: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
        if job.status == "failed":
            st.error(escape(f"The upload failed: {job.error}"))
    else:
        text = "Waiting for the ingestion worker…" if job.status == "queued" else f"{done} of {len(job.files)} files"
        st.progress(done / len(job.files), text=text)
    show_results([file_row(f) for f in job.files])


def upload_progress(corpus: str, watched: list[str]) -> None:
    """The unfinished jobs (``watched``) and the latest finished one; once the watched ones end, the whole page is
    drawn again (its documents changed), which stops the polling."""
    jobs = upload_jobs(sift(), corpus)
    if any(job.finished for job in jobs if job.id in watched):
        st.rerun(scope="app")
    unfinished = [job for job in jobs if not job.finished]
    latest_finished = next((job for job in jobs if job.finished), None)
    for job in unfinished + [latest_finished] * (latest_finished is not None):
        show_job(job)


st.title("Corpora")
show_notice()
corpus = current_corpus()
user = current_user()
if user.can_create_corpora:
    with (
        st.expander("Create a corpus", expanded=corpus is None),
        st.container(horizontal=True, vertical_alignment="bottom"),
    ):
        st.text_input("Name", key=NEW_CORPUS, placeholder="e.g. lighthouses")
        st.button("Create", on_click=create_corpus)
if corpus is None:
    if not user.can_create_corpora:
        st.info("No corpus has been shared with you yet.")
    st.stop()

documents = sift().documents(corpus)
st.header(escape(corpus))
can_edit = sift().accounts.can_edit(user, corpus)

if can_edit:
    st.subheader("Add files")
    limit_mb = sift().settings.max_upload_mb
    files = st.file_uploader(
        "Files",
        accept_multiple_files=True,
        key=f"uploads-{st.session_state.get(UPLOAD_ROUND, 0)}",
        max_upload_size=math.ceil(limit_mb),
        help=f"Several at once: .txt, .md, .html, .pdf, .docx, up to {limit_mb:g} MB each. A file already in the "
        "corpus is left unchanged, or replaced when its content changed.",
    )
    if files and st.button(f"Add {len(files)} file{'s' * (len(files) > 1)}", type="primary"):
        add_files(files, corpus)
    watched = [job.id for job in upload_jobs(sift(), corpus) if not job.finished]
    st.fragment(upload_progress, run_every=POLL_SECONDS if watched else None)(corpus, watched)

st.subheader(f"Documents ({len(documents)})")
if documents:
    st.dataframe(
        [
            {
                "id": d.id,
                "document": d.source,
                "title": d.title or "",
                "passages": d.chunks,
                "KB": round(d.size_bytes / 1024, 1),
                "dated": d.document_date,
                "updated": d.updated_at,
            }
            for d in documents
        ],
        hide_index=True,
        column_config={
            "title": st.column_config.TextColumn(width="medium"),
            "dated": st.column_config.DateColumn(help="The date the document states, when it states one"),
            "updated": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm", help="When this version was added"),
        },
    )
else:
    st.info("No documents yet" + (": add files above." if can_edit else "."))
if documents and can_edit:
    by_id = {d.id: d for d in documents}
    doc_id = st.selectbox("Document", list(by_id), format_func=lambda i: f"{by_id[i].source} (#{i})")
    confirm_button(
        "Delete document",
        f"delete-document-{doc_id}",
        escape(
            f"Delete “{by_id[doc_id].source}” and its {by_id[doc_id].chunks} passages from {corpus}? "
            "This cannot be undone."
        ),
        lambda doc_id=doc_id: f"Deleted {sift().delete_document(corpus, doc_id)}.",
    )

if sift().accounts.can_manage(user, corpus):
    st.subheader("Delete this corpus")
    confirm_button(
        f"Delete corpus {escape(corpus)}",
        f"delete-corpus-{corpus}",
        escape(
            f"Delete “{corpus}” with its {len(documents)} documents, conversations and traces? This cannot be undone."
        ),
        lambda corpus=corpus: f"Deleted corpus {corpus} and its {sift().delete_corpus(corpus)} documents.",
    )
