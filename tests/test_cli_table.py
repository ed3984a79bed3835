"""``python -m mvbook table``: formats to paste into a paper, readable run labels,
and a clear error when nothing matches."""
import csv
import io

from mvbook.__main__ import main
from mvbook.records import write_record
from test_results import fake


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
    assert "it holds none" in capsys.readouterr().err
