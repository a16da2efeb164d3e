"""The seed store's disk fills up mid-run: no traceback, one line per failed write, exit code 3,
the pending state in a side file, applied by the next run; nothing the server finished is lost."""

from __future__ import annotations

import time

import pytest
from chaos_kit import compare, deploying, locust, run_args, seed, server, wait_exit
from fullfs import fill, small_tmpfs

from mendersim.harness.coordination.storewriter import STORE_BEHIND_EXIT, side_file

pytestmark = pytest.mark.integration

DEVICES = 20


def test_disk_full_mid_run_keeps_every_state(tmp_path):
    with small_tmpfs(tmp_path / "disk", "8m") as disk, server(tmp_path) as srv:
        db = seed(tmp_path, DEVICES, db_dir=disk)
        log = tmp_path / "run.log"
        run = locust(*run_args(db, DEVICES, 12, srv.url), log=log)
        with deploying(srv, tmp_path, DEVICES, [run]):
            time.sleep(3)
            filler = fill(disk)
            code = wait_exit(run, 60, log)
        console = log.read_text()
        assert code == STORE_BEHIND_EXIT, console[-3000:]
        assert "Traceback" not in console and "Uncaught exception" not in console
        failures = [line for line in console.splitlines() if "store write failed" in line]
        assert failures, console[-3000:]
        assert all(f"store write failed: {db}: database or disk is full" in f for f in failures)
        assert side_file(db).exists()
        assert "the next run applies them" in console

        filler.unlink()
        rerun_log = tmp_path / "rerun.log"
        rerun = locust(*run_args(db, DEVICES, 4, srv.url), log=rerun_log)
        rerun_code = wait_exit(rerun, 60, rerun_log)
        srv.stop()
        result = compare(srv.db, db, None)
        rerun_console = rerun_log.read_text()
        assert rerun_code in (0, 1), rerun_console[-3000:]
        assert "device states from" in rerun_console and not side_file(db).exists()
        assert result.server_finished >= DEVICES, result
        assert result.missing_before_cutoff == 0 and result.repeated == 0, result
        print(f"disk full: {len(failures)} failed writes; after the next run: {result}")
