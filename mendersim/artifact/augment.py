"""How an augmented header combines with the original one, as mender-artifact 4.4.0 reads it.

The augmented header (`header-augment.tar.<ext>`, its checksum in `manifest-augment`) is outside
the manifest signature, so a signed artifact can be completed after signing. What it may change
follows handlers/module_image.go and rootfs_image.go:
- module payloads: type-info `artifact_provides` and `artifact_depends` and the meta-data are
  merged into the original's (`mergeJsonStructures`: objects merge key by key, other values are
  replaced, a change of JSON kind is refused); `clears_artifact_provides` replaces the original's
  when the augmented type-info has one;
- rootfs-image payloads: provides and depends are the augmented type-info's alone, meta-data
  stays the original's, clears as for modules.
"""

from __future__ import annotations

import copy
from typing import Any

from mendersim.artifact.format import ROOTFS_IMAGE, ArtifactError


def merge_json(original: dict[str, Any], override: dict[str, Any], where: str = "") -> dict:
    """mender-artifact's mergeJsonStructures, with its error texts."""
    merged = copy.deepcopy(original)
    for key, value in override.items():
        label = f"{where}{key}"
        if key not in merged:
            merged[key] = copy.deepcopy(value)
            continue
        before = original[key]
        if isinstance(value, dict):
            if not isinstance(before, dict):
                raise ArtifactError(f"{label}: Cannot combine JSON object with non-object.")
            merged[key] = merge_json(before, value, f"{label}: ")
            continue
        if isinstance(value, list) and not isinstance(before, list):
            raise ArtifactError(f"{label}: Type conflict: list/non-list")
        if not isinstance(value, list):
            if isinstance(before, dict):
                raise ArtifactError(f"{label}: Type conflict: object/non-object")
            if isinstance(before, list):
                raise ArtifactError(f"{label}: Type conflict: list/non-list")
        merged[key] = copy.deepcopy(value)
    return merged


def _section(type_info: dict[str, Any], name: str) -> dict[str, Any]:
    value = type_info.get(name)
    return value if isinstance(value, dict) else {}


def _clears(type_info: dict[str, Any]) -> list[str] | None:
    clears = type_info.get("clears_artifact_provides")
    return [str(p) for p in clears] if isinstance(clears, list) else None


class Combined:
    """A payload's type-info and meta-data after the augmented header, if any, is applied."""

    def __init__(
        self,
        type_info: dict[str, Any],
        meta_data: dict[str, Any],
        augment_type: str | None = None,
        augment_type_info: dict[str, Any] | None = None,
        augment_meta_data: dict[str, Any] | None = None,
    ) -> None:
        self.provides = _section(type_info, "artifact_provides")
        self.depends = _section(type_info, "artifact_depends")
        self.clears = _clears(type_info) or []
        self.meta_data = meta_data
        if augment_type is None:
            return
        extra = augment_type_info or {}
        if augment_type == ROOTFS_IMAGE:
            self.provides = _section(extra, "artifact_provides")
            self.depends = _section(extra, "artifact_depends")
        else:
            self.provides = merge_json(self.provides, _section(extra, "artifact_provides"))
            self.depends = merge_json(self.depends, _section(extra, "artifact_depends"))
            self.meta_data = merge_json(meta_data, augment_meta_data or {})
        replaced = _clears(extra)
        if replaced is not None:
            self.clears = replaced
