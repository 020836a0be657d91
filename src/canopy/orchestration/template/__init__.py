"""The template language of Canopy's Heat-compatible orchestration: pure, no I/O.

`parse_template` reads a HOT or CloudFormation template and checks it; `Template.bind`
gives it parameter values; `BoundTemplate` lists resources and outputs (unresolved trees
with function nodes inside) and resolves values against what the engine knows of live
resources. See HEAT_INTERFACE.md and docs/architecture.md.
"""

from canopy.orchestration.template.bound import BoundTemplate
from canopy.orchestration.template.errors import TemplateError
from canopy.orchestration.template.model import (
    ConstraintCheck,
    OutputDefinition,
    ParameterInfo,
    ResolveContext,
    ResourceDefinition,
    StackIdentity,
)
from canopy.orchestration.template.template import Template, parse_template
from canopy.orchestration.template.versions import template_functions, template_versions

__all__ = [
    "BoundTemplate",
    "ConstraintCheck",
    "OutputDefinition",
    "ParameterInfo",
    "ResolveContext",
    "ResourceDefinition",
    "StackIdentity",
    "Template",
    "TemplateError",
    "parse_template",
    "template_functions",
    "template_versions",
]
