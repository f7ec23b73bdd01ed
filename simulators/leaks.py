"""Detect and redact an LLM user naming its hidden target.

A simulated user that knows its target's title may simply say it, and then the system's job
is a title lookup, not a recommendation. Such text is replaced by ``[redacted]`` before the
system sees it, and the turn is counted as a leak (the leak rate of DESIGN's protocol).

The rule, all matching case-insensitive and on whole words:

1. the target's external id (at least 3 characters; ``-`` and ``_`` count as part of it, so
   ``red-circle`` is not found inside ``red-circle-outline``);
2. the whole title, with any punctuation or spacing between its words, when the title has at
   least one *distinctive* word;
3. the title's distinctive words when the title has two or more and most of them (more than
   half) appear anywhere in the text, in any order; each occurrence is redacted.

A distinctive word is a title word of 3+ characters that is neither a common English word nor a
word of the catalog's attribute values: a user may always ask for "a blue square", so a title
made only of such words ("Blue square") cannot leak, while in "Grinning face with big eyes"
(``face`` a value word) saying "big grinning eyes" leaks and "grinning" alone does not.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

REDACTED = "[redacted]"
MIN_ID_CHARS = 3  # shorter ids ("7", "ab") turn up in ordinary text by chance
# Function words and shop words: never evidence of a leak (the simulator's own list, not the parser's).
COMMON_WORDS = frozenset("""
about above after all also and another any are around back because before being below best between both
but can color colour could does down each else even every few for from full get good great has have her his
how into its just least left less let like little long made make many may might more most much must new
nice not off old only other our out over own part right same set she should side small some still such
take than that the their them then there these they thing this those too two under until upon use used
very want was way well were what when where which while who whose why will with without would yet you
your big large one two three four five six seven eight nine ten first second third
again am as at been did find give had here hmm i'm im image images item items kind look looking maybe
need now okay ones picture pictures please really search see show similar something sort sticker stickers
style that's things type yeah yes
""".split())

_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Redaction:
    text: str  # the text with every leak replaced by REDACTED
    leaked: bool


class LeakDetector:
    """Finds one target's title and id in a simulated user's text (the rule is the module's)."""

    def __init__(self, title: str, external_id: str, known_words: Iterable[str] = ()) -> None:
        known = COMMON_WORDS | {w.lower() for w in known_words}
        words = _WORD.findall(title.lower())
        self.distinctive = tuple(dict.fromkeys(w for w in words if len(w) >= 3 and not w.isdigit() and w not in known))
        self._id = (re.compile(r"(?<![\w-])" + re.escape(external_id) + r"(?![\w-])", re.IGNORECASE)
                    if len(external_id.strip()) >= MIN_ID_CHARS else None)
        self._title = (re.compile(r"(?<![^\W_])" + r"[\W_]+".join(map(re.escape, words)) + r"(?![^\W_])", re.IGNORECASE)
                       if words and self.distinctive else None)
        self._words = {w: re.compile(r"(?<![^\W_])" + re.escape(w) + r"(?![^\W_])", re.IGNORECASE)
                       for w in self.distinctive}

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every leaking piece of ``text``, merged and in order."""
        found: list[tuple[int, int]] = []
        for pattern in (self._id, self._title):
            if pattern is not None:
                found += [m.span() for m in pattern.finditer(text)]
        if len(self.distinctive) >= 2:
            present = {w: [m.span() for m in p.finditer(text)] for w, p in self._words.items()}
            if 2 * sum(bool(s) for s in present.values()) > len(self.distinctive):
                found += [span for spans in present.values() for span in spans]
        merged: list[tuple[int, int]] = []
        for start, end in sorted(found):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged

    def redact(self, text: str) -> Redaction:
        spans = self.spans(text)
        for start, end in reversed(spans):
            text = text[:start] + REDACTED + text[end:]
        return Redaction(text, bool(spans))
