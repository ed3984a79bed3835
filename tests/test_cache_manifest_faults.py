"""The feature cache refuses a file that lies about what it holds (issue 43,
case 2) and turns a full disk into an error line (case 5): the array is
preallocated before a row is stored, so a full disk is ENOSPC, never SIGBUS,
and no temporary is left."""
import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mvbook.__main__ import main
from mvbook.data import load_dataset
from mvbook.views import cache as C
from mvbook.views import cachefile

REPO = Path(__file__).resolve().parents[1]


def test_a_cache_file_of_another_view_is_refused_naming_it(tmp_path, capsys):
    ds = load_dataset("synthetic")
    C.load_views(ds, ("mel",), cache_dir=tmp_path, progress=False)
    mel, gam = C.cache_path(ds, "mel", tmp_path), C.cache_path(ds, "gam", tmp_path)
    shutil.copy(mel, gam)                                             # Mel under the Gammatone file's name
    want = (f"cached view file holds something else than its name says ({gam}): its manifest has view 'mel', "
            "not 'gam'; it was copied or renamed: delete the file to recompute it")
    with pytest.raises(C.CacheError) as e:
        C.load_views(ds, ("gam",), cache_dir=tmp_path, progress=False)
    assert str(e.value) == want
    assert main(["features", "--views", "gam", "--cache-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {want}\n"
    gam.unlink()
    G = C.load_views(ds, ("gam",), cache_dir=tmp_path, progress=False)["gam"]
    assert not np.array_equal(G, np.load(mel, mmap_mode="r"))


def test_a_full_disk_under_the_cache_is_an_error_line_and_leaves_no_temporary(tmp_path, monkeypatch, capsys):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(cachefile.os, "posix_fallocate", full)
    assert main(["features", "--views", "mel", "gam", "--cache-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"error: no space left on device writing the feature cache ({tmp_path}): nothing was cached and no "
        "temporary is left; free space there, or point --cache-dir or $MVBOOK_CACHE at a writable folder on "
        "another disk\n")
    assert not list(tmp_path.glob("*.npy")) and not list(tmp_path.glob(".*.tmp"))


def test_preallocation_without_fallocate_writes_the_zeros_plainly(tmp_path, monkeypatch):
    def unsupported(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")
    monkeypatch.setattr(cachefile.os, "posix_fallocate", unsupported)
    X = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype=np.float32, shape=(300, 1000))
    cachefile.preallocate(tmp_path / "a.npy", X.offset)
    assert os.stat(tmp_path / "a.npy").st_blocks * 512 >= X.nbytes            # no longer sparse
    X[:] = 1
    X.flush()
    assert np.load(tmp_path / "a.npy").sum() == X.size


FULL = """mount -t tmpfs -o size=200k none "$1" && MVBOOK_CACHE="$1" "$2" -m mvbook features --views mel gam
echo "exit $?"; ls -A "$1" """


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root to mount a small tmpfs")
def test_a_really_full_disk_under_the_cache_is_no_bus_error(tmp_path):
    (tmp_path / "full").mkdir()
    r = subprocess.run(["unshare", "-m", "sh", "-c", FULL, "sh", str(tmp_path / "full"), sys.executable],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    if "exit" not in r.stdout:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr[-200:]}")
    assert "error: no space left on device writing the feature cache" in r.stderr, r.stderr
    assert r.stdout.splitlines()[0] == "exit 2" and ".tmp" not in r.stdout, r.stdout
