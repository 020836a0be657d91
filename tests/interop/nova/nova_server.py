"""A real Nova on a TCP port, for the `openstack` driver's tests. Runs in Nova's venv.

Nova's own functional-test base (`_IntegratedTestBase`) runs the real API, conductor,
scheduler and a fake compute (nova.virt.fake) in one process, with placement, SQLite, a
fake RPC transport and in-process Glance and Neutron fixtures. This serves that nova-api
WSGI app over HTTP, so openstacksdk talks to a genuine Nova. Identity is stubbed: the app
reads X-Auth-User / X-Auth-Project-Id / X-Roles, filled in here.

It is served as nova-api is under eventlet (the process is monkey-patched by Nova's test
package): eventlet.wsgi, a green thread per request, so a slow request (a long listing)
does not hold the others back. RPC casts stay casts (`CAST_AS_CALL = False`): a create
answers 202 with the server in BUILD and the conductor, scheduler and compute run after
it, in green threads of this process, as in a deployed Nova.

Run (with this folder on PYTHONPATH): `python -m testtools.run nova_server.NovaServer`.
`NOVA_PORT` is the port; once it serves, one JSON line goes to stdout ({"port",
"project_id", "image"}); it serves until killed or until its parent process is gone.
`NOVA_COMPUTE_DRIVER`, if set, is the fake compute driver (default: the harness's own);
`NOVA_COMPUTE_HOSTS`, if over 1, starts that many compute services.
"""

# nova's functional package monkey-patches with eventlet on import: before anything
# that opens sockets or starts threads.
from nova.tests.functional import integrated_helpers  # noqa: I001

import contextlib
import io
import json
import os
import re
import sys
import threading
import time
import traceback
import warnings

import eventlet
import eventlet.wsgi

PORT = int(os.environ.get("NOVA_PORT", "18774"))
GLANCE_IMAGE = "155d900f-4e14-4e4c-a73d-069cbf4541e6"  # an image of nova's GlanceFixture
# oslo.service's eventlet WSGI server, which served nova-api under eventlet: a green
# thread per request from a pool of 100 (`wsgi_default_pool_size`), a backlog of 128.
POOL = 100
BACKLOG = 128


def _with_identity(app, project_id):
    def wrapped(environ, start_response):
        environ.setdefault("HTTP_X_AUTH_USER", "admin")
        environ.setdefault("HTTP_X_AUTH_PROJECT_ID", project_id)
        environ.setdefault("HTTP_X_ROLES", "reader,member,admin")
        return app(environ, start_response)

    return wrapped


# `GET /_harness/calls`: every request this process has answered so far, by method and
# path template (ids as {id}, query keys without their values), with its count, the
# seconds its handler took and its counts by status ("202"; "none" if the app raised
# before answering; a request cut short by its client is read short, and Nova's fault
# wrapper answers it 500). Served by the wrapper, never reaching Nova; benchmarks read it
# before and after a run to count what each side asked of Nova.
CALLS_PATH = "/_harness/calls"
_ID = re.compile(
    r"/(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9]+)(?=/|$)"
)


def _template(environ):
    path = _ID.sub("/{id}", environ.get("PATH_INFO", ""))
    query = environ.get("QUERY_STRING", "")
    keys = sorted({kv.split("=", 1)[0] for kv in query.split("&") if kv})
    return f"{environ.get('REQUEST_METHOD', '?')} {path}" + ("?" + "&".join(keys) if keys else "")


def _counted(app):
    calls = {}
    lock = threading.Lock()

    def wrapped(environ, start_response):
        if environ.get("PATH_INFO") == CALLS_PATH:
            with lock:
                body = json.dumps({k: list(v) for k, v in calls.items()}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        key = _template(environ)
        status = ["none"]

        def answer(code, headers, *exc_info):
            status[0] = code.split(" ", 1)[0]
            return start_response(code, headers, *exc_info)

        t0 = time.perf_counter()
        try:
            return list(app(environ, answer))
        finally:
            took = time.perf_counter() - t0
            with lock:
                seen = calls.setdefault(key, [0, 0.0, {}])
                seen[0] += 1
                seen[1] += took
                seen[2][status[0]] = seen[2].get(status[0], 0) + 1

    return wrapped


# `POST /_harness/archive`: what an operator's `nova-manage db archive_deleted_rows
# --all-cells --until-complete --purge` does (deployments run it on a schedule): deleted
# servers' rows move to the shadow tables, their instance mappings go, so Nova no longer
# finds them, as a marker either; then the shadow tables are emptied (SQLite reuses a
# deleted row's id, which the next archive could not move there again). Answers
# {"archived": bool, "report": the command's output}.
ARCHIVE_PATH = "/_harness/archive"


def _archiving(app):
    from nova.cmd import manage

    def wrapped(environ, start_response):
        if environ.get("PATH_INFO") != ARCHIVE_PATH:
            return app(environ, start_response)
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                code = manage.DbCommands().archive_deleted_rows(
                    until_complete=True, all_cells=True, verbose=True, purge=True
                )
        except Exception:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [(out.getvalue() + traceback.format_exc()).encode()]
        body = json.dumps({"archived": code == 1, "report": out.getvalue()}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return wrapped


class NovaServer(integrated_helpers._IntegratedTestBase):
    api_major_version = "v2.1"
    microversion = "latest"
    ADMIN_API = True
    # The base class turns every RPC cast into a call, so that a test knows an operation
    # has finished when its API call returns: a create would then schedule and build the
    # server inside the POST. A deployed Nova casts: the POST answers 202 with the server
    # in BUILD, and the conductor, scheduler and compute work after it.
    CAST_AS_CALL = False

    def _setup_compute_service(self):
        # NOVA_COMPUTE_DRIVER: another nova.virt.fake driver (a bigger host, for benchmarks).
        driver = os.environ.get("NOVA_COMPUTE_DRIVER")
        if driver:
            self.flags(compute_driver=driver)
        hosts = int(os.environ.get("NOVA_COMPUTE_HOSTS", "1"))
        if hosts > 1:
            # Requests scheduled at once all see the same weights and pick the same best
            # host; picking at random among the best `host_subset_size` spreads a burst,
            # as operators configure it.
            self.flags(host_subset_size=hosts, group="filter_scheduler")
        first = super()._setup_compute_service()
        # NOVA_COMPUTE_HOSTS: more hypervisors (compute2, compute3…), each a compute
        # service of its own.
        for i in range(2, hosts + 1):
            self._start_compute(f"compute{i}")
        return first

    def test_serve(self):
        # Nova's WarningsFixture turns some SQLAlchemy deprecation warnings into errors;
        # with a newer SQLAlchemy than Nova's constraints that is a 500 on os-stop.
        warnings.resetwarnings()
        warnings.simplefilter("ignore")
        app = _archiving(_counted(_with_identity(self.api_fixture.app(), self.api.project_id)))
        sock = eventlet.listen(("127.0.0.1", PORT), backlog=BACKLOG)
        pool = eventlet.GreenPool(POOL)
        server = eventlet.spawn(
            eventlet.wsgi.server, sock, app, custom_pool=pool, log_output=False, debug=False
        )
        self.addCleanup(server.kill)
        info = {"port": PORT, "project_id": self.api.project_id, "image": GLANCE_IMAGE}
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        parent = os.getppid()
        while os.getppid() == parent:
            time.sleep(0.5)
