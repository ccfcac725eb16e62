"""The Gemini ``generateContent`` request schema, written out as strict checks.

The google-genai SDK's types describe the SDK's own surface (and Vertex-only fields),
not what the Generative Language API accepts on the wire, so the rules are spelled
out here: unknown fields (the API's proto JSON parser takes camelCase and
snake_case names alike), roles, the one-data-field rule of a part, function call and
response turns, function declarations and their OpenAPI ``parameters`` subset,
``toolConfig`` and ``generationConfig``. Messages follow the API's wording.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any


class Invalid(Exception):
    """A request that the real API would answer with 400 INVALID_ARGUMENT."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def camel(name: str) -> str:
    """``system_instruction`` → ``systemInstruction`` (camelCase names pass unchanged)."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _fields(*names: str) -> frozenset[str]:
    return frozenset(names)


TOP_LEVEL = _fields(
    "contents", "systemInstruction", "tools", "toolConfig", "safetySettings",
    "generationConfig", "cachedContent", "serviceTier", "store",
)  # fmt: skip
DATA_FIELDS = _fields(
    "text", "inlineData", "fileData", "functionCall", "functionResponse",
    "executableCode", "codeExecutionResult", "toolCall", "toolResponse",
)  # fmt: skip
PART_FIELDS = DATA_FIELDS | _fields(
    "thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution"
)
GENERATION_FIELDS = _fields(
    "temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences",
    "responseLogprobs", "logprobs", "presencePenalty", "frequencyPenalty", "seed",
    "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities",
    "mediaResolution", "speechConfig", "thinkingConfig", "imageConfig",
    "enableEnhancedCivicAnswers",
)  # fmt: skip
TOOL_FIELDS = _fields(
    "functionDeclarations", "googleSearch", "googleSearchRetrieval", "codeExecution",
    "urlContext", "computerUse", "fileSearch", "googleMaps", "mcpServers",
)  # fmt: skip
DECLARATION_FIELDS = _fields(
    "name", "description", "parameters", "parametersJsonSchema", "response",
    "responseJsonSchema", "behavior",
)  # fmt: skip
SCHEMA_FIELDS = _fields(
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
)  # fmt: skip
"""The OpenAPI subset that ``parameters`` takes (``parametersJsonSchema`` takes any)."""
SCHEMA_TYPES = _fields("STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL")
MODES = _fields("AUTO", "ANY", "NONE", "VALIDATED")
MIME_TYPES = _fields("text/plain", "application/json", "text/x.enum")
FUNCTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")


def _obj(
    value: Any, path: str, allowed: frozenset[str], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``value`` as an object with camelCase keys; unknown or missing fields are errors."""
    if not isinstance(value, dict):
        raise Invalid(f"Invalid value at '{path}', expected an object", path)
    out = {camel(k): v for k, v in value.items()}
    if len(out) != len(value):
        raise Invalid(f"Invalid JSON payload received. Duplicate field at '{path}'", path)
    for key, original in zip(out, value, strict=True):
        if key not in allowed:
            where = f" at '{path}'" if path else ""
            raise Invalid(
                f'Invalid JSON payload received. Unknown name "{original}"{where}: '
                "Cannot find field.",
                f"{path}.{original}".lstrip("."),
            )
    for key in required:
        if key not in out:
            raise Invalid(f"* GenerateContentRequest.{path}.{key}: {key} is required", path)
    return out


