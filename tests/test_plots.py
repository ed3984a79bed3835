"""mvbook.book.plots: the book's figures, on made-up records (no training). Table 3
as HTML is tests/test_report.py."""
import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mvbook.blending import AdaptiveBlender  # noqa: E402
from mvbook.book import plots  # noqa: E402
from mvbook.nets import crnn  # noqa: E402
from mvbook.views.framing import ALL_VIEWS, EXTRA_VIEWS, VIEWS, frame_times  # noqa: E402

BRANCHES = ("mel", "gam", "cqt", "raw", "mv")


def fake_curves(n=12, window=3, reference="best", seed=0, branches=BRANCHES):
    """Noisy decreasing losses, and the weights Algorithm 1 gives them."""
    rng = np.random.default_rng(seed)
    b = AdaptiveBlender(branches, window=window, reference=reference)
    curves = {"step": [10 * i for i in range(n)], "weights": {k: [] for k in branches},
              "loss": {s: {k: [] for k in branches} for s in ("train", "val", "test")},
              "accuracy": {s: {k: [] for k in (*branches, "self_ensemble")} for s in ("val", "test")}}
    for i in range(n):
        tr = {k: 2.3 * np.exp(-0.15 * i * (j + 1)) + 0.05 * rng.random() for j, k in enumerate(branches)}
        va = {k: 2.3 * np.exp(-0.08 * i * (j + 1)) + 0.3 + 0.1 * rng.random() for j, k in enumerate(branches)}
        te = {k: v + 0.05 for k, v in va.items()}
        w = b.update(tr, va)
        for k in branches:
            curves["weights"][k].append(w[k])
            for s, d in (("train", tr), ("val", va), ("test", te)):
                curves["loss"][s][k].append(float(d[k]))
        for s in ("val", "test"):
            for k in (*branches, "self_ensemble"):
                curves["accuracy"][s][k].append(min(1.0, 0.1 * i))
    return curves


def fake_record(tmp_path, system, fold, acc=0.5, seed=0, n_classes=3, n_test=6, notebook=False):
    views = {"multiview": VIEWS, "concat": VIEWS, "equal": VIEWS, "mv_initial": VIEWS,
             "multiview6": VIEWS + EXTRA_VIEWS}.get(system, (system,))
    branches = views + ("mv",) if len(views) > 1 else views
    main = "mv" if len(views) > 1 else views[0]
    labels = [i % n_classes for i in range(n_test)]
    rng = np.random.default_rng(fold)
    probs = {k: rng.dirichlet(np.ones(n_classes), n_test).tolist() for k in branches}
    rec = {"schema": "mvbook.record/1", "system": system, "dataset": "esc10", "fold": fold, "seed": seed,
           "preset": "cpu", "reduced": ["width 0.25"], "main_branch": main,
           "accuracy": {k: acc for k in branches} | ({"self_ensemble": acc + 0.01} if len(branches) > 1 else {}),
           "system_accuracy": acc, "curves": fake_curves(branches=branches, seed=fold),
           "best": {"step": 50, "weights": {k: 1 / len(branches) for k in branches}},
           "test": {"keys": [f"f{i}" for i in range(n_test)], "labels": labels, "probs": probs},
           "provenance": {"device": "cpu", "date": "2026-01-01", "train_seconds": 1.0, "git_commit": "abc",
                          "git_dirty": False}}
    path = tmp_path / "results" / "esc10" / "cpu" / system / f"fold{fold}-seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    if notebook:
        path.with_suffix(".ipynb").write_text("{}")
    rec["path"] = str(path)
    return rec


@pytest.mark.parametrize("reference", ["best", "initial"])
def test_blending_trace_reproduces_the_recorded_weights(reference):
    curves = fake_curves(reference=reference)
    trace = plots.blending_trace(curves, window=3, reference=reference)
    w = trace.pivot(index="n", columns="branch", values="w")
    for k in BRANCHES:
        np.testing.assert_allclose(w[k], curves["weights"][k], atol=1e-12)
    full = trace.dropna(subset=["G"])
    # the columns obey Eq. 3 and Eq. 4 with the smoothed losses
    np.testing.assert_allclose(full["G"], full["Lstar_va"] - full["Lbar_va"], atol=1e-12)
    np.testing.assert_allclose(full["O"], (full["Lstar_tr"] - full["Lbar_tr"]) - full["G"], atol=1e-12)
    # ... and Eq. 5 before 1/Z, as the blender computed it (the trace reads it, never recomputes it)
    np.testing.assert_allclose(full["ratio"], np.where(full["G"] > 0, full["G"] / (full["O"] ** 2 + 1e-6), 0.0))
    assert (full["n"] >= 2).all() and trace["n"].nunique() == 12
    first = full[full["n"] == 2]
    assert np.allclose(first["G"], 0) and np.allclose(first["O"], 0)     # references set at the first full window
    if reference == "best":                                             # refs are running minima of the smoothed loss
        for k in BRANCHES:
            d = full[full["branch"] == k]
            assert np.all(np.diff(d["Lstar_va"].to_numpy()) <= 1e-12)
            assert np.all(d["Lstar_va"].to_numpy()[1:] <= np.minimum.accumulate(d["Lbar_va"].to_numpy())[:-1] + 1e-12)


