"""The API's wake names the loops it has work for; a plain set wakes every loop."""

from __future__ import annotations

from canopy.domain.wake import Wake


def test_the_loops_asked_for_are_taken_once_and_clear_the_event() -> None:
    wake = Wake()
    wake.ask("placement")
    wake.ask("placement", "power")
    assert wake.is_set()
    assert wake.take() == ("placement", "power")
    assert not wake.is_set() and wake.take() == ()


def test_an_ask_without_names_or_a_plain_set_wakes_every_loop() -> None:
    wake = Wake()
    wake.ask("placement")
    wake.ask()
    assert wake.take() == ()  # every loop, placement among them
    wake.set()
    assert wake.is_set() and wake.take() == ()
