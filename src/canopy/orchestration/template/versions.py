"""The template versions Canopy reads, and the functions each one has (Heat's tables).

Each version is a row: its functions, its condition functions, and what it allows
(conditions, modulo, parameter tags, lower-case deletion policies). A function name known
to another version but not this one is an error naming where it came or went.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from canopy.orchestration.template import cfn_functions as cfn
from canopy.orchestration.template import hot_functions as hot
from canopy.orchestration.template import hot_functions_more as more
from canopy.orchestration.template.conditions import And, Contains, Equals, If, IfNullable, Not, Or
from canopy.orchestration.template.errors import TemplateError
from canopy.orchestration.template.functions_base import Function, FunctionTable
from canopy.orchestration.template.synopses import synopsis

Table = dict[str, type[Function]]

HOT_DATES = (
    "2013-05-23", "2014-10-16", "2015-04-30", "2015-10-15", "2016-04-08",
    "2016-10-14", "2017-02-24", "2017-09-01", "2018-03-02", "2018-08-31", "2021-04-16",
)  # fmt: skip
HOT_ALIASES = {
    "2016-10-14": ("newton",),
    "2017-02-24": ("ocata",),
    "2017-09-01": ("pike",),
    "2018-03-02": ("queens",),
    "2018-08-31": ("rocky",),
    "2021-04-16": ("wallaby",),
}
CFN_DATE = "2010-09-09"


@dataclass(frozen=True)
class Version:
    kind: str  # "hot" | "cfn"
    date: str
    aliases: tuple[str, ...]
    table: FunctionTable
    conditions: bool
    modulo: bool
    param_tags: bool
    lower_policies: bool  # "delete" | "retain" | "snapshot" accepted too

    @property
    def key(self) -> str:
        prefix = "heat_template_version" if self.kind == "hot" else "AWSTemplateFormatVersion"
        return f"{prefix}.{self.date}"

    @property
    def label(self) -> str:
        return self.key.replace(".", " ", 1)


def _hot_functions(date: str) -> Table:
    """Heat's HOTemplate<date>.functions (resource_facade and yaql refused clearly)."""
    t: Table = {
        "get_param": hot.GetParam,
        "get_resource": hot.GetResource,
        "get_attr": hot.GetAttrNamed,
        "get_file": hot.GetFile,
        "str_replace": hot.StrReplaceScalar,
        "list_join": hot.ListJoinSingle,
        "resource_facade": more.ResourceFacade,
    }
    if date == "2013-05-23":
        t.update({
            "Ref": cfn.Ref, "Fn::GetAZs": cfn.GetAZs, "Fn::Join": cfn.Join,
            "Fn::Split": cfn.Split, "Fn::Replace": cfn.Replace, "Fn::Base64": cfn.Base64,
        })  # fmt: skip
    if date < "2015-10-15":
        t["Fn::Select"] = cfn.Select
    if date >= "2015-04-30":
        t.update({"repeat": more.Repeat, "digest": more.Digest})
    if date >= "2015-10-15":
        t.update({
            "get_attr": hot.GetAttr, "list_join": hot.ListJoin, "str_replace": hot.StrReplace,
            "str_split": more.StrSplit,
        })  # fmt: skip
    if date >= "2016-04-08":
        t["map_merge"] = more.MapMerge
    if date >= "2016-10-14":
        t.update({
            "repeat": more.RepeatWithMap, "map_replace": more.MapReplace, "if": If,
            "yaql": more.Yaql,
        })  # fmt: skip
    if date >= "2017-02-24":
        t.update({"filter": more.Filter, "str_replace_strict": hot.StrReplaceStrict})
    if date >= "2017-09-01":
        t.update({
            "repeat": more.RepeatNested, "make_url": more.MakeUrl,
            "list_concat": more.ListConcat, "list_concat_unique": more.ListConcatUnique,
            "str_replace_vstrict": hot.StrReplaceVStrict, "contains": Contains,
        })  # fmt: skip
    if date >= "2021-04-16":
        t["if"] = IfNullable
    return t


def _hot_condition_functions(date: str) -> Table:
    if date < "2016-10-14":
        return {}
    t: Table = {"get_param": hot.GetParam, "equals": Equals, "not": Not, "and": And, "or": Or}
    if date >= "2017-09-01":
        t.update({"yaql": more.Yaql, "contains": Contains})
    return t


