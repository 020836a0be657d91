"""Template corpus, part one: find the templates of a tree that canopy can run, and make
the request python-heatclient would send for each (files, parameters).

The client's rules, as `openstack stack create -t PATH` applies them: every `get_file`
value and every `type` that names a template file is read relative to the template that
names it, sent in `files` under its absolute `file://` URL, and the template is rewritten
to name that URL; a nested template is rewritten the same way, recursively.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from canopy.orchestration.resources.registry import TYPES

TEMPLATE_SUFFIXES = (".yaml", ".yml", ".template", ".json")

# What the store the corpus runs against holds: a keypair, the default flavors (m1.*),
# cirros, and the images the samples' mappings and defaults name (their JEOS builds).
KEY_NAME = "corpus-key"
IMAGE = "cirros"
FLAVOR = "m1.small"
JEOS = [
    f"{distro}-{arch}-cfntools"
    for distro in ("F17", "F18", "F19", "F20", "U10", "rhel61", "rhel62", "rhel63", "centos-6.5")
    for arch in ("i386", "x86_64")
] + ["F17-i386-gold", "F17-x86_64-gold"]
IMAGES_TOML = "".join(f'\n[[images]]\nname = "{n}"\n' for n in [IMAGE, *JEOS])

# Sensible values for the parameter names real templates use, by a pattern of the name.
TABLE: list[tuple[str, Any]] = [
    (r"^(key_?name|keyname|key|ssh_key.*|.*_key_name)$", KEY_NAME),
    (r"^(image.*|.*_image(_id|_name)?|imageid)$", IMAGE),
    (r"^(flavor.*|.*_flavor(_name)?|instance_?type|instancetype)$", FLAVOR),
    (r"^(network.*|net|.*_net(work)?(_id)?|subnet.*|.*_subnet(_id)?)$", "private"),
    (r"^(availability_zone|az)$", "private"),
    (r"password|passwd|_pass$|^pass$", "Secret12"),
]

# A number parameter named like this sizes something: the corpus updates it.
COUNT_NAME = re.compile(r"count|size|num|number|instances|capacity|replicas|nodes", re.I)


GROUPS = ("OS::Heat::ResourceGroup", "OS::Heat::AutoScalingGroup")


class _ClientLoader(yaml.SafeLoader):
    """The client's YAML: safe, and dates stay strings (`heat_template_version: 2013-05-23`)."""


_ClientLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in rules if tag != "tag:yaml.org,2002:timestamp"]
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class Unrunnable(Exception):
    """The template cannot be sent as a request (a file it names is not in the tree)."""


@dataclass
class Case:
    path: Path
    template: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)
    types: set[str] = field(default_factory=set)
    environment: dict[str, Any] = field(default_factory=dict)
    # Files the test that runs the template passes in code, by the name the template's
    # `get_file` gives (heat-tempest-plugin's `file:///cfg1.sh`).
    given: dict[str, str] = field(default_factory=dict)

    @property
    def unsupported(self) -> list[str]:
        """The types named that are neither canopy's nor a file, once the environment's
        resource_registry has mapped them (through aliases of aliases, as Heat does)."""
        registry = self.environment.get("resource_registry") or {}
        out = []
        for named in self.types:
            t, seen = named, {named}
            while t in registry and registry[t] not in seen:
                t = registry[t]
                seen.add(t)
            if t not in TYPES and t not in self.files:
                out.append(named)
        return sorted(out)

    @property
    def regions(self) -> set[str]:
        """The regions the template's nested stacks name literally (`context.region_name`)."""
        resources = self.template.get("resources") or {}
        named = set()
        for d in resources.values() if isinstance(resources, dict) else ():
            props = d.get("properties") if isinstance(d, dict) else None
            context = props.get("context") if isinstance(props, dict) else None
            region = context.get("region_name") if isinstance(context, dict) else None
            if isinstance(region, str):
                named.add(region)
        return named

    @property
    def cfn(self) -> bool:
        return "heat_template_version" not in self.template