def test_crnn_table_regenerates_tables_1_and_2():
    net = crnn.MultiViewNet(50)
    t1 = plots.crnn_table(net.subnets["mel"], torch.zeros(75, 64), head=net.heads["mel"])
    assert t1.loc["input", "output"] == "(75, 64, 1)"
    assert t1.loc["conv3", "filters"] == 128 and t1.loc["conv3", "padding"] == "SAME"
    assert t1.loc["pool6", ["filter", "stride", "output"]].tolist() == ["(1, 2)", "(1, 2)", "(75, 1, 512)"]
    assert t1.loc["biRNN (GRU)", "filters"] == "2 · 256" and t1.loc["attention", "output"] == "(512,)"
    assert t1.loc["fc3", "output"] == "(50,)"
    t2 = plots.crnn_table(net.subnets["raw"], torch.zeros(66650))
    assert t2.loc["conv01", ["filter", "stride", "filters", "padding", "output"]].tolist() == \
        ["(64, 1)", "(2, 1)", 32, "VALID", "(33,294, 1, 32)"]
    assert t2.loc["pool02", "output"] == "(260, 64, 1)" and t2.loc["pool1", "output"] == "(65, 32, 32)"
    assert t2.loc["conv1", "filter"] == "(5, 3)"


def test_fig2_and_plot_curves(tmp_path):
    recs = [fake_record(tmp_path, s, f) for s in ("mel", "raw", "multiview") for f in (1, 2)]
    axes = plots.fig2(recs)
    assert len(axes[0].lines) == 5 and len(axes[1].lines) == 5 and len(axes[2].lines) == 3
    steps, y, n = plots.mean_curve([r for r in recs if r["system"] == "mel"], "test")
    assert n == 2 and len(steps) == len(y) == 12
    again = fake_record(tmp_path / "s1", "mel", 1, seed=1)                  # a second seed on fold 1
    again["curves"]["loss"]["test"]["mel"] = [v + 3.0 for v in recs[0]["curves"]["loss"]["test"]["mel"]]
    _, y3, n3 = plots.mean_curve([recs[0], again, recs[1]], "test")
    fold1 = np.asarray(recs[0]["curves"]["loss"]["test"]["mel"]) + 1.5
    assert n3 == 3 and np.allclose(y3, (fold1 + np.asarray(recs[1]["curves"]["loss"]["test"]["mel"])) / 2)
    plt.close("all")
    empty = plots.fig2([])
    assert all("no records" in [t.get_text() for t in ax.texts] for ax in empty)
    fig = plots.plot_curves(recs[-1])
    assert len(fig.axes) == 3
    plt.close("all")


def test_figures_of_the_method_chapters():
    ax = plots.draw_network()
    assert any("Eq. 2" in t.get_text() for t in ax.texts)
    sr = 22050
    wave = np.random.default_rng(0).standard_normal(sr).astype(np.float32) * 0.1
    from mvbook.views import features as F
    views = {v: F.extract(v, wave, sr) for v in ("mel", "gam", "cqt")}
    fig = plots.plot_views(wave, sr, views, title="noise")
    assert len(fig.axes) == 7                                            # 4 panels + 3 colour bars
    net = crnn.CRNN2D(width=1 / 16)
    alpha, beta, H = plots.attention_maps(net, views["mel"])
    assert alpha.shape == (views["mel"].shape[0],) and np.isclose(alpha.sum(), 1, atol=1e-5)
    assert beta.shape == (H.shape[1],) and ((beta > 0) & (beta < 1)).all()
    plots.plot_attention(views["mel"], "mel", sr, alpha, beta, H)
    trace = plots.blending_trace(fake_curves(), window=3)
    assert len(plots.plot_blending_trace(trace).axes) == 4
    plt.close("all")


def test_band_frequencies():
    for v in ("mel", "gam", "cqt", "harm", "perc"):
        f = plots.band_frequencies(v, 44100)
        assert f.shape == (64,) and np.all(np.diff(f) > 0) and f[-1] < 22050
    assert plots.band_frequencies("cqt", 44100)[-1] == pytest.approx(32.703 * 2 ** (63 / 12), rel=1e-3)
    for v in ("harm", "perc"):                                          # the HPSS views have the Mel view's bands
        np.testing.assert_array_equal(plots.band_frequencies(v, 22050), plots.band_frequencies("mel", 22050))
    with pytest.raises(ValueError, match="not a 2D view"):
        plots.band_frequencies("raw", 44100)
    assert plots.frame_times is frame_times                             # one home: mvbook.views.framing


