"""Tests of mvbook.device: the device choice, host-to-device copies and the
autocast switches (MVBOOK_AMP, MVBOOK_CPU_BF16), and the host allocator setting."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mvbook.device import autocast, autocast_dtype, autocast_name, full_precision, resolve_device, to_device
from mvbook.errors import ConfigError

CPU = torch.device("cpu")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")


@pytest.fixture
def env(monkeypatch):
    """Neither switch set, whatever the calling shell has."""
    monkeypatch.delenv("MVBOOK_AMP", raising=False)
    monkeypatch.delenv("MVBOOK_CPU_BF16", raising=False)
    return monkeypatch


def test_resolve_device_names_and_devices():
    assert resolve_device("cpu") == CPU
    assert resolve_device(CPU) == CPU and isinstance(resolve_device(CPU), torch.device)
    expected = torch.device("cuda") if torch.cuda.is_available() else CPU
    assert resolve_device("auto") == resolve_device() == expected


@no_cuda
def test_cuda_without_a_gpu_is_an_error():
    for name in ("cuda", "cuda:0", torch.device("cuda")):
        with pytest.raises(ConfigError, match="--device"):
            resolve_device(name)


def test_to_device_round_trips():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    for dev in (CPU, resolve_device("auto")):
        t = to_device(a, dev)
        assert t.device.type == dev.type and t.dtype == torch.float32
        np.testing.assert_array_equal(t.cpu().numpy(), a)
    t = to_device(a[:, ::2], CPU)                       # a strided view is copied contiguous
    assert t.is_contiguous()
    np.testing.assert_array_equal(t.numpy(), a[:, ::2])


def test_autocast_on_cpu_is_opt_in(env):
    assert autocast_dtype(CPU) is None and autocast(CPU) is None and autocast_name(CPU) == "none"
    env.setenv("MVBOOK_CPU_BF16", "0")
    assert autocast_dtype(CPU) is None
    env.setenv("MVBOOK_CPU_BF16", "1")
    assert autocast_dtype(CPU) is torch.bfloat16 and autocast_name(CPU) == "bfloat16"
    with autocast(CPU)():
        assert torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 3) @ torch.ones(3, 2)).dtype == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")
    env.setenv("MVBOOK_AMP", "0")                       # MVBOOK_AMP=0 wins
    assert autocast_dtype(CPU) is None and autocast(CPU) is None and autocast_name(CPU) == "none"


def test_autocast_on_cuda(env):
    cuda = torch.device("cuda")                         # only the rule is asked: no GPU needed
    assert autocast_dtype(cuda) is torch.bfloat16 and autocast_name(cuda) == "bfloat16"
    env.setenv("MVBOOK_AMP", "0")
    assert autocast_dtype(cuda) is None and autocast_name(cuda) == "none"


def test_full_precision_turns_autocast_off_inside_the_block():
    x = torch.ones(2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.is_autocast_enabled("cpu")
        with full_precision(x):
            assert not torch.is_autocast_enabled("cpu")
            assert (x @ x.T).dtype == torch.float32
        assert torch.is_autocast_enabled("cpu")
        assert (x @ x.T).dtype == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")
    with full_precision(x):                             # no autocast: a no-op
        assert not torch.is_autocast_enabled("cpu")
        assert (x @ x.T).dtype == torch.float32
    assert not torch.is_autocast_enabled("cpu")


_KEEP = """
import numpy as np
from mvbook.device import keep_freed_memory

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096

print(keep_freed_memory(), keep_freed_memory())
before = rss()
a = np.ones(100 * 2 ** 20, np.uint8)        # 100 MiB, touched
del a
print(rss() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_keep_freed_memory_keeps_a_large_freed_block_in_the_process():
    out = subprocess.run([sys.executable, "-c", _KEEP], capture_output=True, text=True, check=True).stdout.split()
    assert out[:2] == ["True", "True"]                     # took effect; once per process
    assert int(out[2]) > 90 * 2 ** 20                      # the freed 100 MiB stayed resident for reuse
    plain = subprocess.run([sys.executable, "-c", _KEEP.replace("print(keep_freed_memory(), keep_freed_memory())",
                                                                "")],
                           capture_output=True, text=True, check=True).stdout.split()
    assert int(plain[0]) < 10 * 2 ** 20                    # without it glibc gives the block back
