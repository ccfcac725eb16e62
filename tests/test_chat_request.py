"""ChatRequest read from JSON bytes: members decoded on demand, the rest forwarded as sent."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from providers.base import ChatRequest, InvalidBody

MSGS = [{"role": "user", "content": "hi"}]


def joined(parts: list[bytes | memoryview]) -> bytes:
    return b"".join(parts)


def pairs(raw: bytes) -> list[tuple[str, Any]]:
    """Top-level members in order, duplicates kept (``json`` would keep only the last)."""
    out: list[list[tuple[str, Any]]] = []

    def hook(p: list[tuple[str, Any]]) -> dict[str, Any]:
        out.append(p)
        return dict(p)

    json.loads(raw, object_pairs_hook=hook)
    return out[-1]


def test_members_are_decoded_on_demand() -> None:
    raw = b'{"messages": [{"role": "user", "content": "hi"}], "model": "a", "stream": true}'
    req = ChatRequest.from_json(raw)
    assert req.stream is True
    assert req.get("model") == "a"
    assert req.get("temperature") is None
    assert req.is_nonempty_array("messages")
    assert req.body == orjson.loads(raw)


def test_upstream_body_keeps_member_bytes_and_sets_model() -> None:
    # 1.50 and the \u00e9 escape would not survive a decode and re-encode.
    raw = (
        b'{ "messages" : [{"role":"user","content":"caf\\u00e9"}],\n'
        b' "temperature": 1.50, "model": "route", "models": ["x"], "seed": 7 }'
    )
    out = joined(ChatRequest.from_json(raw).json_with_model("gpt-up"))
    assert b'"temperature":1.50' in out
    assert b'"caf\\u00e9"' in out
    assert pairs(out) == [
        ("messages", [{"role": "user", "content": "café"}]),
        ("temperature", 1.5),
        ("seed", 7),
        ("model", "gpt-up"),
    ]


def test_duplicate_and_escaped_model_members_leave_exactly_one() -> None:
    # Decoders keep the last of a repeated member; "mod\u0065l" is "model" too.
    raw = b'{"model":"a","messages":[],"mod\\u0065l":"b","models":["c"],"model":"d"}'
    req = ChatRequest.from_json(raw)
    assert req.get("model") == "d"
    out = joined(req.json_with_model("up"))
    assert [k for k, _ in pairs(out)] == ["messages", "model"]
    assert orjson.loads(out)["model"] == "up"


@pytest.mark.parametrize("form", ["json", "dict"])
def test_model_in_other_letter_cases_is_not_forwarded(form: str) -> None:
    # Go's encoding/json (Ollama) matches "MODEL" to the model field.
    body = {"messages": MSGS, "MODEL": "big", "Models": ["x"], "model": "m", "modelx": 1}
    raw = orjson.dumps(body)
    req = ChatRequest.from_json(raw) if form == "json" else ChatRequest.from_body(body)
    assert pairs(joined(req.json_with_model("up"))) == [
        ("messages", MSGS),
        ("modelx", 1),
        ("model", "up"),
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"messages":[1]}', True),
        (b'{"messages": [ \n\t{"role":"user"} ] }', True),
        (b'{"messages":[]}', False),
        (b'{"messages":[ \r\n ]}', False),
        (b'{"messages":{}}', False),
        (b'{"messages":"hi"}', False),
        (b'{"messages":null}', False),
        (b'{"model":"m"}', False),
    ],
)
def test_nonempty_array_check_without_decoding(raw: bytes, expected: bool) -> None:
    assert ChatRequest.from_json(raw).is_nonempty_array("messages") is expected
    assert ChatRequest.from_body(orjson.loads(raw)).is_nonempty_array("messages") is expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty"),
        (b" \n", "empty"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b'{"messages": [1,]}', "not valid JSON"),
        (b'{"messages": [1]', "not valid JSON"),
        (b'{"messages": [1]} x', "not valid JSON"),
    ],
)
def test_bodies_that_are_not_json_objects(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidBody, match=message):
        ChatRequest.from_json(raw)


def test_invalid_utf8_inside_a_member_fails_when_that_member_is_decoded() -> None:
    # Splitting checks the JSON grammar; the text of strings is checked on decoding,
    # so a passthrough forwards such a member as is and an adapter gets a 400.
    raw = b'{"model":"m","messages":[{"role":"user","content":"\xff"}]}'
    req = ChatRequest.from_json(raw)
    assert req.get("model") == "m"
    assert req.is_nonempty_array("messages")
    assert b"\xff" in joined(req.json_with_model("up"))
    with pytest.raises(InvalidBody, match="not valid JSON"):
        _ = req.body
    bad_model = ChatRequest.from_json(b'{"model":"\xff","messages":[1]}')
    with pytest.raises(InvalidBody, match="'model'"):
        bad_model.get("model")


def test_decoded_body_gives_the_same_upstream_object() -> None:
    body = {"messages": MSGS, "model": "a", "models": ["b"], "stream": True}
    req = ChatRequest.from_body(body)
    out = joined(req.json_with_model("up"))
    assert pairs(out) == [("messages", MSGS), ("stream", True), ("model", "up")]
    assert body["model"] == "a"  # not mutated


def test_names_that_are_not_utf8_and_deep_nesting_are_400s() -> None:
    with pytest.raises(InvalidBody, match="not valid JSON"):
        ChatRequest.from_json(b'{"\xff": 1, "messages": [1]}')
    for depth in (1000, 5000):
        with pytest.raises(InvalidBody, match="nested too deeply"):
            ChatRequest.from_json(b'{"x": ' + b"[" * depth + b"]" * depth + b"}")
    deep = b'{"messages": [1], "x": ' + b"[" * 500 + b"]" * 500 + b"}"
    assert b"[" * 500 in joined(ChatRequest.from_json(deep).json_with_model("up"))


@pytest.mark.parametrize("bad", [b'"\xff"', b"1e400"])
def test_stream_options_are_decoded_up_front(bad: bytes) -> None:
    raw = b'{"messages":[1],"stream":true,"stream_options":{"include_usage":true,"x":' + bad
    with pytest.raises(InvalidBody, match="'stream_options'"):
        ChatRequest.from_json(raw + b"}}")


def test_include_usage_from_either_form() -> None:
    body = {"messages": MSGS, "stream": True, "stream_options": {"include_usage": True}}
    assert ChatRequest.from_body(body).include_usage
    assert ChatRequest.from_json(orjson.dumps(body)).include_usage
    assert not ChatRequest.from_json(b'{"messages":[1],"stream":true}').include_usage


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -3, 2**40, 1.25, -0.5e-3])
    if kind in (2, 3):
        return "".join(rng.choice('ab "\\/\n\té€😀\x01') for _ in range(rng.randrange(8)))
    if kind in (4, 5):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.randrange(4))}


@pytest.mark.parametrize("seed", range(200))
def test_upstream_body_equals_decode_and_reencode(seed: int) -> None:
    """Any object, in any member order and spacing: same result as the decoded path."""
    rng = random.Random(seed)
    body: dict[str, Any] = {f"f{i}": _random_value(rng) for i in range(rng.randrange(6))}
    body["messages"] = [_random_value(rng)]
    if rng.random() < 0.5:
        body["model"] = "client-name"
    if rng.random() < 0.3:
        body["models"] = ["x", "y"]
    keys = list(body)
    rng.shuffle(keys)
    shuffled = {k: body[k] for k in keys}
    indent = rng.choice([None, 1, 2])
    raw = json.dumps(shuffled, indent=indent, ensure_ascii=rng.random() < 0.5).encode()
    expected = {k: v for k, v in body.items() if k not in ("model", "models")}
    expected["model"] = "upstream-id"
    from_bytes = orjson.loads(joined(ChatRequest.from_json(raw).json_with_model("upstream-id")))
    from_dict = orjson.loads(joined(ChatRequest.from_body(body).json_with_model("upstream-id")))
    assert from_bytes == expected == from_dict
