"""User-facing errors: one line naming what and where, printed without a traceback."""

ERROR_PREFIX = "mendersim: error: "  # how every command prints a MendersimError


class MendersimError(Exception):
    """An error the command line prints as one line and turns into a non-zero exit."""

    exit_code = 2


class ConfigError(MendersimError):
    """A configuration, profile or command-line value that cannot be used."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}")
        self.where = where
        self.what = what
