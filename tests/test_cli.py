"""python -m mvbook: datasets, train, table, and clear errors."""
import subprocess
import sys

import pytest

from mvbook.__main__ import main


def test_datasets_reports_what_the_root_holds(esc_root, capsys):
    assert main(["datasets", "--data-root", str(esc_root)]) == 0
    out = capsys.readouterr().out
    assert "esc10: 400 clips, 10 classes, 5 fold(s)" in out
    assert "1600 of 2000 clips are missing" in out


def test_train_then_table(tmp_path, capsys):
    args = ["--dataset", "synthetic", "--preset", "smoke", "--out", str(tmp_path), "--no-progress",
            "--cache-dir", str(tmp_path / "cache")]
    assert main(["train", "--system", "cqt", "--fold", "2", *args]) == 0
    out = capsys.readouterr().out
    assert "cqt fold 2: test accuracy (%)" in out
    assert (tmp_path / "synthetic/smoke/cqt/fold2-seed0.json").exists()
    assert main(["table", "--results", str(tmp_path), "--dataset", "synthetic", "--preset", "smoke", "--folds"]) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith("CQT"))
    assert row.split()[2] == "1"                        # one run, no std
    assert "Mel" in table and "no runs" in table


def test_missing_dataset_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--dataset", "gtzan", "--data-root", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "gtzan" in err and str(tmp_path) in err


def test_a_diagnosed_error_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["table", "--results", str(tmp_path), "--dataset", "esc10", "--preset", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no records of esc10 at preset cpu") and err.count("\n") == 1
    assert "Traceback" not in err


def test_a_file_in_place_of_the_results_folder_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "results").write_text("a file, not a folder")
    assert main(["train", "--dataset", "synthetic", "--preset", "smoke", "--out", str(tmp_path / "results"),
                 "--no-progress", "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and str(tmp_path / "results") in err and err.count("\n") == 1


def test_an_undiagnosed_error_keeps_its_traceback(monkeypatch):
    import pytest

    from mvbook import __main__ as cli

    def broken(args):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    def no_file(args):
        raise OSError("[Errno 104] Connection reset by peer")     # no file named: not a file problem

    for command, exc in ((broken, RuntimeError), (no_file, OSError)):
        monkeypatch.setitem(cli.COMMANDS, "table", command)
        with pytest.raises(exc):
            main(["table"])


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "mvbook", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert all(c in out.stdout for c in ("datasets", "features", "train", "grid", "table"))


def test_help_and_version_import_no_deep_learning_library():
    code = ("import sys, contextlib, io\n"
            "from mvbook.__main__ import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try: main(['--help'])\n"
            "    except SystemExit: pass\n"
            "print(sorted(m for m in ('torch', 'librosa', 'numba', 'gammatone') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    version = subprocess.run([sys.executable, "-m", "mvbook", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("mvbook ")


def test_the_docstrings_name_every_command():
    import mvbook.__main__ as cli
    listed = cli.__doc__.split("{")[1].split("}")[0].split(",")
    assert listed == list(cli.COMMANDS) and len(listed) == len(set(listed)) > 1
    assert "COMMANDS" in cli.parser.__doc__ and not any(
        n in cli.parser.__doc__.split() for n in ("five", "six", "seven", "eight"))   # no count to fall out of date


def test_every_help_shows_defaults_and_examples():
    from mvbook.__main__ import COMMANDS, parser
    ap = parser()
    sub = next(a for a in ap._actions if a.dest == "command").choices
    assert set(sub) == set(COMMANDS)
    for name, p in sub.items():
        text = p.format_help()
        assert "examples:\n  python -m mvbook " + name in text, name
        assert "(default: " in text or name == "fetch", name
        assert "help=" not in text
    train = sub["train"].format_help()
    assert "--preset {cpu,long,paper,smoke}" in train and "(default: cpu)" in " ".join(train.split())


@pytest.mark.parametrize("args, text", [
    (["--engine", "dask"], "error: --engine dask needs --scheduler-address (tcp://host:8786 or tls://…)\n"),
    (["--engine", "slurm"], "error: --engine slurm needs --jobs N (the most worker jobs at once)\n"),
    (["--engine", "local", "--threads", "0"], "error: --threads 0: a cell needs at least one thread\n")])
def test_grid_engine_arguments_are_checked_before_any_work(tmp_path, capsys, args, text):
    # the data root does not exist: an engine error before it means nothing was loaded first
    assert main(["grid", "--dataset", "esc10", "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path),
                 "--no-progress", *args]) == 2
    assert capsys.readouterr().err == text and not list(tmp_path.iterdir())


def test_the_slurm_engine_without_dask_jobqueue_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import importlib.util
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "dask_jobqueue" else find(name, *a))
    assert main(["grid", "--engine", "slurm", "--jobs", "2", "--out", str(tmp_path), "--no-progress"]) == 2
    assert capsys.readouterr().err == ('error: --engine slurm needs dask-jobqueue: pip install "mvbook[cluster]" '
                                       "(dask[distributed], dask-jobqueue)\n")


def test_a_newcomers_runs_stay_out_of_the_committed_results():
    from pathlib import Path

    from mvbook.__main__ import RESULTS, RUNS, parser
    from mvbook.config import PRESETS
    from mvbook.systems import PAPER_SYSTEMS
    train = parser().parse_args(["train", "--system", "mel"])
    grid = parser().parse_args(["grid"])
    assert (train.out, grid.out, RESULTS) == (RUNS, RUNS, "results")
    assert grid.systems == [*PAPER_SYSTEMS, "equal"]                     # every trained row of Table 3
    repo = Path(__file__).resolve().parents[1]
    ignored = subprocess.run(["git", "check-ignore", "-q", f"{RUNS}/synthetic/smoke/mel/fold1-seed0.json"], cwd=repo)
    assert ignored.returncode == 0, f"{RUNS}/ is not git-ignored"
    for command in ("train", "grid"):
        sub = next(a for a in parser()._subparsers._group_actions[0].choices.items() if a[0] == command)[1]
        text = sub.format_help()
        assert all(f"{name}:" in text for name in PRESETS), f"{command} --help misses a preset"
