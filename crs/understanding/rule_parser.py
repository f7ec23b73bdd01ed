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
from dataclasses import dataclass

from crs.understanding.parser import CritiqueParser, ParseContext
from crs.facts import CatalogFacts
from crs.understanding.lexicon import Entry, Lexicon, normalise
from crs.policy.base import ANY
from crs.turn import Critique, Reference, Relative

_CLAUSE = re.compile(r"[,.;!?\n]+|\b(?:but|though|although|however|instead|whereas)\b", re.I)
NEGATORS = {"not", "no", "without", "never", "non", "nothing", "less", "except", "avoid", "hate", "dislike",
            "don't", "dont", "doesn't", "isn't", "aren't", "neither", "nor", "too"}
_NEGATING_PHRASES = re.compile(r"\b(?:do not|does not|is not|are not|anything but|rather than|other than|"
                               r"instead of|get rid of|no more|fewer|too much)\b")
STOPWORDS = set("""a an the this that these those it its i i'm im me my we you your he she they them one ones
of in on at to for with and or but so as is are was be been am do does did have has had want wants need like
likes would could should can will please some something more less very really just also maybe something thing
things show give find get see looking look search item items picture pictures image images sticker stickers
emoji emojis kind sort type style one's that's what which who how any ok okay yes yeah hmm well now again
same similar than then there here about around""".split())

ORDINALS = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
            "fifth": 4, "5th": 4, "sixth": 5, "6th": 5, "seventh": 6, "7th": 6, "eighth": 7, "8th": 7,
            "ninth": 8, "9th": 8, "tenth": 9, "10th": 9, "top": 0}
_NUMBERED = re.compile(r"(?:#|\bnumber\s+|\bno\s+|\bitem\s+|\boption\s+|\bpick\s+|\bchoice\s+)(\d{1,2})\b")
_ORDINAL = re.compile(r"\b(?:the\s+)?(" + "|".join(ORDINALS) + r"|last)\b(?:\s+(?:one|item|picture|option))?")
_THE_X_ONE = re.compile(r"\bthe\s+((?:[\w'-]+\s+){0,2}?[\w'-]+)\s+ones?\b")

_REJECT_ALL = re.compile(r"\b(?:none of (?:these|them|those|the above)|none|neither|nothing here|not these|"
                         r"not any of (?:these|them)|all wrong|no good|something else|different ones|"
                         r"other ones|show me (?:others|other|more)|not what i want|nope)\b")
_ACCEPT = re.compile(r"\b(?:that'?s it|that is it|this is it|that'?s the one|this is the one|perfect|exactly|"
                     r"found it|i'?ll take|i will take|i take|bingo|that one is it|is the one|"
                     r"love it|i choose|i pick|i'd like to buy|buy)\b|\bis it$")
_DONT_CARE = re.compile(r"\b(?:any|anything|whatever|either|don'?t care|do not care|doesn'?t matter|"
                        r"does not matter|no preference|don'?t mind|do not mind|not sure|don'?t know|"
                        r"do not know|no idea|skip|no matter|up to you|all fine|any is fine)\b")
_LIKE = re.compile(r"\b(?:like|love|prefer|similar to|closer to|more like|as|want|resembl\w*|same as|"
                   r"go with|keep)\b")
_DISLIKE = re.compile(r"\b(?:not|no|don'?t like|dislike|hate|without|less like|unlike|away from|drop|"
                      r"remove|not like)\b")

# Comparatives: words -> (pattern an attribute name must match, direction). Only applied when the
# catalog has such an ordered attribute; otherwise the words stay in the soft text.
COMPARATIVES: list[tuple[re.Pattern[str], str, int]] = [
    (re.compile(r"\b(?:newer|more recent|recent|later|latest|modern|new)\b"), r"added|year|date|release|version|new", 1),
    (re.compile(r"\b(?:older|earlier|vintage|classic|old)\b"), r"added|year|date|release|version|new", -1),
    (re.compile(r"\b(?:cheaper|less expensive|lower price|budget|affordable|cheap)\b"), r"price|cost", -1),
    (re.compile(r"\b(?:pricier|more expensive|higher price|fancier|premium)\b"), r"price|cost", 1),
    (re.compile(r"\b(?:bigger|larger|huge)\b"), r"size", 1),
    (re.compile(r"\b(?:smaller|tinier|more compact)\b"), r"size", -1),
    (re.compile(r"\b(?:simpler|more minimal|plainer|less detailed|less detail|more simple)\b"),
     r"complex|detail|style", -1),
    (re.compile(r"\b(?:more detailed|more detail|richer|more complex|more elaborate|fancier)\b"),
     r"complex|detail|style", 1),
]


@dataclass
class _Clause:
    raw: str
    norm: str
    negated_prefix: bool = False