def test_hpss_views_are_drawn_on_their_own_axes():
    """The spectrogram panels read the framing and band tables of every 2D view, HPSS included."""
    sr, X = 22050, np.zeros((50, 64), dtype=np.float32)
    _, ax = plt.subplots()
    extent = {}
    for v in ("mel", "harm", "perc", "cqt"):
        plots._spectrogram(ax, X, v, sr)
        assert ax.get_ylabel() == f"{plots.VIEW_INFO[v].axis}\n(centre, Hz)"
        extent[v] = ax.images[-1].get_extent()[:2]
    t = frame_times("mel", 50, sr)
    np.testing.assert_allclose(extent["mel"], [t[0] - 0.01, t[-1] + 0.01])      # frame centres ± half a hop
    assert extent["harm"] == extent["perc"] == extent["mel"] != extent["cqt"]    # HPSS: the Mel view's frames
    plt.close("all")


def test_every_view_and_branch_has_a_label_and_a_colour():
    for k in (*ALL_VIEWS, "mv"):
        assert k in plots.BRANCH_LABEL and k in plots.BRANCH_COLOR, k
    assert len(set(plots.BRANCH_COLOR.values())) == len(plots.BRANCH_COLOR)     # all distinct


def test_figures_are_sized_for_the_books_column(tmp_path):
    """Fig. 2, the blending trace and a run's curves: panels stacked at the book's
    width, text no smaller than the body text there (12 pt at 8 in)."""
    import matplotlib.pyplot as plt

    from mvbook.book import plots_runs
    plots.book_style()
    recs = [fake_record(tmp_path, s, f) for s in ("multiview", "concat", "mel") for f in (1, 2)]
    axes = plots.fig2(recs)
    fig = axes[0].figure
    assert fig.get_size_inches()[0] == plots_runs.FIG_WIDTH and len({ax.get_position().y0 for ax in axes}) == 3
    sizes = [t.get_fontsize() for ax in axes for t in ax.get_xticklabels() + ax.get_yticklabels()]
    sizes += [t.get_fontsize() for ax in axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert sizes and min(sizes) >= plots_runs.FONT_PT
    assert "2 runs, mean over 2 folds" in axes[0].get_title(loc="left")
    trace = plots.blending_trace(recs[0]["curves"], 3)
    fig = plots.plot_blending_trace(trace)
    assert fig.get_size_inches()[0] == plots_runs.FIG_WIDTH and len(fig.axes) == 4
    assert min(t.get_fontsize() for t in fig.legends[0].get_texts()) >= plots_runs.FONT_PT
    plt.close("all")


def test_blending_trace_of_the_slope_rule_is_drawn():
    """A trace of the slope rule (``mv_slope``) has no references L* and its estimates
    are slopes, not losses: panel (a) draws the measured losses only, (b)–(d) G, O, w."""
    from mvbook.blending import RULES
    trace = plots.blending_trace(fake_curves(n=20), window=3, rule=RULES["slope"])
    assert "Lstar_va" not in trace and trace["G"].notna().any()
    fig = plots.plot_blending_trace(trace)
    a, g, o, w = fig.axes
    assert len(a.lines) == len(BRANCHES)                                   # measured, one per branch
    for ax in (g, o, w):
        assert len([line for line in ax.lines if line.get_marker() == "."]) == len(BRANCHES)
    assert "reference" not in a.get_title(loc="left")
    plt.close("all")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))])
def test_attention_maps_run_on_the_models_device(device):
    net = crnn.CRNN2D(width=1 / 16).to(device)
    X = np.random.default_rng(0).standard_normal((50, 64)).astype(np.float32)
    alpha, beta, H = plots.attention_maps(net, X)
    assert all(isinstance(a, np.ndarray) for a in (alpha, beta, H))
    assert alpha.shape == (50,) and H.shape == (50, beta.shape[0])
    assert next(net.parameters()).device.type == device                  # the model stays where it was
    again = plots.attention_maps(net, torch.as_tensor(X, device=device))  # a tensor input, on that device
    np.testing.assert_allclose(again[0], alpha, rtol=1e-6)


def test_attention_maps_move_the_input_to_the_model_and_the_maps_back():
    """Without an accelerator: on the meta device (shapes, no data) the forward pass
    runs only if the input is moved there, and then only copying the maps back to
    the host can fail."""
    net = crnn.CRNN2D(width=1 / 16).to("meta")
    with pytest.raises(NotImplementedError, match="Cannot copy out of meta tensor"):
        plots.attention_maps(net, np.zeros((50, 64), dtype=np.float32))
