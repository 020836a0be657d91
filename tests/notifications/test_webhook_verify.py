"""A receiver's check refuses a hostile timestamp header instead of raising."""

from __future__ import annotations

from typing import Any

import pytest

from canopy.notifications import webhook

from .test_webhook import _documented_verify

SECRET = "a-signing-secret-of-some-length"
BODY = b'{"event_type":"lease.create"}'
NOW = 1_800_000_000.0


@pytest.mark.parametrize("ts", ["²", "١٢٣", "9" * 20, "9" * 400, "9" * 5000, "-1", " 1", "1.5"])
def test_a_hostile_timestamp_is_refused_not_raised(ts: str) -> None:
    sig = "sha256=" + "0" * 64
    assert webhook.verify(SECRET, BODY, ts, sig, NOW, tolerance=10**30) is False
    documented: Any = _documented_verify()
    head = {"X-Canopy-Timestamp": ts, "X-Canopy-Signature": sig}
    assert documented(SECRET, BODY, head, tolerance=10**30) is False


def test_a_good_timestamp_still_verifies() -> None:
    ts = int(NOW)
    sig = webhook.sign(SECRET, ts, BODY)
    assert webhook.verify(SECRET, BODY, str(ts), sig, NOW)
