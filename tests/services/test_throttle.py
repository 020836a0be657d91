"""The throttle's keys: digests, one per (user, address) pair, address and user, each with
its own limit; a success clears the user's keys only."""

from __future__ import annotations

from canopy.config import IdentitySettings
from canopy.services.throttle import LoginKeys, ThrottlePolicy


def test_keys_are_digests_that_tell_pairs_apart() -> None:
    a = LoginKeys.of("name:admin", "192.0.2.7")
    b = LoginKeys.of("name:admin", "192.0.2.8")
    assert a.user == b.user  # one user
    assert a.pair != b.pair and a.address != b.address  # two addresses
    for key in (a.pair, a.user, a.address):
        assert key is not None and len(key) == 64
        assert "admin" not in key and "192.0.2" not in key
    assert len({a.pair, a.user, a.address}) == 3
    # The parts cannot be shifted into one another.
    assert LoginKeys.of("a", "b:c").pair != LoginKeys.of("a:b", "c").pair
    assert LoginKeys.of("x", None).address is None


def test_the_default_policy_locks_pairs_and_addresses_not_users() -> None:
    policy = ThrottlePolicy.from_settings(IdentitySettings())
    keys = LoginKeys.of("u1", "192.0.2.7")
    assert sorted(keys.with_limits(policy)) == sorted([(keys.pair, 5), (keys.address, 50)])
    on = ThrottlePolicy.from_settings(IdentitySettings(user_failure_attempts=3))
    assert (keys.user, 3) in keys.with_limits(on)


def test_a_success_clears_the_users_keys_never_the_address() -> None:
    keys = LoginKeys.of("u1", "192.0.2.7")
    assert set(keys.of_user) == {keys.pair, keys.user}
    assert keys.address not in keys.of_user
