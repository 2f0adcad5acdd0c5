"""Token estimation without a tokenizer download.

The rig cannot fetch tiktoken's vocabularies at run time, and the mock only needs counts
that behave like real ones: proportional to text size, with code costing a little more per
byte than prose. So:

* input tokens are estimated as ``ceil(utf8_bytes / 4)``, the rule of thumb OpenAI
  documents for English text;
* output is split into pieces by :func:`split_tokens`, a regex that cuts text the way BPE
  vocabularies roughly do (a leading space plus a short word, a number, one punctuation
  mark, a whitespace run); each piece is one output token and one streamed delta.

Both are documented in docs/architecture.md; the report says the mock's token counts are
estimates.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["estimate_tokens", "split_tokens", "tokens_in_bytes"]

# Every character is a letter, a digit, whitespace or "other", so the alternatives together
# match at every position: the pieces always join back to the text.
_PIECE = re.compile(r" ?[A-Za-z]{1,8}| ?\d{1,3}|\s*\n|[ \t]+|[^\sA-Za-z\d]{1,2}|\s")


def estimate_tokens(text: str | bytes) -> int:
    """Estimated token count of ``text`` (4 UTF-8 bytes per token, at least 1 if non-empty)."""
    return tokens_in_bytes(len(text) if isinstance(text, bytes) else len(text.encode()))


def tokens_in_bytes(size: int) -> int:
    """Estimated token count of ``size`` bytes of UTF-8 (:func:`estimate_tokens`)."""
    return (size + 3) // 4


@lru_cache(maxsize=8192)
def _pieces(text: str) -> tuple[str, ...]:
    # Scripted texts come from a finite pool, so most splits are cache hits.
    return tuple(_PIECE.findall(text))


def split_tokens(text: str, per_piece: int = 1) -> list[str]:
    """``text`` cut into token-like pieces, ``per_piece`` tokens each; joining gives ``text``."""
    pieces = list(_pieces(text))
    if per_piece <= 1:
        return pieces
    return ["".join(pieces[i : i + per_piece]) for i in range(0, len(pieces), per_piece)]
