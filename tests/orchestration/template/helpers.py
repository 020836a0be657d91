"""Shared pieces of the template tests: a stack identity and a fake ResolveContext."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from canopy.orchestration.template import (
    BoundTemplate,
    StackIdentity,
    Template,
    TemplateError,
    parse_template,
)

IDENTITY = StackIdentity(name="web", id="5f1c0b9e-stack", project_id="proj-1")


class FakeResources:
    """What an engine would know: physical ids and attributes of live resources."""

    def __init__(
        self,
        ids: Mapping[str, str] | None = None,
        attrs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.ids = dict(ids or {})
        self.attrs = {k: dict(v) for k, v in (attrs or {}).items()}
        self.attribute_calls: list[tuple[str, list[Any]]] = []

    def reference(self, resource: str) -> Any:
        return self.ids.get(resource)

    def attribute(self, resource: str, path: Sequence[Any]) -> Any:
        self.attribute_calls.append((resource, list(path)))
        attrs = self.attrs.get(resource)
        if attrs is None:
            return None
        if not path:
            return dict(attrs)
        return attrs.get(path[0])


def hot(version: str = "2018-08-31", **sections: Any) -> dict[str, Any]:
    return {"heat_template_version": version, **sections}


def one_output(value: Any, version: str = "2018-08-31", **sections: Any) -> dict[str, Any]:
    """A template whose output `out` is `value`, with a resource `r` to refer to."""
    sections.setdefault("resources", {"r": {"type": "OS::Heat::None"}})
    return hot(version, outputs={"out": {"value": value}}, **sections)


def bind(
    raw: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    files: Mapping[str, str] | None = None,
) -> BoundTemplate:
    return parse_template(raw, files).bind(params or {}, IDENTITY)


def evaluate(
    value: Any,
    version: str = "2018-08-31",
    ctx: FakeResources | None = None,
    params: Mapping[str, Any] | None = None,
    files: Mapping[str, str] | None = None,
    **sections: Any,
) -> Any:
    """The value of output `out` = `value`, resolved."""
    bound = bind(one_output(value, version, **sections), params, files)
    return bound.resolve(bound.outputs()["out"].value, ctx or FakeResources())


def refused(raw: Mapping[str, Any], files: Mapping[str, str] | None = None) -> TemplateError:
    """The error parsing `raw` raises (fails the test if none)."""
    try:
        parse_template(raw, files)
    except TemplateError as e:
        return e
    raise AssertionError("the template was accepted")


def parsed(raw: Mapping[str, Any]) -> Template:
    return parse_template(raw)
