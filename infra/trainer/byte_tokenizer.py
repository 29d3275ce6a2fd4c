"""Byte-level tokenizer and chat template of the foundation student.

Ids 0..255 are the UTF-8 bytes of the text, then BOS=256, EOS=257, PAD=258 (vocab 259). There are no merges, so
any string round-trips exactly and the Node side (activities/evaluate/byte-tokenizer.ts) can re-implement it in a
few lines. The single-turn chat template is

    prompt part:      [BOS] + utf8("User: " + [system + "\n"] + user + "\nAssistant: ")
    completion part:  utf8(assistant) + [EOS]

Only the completion part is trained on. `tokenizer_spec()` is the JSON description written next to every saved
model (tokenizer.json) so that consumers never have to guess the template.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

BOS_ID = 256
EOS_ID = 257
PAD_ID = 258
VOCAB_SIZE = 259
IGNORE_INDEX = -100  # label value for positions that do not contribute to the loss

# Chat template, as constants (mirrored byte-for-byte in activities/evaluate/byte-tokenizer.ts).
USER_PREFIX = "User: "
SYSTEM_SEPARATOR = "\n"  # an optional system message is put before the user text, followed by this
ASSISTANT_PREFIX = "\nAssistant: "
TEMPLATE_VERSION = 1


def prompt_text(user: str, system: str | None = None) -> str:
    """The text of the prompt part (without BOS)."""
    body = f"{system}{SYSTEM_SEPARATOR}{user}" if system else user
    return f"{USER_PREFIX}{body}{ASSISTANT_PREFIX}"


def encode_text(text: str) -> list[int]:
    return list(text.encode("utf-8"))


def encode_prompt(user: str, system: str | None = None) -> list[int]:
    """[BOS] + bytes of the templated prompt: what generation starts from."""
    return [BOS_ID] + encode_text(prompt_text(user, system))


def encode_completion(assistant: str) -> list[int]:
    """Bytes of the assistant reply + [EOS]."""
    return encode_text(assistant) + [EOS_ID]


def decode(ids: Iterable[int], stop_at_eos: bool = True) -> str:
    """Bytes back to text; special ids are dropped, decoding stops at the first EOS (by default)."""
    out = bytearray()
    for i in ids:
        i = int(i)
        if i == EOS_ID and stop_at_eos:
            break
        if 0 <= i < 256:
            out.append(i)
    return out.decode("utf-8", errors="replace")


class InvalidSample(ValueError):
    pass


def split_messages(messages: Sequence[dict[str, Any]]) -> tuple[str, str | None, str]:
    """(user, system, assistant) of a chat row: the last user message, the last system message (optional, only
    if it precedes that user message) and the last assistant message (which must follow the user message)."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InvalidSample("messages must be a non-empty list")
    last_user = last_asst = last_sys = None
    for idx, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise InvalidSample(f"message {idx} has no string content")
        role = m.get("role")
        if role == "user":
            last_user = idx
        elif role == "assistant":
            last_asst = idx
        elif role == "system":
            last_sys = idx
    if last_user is None:
        raise InvalidSample("no user message")
    if last_asst is None or last_asst < last_user:
        raise InvalidSample("no assistant message after the last user message")
    system = messages[last_sys]["content"] if last_sys is not None and last_sys < last_user else None
    return messages[last_user]["content"], system, messages[last_asst]["content"]


def encode_chat(messages: Sequence[dict[str, Any]]) -> tuple[list[int], list[int]]:
    """(prompt_ids, completion_ids) of one training row."""
    user, system, assistant = split_messages(messages)
    return encode_prompt(user, system), encode_completion(assistant)


def tokenizer_spec() -> dict[str, Any]:
    """JSON description of the tokenizer + template (tokenizer.json in a model dir)."""
    return {
        "type": "byte",
        "vocab_size": VOCAB_SIZE,
        "byte_ids": "0..255 are UTF-8 bytes",
        "bos_id": BOS_ID,
        "eos_id": EOS_ID,
        "pad_id": PAD_ID,
        "chat_template": {
            "version": TEMPLATE_VERSION,
            "add_bos": True,
            "user_prefix": USER_PREFIX,
            "system_separator": SYSTEM_SEPARATOR,
            "assistant_prefix": ASSISTANT_PREFIX,
            "completion_suffix": "eos",
            "prompt": "[BOS] + utf8(user_prefix + (system + system_separator if system else '') + user + assistant_prefix)",
            "completion": "utf8(assistant) + [EOS]",
        },
    }
