"""Run metadata for comparing nights: which environment and server version a run loaded, and
why. The options are locust-plugins' run-info options (`--test-env`, `--test-version`,
`--description`, also `LOCUST_TEST_ENV`, `LOCUST_TEST_VERSION`, `LOCUST_DESCRIPTION`), which
it registers on Locust's events when imported, together with its `--check-*` exit-code checks;
its other listeners act only when their own options are given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import locust_plugins  # noqa: F401  (registers the options on import)

TAG_KEYS = ("test_env", "test_version")


@dataclass(frozen=True, slots=True)
class RunInfo:
    test_env: str = ""
    test_version: str = ""
    description: str = ""

    @classmethod
    def from_options(cls, options: Any) -> RunInfo:
        return cls(
            **{
                key: str(getattr(options, key, "") or "")
                for key in ("test_env", "test_version", "description")
            }
        )

    def tags(self) -> dict[str, str]:
        """InfluxDB tags: the values a night is grouped by (empty ones are left out)."""
        return {key: value for key in TAG_KEYS if (value := getattr(self, key))}

    def markdown(self) -> str:
        """One line for a job summary, empty when nothing was given."""
        labelled = (("environment", self.test_env), ("version", self.test_version))
        parts = [f"{label}: `{value}`" for label, value in labelled if value]
        if self.description:
            parts.append(self.description.replace("|", "\\|"))
        return " · ".join(parts)
