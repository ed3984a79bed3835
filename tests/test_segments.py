"""Segments cut on the device equal those cut on the host."""
import numpy as np
import pytest
import torch

from mvbook.views.features import Standardizer
from mvbook.views.segments import DeviceSegmenter, Segmenter, eval_segments, segmenter_for, train_batches

SR = 22050


def _segmenter():
    rng = np.random.default_rng(0)
    views = {"mel": rng.normal(3.0, 2.0, (6, 216, 64)).astype(np.float32),
             "raw": rng.uniform(-1, 1, (6, 5 * SR)).astype(np.float32)}
    return Segmenter(views, SR, 5.0, {"mel": Standardizer.fit(views["mel"], [0, 1, 2, 3])})


def test_device_batches_equal_host_batches_bit_for_bit():
    seg = _segmenter()
    dev = DeviceSegmenter(seg, "cpu")
    batches = train_batches(np.arange(6), 5, seg.t_max, np.random.default_rng(1))
    cases = [next(batches) for _ in range(3)] + [eval_segments([0, 5], seg.test_starts())]
    for clips, t0 in cases:
        host, on_dev = seg.batch(clips, t0), dev.batch(clips, t0)
        assert host.keys() == on_dev.keys()
        for v in host:
            assert isinstance(on_dev[v], torch.Tensor) and on_dev[v].dtype == torch.float32
            np.testing.assert_array_equal(on_dev[v].numpy(), host[v])
    assert dev.t_max == seg.t_max and list(dev.test_starts()) == list(seg.test_starts())


def test_segments_move_to_the_device_only_for_cuda():
    seg = _segmenter()
    assert segmenter_for(seg, "cpu") is seg and segmenter_for(seg, torch.device("cpu")) is seg


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_views_live_on_the_gpu():
    seg = _segmenter()
    dev = segmenter_for(seg, "cuda")
    assert isinstance(dev, DeviceSegmenter)
    clips, t0 = eval_segments([1, 2], seg.test_starts())
    out = dev.batch(clips, t0)
    assert all(t.is_cuda for t in out.values())
    for v, a in seg.batch(clips, t0).items():
        np.testing.assert_array_equal(out[v].cpu().numpy(), a)
