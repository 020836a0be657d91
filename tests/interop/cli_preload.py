"""Imported once by the warm `openstack` server (see `warm_cli`): python-openstackclient and
every command module its plugins name, so that a command forked from it starts with them
loaded instead of importing them again."""

from __future__ import annotations

import contextlib
import importlib
from importlib import metadata

import openstackclient.shell  # noqa: F401  (the point of this module is the import)


def _command_modules() -> set[str]:
    return {
        entry.value.split(":", 1)[0]
        for group in metadata.entry_points().groups
        if group.startswith("openstack.")
        for entry in metadata.entry_points(group=group)
    }


for _module in sorted(_command_modules()):
    # A plugin whose own imports fail here fails the same way in the command that uses it.
    with contextlib.suppress(Exception):
        importlib.import_module(_module)
