"""The embedded Mender-compatible server."""
