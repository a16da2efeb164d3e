"""Locust needs gevent's monkey patching before ssl and urllib3 are first imported."""

from gevent import monkey

monkey.patch_all()
