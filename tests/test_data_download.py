"""fetch_esc50 against a local HTTP server (never the internet)."""

import functools
import hashlib
import http.server
import threading
import zipfile

import numpy as np
import pytest
import soundfile as sf

from mvbook.data import DatasetError, fetch_esc50, load_dataset
from mvbook.data.esc50 import CATEGORIES, ESC10_TARGETS


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served_zip(tmp_path, monkeypatch):
    """A 250-clip archive in the ESC-50 release layout (top folder ESC-50-master): one
    clip per official category and fold, 5 s of 0.2 at 1 kHz; served on 127.0.0.1;
    yields (url, sha256)."""
    serve = tmp_path / "serve"
    serve.mkdir()
    archive = serve / "master.zip"
    header = "filename,fold,target,category,esc10,src_file,take\n"
    rows = [f"{f}-{100 * f + t}-A-{t}.wav,{f},{t},{c},{t in ESC10_TARGETS},{100 * f + t},A"
            for f in range(1, 6) for t, c in enumerate(CATEGORIES)]
    wav = tmp_path / "clip.wav"
    sf.write(wav, np.full(5000, 0.2), 1000)
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ESC-50-master/meta/esc50.csv", header + "\n".join(rows) + "\n")
        z.writestr("ESC-50-master/README.md", "ESC-50")
        for r in rows:
            z.write(wav, f"ESC-50-master/audio/{r.split(',')[0]}")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    handler = functools.partial(QuietHandler, directory=str(serve))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/master.zip", sha
    server.shutdown()
    server.server_close()


def test_fetch_verifies_and_unpacks(tmp_path, served_zip):
    url, sha = served_zip
    root = tmp_path / "data"
    assert fetch_esc50(root, url=url, known_hash=f"sha256:{sha}") == root / "ESC-50"
    ds = load_dataset("esc50", root)
    assert len(ds) == 250 and ds.classes == CATEGORIES
    assert abs(ds.load(0)[100000] - 0.2) < 1e-3
    assert not (root / "ESC-50-master.zip").exists()
    # a complete tree is not downloaded again (this URL would fail)
    assert fetch_esc50(root, url=url + ".gone", known_hash=sha) == root / "ESC-50"


def test_fetch_rejects_wrong_checksum(tmp_path, served_zip):
    url, _ = served_zip
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match="verification") as e:
        fetch_esc50(root, url=url, known_hash="sha256:" + "0" * 64)
    assert url in str(e.value)
    assert not (root / "ESC-50").exists() and not (root / "ESC-50-master.zip").exists()


def test_fetch_reports_http_failure(tmp_path, served_zip):
    url, sha = served_zip
    with pytest.raises(DatasetError, match="404"):
        fetch_esc50(tmp_path / "data", url=url.replace("master", "missing"), known_hash=sha)