CFN_FUNCTIONS: Table = {
    "Ref": cfn.Ref, "Fn::GetAtt": cfn.GetAtt, "Fn::Join": cfn.Join, "Fn::Base64": cfn.Base64,
    "Fn::FindInMap": cfn.FindInMap, "Fn::GetAZs": cfn.GetAZs, "Fn::Select": cfn.Select,
    "Fn::Split": cfn.Split, "Fn::Replace": cfn.Replace, "Fn::If": cfn.CfnIf,
    "Fn::MemberListToMap": more.MemberListToMap, "Fn::ResourceFacade": more.CfnResourceFacade,
}  # fmt: skip
CFN_CONDITION_FUNCTIONS: Table = {
    "Fn::Equals": cfn.CfnEquals, "Ref": cfn.ParamRef, "Fn::FindInMap": cfn.FindInMap,
    "Fn::Not": cfn.CfnNot, "Fn::And": cfn.CfnAnd, "Fn::Or": cfn.CfnOr,
    "Condition": cfn.ConditionRef,
}  # fmt: skip


def _unavailable(date: str, tables: Mapping[str, Table]) -> dict[str, str]:
    """Why each HOT function name of another version is not in `date`'s table."""
    here = tables[date]
    out: dict[str, str] = {}
    names = {n for t in tables.values() for n in t} - set(here)
    for name in sorted(names):
        before = [d for d in HOT_DATES if d < date and name in tables[d]]
        if before:
            gone = next(d for d in HOT_DATES if d > before[-1] and name not in tables[d])
            out[name] = f"was removed in heat_template_version {gone}"
        else:
            since = next(d for d in HOT_DATES if name in tables[d])
            out[name] = f"was introduced in heat_template_version {since}"
    return out


def _build() -> dict[str, Version]:
    tables = {d: _hot_functions(d) for d in HOT_DATES}
    versions: dict[str, Version] = {}
    for date in HOT_DATES:
        versions[date] = Version(
            kind="hot",
            date=date,
            aliases=HOT_ALIASES.get(date, ()),
            table=FunctionTable(
                functions=tables[date],
                condition_functions=_hot_condition_functions(date),
                unavailable=_unavailable(date, tables),
            ),
            conditions=date >= "2016-10-14",
            modulo=date >= "2017-02-24",
            param_tags=date >= "2018-03-02",
            lower_policies=date >= "2016-10-14",
        )
    cfn_unavailable = {
        name: "is a HOT function (this is a CloudFormation template)"
        for t in tables.values()
        for name in t
        if name not in CFN_FUNCTIONS
    }
    versions["cfn"] = Version(
        kind="cfn",
        date=CFN_DATE,
        aliases=(),
        table=FunctionTable(CFN_FUNCTIONS, CFN_CONDITION_FUNCTIONS, cfn_unavailable),
        conditions=True,
        modulo=False,
        param_tags=False,
        lower_policies=False,
    )
    return versions


VERSIONS = _build()
HOT_BY_NAME = {alias: VERSIONS[d] for d in HOT_DATES for alias in (d, *HOT_ALIASES.get(d, ()))}


def hot_version(raw: object) -> Version:
    """The HOT version a `heat_template_version` value names (a date or a release name)."""
    if isinstance(raw, str) and raw in HOT_BY_NAME:
        return HOT_BY_NAME[raw]
    known = ", ".join(
        f"{d} ({', '.join(HOT_ALIASES[d])})" if d in HOT_ALIASES else d for d in HOT_DATES
    )
    raise TemplateError(f"unknown version {raw!r} (known: {known})", "heat_template_version")


def template_versions() -> list[dict[str, Any]]:
    """What GET /template_versions lists."""
    out: list[dict[str, Any]] = [{"version": VERSIONS["cfn"].key, "type": "cfn", "aliases": []}]
    for date in HOT_DATES:
        v = VERSIONS[date]
        out.append({"version": v.key, "type": "hot", "aliases": list(v.aliases)})
    return out


def template_functions(version: str, *, with_condition: bool = False) -> list[dict[str, str]]:
    """What GET /template_versions/{version}/functions lists, for "heat_template_version.X";
    `with_condition` (`?with_condition_func=true`) adds the functions of `conditions`, as
    Heat merges them in (a name in both is listed once, as its condition function)."""
    prefix, _, date = version.partition(".")
    if prefix == "AWSTemplateFormatVersion" and date == CFN_DATE:
        v = VERSIONS["cfn"]
    elif prefix == "heat_template_version" and date in HOT_BY_NAME:
        v = HOT_BY_NAME[date]
    else:
        raise TemplateError(f"unknown template version {version!r}")
    table = {name: (fn, False) for name, fn in v.table.functions.items()}
    if with_condition:
        table.update((name, (fn, True)) for name, fn in v.table.condition_functions.items())
    return [
        {
            "functions": name,
            "description": synopsis(name, v.kind, v.date, condition=cond) or fn.description,
        }
        for name, (fn, cond) in sorted(table.items())
    ]
