"""The language model layer the generator and the reranker share: one protocol, two backends.

``LocalLM`` runs a transformers model in this process (``load_local_lm`` loads it once); ``ServerLM`` talks to any
OpenAI-compatible server. Both chat and stream (answers), judge, measure query likelihood and generate in batches
(reranking); every scoring call returns its own token count. Nothing here reads Sift's settings: ``sift.app.models``
picks the backend from them.

Example::

    >>> from sift.rerank.llm import ServerLM
    >>> lm = ServerLM("http://127.0.0.1:8000/v1", "smollm2")
    >>> lm.chat([{"role": "user", "content": "Say hi"}], max_new_tokens=4)  # doctest: +SKIP
    'Hi!'
"""

from sift.rerank.llm.base import Generated, LanguageModel, Message, ModelBusy, ModelNotFound, Scored, ServerError
from sift.rerank.llm.local import LocalLM, Tail, load_local_lm
from sift.rerank.llm.server import ServerCapabilities, ServerLM

__all__ = [
    "Generated",
    "LanguageModel",
    "LocalLM",
    "Message",
    "ModelBusy",
    "ModelNotFound",
    "Scored",
    "ServerCapabilities",
    "ServerError",
    "ServerLM",
    "Tail",
    "load_local_lm",
]
