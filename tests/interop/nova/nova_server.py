"""A real Nova on a TCP port, for the `openstack` driver's tests. Runs in Nova's venv.

Nova's own functional-test base (`_IntegratedTestBase`) runs the real API, conductor,
scheduler and a fake compute (nova.virt.fake) in one process, with placement, SQLite, a
fake RPC transport and in-process Glance and Neutron fixtures. This serves that nova-api
WSGI app over HTTP (wsgiref), so openstacksdk talks to a genuine Nova. Identity is
stubbed: the app reads X-Auth-User / X-Auth-Project-Id / X-Roles, filled in here.

Run (with this folder on PYTHONPATH): `python -m testtools.run nova_server.NovaServer`.
`NOVA_PORT` is the port; once it serves, one JSON line goes to stdout ({"port",
"project_id", "image"}); it serves until killed or until its parent process is gone.
`NOVA_COMPUTE_DRIVER`, if set, is the fake compute driver (default: the harness's own).
"""

# nova's functional package monkey-patches with eventlet on import: before anything
# that opens sockets or starts threads.
from nova.tests.functional import integrated_helpers  # noqa: I001

import json
import os
import sys
import threading
import time
import warnings
from wsgiref import simple_server

PORT = int(os.environ.get("NOVA_PORT", "18774"))
GLANCE_IMAGE = "155d900f-4e14-4e4c-a73d-069cbf4541e6"  # an image of nova's GlanceFixture


class _Quiet(simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


def _with_identity(app, project_id):
    def wrapped(environ, start_response):
        environ.setdefault("HTTP_X_AUTH_USER", "admin")
        environ.setdefault("HTTP_X_AUTH_PROJECT_ID", project_id)
        environ.setdefault("HTTP_X_ROLES", "reader,member,admin")
        return app(environ, start_response)

    return wrapped


class NovaServer(integrated_helpers._IntegratedTestBase):
    api_major_version = "v2.1"
    microversion = "latest"
    ADMIN_API = True

    def _setup_compute_service(self):
        # NOVA_COMPUTE_DRIVER: another nova.virt.fake driver (a bigger host, for benchmarks).
        driver = os.environ.get("NOVA_COMPUTE_DRIVER")
        if driver:
            self.flags(compute_driver=driver)
        return super()._setup_compute_service()

    def test_serve(self):
        # Nova's WarningsFixture turns some SQLAlchemy deprecation warnings into errors;
        # with a newer SQLAlchemy than Nova's constraints that is a 500 on os-stop.
        warnings.resetwarnings()
        warnings.simplefilter("ignore")
        app = _with_identity(self.api_fixture.app(), self.api.project_id)
        httpd = simple_server.make_server("127.0.0.1", PORT, app, handler_class=_Quiet)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.addCleanup(httpd.shutdown)
        info = {"port": PORT, "project_id": self.api.project_id, "image": GLANCE_IMAGE}
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        parent = os.getppid()
        while os.getppid() == parent:
            time.sleep(0.5)
