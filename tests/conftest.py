"""Suite-wide set-up: Locust imported once without its gevent monkey patching, and the path of
Mender's own specs and artifacts.

All areas share one pytest process. Patching after a test module imported `ssl` (through
requests) recurses in ssl, and patching up front hangs the seeding tests' multiprocessing pool.
In-process tests therefore use gevent's own sockets where they need cooperation; what must run
patched (a Locust run, a write that has to yield) runs in a subprocess, patched as in a real run.
"""

import os
import pathlib

import pytest
from gevent import monkey

if not monkey.is_module_patched("socket"):
    os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
    try:
        import locust  # noqa: F401
    finally:
        del os.environ["LOCUST_SKIP_MONKEY_PATCH"]


@pytest.fixture(scope="session")
def mender_shared() -> pathlib.Path:
    """Mender's own specs and artifacts, in `shared/mender/` beside the checkout."""
    return pathlib.Path(__file__).resolve().parents[2] / "shared" / "mender"
