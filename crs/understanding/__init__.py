"""Reading what a person sends: critique parsers (text -> constraints, references, accept/reject)
and image readers (picture -> attribute values, caption), each a one-method base class with an
offline default and model-backed options chosen by name through the two registries below,
``PARSERS`` and ``READERS`` (each with a ``fake`` entry for tests and demos).

Modules: ``parser`` (CritiqueParser, ParseContext, ShownItem), ``rule_parser`` (the offline rules)
over ``lexicon`` (the catalog's vocabulary), ``reader`` (ImageReader, ReadContext),
``offline_parser`` (the default: the rules plus numbers, names and grounding by meaning, over
``spotting``, ``numbers``, ``names``, ``grounding``, ``stopwords``), ``offline_reader`` (the encoders' reading), ``hf_reader`` (a transformers image-text-to-text
model); the LLM-backed ones are ``crs.llm.parser`` and ``crs.llm.reader``."""
from __future__ import annotations

from typing import Any

from retrieval.registry import Registry

from .parser import CritiqueParser
from .reader import ImageReader

__all__ = ["PARSERS", "READERS", "CritiqueParser", "ImageReader"]

# factory(arg, *, facts, searcher, llm) -> the part; heavy imports happen inside, when called.
PARSERS: Registry[CritiqueParser] = Registry("critique parser", "crs.parsers")
READERS: Registry[ImageReader] = Registry("image reader", "crs.image_readers")


def _needs_llm(what: str, llm: str | None) -> str:
    if not llm:
        raise ValueError(f"the llm {what} needs an LLM: give --llm (e.g. ollama:qwen2.5:7b)")
    return llm


def _rules(arg: str | None, *, facts: Any, **_: Any) -> CritiqueParser:
    from .rule_parser import RuleCritiqueParser

    return RuleCritiqueParser(facts)


def _offline_parser(arg: str | None, *, facts: Any, searcher: Any = None, **_: Any) -> CritiqueParser:
    from .offline_parser import OfflineCritiqueParser

    return OfflineCritiqueParser.for_searcher(facts, searcher)


def _llm_parser(arg: str | None, *, llm: str | None = None, searcher: Any = None, **_: Any) -> CritiqueParser:
    from ..llm.parser import LLMCritiqueParser  # imports LangChain: only when asked for

    # The catalog's text encoder also finds the values a message is near in meaning (the prompt
    # lists only those).
    embedder = getattr(searcher, "embedder", None)
    return LLMCritiqueParser.from_spec(_needs_llm("parser", llm),
                                       encode=embedder.encode_texts if embedder is not None else None)


def _fake_parser(arg: str | None, **_: Any) -> CritiqueParser:
    from .fakes import ScriptedParser

    if not arg:
        raise ValueError("the fake parser needs a script: fake:SCRIPT.json (a JSON list of critiques)")
    return ScriptedParser.from_file(arg)


def _offline(arg: str | None, *, searcher: Any, **_: Any) -> ImageReader:
    from .offline_reader import OfflineImageReader

    return OfflineImageReader(searcher)


def _llm_reader(arg: str | None, *, llm: str | None = None, **_: Any) -> ImageReader:
    from ..llm.reader import LLMImageReader

    return LLMImageReader.from_spec(_needs_llm("image reader", llm))


def _hf_reader(arg: str | None, **_: Any) -> ImageReader:
    from .hf_reader import HFImageReader

    if not arg:
        raise ValueError("the hf image reader needs a model folder: hf:DIR (a transformers image-text-to-text model)")
    return HFImageReader(arg)


def _fake_reader(arg: str | None, **_: Any) -> ImageReader:
    from .fakes import FixedReader

    if not arg:
        raise ValueError('the fake image reader needs a reading: fake:READING.json ({"attributes": {...}, '
                         '"caption": "..."})')
    return FixedReader.from_file(arg)


PARSERS.register("offline", _offline_parser)
PARSERS.register("rules", _rules)
PARSERS.register("llm", _llm_parser)
PARSERS.register("fake", _fake_parser, "fake:SCRIPT.json")
READERS.register("offline", _offline)
READERS.register("llm", _llm_reader)
READERS.register("hf", _hf_reader, "hf:DIR")
READERS.register("fake", _fake_reader, "fake:READING.json")
