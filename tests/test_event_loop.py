"""The serving processes' event loop (canopy/event_loop.py): uvloop where it is installed,
the standard library's on request, a clear refusal where uvloop was asked for and is
missing."""

from __future__ import annotations

import asyncio
import importlib
import warnings
from pathlib import Path
from types import ModuleType

import pytest

from canopy import event_loop
from canopy.config import ConfigError, load_settings
from canopy.event_loop import LoopUnavailable, loop_factory, run

uvloop = pytest.importorskip("uvloop", reason="uvloop is not made for this platform")


async def _loop_class() -> type:
    return type(asyncio.get_running_loop())


def _without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def fake(name: str, package: str | None = None) -> ModuleType:
        if name == "uvloop":
            raise ImportError("No module named 'uvloop'")
        return real(name, package)

    monkeypatch.setattr(event_loop.importlib, "import_module", fake)


def test_auto_and_uvloop_run_on_uvloop_asyncio_on_the_standard_loop() -> None:
    assert run(_loop_class(), "auto") is uvloop.Loop
    assert run(_loop_class(), "uvloop") is uvloop.Loop
    assert issubclass(run(_loop_class(), "asyncio"), asyncio.BaseEventLoop)
    assert run(_loop_class(), "asyncio") is not uvloop.Loop


def test_auto_falls_back_to_the_standard_loop_without_uvloop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without_uvloop(monkeypatch)
    assert loop_factory("auto") is None
    assert run(_loop_class(), "auto") is not uvloop.Loop


def test_uvloop_asked_for_and_missing_is_refused_and_the_coroutine_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without_uvloop(monkeypatch)
    coro = _loop_class()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would fail here
        with pytest.raises(LoopUnavailable, match='set event_loop = "auto" or "asyncio"'):
            run(coro, "uvloop")
    assert coro.cr_frame is None  # closed


def test_the_config_refuses_uvloop_where_it_is_missing_with_its_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _without_uvloop(monkeypatch)
    f = tmp_path / "canopy.toml"
    f.write_text('data_dir = "/tmp/x"\nevent_loop = "uvloop"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(f, env={})
    assert f"{f}:2" in str(e.value)
    assert "uvloop cannot be imported here" in str(e.value)


def test_the_config_refuses_an_unknown_loop_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "canopy.toml"
    f.write_text('\n\nevent_loop = "tokio"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(f, env={})
    text = str(e.value)
    assert f"{f}:3" in text
    assert "'auto', 'uvloop' or 'asyncio'" in text
    assert load_settings(None, env={}).event_loop == "auto"
    assert load_settings(None, env={"CANOPY_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
