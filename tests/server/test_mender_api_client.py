"""The management client's errors: one line with method, path, status and the server's message."""

from __future__ import annotations

import pytest

from mendersim.mender_api.management import ManagementClient, MenderApiError
from mendersim.server.process import free_port

pytestmark = pytest.mark.integration


def test_error_names_call_status_and_message(server):
    api = server.management()
    with pytest.raises(MenderApiError) as caught:
        api.deployment_statistics("missing")
    error = caught.value
    assert (error.method, error.status) == ("GET", 404)
    assert error.path == "/api/management/v1/deployments/deployments/missing/statistics"
    assert str(error).endswith("HTTP 404: deployment not found")
    assert "\n" not in str(error)


def test_wrong_token_and_no_server(server, tmp_path):
    with pytest.raises(MenderApiError, match="HTTP 401: management token missing or wrong"):
        ManagementClient(server.url, "wrong").count_devices()
    with pytest.raises(MenderApiError, match="no answer") as caught:
        ManagementClient(f"http://127.0.0.1:{free_port()}", "t", timeout=2).list_deployments()
    assert caught.value.status == 0
    with pytest.raises(Exception, match="no such artifact file"):
        server.management().upload_artifact(tmp_path / "missing.mender")


def test_create_deployment_needs_one_target(server):
    with pytest.raises(Exception, match="exactly one"):
        server.management().create_deployment("x", "y", devices=["a"], all_devices=True)
