"""The one error a template, a parameter value or a function's arguments raise."""

from __future__ import annotations


class TemplateError(ValueError):
    """A template, parameter or function error a user caused: the API answers 400 with it.

    `path` says where (e.g. "resources.web.properties.flavor", "" if global); `str(err)`
    is the full message, the path included.
    """

    def __init__(self, message: str, path: str = "") -> None:
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


def join_path(path: str, key: str | int) -> str:
    """`path` one step further: ".key" for a map key, "[i]" for a list index."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key
