"""Small helpers shared by the admin resources."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from canopy.api.errors import openstack_fault

_CLOUD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
MAX_ID = 64


class Strict(BaseModel):
    """A request body: unknown keys are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


def could_be_cloud(name: str) -> bool:
    """Whether `name` is a possible cloud name (so a look-up is worth a query)."""
    return bool(_CLOUD_NAME.fullmatch(name))


def could_be_id(value: str) -> bool:
    """Whether `value` fits an id column; NUL and over-long values cannot match a row."""
    return 0 < len(value) <= MAX_ID and "\x00" not in value


def _example(code: int, message: str) -> dict[str, object]:
    body = openstack_fault(code, message)
    return {"description": message, "content": {"application/json": {"example": body}}}


FAULTS: dict[int | str, dict[str, object]] = {
    400: _example(400, "Invalid input for query parameter limit."),
    404: _example(404, "The resource could not be found."),
    503: _example(503, "The database is unavailable; try again shortly."),
}
