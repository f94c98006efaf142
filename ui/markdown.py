"""Text from documents and file names shown where Streamlit parses Markdown (labels, captions)."""

import itertools
import logging
import re

logger = logging.getLogger(__name__)

# CommonMark lets a backslash escape any ASCII punctuation; escaping all of it also disarms Streamlit's own
# extensions (":red[...]", ":material/icon:", "$math$") and links or images a file name could smuggle in.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# GFM's autolinks are found in the text after escapes are read, so a backslash cannot stop them: an invisible word
# joiner splits what they look for ("http://", "www.", the "@" of an e-mail address), and the URL stays text.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?=@)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def escape(text: str) -> str:
    """``text`` as Markdown that shows exactly ``text``: no link, emphasis, HTML, emoji, icon, colour or math.

    >>> print(escape("[x](y) *z* <b>:smile:</b> $x$"))
    \\[x\\]\\(y\\) \\*z\\* \\<b\\>\\:smile\\:\\<\\/b\\> \\$x\\$
    >>> print(escape("https://a.org www.b.org c@d.org").replace(WORD_JOINER, "+"))
    https\\:+\\/\\/a\\.org www+\\.b\\.org c+\\@d\\.org
    """
    return _PUNCTUATION.sub(r"\\\1", _AUTOLINK.sub(WORD_JOINER, text.replace("\n", " ")))


def highlighted(text: str, ranges: list[tuple[int, int]]) -> str:
    """``text`` as Markdown that shows it as typed, line by line, with the character ``ranges`` on an orange
    background (the evidence in a passage, a passage in its document).

    >>> print(highlighted("Built in 1759. By *Smeaton*.", [(15, 28)]))
    Built in 1759\\. :orange-background[By \\*Smeaton\\*\\.]
    """
    bounds = sorted({0, len(text), *(min(max(at, 0), len(text)) for span in ranges for at in span)})
    pieces = []
    for start, end in itertools.pairwise(bounds):
        marked = any(s <= start and end <= e for s, e in ranges)
        lines = [escape(line) for line in text[start:end].split("\n")]
        pieces.append("  \n".join(f":orange-background[{x}]" if marked and x.strip() else x for x in lines))
    # A line's leading spaces would make it a code block.
    return "\n".join(line.lstrip() for line in "".join(pieces).split("\n"))
