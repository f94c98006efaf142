"""Follow-up questions: when a question points back, what it points at, the fused searches, and conversations over
the sample corpus with the real models where question 2 must not be answered about question 1."""

from __future__ import annotations

import pytest

from sift.app.config import Settings
from sift.app.followup import Turn, fill_in, fuse, points_back, referent, standalone_question, turns
from sift.app.pipeline import Sift, Status
from sift.retrieval.types import Candidate
from tests.conftest import SAMPLE_CORPUS

PHAROS = [Turn("Who designed the Pharos of Alexandria?", "Sostratus of Cnidus [1].", ("History of lighthouses",))]


@pytest.mark.parametrize(
    ("question", "why"),
    [
        ("When did they disband?", "pronoun 'they'"),
        ("What was her first album?", "pronoun 'her'"),
        ("What about the second one?", "ellipsis"),
        ("Why?", "too short to stand alone"),
        ("Which one cannot be overridden?", "'which one' without a noun"),  # seen in the browser
        ("Is the other one taller?", "'the other one' without a noun"),
        ("Which one of the Beatles was the oldest?", None),  # "one of" names what it means
        ("Did Fernandez have a label?", None),
        ("How do Fresnel lenses work?", None),
    ],
)
def test_points_back(question, why):
    assert points_back(question) == why


def test_referent_is_the_last_name_a_question_gave_else_what_the_answer_cited():
    assert referent(PHAROS, "When was it built?") == "Pharos of Alexandria"
    # a name the question already holds is no referent: the next one back is
    history = [Turn("Who was Grace Darling?"), Turn("Where is the Pharos of Alexandria?")]
    assert referent(history, "Was the Pharos of Alexandria taller than her house?") == "Grace Darling"
    assert referent([Turn("what did they eat?", "Salt beef [1].", ("Lighthouse keepers",))], "Why?") == (
        "Lighthouse keepers"
    )
    assert referent([Turn("what did they eat?")], "Why?") is None


def test_fill_in():
    assert fill_in("When was it built?", "Pharos of Alexandria") == "When was the Pharos of Alexandria built?"
    assert fill_in("What was his position?", "Ozzie Smith") == "What was Ozzie Smith's position?"
    assert fill_in("Did they marry her?", "Grace Darling") == "Did Grace Darling marry her?"
    assert fill_in("What else is significant?", "Pinhead") == "What else is significant about Pinhead?"
    assert fill_in("Which one cannot be overridden?", "lint levels") == "Which one of lint levels cannot be overridden?"
    assert fill_in("Which one did they sign?", "Skunk Anansie") == "Which one did Skunk Anansie sign?"  # pronoun first


def test_a_question_that_stands_alone_is_left_as_asked():
    followup = standalone_question("How do Fresnel lenses work?", PHAROS)
    assert (followup.standalone, followup.method, followup.rewritten) == (
        "How do Fresnel lenses work?",
        "as asked",
        False,
    )
    assert followup.searches == ["How do Fresnel lenses work?"]
    followup = standalone_question("When was it built?", PHAROS)
    assert followup.method == "referent" and followup.searches == [
        "When was it built?",
        "When was the Pharos of Alexandria built?",
    ]


def test_turns_pair_each_question_with_its_answer():
    messages = [
        ("user", "Who was Grace Darling?", ()),
        ("assistant", "A keeper's daughter [1].", ("Keepers",)),
        ("user", "Which ship?", ()),  # no answer yet (it failed): still a turn
        ("user", "Why?", ()),
        ("assistant", "A storm [1].", ()),
    ]
    assert turns(messages) == [
        Turn("Who was Grace Darling?", "A keeper's daughter [1].", ("Keepers",)),
        Turn("Which ship?"),
        Turn("Why?", "A storm [1]."),
    ]


