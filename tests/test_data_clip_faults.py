"""Clip paths that are not clips (issue 43, case 9): a folder, a dangling link, a
link loop or a FIFO is named for what it is (not "missing, download again"); a
file name with ``../`` is refused; an unreadable clip is listed with the others."""
import os
from pathlib import Path

import pytest
from test_cache_faults import real_esc10_tree, write_meta

from mvbook.__main__ import main
from mvbook.data import DatasetError, MissingClipsError, load_dataset


@pytest.fixture
def tree(esc_root, tmp_path):
    rows = real_esc10_tree(esc_root, tmp_path / "data")
    return tmp_path / "data", rows


def _replace(path: Path, what: str) -> str:
    path.unlink()
    if what == "folder":
        path.mkdir()
        return "a folder, not a file"
    if what == "dangling":
        path.symlink_to(path.with_name("gone.wav"))
        return "a dangling symbolic link"
    if what == "loop":
        path.symlink_to(path)
        return "a symbolic link loop"
    os.mkfifo(path)
    return "not a regular file (a FIFO, socket or device)"


@pytest.mark.parametrize("what", ["folder", "dangling", "loop", "fifo"])
def test_a_clip_path_that_is_no_file_is_named_for_what_it_is(tree, what):
    root, rows = tree
    clip = root / "ESC-50/audio" / rows[3]["filename"]
    why = _replace(clip, what)
    with pytest.raises(MissingClipsError) as e:
        load_dataset("esc10", root)
    assert str(e.value) == (f"esc10: 1 of 10 clip paths under {root / 'ESC-50/audio'} are not audio files: "
                            f"{clip} ({why}); put the clip files there")


def test_a_file_name_leading_outside_the_audio_folder_is_refused(tree):
    root, rows = tree
    header = list(rows[0])
    rows[2] = rows[2] | {"filename": "../" + rows[2]["filename"]}
    write_meta(root, header, rows)
    with pytest.raises(DatasetError) as e:
        load_dataset("esc10", root)
    assert f"file name ../{rows[2]['filename'][3:]} is not a plain file name: it would be read outside the audio " \
           "folder" in str(e.value)


def test_an_unreadable_clip_is_listed_and_the_check_goes_on(tree, monkeypatch, capsys):
    from mvbook.data import base
    root, rows = tree
    bad = root / "ESC-50/audio" / rows[4]["filename"]
    real = base.read_audio

    def read(path, *a, **k):
        if Path(path) == bad:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *a, **k)
    monkeypatch.setattr(base, "read_audio", read)
    assert main(["datasets", "--data-root", str(root), "--check", "esc10", "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert "esc10: 9 of 10 clips decode" in out
    assert f"\n  {bad}: cannot be read, Permission denied: check its permissions and the disk" in err
