"""Mender artifact format v3: streaming writer and reader."""
