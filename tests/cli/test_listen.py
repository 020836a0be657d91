"""A port is taken by the first process that binds it, even when two start at once."""

from __future__ import annotations

import pytest

from canopy.cli.listen import Listener, ListenError, bind, bound_port


def listener(port: int) -> Listener:
    return Listener("the API", "127.0.0.1", port, "[api] port", "[api] host")


def test_a_bound_port_is_refused_to_the_next_process_before_either_serves() -> None:
    first = bind(listener(0))
    try:
        # Two starts at the same moment: neither has started serving yet. Both sockets
        # use SO_REUSEADDR; had the first only bound (not listened), this bind would pass
        # and the second process would fail later, inside the web server.
        with pytest.raises(ListenError, match="already in use") as err:
            bind(listener(bound_port(first)))
        assert f"127.0.0.1:{bound_port(first)}" in str(err.value)
    finally:
        first.close()


def test_an_unknown_host_says_which_setting_to_change() -> None:
    bad = Listener("the API", "no-such-host.invalid", 0, "[api] port", "[api] host (or X)")
    with pytest.raises(ListenError, match=r"unknown host .*set \[api\] host \(or X\)"):
        bind(bad)
