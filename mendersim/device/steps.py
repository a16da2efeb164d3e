"""Statistics names, one per protocol step and never per device."""

AUTH = "auth"
INVENTORY = "inventory"
NEXT = "deployments/next"
DEPLOYMENT_LOG = "deployment log"
DOWNLOAD = "download"


def status(value: str) -> str:
    """The step of a deployment status report, e.g. `status:downloading`."""
    return f"status:{value}"
