"""``python -m mvbook table``: formats to paste into a paper, readable run labels,
and a clear error when nothing matches."""
import csv
import io

from test_results import fake

from mvbook.__main__ import main
from mvbook.records import write_record


def _results(tmp_path):
    for fold, acc in ((1, 0.8), (2, 0.7)):
        r = fake("mel", fold, acc) | {"config": {}}
        write_record(r, tmp_path / f"esc10/cpu/mel/fold{fold}-seed0.json")
    return tmp_path


def test_markdown_latex_and_csv(tmp_path, capsys):
    root = _results(tmp_path)
    base = ["table", "--results", str(root), "--dataset", "esc10", "--preset", "cpu"]
    assert main(base + ["--format", "markdown"]) == 0
    md = capsys.readouterr().out.splitlines()
    assert md[0] == "| system | ours | runs | ci95 | paper |" and "| Mel | 75.00 ± 7.07 | 2 | 63.53 | 80.15 |" in md
    assert main(base + ["--format", "latex"]) == 0
    tex = capsys.readouterr().out
    assert tex.startswith(r"\begin{tabular}{lrrrr}") and r"Mel & 75.00 $\pm$ 7.07 & 2 & 63.53 & 80.15 \\" in tex
    assert main(base + ["--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {"system": "Mel", "ours": "75.00 ± 7.07", "runs": "2", "ci95": "63.53", "paper": "80.15"} in rows
    assert main(base + ["--folds"]) == 0
    assert "fold 1, seed 0" in capsys.readouterr().out


def test_no_matching_record_is_an_error_naming_what_is_there(tmp_path, capsys):
    root = _results(tmp_path)
    assert main(["table", "--results", str(root), "--dataset", "gtzan", "--preset", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no records of gtzan") and "esc10/cpu" in err
    assert main(["table", "--results", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == (f"error: no such folder of records ({tmp_path / 'nowhere'}): see --results "
                                       "(where train and grid --out write them)\n")        # not "it holds none"


def test_compare_pairs_fold_means_and_says_so_and_an_unknown_row_is_an_error(tmp_path, capsys):
    for fold, seed, acc in ((1, 0, 0.8), (1, 1, 0.6), (2, 0, 0.9)):
        write_record(fake("concat", fold, acc) | {"seed": seed, "config": {}},
                     tmp_path / f"esc10/cpu/concat/fold{fold}-seed{seed}.json")
    for fold, seed, acc in ((1, 0, 0.7), (1, 1, 0.4), (2, 0, 0.7)):
        write_record(fake("mel", fold, acc) | {"seed": seed, "config": {}},
                     tmp_path / f"esc10/cpu/mel/fold{fold}-seed{seed}.json")
    base = ["table", "--results", str(tmp_path), "--dataset", "esc10", "--preset", "cpu", "--compare", "concat"]
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "paired over fold means" in out and "p_sign_flip" in out
    # fold means of concat: 70 (fold 1, seeds 0 and 1) and 90; of mel: 55 and 70 → differences 15, 20
    assert "mel      2       17.5     2     0       0" in out
    assert main(base + ["--unit", "run"]) == 0
    out = capsys.readouterr().out
    # runs: 80 − 70, 60 − 40, 90 − 70
    assert "paired over (fold, seed) runs, as if independent" in out and "mel      3    16.6667     3" in out
    assert main(base[:-1] + ["nosuch"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: --compare nosuch: no such row in these records; rows: concat, mel")
    assert "Table 3" not in captured.out                  # refused before printing anything


def test_seed_scheme_keeps_one_schemes_runs_and_decide_prints_the_plans_verdicts(tmp_path, capsys):
    # multi-view and equal on three folds; seed 0 shared, seed 3 drawn per fold
    for system, fold, seed, acc in [("multiview", f, 0, 0.70 + 0.05 * f) for f in (1, 2, 3)] + \
            [("multiview", f, 3, 0.60 + 0.05 * f) for f in (1, 2, 3)] + \
            [("equal", f, 0, 0.60) for f in (1, 2, 3)] + [("equal", f, 3, 0.60 + 0.1 * (f == 2)) for f in (1, 2, 3)]:
        config = {"blending": {"rule": "authors"}} | ({"seed_scheme": "per_fold"} if seed == 3 else {})
        se = acc if system == "multiview" else None
        write_record(fake(system, fold, acc, se=se) | {"seed": seed, "config": config},
                     tmp_path / f"esc10/cpu/{system}/fold{fold}-seed{seed}.json")
    base = ["table", "--results", str(tmp_path), "--dataset", "esc10", "--preset", "cpu"]
    assert main(base + ["--seed-scheme", "per_fold", "--folds"]) == 0
    out = capsys.readouterr().out
    assert "seeds: 3 drawn per fold" in out and "seed 0" not in out
    assert next(line for line in out.splitlines() if line.startswith("Multi-view")).split()[-2] == "3"   # runs
    assert main(base + ["--seed-scheme", "shared", "--folds"]) == 0
    assert "seed 3" not in capsys.readouterr().out
    assert main(base + ["--decide"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("multi-view above equal weights"))
    # fold means: multiview 70, 75, 80; equal 60, 65, 60 → differences 10, 10, 20 → +13.33
    assert line.split()[4:7] == ["not", "shown", "13.3333"]
    assert "Holm's adjustment over the 8 claims" in out
    (tmp_path / "other").mkdir()
    write_record(fake("mel", 1, 0.5) | {"config": {}}, tmp_path / "other/esc10/cpu/mel/fold1-seed0.json")
    assert main(["table", "--results", str(tmp_path / "other"), "--seed-scheme", "per_fold"]) == 2
    assert capsys.readouterr().err.startswith("error: --seed-scheme per_fold: no run of esc10 at preset cpu has it")
