"""Where a subscription may send: public addresses, or what the operator allows."""

from __future__ import annotations

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.notifications import targets


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.1.2.3/",
        "http://192.168.0.1:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fd00::1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
    ],
)
def test_a_literal_internal_address_is_refused_unless_allowed(url: str) -> None:
    with pytest.raises(InvalidRequest):
        targets.parse("webhook", url, [])
    host = targets.parse("webhook", url, ["0.0.0.0/0", "::/0"]).host
    assert host


def test_an_allowed_network_or_name_lets_an_internal_host_through() -> None:
    assert targets.parse("webhook", "http://10.20.1.1/x", ["10.20.0.0/16"]).port == 80
    with pytest.raises(InvalidRequest):
        targets.parse("webhook", "http://10.21.1.1/x", ["10.20.0.0/16"])


def test_an_amqp_password_is_kept_apart_and_put_back_only_to_connect() -> None:
    t = targets.parse("amqp", "amqp://bob:s3cret@broker.example.com/vhost", [])
    assert t.url == "amqp://bob@broker.example.com/vhost"
    assert t.password == "s3cret" and t.port == 5672
    assert targets.with_password(t.url, t.password) == "amqp://bob:s3cret@broker.example.com/vhost"


async def test_a_name_is_checked_by_what_it_resolves_to() -> None:
    with pytest.raises(targets.Refused, match=r"127\.0\.0\.1|::1"):
        await targets.check("localhost", 80, [])
    await targets.check("localhost", 80, ["localhost"])
    await targets.check("localhost", 80, ["127.0.0.0/8", "::1"])
    with pytest.raises(targets.Refused, match="cannot resolve"):
        await targets.check("nothing.invalid", 80, [])