def parse(path: Path) -> dict[str, Any] | None:
    """The template at `path`, or None when it is no template (an environment, a script)."""
    try:
        data = yaml.load(path.read_text(), Loader=_ClientLoader)
    except (yaml.YAMLError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    if "heat_template_version" in data or "AWSTemplateFormatVersion" in data:
        return data
    return data if isinstance(data.get("Resources"), dict) else None


def discover(root: Path) -> list[Path]:
    """Every template under `root`, in a stable order."""
    found = [p for p in root.rglob("*") if p.is_file() and p.suffix in TEMPLATE_SUFFIXES]
    return sorted(p for p in found if parse(p) is not None)


def load(path: Path, root: Path, given: dict[str, str] | None = None) -> Case:
    """The request for `path`: template and files rewritten as the client does; raises
    Unrunnable when a file it names is not inside `root` (nor `given`: absolute name ->
    text, sent under `file://NAME`)."""
    template = parse(path)
    assert template is not None
    case = Case(path, template, given=dict(given or {}))
    case.template = _attach(template, path.parent, root, case, depth=0)
    # `-e NAME.env.yaml` (this corpus) or `-e NAME_env.yaml` (heat-templates): its
    # registry's files are read as the client does.
    env = path.with_suffix(".env.yaml")
    if not env.is_file():
        env = path.with_name(f"{path.stem}_env.yaml")
    if env.is_file():
        case.environment = yaml.load(env.read_text(), Loader=_ClientLoader) or {}
        registry = case.environment.get("resource_registry") or {}
        for kind, target in list(registry.items()):
            if _is_template_name(target):
                wrapped = _attach({"type": target}, env.parent, root, case, depth=1)
                registry[kind] = wrapped["type"]
    return case


def _is_template_name(value: Any) -> bool:
    return isinstance(value, str) and value.endswith(TEMPLATE_SUFFIXES) and "::" not in value


def _read(name: str, base: Path, root: Path) -> Path:
    if "://" in name:
        raise Unrunnable(f"names a remote file {name!r}")
    target = (base / name).resolve()
    if not target.is_file() or not target.is_relative_to(root.resolve()):
        raise Unrunnable(f"names {name!r}, which is not in the checkout")
    return target


def _attach(node: Any, base: Path, root: Path, case: Case, depth: int) -> Any:
    if depth > 5:
        raise Unrunnable("nests templates more than 5 deep")
    if isinstance(node, list):
        return [_attach(v, base, root, case, depth) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "get_file" and isinstance(value, str) and value in case.given:
            url = f"file://{value}"
            case.files[url] = case.given[value]
            out[key] = url
        elif key == "get_file" and isinstance(value, str):
            target = _read(value, base, root)
            url = target.as_uri()
            case.files[url] = target.read_text()
            out[key] = url
        elif key in ("type", "Type") and _is_template_name(value):
            target = _read(value, base, root)
            url = target.as_uri()
            nested = parse(target)
            if nested is None:
                raise Unrunnable(f"type {value!r} is not a template")
            if url not in case.files:
                case.files[url] = ""  # marks it taken while it is read (a loop ends)
                rewritten = _attach(nested, target.parent, root, case, depth + 1)
                case.files[url] = json.dumps(rewritten)
                case.types |= _types(rewritten)
            out[key] = url
        else:
            out[key] = _attach(value, base, root, case, depth)
    if depth == 0 and node is case.template:
        case.types |= _types(out)
    return out


def _types(template: dict[str, Any]) -> set[str]:
    """Every resource type a template names, group members' included."""
    found: set[str] = set()
    resources = template.get("resources") or template.get("Resources") or {}
    for res in resources.values() if isinstance(resources, dict) else []:
        if not isinstance(res, dict):
            continue
        kind = res.get("type", res.get("Type"))
        found.add(kind if isinstance(kind, str) else repr(kind))
        props = res.get("properties") or {}
        for key in ("resource_def", "resource"):
            member = props.get(key) if isinstance(props, dict) else None
            if isinstance(member, dict) and "type" in member:
                t = member["type"]
                found.add(t if isinstance(t, str) else repr(t))
    return found


# --- parameters -------------------------------------------------------------------------


def external_parameters(template: dict[str, Any]) -> dict[str, str]:
    """Parameter -> resource type, for each `external_id: {get_param: NAME}` of the
    template: the runner makes such a resource first and passes its id."""
    found: dict[str, str] = {}
    for res in (template.get("resources") or {}).values():
        ref = res.get("external_id") if isinstance(res, dict) else None
        if isinstance(ref, dict) and isinstance(ref.get("get_param"), str):
            found[ref["get_param"]] = str(res.get("type"))
    return found


def declared(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    params = template.get("parameters", template.get("Parameters")) or {}
    return {k: v for k, v in params.items() if isinstance(v, dict)}


def _kind(spec: dict[str, Any]) -> str:
    return str(spec.get("type", spec.get("Type", "string"))).lower()


def _allowed(spec: dict[str, Any]) -> list[Any]:
    if "AllowedValues" in spec:
        return list(spec["AllowedValues"])
    for c in spec.get("constraints") or []:
        if isinstance(c, dict) and "allowed_values" in c:
            return list(c["allowed_values"])
    return []


def _range(spec: dict[str, Any]) -> tuple[float | None, float | None]:
    low, high = spec.get("MinValue"), spec.get("MaxValue")
    for c in spec.get("constraints") or []:
        if isinstance(c, dict) and isinstance(c.get("range"), dict):
            low = c["range"].get("min", low)
            high = c["range"].get("max", high)
    return (None if low is None else float(low), None if high is None else float(high))


def parameters(template: dict[str, Any]) -> dict[str, Any]:
    """Values for the template's parameters: the table's where a name matches (and the
    value is allowed), else the default, else a value of the parameter's type."""
    values: dict[str, Any] = {}
    for name, spec in declared(template).items():
        allowed = _allowed(spec)
        chosen: Any = None
        for pattern, value in TABLE:
            if re.search(pattern, name, re.I) and _kind(spec) == "string":
                chosen = value
                break
        if chosen is not None and allowed and chosen not in allowed:
            chosen = None
        if chosen is None:
            default = spec.get("default", spec.get("Default"))
            if default is not None:
                continue
            chosen = _typed(spec, allowed)
        values[name] = chosen
    return values


def _typed(spec: dict[str, Any], allowed: list[Any]) -> Any:
    if allowed:
        return allowed[0]
    kind = _kind(spec)
    if kind == "number":
        low, _ = _range(spec)
        return int(low) if low is not None else 1
    if kind in ("comma_delimited_list", "commadelimitedlist", "list<string>"):
        return "8,12"
    if kind == "json":
        return {}
    if kind == "boolean":
        return False
    return "corpus"


def count_change(template: dict[str, Any], given: dict[str, Any]) -> dict[str, int]:
    """A changed value for each number parameter that sizes something (none: {})."""
    changed: dict[str, int] = {}
    for name, spec in declared(template).items():
        if _kind(spec) != "number" or not COUNT_NAME.search(name):
            continue
        current = given.get(name, spec.get("default", spec.get("Default")))
        try:
            now = int(float(current))
        except (TypeError, ValueError):
            continue
        low, high = _range(spec)
        bigger = now + 1
        changed[name] = bigger if high is None or bigger <= high else max(now - 1, int(low or 0))
    return changed


def literal_count_change(template: dict[str, Any]) -> dict[str, Any] | None:
    """The template with its groups' literal sizes changed by one (down from 2 or more, as
    a template's lists may be as long as its count), or None if it has none."""
    copy = json.loads(json.dumps(template))
    touched = False
    for res in (copy.get("resources") or {}).values():
        props = res.get("properties") if isinstance(res, dict) else None
        if not isinstance(props, dict) or res.get("type") not in GROUPS:
            continue
        for key in ("count", "desired_capacity"):
            if isinstance(props.get(key), int):
                props[key] += -1 if props[key] >= 2 else 1
                if isinstance(props.get("max_size"), int):
                    props["max_size"] = max(props["max_size"], props[key])
                if isinstance(props.get("min_size"), int):
                    props["min_size"] = min(props["min_size"], props[key])
                touched = True
    return copy if touched else None
