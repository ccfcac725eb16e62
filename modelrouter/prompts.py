"""Prompt encapsulation: ``[prompts.NAME]`` templates turned into chat requests.

A template names its variables with ``{name}`` placeholders (a Python identifier in
braces); ``{{`` and ``}}`` stand for literal braces, and any other brace is kept as
written, so JSON examples inside a template need no escaping. The ``system`` text may
use placeholders too. Every variable is required: a missing one and an unknown one
are both a 400 that names them, over HTTP (``POST /v1/prompts/{name}``) and MCP alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from modelrouter.errors import RouterError, bad_request
from modelrouter.settings import PromptSettings

_FIELD = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def template_variables(*texts: str | None) -> list[str]:
    """The placeholder names in ``texts``, in order of first appearance, each once."""
    names: list[str] = []
    for text in texts:
        for m in _FIELD.finditer(text or ""):
            name = m.group(1)
            if name and name not in names:
                names.append(name)
    return names


def prompt_variables(prompt: PromptSettings) -> list[str]:
    """The variables a configured prompt takes (from its system text and template)."""
    return template_variables(prompt.system, prompt.template)


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace every placeholder of ``text`` by its value (all must be present)."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        return values[name] if name else m.group(0)[0]

    return _FIELD.sub(sub, text)


def check_variables(name: str, prompt: PromptSettings, given: Mapping[str, Any]) -> dict[str, str]:
    """Validate ``given`` against the prompt's variables; return them as strings.

    Raises a 400 naming every missing and every unknown variable at once.
    """
    wanted = prompt_variables(prompt)
    missing = [v for v in wanted if v not in given]
    unknown = sorted(k for k in given if k not in wanted)
    problems = []
    if missing:
        problems.append("missing variable(s): " + ", ".join(missing))
    if unknown:
        problems.append("unknown variable(s): " + ", ".join(unknown))
    if problems:
        takes = ", ".join(wanted) if wanted else "no variables"
        raise bad_request(
            f"Prompt {name!r}: {'; '.join(problems)} (it takes: {takes}).",
            "variables",
            "invalid_variables",
        )
    values: dict[str, str] = {}
    for key, value in given.items():
        if isinstance(value, str):
            values[key] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            values[key] = str(value)
        else:
            raise bad_request(
                f"Prompt {name!r}: variable {key!r} must be a string or a number.",
                "variables",
                "invalid_variables",
            )
    return values


def render_messages(
    name: str, prompt: PromptSettings, given: Mapping[str, Any]
) -> list[dict[str, str]]:
    """The chat messages of a prompt filled with ``given``: optional system, then user."""
    values = check_variables(name, prompt, given)
    messages = []
    if prompt.system:
        messages.append({"role": "system", "content": fill(prompt.system, values)})
    messages.append({"role": "user", "content": fill(prompt.template, values)})
    return messages


def find_prompt(prompts: Mapping[str, PromptSettings], name: str) -> PromptSettings:
    """The configured prompt ``name`` or a 404 listing the ones that exist."""
    prompt = prompts.get(name)
    if prompt is None:
        known = ", ".join(sorted(prompts)) or "none configured"
        raise RouterError(
            404,
            f"The prompt {name!r} does not exist (prompts: {known}).",
            code="prompt_not_found",
        )
    return prompt


def prompt_chat_body(
    prompts: Mapping[str, PromptSettings], name: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    """Turn a ``POST /v1/prompts/{name}`` body into a chat completion body.

    ``variables`` fill the template; every other field is a chat parameter passed on
    as is (``stream``, ``temperature``, ``max_tokens``...). ``model`` defaults to the
    prompt's route (else the default route); a client's ``model`` or ``models``
    overrides it. ``messages`` is refused: the prompt supplies them.
    """
    prompt = find_prompt(prompts, name)
    variables = body.get("variables", {})
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        raise bad_request("'variables' must be an object of name: value.", "variables")
    if "messages" in body:
        raise bad_request(
            f"'messages' cannot be sent to a prompt: prompt {name!r} supplies them; "
            "send 'variables' instead.",
            "messages",
        )
    chat = {k: v for k, v in body.items() if k != "variables"}
    chat["messages"] = render_messages(name, prompt, variables)
    if chat.get("model") is None and prompt.route is not None:
        chat["model"] = prompt.route
    return chat
