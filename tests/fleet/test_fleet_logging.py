"""Logging setup: rotating file at the configured level, console for warnings only."""

from __future__ import annotations

import logging

import pytest

from mendersim.errors import ConfigError
from mendersim.logsetup import configure_logging


@pytest.fixture(autouse=True)
def restore_logger():
    logger = logging.getLogger("mendersim")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    yield
    for handler in logger.handlers:
        if handler not in saved[2]:
            handler.close()
    logger.setLevel(saved[0])
    logger.propagate = saved[1]
    logger.handlers[:] = saved[2]


def test_file_gets_decisions_console_only_warnings(tmp_path, capsys):
    log_file = tmp_path / "simulator.log"
    configure_logging(file=log_file, level="INFO")
    log = logging.getLogger("mendersim.fleet.seed")
    log.info("group %d decided", 1)
    log.debug("too chatty")
    log.warning("refused: because")
    text = log_file.read_text()
    assert "INFO mendersim.fleet.seed: group 1 decided" in text
    assert "too chatty" not in text and "refused: because" in text
    err = capsys.readouterr().err
    assert "group 1 decided" not in err and "refused: because" in err


def test_file_rotates_and_reconfiguring_replaces_handlers(tmp_path):
    log_file = tmp_path / "simulator.log"
    configure_logging(file=log_file, level="DEBUG", max_bytes=2048, backups=2)
    configure_logging(file=log_file, level="DEBUG", max_bytes=2048, backups=2)
    marked = [h for h in logging.getLogger("mendersim").handlers if h.level == logging.DEBUG]
    assert len(marked) == 1
    for i in range(200):
        logging.getLogger("mendersim.test").debug("line %d %s", i, "x" * 40)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "simulator.log",
        "simulator.log.1",
        "simulator.log.2",
    ]
    assert log_file.stat().st_size <= 2048


def test_bad_level_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="--log-level: unknown log level 'LOUD'"):
        configure_logging(file=tmp_path / "x.log", level="LOUD")


def test_run_level_news_reaches_the_console_device_decisions_do_not(tmp_path, capsys):
    from mendersim.logsetup import configure_from

    configure_from(
        {"file": str(tmp_path / "sim.log"), "level": "DEBUG"},
        console_info=("mendersim.harness",),
    )
    logging.getLogger("mendersim.harness.coordination.rollout").info(
        "rollout: all 3 targets finished"
    )
    logging.getLogger("mendersim.device.engine").info("device d-1: accepted after 1.0 s")
    err = capsys.readouterr().err
    assert "rollout: all 3 targets finished" in err and "accepted after" not in err
    text = (tmp_path / "sim.log").read_text()
    assert "rollout: all 3 targets finished" in text and "device d-1: accepted after" in text


def test_command_line_values_win_over_the_fleet_section(tmp_path):
    from mendersim.logsetup import configure_from

    chosen = tmp_path / "chosen.log"
    configure_from(
        {"file": str(tmp_path / "fleet.log"), "level": "ERROR"}, file=str(chosen), level="INFO"
    )
    logging.getLogger("mendersim.fleet.seed").info("decided")
    assert "decided" in chosen.read_text() and not (tmp_path / "fleet.log").exists()
