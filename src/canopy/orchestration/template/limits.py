"""Bounds on the work a template can ask for: a template is user input, run on the loop.

Heat bounds templates by bytes (512 KiB) and resources per stack (1000); the limits here
bound what parsing and evaluating can cost, whatever the functions are asked to do.
"""

from __future__ import annotations

MAX_DEPTH = 50  # nesting of maps and lists, function calls included
MAX_NODES = 200_000  # maps, lists and scalars in one template
MAX_TEMPLATE_CHARS = 2_000_000  # characters of all strings (keys included)
MAX_RESOURCES = 1000  # as Heat's max_resources_per_stack
MAX_PARAMETERS = 1000
MAX_PATTERN_CHARS = 1000  # an allowed_pattern
MAX_REPEAT_ITEMS = 10_000  # elements one `repeat` may produce
MAX_DIGEST_INPUT = 1_000_000  # characters one `digest` may hash
MAX_RESULT_UNITS = 5_000_000  # characters and elements produced by one resolve call
