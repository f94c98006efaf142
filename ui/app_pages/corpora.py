"""Corpora: create a corpus, add files to it (several at once, each with its result), list its documents, and
delete a document or the whole corpus — each deletion asks first.

The page owns the upload widgets and the delete confirmations; Sift does the ingesting and the deleting. With auth on,
each control shows only to a user allowed to use it: creating to editors and admins, adding files and deleting
documents to those who can edit the corpus, deleting the corpus to its owner and admins.
"""

import logging
import math

import pandas as pd
import streamlit as st

from sift.ui.confirm import confirm_button
from sift.ui.markdown import escape
from sift.ui.state import CORPUS, current_corpus, current_user, leave_notice, notice_failure, show_notice, sift
from sift.ui.uploads import RESULT_COLOURS, ingest_uploads, result_colour, result_row

logger = logging.getLogger("sift.ui.app_pages.corpora")  # run as a script: __name__ is "__main__"

NEW_CORPUS = "new-corpus"
UPLOAD_ROUND = "upload-round"  # part of the uploader's key: a new round starts with an empty uploader
UPLOAD_RESULTS = "upload-results"  # (corpus, rows) of the last upload, shown until the next one


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
    """Ingest the uploaded files, moving a progress bar and listing each file's result as it is done."""
    bar = st.progress(0.0, text=f"Reading {len(files)} files…")
    table = st.empty()
    rows = []

    def on_progress(done: int, total: int, result) -> None:
        rows.append(result_row(result))
        bar.progress(done / total, text=escape(f"{done} of {total} files: {result.source} {result.status}"))
        with table:
            show_results(rows)

    try:
        ingest_uploads(sift(), files, corpus, on_progress)
    except Exception as exc:
        notice_failure(exc, "an upload")
    st.session_state[UPLOAD_RESULTS] = (corpus, rows)
    st.session_state[UPLOAD_ROUND] = st.session_state.get(UPLOAD_ROUND, 0) + 1
    st.rerun()  # draws the page again with an empty uploader and the new documents


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
    done_corpus, rows = st.session_state.get(UPLOAD_RESULTS, (None, []))
    if done_corpus == corpus and rows:
        counts = {status: sum(r["result"] == status for r in rows) for status in RESULT_COLOURS}
        st.caption("Last upload: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
        show_results(rows)

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
