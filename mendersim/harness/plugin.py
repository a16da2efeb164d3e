"""Wires the harness into Locust's events, in whichever role this process has.

- master: owns the store, leases devices, merges fleet reports, runs scenarios and the web tab;
- worker: simulates the devices it is leased and reports back;
- standalone (LocalRunner): both, talking to itself through Locust's local messages.
"""

from __future__ import annotations

import atexit
import logging
import sys
import time
from contextlib import ExitStack
from typing import Any

import gevent
from locust.html import get_html_report, process_html_filename
from locust.runners import (
    STATE_MISSING,
    STATE_RUNNING,
    STATE_SPAWNING,
    MasterRunner,
    WorkerRunner,
)

from mendersim.errors import ERROR_PREFIX, ConfigError, MendersimError
from mendersim.fleet.store import SeedStore
from mendersim.harness import wire
from mendersim.harness.config import mqtt_options, options
from mendersim.harness.config.options import HarnessOptions
from mendersim.harness.coordination import embedded
from mendersim.harness.coordination.acceptance import AcceptanceWatch, default_timeout
from mendersim.harness.coordination.coordinator import Coordinator
from mendersim.harness.coordination.fleetview import FleetView, process_report
from mendersim.harness.coordination.leases import NotEnoughDevices
from mendersim.harness.coordination.rollout import Rollout, RolloutPlan, check_access
from mendersim.harness.coordination.spawn_dispatch import SpawnDispatch
from mendersim.harness.coordination.storewriter import STORE_BEHIND_EXIT
from mendersim.harness.reporting import measures, recorder, webui
from mendersim.harness.reporting.recorder import Recorder
from mendersim.harness.reporting.thresholds import load_rules
from mendersim.harness.worker import heartbeat, lifetime, locust_costs, user
from mendersim.harness.worker.pacing import Admission
from mendersim.harness.worker.pool import DevicePool
from mendersim.logsetup import configure_from
from mendersim.report.markdown import key_figures
from mendersim.telemetry.commands import COMMANDS

logger = logging.getLogger(__name__)

REPORT_EVERY_S = 3.0  # standalone runs report to themselves as often as workers do
REPORT_KEY = "mendersim"
MEASURES_KEY = "mendersim_measures"


def setup(events: Any) -> None:
    """Register the harness on Locust's events; the locustfile calls this once."""
    user.lean_greenlets()
    lifetime.children_die_with_parent()  # before Locust forks its --processes workers
    events.init_command_line_parser.add_listener(options.add_arguments)
    events.init_command_line_parser.add_listener(recorder.add_options)
    events.init.add_listener(_on_init)


