"""Patch with gevent before any test module imports ssl, urllib3 or requests.

Locust patches at import; if ssl was imported unpatched first (by a test using requests, say),
importing Locust later in the same pytest process recurses in ssl. Patching here, once, before
collection, keeps every area's tests importable together."""

from gevent import monkey

if not monkey.is_module_patched("socket"):
    monkey.patch_all()
