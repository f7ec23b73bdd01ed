"""The ``--llm`` setting: which chat model the LLM stages use, and loading it.

    ollama:MODEL                      a model served by Ollama (OLLAMA_HOST, default 127.0.0.1:11434)
    openai:MODEL                      OpenAI's API; reads OPENAI_API_KEY (and OPENAI_BASE_URL if set)
    openai-compatible:URL[#MODEL]     any OpenAI-compatible server (llama.cpp, vLLM, LM Studio...);
                                      the key comes from CRS_LLM_API_KEY, else a dummy one
    llamacpp:PATH.gguf                a local GGUF model, run in this process by llama.cpp
    hf:DIR                            a local transformers model folder, run in this process
    fake:SCRIPT.json                  a scripted model (tests, demos): a JSON list of replies,
                                      played in turn, round and round; or {"by_prompt": [...]},
                                      the reply picked by the prompt (reproducible evaluations)

Backends are entries of :data:`LLM_BACKENDS` (a :class:`~retrieval.registry.Registry`); an
installed package adds one through the entry-point group ``crs.llm_backends``. The entry is
called with the parsed :class:`LLMSpec` and the call's options.

Each backend's package is imported only when its scheme is used; a missing one raises
:class:`MissingBackend` (an ImportError) with the pip command. A malformed setting, or one
naming a file that is not there, is a ValueError that quotes the setting.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from retrieval.registry import Registry

SCHEMES = ("ollama", "openai", "openai-compatible", "llamacpp", "hf", "fake")
# scheme -> (module that must import, pip package, extra of this project that installs it)
PACKAGES = {
    "ollama": ("langchain_ollama", "langchain-ollama", "llm-ollama"),
    "openai": ("langchain_openai", "langchain-openai", "llm-openai"),
    "openai-compatible": ("langchain_openai", "langchain-openai", "llm-openai"),
    "llamacpp": ("xllamacpp", "xllamacpp", "llm-llamacpp"),
    "hf": ("transformers", "transformers", None),  # a core dependency
    "fake": ("langchain_core", "langchain-core", None),  # a core dependency
}
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_TOKENS = 512  # stage answers are short JSON; bounds the cost of a runaway reply
DUMMY_API_KEY = "not-needed"  # local OpenAI-compatible servers want some key, and check none


class MissingBackend(ImportError):
    """The package a backend needs is not installed; the message says what to pip install."""


@dataclass(frozen=True)
class LLMSpec:
    scheme: str
    model: str | None  # the model name; None for openai-compatible without #MODEL
    path: Path | None = None  # llamacpp: the .gguf file; hf: the model folder
    url: str | None = None  # openai-compatible: the server's base URL
    text: str = ""  # the setting as given, for messages and ``source`` labels


def parse_llm_spec(spec: str) -> LLMSpec:
    """Read an ``--llm`` setting; ValueError (quoting it) if it is malformed or names a missing file."""
    text = spec.strip()
    scheme, sep, rest = text.partition(":")
    scheme = scheme.strip().lower()
    if sep and scheme not in SCHEMES and scheme in LLM_BACKENDS:  # a plugin's backend: its factory checks
        return LLMSpec(scheme, rest.strip() or None, text=text)
    if not sep or scheme not in SCHEMES:
        raise ValueError(f"--llm {spec!r}: expected SCHEME:MODEL with SCHEME one of {', '.join(SCHEMES)} "
                         "(e.g. ollama:qwen2.5:7b, openai:gpt-4o-mini, llamacpp:/path/model.gguf)")
    rest = rest.strip()
    if not rest:
        raise ValueError(f"--llm {spec!r}: nothing after '{scheme}:'; "
                         f"expected {_USAGE[scheme]}")
    if scheme in ("ollama", "openai"):
        return LLMSpec(scheme, rest, text=text)
    if scheme == "openai-compatible":
        url, _, model = rest.partition("#")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--llm {spec!r}: the server address must start with http:// or https:// "
                             f"(e.g. openai-compatible:http://127.0.0.1:8080/v1#my-model)")
        return LLMSpec(scheme, model.strip() or None, url=url.strip().rstrip("/"), text=text)
    path = Path(rest).expanduser()
    if scheme == "fake":
        _script(path, spec)  # checked now: a bad script is a bad setting, not a failing turn
        return LLMSpec(scheme, path.name, path=path, text=text)
    if scheme == "llamacpp":
        if not path.is_file():
            raise ValueError(f"--llm {spec!r}: no such file {str(path)!r}")
        with path.open("rb") as file:
            if file.read(4) != b"GGUF":
                raise ValueError(f"--llm {spec!r}: {str(path)!r} is not a GGUF model file")
    elif not (path / "config.json").is_file():
        raise ValueError(f"--llm {spec!r}: {str(path)!r} is not a saved transformers model folder "
                         "(no config.json in it)")
    return LLMSpec(scheme, path.name, path=path, text=text)


_USAGE = {"ollama": "ollama:MODEL", "openai": "openai:MODEL", "openai-compatible": "openai-compatible:URL[#MODEL]",
          "llamacpp": "llamacpp:PATH.gguf", "hf": "hf:DIR", "fake": "fake:SCRIPT.json"}


def _script(path: Path, spec: str) -> tuple[list[str], bool]:
    """The replies of a ``fake:`` script and whether they are picked by prompt."""
    import json

    try:
        script = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"--llm {spec!r}: cannot read the script: {exc.strerror}") from None
    except ValueError as exc:
        raise ValueError(f"--llm {spec!r}: the script is not JSON: {exc}") from None
    by_prompt = isinstance(script, dict) and set(script) == {"by_prompt"}
    replies = script["by_prompt"] if by_prompt else script
    if not isinstance(replies, list) or not replies or not all(isinstance(r, str) for r in replies):
        raise ValueError(f"--llm {spec!r}: the script must be a JSON list of reply strings (at least one), "
                         'or {"by_prompt": [...]}')
    return replies, by_prompt


def require_backend(scheme: str, spec: str = "") -> None:
    """MissingBackend unless the package for ``scheme`` can be imported."""
    if scheme not in PACKAGES:  # a plugin's backend brings its own packages
        return
    module, package, extra = PACKAGES[scheme]
    if importlib.util.find_spec(module) is None:
        install = f"pip install 'crs-multimodal[{extra}]' (or pip install {package})" if extra else \
            f"pip install {package}"
        raise MissingBackend(f"--llm {spec or scheme}: the {scheme} backend needs the {package} package: {install}")


def load_chat_model(spec: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_tokens: int = DEFAULT_MAX_TOKENS,
                    temperature: float = 0.0, json_mode: bool = False) -> BaseChatModel:
    """The chat model an ``--llm`` setting names.

    Nothing connects here: a server that is down shows up on the first call (as an LLMError in
    the stages). ``timeout_s`` goes to clients that take one; the stages also enforce it
    themselves. ``json_mode`` asks backends that can (Ollama, OpenAI, llama.cpp) to constrain
    the reply to a JSON object; it is off for free text (a simulated user's lines).
    """
    parsed = parse_llm_spec(spec)
    require_backend(parsed.scheme, spec)
    options = {"timeout_s": timeout_s, "max_tokens": max_tokens, "temperature": temperature, "json_mode": json_mode}
    return LLM_BACKENDS.create(parsed.scheme, llm=parsed, **options)


def load_stage_model(spec: str, timeout_s: float | None, default_s: float, prompt_tokens: int,
                     reply_tokens: int, *, max_tokens: int) -> tuple[BaseChatModel, float]:
    """A stage's JSON-answering model and its time limit: ``timeout_s`` if given, else the time
    ``prompt_tokens`` and ``reply_tokens`` take at the backend's measured speed
    (:mod:`crs.llm.speed`), else ``default_s``. An in-process model also stops generating by
    itself at that limit."""
    from .speed import stage_timeout

    model = load_chat_model(spec, timeout_s=timeout_s or default_s, max_tokens=max_tokens, json_mode=True)
    if timeout_s is None:
        timeout_s = stage_timeout(model, prompt_tokens, reply_tokens, default_s)
        if hasattr(model, "timeout_s"):  # local backends: their own generation deadline
            model.timeout_s = timeout_s
    return model, timeout_s


# -- the backends: factory(arg, *, llm: LLMSpec, timeout_s, max_tokens, temperature, json_mode) --------
# Options go in as dicts: the clients' pydantic fields have aliases that type checkers misread.

def _ollama(_: str | None, *, llm: LLMSpec, timeout_s: float, max_tokens: int, temperature: float,
            json_mode: bool) -> BaseChatModel:
    from langchain_ollama import ChatOllama

    ollama: dict[str, Any] = {"model": llm.model, "temperature": temperature, "num_predict": max_tokens,
                              "client_kwargs": {"timeout": timeout_s}}
    if json_mode:
        ollama["format"] = "json"
    return ChatOllama(**ollama)


def _openai(_: str | None, *, llm: LLMSpec, timeout_s: float, max_tokens: int, temperature: float,
            json_mode: bool) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        raise ValueError(f"--llm {llm.text!r}: set OPENAI_API_KEY to use OpenAI's API")
    openai: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens, "timeout": timeout_s,
                              "max_retries": 1, "model": llm.model, "api_key": key}
    if json_mode:
        openai["model_kwargs"] = {"response_format": {"type": "json_object"}}
    return ChatOpenAI(**openai)


def _openai_compatible(_: str | None, *, llm: LLMSpec, timeout_s: float, max_tokens: int, temperature: float,
                       json_mode: bool) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    # Not OPENAI_API_KEY: that would send an OpenAI key to whatever server the URL names. No
    # response_format either: servers differ in which they accept, and a 400 on every call would
    # silently turn the LLM off.
    return ChatOpenAI(temperature=temperature, max_tokens=max_tokens, timeout=timeout_s, max_retries=1,
                      model=llm.model or "default", base_url=llm.url,
                      api_key=os.environ.get("CRS_LLM_API_KEY") or DUMMY_API_KEY)


def _llamacpp(_: str | None, *, llm: LLMSpec, timeout_s: float, max_tokens: int, temperature: float,
              json_mode: bool) -> BaseChatModel:
    from .llamacpp_chat import LlamaCppChat

    return LlamaCppChat(model_path=str(llm.path), max_tokens=max_tokens, temperature=temperature,
                        timeout_s=timeout_s, json_mode=json_mode)


def _hf(_: str | None, *, llm: LLMSpec, timeout_s: float, max_tokens: int, temperature: float,
        json_mode: bool) -> BaseChatModel:
    from .hf_chat import HFChat

    return HFChat(model_dir=str(llm.path), max_tokens=max_tokens, temperature=temperature, timeout_s=timeout_s)


def _fake(_: str | None, *, llm: LLMSpec, **__: Any) -> BaseChatModel:
    from .fakes import ScriptedChatModel

    replies, by_prompt = _script(Path(str(llm.path)), llm.text)
    return ScriptedChatModel(responses=replies, by_prompt=by_prompt)


LLM_BACKENDS: Registry[BaseChatModel] = Registry("LLM backend", "crs.llm_backends")
LLM_BACKENDS.register("ollama", _ollama, "ollama:MODEL")
LLM_BACKENDS.register("openai", _openai, "openai:MODEL")
LLM_BACKENDS.register("openai-compatible", _openai_compatible, "openai-compatible:URL[#MODEL]")
LLM_BACKENDS.register("llamacpp", _llamacpp, "llamacpp:PATH.gguf")
LLM_BACKENDS.register("hf", _hf, "hf:DIR")
LLM_BACKENDS.register("fake", _fake, "fake:SCRIPT.json")
