"""The offline image reader: the retrieval encoders and the pixels stand in for a vision-language model.

For an uploaded picture it gives, in the catalog's own vocabulary:

* attribute values, scored two ways and averaged: a vote of the nearest catalog items (weighted
  by similarity: "pictures like this one are mostly 3d") and zero-shot similarity between the
  picture and each value's text in the joint space;
* dominant colours counted from the pixels (when the catalog has a colour attribute);
* the nearest catalog items;
* a caption in the catalog's display names ("a yellow face smiling in 3D style, much like
  “grinning face”").
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from retrieval.multimodal import Query

from crs.catalog.colours import dominant_colours
from crs.facts import CatalogFacts, in_sentence
from crs.understanding.reader import ImageReader, ReadContext
from crs.search import CatalogSearch
from crs.turn import ImageReading

NEIGHBOURS = 20
VOTE_TEMPERATURE = 0.05  # softmax temperature over neighbour scores and value similarities
MIN_SHARE = 0.35  # a value is reported when it carries at least this share of the evidence
COLOUR_ATTRIBUTES = ("colour", "color", "colours", "colors")


class OfflineImageReader(ImageReader):
    name = "offline"

    def __init__(self, searcher: CatalogSearch) -> None:
        self.searcher = searcher
        self._prototypes: dict[str, np.ndarray] = {}

    def read(self, image: Image.Image, context: ReadContext) -> ImageReading:
        joint, visual = self.searcher.embedder.encode_images([image])
        return self.read_encoded(image, joint[0], None if visual is None else visual[0], context)

    def read_encoded(self, image: Image.Image, joint: np.ndarray, visual: np.ndarray | None,
                     context: ReadContext) -> ImageReading:
        """:meth:`read` for a picture the caller has already encoded (the dialogue manager has)."""
        facts = context.facts
        hits, shares = self._shares(joint, visual, facts)
        attributes: dict[str, list[str]] = {}
        colour_attribute = next((a for a in COLOUR_ATTRIBUTES if a in facts.attributes), None)
        for name, share in shares.items():
            order = [i for i in np.argsort(-share, kind="stable") if share[i] >= MIN_SHARE][:2]
            if order:
                attributes[name] = [facts.attributes[name].values[i] for i in order]
        colours: list[str] = []
        if colour_attribute is not None:
            vocabulary = set(facts.attributes[colour_attribute].values)
            colours = [c for c in dominant_colours(image) if c in vocabulary]
            if colours:
                attributes[colour_attribute] = colours
        nearest = [int(h.id) for h in hits[:5]]
        return ImageReading(attributes=attributes, caption=self._caption(attributes, colour_attribute, hits, facts),
                            colours=colours, nearest=nearest, source=self.name)

    def likely_values(self, joint: np.ndarray, visual: np.ndarray | None, facts: CatalogFacts,
                      most: int) -> dict[str, list[str]]:
        """Per askable attribute (the colour one aside: the pixels tell it), its ``most`` values
        best supported by the picture, best first, however weak: what a model reader is offered
        from a vocabulary too large to list (:class:`~crs.understanding.reader.ReadContext`)."""
        _, shares = self._shares(joint, visual, facts)
        return {name: [facts.attributes[name].values[i] for i in np.argsort(-share, kind="stable")[:most]]
                for name, share in shares.items()}

    def _shares(self, joint: np.ndarray, visual: np.ndarray | None,
                facts: CatalogFacts) -> tuple[list, dict[str, np.ndarray]]:  # type: ignore[type-arg]
        """The nearest items, and per askable attribute (not the colour one) each value's share of
        the evidence: half the neighbours' vote, half the picture's similarity to the value's text."""
        hits = self.searcher.index.search(Query(images=joint[None], visual=None if visual is None else visual[None]),
                                          NEIGHBOURS)
        ids = np.array([h.id for h in hits], dtype=np.int64)
        if not len(ids):
            return hits, {}
        weights = _softmax(np.array([h.score for h in hits]))
        colour_attribute = next((a for a in COLOUR_ATTRIBUTES if a in facts.attributes), None)
        shares = {}
        for info in facts.askable():
            if info.name == colour_attribute or info.kind == "numeric" or not info.values:
                continue
            vote = weights @ facts.value_matrix(info.name, ids).astype(np.float32)
            vote = vote / vote.sum() if vote.sum() > 0 else vote
            shares[info.name] = 0.5 * vote + 0.5 * _softmax(self._prototype(info.name, info.values) @ joint)
        return hits, shares

    def _prototype(self, attribute: str, values: tuple[str, ...]) -> np.ndarray:
        """Each value's text in the joint space, encoded once per attribute."""
        if attribute not in self._prototypes:
            self._prototypes[attribute] = self.searcher.embedder.encode_texts([f"{v}." for v in values])
        return self._prototypes[attribute]

    def _caption(self, attributes: dict[str, list[str]], colour_attribute: str | None, hits,  # type: ignore[no-untyped-def]
                 facts: CatalogFacts) -> str:
        """The reading as a person would write it, in the catalog's display names: "a yellow and
        orange cat face in 3D style, much like “grinning cat”". The subject is the most specific
        value read (the attribute with the most values: "cat face" says more than "animals", and
        saying both repeats it); a value with a display name the schema gave (a style, a set)
        says how it is drawn."""
        def name(attribute: str, value: str) -> str:
            return facts.attributes[attribute].display_value(value)

        read = [a for a in attributes if a != colour_attribute and attributes[a]]
        styled = [a for a in read if facts.attributes[a].display]
        subjects = sorted((a for a in read if a not in styled), key=lambda a: -len(facts.attributes[a].values))
        words = []
        if colour_attribute and attributes.get(colour_attribute):
            words.append(" and ".join(name(colour_attribute, c) for c in attributes[colour_attribute][:2]))
        words.append(name(subjects[0], attributes[subjects[0]][0]) if subjects else "picture")
        phrase = " ".join(words)
        caption = f"{'an' if phrase[:1].lower() in 'aeiou' else 'a'} {phrase}"
        if styled:
            attribute = styled[0]
            caption += f" in {in_sentence(name(attribute, attributes[attribute][0]))} " \
                       f"{in_sentence(facts.attributes[attribute].display_label)}"
        if hits:
            title = self.searcher.hits(hits[:1])[0].title
            caption += f", much like \u201c{title}\u201d"
        return caption


def _softmax(scores: np.ndarray) -> np.ndarray:
    if len(scores) == 0:
        return scores.astype(np.float32)
    z = (scores - scores.max()) / VOTE_TEMPERATURE
    e = np.exp(z)
    return (e / e.sum()).astype(np.float32)
