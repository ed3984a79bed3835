"""Fault injection in the data layer (issue 20, items 2, 5, 6, 9): every damaged
clip and every bad metadata row gives a sentence naming the file (and row), all
bad clips are listed at once, and ``datasets --check`` exits 2 without a traceback."""
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from fault_trees import CSV_FAULTS, clip_path, csv_path, damage_clip, damage_csv, esc10_tree, tone

from mvbook.__main__ import main
from mvbook.data import AudioError, BadClipsError, ClipWarning, DatasetError, MetadataError, load_dataset


@pytest.fixture
def tree(tmp_path):
    return esc10_tree(tmp_path / "data")


def index_of(ds, path):
    return next(i for i, c in enumerate(ds.clips) if c.path == path)


# ------------------------------------------------------------------ clips ----

REFUSED = {
    "truncated": r"truncated audio file \({p}\): the header promises 220500 frames, the file holds 49978",
    "zero_byte": r"empty audio file \({p}\): the file has 0 bytes",
    "text": r"cannot decode audio file \({p}\): soundfile says .*Format not recognised",
    "header_only": r"audio file holds no samples \({p}\): only a header, which promises 220500 frames",
    "nan": r"NaN or infinite samples in audio file \({p}\): 10 of 220500 samples are not finite",
    "out_of_range": r"float samples outside \[-1, 1\] in audio file \({p}\): 10 samples exceed it, peak 1.5",
    "very_short": r"clip too short \({p}\): 0.3 s of 5 s; clips shorter than 50% of the clip length",
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_bad_clip_is_refused_with_a_sentence(tree, kind):
    ds = load_dataset("esc10", tree)
    path = damage_clip(clip_path(tree, 0, 2), kind)
    with pytest.raises(AudioError, match=REFUSED[kind].format(p=re.escape(str(path)))) as e:
        ds.load(index_of(ds, path))
    assert ds.check_clips() == [(path, e.value.reason)]


@pytest.mark.parametrize("kind, value", [("stereo", 0.1), ("resampled", None)])
def test_stereo_is_averaged_and_other_rates_resampled(tree, kind, value):
    ds = load_dataset("esc10", tree)
    path = damage_clip(clip_path(tree, 0, 2), kind)
    w = ds.load(index_of(ds, path))
    assert w.shape == (220500,) and w.dtype == np.float32
    if value is not None:
        np.testing.assert_allclose(w, value, atol=1e-4)
    else:                                          # the 200 Hz tone, resampled 22.05 → 44.1 kHz
        np.testing.assert_allclose(w[1000:-1000], tone(0)[1000:-1000], atol=2e-3)
    assert ds.check_clips() == []


@pytest.mark.parametrize("kind, message", [
    ("short", r"short clip \({p}\): 3 s for 5 s clips; zero padding makes up 40% of the clip"),
    ("long", r"long clip \({p}\): 7 s for 5 s clips; "
             r"the 2 s beyond it \(40% of the clip length\) are cropped"),
])
def test_short_and_long_clips_warn(tree, kind, message):
    ds = load_dataset("esc10", tree)
    path = damage_clip(clip_path(tree, 0, 2), kind)
    with pytest.warns(ClipWarning, match=message.format(p=re.escape(str(path)))):
        w = ds.load(index_of(ds, path))
    np.testing.assert_allclose(w[:100000], tone(0)[:100000], atol=1e-4)
    assert not w[3 * 44100:].any() if kind == "short" else np.abs(w[-1000:]).max() > 0.05


def test_small_length_differences_are_silent(tree, recwarn):
    path = clip_path(tree, 0, 2)
    path.unlink()
    sf.write(path, tone(0, 4.9), 44100, subtype="PCM_16")           # 2 % short: GTZAN-like
    ds = load_dataset("esc10", tree)
    assert ds.load(index_of(ds, path)).shape == (220500,)
    assert not [w for w in recwarn if issubclass(w.category, ClipWarning)]


def test_every_bad_clip_is_listed_at_once(tree):
    kinds = {(0, 1): "truncated", (10, 3): "zero_byte", (21, 5): "nan", (41, 2): "text"}
    paths = {damage_clip(clip_path(tree, t, f), k): k for (t, f), k in kinds.items()}
    ds = load_dataset("esc10", tree)
    problems = ds.check_clips()
    assert sorted(p for p, _ in problems) == sorted(paths)
    assert all(isinstance(reason, str) and reason for _, reason in problems)
    with pytest.raises(BadClipsError) as e:
        ds.require_clips()
    msg = str(e.value)
    assert msg.startswith(f"4 of 50 clips of esc10 cannot be used ({tree}): fix or replace them")
    assert all(str(p) in msg for p in paths) and len(e.value.problems) == 4
    assert "truncated audio file: the header promises" in msg and isinstance(e.value, DatasetError)


# --------------------------------------------------------------- metadata ----

CSV_MESSAGES = {
    "drop_class": r"esc10 class 'rooster' \(target 1\) has no clips \({csv}\): restore its rows",
    "fold_6": r"fold 6 of 4-100004-A-0.wav is outside the protocol \({csv}:5\): folds are 1..5",
    "bad_int": r"fold 'x' of 1-100001-A-0.wav is not an integer \({csv}:2\)",
    "non_esc10": r"esc10 flag True of 1-100014-A-14.wav is wrong for target 14 \(chirping_birds\) "
                 r"\({csv}:52\): the ESC-10 targets are",
    "wrong_category": r"category 'cat' of 2-100102-A-1.wav does not match its target 1 \({csv}:8\): "
                      r"ESC-50 target 1 is 'rooster'",
    "duplicate": r"duplicate clip 1-101001-A-10.wav \({csv}:52\): also on line\(s\) 12",
}


@pytest.mark.parametrize("fault", sorted(CSV_FAULTS))
def test_bad_metadata_names_file_row_and_key(tree, fault):
    damage_csv(tree, fault)
    assert CSV_FAULTS[fault][2] in CSV_MESSAGES[fault].replace("\\", "")
    with pytest.raises(MetadataError, match=CSV_MESSAGES[fault].format(csv=re.escape(str(csv_path(tree))))):
        load_dataset("esc10", tree)


def test_every_metadata_problem_is_listed_at_once(tree):
    for fault in ("fold_6", "bad_int", "wrong_category"):
        damage_csv(tree, fault)
    with pytest.raises(MetadataError) as e:
        load_dataset("esc10", tree)
    msg = str(e.value)
    assert msg.startswith(f"esc10: 3 problems in the metadata ({csv_path(tree)}): fix them:")
    assert all(f"{csv_path(tree)}:{line})" in msg for line in (2, 5, 8))


def test_unreadable_csv(tree):
    csv_path(tree).write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(MetadataError, match=r"unreadable ESC-50 metadata|not an ESC-50 metadata file"):
        load_dataset("esc10", tree)


def test_gtzan_misfiled_and_misnamed_clips(tmp_path):
    genres = tmp_path / "GTZAN" / "genres"
    for g in ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"):
        (genres / g).mkdir(parents=True)
    (genres / "blues" / "jazz.00003.wav").write_bytes(b"")
    (genres / "rock" / "rock.3.wav").write_bytes(b"")
    with pytest.raises(MetadataError) as e:
        load_dataset("gtzan", tmp_path)
    msg = str(e.value)
    assert f"a jazz clip in the blues folder ({genres / 'blues' / 'jazz.00003.wav'})" in msg
    assert f"unexpected audio file name in the rock folder ({genres / 'rock' / 'rock.3.wav'})" in msg


def test_dcase_duplicate_line_and_unevaluated_class(tmp_path):
    dev, eva = (tmp_path / f"TUT-acoustic-scenes-2016-{s}" for s in ("development", "evaluation"))
    for d in (dev, eva):
        (d / "audio").mkdir(parents=True)
    (dev / "meta.txt").write_text("audio/a_0_30.wav\tbus\naudio/b_0_30.wav\tpark\naudio/a_0_30.wav\tbus\n")
    (eva / "meta.txt").write_text("audio/1.wav\tbus\naudio/2.wav\tlibrary\n")
    with pytest.raises(MetadataError, match=rf"duplicate clip audio/a_0_30.wav \({dev / 'meta.txt'}:3\)"):
        load_dataset("dcase2016", tmp_path)
    (dev / "meta.txt").write_text("audio/a_0_30.wav\tbus\naudio/b_0_30.wav\tpark\n")
    with pytest.raises(MetadataError) as e:
        load_dataset("dcase2016", tmp_path)
    assert f"evaluation label 'library' of audio/2.wav does not occur in the development set " \
           f"({eva / 'meta.txt'}:2)" in str(e.value)
    assert f"class 'park' has no evaluation clips ({eva / 'meta.txt'})" in str(e.value)


# -------------------------------------------------------------------- CLI ----

def test_cli_check_good_tree(tree, capsys):
    damage_clip(clip_path(tree, 0, 2), "short")
    assert main(["datasets", "--check", "--no-progress", "--data-root", str(tree)]) == 0
    out = capsys.readouterr().out
    assert "esc10: 50 of 50 clips decode" in out
    assert f"warning: short clip ({clip_path(tree, 0, 2)})" in out


def test_cli_check_lists_bad_clips_without_traceback(tree):
    bad = [damage_clip(clip_path(tree, t, 3), k) for t, k in ((0, "header_only"), (38, "out_of_range"))]
    out = subprocess.run([sys.executable, "-m", "mvbook", "datasets", "--check", "--no-progress",
                          "--data-root", str(tree)], capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: 2 of 50 clips of esc10 cannot be used")
    assert all(str(p) in out.stderr for p in bad) and "Traceback" not in out.stderr
    assert "esc10: 48 of 50 clips decode" in out.stdout


def test_cli_check_bad_metadata(tree, capsys):
    damage_csv(tree, "fold_6")
    assert main(["datasets", "--check", "--no-progress", "--data-root", str(tree)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: esc10: fold 6 of 4-100004-A-0.wav is outside the protocol "
                          f"({csv_path(tree)}:5)")
    assert main(["datasets", "--data-root", str(tree)]) == 0        # listing only: not available
    assert "esc10: not available: fold 6" in capsys.readouterr().out


def test_a_bom_prefixed_csv_is_read_and_a_missing_column_named(tree):
    path = csv_path(tree)
    text = path.read_text()
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())                    # as Excel and Notepad save it
    assert len(load_dataset("esc10", tree)) == 50
    header, rest = text.split("\n", 1)
    path.write_text(header.replace(",src_file", "") + "\n" + rest)
    with pytest.raises(MetadataError) as e:
        load_dataset("esc10", tree)
    assert str(e.value) == (f"not an ESC-50 metadata file ({path}): no column src_file; expected a CSV with "
                            "columns filename, fold, target, category, esc10, src_file and at least one row")


def test_cli_check_fails_on_missing_clips_and_a_missing_root(tree, tmp_path, capsys):
    clip_path(tree, 0, 2).unlink()
    assert main(["datasets", "--check", "--no-progress", "--data-root", str(tree)]) == 2
    out, err = capsys.readouterr()
    assert "esc10: not available: 1 of 50 clips are missing" in out
    assert err.startswith(f"error: esc10: 1 of 50 clips are missing under {tree / 'ESC-50' / 'audio'} "
                          f"(e.g. {clip_path(tree, 0, 2).name}).")
    nowhere = tmp_path / "nowhere"
    assert main(["datasets", "--check", "--no-progress", "--data-root", str(nowhere)]) == 2
    assert capsys.readouterr().err == (f"error: data root {nowhere} does not exist (or is not a folder): "
                                       "pass the folder that holds the datasets\n")


def test_cli_check_of_named_datasets(tree, capsys):
    clip_path(tree, 0, 2).unlink()
    assert main(["datasets", "--check", "gtzan", "--no-progress", "--data-root", str(tree)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: gtzan: no genres folder")
    assert out.startswith("gtzan: not available") and "esc10" not in out      # only the datasets named
    assert main(["datasets", "--check", "esc10", "--no-progress", "--data-root", str(tree)]) == 2
    out, err = capsys.readouterr()
    assert "error: esc10: 1 of 50 clips are missing" in err
    assert [line.split(":")[0] for line in out.splitlines()] == ["esc10"]