def _on_init(environment: Any, runner: Any, web_ui: Any = None, **_: Any) -> None:
    harness: Harness | None = None
    try:
        harness = Harness(environment, runner, web_ui)
        harness.start()
    except MendersimError as exc:
        if harness is not None:
            harness.abort()
        print(f"{ERROR_PREFIX}{exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


class Harness:
    def __init__(self, environment: Any, runner: Any, web_ui: Any) -> None:
        self.environment = environment
        self.runner = runner
        self.web_ui = web_ui
        self.options = HarnessOptions.from_parsed(environment.parsed_options)
        self.simulates = not isinstance(runner, MasterRunner)
        self.coordinates = not isinstance(runner, WorkerRunner)
        if isinstance(runner, MasterRunner):
            # Locust copies the master's custom options onto each worker with every spawn
            # message, possibly before the worker's own init; a worker's name and log are its own.
            for name in options.PER_PROCESS:
                delattr(environment.parsed_options, name)
        self._stack = ExitStack()
        self.pool: DevicePool | None = None
        self.coordinator: Coordinator | None = None
        self.view: FleetView | None = None
        self._rollout: Rollout | None = None
        self._commander: Any = None
        self._acceptance: AcceptanceWatch | None = None
        self.recorder: Recorder | None = None
        self._reporter: gevent.Greenlet | None = None
        self._quitting = False  # the stop under way ends the run (no swarm follows it)
        self._dispatch = SpawnDispatch()
        self._server: Any = None

    # -- set-up --------------------------------------------------------------------------------

    def start(self) -> None:
        # Simulating listeners first: at test stop, devices hand in their state before the
        # coordinating side writes the store.
        events = self.environment.events
        self._log_to(None)
        if self.simulates:
            key = self.options.worker_id or getattr(self.runner, "client_id", "local")
            locust_costs.apply(self.runner)  # before the first spawn
            self.pool = DevicePool(self.environment, key)
            self.environment.mendersim_pool = self.pool
            self.environment.mendersim_admission = None
            self.runner.register_message(wire.SLICE, self.pool.on_slice)
            self.runner.register_message(wire.COLLECT, self.pool.on_collect)
            events.test_start.add_listener(self._on_worker_start)
            events.test_stop.add_listener(self._on_worker_stop)
            if isinstance(self.runner, WorkerRunner):
                events.report_to_master.add_listener(self._on_report_to_master)
                lifetime.watch_master(self.runner)
                heartbeat.start(self.runner)
                events.quitting.add_listener(lifetime.exit_within_grace)
        if self.coordinates:
            self._start_coordinating()
            if isinstance(self.runner, MasterRunner):
                self._dispatch.watch(self.runner)
            events.test_start.add_listener(self._on_test_start)
            events.test_stopping.add_listener(self._on_test_stopping)
            events.test_stop.add_listener(self._on_test_stop)
            events.quitting.add_listener(self._on_quitting)

    def _start_coordinating(self) -> None:
        opts = self.options
        atexit.register(self._stack.close)  # the embedded server never outlives the run
        embedded.ensure_seeded(opts.db, opts.fleet)
        store = SeedStore.open(opts.db)
        self._stack.callback(store.close)
        self._log_to(store.fleet_config().get("logging"))
        self.coordinator = Coordinator(
            self.environment,
            store,
            opts,
            on_refused=self._refuse,
            live_workers=self._live_workers,
        )
        if self.coordinator.fleet_size == 0:
            where = f" for profiles {', '.join(opts.profiles)}" if opts.profiles else ""
            raise MendersimError(f"{opts.db}: no devices{where}")
        wanted = self.environment.parsed_options.num_users or 0
        if self.environment.parsed_options.headless and wanted > self.coordinator.fleet_size:
            raise NotEnoughDevices(wanted, self.coordinator.fleet_size)
        self.view = FleetView(
            opts.lag_bound, users=lambda: self.runner.user_count, workers=self._live_workers
        )
        self.environment.mendersim_fleet = self.view
        self.recorder = Recorder(
            self.environment,
            self.view,
            opts.db,
            self.coordinator.fleet_size,
            self.coordinator.fleet_config,
            store.makeup(),
        )
        if not self.environment.host:
            server_log = opts.server_log or str(self.recorder.server_log())
            self._server = embedded.start_embedded_server(self._stack, server_log)
            self.coordinator.use_embedded(self._server.url)
            self.environment.host = self._server.url
            self.environment.parsed_options.host = self._server.url
        self.runner.register_message(wire.LEASE, self.coordinator.on_lease)
        self.runner.register_message(wire.STATES, self.coordinator.on_states)
        self.runner.register_message(wire.RETURN, self.coordinator.on_return)
        if isinstance(self.runner, MasterRunner):
            self.environment.events.worker_report.add_listener(self._on_worker_report)
        self.environment.events.test_start.add_listener(self.recorder.on_test_start)
        if self.web_ui is not None:
            webui.install(
                self.web_ui,
                self.view,
                self.start_rollout,
                self.recorder.run_dir,
                measures.of(self.environment).stats,
                self.send_command,
            )
        self._check_needs(opts)
        seed = int(store.fleet_config().get("seed", 0))
        self._commander = mqtt_options.commander_for(self.environment, seed)
        logger.info(
            "fleet of %d devices from %s against %s",
            self.coordinator.fleet_size,
            opts.db,
            self.environment.host,
        )

    def _log_to(self, fleet_logging: dict[str, Any] | None) -> None:
        """Decisions to the rotating simulator.log, not to Locust's console; the fleet config's
        `logging` section applies where the store is at hand (master, standalone)."""
        opts = self.options
        configure_from(
            fleet_logging,
            file=opts.log_file or None,
            level=opts.log_level or None,
            console_info=("mendersim.harness",),
        )

    def abort(self) -> None:
        """Undo a partial start-up (stop the embedded server, close the store)."""
        self._stack.close()

    def _check_needs(self, opts: HarnessOptions) -> None:
        """What the scenario needs, checked before any device starts (ConfigError, exit 2)."""
        if opts.scenario == "rollout" and self._server is None and not opts.mgmt_token:
            raise ConfigError(
                "--mendersim-mgmt-token",
                f"the rollout scenario needs a management token for {self.environment.host} "
                "(MENDERSIM_MGMT_TOKEN or --mendersim-mgmt-token-file)",
            )
        self.coordinator.acceptance_key()  # a host that is no server URL stops here
        if opts.scenario == "rollout":
            check_access(self._management(), self.environment.host)
        thresholds_file = getattr(self.environment.parsed_options, "thresholds", "")
        if thresholds_file:
            load_rules(thresholds_file)

    def _management(self, token: str = "") -> Any:
        if not token and self._server is not None:
            return self._server.management()
        token = token or self.options.mgmt_token
        if not token:
            raise ConfigError(
                "--mendersim-mgmt-token",
                f"a rollout needs a management token for {self.environment.host}",
            )
        from mendersim.mender_api.management import ManagementClient

        return ManagementClient(self.environment.host, token)

    def _rollout_plan(self, share: float, artifact_size: int, delay: float) -> RolloutPlan:
        return RolloutPlan(
            share=share,
            artifact_size=artifact_size,
            device_types=self.coordinator.device_types(),
            start_delay_s=delay,
            identities=self.coordinator.identities,
        )

    def start_rollout(self, share: float, artifact_size: int, token: str) -> str:
        """The Fleet tab's "Roll out": deploy now to a share of the accepted devices."""
        if not 0 < share <= 1:
            raise ConfigError("share", f"{share} is not in (0, 1]")
        if artifact_size <= 0:
            raise ConfigError("artifact_size", "must be more than zero")
        if self.runner.state not in (STATE_SPAWNING, STATE_RUNNING):
            raise MendersimError("roll out: start a swarm first")
        if self._rollout is not None and self._rollout.running:
            raise MendersimError("roll out: a rollout is already in progress")
        management = self._management(token)  # refuses before anything starts
        check_access(management, self.environment.host)
        plan = self._rollout_plan(share, artifact_size, 0.0)
        self._rollout = Rollout(self.environment, self.view, plan, lambda: management)
        self._rollout.start()
        return f"rollout to {share:.0%} of the accepted devices started"

    def send_command(self, command: str, share: float, args: dict[str, Any]) -> str:
        """The Fleet tab's "Command": send a command now to a share of the fleet over MQTT;
        the round trips go to `mqtt command`."""
        if command not in COMMANDS:
            raise ConfigError("command", f"{command!r} is not one of {', '.join(COMMANDS)}")
        if not 0 < share <= 1:
            raise ConfigError("share", f"{share} is not in (0, 1]")
        if self._commander is None:
            raise ConfigError("--mendersim-mqtt-host", "commands need an MQTT broker")
        if self.runner.state not in (STATE_SPAWNING, STATE_RUNNING):
            raise MendersimError("command: start a swarm first")
        sent = self._commander.send(command, share, args)
        known = len(self._commander.devices)
        return f"{command} sent to {sent} of the {known} devices known over MQTT"

    def _live_workers(self) -> list[str]:
        if isinstance(self.runner, MasterRunner):
            return [c.id for c in self.runner.clients.values() if c.state != STATE_MISSING]
        return ["local"]

    # -- coordinating side ---------------------------------------------------------------------

    def _on_test_start(self, **_: Any) -> None:
        # The web UI's start form may have changed the options of this swarm.
        try:
            opts = self.options.reread(self.environment.parsed_options)
            self._check_needs(opts)
        except MendersimError as exc:
            self._refuse(str(exc))
            return
        self.options = opts
        self.coordinator.reconfigure(opts)
        self.view.new_swarm(opts.lag_bound)
        self._rollout = None
        if opts.scenario == "rollout":
            plan = self._rollout_plan(
                opts.rollout_share, opts.rollout_artifact_size, opts.rollout_delay
            )
            self._rollout = Rollout(self.environment, self.view, plan, self._management)
        wanted = getattr(self.runner, "target_user_count", None) or (
            self.environment.parsed_options.num_users or 0
        )
        if wanted > self.coordinator.fleet_size:
            self._refuse(str(NotEnoughDevices(wanted, self.coordinator.fleet_size)))
            return
        self.coordinator.start_writing()
        timeout = opts.accept_timeout or default_timeout(
            self.coordinator.poll_interval(),
            opts.time_scale,
            opts.ramp_window if opts.scenario == "ramp" else 0.0,
        )
        self._acceptance = AcceptanceWatch(self.environment, self.view, timeout)
        self._acceptance.start()
        if not isinstance(self.runner, MasterRunner):
            self._reporter = gevent.spawn(self._report_locally)
        if self._rollout is not None:
            self._rollout.start()
        if self._commander is not None:
            self._commander.start()

    def _on_test_stopping(self, **_: Any) -> None:
        self.view.stopping()
        if self._dispatch.end():
            logger.info("stopped mid-ramp: no more spawn messages go to the workers")
        if self._acceptance is not None:
            self._acceptance.stop()
        if self._rollout is not None:
            self._rollout.stop()
        if self._commander is not None:
            self._commander.stop()
        headless = bool(getattr(self.environment.parsed_options, "headless", False))
        # a worker's last figures arrive ahead of its final state (pool.on_collect)
        self.coordinator.collect(self._live_workers(), quitting=self._quitting or headless)
        if not isinstance(self.runner, MasterRunner):
            # The final figures, while the stopped devices are still counted: the periodic
            # report ends first, or its next tick would count only the devices still running.
            self._stop_local_reports()
            self.view.update("local", process_report(self.pool, self.environment))

    def _on_test_stop(self, **_: Any) -> None:
        self._stop_local_reports()
        self.coordinator.write_pending()

    def _stop_local_reports(self) -> None:
        if self._reporter is not None:
            self._reporter.kill(block=False)
            self._reporter = None

    def _on_quitting(self, **_: Any) -> None:
        """Every way a run ends passes here; SIGTERM skips Locust's own stop and HTML report.
        Once: Locust's shutdown runs twice when a signal's shutdown ends the main greenlet,
        and a second pass would write the report again from a fleet already gone."""
        if self._quitting:
            return
        self._quitting = True
        began = time.monotonic()
        if self.runner.state in (STATE_SPAWNING, STATE_RUNNING):
            logger.info("stopping devices before exit")
            self.runner.stop()
            html = getattr(self.environment.parsed_options, "html_file", None)
            if html:
                self._write_html()
        stopped = time.monotonic()
        self.coordinator.finish()
        if self.coordinator.writer.behind:
            code = self.environment.process_exit_code or 0
            self.environment.process_exit_code = max(code, STORE_BEHIND_EXIT)
        written = time.monotonic()
        self._write_report()
        reported = time.monotonic()
        self._stack.close()  # the embedded server, then the store
        logger.info(
            "exit: devices stopped and their state taken in %.1f s, the store's last write "
            "%.1f s, the report %.1f s, closing %.1f s",
            stopped - began,
            written - stopped,
            reported - written,
            time.monotonic() - reported,
        )

    def _write_html(self) -> None:
        opts = self.environment.parsed_options
        process_html_filename(opts)
        with open(opts.html_file, "w", encoding="utf-8") as file:
            file.write(get_html_report(self.environment, show_download_link=False))

    def _write_report(self) -> None:
        try:
            status = self._server.management().mendersim_status() if self._server else None
            path = self.recorder.finish(
                status, self._failure_logs(), server=self.coordinator.acceptance_key()
            )
        except (OSError, MendersimError, ValueError) as exc:
            logger.error("mendersim: run report not written: %s", exc)
            return
        if path is not None:
            self.environment.mendersim_report = path
            figures = key_figures(self.view.snapshot())
            logger.info("run report: %s%s", path, f" ({figures})" if figures else "")

    def _failure_logs(self) -> dict[str, Any] | None:
        """The rollout's failure logs for the report; a server that cannot answer costs that
        section only."""
        if self._rollout is None:
            return None
        try:
            return self._rollout.failure_logs()
        except (MendersimError, OSError) as exc:
            logger.warning("run report: failure logs not read: %s", exc)
            return {"error": str(exc)}

    def _on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        if REPORT_KEY in data:
            self.view.update(client_id, data[REPORT_KEY])
        if MEASURES_KEY in data:
            measures.of(self.environment).merge(data[MEASURES_KEY])

    def _report_locally(self) -> None:
        while True:
            gevent.sleep(REPORT_EVERY_S)
            self.view.update("local", process_report(self.pool, self.environment))

    def _refuse(self, message: str) -> None:
        """Stop the run with a one-line error and exit code 2 (headless) or stop it (web UI)."""
        if self.environment.process_exit_code == 2:
            return  # already refused and stopping
        logger.error("mendersim: error: %s", message)
        self.environment.process_exit_code = 2
        if getattr(self.environment.parsed_options, "headless", False):
            gevent.spawn(self.runner.quit)
        else:
            gevent.spawn(self.runner.stop)

    # -- simulating side -----------------------------------------------------------------------

    def _on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        data[REPORT_KEY] = process_report(self.pool, self.environment)
        data[MEASURES_KEY] = measures.of(self.environment).take()  # after the lag sample

    def _on_worker_start(self, **_: Any) -> None:
        # A worker's options are the master's by now (Locust copies them with the spawn).
        parsed = self.environment.parsed_options
        pacing = getattr(parsed, "mendersim_start_pacing", "adaptive")
        bound = float(getattr(parsed, "mendersim_lag_bound", self.options.lag_bound))
        self.environment.mendersim_admission = Admission(bound) if pacing == "adaptive" else None
        self.pool.start_flushing()

    def _on_worker_stop(self, **_: Any) -> None:
        admission = self.environment.mendersim_admission
        if admission is not None and admission.pacer.admitted:
            logger.info(admission.summary())
        self.pool.stop_flushing()
        self.pool.flush()
