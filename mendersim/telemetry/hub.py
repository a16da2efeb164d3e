"""The telemetry of one simulating process: a session and a stream per device, one loop, one
ground-truth file. The harness's device pool calls `start` and `stop` as devices come and go."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from mendersim.schedule import Schedule
from mendersim.telemetry import spec as telemetry_spec
from mendersim.telemetry.commands import CommandHandler
from mendersim.telemetry.gateway import Gateway
from mendersim.telemetry.gevent_loop import GeventMqttLoop
from mendersim.telemetry.sensors import DeviceSensors
from mendersim.telemetry.session import Session
from mendersim.telemetry.settings import MqttSettings
from mendersim.telemetry.streaming import Streaming
from mendersim.telemetry.truth import TruthWriter

log = logging.getLogger(__name__)


def hub_for(environment: Any, key: str, *, shared_truth: bool) -> TelemetryHub | None:
    """The process's hub when the run names a broker; a worker writes its own truth file."""
    from mendersim.harness.config.mqtt_options import settings_from

    settings = settings_from(environment.parsed_options)
    if settings is None:
        return None
    path = Path(settings.truth_file)
    if not shared_truth:
        path = path.with_name(f"{path.stem}.{key}{path.suffix}")
    return TelemetryHub(environment, settings, str(path))


class TelemetryHub:
    def __init__(self, environment: Any, settings: MqttSettings, truth_path: str) -> None:
        self.environment = environment
        self.settings = settings
        self.loop = GeventMqttLoop()
        self.truth = TruthWriter(truth_path)
        self._specs: dict[str, telemetry_spec.TelemetrySpec | None] = {}
        self._running: dict[Any, tuple[Session, Streaming | Gateway | None]] = {}
        self._origin = time.time()
        self._schedule: Schedule | None = None  # made with the first device's clock
        self._refused_logged = False

    def add_profile(self, name: str, document: dict[str, Any]) -> None:
        if name not in self._specs:
            self._specs[name] = telemetry_spec.from_profile(document)

    def start(self, device: Any, engine: dict[str, Any], clock: Any = None) -> None:
        """Open the device's session and start its streams, or its child sensors and edge
        processing for a gateway (profiles without telemetry only hold a session, for
        commands)."""
        record = device.record
        spec = self._specs.get(record.profile)
        seed = int(engine.get("seed", 0))
        handler = CommandHandler(device)

        session = Session(
            self.environment,
            self.loop,
            self.settings,
            record.device_id,
            record.profile,
            seed=seed,
            birth={"device_type": record.device_type, "artifact_name": record.artifact_name},
            on_command=handler.handle,
            offline=getattr(device.transport, "offline", None),
            stalls=getattr(device.transport, "stalls", None),
            paused=lambda: handler.rebooting,
        )
        handler.session = session
        streaming: Streaming | Gateway | None = None
        if spec is not None:

            def truth(device_id: str, anomaly: Any, profile: str = record.profile) -> None:
                self.truth.record(device_id, profile, anomaly)

            time_scale = float(engine.get("time_scale", 1.0))
            if spec.gateway is not None:
                streaming = Gateway(
                    session,
                    spec,
                    record.device_id,
                    record.attributes(),
                    seed,
                    on_anomaly=truth,
                    origin=self._origin,
                    time_scale=time_scale,
                    qos=self.settings.qos,
                    clock=clock,
                )
            else:
                sensors = DeviceSensors(
                    spec, record.device_id, record.attributes(), seed, on_anomaly=truth
                )
                if self._schedule is None:
                    self._schedule = Schedule(clock)
                streaming = Streaming(
                    session,
                    sensors,
                    self._schedule,
                    origin=self._origin,
                    time_scale=time_scale,
                    qos=self.settings.qos,
                )
            streaming.start()
        session.start()
        self._running[device] = (session, streaming)

    def stop(self, device: Any) -> None:
        running = self._running.pop(device, None)
        if running is None:
            return
        session, streaming = running
        if streaming is not None:
            streaming.stop()
        session.stop()

    def close(self) -> None:
        for device in list(self._running):
            self.stop(device)
        if self._schedule is not None:
            self._schedule.stop()
        self.truth.close()
