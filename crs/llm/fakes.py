"""A scripted chat model for tests and offline demos of the LLM stages.

LangChain's :class:`FakeListChatModel` plays its replies in turn (and ``sleep`` makes it slow);
this subclass also keeps every message list it was sent, so a test can check what a stage put
in its prompt (the vocabulary, the numbered items, the picture). With ``by_prompt`` it picks the
reply by a stable hash of the prompt instead, so the same prompt always gets the same reply,
whatever was asked before: what an evaluation run needs to be reproducible when conversations
are sharded, resumed or share a model (``--llm fake:SCRIPT.json`` with ``{"by_prompt": [...]}``).
"""
from __future__ import annotations

import hashlib
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from pydantic import Field


class ScriptedChatModel(FakeListChatModel):
    received: list[list[BaseMessage]] = Field(default_factory=list)
    by_prompt: bool = False

    def _call(self, messages: list[BaseMessage], stop: list[str] | None = None,
              run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> str:
        self.received.append(list(messages))
        if self.by_prompt:
            digest = hashlib.sha256(self.prompt_text().encode("utf-8")).digest()
            return self.responses[int.from_bytes(digest[:8], "big") % len(self.responses)]
        return super()._call(messages, stop, run_manager, **kwargs)

    def prompt_text(self, call: int = -1) -> str:
        """All the text sent in one call (default: the last), for assertions."""
        parts = []
        for message in self.received[call]:
            content = message.content
            if isinstance(content, str):
                parts.append(content)
            else:
                parts += [b.get("text", "") for b in content if isinstance(b, dict)]
        return "\n".join(parts)
