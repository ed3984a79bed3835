"""The verdict figures (mvbook.book.plots_claims): what they draw and say."""
import html

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mvbook.book.plots_claims import figure_html, forest_alt, plot_class_accuracy, plot_confusion, plot_forest

matplotlib.use("Agg")


def _decisions():
    def d(diff, verdict):
        return pd.DataFrame({"mean_diff": diff, "ci95": [1.0, 2.0], "mdd": [3.0, 4.0], "verdict": verdict},
                            index=["a above b", "a above c"])
    return {"cpu": d([-2.0, 5.0], ["not shown", "holds"]), "long": d([1.0, np.nan], ["not shown", "too few runs"])}


def test_the_forest_draws_one_interval_per_decided_claim_and_preset():
    fig = plot_forest(_decisions())
    ax = fig.axes[0]
    assert len(ax.containers) == 3                        # the undecided (NaN) claim draws no interval
    xs = sorted(float(c.lines[0].get_xdata()[0]) for c in ax.containers)
    assert xs == [-2.0, 1.0, 5.0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a above b", "a above c"]


def test_the_alt_text_says_every_claim_and_the_html_carries_it():
    alt = forest_alt(_decisions())
    assert "a above b: −2.00 points" in alt and "holds" in alt and "detectable from 4.0" in alt
    out = figure_html(plot_forest(_decisions()), alt + ' "quoted" <b>')
    assert out.startswith('<img src="data:image/png;base64,') and html.escape(alt, quote=True) in out
    assert '"quoted"' not in out
    fig, ax = plt.subplots()
    drawing = figure_html(fig, "a drawing", fmt="svg")
    assert drawing.startswith('<img src="data:image/svg+xml;base64,') and 'alt="Figure: a drawing"' in drawing
    assert not plt.fignum_exists(fig.number)
    other = plt.figure()
    with pytest.raises(ValueError, match="fmt must be one of"):
        figure_html(other, "a drawing", fmt="jpeg")
    plt.close(other)


def test_class_and_confusion_figures():
    t = pd.DataFrame([[50.0, 100.0], [0.0, 75.0]], index=["mel", "late"], columns=["dog", "rain"])
    fig = plot_class_accuracy(t, {"mel": "Mel"})
    assert [x.get_text() for x in fig.axes[0].get_yticklabels()] == ["Mel", "late"]
    assert sorted(x.get_text() for x in fig.axes[0].texts) == ["0", "100", "50", "75"]
    fig = plot_confusion(np.array([[3, 1], [0, 4]]), ["dog", "rain"])
    assert sorted(x.get_text() for x in fig.axes[0].texts) == ["100", "25", "75"]
