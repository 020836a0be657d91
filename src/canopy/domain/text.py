"""Text no column can keep: a lone surrogate (not valid Unicode, so not UTF-8) and NUL
(valid Unicode that no PostgreSQL text column holds).

The API's edge refuses both in a JSON body (`canopy.api.valid_text`). A document that
arrives as a string inside the body (a template or adopt data sent as text, a nested
template in `files`, a `json` parameter's value) is decoded past the edge, and its
escapes (`"\\ud800"`, `"\\u0000"`, YAML's `"\\0"`) make the same characters: whoever
decodes one checks it here, so the answer is the same 400 as for the body's own values.
"""

from __future__ import annotations

import re
from typing import Any

from canopy.domain.errors import InvalidRequest

SURROGATE = re.compile("[\ud800-\udfff]")
NUL = re.compile("\x00")

SURROGATE_WHY = (
    "it holds a lone surrogate (a \\uD800-\\uDFFF escape without its pair), which is not "
    "valid Unicode text."
)
NUL_WHY = "NUL characters are not allowed."


def first_string(doc: Any, bad: re.Pattern[str], root: str = "") -> str | None:
    """The path (under `root`) of the first string or key in `doc` in which `bad` is
    found; "(the body)" or "(a key of the body)" for the top of a document without root."""
    stack: list[tuple[Any, str]] = [(doc, root)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            if bad.search(node):
                return where or "(the body)"
        elif isinstance(node, dict):
            for key, value in node.items():
                inner = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and bad.search(key):
                    return f"{where} (a key)" if where else "(a key of the body)"
                stack.append((value, inner))
        elif isinstance(node, list):
            stack.extend((value, f"{where}[{i}]") for i, value in enumerate(node))
    return None


def text_problem(doc: Any, root: str) -> str | None:
    """What is wrong with the decoded document `doc` (found at `root`), or None."""
    for bad, why in ((SURROGATE, SURROGATE_WHY), (NUL, NUL_WHY)):
        where = first_string(doc, bad, root)
        if where is not None:
            return f"Invalid input for field/attribute {where}: {why}"
    return None


def check_text(doc: Any, root: str) -> None:
    """InvalidRequest (a 400, nothing written) if `doc`, decoded from text, holds a lone
    surrogate or a NUL."""
    problem = text_problem(doc, root)
    if problem is not None:
        raise InvalidRequest(problem)
