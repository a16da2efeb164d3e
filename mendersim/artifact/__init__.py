"""Mender artifact format v3: streaming writer and reader."""

from mendersim.artifact.format import ArtifactError, ArtifactInfo, PayloadFile
from mendersim.artifact.reader import read_artifact
from mendersim.artifact.writer import write_artifact

__all__ = ["ArtifactError", "ArtifactInfo", "PayloadFile", "read_artifact", "write_artifact"]
