"""Power of the fold-level design and the crossed random-effects model (mvbook.power)."""
import numpy as np
import pytest
from scipy import stats

from mvbook.power import crossed_model, minimum_detectable_difference, variance_components


def test_the_minimum_detectable_difference_is_found_with_the_asked_power():
    for n, alpha in ((5, 0.05), (5, 0.05 / 8), (12, 0.01)):
        delta = minimum_detectable_difference(2.0, n, alpha=alpha)
        rng = np.random.default_rng(n)
        d = rng.normal(delta, 2.0, size=(40000, n))
        found = stats.ttest_1samp(d, 0.0, axis=1).pvalue < alpha
        assert found.mean() == pytest.approx(0.8, abs=0.01)
    assert minimum_detectable_difference(1.0, 5, alpha=0.05 / 8) > minimum_detectable_difference(1.0, 5)
    assert minimum_detectable_difference(0.0, 5) == 0.0 and np.isnan(minimum_detectable_difference(1.0, 1))


def test_variance_components_by_hand_and_their_projection():
    vc = variance_components({1: [1.0, 3.0], 2: [5.0, 7.0], 3: [3.0, 5.0]})
    # within: every fold's runs are ±1 around its mean → MS_within = 2; between: means 2, 6, 4 → MS_between = 2·4
    assert (vc.run, vc.fold, vc.folds, vc.runs) == (2.0, 3.0, 3, 6)
    assert vc.fold_mean_sd(2) == pytest.approx(2.0) and vc.fold_mean_sd(np.inf) == pytest.approx(np.sqrt(3))
    assert vc.mdd(np.inf) < vc.mdd(10) < vc.mdd(2)
    with pytest.raises(ValueError):
        variance_components({1: [1.0], 2: [2.0]})


def _anova(y):
    F, S = y.shape
    gm = y.mean()
    ms_f = S * ((y.mean(1) - gm) ** 2).sum() / (F - 1)
    ms_s = F * ((y.mean(0) - gm) ** 2).sum() / (S - 1)
    res = y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + gm
    ms_e = (res ** 2).sum() / ((F - 1) * (S - 1))
    return ms_f, ms_s, ms_e


def test_the_crossed_model_on_a_balanced_grid_is_the_two_way_anova():
    rng = np.random.default_rng(0)
    F, S = 5, 3
    a, b = rng.normal(0, 2, F), rng.normal(0, 3, S)
    y = 1 + a[:, None] + b[None, :] + rng.normal(size=(F, S))
    fit = crossed_model(y.ravel(), np.repeat(np.arange(F), S), np.tile(np.arange(S), F))
    ms_f, ms_s, ms_e = _anova(y)
    assert fit.mean == pytest.approx(y.mean())
    assert (fit.fold, fit.seed, fit.residual) == pytest.approx(((ms_f - ms_e) / S, (ms_s - ms_e) / F, ms_e), rel=1e-4)
    v = ms_f + ms_s - ms_e
    assert fit.se == pytest.approx(np.sqrt(v / (F * S)), rel=1e-4)
    satterthwaite = v ** 2 / (ms_f ** 2 / (F - 1) + ms_s ** 2 / (S - 1) + ms_e ** 2 / ((F - 1) * (S - 1)))
    assert fit.df == pytest.approx(satterthwaite, rel=1e-3)
    assert fit.p == pytest.approx(2 * stats.t.sf(abs(fit.mean) / fit.se, fit.df))


def test_seeds_drawn_per_fold_are_levels_of_their_own():
    rng = np.random.default_rng(1)
    folds = np.repeat(np.arange(5), 4)
    y = rng.normal(size=20) + np.repeat(rng.normal(0, 1.5, 5), 4)
    nested = crossed_model(y, folds, [f"{f}:{i % 4}" for i, f in enumerate(folds)])
    # every seed its own level: the seed part cannot be told from the residual, and the mean is the
    # one-way random-effects model's, whose standard error with equal groups is that of the fold means
    means = y.reshape(5, 4).mean(1)
    assert nested.mean == pytest.approx(y.mean())
    assert nested.se == pytest.approx(means.std(ddof=1) / np.sqrt(5), rel=1e-3)
