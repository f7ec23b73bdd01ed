"""The leak detector: plurals and singulars of title words, and titles made only of attribute words."""
from __future__ import annotations

import pytest

from simulators.leaks import REDACTED, LeakDetector, noun_forms


@pytest.mark.parametrize("word, forms", [("sandal", {"sandal", "sandals"}), ("sandals", {"sandal", "sandals"}),
                                         ("box", {"box", "boxes"}), ("berries", {"berry", "berries"}),
                                         ("mouse", {"mouse", "mice"}), ("leaves", {"leaf", "leaves"})])
def test_noun_forms_are_singular_and_plural(word, forms) -> None:
    assert set(noun_forms(word)) == forms


def test_a_plural_of_the_title_leaks_like_the_title() -> None:
    sandals = LeakDetector("Strappy leather sandal", "shoe-17", known_words=["leather", "brown"])
    assert sandals.distinctive == ("strappy", "sandal")
    assert sandals.redact("any strappy leather sandals?").text == f"any {REDACTED}?"  # the whole title, plural
    assert sandals.redact("sandals, strappy ones").text == f"{REDACTED}, {REDACTED} ones"  # its words, any order
    assert not sandals.redact("a sandal in brown leather").leaked  # one of its two distinctive words


def test_singulars_and_irregular_plurals_leak_too() -> None:
    berries = LeakDetector("Box of berries", "fruit-2")
    assert berries.redact("boxes with a berry").text == f"{REDACTED} with a {REDACTED}"
    assert berries.redact("a box of berry").text == f"a {REDACTED}"
    mice = LeakDetector("Three blind mice", "nursery-3")
    assert mice.redact("a blind mouse").text == f"a {REDACTED} {REDACTED}"  # each word of the two
    assert not mice.redact("a mousepad").leaked  # whole words only


def test_a_title_of_attribute_words_leaks_as_its_exact_phrase_only() -> None:
    flower = LeakDetector("White flower", "clip-9", known_words=["white", "flower", "red"])
    assert flower.distinctive == ()
    assert flower.redact("a white flower please").text == f"a {REDACTED} please"
    assert flower.redact("White-flowers?").text == f"{REDACTED}?"  # plural, other punctuation
    for fine in ("a flower, white", "white please", "a flower", "a red flower", "flower white"):
        assert not flower.redact(fine).leaked, fine  # its words one by one are what anyone may ask for


def test_a_one_word_title_of_an_attribute_value_never_leaks() -> None:
    assert not LeakDetector("Star", "s-1", known_words=["star"]).redact("a star please").leaked
    assert LeakDetector("Star", "s-1").redact("stars please").text == f"{REDACTED} please"  # not a value: it leaks


def test_a_value_word_in_another_number_is_still_a_value_word() -> None:
    frogs = LeakDetector("Two green frogs", "frog-2", known_words=["frog", "green"])
    assert frogs.distinctive == ()  # 'frogs' is the tag 'frog'; 'two' is a common word
    assert not frogs.redact("a frog, green").leaked
    assert frogs.redact("two green frogs").leaked  # the phrase
