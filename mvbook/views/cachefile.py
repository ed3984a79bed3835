"""The files of the feature cache (:mod:`mvbook.views.cache`): cache arrays that carry
their own manifest, content fingerprints of clip files, temporary files that an
interrupted run removes (SIGINT, SIGTERM) or the next run cleans (SIGKILL).

**A cache array** is a plain ``.npy`` file (``numpy.load`` reads it, memory-mapped
or not) followed by a trailer that numpy ignores: the manifest as JSON, its
length (8 bytes, little endian) and ``_MAGIC``. The manifest lists, row by
row, the content id of the clip the row was computed from and the SHA-256 of the
row's bytes. One ``os.replace`` publishes array and manifest together, so a
reader never pairs an array with another array's manifest.

**Clip fingerprints.** A clip file's content id is the SHA-256 of its bytes.
The hash is reused while the file's ``(size, mtime_ns, ctime_ns, inode)`` is
the one recorded when it was hashed (a small index per data root, a hint only);
any write to the file changes its ctime (which no user-space call can set back),
so a changed file is re-hashed, and its features are recomputed only if its
bytes changed. An entry made less than 2 s after the file was last written is
not trusted (a second write within the same clock tick would leave the same
signature; git calls such files "racily clean"): that file is hashed again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["HOST", "CacheError", "row_digest", "preallocate", "disk_full",
           "append_manifest", "read_manifest", "bad_rows", "file_signature",
           "file_digest", "read_index", "write_json", "tmp_path", "clean_stale", "interrupt_guard"]

_MAGIC = b"MVBOOK-CACHE1"
_LEGACY_TMP_AGE_S = 24 * 3600
HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"
_TMP = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")
_LEGACY_TMP = re.compile(r"^\..+\.npy\.[0-9a-f]{32}\.tmp$")     # written before the PID was named


class CacheError(DataError, RuntimeError):
    """The feature cache cannot be used: its folder is a file or not writable, the
    disk is full, or a cache file was changed after it was written (a damaged
    manifest or row, a manifest of another view or dataset).

    Parameters
    ----------
    message : str
        What cannot be used, the path in parentheses, and what to do (delete the
        file, free space, point ``$MVBOOK_CACHE`` elsewhere).

    Examples
    --------
    >>> from mvbook.errors import DataError
    >>> issubclass(CacheError, DataError), str(CacheError("damaged (x.npy): delete it"))
    (True, 'damaged (x.npy): delete it')
    """

    def __init__(self, message: str):
        super().__init__(message)


# --- arrays with their manifest -----------------------------------------------------------

def row_digest(row: np.ndarray) -> str:
    """The checksum of one row of a cache array, as its manifest records it.

    Parameters
    ----------
    row : np.ndarray
        One clip's features, any shape; hashed as C-contiguous float32 (a row of
        another dtype is converted first).

    Returns
    -------
    str
        The first 128 bits of the SHA-256 of its bytes, 32 hex digits.

    Examples
    --------
    >>> import numpy as np
    >>> d = row_digest(np.zeros((2, 3), np.float32))
    >>> len(d), d == row_digest(np.zeros((2, 3))), d == row_digest(np.ones((2, 3)))
    (32, True, False)
    """
    return hashlib.sha256(np.ascontiguousarray(row, dtype=np.float32).data.cast("B")).hexdigest()[:32]


def disk_full(e: BaseException) -> bool:
    """Whether an exception is "no space left on device" (or over the disk quota).

    Parameters
    ----------
    e : BaseException
        The exception a write raised (only ``e`` itself is looked at, not its causes).

    Returns
    -------
    bool
        True for an ``OSError`` with errno ``ENOSPC`` or ``EDQUOT``.

    Examples
    --------
    >>> import errno
    >>> disk_full(OSError(errno.ENOSPC, "full")), disk_full(OSError(errno.EACCES, "denied"))
    (True, False)
    """
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


def preallocate(path: Path, offset: int) -> None:
    """Give every block of a new cache array its space on disk before a row is
    stored through the memory map: a full disk is then an ``OSError`` (ENOSPC)
    here, not a SIGBUS at a store into a page the disk cannot give. Where the
    filesystem cannot preallocate (``posix_fallocate`` unsupported), the zeros
    after the header are written plainly.

    Parameters
    ----------
    path : Path
        The file, just made by ``numpy.lib.format.open_memmap`` (sparse, at its full size).
    offset : int
        Bytes of its ``.npy`` header (the memory map's ``offset``), which are kept
        when the zeros are written plainly.

    Any other failure of ``posix_fallocate`` or of the writes is raised as its
    ``OSError``: ENOSPC when the disk is full (:func:`disk_full`).
    """
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            zeros, done = bytes(1 << 20), offset                # the .npy header (``offset`` bytes) kept
            os.lseek(fd, offset, os.SEEK_SET)
            while done < size:
                done += os.write(fd, zeros[:min(len(zeros), size - done)])
    finally:
        os.close(fd)


def append_manifest(path: Path, manifest: dict) -> None:
    """Append the trailer to a finished cache array: the manifest as compact JSON,
    its length in bytes (8 bytes, little endian) and the magic bytes; numpy ignores it.

    Parameters
    ----------
    path : Path
        The ``.npy`` file (a temporary, before it is published by ``os.replace``).
    manifest : dict
        JSON-able; :func:`read_manifest` requires ``clips`` (a content id per row)
        and ``rows`` (a :func:`row_digest` per row).
    """
    blob = json.dumps(manifest, separators=(",", ":")).encode()
    with open(path, "ab") as f:
        f.write(blob + struct.pack("<Q", len(blob)) + _MAGIC)


def read_manifest(path: Path, row_shape: tuple):
    """Open a cache array with its manifest.

    Parameters
    ----------
    path : Path
        The cache file.
    row_shape : tuple of int
        The shape of one row (one clip's features, without the clip axis).

    Returns
    -------
    tuple of (np.memmap, dict) or None
        The rows as a read-only float32 memory map of shape ``(n_clips, *row_shape)``
        and the manifest; None when ``path`` is not a complete cache file of such
        rows (absent, another format or shape, truncated): such a file is simply
        recomputed.

    Raises
    ------
    CacheError
        The file has the trailer but its manifest does not parse or does not list
        one clip and one checksum per row: it was changed after it was written.
    """
    try:
        X = np.load(path, mmap_mode="r")
        size = path.stat().st_size
        with open(path, "rb") as f:
            f.seek(max(size - len(_MAGIC) - 8, 0))
            tail = f.read()
            if len(tail) != len(_MAGIC) + 8 or not tail.endswith(_MAGIC):
                return None
            n = struct.unpack("<Q", tail[:8])[0]
            if X.offset + X.nbytes + n + len(tail) != size:
                return None
            f.seek(X.offset + X.nbytes)
            blob = f.read(n)
    except (OSError, ValueError, EOFError):
        return None
    if X.ndim < 1 or X.shape[1:] != tuple(row_shape) or X.dtype != np.float32:
        return None
    try:
        manifest = json.loads(blob)
        assert len(manifest["clips"]) == len(manifest["rows"]) == len(X)
    except (ValueError, KeyError, TypeError, AssertionError) as e:
        raise CacheError(f"cached view file was changed after it was written, its manifest is damaged "
                         f"({path}): delete the file to recompute it") from e
    return X, manifest


def _row_problems(X: np.ndarray, i: int, digest: str) -> str:
    problems = [] if row_digest(X[i]) == digest else ["does not match its checksum"]
    if not np.isfinite(X[i]).all():
        problems.append("holds non-finite values")
    return " and ".join(problems)


def bad_rows(X: np.ndarray, digests, rows=None) -> dict:
    """The rows of a cache array that fail their checksum or hold NaN or inf.
    Rows are checked on up to 8 threads (hashlib and numpy release the GIL).

    Parameters
    ----------
    X : np.ndarray
        The rows (clips first), usually the memory map of :func:`read_manifest`.
    digests : sequence of str
        The :func:`row_digest` each row was written with (the manifest's ``rows``).
    rows : iterable of int, optional
        The rows to check (default: all of them).

    Returns
    -------
    dict
        Row index → what is wrong with it (``"does not match its checksum"``,
        ``"holds non-finite values"`` or both); empty when every row is sound.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((3, 2), np.float32)
    >>> digests = [row_digest(r) for r in X]
    >>> X[1, 0], X[2, 0] = 1.0, np.nan
    >>> bad_rows(X, digests)
    {1: 'does not match its checksum', 2: 'does not match its checksum and holds non-finite values'}
    """
    rows = list(range(len(X)) if rows is None else rows)
    with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:
        found = pool.map(lambda i: _row_problems(X, i, digests[i]), rows)
        return {i: why for i, why in zip(rows, found) if why}


# --- clip content ids ---------------------------------------------------------------------

def file_signature(path: Path) -> list:
    """What changes when a file's bytes may have changed: the key under which its hash is reused.

    Parameters
    ----------
    path : Path
        A clip file.

    Returns
    -------
    list of int
        ``[size in bytes, mtime_ns, ctime_ns, inode]`` (``os.stat``, times in
        nanoseconds); a file that cannot be stat'ed raises its ``OSError``.
    """
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def file_digest(path: Path) -> str:
    """The content id of a clip file: the hash of its bytes, read 1 MiB at a time.

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    str
        The first 128 bits of its SHA-256, 32 hex digits; a file that cannot be
        read raises its ``OSError``.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


def read_index(path: Path) -> dict:
    """Read a clip index, the hint that lets :func:`file_digest` be skipped for an
    unchanged file (written by :func:`write_json`).

    Parameters
    ----------
    path : Path
        The index file (JSON with a ``files`` object).

    Returns
    -------
    dict
        File path → ``[size, mtime_ns, ctime_ns, inode, digest]`` (the
        :func:`file_signature` and the hash, or None for a hash not to be trusted);
        empty when the file is absent, unreadable or not such an index (a hint only:
        every file is then hashed).
    """
    try:
        files = json.loads(path.read_text())["files"]
        return files if isinstance(files, dict) else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_json(path: Path, payload) -> bool:
    """Write a JSON file atomically (a temporary beside it, then ``os.replace``).

    Parameters
    ----------
    path : Path
        The file to replace or create.
    payload : object
        Anything ``json.dumps`` takes; written compactly.

    Returns
    -------
    bool
        True when written; False, and nothing left behind, when the folder cannot
        be written to (any ``OSError``): the callers write hints that can be missed.
    """
    tmp = tmp_path(path)
    try:
        tmp.write_text(json.dumps(payload, separators=(",", ":")))
        os.replace(tmp, path)
        return True
    except OSError:
        tmp.unlink(missing_ok=True)
        return False


# --- temporary files ----------------------------------------------------------------------

def tmp_path(path: Path) -> Path:
    """The name of a hidden temporary beside ``path``, named by host and PID so that a later
    run can tell a killed run's leftover from a live run's file (:func:`clean_stale`).

    Parameters
    ----------
    path : Path
        The file the temporary will replace.

    Returns
    -------
    Path
        ``.<name>.<host>.<pid>.<8 random hex digits>.tmp`` in ``path``'s folder
        (nothing is created).

    Examples
    --------
    >>> import os
    >>> t = tmp_path(Path("/cache/esc10-mel.npy"))
    >>> t.parent == Path("/cache"), t.name.startswith(".esc10-mel.npy."), t.name.split(".")[-3] == str(os.getpid())
    (True, True, True)
    """
    return path.with_name(f".{path.name}.{HOST}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _process_start(pid: int):
    """Start time (epoch seconds) of process ``pid``; None if it does not run (or unknown: 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return 0


def _is_stale(path: Path, now: float | None = None) -> bool:
    """A temporary of this host whose PID is dead, or alive but started after the file
    was last written (the PID was reused); one of the old unnamed kind older than a day."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return False
    m = _TMP.match(path.name)
    if m:
        if m["host"] != HOST:
            return False
        started = _process_start(int(m["pid"]))
        return started is None or started > mtime + 1
    return bool(_LEGACY_TMP.match(path.name)) and (now or time.time()) - mtime > _LEGACY_TMP_AGE_S


def clean_stale(folder: Path) -> list:
    """Remove the temporaries that killed runs left in a folder. A temporary is stale
    when it was made on this host by a process that no longer runs (or whose PID
    now belongs to a process started after the file was last written); one of
    the old kind without a PID when it is more than a day old. Another host's
    temporaries are left alone.

    Parameters
    ----------
    folder : Path
        The cache folder.

    Returns
    -------
    list of Path
        The temporaries removed (one that cannot be removed is skipped).
    """
    removed = []
    for p in folder.glob(".*.tmp"):
        if _is_stale(p):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


class _Interrupted(BaseException):
    """SIGINT or SIGTERM arrived while the cache was being written."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


def _raise_interrupted(signum, frame):
    raise _Interrupted(signum)


def _signal_of(e: BaseException) -> int | None:
    """The signal of the ``_Interrupted`` that ``e`` is or came from (a writer such as
    ``torch.save`` turns it into its own error on the way out), else None."""
    seen = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, _Interrupted):
            return cur.signum
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


@contextmanager
def interrupt_guard(tmps: list, on_term: str | None = None):
    """A context around a write of the cache that removes its temporaries when it ends,
    however it ends. In the main thread, SIGINT and SIGTERM raise inside the block
    (unless the signal is ignored, or handled in C); on the way out the previous
    handlers come back and the signal is delivered again, to act as it would have:
    a SIGINT ends the block with ``KeyboardInterrupt`` (Python's default handler
    raises it), a SIGTERM ends the process (its default action) or, where the
    previous handler returns, the block with ``SystemExit(143)`` (128 + 15). An
    error raised on the way out by a writer the signal interrupted (torch's
    ``unexpected pos``) counts as the signal, not as a traceback.

    Parameters
    ----------
    tmps : list of Path
        The temporaries, appended by the caller as it makes them; each is removed
        at the end of the block (missing ones are fine).
    on_term : str, optional
        A line printed on stderr when SIGTERM ends the block.

    Yields
    ------
    None
        Once, for the body of the ``with`` block.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = {}
    if main:
        for s in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(s) not in (None, signal.SIG_IGN):     # None: a handler set in C
                previous[s] = signal.signal(s, _raise_interrupted)
    try:
        yield
    except BaseException as e:
        signum = _signal_of(e)
        if signum is None:
            raise
    else:
        signum = None
    finally:
        for t in tmps:
            t.unlink(missing_ok=True)
        for s, h in previous.items():
            signal.signal(s, h)
    if signum is not None:
        if on_term and signum == signal.SIGTERM:
            print(on_term, file=sys.stderr, flush=True)
        signal.raise_signal(signum)
        raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)
