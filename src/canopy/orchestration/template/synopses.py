"""The one line Heat's `GET /template_versions/{version}/functions` says of each function.

Heat lists the first line of each function class's docstring; clients show it and Heat's
own API tests (heat-tempest-plugin's gabbits) match it, so canopy lists the same line for
the functions Heat has. A function's own `description` stays for canopy's error messages.
"""

from __future__ import annotations

SYNOPSES: dict[str, str] = {
    "get_param": "A function for resolving parameter references.",
    "get_resource": "A function for resolving resource references.",
    "get_attr": "A function for resolving resource attributes.",
    "get_file": "A function for including a file inline.",
    "str_replace": "A function for performing string substitutions.",
    "str_replace_strict": "A function for performing string substitutions.",
    "str_replace_vstrict": "A function for performing string substitutions.",
    "list_join": "A function for joining one or more lists of strings.",
    "map_merge": "A function for merging maps.",
    "map_replace": "A function for performing substitutions on maps.",
    "make_url": "A function for performing substitutions on maps.",
    "resource_facade": "A function for retrieving data in a parent provider template.",
    "repeat": "A function for iterating over a list of items or a dict of keys.",
    "digest": "A function for performing digest operations.",
    "str_split": "A function for splitting delimited strings into a list.",
    "yaql": "A function for executing a yaql expression.",
    "equals": "A function for comparing whether two values are equal.",
    "if": "A function to return corresponding value based on condition evaluation.",
    "not": "A function that acts as a NOT operator on a condition.",
    "and": "A function that acts as an AND operator on conditions.",
    "or": "A function that acts as an OR operator on conditions.",
    "filter": "A function for filtering out values from lists.",
    "list_concat": "A function for extending lists.",
    "list_concat_unique": "A function for extending lists with unique items.",
    "contains": "A function for checking whether specific value is in sequence.",
    "Fn::FindInMap": "A function for resolving keys in the template mappings.",
    "Fn::GetAZs": "A function for retrieving the availability zones.",
    "Fn::GetAtt": "A function for resolving resource attributes.",
    "Fn::Select": "A function for selecting an item from a list or map.",
    "Fn::Join": "A function for joining strings.",
    "Fn::Split": "A function for splitting strings.",
    "Fn::Replace": "A function for performing string substitutions.",
    "Fn::Base64": "A placeholder function for converting to base64.",
    "Fn::MemberListToMap": "A function to convert lists with enumerated keys and values to "
    "mapping.",
    "Fn::ResourceFacade": "A function for retrieving data in a parent provider template.",
    "Fn::If": "A function to return corresponding value based on condition evaluation.",
    "Fn::Equals": "A function for comparing whether two values are equal.",
    "Fn::Not": "A function that acts as a NOT operator on a condition.",
    "Fn::And": "A function that acts as an AND operator on conditions.",
    "Fn::Or": "A function that acts as an OR operator on conditions.",
    "Ref": "A function for resolving parameters or resource references.",
}

# Where an older version's function of the same name was another class of Heat's.
_OLDER: dict[str, tuple[str, str]] = {
    # name: (the first HOT date of the newer class, the older class's line)
    "list_join": ("2015-10-15", "A function for joining strings."),
    "repeat": ("2016-10-14", "A function for iterating over a list of items."),
}
# A condition function of the same name as a function (CloudFormation's `Ref` in
# `Conditions` takes parameters only).
_CONDITION = {"Ref": "A function for resolving parameter references."}


def synopsis(name: str, kind: str, date: str, *, condition: bool = False) -> str | None:
    """Heat's line for `name` in that version (None: a function Heat does not list)."""
    if condition and name in _CONDITION:
        return _CONDITION[name]
    older = _OLDER.get(name)
    if kind == "hot" and older is not None and date < older[0]:
        return older[1]
    return SYNOPSES.get(name)
