"""Text from documents and file names shown where Streamlit parses Markdown (labels, captions)."""

import logging
import re

logger = logging.getLogger(__name__)

# CommonMark lets a backslash escape any ASCII punctuation; escaping all of it also disarms Streamlit's own
# extensions (":red[...]", ":material/icon:", "$math$") and links or images a file name could smuggle in.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def escape(text: str) -> str:
    """``text`` as Markdown that shows exactly ``text``.

    >>> print(escape("[x](y) *z*"))
    \\[x\\]\\(y\\) \\*z\\*
    """
    return _PUNCTUATION.sub(r"\\\1", text.replace("\n", " "))
