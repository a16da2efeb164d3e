"""Suite-wide set-up: Locust imported once without its gevent monkey patching, Mender's OpenAPI
specs, and artifacts made by Mender's own `mender-artifact`.

All areas share one pytest process. Patching after a test module imported `ssl` (through
requests) recurses in ssl, and patching up front hangs the seeding tests' multiprocessing pool.
In-process tests therefore use gevent's own sockets where they need cooperation; what must run
patched (a Locust run, a write that has to yield) runs in a subprocess, patched as in a real run.
"""

import importlib.util
import os
import pathlib
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from gevent import monkey

if not monkey.is_module_patched("socket"):
    os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
    try:
        import locust  # noqa: F401
    finally:
        del os.environ["LOCUST_SKIP_MONKEY_PATCH"]


SPECS = pathlib.Path(__file__).resolve().parents[1] / ".cache" / "mender-specs"
MENDER_ARTIFACT = shutil.which("mender-artifact") or "/usr/bin/mender-artifact"


@pytest.fixture(scope="session")
def mender_specs() -> pathlib.Path:
    """Mender's OpenAPI specs, where `ensure_mender_specs` (ci/setup.sh) puts them."""
    if not (SPECS / "dist_openapi.yaml").is_file():
        pytest.fail(
            f"Mender's OpenAPI specs are missing in {SPECS}: run "
            "`source ci/setup.sh && ensure_mender_specs` (ci/test.sh does)",
            pytrace=False,
        )
    return SPECS


@pytest.fixture(scope="session")
def mender_tool_artifacts(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Artifacts written now by Mender's own `mender-artifact` (installed by ci/test.sh):
    `rootfs.mender` (512,000-byte `dump`, device type qemux86-64) and `single-file.mender`
    (a module-image of four files for qemux86-64 and docker-client) and `augmented.mender` (a
    `delta` module-image for qemux86-64 whose augmented header adds a file, a provide, a depend
    and meta-data merged into the original's)."""
    directory = tmp_path_factory.mktemp("mender-tool")
    dump = directory / "dump"
    dump.write_bytes(bytes(range(256)) * 2000)
    files = {"dest_dir": b"/\n", "filename": b"date.created\n", "permissions": b"644\n",
             "date.created": b"Tue Dec  1 00:00:00 UTC 2026\n"}  # fmt: skip
    files_aug = {"meta.json": b'{"source": {"name": "base"}, "chunks": [1]}',
                 "meta-augment.json": b'{"source": {"checksum": "c0ffee"}, "level": 3}',
                 "delta.bin": b"delta\n", "patch.bin": b"patch\n"}  # fmt: skip
    for name, content in {**files, **files_aug}.items():
        (directory / name).write_bytes(content)
    commands = [
        ["write", "rootfs-image", "-n", "deployments-phase-testing", "-t", "qemux86-64",
         "-f", str(dump), "-o", str(directory / "rootfs.mender")],
        ["write", "module-image", "-T", "single-file", "-n", "date", "-t", "qemux86-64",
         "-t", "docker-client", *[a for n in files for a in ("-f", str(directory / n))],
         "-o", str(directory / "single-file.mender")],
        ["write", "module-image", "-T", "delta", "-n", "delta-1", "-t", "qemux86-64",
         "-f", str(directory / "delta.bin"), "-m", str(directory / "meta.json"),
         "--augment-type", "delta", "--augment-file", str(directory / "patch.bin"),
         "--augment-meta-data", str(directory / "meta-augment.json"),
         "--augment-provides", "rootfs-image.delta.source:1.0",
         "--augment-depends", "rootfs-image.checksum:ab12",
         "-o", str(directory / "augmented.mender")],
    ]  # fmt: skip
    for args in commands:
        result = subprocess.run(
            [MENDER_ARTIFACT, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            pytest.fail(f"mender-artifact {' '.join(args[:2])}: {result.stderr}", pytrace=False)
    return directory


@pytest.fixture
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a running VictoriaMetrics (the InfluxDB v2 write API), started by
    tests/influx/tsdb.py, for the tests of other areas that write to a time-series server."""
    path = pathlib.Path(__file__).with_name("influx") / "tsdb.py"
    spec = importlib.util.spec_from_file_location("tsdb", path)
    tsdb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tsdb)
    with tsdb.victoria_metrics(tmp_path_factory.mktemp("victoria-metrics")) as url:
        yield url
