"""One embedded server per test module, the spec check, and device/artifact factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from server_testkit import SimDevice, SpecCheck

from mendersim.artifact.writer import write_artifact
from mendersim.server.process import ServerHandle, running_server


@pytest.fixture(scope="session")
def spec_check(mender_specs: Path) -> SpecCheck:
    return SpecCheck(mender_specs / "dist_openapi.yaml")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    with running_server(data_dir=tmp_path_factory.mktemp("server-data")) as handle:
        yield handle


@pytest.fixture
def make_device(server: ServerHandle, spec_check: SpecCheck) -> Callable[..., SimDevice]:
    def make(key_type: str = "ed25519", **kwargs) -> SimDevice:
        return SimDevice(server.url, spec_check, key_type, **kwargs)

    return make


@pytest.fixture(scope="session")
def make_artifact(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Write a real artifact (the writer under test elsewhere) and return its path."""
    directory = tmp_path_factory.mktemp("artifacts")

    def make(name: str, device_type: str = "sim-device", size: int = 4096) -> Path:
        path = directory / f"{name}-{device_type}-{size}.mender"
        if not path.exists():
            write_artifact(path, name=name, device_types=[device_type], payload_size=size)
        return path

    return make
