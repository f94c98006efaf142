"""Sift's first page: pick a corpus, ask a question, see the cited passages, and the corpus's documents."""

import streamlit as st

from app.pipeline import Sift

st.set_page_config(page_title="Sift", page_icon="🔎", layout="wide")


@st.cache_resource(show_spinner="Loading Sift…")
def sift() -> Sift:
    return Sift()


st.title("Sift")
st.caption("Ask questions of your documents; every answer cites its passages.")

try:
    corpora = sift().corpora()
except Exception as exc:  # show one readable line, never a traceback
    st.error(f"Cannot open the store: {exc}")
    st.stop()

if not corpora:
    st.info("No corpus yet. Ingest files with `sift ingest PATH --corpus NAME`.")
    st.stop()

corpus = st.sidebar.selectbox("Corpus", corpora)
question = st.text_input("Question", placeholder="e.g. Who designed the Pharos of Alexandria?")
if question.strip():
    try:
        with st.spinner("Searching…"):
            answer = sift().ask(question, corpus)
    except Exception as exc:
        st.error(str(exc))
    else:
        st.text(answer.text)  # document text is shown as text, never as HTML or Markdown
        for citation in answer.citations:
            with st.expander(f"[{citation.number}] {citation.source} — score {citation.score:.3f}"):
                st.text(citation.text)

with st.expander(f"Documents in {corpus}"):
    st.dataframe(
        [{"id": d.id, "source": d.source, "title": d.title, "passages": d.chunks,
          "date": d.document_date.date().isoformat() if d.document_date else ""} for d in sift().documents(corpus)],
        hide_index=True,
    )
