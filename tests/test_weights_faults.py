"""Faults of the weights files (issue 43, case 1): ``best.pt`` carries a checksum
like ``checkpoint.pt``; a damaged one is refused naming it, never loaded."""
from pathlib import Path

import pytest
import torch

from mvbook.checkpoints import CheckpointError, load_weights, save_weights
from mvbook.records import RunPaths
from mvbook.systems import load_network
from mvbook.train import train


def _train(tmp_path, system="mel", **kw):
    return train("synthetic", system, 1, "smoke", seed=1, progress=False,
                 cache_dir=tmp_path.parent / "cache-faults", **{"epochs": 1, "out": tmp_path / "out", **kw})


def _tamper(path: Path) -> None:
    """Overwrite 16 bytes of the largest tensor stored in the file's zip, in place (same size)."""
    import struct
    import zipfile
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    n, extra = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + n + extra
    raw[start:start + 16] = b"\x7f" * 16
    path.write_bytes(bytes(raw))


def test_a_damaged_best_pt_is_refused_naming_it(tmp_path):
    rec = _train(tmp_path)
    best = RunPaths.of_record(rec).best
    assert load_network(rec) is not None
    _tamper(best)
    with pytest.raises(CheckpointError) as e:
        load_network(rec)
    assert str(e.value) == (f"weights file fails its checksum ({best}): its contents changed after it was written "
                            "(damaged or edited), so it cannot be used; start the run over with train's --fresh "
                            f"(fresh=True), or delete {best.parent} (a grid then starts the run over)")


def test_fusionnet_refuses_a_coder_whose_best_pt_is_damaged(tmp_path):
    rec = {v: _train(tmp_path, f"fcn_{v}") for v in ("mel", "gam", "cqt", "raw")}
    best = RunPaths.of_record(rec["gam"]).best
    _tamper(best)
    with pytest.raises(CheckpointError, match=f"^weights file fails its checksum \\({best}\\)"):
        _train(tmp_path, "fusionnet", fresh=True)


def test_weights_round_trip_and_old_bare_state_dicts_still_load(tmp_path):
    sd = {"w": torch.arange(4.0)}
    save_weights(tmp_path / "a.pt", sd)
    assert torch.equal(load_weights(tmp_path / "a.pt")["w"], sd["w"])
    torch.save(sd, tmp_path / "old.pt")                               # best.pt as written before checksums
    assert torch.equal(load_weights(tmp_path / "old.pt")["w"], sd["w"])
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match=r"^unreadable weights file \(.*junk.pt\)"):
        load_weights(tmp_path / "junk.pt")
