import pytest

from mendersim.device import steps
from mendersim.harness.reporting.stats import failure_for


@pytest.mark.parametrize(
    ("step", "method", "status"),
    [
        (steps.AUTH, "POST", 200),
        (steps.AUTH, "POST", 401),
        (steps.NEXT, "POST", 404),
        (steps.NEXT, "GET", 204),
        (steps.status("installing"), "PUT", 204),
        (steps.status("downloading"), "PUT", 409),
        (steps.DOWNLOAD, "GET", 206),
    ],
)
def test_answers_the_protocol_expects_are_not_failures(step, method, status):
    assert failure_for(step, method, status) is None


@pytest.mark.parametrize(
    ("step", "method", "status"),
    [
        (steps.AUTH, "POST", 400),
        (steps.AUTH, "POST", 429),
        (steps.NEXT, "GET", 404),
        (steps.NEXT, "GET", 409),
        (steps.INVENTORY, "PUT", 401),
        (steps.DEPLOYMENT_LOG, "PUT", 500),
        (steps.DOWNLOAD, "GET", 403),
    ],
)
def test_other_answers_are_failures_named_by_code(step, method, status):
    assert failure_for(step, method, status) == f"HTTP {status}"
