"""CPU per page, in-process: N sequential requests for a page of 100 servers, and the same
bytes from a prepared-body route on the same app (the floor), timed with process CPU. The
detail page is measured at 2.1 (no header, as `api_reads` asks) and at the highest
microversion (what the `openstack` CLI and openstacksdk ask for: tags and flavors read too).

No server, no sockets: an httpx client over ASGI calls canopy's app directly, so the figure
is the app's CPU per page (plus the client's, the same for the floor). The database holds
`--servers` steady servers (SQLite). Uses only long-standing APIs, so the same script
measures an older checkout: `PYTHONPATH=/tmp/old/src:. python -m bench.page_cpu`.

Run alone: .venv/bin/python -m bench.page_cpu [--servers 100000] [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
from sqlalchemy import select

from bench.common import Result, machine, print_machine, quiet_logs, table
from bench.reads_setup import FLOOR_PATH, PAGE, add_floor, prepare
from canopy.api.app import create_app
from canopy.domain.clock import SystemClock
from canopy.heap import freeze_startup_heap
from canopy.store.models import Server

SCENARIO = "page_cpu"
PATHS = {
    "detail": PAGE,
    "detail, page 500": None,  # filled in with a marker
    "basic": "/compute/v2.1/servers?limit=100",
    # What `openstack server list` sends: the SDK asks for the highest microversion the
    # server offers, which reads each page's tags (2.26) and embeds flavors (2.47).
    "detail, at the highest microversion": PAGE,
}
LATEST = {"OpenStack-API-Version": "compute latest"}


async def _cpu_per_request(
    client: httpx.AsyncClient, path: str, n: int, headers: dict[str, str] | None = None
) -> float:
    """Median over 3 rounds of CPU ms per request."""
    rounds = []
    for _ in range(3):
        t0 = time.process_time()
        for _ in range(n):
            r = await client.get(path, headers=headers)
            assert r.status_code == 200, r.text[:300]
        rounds.append((time.process_time() - t0) * 1000 / n)
    return statistics.median(rounds)


async def run(servers: int = 100_000, requests: int = 300) -> list[Result]:
    prepared, settings, db = await prepare(servers)
    try:
        app = create_app(settings=settings, db=db, clock=SystemClock())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://canopy.test",
            headers={"X-Auth-Token": prepared.token},
        ) as c:
            body = (await c.get(PAGE)).content
            add_floor(app, body)
            # A marker deep in the list: the last id of page 500 (or of the last page).
            deep = min(500, max(1, servers // 100 - 1))
            async with db.read() as s:
                marker = (
                    await s.execute(
                        select(Server.id)
                        .order_by(Server.created_at.desc(), Server.id.desc())
                        .offset(100 * deep - 1)
                        .limit(1)
                    )
                ).scalar_one()
            paths = dict(PATHS)
            paths["detail, page 500"] = f"{PAGE}&marker={marker}"
            for label, p in paths.items():
                assert p is not None
                await c.get(p, headers=_headers(label))  # warm
            freeze_startup_heap()
            floor = await _cpu_per_request(c, FLOOR_PATH, requests)
            out = []
            for label, p in paths.items():
                assert p is not None
                cpu = await _cpu_per_request(c, p, requests, _headers(label))
                size = len((await c.get(p, headers=_headers(label))).content)
                out.append(
                    Result(
                        SCENARIO,
                        f"{label}, {servers:,} servers",
                        cpu,
                        "ms CPU/request",
                        baseline=floor,
                        baseline_name="prepared body",
                        note=f"median of 3 rounds of {requests}; {size:,} bytes a page",
                    )
                )
            return out
    finally:
        await db.dispose()
        prepared.cleanup()


def _headers(label: str) -> dict[str, str] | None:
    return LATEST if "highest microversion" in label else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    quiet_logs()
    print_machine(machine(None))
    print(table(asyncio.run(run(args.servers, args.requests))))


if __name__ == "__main__":
    main()
