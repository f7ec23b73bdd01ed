"""The rule/lexicon critique parser: the offline default, and the fallback when an LLM fails.

How a message is read, in order:

1. split into clauses at punctuation and at "but"/"though"/"instead" ("blue, not cartoonish";
   "like the first but green"), so a negation only reaches the end of its own clause;
2. per clause, control phrases: reject-all ("none of these"; in reply to a question it means
   the wanted item has none of the offered values, so they are excluded for its attribute),
   accept ("that's it", "#2 is perfect"), don't-care ("any", "doesn't matter", "any colour"),
   references to shown items ("the second one", "#3", "the red one") with their sentiment
   ("like", "not"), relative critiques ("newer", "cheaper", "simpler") on the catalog's ordered
   attributes;
3. the remaining words are matched against the catalog's values (longest phrase first, see
   :mod:`crs.understanding.lexicon`); a value after a negator in its clause is excluded, else required;
4. a pending question's attribute wins when a word could mean values of several attributes,
   and a reply that is exactly one of its options is that answer;
5. content words that matched nothing are kept as a soft text preference (negated clauses
   are left out of it, so "not cartoonish" never pulls towards cartoons).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from crs.understanding.parser import CritiqueParser, ParseContext
from crs.facts import CatalogFacts
from crs.understanding.lexicon import Lexicon, normalise
from crs.understanding.spotting import LexiconSpotter, Span, SpotContext, Spotter
from crs.understanding.stopwords import STOPWORDS
from crs.policy.base import ANY
from crs.turn import Critique, Reference, Relative

# Clauses end at punctuation (not a decimal point: "emoji 5.0") and at "but"/"though"/...
# ("anything but animals" is one clause: the negation is its point).
_CLAUSE = re.compile(r"[,;!?\n]+|\.(?!\d)|(?<!anything )(?<!everything )(?<!all )\bbut\b|"
                     r"\b(?:though|although|however|instead|whereas)\b", re.I)
NEGATORS = {"not", "no", "without", "never", "non", "nothing", "less", "except", "avoid", "hate", "dislike",
            "don't", "dont", "doesn't", "isn't", "aren't", "neither", "nor", "too"}
_NEGATING_PHRASES = re.compile(r"\b(?:do not|does not|is not|are not|anything but|rather than|other than|"
                               r"instead of|get rid of|no more|fewer|too much)\b")
ORDINALS = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
            "fifth": 4, "5th": 4, "sixth": 5, "6th": 5, "seventh": 6, "7th": 6, "eighth": 7, "8th": 7,
            "ninth": 8, "9th": 8, "tenth": 9, "10th": 9, "top": 0}
_NUMBERED = re.compile(r"(?:#|\bnumber\s+|\bno\s+|\bitem\s+|\boption\s+|\bpick\s+|\bchoice\s+)(\d{1,2})\b")
_ORDINAL = re.compile(r"\b(?:the\s+)?(" + "|".join(ORDINALS) + r"|last)\b(?!\s+rated)(?:\s+(?:one|item|picture|option))?")
_THE_X_ONE = re.compile(r"\bthe\s+((?:[\w'-]+\s+){0,2}?[\w'-]+)\s+ones?\b")

_REJECT_ALL = re.compile(r"\b(?:none of (?:these|them|those|the above)|none|neither(?! of the (?:first|second|third|last|top))|"
                         r"nothing here|not these|"
                         r"seen (?:all|them all|these|those)|no to all|not (?:these|those) either|"
                         r"not any of (?:these|them)|all wrong|no good|something else|different ones|"
                         r"other ones|show me (?:others|other)|not what i want|nope|(?:don'?t|do not) (?:like|want|love) any)\b")
_ACCEPT = re.compile(r"\b(?:that'?s it|that is it|this is it|that'?s the one|this is the one|perfect|exactly|"
                     r"found it|i'?ll take|i will take|i take|bingo|that one is it|is the one|"
                     r"love it|i choose|i pick|i'd like to buy|buy|i'?ll go with|i will go with|i'?ll have|i'?ll watch|"
                     r"watching it|great pick|good pick|nice pick|that'?ll do|sold)\b|\b(?:is|it is) it$|\bit is$")
_FIRST_N = re.compile(r"\b(?:the\s+)?(first|top|last)\s+(two|three|four|2|3|4)\b(?:\s+ones?)?")
_COUNT_WORDS = {"two": 2, "three": 3, "four": 4, "2": 2, "3": 3, "4": 4}
_YES = re.compile(r"^(?:yes|yeah|yep|yup)\b")  # "yes, the last one": an accept when it points at an item
_DEMONSTRATIVE = re.compile(r"\b(?:this|that|same|it)\b")
_DONT_CARE = re.compile(r"\b(?:any|anything|whatever|either|don'?t care|do not care|doesn'?t matter|"
                        r"does not matter|no preference|don'?t mind|do not mind|not sure|don'?t know|"
                        r"do not know|no idea|skip|no matter|up to you|all fine|any is fine)\b")
_LIKE = re.compile(r"\b(?:like|love|prefer|similar to|closer to|more like|as|want|resembl\w*|same as|"
                   r"go with|keep|nice|good|great|close|closest|cute|best|lovely|cool|pretty|liked|loved|enjoyed)\b")
_DISLIKE = re.compile(r"\b(?:not|no|neither|nor|don'?t like|dislike|hate|without|less like|unlike|away from|drop|"
                      r"remove|not like)\b")

# Comparatives: words -> (pattern an attribute name must match, direction). Only applied when the
# catalog has such an ordered attribute; otherwise the words stay in the soft text.
COMPARATIVES: list[tuple[re.Pattern[str], str, int]] = [
    (re.compile(r"\b(?:newer|more recent|recent|later|latest|modern|new)\b"), r"added|year|date|release|version|new", 1),
    (re.compile(r"\b(?:older|earlier|vintage|classic|old)\b"), r"added|year|date|release|version|new", -1),
    (re.compile(r"\b(?:cheaper|less expensive|lower price|budget|affordable|cheap)\b"), r"price|cost", -1),
    (re.compile(r"\b(?:pricier|more expensive|higher price|fancier|premium)\b"), r"price|cost", 1),
    (re.compile(r"\b(?:shorter|quicker|not as long|less long)\b"), r"runtime|duration|length|minutes", -1),
    (re.compile(r"\b(?:longer|lengthier|epic)\b"), r"runtime|duration|length|minutes", 1),
    (re.compile(r"\b(?:better rated|higher rated|better reviewed|more acclaimed|better reviews|higher rating|"
                r"better rating|rated higher|rated better|critically acclaimed|best rated)\b"),
     r"rating|rated|score|tomato|metacritic|critic", 1),
    (re.compile(r"\b(?:worse rated|lower rated|rated lower|worse reviews|lower rating)\b"),
     r"rating|rated|score|tomato|metacritic|critic", -1),
    (re.compile(r"\b(?:more popular|better known|more famous|more reviewed)\b"), r"popular|review count|votes", 1),
    (re.compile(r"\b(?:bigger|larger|huge)\b"), r"size", 1),
    (re.compile(r"\b(?:smaller|tinier|more compact)\b"), r"size", -1),
    (re.compile(r"\b(?:simpler|more minimal|plainer|less detailed|less detail|more simple)\b"),
     r"complex|detail|style", -1),
    (re.compile(r"\b(?:more detailed|more detail|richer|more complex|more elaborate|fancier)\b"),
     r"complex|detail|style", 1),
]


_PERCENT = re.compile(r"(\d)\s*%")
_PLUS = re.compile(r"(\d)\s*\+")
_OUT_OF = re.compile(r"(\d)\s*/\s*(\d+)\b")
_EITHER = {"or", "either", "nor"}
_POINTING = {"like", "liked", "love", "loved", "not", "no", "than", "prefer", "want", "with"}


@dataclass
class _MessageState:
    references: list[int] = field(default_factory=list)  # the last shown items the message pointed at
    accept_unpointed: bool = False  # an accept in a clause that named no item


@dataclass
class _Clause:
    raw: str
    norm: str
    negated_prefix: bool = False


class RuleCritiqueParser(CritiqueParser):
    name = "rules"

    def __init__(self, facts: CatalogFacts, max_values: int = 300, spotters: list[Spotter] | None = None) -> None:
        # Attributes people talk about: askable ones, plus small closed vocabularies.
        attributes = [a for a in facts.attributes.values() if a.kind != "numeric" and a.values
                      and (a.askable or len(a.values) <= 30) and len(a.values) <= max_values]
        self.lexicon = Lexicon(attributes)
        self.facts = facts
        # The exact vocabulary first; other spotters only see the words it left.
        self.spotters: list[Spotter] = [LexiconSpotter(self.lexicon), *(spotters or [])]

    def parse(self, text: str, context: ParseContext) -> Critique:
        critique = Critique(source=self.name)
        question = context.question
        norm_all = normalise(text)
        if not norm_all:
            return critique
        if question is not None and self._option_answer(norm_all, question.options, question.attribute, critique):
            return critique
        soft: list[str] = []
        state = _MessageState()
        for clause in self._clauses(text):
            residue = self._clause(clause, context, critique, state)
            if residue and not self._negated(clause.norm):
                soft.append(residue)
        critique.text = " ".join(soft).strip()
        if state.accept_unpointed and critique.accept is not None and len(critique.references) == 1:
            # "perfect, the third one": the accept and the item it means are in two clauses
            critique.accept = critique.references.pop().index
        return critique

    # -- pieces ----------------------------------------------------------------------------------

    def _option_answer(self, norm: str, options: list[str], attribute: str, critique: Critique) -> bool:
        """A reply that is exactly one of the offered options (a button click)."""
        for option in options:
            if norm == normalise(option):
                if option == ANY:
                    critique.dont_care.append(attribute)
                else:
                    critique.require[attribute] = [option]
                return True
        return False

    @staticmethod
    def _offered(context: ParseContext) -> list[str]:
        """The values a pending question offered (without "any"): what "none of these" then refers
        to, since the question came after any page shown before it."""
        if context.question is None:
            return []
        return [o for o in context.question.options if o != ANY]

    @staticmethod
    def _clauses(text: str) -> list[_Clause]:
        # "80%" and "7/10" would lose their sign to normalising; say them in words first.
        text = _PERCENT.sub(r"\1 percent ", text)
        text = _OUT_OF.sub(r"\1 out of \2", text)
        text = _PLUS.sub(r"\1 plus ", text)
        return [_Clause(part, normalise(part)) for part in _CLAUSE.split(text) if part and normalise(part)]

    @staticmethod
    def _negated(norm: str) -> bool:
        words = norm.split()
        return bool(_NEGATING_PHRASES.search(norm)) or any(w in NEGATORS for w in words)

    def _clause(self, clause: _Clause, context: ParseContext, critique: Critique, state: _MessageState) -> str:
        """Parse one clause into ``critique``; returns its unmatched content words."""
        norm = clause.norm
        consumed = norm
        if _REJECT_ALL.search(norm):
            offered = self._offered(context)
            if offered:  # a reply to a question: the wanted item has none of the offered values
                values = critique.exclude.setdefault(context.question.attribute, [])  # type: ignore[union-attr]
                values.extend(v for v in offered if v not in values)
            else:
                critique.reject_all = bool(context.shown)  # with nothing shown there is nothing to reject
            return ""
        references, compared, consumed = self._references(norm, consumed, context)
        accepting = _ACCEPT.search(norm) or (_YES.search(norm) and references)
        if accepting and context.shown and not self._negated(norm.replace("no more", "")):
            critique.accept = references[0] if references else 0
            state.accept_unpointed = not references
            return ""
        if not references and not compared and len(context.shown) == 1 and _DEMONSTRATIVE.search(norm):
            references = [0]  # "same but blue" with one item on screen: that item
        for index in references:
            liked = False if _DISLIKE.search(norm) else True if _LIKE.search(norm) else None
            critique.references.append(Reference(index, liked))
        # "the second one, but older": the comparison is with the item named in the message.
        state.references = compared or references or state.references
        consumed = self._relatives(norm, consumed, state.references, critique)
        negated = self._negated(norm)
        words = consumed.split()
        free = [True] * len(words)
        spans: list[Span] = []
        spot_context = SpotContext(self.facts, context.question.attribute if context.question else None)
        for spotter in self.spotters:
            for span in spotter.spot(words, free, spot_context):
                spans.append(span)
                free[span.start:span.end] = [False] * (span.end - span.start)
        if not spans and self._dont_care(norm, context, critique):
            return ""
        self._apply(spans, words, negated, critique)
        content = [w for w, f in zip(words, free) if f and w not in STOPWORDS and w not in NEGATORS
                   and not w.isdigit() and w.strip("#'-")]
        return " ".join(content)

    def _apply(self, spans: list[Span], words: list[str], negated: bool, critique: Critique) -> None:
        """Spans into the critique: a value after a negator is excluded, else required; several
        required values of one multi-valued attribute are all wanted ("a sci-fi comedy") unless
        the clause says "or" between them."""
        required: dict[str, list[Span]] = {}
        for span in sorted(spans, key=lambda s: s.start):
            if span.is_range:
                low, high = span.low, span.high
                if negated and self._negator_before(words, span.start) and (low is None) != (high is None):
                    low, high = (None, low - 1) if high is None else (high + 1, None)  # "nothing over 3 hours"
                critique.ranges[span.attribute] = [low, high]
                continue
            excluded = negated and self._negator_before(words, span.start)
            values = (critique.exclude if excluded else critique.require).setdefault(span.attribute, [])
            values.extend(v for v in span.values if v not in values)
            if not excluded:
                required.setdefault(span.attribute, []).append(span)
        for attribute, found in required.items():
            info = self.facts.attributes.get(attribute)
            if info is None or info.kind != "tags" or len(critique.require.get(attribute, [])) < 2:
                continue
            between = words[found[0].end:found[-1].start]
            if not _EITHER.intersection(between) and attribute not in critique.all_of:
                critique.all_of.append(attribute)

    @staticmethod
    def _negator_before(words: list[str], index: int) -> bool:
        before = " ".join(words[:index])
        return any(w in NEGATORS for w in words[:index]) or bool(_NEGATING_PHRASES.search(before))

    def _references(self, norm: str, consumed: str, context: ParseContext) -> tuple[list[int], list[int], str]:
        """Indexes of shown items the clause points at, those it compares with ("older than the
        first": only the comparison's reference), and the clause with those words removed."""
        after_than: set[int] = set()  # per call: one parser serves concurrent requests
        found, consumed = self._pointed(norm, consumed, context, after_than)
        if not found:
            return [], [], consumed
        compared = [i for i in found if i in after_than]
        return [i for i in found if i not in compared], compared, consumed

    def _pointed(self, norm: str, consumed: str, context: ParseContext,
                 after_than: set[int]) -> tuple[list[int], str]:
        """Shown items the clause points at; those right after "than" also go into ``after_than``."""
        shown = context.shown
        found: list[int] = []
        if not shown:
            return found, consumed

        def point(index: int, text: str, start: int) -> None:
            found.append(index)
            if text[:start].rstrip().endswith("than"):
                after_than.add(index)

        for match in _FIRST_N.finditer(norm):
            count = _COUNT_WORDS[match.group(2)]
            indexes = range(count) if match.group(1) in ("first", "top") else range(len(shown) - count, len(shown))
            for index in indexes:
                if 0 <= index < len(shown):
                    point(index, norm, match.start())
            consumed = consumed.replace(match.group(0), " ")
            norm = norm.replace(match.group(0), " ")
        for match in _NUMBERED.finditer(norm):
            index = int(match.group(1)) - 1
            if 0 <= index < len(shown):
                point(index, norm, match.start())
            consumed = consumed.replace(match.group(0), " ")
        for match in _ORDINAL.finditer(norm):
            word = match.group(1)
            index = len(shown) - 1 if word == "last" else ORDINALS[word]
            if 0 <= index < len(shown):
                point(index, norm, match.start())
            consumed = consumed.replace(match.group(0), " ")
        for match in _THE_X_ONE.finditer(consumed):
            index = self._describe_match(match.group(1), context)
            if index is not None:
                point(index, consumed, match.start())
                consumed = consumed.replace(match.group(0), " ")
        consumed = self._titles(consumed, context, point)
        return list(dict.fromkeys(found)), " ".join(consumed.split())

    def _titles(self, consumed: str, context: ParseContext, point: Any) -> str:
        """Shown items named by their title or what they are, not by position:

        * "the tornado", "the black cat": words after "the" all in the title of exactly one shown
          item (longest first);
        * "something like alien", "older than shawshank", "forrest gump": a shown item's whole
          title, or a long title word (5+ letters) only one shown title has;
        * "i liked the musical", "not the western": after a word of liking or not, "the" and a
          value exactly one shown item has.
        """
        words = consumed.split()
        titles = [[_singular(w) for w in normalise(item.title).split()] for item in context.shown]
        bags = [set(t) for t in titles]
        i = 0
        while i < len(words):
            size, index = self._title_at(words, i, titles, bags, context)
            if size:
                point(index, " ".join(words), len(" ".join(words[:i])) + (1 if i else 0))
                del words[i:i + size]
            else:
                i += 1
        return " ".join(words)

    def _title_at(self, words: list[str], i: int, titles: list[list[str]], bags: list[set[str]],
                  context: ParseContext) -> tuple[int, int]:
        """(words used, shown index) for a title mention starting at word ``i``; (0, -1) if none."""
        the = words[i] == "the"
        start = i + 1 if the else i
        for size in (4, 3, 2, 1):
            chunk = [_singular(w) for w in words[start:start + size]]
            if len(chunk) < size or not chunk or chunk[0] in STOPWORDS or chunk[-1] in STOPWORDS:
                continue
            whole = [k for k, t in enumerate(titles) if [w for w in t if w != "the"] == [w for w in chunk if w != "the"]]
            if len(whole) == 1:
                return size + (start - i), whole[0]
            if the or (size == 1 and len(chunk[0]) >= 5 and not self.lexicon.lookup(chunk[0])):
                inside = [k for k, bag in enumerate(bags) if all(w in bag for w in chunk if w not in STOPWORDS)]
                if len(inside) == 1 and any(w not in STOPWORDS for w in chunk):
                    return size + (start - i), inside[0]
        if the and i > 0 and words[i - 1] in _POINTING and start < len(words):
            entries = self.lexicon.lookup(words[start])
            holders = [k for k, item in enumerate(context.shown)
                       if any(_has(item.attributes.get(e.attribute), e.value) for e in entries)]
            if entries and len(holders) == 1:
                return 2, holders[0]
        return 0, -1

    def _describe_match(self, words: str, context: ParseContext) -> int | None:
        """"the red one", "the cat one": the single shown item with that value or title word."""
        entries = self.lexicon.lookup(words) or [e for w in words.split() for e in self.lexicon.lookup(w)]
        matches = []
        for index, item in enumerate(context.shown):
            has_value = any(_has(item.attributes.get(e.attribute), e.value) for e in entries)
            said = set(normalise(item.title).split()) | {w for v in item.attributes.values()
                                                         for x in (v if isinstance(v, list) else [v])
                                                         for w in normalise(str(x)).split()}
            in_title = not entries and all(w in said for w in words.split() if w not in STOPWORDS)
            if has_value or in_title:
                matches.append(index)
        return matches[0] if len(matches) == 1 else None

    def _relatives(self, norm: str, consumed: str, references: list[int], critique: Critique) -> str:
        for pattern, attribute_pattern, direction in COMPARATIVES:
            match = pattern.search(consumed)
            if not match or re.search(r"\d\s+(?:or|and)\s*$", consumed[:match.start()]):
                continue  # "13 or later" is a range's end, read with its number
            ordered = [a for a in self.facts.attributes.values() if a.ordered]
            attribute = next((a.name for a in ordered if re.search(attribute_pattern, a.name.replace("_", " "))),
                             next((a.name for a in ordered if re.search(attribute_pattern, a.description.lower())),
                                  None))
            if attribute is None:
                continue
            if re.search(r"\bnot (?:as|so)\s*$", consumed[:match.start()]):
                direction = -direction  # "not as old": newer
            critique.relative.append(Relative(attribute, direction, references[0] if references else None))
            consumed = consumed.replace(match.group(0), " ")
        return " ".join(consumed.split())

    def _dont_care(self, norm: str, context: ParseContext, critique: Critique) -> bool:
        if not _DONT_CARE.search(norm):
            return False
        named = [name for phrase, name in self.lexicon.attribute_names.items() if re.search(rf"\b{re.escape(phrase)}\b", norm)]
        if named:
            critique.dont_care.extend(n for n in named if n not in critique.dont_care)
            return True
        if context.question is not None and len(norm.split()) <= 6:
            critique.dont_care.append(context.question.attribute)
            return True
        return False


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") and len(word) > 3 else word


def _has(value: object, wanted: str) -> bool:
    return wanted in value if isinstance(value, list) else value == wanted
