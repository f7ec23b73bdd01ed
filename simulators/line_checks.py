"""Checks on an LLM user's line before the system sees it: is it a shopper's short chat line?

A chat model asked to play the customer often slips into its trained role (the assistant's):
"Sure, I'd be happy to help! What would you like to see?". Small models also ramble, repeat
themselves, accept an item that is not theirs ("#3 is it") and answer a question with an option
their item does not have. Each check here finds one of these in a line, with the data the harness
has and the model does not need to be trusted for: the target, the shown items, the question.

What the LLM user does with a failed check (regenerate once, then the agenda user's line) is in
:mod:`simulators.llm_user`; the kinds found are recorded on the turn and reported per run
(:mod:`simulators.metrics`).
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

# The kinds of failure, as recorded on a turn (TurnResult.user_checks) and counted per run.
ROLE_BREAK = "role-break"  # the line speaks as the assistant
FALSE_ACCEPT = "false-accept"  # it accepts a shown item that is not the target
WRONG_ANSWER = "wrong-answer"  # it picks an offered option its target does not have
REPETITION = "repetition"  # it says again what it said on an earlier turn
TRIMMED = "trimmed"  # it was longer than a chat line and was cut (not a failure: the cut line is sent)
REGENERATED = "regenerated"  # a failed line was asked for again, once
REPLACED = "replaced"  # the second try failed too: the agenda user's line was sent instead
FAILURES = (ROLE_BREAK, FALSE_ACCEPT, WRONG_ANSWER, REPETITION)
CHECK_KINDS = (*FAILURES, TRIMMED, REGENERATED, REPLACED)

MAX_SENTENCES = 2  # "one or two short sentences": what a person types into a chat box
MAX_LINE_CHARS = 200  # a longer line is cut at a word boundary (SmolLM2 wrote 250-470-character rambles)
SIMILAR_RATIO = 0.9  # difflib's ratio at or above which two lines count as the same line
# A line of 6+ words with fewer distinct words than this share repeats itself ("a star and a star and a
# star", "no, no, no, ..."): a degenerate generation, counted as a repetition.
MIN_DISTINCT_SHARE = 0.5
MIN_WORDS_FOR_SHARE = 6

# Phrases of the assistant's role, never of a customer looking for an item. A list, not a
# classifier: each entry is a phrase seen from instruct models playing the user (or its close
# variant), so a false positive can be traced to one line here.
ASSISTANT_PHRASES = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"\b(?:happy|glad|here) to help\b",
    r"\bhow (?:can|may|could|might) i (?:help|assist)\b",
    r"\bwhat (?:would|do|did|will) you (?:like|want|need|prefer|have in mind)\b",
    r"\bwhat (?:are|were) you looking for\b",
    r"\b(?:i'?m|i am) (?:ready|here to|an? (?:ai|assistant|language model))\b",
    # "Sure," opening a reply to an instruction ("Sure, I'm ready", "Certainly! Here is ..."), or all there is;
    # not "sure, blue is fine", a customer's answer.
    r"^\s*(?:sure|certainly|of course|absolutely|great)\b\W*(?:i'?m|i am|i can|i will|i'll|here|let me|what|how|"
    r"no problem|happy|glad)\b",
    r"^\s*(?:sure|certainly|of course|absolutely|okay|ok|great)\W*$",
    r"\bas an ai\b",
    r"\b(?:i|we) (?:can|could|will|would be able to) (?:help|assist|offer|recommend|suggest|show you)\b",
    r"\bi (?:recommend|suggest|would recommend|would suggest)\b",
    r"\bhere (?:are|is) (?:some|a few|the|my|our)\b",
    r"\blet me (?:help|assist|show you|find you|know what)\b",
    r"\b(?:great|good|excellent|nice) (?:choice|question|pick)\b",
    r"\byou'?re welcome\b",
    r"\bfeel free\b",
    r"\b(?:is there )?anything else (?:i can|you need|you would like)\b",
    r"\b(?:the|a|as a) (?:customer|shopper)\b",  # speaks about the role instead of from it
    r"\byou(?:'re| are) looking for\b",  # the customer says what *it* looks for
    r"\bsorry for (?:any|the) (?:inconvenience|misunderstanding|confusion)\b",  # service talk (seen from SmolLM2)
    r"^\s*(?:assistant|ai|bot)\s*:",
))
# A question back to the assistant about what *it* wants: "Do you want ...?", "Would you like ...?".
# A customer asks about items ("do you have it in blue?"), not about the other side's wishes.
_SECOND_PERSON_WISH = re.compile(
    r"\byou(?:'d)?\s+(?:\w+\s+)?(?:want|like|need|prefer|looking for|in mind|interested in)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+|$)")
_WORDS = re.compile(r"[^\W_]+(?:'[^\W_]+)?")

# Accepting an item: what a person says when the item they want is on the screen.
_ACCEPT = re.compile(r"\b(?:is it|that'?s it|this is it|that is it|found it|(?:is|'s) the one|perfect|"
                     r"exactly|bingo|i'?ll take|i will take|i'?ll buy|that'?s mine|yes|yep|love it|got it)\b",
                     re.IGNORECASE)
# Words that make a line a critique of the item it names, not an acceptance ("#2 but blue").
_NOT_ACCEPT = re.compile(r"\b(?:not|no|none|nope|but|without|except|closer|more|less|instead|almost|"
                         r"nearly|close)\b|n't\b", re.IGNORECASE)
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
_REFERENCE = re.compile(r"(?:#\s*(\d+)|\b(?:number|no\.|item|option|nr\.?)\s*(\d+)\b|\bthe\s+("
                        + "|".join(_ORDINALS) + r")\b)", re.IGNORECASE)
UNNAMED = "unnamed"  # accepted() of a line that accepts without naming a shown item
_NEGATION_BEFORE = re.compile(r"\b(?:not|no|never|without|n't|don't|dont)\W+(?:\w+\W+)?$", re.IGNORECASE)


def trim(text: str) -> tuple[str, bool]:
    """The first :data:`MAX_SENTENCES` sentences of ``text``, cut at a word boundary under
    :data:`MAX_LINE_CHARS`; and whether anything was cut. A line that is one unbroken word longer
    than the limit is returned whole (the caller refuses it: it is no chat line)."""
    unique: dict[str, str] = {}  # a sentence said twice in one line is kept once (SmolLM2 does this)
    for sentence in _SENTENCE.findall(text):
        if sentence.strip():
            unique.setdefault(_normal(sentence), sentence.strip())
    sentences = list(unique.values())
    short = " ".join(sentences[:MAX_SENTENCES]) if sentences else text
    if len(short) > MAX_LINE_CHARS:
        cut = short[:MAX_LINE_CHARS + 1].rsplit(" ", 1)[0].rstrip(" ,;:-")
        short = cut if cut and len(cut) <= MAX_LINE_CHARS else short
    return short, short != text


def role_break(text: str) -> bool:
    """The line speaks as the assistant: one of :data:`ASSISTANT_PHRASES`, or a question back about
    what the other side wants."""
    if any(p.search(text) for p in ASSISTANT_PHRASES):
        return True
    return any(s.rstrip().endswith("?") and _SECOND_PERSON_WISH.search(s) for s in _SENTENCE.findall(text))


def accepted(text: str, shown: int) -> int | str | None:
    """Which of ``shown`` numbered items (0-based) the line accepts: its index; :data:`UNNAMED` when
    it accepts without saying which ("that's it!") or names no shown item ("#9 is it" of three);
    None when it accepts nothing. Only a clause with an accepting phrase and no critique word
    counts ("#2 is it" yes, "#2 is close but blue" no)."""
    if shown <= 0:
        return None
    for clause in re.split(r"[.;!?]|,\s*(?:but|and)\b", text):
        if not _ACCEPT.search(clause) or _NOT_ACCEPT.search(clause):
            continue
        reference = _REFERENCE.search(clause)
        if reference is None:
            return UNNAMED
        number, item, ordinal = reference.groups()
        index = int(number or item) - 1 if (number or item) else _ORDINALS.index(ordinal.lower())
        return index if 0 <= index < shown else UNNAMED
    return None


def false_accept(text: str, shown_ids: Sequence[int], target_id: int) -> bool:
    """The line accepts a shown item that is not the target (or accepts without saying which while
    the target is not shown). The harness knows; the model may not be trusted to."""
    choice = accepted(text, len(shown_ids))
    if choice is None:
        return False
    if isinstance(choice, str):
        return target_id not in shown_ids
    return shown_ids[choice] != target_id


def picked_options(text: str, options: Sequence[str]) -> list[str]:
    """The offered options the line names, not negated ("red please" picks red; "not red" does not)."""
    picked = []
    for option in options:
        pattern = re.compile(r"(?<![^\W_])" + r"[\s_-]+".join(map(re.escape, option.split())) + r"(?![^\W_])",
                             re.IGNORECASE)
        for match in pattern.finditer(text):
            if not _NEGATION_BEFORE.search(text[:match.start()]):
                picked.append(option)
                break
    return picked


def wrong_answer(text: str, options: Sequence[str], truth: Sequence[str]) -> bool:
    """The line picks an offered option the target does not have. An option that is part of a
    longer one it also picks ("red" inside "dark red") is not counted against it. A target without
    a value of the attribute has none of the options: any pick is wrong (the right answer is "any")."""
    picked = picked_options(text, options)
    return any(o not in truth and not any(o != p and o in p for p in picked) for o in picked)


def _normal(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


def repeats(text: str, earlier: Sequence[str]) -> bool:
    """The line is one of ``earlier`` again, up to case, punctuation and a word or two; or it repeats
    itself (fewer than :data:`MIN_DISTINCT_SHARE` distinct words)."""
    line = _normal(text)
    words = line.split()
    if len(words) >= MIN_WORDS_FOR_SHARE and len(set(words)) < MIN_DISTINCT_SHARE * len(words):
        return True
    return any(line == (old := _normal(e)) or difflib.SequenceMatcher(None, line, old).ratio() >= SIMILAR_RATIO
               for e in earlier if e.strip())
