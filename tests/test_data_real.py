"""The real ESC-10 audio in ../shared/data (§3.1.1): ESC-10 loads, full ESC-50 refuses."""

import numpy as np
import pytest

from mvbook.data import DatasetError, describe, load_dataset

ESC10_CLASSES = ("dog", "rooster", "rain", "sea_waves", "crackling_fire", "crying_baby",
                 "sneezing", "clock_tick", "helicopter", "chainsaw")


@pytest.fixture(scope="module")
def esc10(esc_root):
    return load_dataset("esc10", esc_root)


def test_esc10_counts(esc10):
    assert len(esc10) == 400 and esc10.classes == ESC10_CLASSES and esc10.n_folds == 5
    assert np.bincount(esc10.labels).tolist() == [40] * 10
    for f in range(1, 6):
        in_fold = [c.label for c in esc10.clips if c.fold == f]
        assert len(in_fold) == 80 and np.bincount(in_fold).tolist() == [8] * 10


@pytest.mark.parametrize("fold", [1, 2, 3, 4, 5])
def test_esc10_splits(esc10, fold):
    split = esc10.split(fold, seed=0)
    parts = [split.train, split.val, split.test]
    assert sorted(sum(parts, [])) == list(range(400)) and all(p == sorted(p) for p in parts)
    assert len(split.test) == 80 and {esc10.clips[i].fold for i in split.test} == {fold}
    for c in range(10):
        assert len({esc10.clips[i].group for i in split.val if esc10.clips[i].label == c}) == 2
    train_src = {esc10.clips[i].group for i in split.train}
    assert not train_src & {esc10.clips[i].group for i in split.val}
    assert split == esc10.split(fold, seed=0) and split.val != esc10.split(fold, seed=1).val


def test_esc10_audio(esc10):
    w = esc10.load(0)
    assert w.dtype == np.float32 and w.shape == (220500,) and 0 < np.abs(w).max() <= 1


def test_esc50_refuses_the_subset(esc_root):
    with pytest.raises(DatasetError) as e:
        load_dataset("esc50", esc_root)
    msg = str(e.value)
    assert "1600 of 2000 clips are missing" in msg and str(esc_root / "ESC-50" / "audio") in msg


def test_describe_real(esc_root):
    text = describe(root=esc_root)
    assert "esc10: 400 clips, 10 classes, 5 fold(s), 44100 Hz x 5 s" in text
    assert "esc50: not available: 1600 of 2000" in text


def test_esc10_clips_all_decode_strictly(esc10):
    assert esc10.check_clips() == []
    esc10.require_clips([0, 399])
