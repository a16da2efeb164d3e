"""A file cut inside the last member's padding is refused, as Go's tar reader (and so
mender-artifact and the client) refuses a short block; a cut at a block boundary after it is the
end of the archive."""

from __future__ import annotations

import io
import tarfile

import pytest

from mendersim.artifact.reader import ArtifactError, read_artifact
from mendersim.artifact.writer import write_artifact


# uncompressed, the payload tar is whole 512-byte blocks: it has no padding to cut into
@pytest.mark.parametrize("compression", ["gzip", "xz", "zstd"])
def test_cut_inside_the_last_members_padding_is_refused(tmp_path, compression):
    path = tmp_path / "a.mender"
    write_artifact(path, name="p", device_types=["d"], payload_size=1000, compression=compression)
    data = path.read_bytes()
    with tarfile.open(path) as outer:
        last = outer.getmembers()[-1]
    end = last.offset_data + last.size
    padded = -(-end // 512) * 512
    assert padded > end, "the last member must end inside a block for this test"
    for cut in (end + 1, padded - 1):
        with pytest.raises(ArtifactError) as caught:
            read_artifact(io.BytesIO(data[:cut]), device_type="d")
        assert caught.value.kind == "truncated", str(caught.value)
        assert "unexpected end of data" in str(caught.value)
    assert read_artifact(io.BytesIO(data[:padded]), device_type="d").name == "p"
