"""`ensure_mender_specs` without `../shared`: the pinned download, from a mirror on 127.0.0.1
named by MENDERSIM_SPECS_URL, checked against ci/mender-specs.sha256."""

import functools
import http.server
import os
import pathlib
import shutil
import subprocess
import threading
from collections.abc import Iterator

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
PINS = REPO / "ci" / "mender-specs.sha256"


def _pins() -> list[tuple[str, str, str]]:
    """(sha256, local name, upstream path) of every pinned spec file."""
    rows = (line.split() for line in PINS.read_text().splitlines())
    return [(r[0], r[1], r[2]) for r in rows if r and not r[0].startswith("#")]


@pytest.fixture
def mirror(tmp_path: pathlib.Path, mender_specs: pathlib.Path) -> Iterator[pathlib.Path]:
    """The specs laid out as raw.githubusercontent.com/mendersoftware lays them out, served over
    HTTP on 127.0.0.1; yields the served folder (its `url` file holds the base URL)."""
    root = tmp_path / "mirror"
    for _, name, path in _pins():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mender_specs / name, root / path)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    (tmp_path / "url").write_text(f"http://127.0.0.1:{server.server_address[1]}/")
    try:
        yield root
    finally:
        server.shutdown()
        server.server_close()


def _ensure(checkout: pathlib.Path, base_url: str) -> subprocess.CompletedProcess[str]:
    """Runs `source ci/setup.sh && ensure_mender_specs` in a checkout with nothing beside it."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env |= {"MENDERSIM_SPECS_URL": base_url, "NO_PROXY": "127.0.0.1"}
    return subprocess.run(
        ["bash", "-c", "source ci/setup.sh && ensure_mender_specs"],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _checkout(tmp_path: pathlib.Path) -> pathlib.Path:
    """A checkout's ci/ folder, alone in its parent: no ../shared to copy from."""
    checkout = tmp_path / "clone" / "mendersim"
    shutil.copytree(REPO / "ci", checkout / "ci")
    assert not (checkout.parent / "shared").exists()
    return checkout


def test_specs_download_from_the_mirror_and_match_their_pins(
    tmp_path: pathlib.Path, mirror: pathlib.Path
) -> None:
    checkout = _checkout(tmp_path)
    done = _ensure(checkout, (tmp_path / "url").read_text())
    assert done.returncode == 0, done.stderr
    cache = checkout / ".cache" / "mender-specs"
    for _, name, path in _pins():
        assert (cache / name).read_bytes() == (mirror / path).read_bytes()
    assert not list(cache.glob("*.part"))


def test_an_altered_spec_is_refused_and_not_kept(
    tmp_path: pathlib.Path, mirror: pathlib.Path
) -> None:
    checkout = _checkout(tmp_path)
    _, name, path = next(p for p in _pins() if p[1] == "dist_openapi.yaml")
    with (mirror / path).open("ab") as served:
        served.write(b"# altered\n")
    done = _ensure(checkout, (tmp_path / "url").read_text())
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        f"{name}: sha256 does not match ci/mender-specs.sha256"
    )
    cache = checkout / ".cache" / "mender-specs"
    assert not (cache / name).exists() and not (cache / f"{name}.part").exists()


def test_a_missing_file_on_the_mirror_names_its_path(
    tmp_path: pathlib.Path, mirror: pathlib.Path
) -> None:
    checkout = _checkout(tmp_path)
    _, _, path = _pins()[0]
    (mirror / path).unlink()
    done = _ensure(checkout, (tmp_path / "url").read_text())
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == f"cannot download {path}"
