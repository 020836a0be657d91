"""What get_attr reads of a group: its members' references and attributes.

A group records, when it completes, `refs` (members in index order), `refs_map` (index ->
reference), `members` (index -> that member's attributes), `order` and `current_size`; the
reader below answers Heat's attribute names from them:

- `refs`, `refs_map`, `current_size`, `removed_rsrc_list`: as recorded;
- `resource.N`: member N's reference; `resource.N.attr` (dotted, one name): its attribute,
  and any further path digs into it (`[resource.N, attr]` is not supported: it digs into
  the reference);
- `attributes` / `outputs` `[name]`: index -> that attribute of each member;
  `outputs_list [name]`: the same as a list (the template language digs any further
  path into that map or list, not into each member: `[attributes, addresses, net]` is
  not per member as in Heat);
- any other name: the list of that attribute of every member, in index order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from canopy.orchestration.attribute_paths import dig
from canopy.orchestration.resources.members import index_of
from canopy.store.models import StackResource

RECORDED = ("refs", "refs_map", "current_size", "removed_rsrc_list")


def recorded(group: StackResource, members: Sequence[StackResource]) -> dict[str, Any]:
    """The attributes a group keeps, from its present members (in index order)."""
    from canopy.orchestration.resources import registry  # deferred: it imports this module

    ordered = sorted(members, key=lambda m: _order(index_of(group, m)))
    refs_map: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    for m in ordered:
        idx = index_of(group, m)
        refs_map[idx] = registry.row_type(m.type).reference(m)
        attrs[idx] = dict(m.attributes or {})
    return {
        "refs": list(refs_map.values()),
        "refs_map": refs_map,
        "members": attrs,
        "order": list(refs_map),
        "current_size": len(ordered),
        "removed_rsrc_list": list((group.data or {}).get("removed") or []),
    }


def _order(index: str) -> tuple[int, str]:
    return (int(index), "") if index.isdigit() else (1 << 62, index)


def read(group: StackResource, path: Sequence[Any]) -> Any:
    """`get_attr: [group, *path]`."""
    if not path:
        return None
    stored = group.attributes or {}
    head, rest = str(path[0]), list(path[1:])
    members: dict[str, Any] = stored.get("members") or {}
    order: list[str] = stored.get("order") or []
    if head in RECORDED:
        return dig(stored.get(head), rest)
    if head.startswith("resource."):
        parts = head.split(".", 2)
        idx = parts[1]
        tail = parts[2:] + rest
        if not tail:
            return (stored.get("refs_map") or {}).get(idx)
        return dig(members.get(idx), tail)
    if head in ("attributes", "outputs", "outputs_list"):
        if rest:
            each = {idx: dig(members.get(idx), rest) for idx in order}
            return list(each.values()) if head == "outputs_list" else each
        # The template digs the rest of the path: name -> (index -> value) or [values].
        names = sorted({k for idx in order for k in (members.get(idx) or {})})
        by_name = {n: {idx: (members.get(idx) or {}).get(n) for idx in order} for n in names}
        if head == "outputs_list":
            return {n: list(v.values()) for n, v in by_name.items()}
        return by_name
    return [dig(members.get(idx), [head, *rest]) for idx in order]