def found(*chunk_ids: int, score: float = 0.5) -> list[Candidate]:
    return [Candidate(i, f"passage {i}", 1, "doc.md", score, rank) for rank, i in enumerate(chunk_ids, start=1)]


def test_fuse_keeps_every_passage_and_the_best_score():
    question, rewrite = found(1, 2, 3, 4, score=0.6), found(9, 8, 3, 7, score=0.7)
    fused = fuse([question, rewrite])
    assert [c.rank for c in fused] == list(range(1, 8))
    assert {c.chunk_id for c in fused} == {1, 2, 3, 4, 7, 8, 9}  # nothing cut
    assert fused[0].chunk_id == 3 and fused[0].score == 0.7  # found by both: first, with its best cosine
    # ties (1 and 9 are both first in one search) go to the question's order
    assert [c.chunk_id for c in fused[1:3]] == [1, 9]
    assert fuse([question]) == question  # one search: its own order


def test_a_bad_rewrite_cannot_push_the_questions_top_passages_out_of_the_top():
    question, unrelated = found(*range(1, 21)), found(*range(101, 121))
    top = [c.chunk_id for c in fuse([question, unrelated])[:10]]
    assert [i for i in top if i < 100] == [1, 2, 3, 4, 5]  # the question's top five stay in the fused top ten


# ---------------------------------------------------------------------------------------------- real models


@pytest.fixture(scope="module")
def sift(tmp_path_factory):
    sift = Sift(Settings(data_dir=tmp_path_factory.mktemp("followup") / "data"))
    sift.ingest_paths(sorted(SAMPLE_CORPUS.iterdir()), "sample")
    return sift


def test_question_2_about_another_document_cites_its_own_document(sift):
    conversation = sift.start_conversation("sample", "Lenses")
    first = sift.ask("How does a Fresnel lens bend light?", "sample", mode="none", conversation_id=conversation)
    assert first.followup.reason == "first question"
    events = list(
        sift.ask_stream(
            "What did lighthouse keepers do every day?", "sample", mode="none", conversation_id=conversation
        )
    )
    second = events[-1]
    assert second.standalone_question is None and second.followup.method == "as asked"
    assert "Searching for “What did lighthouse keepers do every day?”…" in [
        e.text for e in events if isinstance(e, Status)
    ]
    assert second.answered and second.citations
    assert {c.source for c in second.citations} == {"lighthouse-keepers-daily-life.txt"}
    # the stored conversation is the next question's history, with how each question was read
    stored = sift.messages("sample", conversation)
    assert [m.role for m in stored] == ["user", "assistant"] * 2
    assert stored[3].details.followup == second.followup
    assert sift.turns("sample", conversation)[1].cited == ("lighthouse keepers daily life",)


def test_a_true_follow_up_names_what_it_points_at_and_finds_it(sift):
    history = [{"role": "user", "content": "Who designed the Pharos of Alexandria?"}]  # as the chat page passes it
    events = list(sift.ask_stream("When was it built?", "sample", history, mode="none"))
    answer = events[-1]
    assert answer.standalone_question == "When was the Pharos of Alexandria built?"
    assert answer.followup.method == "referent" and "it" in answer.followup.reason
    assert "Searching for “When was it built?” and “When was the Pharos of Alexandria built?”…" in [
        e.text for e in events if isinstance(e, Status)
    ]
    assert any("Pharos" in c.text for c in answer.citations)
    assert answer.to_dict()["followup"]["method"] == "referent"


def test_the_fused_search_keeps_the_bare_questions_top_passages(sift):
    question = "When was it built?"
    alone = [c.chunk_id for c in sift.search(question, "sample")[:5]]
    answer = sift.ask(question, "sample", PHAROS, mode="none")
    fused = [c.chunk_id for c in sorted(answer.rerank.candidates, key=lambda c: c.final_rank)]
    assert answer.rerank.query == "When was the Pharos of Alexandria built?"  # the reranker reads the rewrite
    assert set(alone) <= set(fused[:10])
