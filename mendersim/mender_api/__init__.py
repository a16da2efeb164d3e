"""A small synchronous client of Mender's management API (real servers and the embedded one)."""
