"""Import Locust without its gevent monkey patching inside pytest.

The pytest process is shared with other areas' tests: patching after one of them imported ssl
(through requests) recurses in ssl, and patching up front hangs their multiprocessing. The
in-process tests here need no patched sockets; what does (a write that must yield) runs in a
subprocess, patched as in a real run. Kept in each test directory so that each runs alone."""

import os

from gevent import monkey

if not monkey.is_module_patched("socket"):
    os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
    try:
        import locust  # noqa: F401
    finally:
        del os.environ["LOCUST_SKIP_MONKEY_PATCH"]
