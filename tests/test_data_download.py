"""fetch_esc50 and ``mvbook fetch esc50`` against a local HTTP server (never the internet)."""

import functools
import hashlib
import http.server
import threading
import zipfile

import numpy as np
import pytest
import soundfile as sf

from mvbook.__main__ import main
from mvbook.data import DatasetError, fetch_esc50, load_dataset
from mvbook.data.download import ESC50_COMMIT, ESC50_URL
from mvbook.data.esc50 import CATEGORIES, ESC10_TARGETS


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served_zip(tmp_path, monkeypatch, request):
    """A 250-clip archive in the ESC-50 release layout (top folder ESC-50-<commit>): one
    clip per official category and fold, 5 s of 0.2 at 1 kHz (``drop`` clips fewer,
    by indirect parametrisation); served on 127.0.0.1; yields (url, sha256)."""
    drop = getattr(request, "param", 0)
    serve = tmp_path / "serve"
    serve.mkdir()
    archive = serve / "master.zip"
    top = f"ESC-50-{ESC50_COMMIT}"
    header = "filename,fold,target,category,esc10,src_file,take\n"
    rows = [f"{f}-{100 * f + t}-A-{t}.wav,{f},{t},{c},{t in ESC10_TARGETS},{100 * f + t},A"
            for f in range(1, 6) for t, c in enumerate(CATEGORIES)]
    wav = tmp_path / "clip.wav"
    sf.write(wav, np.full(5000, 0.2), 1000)
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"{top}/meta/esc50.csv", header + "\n".join(rows) + "\n")
        z.writestr(f"{top}/README.md", "ESC-50")
        for r in rows[drop:]:
            z.write(wav, f"{top}/audio/{r.split(',')[0]}")
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
    assert fetch_esc50(root, url=url, known_hash=f"sha256:{sha}", progress=True) == root / "ESC-50"
    ds = load_dataset("esc50", root)
    assert len(ds) == 250 and ds.classes == CATEGORIES
    assert abs(ds.load(0)[100000] - 0.2) < 1e-3
    assert not list(root.glob("*.zip"))
    assert f"sha256: {sha}" in (root / "ESC-50" / "SOURCE.txt").read_text()
    # a complete tree is not downloaded again (this URL would fail)
    assert fetch_esc50(root, url=url + ".gone", known_hash=sha) == root / "ESC-50"


def test_fetch_rejects_wrong_checksum(tmp_path, served_zip):
    url, _ = served_zip
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match="verification") as e:
        fetch_esc50(root, url=url, known_hash="sha256:" + "0" * 64)
    assert url in str(e.value)
    assert not (root / "ESC-50").exists() and not list(root.glob("*.zip"))


def test_fetch_reports_http_failure(tmp_path, served_zip):
    url, sha = served_zip
    with pytest.raises(DatasetError, match="404"):
        fetch_esc50(tmp_path / "data", url=url.replace("master", "missing"), known_hash=sha)


def test_the_pinned_archive_is_a_commit_not_a_branch():
    assert len(ESC50_COMMIT) == 40 and int(ESC50_COMMIT, 16) >= 0
    assert ESC50_URL == f"https://github.com/karolpiczak/ESC-50/archive/{ESC50_COMMIT}.zip"


def test_without_a_recorded_hash_the_contents_are_checked_and_the_hash_reported(tmp_path, served_zip):
    url, sha = served_zip
    with pytest.warns(UserWarning, match=f"SHA-256 {sha}.*--sha256"):
        fetch_esc50(tmp_path / "data", url=url, known_hash=None)
    assert "verified: False" in (tmp_path / "data/ESC-50/SOURCE.txt").read_text()


@pytest.mark.parametrize("served_zip", [3], indirect=True)
def test_an_archive_missing_clips_is_refused(tmp_path, served_zip):
    url, sha = served_zip
    with pytest.raises(DatasetError, match="lacks 3 clip"):
        fetch_esc50(tmp_path / "data", url=url, known_hash=sha)
    assert not (tmp_path / "data" / "ESC-50").exists()


def test_the_fetch_command(tmp_path, served_zip, capsys):
    url, sha = served_zip
    root = tmp_path / "data"
    assert main(["fetch", "esc50", str(root), "--url", url, "--sha256", "0" * 64, "--no-progress"]) == 2
    assert "failed verification" in capsys.readouterr().err
    assert main(["fetch", "esc50", str(root), "--url", url, "--no-progress"]) == 0     # no hash: reported
    out = capsys.readouterr()
    assert f"{root / 'ESC-50'}" in out.out and f"--sha256 {sha}" in out.err
    assert len(load_dataset("esc10", root)) == 50
