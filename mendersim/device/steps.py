"""Statistics names, one per protocol step and never per device."""

AUTH = "auth"
INVENTORY = "inventory"
INVENTORY_CHURN = "inventory:churn"  # a PUT only churned attributes made necessary
DEVICECONFIG = "deviceconfig"  # the configuration the server holds for the device
DEVICECONFIG_REPORT = "deviceconfig:report"  # the applied configuration reported back
DEVICECONNECT = "deviceconnect connect"  # the websocket upgrade of mender-connect's link
DEVICECONNECT_PING = "deviceconnect ping"  # the device's ping until the server's pong
DEVICECONNECT_DROP = "deviceconnect drop"  # an open link lost (a failure entry, by reason)
NEXT = "deployments/next"
CONTROL_MAP = "deployments/update_control_map"  # a deployment's control map fetched again
DEPLOYMENT_LOG = "deployment log"
DOWNLOAD = "download"

# Deployment statuses a device reports (Mender's device deployments API).
STATUSES = (
    "downloading",
    "pause_before_installing",
    "installing",
    "pause_before_rebooting",
    "rebooting",
    "pause_before_committing",
    "success",
    "failure",
    "already-installed",
)


def status(value: str) -> str:
    """The step of a deployment status report, e.g. `status:downloading`."""
    return f"status:{value}"


def known() -> tuple[str, ...]:
    """Every step name the statistics may hold: what a thresholds file may name."""
    return (
        AUTH,
        INVENTORY,
        INVENTORY_CHURN,
        DEVICECONFIG,
        DEVICECONFIG_REPORT,
        NEXT,
        CONTROL_MAP,
        DEPLOYMENT_LOG,
        DOWNLOAD,
        DEVICECONNECT,
        DEVICECONNECT_PING,
        DEVICECONNECT_DROP,
        *(status(s) for s in STATUSES),
    )
