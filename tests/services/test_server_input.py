"""Canopy's own metadata keys: refused from users, but a parent canopy's id is accepted."""

from __future__ import annotations

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.services.server_input import check_metadata_keys

PARENT_ID = "0f0e0d0c-0b0a-4908-8706-050403020100"


def test_a_parent_canopys_id_is_accepted_as_user_metadata() -> None:
    check_metadata_keys({"canopy_id": PARENT_ID, "role": "web"})


@pytest.mark.parametrize(
    "metadata",
    [
        {"canopy_id": "another-server"},
        {"canopy_id": PARENT_ID.upper()},  # not the form canopy writes
        {"canopy_id": PARENT_ID + " "},
        {"canopy:id": PARENT_ID},
        {"canopy:anything": "x"},
    ],
)
def test_other_uses_of_canopys_keys_are_refused(metadata: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest, match="reserved for canopy"):
        check_metadata_keys(metadata)
