"""mvbook.nets.dropout draws PyTorch's own dropout masks: the same values, and the
generator left exactly where ``bernoulli_`` leaves it (so the rest of a run,
and its resume, see the same random numbers)."""
import pytest
import torch
from torch import nn

from mvbook.nets.dropout import N, bernoulli_scaled, state_layout_ok
from mvbook.nets.fastpaths import EXACT_STREAM, dropout, fast_paths


def _draw(seed, used, f):
    """``f()`` after seeding and drawing ``used`` 32-bit words; its result, the state, the next numbers."""
    torch.manual_seed(seed)
    if used:
        torch.randint(0, 2 ** 16, (used,))           # one 32-bit word each
    out = f()
    return out, torch.get_rng_state(), torch.rand(4)


def test_this_torch_has_the_state_layout_read():
    assert state_layout_ok() and EXACT_STREAM


@pytest.mark.parametrize("used", [0, 1, N - 1, N, N + 1, 5 * N + 3])     # every position in the twister
@pytest.mark.parametrize("shape", [(1,), (7,), (N // 2 + 1,), (16, 8, 75, 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_masks_and_generator_state_are_those_of_bernoulli(used, shape, dtype):
    q = 0.9
    ref = _draw(3, used, lambda: torch.empty(shape, dtype=dtype).bernoulli_(q).div_(q))
    got = _draw(3, used, lambda: bernoulli_scaled(shape, q, dtype))
    assert got[0].dtype == dtype and got[0].shape == torch.Size(shape)
    for a, b in zip(ref, got):
        assert torch.equal(a, b)


def test_a_large_mask_crosses_chunks_and_keeps_about_q():
    q, n = 0.75, (1 << 16) * 3 + 5                  # several chunks of the compiled loop
    ref = _draw(11, 0, lambda: torch.empty(n).bernoulli_(q))
    got = _draw(11, 0, lambda: bernoulli_scaled((n,), q, torch.float32) * q)
    assert torch.equal(ref[0], got[0]) and torch.equal(ref[1], got[1])
    assert abs(float(got[0].mean()) - q) < 0.01


def test_fast_dropout_equals_nn_dropout_in_any_memory_format():
    drop = nn.Dropout(0.1).train()
    x = torch.randn(4, 6, 5, 3)
    torch.manual_seed(2)
    ref = drop(x)
    torch.manual_seed(2)
    with fast_paths(True):
        out = dropout(x.contiguous(memory_format=torch.channels_last), drop)
    assert torch.equal(out, ref)
    drop.eval()
    with fast_paths(True):
        assert dropout(x, drop) is x                  # evaluation: the identity


def test_memory_order_draws_as_nn_dropout_does_on_a_transposed_tensor():
    drop = nn.Dropout(0.1).train()
    h = torch.randn(9, 4, 6).transpose(0, 1)          # (B, T, D) time-major in memory, as the biGRU's output
    torch.manual_seed(4)
    ref = drop(h)
    torch.manual_seed(4)
    with fast_paths(True):
        out = dropout(h, drop, memory_order=True)
    assert torch.equal(out, ref)
