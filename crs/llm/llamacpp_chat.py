"""A local GGUF model run in-process by llama.cpp, through the ``xllamacpp`` prebuilt wheel.

``xllamacpp`` embeds llama.cpp's server: the model loads once, and each chat call goes straight
to the server's chat-completions handler in this process (chat template, stop words, sampling
and JSON grammar all done by llama.cpp; a JSON schema bound to the call becomes that grammar).
The server also opens an HTTP port on 127.0.0.1 that
we never use; a random API key keeps other local programs (or web pages: it allows any CORS
origin) from using it.

Time limits: each call streams, and the stream's callback tells the server to stop as soon as
the caller has abandoned the call (:func:`~crs.llm.structured.cancelled`): llama.cpp then cancels
the task at the next token, so the next call does not wait behind a dead one (the server has one
slot: calls run one at a time). When the model loads, a short warm-up generation measures its
tokens/s (:mod:`crs.llm.speed`), from which each stage sets its limit. At exit the servers are
shut down in order (calls cancelled and joined first, then each server's loop stopped), before
the interpreter tears down the modules a running generation still uses: freeing them in any
other order crashed ``crs chat`` with status 139 after timed-out calls.
"""
from __future__ import annotations

import atexit
import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import PrivateAttr

from .local_chat import Completion, LocalChatModel, text_only
from .speed import Speed
from .structured import abandon_all, cancelled

Key = tuple[str, int, int]  # (resolved model path, n_ctx, threads)
_SERVERS: dict[Key, Any] = {}
_SPEEDS: dict[Key, Speed] = {}
_SERVERS_LOCK = threading.Lock()
_SHUTDOWN_WAIT_S = 10.0  # a cancelled generation stops at its next token; this is ample
WARMUP_PROMPT = ("You help a shopper. The shopper wrote: 'I would like a red summer dress, not too long, "
                 "under fifty pounds, and nothing with flowers on it please.' Say what they want in one line.")
WARMUP_TOKENS = 24


class ModelShutDown(RuntimeError):
    """A call came after the models were shut down (at interpreter exit)."""


