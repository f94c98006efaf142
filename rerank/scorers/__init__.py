"""One scorer per signal, each in its own file, all behind ``Scorer.score(query, candidates) -> Signal``.

| scorer                  | signal                                             | needs            |
|-------------------------|----------------------------------------------------|------------------|
| ``DenseSimilarity``     | query-passage cosine (and vectors for MMR)         | retrieval's, or an embedder |
| ``LexicalScore``        | BM25 score                                         | retrieval's, or nothing |
| ``QueryLikelihood``     | relevance as mean log P(query | passage)            | an LLM           |
| ``LogitJudge``          | any criteria, expected score from next-token logits| an LLM           |
| ``GenerativeJudge``     | any criteria, scores the model writes              | an LLM           |
| ``RebelReference``      | REBEL's listwise final score (the yardstick)       | an LLM           |
| ``CrossEncoderRelevance`` | relevance from a CrossEncoder                    | a CrossEncoder   |
| ``DocumentDate``        | recency from the document's date                   | dated documents  |
"""

from sift.rerank.scorers.base import Scorer, Signal
from sift.rerank.scorers.cross_encoder import CrossEncoderRelevance
from sift.rerank.scorers.dense import DenseSimilarity
from sift.rerank.scorers.generative import GenerativeJudge
from sift.rerank.scorers.judge import LogitJudge
from sift.rerank.scorers.lexical import LexicalScore
from sift.rerank.scorers.listwise import RebelReference
from sift.rerank.scorers.query_likelihood import QueryLikelihood
from sift.rerank.scorers.recency import DocumentDate

__all__ = [
    "CrossEncoderRelevance",
    "DenseSimilarity",
    "DocumentDate",
    "GenerativeJudge",
    "LexicalScore",
    "LogitJudge",
    "QueryLikelihood",
    "RebelReference",
    "Scorer",
    "Signal",
]
