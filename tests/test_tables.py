"""Table 3 as text (mvbook.tables): what the runs share is stated."""
from mvbook.tables import provenance_lines


def rec(seed, scheme=None, commit="a" * 40):
    r = {"seed": seed, "provenance": {"git_commit": commit}}
    return r | ({"config": {"seed_scheme": scheme}} if scheme else {"config": {}})


def test_the_seed_schemes_and_commits_are_named():
    recs = [rec(s) for s in (0, 1, 2)] + [rec(s, "per_fold", "b" * 40) for s in (3, 4, 5, 7)]
    seeds, commits = provenance_lines(recs)
    assert seeds == "seeds: 0–2 shared by the folds (each the same start on every fold); 3–5, 7 drawn per fold"
    assert commits == "trained by 2 commits: aaaaaaa (3 runs), bbbbbbb (4 runs)"
    assert provenance_lines([rec(0)]) == ["seeds: 0 shared by the folds (each the same start on every fold)"]
