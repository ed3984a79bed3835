"""The paper's segment-averaged test (§3.1.3), against averages worked by hand."""
import math

import numpy as np
import pytest
import torch

from mvbook.evaluate import EvalSet, accuracy, ensemble_accuracy, eval_sets, run, subsample
from mvbook.views.segments import Segmenter

# Three 3-second clips → S = 3 test segments each. A segment is 66 650 samples at
# 44.1 kHz (1.5113 s), so the starts are 0, 1.4887 / 2 and 1.4887 s; at the Mel hop of
# 0.02 s these are frames 0, round(37.22) = 37 and round(74.43) = 74 (= 149 − 75, the last).
STARTS = (0, 37, 74)
# The posteriors (class 0, class 1) the model gives each clip's segments, in start order:
SEGMENT_P = {
    0: [(.4, .6), (.4, .6), (.95, .05)],   # mean (1.75/3, 1.25/3) = (.5833, .4167) → class 0, though two segments say 1
    1: [(.2, .8), (.5, .5), (.2, .8)],     # mean (.3, .7) → class 1
    2: [(.1, .9), (.6, .4), (.6, .4)],     # mean (1.3/3, 1.7/3) = (.4333, .5667) → class 1, though two segments say 0
}
LABELS = np.array([0, 1, 0])               # clip 2 is wrong: accuracy 2/3


class Lookup(torch.nn.Module):
    """Reads (clip, start frame) from a segment's first value, 1000 · clip + frame,
    and returns log-posteriors of SEGMENT_P (softmax gives the posteriors back),
    plus a branch "b" that is always (.5, .5)."""

    def forward(self, x):
        code = x["mel"][:, 0, 0].round().long().tolist()
        p = torch.tensor([SEGMENT_P[c // 1000][STARTS.index(c % 1000)] for c in code], dtype=torch.float64)
        return {"a": p.log(), "b": torch.zeros_like(p)}


def segmenter():
    X = np.zeros((3, 149, 64), np.float32)
    X[:, :, 0] = 1000 * np.arange(3)[:, None] + np.arange(149)[None, :]
    return Segmenter({"mel": X}, 44100, 3.0)


@pytest.mark.parametrize("batch_size", [64, 4, 1])      # 4: batches cut across clips
def test_run_averages_posteriors_over_each_files_segments(batch_size):
    seg = segmenter()
    assert seg.starts("mel", seg.test_starts()).tolist() == list(STARTS)
    out = run(Lookup(), seg, EvalSet("test", np.arange(3), LABELS), "cpu", batch_size=batch_size)
    assert out["probs"]["a"] == pytest.approx(np.array([[1.75, 1.25], [.9, 2.1], [1.3, 1.7]]) / 3)
    assert out["accuracy"] == pytest.approx({"a": 2 / 3, "b": 2 / 3})    # "b": ties go to class 0, labels 0, 1, 0
    # mean cross-entropy over the 9 segments, of the labelled class:
    # clip 0: −ln .4 twice, −ln .95; clip 1: −ln .8 twice, −ln .5; clip 2: −ln .1, −ln .6 twice
    by_hand = -(2 * math.log(.4) + math.log(.95) + 2 * math.log(.8) + math.log(.5)
                + math.log(.1) + 2 * math.log(.6)) / 9
    assert out["loss"]["a"] == pytest.approx(by_hand, rel=1e-6)
    assert out["loss"]["b"] == pytest.approx(math.log(2), rel=1e-6)


def test_run_evaluates_only_the_sets_clips_in_their_order():
    out = run(Lookup(), segmenter(), EvalSet("val", np.array([2, 0]), LABELS[[2, 0]]), "cpu")
    assert out["probs"]["a"] == pytest.approx(np.array([[1.3, 1.7], [1.75, 1.25]]) / 3)
    assert out["accuracy"]["a"] == 0.5


def test_accuracy_and_the_self_ensemble_by_hand():
    P = {"a": np.array([[.7, .3], [.6, .4]]), "b": np.array([[.1, .9], [.1, .9]])}
    assert accuracy(P["a"], [0, 1]) == 0.5 and accuracy(P["b"], [0, 1]) == 0.5
    # weights (.75, .25): clip 0 (.55, .45) → 0; clip 1 (.475, .525) → 1
    assert ensemble_accuracy(P, {"a": .75, "b": .25}, [0, 1]) == 1.0
    # weights (.5, .5): clip 0 (.4, .6) → 1; clip 1 (.35, .65) → 1
    assert ensemble_accuracy(P, {"a": .5, "b": .5}, [0, 1]) == 0.5


def test_subsample_spreads_evenly_and_keeps_everything_when_asked():
    idx = np.arange(10, 20)
    # linspace(0, 9, 4) = 0, 3, 6, 9
    assert subsample(idx, 4).tolist() == [10, 13, 16, 19]
    assert subsample(idx, None).tolist() == idx.tolist()
    assert subsample(idx, 50).tolist() == idx.tolist()


def test_eval_sets_train_subset_is_as_large_as_validation_and_fixed_by_the_seed():
    class Split:
        train, val, test = np.arange(0, 20), np.arange(20, 25), np.arange(25, 33)

    labels = np.arange(33) % 3
    sets = eval_sets(Split, labels, seed=3)
    assert [s.name for s in sets.values()] == ["train", "val", "test"]
    tr = sets["train"].clips
    assert len(tr) == 5 and set(tr) <= set(Split.train) and list(tr) == sorted(tr)
    assert np.array_equal(eval_sets(Split, labels, seed=3)["train"].clips, tr)
    assert not np.array_equal(eval_sets(Split, labels, seed=4)["train"].clips, tr)
    assert np.array_equal(sets["test"].labels, labels[25:33])
    assert eval_sets(Split, labels, seed=3, eval_clips=2)["test"].clips.tolist() == [25, 32]
