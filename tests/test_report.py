"""mvbook.book.report: Table 3 as HTML, each cell linked to its run, and what it is
missing, on made-up records (no training)."""
import pytest
from test_plots import fake_record

from mvbook.book import report
from mvbook.records import grid_command
from mvbook.results import ALL_ROW_NAMES, EXTRA_ROW_NAMES, ROW_NAMES, row_devices


def test_table3_html_links_every_cell_and_explains_the_empty_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "REPO", tmp_path)
    recs = [fake_record(tmp_path, s, 1, notebook=True) for s in ("mel", "gam", "cqt", "raw", "concat", "multiview")]
    recs.append(fake_record(tmp_path, "mel", 2, acc=0.7))
    html, missing = report.table3_html(recs, "esc10", "cpu", folds=range(1, 4))
    assert html.count("<tr>") == 1 + len(ROW_NAMES) - 1                 # header + every row but "equal"
    assert 'href="../results/esc10/cpu/multiview/fold1-seed0.html"' in html   # executed notebook
    assert 'href="../results/esc10/cpu/multiview/fold1-seed0.json"' in html   # record
    assert 'href="../results/esc10/cpu/mel/fold2-seed0.json"' in html
    assert 'fold2-seed0.html' not in html                                # no notebook kept for that run
    assert "60.00\u00a0±\u00a014.14 (2)" in html                             # mel: folds 1 and 2
    assert "87.35" in html and "ESC-50" in html                          # the paper's column
    commits = {r["provenance"]["git_commit"][:7] for r in recs}
    assert f"<span class='mv-code'>{', '.join(sorted(commits))}</span>" in html   # the code behind each row, folded
    cells = {(m["row"], m["fold"]): m for m in missing}
    assert "--systems multiview --folds 2 " in cells[("Multi-view", 2)]["command"] + " "
    assert cells[("Late fusion", 2)]["systems"] == ["gam", "cqt", "raw"]
    assert cells[("Self-ensemble", 3)]["systems"] == ["multiview"]
    assert not any(m["fold"] == 1 for m in missing)
    text = report.missing_html(missing, "esc10", "cpu")
    assert "<code>mel</code> fold 3;" in text and "<code>multiview</code> folds 2, 3" in text
    assert f"<b>{len(missing)} empty cell(s)</b>" in text and text.count("<code>python -m mvbook grid") == 1
    assert "<li>" not in text and report.missing_html([], "esc10", "cpu") == ""    # one command, not one per cell
    rows = len(ROW_NAMES) - 1                          # fold 1 has every row (6 runs + 3 derived); mel fold 2
    assert len(missing) == rows * 3 - rows - 1


def test_runs_below_folds_the_per_run_columns_under_the_means(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "REPO", tmp_path)
    recs = [fake_record(tmp_path, s, f, acc=0.5 + f / 10) for s in ("mel", "multiview") for f in (1, 2)]
    wide, missing = report.table3_html(recs, "esc10", "cpu", folds=[1, 2, 3], rows=["mel", "multiview"])
    folded, missing_folded = report.table3_html(recs, "esc10", "cpu", folds=[1, 2, 3], rows=["mel", "multiview"],
                                                runs_below=True)
    means, runs = folded.split("<details", 1)
    assert "fold 1" not in means and "65.00\u00a0±\u00a07.07 (2)" in means and "ours: mean" in means
    assert "fold 3, seed 0" in runs and "ours: mean" not in runs and runs.endswith("</details>")
    for cell in ("fold1-seed0.json", "fold2-seed0.json"):                  # the same linked cells as the wide table
        assert wide.count(cell) == runs.count(cell) == 2
    assert missing_folded == missing and means.count("<tr>") == runs.count("<tr>") == 3


def test_every_command_is_the_grid_command_of_mvbook_records(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "REPO", tmp_path)
    recs = [fake_record(tmp_path, s, 1) for s in ("mel", "gam")]
    _, missing = report.table3_html(recs, "esc10", "cpu", folds=[1, 2], seeds=(0, 1))
    for m in missing:
        assert m["command"] == grid_command("esc10", "cpu", m["systems"], [m["fold"]], [m["seed"]], out="results")
    multiview = next(m for m in missing if m["row"] == "Multi-view" and m["fold"] == 1 and m["seed"] == 0)
    assert multiview["why"] == "no record results/esc10/cpu/multiview/fold1-seed0.json"
    text = report.missing_html(missing, "esc10", "cpu", results_dir="elsewhere")
    assert grid_command("esc10", "cpu", seeds=[0, 1], out="elsewhere") in text    # the six systems: the default


def test_table3_html_with_no_records():
    html, missing = report.table3_html([], "esc10", "cpu", folds=range(1, 6))
    assert len(missing) == (len(ROW_NAMES) - 1) * 5 and "mv-missing" in html and "<a " not in html


