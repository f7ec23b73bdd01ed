"""The offline understanding layer (parser ``offline``, the default): the rule parser's clauses
and control phrases, with spotters that reach past the catalog's exact vocabulary, in order:

1. numbers and ranges (:mod:`crs.understanding.numbers`): "90s", "under 2 hours", "above 80%";
2. the exact vocabulary (:mod:`crs.understanding.lexicon`);
3. names and typos (:mod:`crs.understanding.names`, rapidfuzz): "tom hanx", "scorsese", "comdey";
4. meaning (:mod:`crs.understanding.grounding`, the catalog's sentence encoder): "bluish",
   "three-dimensional", "animated", "scary".

Each later spotter only sees the words the earlier ones left, so an exact value always wins over a
guess. Everything runs on the machine: the encoder is the one the catalog's index already loaded.
"""
from __future__ import annotations

from functools import cache
from typing import Any

from crs.facts import CatalogFacts
from crs.understanding.grounding import Encode, GroundingSpotter
from crs.understanding.names import NameSpotter
from crs.understanding.numbers import NumberSpotter
from crs.understanding.rule_parser import RuleCritiqueParser
from crs.understanding.spotting import LexiconSpotter


GROUNDED_MAX = 30  # values at most, for an attribute to be grounded by meaning


class OfflineCritiqueParser(RuleCritiqueParser):
    name = "offline"

    def __init__(self, facts: CatalogFacts, encode: Encode | None = None) -> None:
        super().__init__(facts)
        small = sorted({entry.attribute for entries in self.lexicon.phrases.values() for entry in entries})
        names = [a.name for a in facts.attributes.values() if a.kind != "numeric" and a.values and a.name not in small]
        self.spotters = [NumberSpotter(facts), LexiconSpotter(self.lexicon),
                         NameSpotter(facts, names, small, common_words=common_words())]
        if encode is not None:  # without an encoder (tests, tools) the rest still works
            # Meaning is compared only with small closed vocabularies: among hundreds of fine
            # groups the nearest value is rarely a clear winner ("cat" ~ "cat face").
            closed = [a for a in small if len(facts.attributes[a].values) <= GROUNDED_MAX]
            named = {w for phrase in self.lexicon.attribute_names for w in phrase.split()}
            self.spotters.append(GroundingSpotter(facts, closed, encode, skip=named))

    @classmethod
    def for_searcher(cls, facts: CatalogFacts, searcher: Any) -> OfflineCritiqueParser:
        """With the catalog's own text encoder's backbone when it is the bundled MiniLM, whose
        plain sentence space is where the grounding threshold was calibrated. Another encoder
        (CLIP, a test fake) has other cosines: no grounding until it is calibrated for it."""
        from retrieval.encoders.minilm import MINILM_NAME

        embedder = getattr(searcher, "embedder", None)
        encoder = getattr(embedder, "text", None)
        encoder = getattr(encoder, "base", None) or encoder
        calibrated = encoder is not None and getattr(encoder, "name", "") == MINILM_NAME
        return cls(facts, encoder.encode if calibrated else None)


@cache
def common_words() -> frozenset[str]:
    """Whole words of the bundled MiniLM's WordPiece vocabulary: a general English word list
    (about 20k words), used to tell a surname said alone ("scorsese") from a common word
    ("black", "king"). Empty if the package is missing: then names need a cue ("with ...")."""
    try:
        from retrieval.encoders.minilm import default_minilm_path

        text = (default_minilm_path() / "vocab.txt").read_text(encoding="utf-8")
    except (ImportError, OSError):
        return frozenset()
    return frozenset(w for w in text.split() if w.isalpha() and not w.startswith("##"))
