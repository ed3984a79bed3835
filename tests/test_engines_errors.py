"""Feature preparation before a grid's cells (mvbook.engines): a diagnosed error
(an MvbookError) is reported in one line, a bug keeps its traceback; either way the
dataset's cells are reported as not run and the other datasets' cells go on."""
import pytest

from mvbook.engines import _prepare_features, grid_cells
from mvbook.engines.cells import GridReport
from mvbook.errors import DataError


class Preparer:
    """A runner whose ``prepare`` raises ``error`` for the dataset ``broken``."""

    def __init__(self, broken, error):
        self.broken, self.error, self.prepared = broken, error, []

    def prepare(self, dataset, systems):
        if dataset == self.broken:
            raise self.error
        self.prepared.append(dataset)


def _prepare(runner):
    cells = grid_cells("synthetic", "smoke", ["mel"], folds=[1, 2]) + grid_cells("esc10", "smoke", ["mel"], [1])
    report, failed, log = GridReport(), set(), []
    kept = _prepare_features(cells, runner, report, failed, log.append)
    return cells, kept, report, failed, log


@pytest.mark.parametrize("error, traceback", [(DataError("no clips in /data/esc10\nsee the README"), False),
                                              (KeyError("a bug"), True)])
def test_a_failed_preparation_reports_its_cells_and_a_bug_keeps_its_traceback(error, traceback, capfd):
    runner = Preparer("synthetic", error)
    cells, kept, report, failed, log = _prepare(runner)
    err = capfd.readouterr().err
    broken = [c.name for c in cells if c.dataset == "synthetic"]
    assert len(broken) == 2 and [c.dataset for c in kept] == ["esc10"] and runner.prepared == ["esc10"]
    assert sorted(failed) == sorted(broken) and sorted(r.cell for r in report.rows) == sorted(broken)
    first = f"{type(error).__name__}: {error}".splitlines()[0]
    assert all(r.status == "not run" and r.detail.endswith(f"({first})") for r in report.rows)
    assert f"FAIL features of synthetic: {first}" in log
    assert ("Traceback" in err) is traceback
    if traceback:                                     # the whole of it: the frame that raised, and the error
        assert "in prepare" in err and "raise self.error" in err and err.rstrip().endswith("KeyError: 'a bug'")
    assert "see the README" not in err + "".join(r.detail for r in report.rows)
