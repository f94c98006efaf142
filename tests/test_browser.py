"""The app in a real browser: `streamlit run ui/Home.py` driven by headless Chromium through playwright.

Creates a corpus, uploads files (the sample corpus, one distinctive note and an empty file, which fails), asks about
the note, checks the answer cites it, and opens the Inspector's rank table. Screenshots of each page go to
tests/artifacts/ and are copied to docs/screenshots/ (shown in the README).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLE_CORPUS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
ARTIFACTS = REPO / "tests" / "artifacts"
SCREENSHOTS = REPO / "docs" / "screenshots"
# A bare URL in a title or a file name must show as text, never as a link (Markdown autolinks it despite escapes).
NOTE = """# The Quillmere Light, https://quillmere.example.org

The Quillmere Light stands on Varrow Point, at the mouth of the Sallow estuary. In 1887 its keeper, Ottilie Brask,
painted the tower teal after a winter storm stripped its whitewash; sailors have called it the Teal Tower ever since.
Its lamp shows two violet flashes every twelve seconds, a character no other light on that coast uses.
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """The app on a free port over an empty data directory; stopped (then killed, if need be) afterwards."""
    port = _free_port()
    log = (tmp_path / "streamlit.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "ui/Home.py",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=REPO,
        env={**os.environ, "SIFT_DATA_DIR": str(tmp_path / "data")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                pass
            assert process.poll() is None, (tmp_path / "streamlit.log").read_text()
            assert time.monotonic() < deadline, "the app did not answer /_stcore/health within 120 s"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


def _screenshot(page, name: str) -> None:
    """The whole page (the viewport grown to the content: Streamlit scrolls inside it), kept twice."""
    height = page.evaluate(
        "Math.max(...['stMain', 'stAppScrollToBottomContainer', 'stSidebarContent'].map("
        "id => document.querySelector(`[data-testid=${id}]`)?.scrollHeight || 0))"
    )
    page.set_viewport_size({"width": 1400, "height": max(900, min(height, 2400))})
    page.wait_for_timeout(800)  # let the resized layout settle
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(ARTIFACTS / f"{name}.png", SCREENSHOTS / f"{name}.png")
    page.set_viewport_size({"width": 1400, "height": 900})


def test_upload_ask_and_inspect_in_a_browser(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    note = tmp_path / "quillmere-light-www.example.org.md"
    note.write_text(NOTE)
    empty = tmp_path / "empty.txt"
    empty.touch()
    files = [*sorted(SAMPLE_CORPUS.iterdir()), note, empty]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(120_000)  # the first page run loads the models on two shared cores

            page.goto(f"{server}/corpora")
            page.get_by_label("Name").fill("harbour")
            page.get_by_role("button", name="Create", exact=True).click()
            expect(page.get_by_text("Corpus “harbour” is ready for files.")).to_be_visible()

            page.locator("[data-testid=stFileUploader] input[type=file]").set_input_files(files)
            page.get_by_role("button", name=f"Add {len(files)} files").click()
            expect(
                page.get_by_text(f"Last upload: {len(files) - 1} added, 0 replaced, 0 unchanged, 1 failed")
            ).to_be_visible(timeout=240_000)
            expect(page.get_by_text(f"Documents ({len(files) - 1})")).to_be_visible()
            _screenshot(page, "corpora")
            expect(page.locator("a[href*='example.org']")).to_have_count(0)

            page.get_by_role("link", name="Chat").click()
            page.get_by_placeholder("Ask a question").fill("Where does the Quillmere Light stand?")
            page.get_by_placeholder("Ask a question").press("Enter")
            # no second question while the answer is written: it would stop this one
            expect(page.get_by_placeholder("Ask a question")).to_be_disabled()
            expect(page.get_by_text("Answered in")).to_be_visible(timeout=300_000)
            expect(page.get_by_placeholder("Ask a question")).to_be_enabled()
            citation = page.locator("[data-testid=stExpander] summary").filter(has_text="The Quillmere Light")
            expect(citation).to_have_count(1)
            citation.click()
            expect(page.get_by_text("Varrow Point", exact=False).last).to_be_visible()
            _screenshot(page, "chat")
            expect(page.get_by_text("quillmere.example.org", exact=False).first).to_be_visible()
            expect(page.locator("a[href*='example.org']")).to_have_count(0)

            page.get_by_role("link", name="Why these passages?").click()
            expect(page.get_by_text("Ranks and scores")).to_be_visible()
            expect(page.get_by_label("Query")).to_have_value(re.compile(r"^Where does the Quillmere Light stand\?"))
            table = page.locator("[data-testid=stDataFrame] [role=grid]").first  # the grid's accessible twin
            # The header and every candidate: candidates_k (100) is more than the corpus holds, so all its passages,
            # of which the LLM scored at most rerank_llm_k (20): as many as the default latency budget allowed.
            metrics = page.locator("[data-testid=stMetricValue]")
            expect(page.get_by_text(re.compile(r"^Latency budget 1\.5 s: at the [\d,]+ tokens/s"))).to_be_visible()
            assert 1 <= int(metrics.nth(3).inner_text()) <= 20
            candidates = int(metrics.nth(2).inner_text())
            assert 20 < candidates < 100
            expect(table).to_have_attribute("aria-rowcount", str(candidates + 1))
            expect(table.locator("th")).to_contain_text(["final rank", "retrieval rank", "change", "passage"])
            expect(table.locator("th").last).to_have_text("composite")
            expect(page.locator("[data-testid=stVegaLiteChart]")).to_be_visible()
            _screenshot(page, "inspector")
        finally:
            browser.close()


@pytest.fixture
def written_answers(monkeypatch):
    """The app's answers written by the model, token by token (a quote comes at once: nothing to leave mid-way)."""
    monkeypatch.setenv("SIFT_ANSWER_STYLE", "generative")


def test_a_page_change_mid_answer_frees_the_model_for_the_next_question(written_answers, server, tmp_path):
    """A reader who leaves the chat while an answer is written (another page, a rerun) must not keep the model:
    the next question is answered, and the one left behind is stored as interrupted."""
    from playwright.sync_api import expect, sync_playwright

    from sift.app.config import Settings
    from sift.app.pipeline import Sift

    env = {**os.environ, "SIFT_DATA_DIR": str(tmp_path / "data")}
    subprocess.run([sys.executable, "-m", "sift.app.cli", "sample"], env=env, cwd=REPO, check=True, timeout=600)
    left, asked = "Who designed the Pharos of Alexandria?", "What did a lighthouse keeper do at dusk?"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(server)
            page.get_by_placeholder("Ask a question").fill(left)
            page.get_by_placeholder("Ask a question").press("Enter")
            expect(page.get_by_text("▌")).to_be_visible(timeout=300_000)  # the answer is being written
            page.get_by_role("link", name="Corpora").click()
            expect(page).to_have_url(re.compile(r"/corpora$"))
            page.get_by_role("link", name="Chat").click()
            page.get_by_placeholder("Ask a question").fill(asked)
            page.get_by_placeholder("Ask a question").press("Enter")
            expect(page.get_by_text("Answered in")).to_be_visible(timeout=240_000)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=ARTIFACTS / "chat-after-leaving-an-answer.png", full_page=True)
        finally:
            browser.close()
    sift = Sift(Settings(data_dir=tmp_path / "data"))
    conversation = next(c for c in sift.conversations("sample") if c.title == left)
    messages = sift.messages("sample", conversation.id)
    # The chat came back to the same conversation: the question left behind, marked, then the one answered.
    assert [(m.role, m.content) for m in messages[::2]] == [("user", left), ("user", asked)]
    assert messages[1].details.interrupted and messages[1].content.startswith("Not answered")
    assert not messages[3].details.interrupted and messages[3].details.citations
