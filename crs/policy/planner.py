"""The default policy (``eig``): ask a question only when it is expected to find the wanted item
within the turns left more often than showing pages would, judged with the answers questions
actually get.

Why not plain information gain. Bits are not what a conversation is scored on: it succeeds when
the wanted item is shown within T turns, and a question costs a turn that a page would have used.
The earlier gate (:class:`~crs.policy.eig.EIGPolicy`, kept as ``eig-greedy``) looked two turns
ahead and judged with a sharpened posterior, so it believed its top pages far more than they
deserved and under-asked (docs/experiments.md, issue 14). This policy looks at the whole budget.

The value of a belief ``p`` with ``h`` turns left, if every turn from now shows a page of ``k``
new items in the posterior's order, is the expected number of turns saved (``early``, the
default: a page shown on turn j that holds the item saves ``h + 1 - j``, a miss nothing, so it
is ``h + 1`` minus the expected turns the average-turns metric counts), or the chance of
finding it at all (the mass of the ``h * k`` most probable unshown items):

    V(p, h) = sum_j (h + 1 - j) * mass of page j        (or: sum of the top h*k of p)

A question on attribute ``a`` offering values ``O`` (the unexcluded values with the most mass,
then "any") gets one of these answers, the field's answer model (EAR/SCPR/CRIF):

* one of the offered values the item has (uniformly among them, when it has several);
* "none of these" when the item has values for ``a`` but none of the offered ones: the belief
  then excludes all of ``O``, so a question tells something even when its options miss;
* "any" when the item has no value for ``a``;

each with probability ``1 - noise``, else any answer at random (a slip or a wrong answer).
The policy plans ``depth`` questions ahead (a small expectimax over answers):

    Q(p, h, d) = max( V(p, h),  max_a  sum_ans P(ans) Q(p | ans, h - 1, d - 1) ),  Q(p, h, 0) = V(p, h)

and asks the best first question when its value beats showing a page now by ``margin``. The
turns left are ``turns - turn + 1``, ``turns`` being the budget it plans for (10, the field's T).
The planner assumes a rejected page tells nothing but "not these" (the field's protocol), yet
people often say why ("like the second but blue"), and then a page tells more than a question
(and questions risk wrong answers). So, around the planner:

* once the person has named something (a settled attribute, or words the catalog's items hold:
  ``named``), the first reply is a page (``probe``): plain search finds such things, and how the
  page is answered says which kind of person this is; a vague opening gets a question;
* a question only when the next page would likely miss: when the belief gives the next page at
  least ``page_hit`` chance of holding the item, it is shown, whatever a question is worth;
* a person who has rejected pages with a reason at least as often as without one is followed:
  it recommends (``follow_critiques``);
* otherwise a page's value also counts the chance that its rejection comes with a reason
  (a Beta ``reason_prior`` updated by the replies so far), modelled as a free answer to the
  best open question.

Under the field's protocol (silent rejections) this costs one page at the start; under
critiquing users it keeps the policy from spending turns on questions (docs/experiments.md).
An attribute is asked again only when its last answer was "none of these" (the belief excludes
the values offered then); the new question offers values not excluded yet. It judges with
``p ** sharpen`` renormalised (ranking unchanged); below 1 this flattens a posterior whose
retrieval scores say less about the wanted item than their temperature claims.

Every decision says why: the outlooks it compared (chance of finding the item within the turns
left and expected turns, asking first vs pages), or the rule that decided.
Constants and the runs that chose them: docs/experiments.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import ANY, MIN_COVERAGE, Ask, Decision, Policy, PolicyContext, Recommend, coverage, offered_values, top_new


@dataclass(frozen=True)
class _Question:
    attribute: str
    options: list[str]  # offered values, then ANY
    likelihood: np.ndarray  # (classes, answers): P(answer | the wanted item is in class c)


@dataclass(frozen=True)
class _Belief:
    """The belief over candidates grouped into classes of items alike on every askable attribute:
    no answer tells such items apart, so the planner works on classes (hundreds, not thousands)."""

    mass: np.ndarray  # (classes,) sums to 1
    tops: np.ndarray  # (classes, n) each class's n largest item masses, descending, zero-padded
    matrices: dict[str, np.ndarray]  # attribute -> (classes, values) bool

    def given(self, factor: np.ndarray) -> _Belief:
        """The belief after an answer whose likelihood per class is ``factor``."""
        total = float(self.mass @ factor)
        return _Belief(self.mass * factor / total, self.tops * (factor / total)[:, None], self.matrices)

    def page_value(self, turns: int, k: int, early: bool = False) -> float:
        """Showing a page of ``k`` items on each of ``turns`` turns: the expected success, or with
        ``early`` the expected turns saved, ``turns + 1`` minus the expected turns used (a page
        shown on turn j that holds the item saves ``turns + 1 - j``; a miss saves nothing)."""
        flat = self.tops.ravel()
        n = min(turns * k, len(flat))
        top = np.partition(flat, len(flat) - n)[len(flat) - n:] if n < len(flat) else flat
        if not early:
            return float(top.sum())
        top = np.sort(top)[::-1]
        return float(top @ (turns - np.arange(len(top)) // k))


@dataclass
class PlannedEIGPolicy(Policy):
    turns: int = 10  # the conversation's budget planned for (the field's T)
    sharpen: float = 1.0  # judge with p ** sharpen (renormalised); the ranking is unchanged
    noise: float = 0.05  # chance an answer is random
    options: int = 5  # values offered per question (then "any")
    depth: int = 2  # questions planned ahead
    margin: float = 0.0  # a question must beat a page by this much expected success
    early: bool = True  # value turns saved (the average-turns metric), not only success within the budget
    # A person who says what is wrong with a page (at least as often as not) steers pages better
    # than questions do: stop asking. A silent "none of these" tells nothing, and the planner
    # below assumes that of every page.
    follow_critiques: bool = True
    # Once the person has named what they want, show a page before any question: how they
    # answer it says whether to follow their critiques or to ask (a vague opening gets a question).
    probe: bool = True
    # Beta prior (reasons, bare rejections) on how often a rejected page comes with a reason;
    # (0, 1): none expected until one is seen. See _show_value.
    reason_prior: tuple[float, float] = (1.0, 1.0)
    # A question only when the next page would likely miss: at this chance of holding the item
    # (by the policy's own belief) a page goes first, whatever a question is worth.
    page_hit: float = 0.5
    name: str = "eig"

    def decide(self, context: PolicyContext) -> Decision:
        candidates = context.candidates
        if len(candidates) == 0:
            return Recommend([], "nothing matches")
        recommend = top_new(context)
        p = candidates.posterior.astype(np.float64) ** self.sharpen
        p[np.isin(candidates.ids, list(context.shown))] = 0.0  # shown and not taken: not found by showing
        if p.sum() <= 0:
            return Recommend(recommend, "every candidate was shown")
        p /= p.sum()
        reasons, silent = context.page_replies
        if self.probe and reasons + silent == 0 and not context.shown and (context.settled or context.named):
            return Recommend(recommend, "a first page for what you named: how it is answered tells whether "
                                        "to ask or to show")
        if self.follow_critiques and reasons and reasons >= silent:
            return Recommend(recommend, f"{reasons} of {reasons + silent} rejected pages came with a reason: "
                                        "pages and critiques narrow faster than questions")
        left = max(1, self.turns - context.turn + 1)
        belief = self.belief(context, p, left * context.k)
        show = belief.page_value(left, context.k, self.early)
        first = belief.page_value(1, context.k)
        if first >= self.page_hit:
            return Recommend(recommend, f"the next page holds the item with chance {first:.0%}: no question needed")
        low, high = self.reason_prior
        reason_rate = (reasons + low) / (reasons + silent + low + high)
        if left < 2:
            return Recommend(recommend, f"last turn: the top {len(recommend)} hold {belief.page_value(1, context.k):.0%} "
                                        "of the belief")
        best, best_value = None, -1.0
        for question in self._questions(context, belief):
            value = self._ask_value(context, belief, question, left, self.depth, frozenset(), self.early)
            if value > best_value:
                best, best_value = question, value
        if best is None:
            return Recommend(recommend, f"nothing left to ask; {self._outlook(belief, left, context.k)}")
        if reason_rate > 0 and self.early:
            show = self._show_value(context, belief, left, reason_rate)
            if best_value <= show + self.margin:
                return Recommend(recommend, f"a page may come back with a reason ({reason_rate:.0%}): pages save "
                                            f"{show:.1f} turns, asking {best.attribute} first {best_value:.1f}")
        if best_value <= show + self.margin:
            return Recommend(recommend, f"pages: {self._outlook(belief, left, context.k)}; asking {best.attribute} "
                                        f"first: {self._ask_outlook(context, belief, best, left)}")
        return Ask(best.attribute, best.options,
                   f"asking {best.attribute} first: {self._ask_outlook(context, belief, best, left)}; "
                   f"pages: {self._outlook(belief, left, context.k)}")

    def _show_value(self, context: PolicyContext, belief: _Belief, left: int, reason_rate: float) -> float:
        """Turns saved by showing a page now when its rejection comes with a reason with chance
        ``reason_rate``, modelled as the answer to the best open question, for free: the page
        finds it now, else the next ``left - 1`` turns start from the belief without those items
        (and, with a reason, after that answer)."""
        k = context.k
        flat = belief.tops.ravel()
        if len(flat) <= k:
            return belief.page_value(left, k, early=True)
        page = np.argpartition(flat, len(flat) - k)[len(flat) - k:]
        found = float(flat[page].sum())
        if found >= 1 - 1e-9 or left < 2:
            return found * left
        tops = belief.tops.copy().ravel()
        tops[page] = 0.0
        tops = tops.reshape(belief.tops.shape)
        rest = tops.sum(axis=1)
        after = _Belief(rest / rest.sum(), tops / rest.sum(), belief.matrices)
        silent = after.page_value(left - 1, k, early=True)
        told = silent
        for question in self._questions(context, after):
            answer_p = after.mass @ question.likelihood
            value = sum(answer_p[a] * after.given(question.likelihood[:, a]).page_value(left - 1, k, early=True)
                        for a in np.flatnonzero(answer_p > 1e-9))
            told = max(told, float(value))
        return found * left + (1 - found) * (reason_rate * told + (1 - reason_rate) * silent)

    def _outlook(self, belief: _Belief, left: int, k: int) -> str:
        """Showing pages, in words: chance of finding it within the turns left, expected turns."""
        found, saved = belief.page_value(left, k), belief.page_value(left, k, early=True)
        return f"found within {left} turns {found:.0%}, expected turns {left + 1 - saved:.1f}"

    def _ask_outlook(self, context: PolicyContext, belief: _Belief, question: _Question, left: int) -> str:
        """Asking ``question`` (then planning as the policy does), in the same words."""
        found = self._ask_value(context, belief, question, left, self.depth, frozenset(), early=False)
        saved = self._ask_value(context, belief, question, left, self.depth, frozenset(), early=True)
        return f"found within {left} turns {found:.0%}, expected turns {left + 1 - saved:.1f}"

    def belief(self, context: PolicyContext, p: np.ndarray, n: int) -> _Belief:
        """``p`` grouped by the items' values on the askable attributes, keeping each class's
        ``n`` most probable items (no more can be shown in the turns left)."""
        ids = context.candidates.ids
        matrices = {info.name: context.facts.value_matrix(info.name, ids).astype(bool)
                    for info in context.facts.askable() if info.values}
        signature = np.concatenate(list(matrices.values()), axis=1) if matrices else np.zeros((len(ids), 0), bool)
        rows, first, classes = np.unique(np.packbits(signature, axis=1), axis=0, return_index=True,
                                         return_inverse=True)
        classes = classes.reshape(-1)
        count = len(rows)
        order = np.lexsort((-p, classes))  # by class, then most probable first
        sorted_classes = classes[order]
        starts = np.searchsorted(sorted_classes, np.arange(count))
        rank = np.arange(len(order)) - starts[sorted_classes]
        width = int(min(n, rank.max() + 1))
        tops = np.zeros((count, width))
        keep = rank < width
        tops[sorted_classes[keep], rank[keep]] = p[order][keep]
        mass = np.bincount(classes, weights=p, minlength=count)
        return _Belief(mass, tops, {name: matrix[first] for name, matrix in matrices.items()})

    # -- values ----------------------------------------------------------------------------------------

    def _ask_value(self, context: PolicyContext, belief: _Belief, question: _Question, left: int, depth: int,
                   planned: frozenset[str], early: bool) -> float:
        """Expected success (or, ``early``, turns saved) of asking ``question`` now, then planning
        ``depth - 1`` more questions."""
        answer_p = belief.mass @ question.likelihood
        now = planned | {question.attribute}
        total = 0.0
        for answer in np.flatnonzero(answer_p > 1e-9):
            after = belief.given(question.likelihood[:, answer])
            value = after.page_value(left - 1, context.k, early)
            if depth > 1 and left - 1 >= 2:
                for follow in self._questions(context, after, now):
                    value = max(value, self._ask_value(context, after, follow, left - 1, depth - 1, now, early))
            total += answer_p[answer] * value
        return total

    # -- questions -------------------------------------------------------------------------------------

    def _questions(self, context: PolicyContext, belief: _Belief, planned: frozenset[str] = frozenset()
                   ) -> list[_Question]:
        """The questions open in ``belief``: attributes not settled; asked ones only when their
        last answer was "none of these"; ``planned`` ones (asked earlier in the lookahead) not again;
        none that most of the belief has no value for; options as every policy offers them
        (:func:`~crs.policy.base.offered_values`: no near-duplicates)."""
        questions = []
        for attribute, matrix in belief.matrices.items():
            if attribute in context.settled or attribute in planned:
                continue
            excluded = context.excluded.get(attribute, frozenset())
            if attribute in context.asked and not excluded:
                continue
            if coverage(belief.mass, matrix) < MIN_COVERAGE:
                continue  # most of the belief has no value here: nobody could answer (base.MIN_COVERAGE)
            values = context.facts.attributes[attribute].values
            mass = belief.mass @ matrix
            order = offered_values(values, mass, self.options, excluded)
            if not order or (len(order) == 1 and mass[order[0]] >= 1 - 1e-9):
                continue  # every candidate has the one value: the answer tells nothing
            questions.append(_Question(attribute, [values[i] for i in order] + [ANY],
                                       self.answer_likelihood(matrix, order)))
        return questions

    def answer_likelihood(self, matrix: np.ndarray, offered: list[int]) -> np.ndarray:
        """(rows, answers): the offered values, then "none of these", then "any" (see the module
        docstring), mixed with ``noise`` uniform answers."""
        chosen = matrix[:, offered].astype(np.float64)
        has_offered = chosen.sum(axis=1, keepdims=True)
        has_any = matrix.any(axis=1)
        likelihood = np.zeros((len(matrix), len(offered) + 2))
        likelihood[:, :-2] = chosen / np.maximum(has_offered, 1.0)
        likelihood[:, -2] = (has_offered[:, 0] == 0) & has_any
        likelihood[:, -1] = ~has_any
        answers = likelihood.shape[1]
        return (1 - self.noise) * likelihood + self.noise / answers
