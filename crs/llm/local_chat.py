"""A LangChain chat model over a model that runs in this process (llama.cpp, transformers).

Neither backend has a LangChain integration that fits: ``llama-cpp-python``'s needs a ~6 minute
source build and ``ChatHuggingFace`` needs ``return_full_text=False`` tricks and a hub-shaped
pipeline. A subclass here only turns OpenAI-style message dicts into a reply text
(:meth:`LocalChatModel.complete`); the base makes it a :class:`BaseChatModel`, so the stages,
the timeout and the fakes treat every backend alike.
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatResult


@dataclass(frozen=True)
class Completion:
    """A reply text with the token counts, from backends that report them."""

    text: str
    prompt_tokens: int
    completion_tokens: int


class LocalChatModel(BaseChatModel):
    max_tokens: int = 512  # generation is the slow part on a CPU: bound it
    temperature: float = 0.0  # stages want the same answer for the same turn
    timeout_s: float = 30.0  # passed to backends that can stop generating by themselves
    json_mode: bool = False  # ask the backend to constrain the reply to one JSON object, where it can
    decodes_json_schema: ClassVar[bool] = False  # True where complete() honours json_schema
    takes_images: ClassVar[bool] = False  # text_only() refuses image blocks: no projector is loaded

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        openai_messages = convert_to_openai_messages(messages)
        reply = self.complete(openai_messages, stop=list(stop or []),  # type: ignore[arg-type]
                              json_schema=kwargs.get("json_schema"))
        if isinstance(reply, str):
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])
        usage = {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens,
                 "total_tokens": reply.prompt_tokens + reply.completion_tokens}
        message = AIMessage(content=reply.text, usage_metadata=usage,  # type: ignore[arg-type]
                            response_metadata={"model_name": self._llm_type})
        return ChatResult(generations=[ChatGeneration(message=message)])

    @abstractmethod
    def complete(self, messages: list[dict[str, Any]], stop: list[str],
                 json_schema: dict[str, Any] | None = None) -> str | Completion:
        """The reply to OpenAI-style chat messages (``{"role", "content"}`` dicts), constrained to
        ``json_schema`` where the backend can (``model.bind(json_schema=...)`` passes one)."""


def text_only(messages: list[dict[str, Any]], backend: str) -> list[dict[str, str]]:
    """Messages with string content; ValueError for image blocks (a text model cannot see them)."""
    out = []
    for message in messages:
        content = message.get("content", "")
        if not isinstance(content, str):
            parts = []
            for block in content:
                if isinstance(block, dict) and block.get("type") not in ("text", None):
                    raise ValueError(f"the {backend} backend takes text only, not {block.get('type')} content")
                parts.append(block.get("text", "") if isinstance(block, dict) else str(block))
            content = "".join(parts)
        out.append({"role": str(message.get("role", "user")), "content": content})
    return out