class RuleCritiqueParser(CritiqueParser):
    name = "rules"

    def __init__(self, facts: CatalogFacts, max_values: int = 300) -> None:
        # Attributes people talk about: askable ones, plus small closed vocabularies.
        attributes = [a for a in facts.attributes.values() if a.kind != "numeric" and a.values
                      and (a.askable or len(a.values) <= 30) and len(a.values) <= max_values]
        self.lexicon = Lexicon(attributes)
        self.facts = facts

    def parse(self, text: str, context: ParseContext) -> Critique:
        critique = Critique(source=self.name)
        question = context.question
        norm_all = normalise(text)
        if not norm_all:
            return critique
        if question is not None and self._option_answer(norm_all, question.options, question.attribute, critique):
            return critique
        soft: list[str] = []
        for clause in self._clauses(text):
            residue = self._clause(clause, context, critique)
            if residue and not self._negated(clause.norm):
                soft.append(residue)
        critique.text = " ".join(soft).strip()
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
        return [_Clause(part, normalise(part)) for part in _CLAUSE.split(text) if part and normalise(part)]

    @staticmethod
    def _negated(norm: str) -> bool:
        words = norm.split()
        return bool(_NEGATING_PHRASES.search(norm)) or any(w in NEGATORS for w in words)

    def _clause(self, clause: _Clause, context: ParseContext, critique: Critique) -> str:
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
        references, consumed = self._references(norm, consumed, context)
        if _ACCEPT.search(norm) and context.shown and not self._negated(norm.replace("no more", "")):
            critique.accept = references[0] if references else 0
            return ""
        for index in references:
            liked = False if _DISLIKE.search(norm) else True if _LIKE.search(norm) else None
            critique.references.append(Reference(index, liked))
        consumed = self._relatives(norm, consumed, references, critique)
        negated = self._negated(norm)
        words = consumed.split()
        used = [False] * len(words)
        matched: list[tuple[Entry, bool]] = []
        question_attribute = context.question.attribute if context.question else None
        i = 0
        while i < len(words):
            for size in range(min(self.lexicon.longest, len(words) - i), 0, -1):
                phrase = " ".join(words[i:i + size])
                entries = self.lexicon.lookup(phrase)
                if not entries:
                    continue
                entry = self._choose(entries, question_attribute)
                matched.append((entry, negated and self._negator_before(words, i)))
                for j in range(i, i + size):
                    used[j] = True
                i += size - 1
                break
            i += 1
        if not matched and self._dont_care(norm, context, critique):
            return ""
        for entry, excluded in matched:
            values = (critique.exclude if excluded else critique.require).setdefault(entry.attribute, [])
            if entry.value not in values:
                values.append(entry.value)
        content = [w for w, u in zip(words, used) if not u and w not in STOPWORDS and w not in NEGATORS
                   and not w.isdigit() and w.strip("#'-")]
        return " ".join(content)

    @staticmethod
    def _negator_before(words: list[str], index: int) -> bool:
        before = " ".join(words[:index])
        return any(w in NEGATORS for w in words[:index]) or bool(_NEGATING_PHRASES.search(before))

    @staticmethod
    def _choose(entries: list[Entry], question_attribute: str | None) -> Entry:
        for entry in entries:
            if entry.attribute == question_attribute:
                return entry
        return entries[0]

    def _references(self, norm: str, consumed: str, context: ParseContext) -> tuple[list[int], str]:
        """Indexes of shown items the clause points at, and the clause with those words removed."""
        shown = context.shown
        found: list[int] = []
        if not shown:
            return found, consumed
        for match in _NUMBERED.finditer(norm):
            index = int(match.group(1)) - 1
            if 0 <= index < len(shown):
                found.append(index)
            consumed = consumed.replace(match.group(0), " ")
        for match in _ORDINAL.finditer(norm):
            word = match.group(1)
            index = len(shown) - 1 if word == "last" else ORDINALS[word]
            if 0 <= index < len(shown):
                found.append(index)
            consumed = consumed.replace(match.group(0), " ")
        for match in _THE_X_ONE.finditer(consumed):
            index = self._describe_match(match.group(1), context)
            if index is not None:
                found.append(index)
                consumed = consumed.replace(match.group(0), " ")
        return list(dict.fromkeys(found)), " ".join(consumed.split())

    def _describe_match(self, words: str, context: ParseContext) -> int | None:
        """"the red one", "the cat one": the single shown item with that value or title word."""
        entries = self.lexicon.lookup(words) or [e for w in words.split() for e in self.lexicon.lookup(w)]
        matches = []
        for index, item in enumerate(context.shown):
            has_value = any(_has(item.attributes.get(e.attribute), e.value) for e in entries)
            in_title = not entries and all(w in normalise(item.title).split() for w in words.split()
                                           if w not in STOPWORDS)
            if has_value or in_title:
                matches.append(index)
        return matches[0] if len(matches) == 1 else None

    def _relatives(self, norm: str, consumed: str, references: list[int], critique: Critique) -> str:
        for pattern, attribute_pattern, direction in COMPARATIVES:
            match = pattern.search(consumed)
            if not match:
                continue
            attribute = next((a.name for a in self.facts.attributes.values()
                              if a.ordered and re.search(attribute_pattern, a.name)), None)
            if attribute is None:
                continue
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


def _has(value: object, wanted: str) -> bool:
    return wanted in value if isinstance(value, list) else value == wanted
