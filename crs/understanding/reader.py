"""Reading images: an uploaded picture -> attributes in the catalog's vocabulary and a caption.

One abstract method, :meth:`ImageReader.read`. The offline default (:mod:`crs.understanding.offline_reader`)
uses the retrieval encoders and the pixels; a LangChain vision chat model reader is in
:mod:`crs.llm.reader` and a transformers image-text-to-text reader in :mod:`crs.understanding.hf_reader`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PIL import Image

from crs.facts import CatalogFacts
from crs.turn import ImageReading


LIKELY_VALUES = 8  # values per attribute a model reader is offered from a large vocabulary


@dataclass(frozen=True)
class ReadContext:
    facts: CatalogFacts  # the vocabulary answers must come from
    # Per attribute, the values this picture most likely has, best first (the offline reader's
    # ranking): a model reader offers only these from a vocabulary too large to list whole, so its
    # prompt stays short. None: no ranking (a large vocabulary's most frequent values are offered).
    likely: Mapping[str, Sequence[str]] | None = None


class ImageReader(ABC):
    name: str = "reader"

    @abstractmethod
    def read(self, image: Image.Image, context: ReadContext) -> ImageReading:
        """Describe one already-decoded RGB image with values from ``context.facts`` only."""
