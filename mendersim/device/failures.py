"""Failure modes: where in the update each strikes and what the device logs when it does.

The log lines follow what the Mender C++ client writes in the same situation, so the failure logs
the server stores look like a real fleet's.
"""

from __future__ import annotations

DOWNLOAD_CONNECTION_RESET = "download_connection_reset"
DOWNLOAD_CHECKSUM_MISMATCH = "download_checksum_mismatch"
INSTALL_NO_SPACE = "install_no_space"
INSTALL_OUT_OF_MEMORY = "install_out_of_memory"
REBOOT_KERNEL_PANIC = "reboot_kernel_panic"
COMMIT_HEALTH_CHECK = "commit_health_check"

FAILURE_MODES: tuple[str, ...] = (
    DOWNLOAD_CONNECTION_RESET,
    DOWNLOAD_CHECKSUM_MISMATCH,
    INSTALL_NO_SPACE,
    INSTALL_OUT_OF_MEMORY,
    REBOOT_KERNEL_PANIC,
    COMMIT_HEALTH_CHECK,
)

# The error lines a device writes when a mode strikes during install, reboot or commit.
# Download modes are produced by the download itself (see download.py).
INSTALL_ERRORS = {
    INSTALL_NO_SPACE: (
        "Update Module output (stderr): dd: error writing '/dev/mmcblk0p3': "
        "No space left on device",
        "Update module terminated abnormally: exit status 1",
        "ArtifactInstall: Process returned non-zero exit status: exit status 1",
    ),
    INSTALL_OUT_OF_MEMORY: (
        "Update Module output (stderr): xz: Cannot allocate memory",
        "Update Module output (stderr): tar: Child returned status 1",
        "Update module terminated abnormally: signal: killed",
        "ArtifactInstall: Process returned non-zero exit status: Out of memory: "
        "Killed process (mender-update) while extracting the artifact",
    ),
}

REBOOT_ERRORS = (
    "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
    "ArtifactVerifyReboot: the device came back on the old partition: boot of the new rootfs "
    "failed (bootcount limit reached, bootloader switched back)",
    "Process returned non-zero exit status: ArtifactVerifyReboot: exit status 1",
)

COMMIT_ERRORS = (
    "Update Module output (stderr): health check failed: service 'application' is not running "
    "after 60 s",
    "ArtifactCommit_Enter script failed: exit status 1",
    "Process returned non-zero exit status: ArtifactCommit: exit status 1",
)

PHASE_OF = {
    DOWNLOAD_CONNECTION_RESET: "download",
    DOWNLOAD_CHECKSUM_MISMATCH: "download",
    INSTALL_NO_SPACE: "install",
    INSTALL_OUT_OF_MEMORY: "install",
    REBOOT_KERNEL_PANIC: "reboot",
    COMMIT_HEALTH_CHECK: "commit",
}
