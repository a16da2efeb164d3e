"""Tokens given to a run: where they come from, and keeping them off the web UI's page.

Locust renders every web-UI option with its value into the start page, secret ones too (only
the input is masked), and a masked field posted back empty would wipe the token. Secrets are
therefore blanked in the page and an empty secret field in `POST /swarm` keeps the value the
process started with.
"""

from __future__ import annotations

from typing import Any

from mendersim.mender_api.tokens import read_token_file

# parsed-option names of every secret option of the locustfile
SECRET_OPTIONS = ("mendersim_mgmt_token", "mendersim_tenant_token", "influx_token")


def token_from(value: str, file: str, option: str) -> str:
    """The token given directly (option or environment), else read from `file`."""
    if value or not file:
        return value
    return read_token_file(file, option)


def blank_secrets(extra_options: dict[str, dict[str, Any]]) -> None:
    """Remove the values of secret options from the start page's option list."""
    for name, described in extra_options.items():
        if described.get("is_secret") or name in SECRET_OPTIONS:
            described["default_value"] = ""


def posted_without_blanks(form: Any) -> Any:
    """The form of a swarm request minus secret fields left empty (they keep their value) and
    an empty host (the run keeps its server, the embedded one when none was given)."""
    kept = form.copy()
    for name in (*SECRET_OPTIONS, "host"):
        if name in kept and not kept.get(name):
            kept.pop(name)
    return kept