def test_table3_html_extended_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "REPO", tmp_path)
    systems = ("mel", "gam", "cqt", "raw", "concat", "multiview", "fcn_mel", "fcn_gam", "fcn_cqt", "fcn_raw",
               "multiview6", "mv_initial")
    recs = [fake_record(tmp_path, s, 1, notebook=True) for s in systems]
    recs.append(fake_record(tmp_path, "mv_initial", 2, acc=0.7))
    html, missing = report.table3_html(recs, "esc10", "cpu", folds=range(1, 3), base="../../", extended=True)
    assert html.count("<tr>") == 1 + len(ALL_ROW_NAMES)                 # every row, "equal" included
    assert html.count("†") == len(EXTRA_ROW_NAMES) + 1                  # the marked names and the caption's note
    assert 'href="../../results/esc10/cpu/fcn_raw/fold1-seed0.json"' in html      # sum rule → its four coders
    assert 'href="../../results/esc10/cpu/multiview6/fold1-seed0.html"' in html   # HPSS self-ensemble → its run
    assert "60.00\u00a0±\u00a014.14 (2)" in html                             # mv_initial: folds 1 and 2
    cells = {(m["row"], m["fold"]): m for m in missing}
    assert cells[(ALL_ROW_NAMES["sumrule"], 2)]["systems"] == ["fcn_mel", "fcn_gam", "fcn_cqt", "fcn_raw"]
    assert cells[(ALL_ROW_NAMES["multiview6_se"], 2)]["systems"] == ["multiview6"]
    assert cells[(ALL_ROW_NAMES["fusionnet"], 1)]["command"].endswith("--systems fusionnet --folds 1 --seeds 0 "
                                                                      "--out results")
    assert (ALL_ROW_NAMES["sumrule"], 1) not in cells and (ALL_ROW_NAMES["multiview6_se"], 1) not in cells
    text = report.missing_html(missing, "esc10", "cpu")
    assert "--systems " in text.split("</code> makes all")[0]           # extra systems: the grid must name them
    # a chosen subset of rows, in the order given; the plain table is unchanged
    sub, sub_missing = report.table3_html(recs, "esc10", "cpu", folds=[1], rows=["multiview", "mv_initial"])
    assert sub.count("<tr>") == 3 and sub.index("Multi-view") < sub.index("initial-loss")
    assert [(m["row"], m["fold"]) for m in sub_missing] == [("Multi-view", 2)]      # fold 2 has a record of mv_initial
    plain, _ = report.table3_html(recs, "esc10", "cpu", folds=[1])
    assert plain.count("<tr>") == 1 + len(ROW_NAMES) - 1 and "†" not in plain     # no "equal" runs: row left out
    with pytest.raises(ValueError, match="unknown rows"):
        report.table3_html(recs, "esc10", "cpu", rows=["nope"])
    seeds = report.missing_html([dict(m, seed=1) for m in sub_missing], "esc10", "cpu")
    assert "--seeds 1" in seeds and "--systems" not in seeds.split("</code> makes all")[0]


def test_table3_html_lives_in_report_only():
    from mvbook.book import plots
    assert not hasattr(plots, "table3_html") and not hasattr(plots, "missing_html")


def test_table3_html_labels_folds_and_seeds_and_compares_rows_on_seed_0(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "REPO", tmp_path)
    recs = [fake_record(tmp_path, "mel", f, seed=s, acc=0.5 + 0.1 * s) for f in (1, 2) for s in (0, 1, 2)]
    recs += [fake_record(tmp_path, "gam", f, acc=0.8) for f in (1, 2)]            # seed 0 only
    html, _ = report.table3_html(recs, "esc10", "cpu", folds=[1, 2], rows=["mel", "gam"])
    assert html.count("<th class='mv-seed'>seed 0</th>") == 2 and html.count("seed 2</th>") == 2
    assert "<th class='mv-fold' colspan='3'>fold 1</th>" in html and "fold 1, fold 1" not in html
    assert "60.00\u00a0±\u00a00.00 (6)" in html  # mel: both fold means are 60 (its six runs: 50, 60, 70)
    assert "50.00 (2)" in html and "80.00 (2)" in html                 # seed 0 only: the same folds for both rows
    assert html.startswith("<p class='mv-caption'>") and "<div class='mv-scroll'><table" in html
    assert "seed-0 column" in html.split("</p>")[0]
    single, _ = report.table3_html(recs[-2:], "esc10", "cpu", folds=[1, 2], rows=["gam"])
    assert "<th>fold 1, seed 0</th>" in single and "seed 0 only" not in single


def test_row_commits_name_every_commit_behind_a_row(tmp_path):
    recs = {}
    for s, fold, commit in (("mel", 1, "a" * 40), ("mel", 2, "b" * 40), ("gam", 1, "c" * 40),
                            ("cqt", 1, "a" * 40), ("raw", 1, "a" * 40), ("multiview", 1, "d" * 40)):
        r = fake_record(tmp_path, s, fold)
        r["provenance"] = {"git_commit": commit}
        recs[(s, fold, 0)] = r
    recs[("multiview", 1, 0)]["provenance"]["trained_by"] = [{"git_commit": "d" * 40}, {"git_commit": "e" * 40}]
    assert report.row_commits("mel", recs) == ["aaaaaaa", "bbbbbbb"]
    assert report.row_commits("late", recs) == ["aaaaaaa", "bbbbbbb", "ccccccc"]      # its members' runs
    assert report.row_commits("self_ensemble", recs) == ["ddddddd", "eeeeeee"]        # a resumed run: both
    assert report.row_commits("concat", recs) == []


def test_the_table_states_the_devices_its_rows_were_trained_on(tmp_path):
    recs = [fake_record(tmp_path, s, f) for s in ("mel", "gam") for f in (1, 2)]
    html, _ = report.table3_html(recs, "esc10", "cpu", folds=[1, 2], rows=["mel", "gam"])
    assert "Every run was trained on cpu" in html.split("</p>")[0] and "<small>on " not in html
    recs[1]["provenance"]["device"] = "cuda:0"                            # mel, fold 2
    runs = {(r["system"], r["fold"], r["seed"]): r for r in recs}
    assert row_devices("mel", runs) == ["cpu", "cuda"] and row_devices("gam", runs) == ["cpu"]
    html, _ = report.table3_html(recs, "esc10", "cpu", folds=[1, 2], rows=["mel", "gam"])
    assert "more than one kind of device" in html.split("</p>")[0] and "Every run" not in html
    assert "<small>on cpu, cuda</small>" in html and "<small>on cpu</small>" in html