def _part(part: Any, path: str, role: str) -> dict[str, Any]:
    p = _obj(part, path, PART_FIELDS)
    data = [k for k in p if k in DATA_FIELDS]
    if not data:
        raise Invalid(
            f"* GenerateContentRequest.{path}.data: required oneof field 'data' must have "
            "one initialized field",
            path,
        )
    if len(data) > 1:
        raise Invalid(
            f"Invalid value at '{path}' (oneof), oneof field 'data' is already set. "
            f"Cannot set '{data[1]}'",
            path,
        )
    kind = data[0]
    if kind == "text" and not isinstance(p["text"], str):
        raise Invalid(f"Invalid value at '{path}.text' (TYPE_STRING)", path)
    if kind == "inlineData":
        blob = _obj(
            p[kind], f"{path}.inline_data", _fields("mimeType", "data"), ("mimeType", "data")
        )
        try:
            base64.b64decode(str(blob["data"]), validate=True)
        except binascii.Error:
            raise Invalid(
                f"Invalid value at '{path}.inline_data.data' (TYPE_BYTES)", path
            ) from None
    if kind == "fileData":
        _obj(p[kind], f"{path}.file_data", _fields("mimeType", "fileUri"), ("fileUri",))
    if kind == "functionCall":
        if role != "model":
            raise Invalid("Please ensure that function call parts are in a model turn.", path)
        fc = _obj(p[kind], f"{path}.function_call", _fields("id", "name", "args"), ("name",))
        if "args" in fc and not isinstance(fc["args"], dict):
            raise Invalid(f"Invalid value at '{path}.function_call.args' (Struct)", path)
    if kind == "functionResponse":
        if role != "user":
            raise Invalid("Please ensure that function response parts are in a user turn.", path)
        allowed = _fields("id", "name", "response", "willContinue", "scheduling", "parts")
        fr = _obj(p[kind], f"{path}.function_response", allowed, ("name", "response"))
        if not isinstance(fr["response"], dict):
            raise Invalid(f"Invalid value at '{path}.function_response.response' (Struct)", path)
    return p


def _contents(contents: Any) -> None:
    if not isinstance(contents, list) or not contents:
        raise Invalid("* GenerateContentRequest.contents: contents is not specified", "contents")
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for i, content in enumerate(contents):
        c = _obj(content, f"contents[{i}]", _fields("role", "parts"))
        role = c.get("role", "user")
        if role not in ("user", "model"):
            raise Invalid("Please use a valid role: user, model.", f"contents[{i}].role")
        parts = c.get("parts")
        if not isinstance(parts, list) or not parts:
            raise Invalid(
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.",
                f"contents[{i}].parts",
            )
        turns.append(
            (role, [_part(p, f"contents[{i}].parts[{j}]", role) for j, p in enumerate(parts)])
        )
    _check_function_turns(turns)


