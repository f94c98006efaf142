"""Sift as an HTTP service (``sift serve``): FastAPI routes over ``sift.app.pipeline.Sift``.

- ``corpora``: corpora, documents, uploads (ingestion jobs) and job status;
- ``questions``: search, ask (JSON and server-sent events), conversations, traces;
- ``openai_compat``: ``/v1/chat/completions`` and ``/v1/models``, model = corpus;
- ``rerank``: ``/v1/rerank``, the common rerank API shape;
- ``access``: who is calling (an API key, when auth is on) and what they may do with which corpus;
- ``server``: the app and its error handling; ``serve``: uvicorn, the loopback rule and the ingestion worker.

Example::

    sift serve --port 8000
    curl localhost:8000/openapi.json
"""