def default_threads() -> int:
    # llama.cpp's threads spin-wait on each other: on a small or busy machine, using every core
    # made prompt evaluation ~8x slower here (2 cores, one busy). Half the cores is a safe default.
    return max(1, (os.cpu_count() or 2) // 2)


def server_key(model_path: str, n_ctx: int, threads: int) -> Key:
    return (str(Path(model_path).resolve()), n_ctx, threads)


def server(key: Key) -> Any:
    """The loaded model, once per process: the critique parser, the policy and a simulator that
    name the same GGUF share it instead of holding several copies in memory. Models hold the
    key, not the server, so that :func:`shutdown` can free it."""
    with _SERVERS_LOCK:
        if key not in _SERVERS:
            if _SHUT_DOWN.is_set():
                raise ModelShutDown("llama.cpp: the models were shut down (the program is exiting)")
            import xllamacpp  # the backends module checked that it is installed

            params = xllamacpp.CommonParams()
            params.model.path = key[0]
            params.n_ctx = key[1]
            params.cpuparams.n_threads = params.cpuparams_batch.n_threads = key[2]
            params.warmup = False  # our own warm-up below measures the speed as well
            params.verbosity = 0  # llama.cpp logs every request to stderr otherwise
            params.api_keys = [secrets.token_urlsafe(24)]  # nobody else may use the HTTP port it opens
            if not _SERVERS:
                atexit.register(shutdown)  # after the program's own atexit handlers (LIFO)
            _SERVERS[key] = xllamacpp.Server(params)
            _SPEEDS[key] = measure_speed(_SERVERS[key])
        return _SERVERS[key]


def measured_speed(key: Key) -> Speed | None:
    return _SPEEDS.get(key)


def measure_speed(engine: Any) -> Speed:
    """Tokens/s of prompt evaluation and of generation, from one short generation (llama.cpp's
    own timings). A short prompt evaluates slower per token than a long one: a safe side."""
    started = time.perf_counter()
    reply = engine.handle_chat_completions({
        "messages": [{"role": "user", "content": WARMUP_PROMPT}], "max_tokens": WARMUP_TOKENS,
        "temperature": 0.0, "ignore_eos": True, "cache_prompt": False})
    timings = reply.get("timings") or {}
    prompt_tps = float(timings.get("prompt_per_second") or 0.0)
    completion_tps = float(timings.get("predicted_per_second") or 0.0)
    if prompt_tps <= 0 or completion_tps <= 0:  # no timings reported: the whole call as generation
        usage = reply.get("usage") or {}
        tokens = int(usage.get("completion_tokens") or WARMUP_TOKENS)
        completion_tps = tokens / max(1e-3, time.perf_counter() - started)
        prompt_tps = 10 * completion_tps
    return Speed(prompt_tps, completion_tps)


_SHUT_DOWN = threading.Event()


def shutdown() -> None:
    """Cancel and join the calls still running, then stop and free every loaded model, in that
    order. Registered with atexit when the first model loads; safe to call more than once."""
    _SHUT_DOWN.set()
    if not abandon_all(_SHUTDOWN_WAIT_S):
        # A generation still holds a server: freeing it now would crash. Leave it to the OS.
        return
    with _SERVERS_LOCK:
        engines = list(_SERVERS.values())
        _SERVERS.clear()
    while engines:
        engines.pop()  # the last reference: the server's destructor stops its loop and joins it


class LlamaCppChat(LocalChatModel):
    model_path: str
    n_ctx: int = 4096  # enough for the longest stage prompt with a catalog vocabulary
    threads: int = 0  # 0: default_threads()
    decodes_json_schema: ClassVar[bool] = True

    _key: Key = PrivateAttr(default=("", 0, 0))

    def model_post_init(self, context: Any) -> None:
        self._key = server_key(self.model_path, self.n_ctx, self.threads or default_threads())
        server(self._key)  # load (and measure) now: a bad file fails at start-up, not on a turn

    def speed(self) -> Speed | None:
        """Tokens/s measured when the model loaded."""
        return measured_speed(self._key)

    @property
    def _llm_type(self) -> str:
        return "xllamacpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "max_tokens": self.max_tokens, "temperature": self.temperature}

    def complete(self, messages: list[dict[str, Any]], stop: list[str],
                 json_schema: dict[str, Any] | None = None) -> Completion:
        request: dict[str, Any] = {
            "messages": text_only(messages, "llamacpp"),
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            # llama.cpp stops generating by itself at this deadline, so a call abandoned by the
            # caller's timeout does not keep the model busy into the next turn.
            "t_max_predict_ms": int(self.timeout_s * 1000),
        }
        if json_schema is not None:  # llama.cpp compiles the schema to a grammar: only fitting replies
            request["response_format"] = {"type": "json_schema",
                                          "json_schema": {"name": "answer", "schema": json_schema}}
        elif self.json_mode:
            request["response_format"] = {"type": "json_object"}  # grammar-constrained: always parses
        if stop:
            request["stop"] = stop
        request["stream"] = True  # token by token, so that an abandoned call can be stopped
        request["stream_options"] = {"include_usage": True}  # the token counts in the last chunk
        parts: list[str] = []
        final: dict[str, Any] = {}

        def on_chunk(chunk: Any) -> bool:  # True tells llama.cpp to stop: it cancels the task
            if isinstance(chunk, str):
                chunk = json.loads(chunk)
            if "error" in chunk:
                final["error"] = chunk["error"]
                return True
            for choice in chunk.get("choices") or []:
                parts.append(str((choice.get("delta") or {}).get("content") or ""))
            if chunk.get("usage"):
                final["usage"] = chunk["usage"]
            return cancelled()

        reply = server(self._key).handle_chat_completions(request, on_chunk)
        if isinstance(reply, dict) and "error" in reply:
            final["error"] = reply["error"]
        if "error" in final:
            raise RuntimeError(f"llama.cpp: {final['error']}")
        if cancelled():
            raise RuntimeError("llama.cpp: generation stopped, the call was abandoned")
        usage = final.get("usage") or {}
        return Completion("".join(parts), int(usage.get("prompt_tokens") or 0),
                          int(usage.get("completion_tokens") or 0))