def _check_function_turns(turns: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """Calls follow a user or response turn; responses answer every call of the turn before."""
    for t, (_, parts) in enumerate(turns):
        calls = [p["functionCall"]["name"] for p in parts if "functionCall" in p]
        responses = [p["functionResponse"]["name"] for p in parts if "functionResponse" in p]
        if calls and (t == 0 or turns[t - 1][0] != "user"):
            raise Invalid(
                "Please ensure that function call turn comes immediately after a user turn "
                "or after a function response turn."
            )
        if not responses:
            continue
        prev = turns[t - 1][1] if t > 0 and turns[t - 1][0] == "model" else []
        prev_calls = [p["functionCall"]["name"] for p in prev if "functionCall" in p]
        if not prev_calls:
            raise Invalid(
                "Please ensure that function response turn comes immediately after a function "
                "call turn."
            )
        if len(responses) != len(prev_calls):
            raise Invalid(
                "Please ensure that the number of function response parts is equal to the "
                "number of function call parts of the function call turn."
            )
        if sorted(responses) != sorted(prev_calls):
            raise Invalid(
                "Please ensure that the function response names match the function call names "
                "of the function call turn."
            )


def _schema(schema: Any, path: str) -> None:
    s = _obj(schema, path, SCHEMA_FIELDS)
    if "type" in s and str(s["type"]).upper() not in SCHEMA_TYPES:
        raise Invalid(f"Invalid value at '{path}.type' (type.googleapis.com/google.ai.Type)", path)
    for name, sub in (s.get("properties") or {}).items():
        _schema(sub, f"{path}.properties[{name}].value")
    if "items" in s:
        _schema(s["items"], f"{path}.items")
    for i, sub in enumerate(s.get("anyOf") or ()):
        _schema(sub, f"{path}.any_of[{i}]")


def _tools(body: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    tools = body.get("tools")
    for i, tool in enumerate(tools if isinstance(tools, list) else ()):
        t = _obj(tool, f"tools[{i}]", TOOL_FIELDS)
        for j, decl in enumerate(t.get("functionDeclarations") or ()):
            path = f"tools[{i}].function_declarations[{j}]"
            d = _obj(decl, path, DECLARATION_FIELDS, ("name",))
            if not FUNCTION_NAME.match(str(d["name"])):
                raise Invalid(
                    f"* GenerateContentRequest.{path}.name: Invalid function name. Must start "
                    "with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), "
                    "underscores (_), dots (.), colons (:), or dashes (-), with a maximum "
                    "length of 128.",
                    f"{path}.name",
                )
            if "parameters" in d and "parametersJsonSchema" in d:
                raise Invalid(
                    f"* GenerateContentRequest.{path}: parameters and parameters_json_schema "
                    "cannot both be set.",
                    path,
                )
            if "parameters" in d:
                _schema(d["parameters"], f"{path}.parameters")
            elif "parametersJsonSchema" in d and not isinstance(d["parametersJsonSchema"], dict):
                raise Invalid(f"Invalid value at '{path}.parameters_json_schema'", path)
            names.add(str(d["name"]))
    return names


def _tool_config(config: Any, names: set[str]) -> None:
    c = _obj(config, "tool_config", _fields("functionCallingConfig", "retrievalConfig"))
    fcc = c.get("functionCallingConfig")
    if fcc is None:
        return
    f = _obj(fcc, "tool_config.function_calling_config", _fields("mode", "allowedFunctionNames"))
    mode = f.get("mode", "AUTO")
    if mode not in MODES:
        raise Invalid(
            "Invalid value at 'tool_config.function_calling_config.mode' "
            f'(type.googleapis.com/google.ai.generativelanguage.v1beta.Mode), "{mode}"'
        )
    allowed = f.get("allowedFunctionNames")
    if allowed is not None:
        if mode not in ("ANY", "VALIDATED"):
            raise Invalid(
                "* GenerateContentRequest.tool_config.function_calling_config."
                "allowed_function_names: only allowed when mode is ANY or VALIDATED."
            )
        for name in allowed:
            if name not in names:
                raise Invalid(f"Function {name!r} in allowed_function_names is not declared.")


def _number(g: dict[str, Any], key: str, low: float, high: float, integer: bool = False) -> None:
    if key not in g:
        return
    v = g[key]
    ok = isinstance(v, int) if integer else isinstance(v, int | float)
    if not ok or isinstance(v, bool) or not low <= v <= high:
        raise Invalid(
            f"* GenerateContentRequest.generation_config.{key}: must be a number in "
            f"[{low:g}, {high:g}]",
            f"generation_config.{key}",
        )


def _generation_config(config: Any) -> None:
    g = _obj(config, "generation_config", GENERATION_FIELDS)
    _number(g, "temperature", 0, 2)
    _number(g, "topP", 0, 1)
    _number(g, "topK", 1, 1_000_000, integer=True)
    _number(g, "candidateCount", 1, 8, integer=True)
    _number(g, "maxOutputTokens", 1, 10_000_000, integer=True)
    _number(g, "presencePenalty", -2, 2)
    _number(g, "frequencyPenalty", -2, 2)
    stops = g.get("stopSequences")
    if stops is not None and (
        not isinstance(stops, list) or len(stops) > 5 or not all(isinstance(s, str) for s in stops)
    ):
        raise Invalid(
            "* GenerateContentRequest.generation_config.stop_sequences: at most 5 strings"
        )
    mime = g.get("responseMimeType", "text/plain")
    if mime not in MIME_TYPES:
        raise Invalid(
            f"* GenerateContentRequest.generation_config.response_mime_type: {mime!r} "
            "is not supported"
        )
    if ("responseSchema" in g or "responseJsonSchema" in g) and mime == "text/plain":
        raise Invalid(
            "* GenerateContentRequest.generation_config.response_mime_type: response_mime_type "
            "must be set to application/json or text/x.enum when a response schema is given."
        )


def validate(body: Any) -> None:
    """Raise :class:`Invalid` if ``body`` is not a valid ``generateContent`` request."""
    b = _obj(body, "", TOP_LEVEL)
    _contents(b.get("contents"))
    if "systemInstruction" in b:
        si = _obj(b["systemInstruction"], "system_instruction", _fields("role", "parts"))
        for j, p in enumerate(si.get("parts") or ()):
            if "text" not in _part(p, f"system_instruction.parts[{j}]", "user"):
                raise Invalid("system_instruction parts must be text.")
    names = _tools(b)
    if "toolConfig" in b:
        _tool_config(b["toolConfig"], names)
    if "generationConfig" in b:
        _generation_config(b["generationConfig"])
    for i, s in enumerate(b.get("safetySettings") or ()):
        _obj(
            s, f"safety_settings[{i}]", _fields("category", "threshold"), ("category", "threshold")
        )
