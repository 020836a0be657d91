"""The real `openstack` command, started warm.

Each command is still its own process running python-openstackclient's `main(argv)`
unchanged, with exactly the environment given, its own stdout and stderr, and its own exit
code. What changes is where the process comes from: it is forked from a server process
(multiprocessing's forkserver) that has already imported the client and its plugins
(`cli_preload`), instead of a fresh interpreter importing them again. On a 2-core machine
that is about 1.2 s less per command; the interop tests run a few hundred commands.

Set `CANOPY_TEST_COLD_CLI=1` to run the `openstack` console script as a new interpreter
instead (the same tests must pass either way).
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
from multiprocessing.context import BaseContext
from pathlib import Path

BIN = Path(sys.executable).parent
_PRELOAD = "tests.interop.cli_preload"
_context: BaseContext | None = None


def _forkserver() -> BaseContext:
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([_PRELOAD])
        _context = context
    return _context


def _child(argv: list[str], env: dict[str, str], out: str, err: str) -> None:
    """The command's process: its environment, its stdout/stderr on files, then the CLI."""
    for path, fd in ((out, 1), (err, 2)):
        target = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [str(BIN / "openstack"), *argv]
    from openstackclient import shell

    sys.exit(shell.main(argv))


def run(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run `openstack ARGV` with `env`; like `subprocess.run(..., capture_output=True,
    text=True, timeout=timeout)`, including TimeoutExpired (after killing the command)."""
    command = [str(BIN / "openstack"), *argv]
    if os.environ.get("CANOPY_TEST_COLD_CLI") == "1":
        return subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    with tempfile.TemporaryDirectory(prefix="canopy-cli-") as tmp:
        out, err = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        for path in (out, err):
            Path(path).touch(mode=0o600)
        process = _forkserver().Process(target=_child, args=(argv, env, out, err))  # type: ignore[attr-defined]
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(command, timeout)
        return subprocess.CompletedProcess(
            command,
            process.exitcode,
            Path(out).read_text(errors="replace"),
            Path(err).read_text(errors="replace"),
        )
