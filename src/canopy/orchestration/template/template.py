"""A parsed template: what it declares, and binding it to parameter values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canopy.orchestration.template.bound import BoundTemplate
from canopy.orchestration.template.model import ConstraintCheck, ParameterInfo, StackIdentity
from canopy.orchestration.template.parse import Parsed, parse_sections


class Template:
    """A checked template; `bind` gives it parameter values and a stack identity."""

    def __init__(self, raw: Mapping[str, Any], parsed: Parsed, files: Mapping[str, str]) -> None:
        self.raw = raw
        self.files = files
        self.parsed = parsed
        self.version = parsed.version.date
        self.kind = parsed.version.kind
        self.description = parsed.description

    @property
    def version_key(self) -> str:
        """ "heat_template_version.2018-08-31" / "AWSTemplateFormatVersion.2010-09-09"."""
        return self.parsed.version.key

    def parameter_infos(self) -> list[ParameterInfo]:
        return [schema.info() for schema in self.parsed.schemas.values()]

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [dict(g) for g in self.parsed.groups]

    def resource_types(self) -> dict[str, str]:
        """Every resource's type, whatever its condition (for checks before binding)."""
        return {name: r.type for name, r in self.parsed.resources.items()}

    def bind(
        self,
        parameters: Mapping[str, Any],
        identity: StackIdentity,
        check: ConstraintCheck | None = None,
        *,
        strict: bool = True,
    ) -> BoundTemplate:
        """Parameter values checked and typed, conditions evaluated; TemplateError if not.
        Not `strict` (a template validated alone): a parameter without a value is unknown."""
        return BoundTemplate(self, parameters, identity, check, strict=strict)


def parse_template(template: Mapping[str, Any], files: Mapping[str, str] | None = None) -> Template:
    """Read a HOT or CloudFormation template; TemplateError (with its path) if it is wrong."""
    files = dict(files or {})
    return Template(template, parse_sections(template, files), files)
