"""Bounds on the work a template can ask for: a template is user input, run on the loop.

Heat bounds templates by bytes (512 KiB) and resources per stack (1000); the limits here
bound what parsing and evaluating can cost, whatever the functions are asked to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canopy.orchestration.template.errors import TemplateError

MAX_DEPTH = 50  # nesting of maps and lists, function calls included
MAX_NODES = 200_000  # maps, lists and scalars in one template
MAX_TEMPLATE_CHARS = 2_000_000  # characters of all strings (keys included)
MAX_RESOURCES = 1000  # as Heat's max_resources_per_stack
MAX_PARAMETERS = 1000
MAX_PATTERN_CHARS = 1000  # an allowed_pattern
# One match of a pattern RE2 cannot run (a lookahead), on `regex`, and all such matches of
# one parse or bind of the parameters: that work runs on the API's event loop, so it is
# kept to what any other request may cost it (real patterns match in microseconds).
PATTERN_SECONDS = 0.02
PATTERN_BUDGET_SECONDS = 0.1
MAX_REPEAT_ITEMS = 10_000  # elements one `repeat` may produce
MAX_DIGEST_INPUT = 1_000_000  # characters one `digest` may hash
MAX_RESULT_UNITS = 5_000_000  # characters and elements produced by one resolve call
MAX_REPLACE_KEYS = 1000  # params of one str_replace / Fn::Replace


def check_size(raw: Any, what: str = "the template") -> None:
    """Refuse a value too deep or too large before anything walks it recursively."""
    nodes = chars = 0
    stack: list[tuple[Any, int]] = [(raw, 0)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            raise TemplateError(f"{what} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, Mapping):
            for k, v in value.items():
                chars += len(k) if isinstance(k, str) else 1
                stack.append((v, depth + 1))
        elif isinstance(value, list | tuple):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str):
            chars += len(value)
        if nodes > MAX_NODES or chars > MAX_TEMPLATE_CHARS:
            raise TemplateError(
                f"{what} is too large (at most {MAX_NODES} values and "
                f"{MAX_TEMPLATE_CHARS} characters)"
            )
