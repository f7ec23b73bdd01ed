"""A local GGUF model run in-process by llama.cpp, through the ``xllamacpp`` prebuilt wheel.

``xllamacpp`` embeds llama.cpp's server: the model loads once, and each chat call goes straight
to the server's chat-completions handler in this process (chat template, stop words, sampling
and JSON grammar all done by llama.cpp; a JSON schema bound to the call becomes that grammar).
The server also opens an HTTP port on 127.0.0.1 that
we never use; a random API key keeps other local programs (or web pages: it allows any CORS
origin) from using it.
"""
from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path
from typing import Any, ClassVar

from pydantic import PrivateAttr

from .local_chat import Completion, LocalChatModel, text_only

_SERVERS: dict[tuple[str, int, int], Any] = {}
_SERVERS_LOCK = threading.Lock()


def default_threads() -> int:
    # llama.cpp's threads spin-wait on each other: on a small or busy machine, using every core
    # made prompt evaluation ~8x slower here (2 cores, one busy). Half the cores is a safe default.
    return max(1, (os.cpu_count() or 2) // 2)


def server(model_path: str, n_ctx: int, threads: int) -> Any:
    """The loaded model, once per process: the critique parser, the policy and a simulator that
    name the same GGUF share it instead of holding several copies in memory."""
    key = (str(Path(model_path).resolve()), n_ctx, threads)
    with _SERVERS_LOCK:
        if key not in _SERVERS:
            import xllamacpp  # the backends module checked that it is installed

            params = xllamacpp.CommonParams()
            params.model.path = key[0]
            params.n_ctx = n_ctx
            params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
            params.warmup = False  # the first real call warms it; a warmup only delays loading
            params.verbosity = 0  # llama.cpp logs every request to stderr otherwise
            params.api_keys = [secrets.token_urlsafe(24)]  # nobody else may use the HTTP port it opens
            _SERVERS[key] = xllamacpp.Server(params)
        return _SERVERS[key]


class LlamaCppChat(LocalChatModel):
    model_path: str
    n_ctx: int = 4096  # enough for the longest stage prompt with a catalog vocabulary
    threads: int = 0  # 0: default_threads()
    decodes_json_schema: ClassVar[bool] = True

    _server: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any) -> None:
        self._server = server(self.model_path, self.n_ctx, self.threads or default_threads())

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
        reply = self._server.handle_chat_completions(request)
        if "error" in reply:
            raise RuntimeError(f"llama.cpp: {reply['error']}")
        usage = reply.get("usage") or {}
        return Completion(str(reply["choices"][0]["message"].get("content") or ""),
                          int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
