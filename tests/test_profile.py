"""Tests for segment.profile: descriptives, omnibus and pairwise tests,
adjusted means, pseudo-class draws, archetype names and bad input."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from segment.errors import SegmentError
from segment.profile import (
    ADJUSTED_COLUMNS,
    ARCHETYPE_COLUMNS,
    CONTINUUM_COLUMNS,
    PAIRWISE_COLUMNS,
    PROFILE_COLUMNS,
    TEST_COLUMNS,
    UNCERTAINTY_COLUMNS,
    ArchetypeProfiles,
    ProfileConfig,
    concat_profiles,
    near_circular_features,
    profile_archetypes,
)

ONE = ProfileConfig(outcomes=("anxiety",))


def make_cohort(n_per=150, means=(2.0, 2.0, 3.5), seed=0, shuffle=True):
    """Labels and outcomes with planted anxiety means; other outcomes null."""
    rng = np.random.default_rng(seed)
    k = len(means)
    lab = np.repeat(np.arange(k), n_per)
    ids = [f"id{i:04d}" for i in range(lab.size)]
    anxiety = rng.normal(np.asarray(means)[lab], 1.0)
    outcomes = pd.DataFrame(
        {"anxiety": anxiety,
         "depression": rng.normal(5, 2, lab.size),
         "sleep": rng.normal(7, 1, lab.size)},
        index=ids,
    )
    if shuffle:
        outcomes = outcomes.sample(frac=1.0, random_state=seed)
    return pd.Series(lab, index=ids), outcomes


def get_pair(pw, outcome, a, b):
    row = pw[(pw.outcome == outcome) & (pw.archetype_a == a) & (pw.archetype_b == b)]
    assert len(row) == 1
    return row.iloc[0]


def get_test(tests, outcome, test, subset="all assigned"):
    row = tests[(tests.outcome == outcome) & (tests.test == test) & (tests.subset == subset)]
    assert len(row) == 1
    return row.iloc[0]


def stat(profiles, archetype, outcome, statistic):
    row = profiles[(profiles.archetype == archetype) & (profiles.outcome == outcome)
                   & (profiles.statistic == statistic)]
    assert len(row) == 1
    return row.iloc[0]


# --------------------------------------------------------------------------
# Structure
# --------------------------------------------------------------------------


def test_tables_have_stable_columns():
    labels, outcomes = make_cohort(n_per=30)
    res = profile_archetypes(labels, outcomes, method="kmeans")
    assert isinstance(res, ArchetypeProfiles)
    assert tuple(res.profiles.columns) == PROFILE_COLUMNS
    assert tuple(res.tests.columns) == TEST_COLUMNS
    assert tuple(res.pairwise.columns) == PAIRWISE_COLUMNS
    assert tuple(res.adjusted.columns) == ADJUSTED_COLUMNS
    assert tuple(res.uncertainty.columns) == UNCERTAINTY_COLUMNS
    assert tuple(res.archetypes.columns) == ARCHETYPE_COLUMNS
    assert res.uncertainty.empty
    assert (res.tests.method == "kmeans").all()
    assert set(res.tests.test) == {"one-way ANOVA", "Welch's ANOVA", "Kruskal-Wallis"}
    assert len(res.tests) == 3 * 3
    assert len(res.pairwise) == 3 * 3
    assert res.warnings == []


# --------------------------------------------------------------------------
# Planted differences and error rate
# --------------------------------------------------------------------------


def test_planted_differences_are_detected_and_equality_is_not():
    labels, outcomes = make_cohort(n_per=150, means=(2.0, 2.0, 3.5), seed=3)
    res = profile_archetypes(labels, outcomes, method="gmm")
    pw = res.pairwise
    assert get_pair(pw, "anxiety", 0, 2).p_adjusted < 0.05
    assert get_pair(pw, "anxiety", 1, 2).p_adjusted < 0.05
    assert get_pair(pw, "anxiety", 0, 2).reject
    assert get_pair(pw, "anxiety", 0, 2).mean_diff == pytest.approx(-1.5, abs=0.3)
    assert get_pair(pw, "anxiety", 0, 2).hedges_g < -1
    equal = get_pair(pw, "anxiety", 0, 1)
    assert equal.p_adjusted >= 0.05 and not equal.reject
    # Games-Howell p-values are adjusted within an outcome already: not corrected again
    assert (pw.p_adjusted == pw.p_value).all()
    assert (pw.family == "the 3 pairs of gmm archetypes on " + pw.outcome
            + ", Games-Howell (studentized range) adjustment").all()
    assert (pw.correction == "games-howell").all()
    assert (pw.test == "Games-Howell").all()
    anova = get_test(res.tests, "anxiety", "one-way ANOVA")
    assert anova.p_value < 1e-10


def test_false_positive_rate_of_planted_equality_is_nominal():
    false_positives = 0
    runs = 200
    for seed in range(runs):
        labels, outcomes = make_cohort(n_per=25, means=(2.0, 2.0, 3.5), seed=seed, shuffle=False)
        res = profile_archetypes(labels, outcomes, method="kmeans", config=ONE)
        false_positives += bool(get_pair(res.pairwise, "anxiety", 0, 1).reject)
    assert false_positives / runs <= 0.07


# --------------------------------------------------------------------------
# Omnibus tests against reference implementations
# --------------------------------------------------------------------------


@pytest.fixture
def fixed_groups():
    rng = np.random.default_rng(42)
    sizes, means, sds = (12, 20, 9, 15), (1.0, 1.8, 0.5, 1.2), (1.0, 2.5, 0.7, 1.4)
    values = [np.round(rng.normal(m, s, n), 1) for n, m, s in zip(sizes, means, sds)]
    lab = np.concatenate([np.full(n, g) for g, n in enumerate(sizes)])
    ids = [f"r{i}" for i in range(lab.size)]
    labels = pd.Series(lab, index=ids)
    outcomes = pd.DataFrame({"anxiety": np.concatenate(values)}, index=ids)
    return labels, outcomes, values


def test_one_way_anova_matches_scipy(fixed_groups):
    labels, outcomes, values = fixed_groups
    res = profile_archetypes(labels, outcomes, method="kmeans", config=ONE)
    row = get_test(res.tests, "anxiety", "one-way ANOVA")
    ref = stats.f_oneway(*values)
    allv = np.concatenate(values)
    ss_t = ((allv - allv.mean()) ** 2).sum()
    ss_b = sum(v.size * (v.mean() - allv.mean()) ** 2 for v in values)
    assert row.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert row.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert row.effect_size_name == "eta_squared"
    assert row.effect_size == pytest.approx(ss_b / ss_t, rel=1e-10)
    assert (row.df1, row.df2, row.n, row.k) == (3.0, allv.size - 4.0, allv.size, 4)


def test_welch_anova_matches_statsmodels(fixed_groups):
    from statsmodels.stats.oneway import anova_oneway

    labels, outcomes, values = fixed_groups
    res = profile_archetypes(labels, outcomes, method="kmeans", config=ONE)
    row = get_test(res.tests, "anxiety", "Welch's ANOVA")
    ref = anova_oneway(values, use_var="unequal")
    assert row.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert row.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert row.df1 == pytest.approx(ref.df_num)
    assert row.df2 == pytest.approx(ref.df_denom, rel=1e-10)
    # Omega squared, textbook formula from the classical sums of squares.
    allv = np.concatenate(values)
    n, k = allv.size, len(values)
    ss_t = ((allv - allv.mean()) ** 2).sum()
    ss_b = sum(v.size * (v.mean() - allv.mean()) ** 2 for v in values)
    ms_w = (ss_t - ss_b) / (n - k)
    assert row.effect_size_name == "omega_squared_classical"
    assert row.effect_size == pytest.approx((ss_b - (k - 1) * ms_w) / (ss_t + ms_w),
                                            rel=1e-10)


def test_kruskal_wallis_matches_scipy(fixed_groups):
    labels, outcomes, values = fixed_groups
    res = profile_archetypes(labels, outcomes, method="kmeans", config=ONE)
    row = get_test(res.tests, "anxiety", "Kruskal-Wallis")
    ref = stats.kruskal(*values)
    n = sum(v.size for v in values)
    assert row.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert row.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert row.effect_size_name == "epsilon_squared"
    assert row.effect_size == pytest.approx(ref.statistic / ((n ** 2 - 1) / (n + 1)),
                                            rel=1e-10)


# --------------------------------------------------------------------------
# Pairwise
# --------------------------------------------------------------------------


def test_games_howell_matches_hand_computation():
    a = np.array([3.0, 4.0, 5.0, 4.5, 6.0, 5.5])
    b = np.array([6.0, 7.5, 8.0, 6.5, 9.0, 7.0, 8.5])
    c = np.array([4.0, 3.0, 5.0, 6.0, 2.0])
    lab = np.repeat([0, 1, 2], [a.size, b.size, c.size])
    ids = list(range(lab.size))
    labels = pd.Series(lab, index=ids)
    outcomes = pd.DataFrame({"anxiety": np.concatenate([a, b, c])}, index=ids)
    res = profile_archetypes(labels, outcomes, method="kmeans", config=ONE)
    row = get_pair(res.pairwise, "anxiety", 0, 1)

    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    t = (a.mean() - b.mean()) / se
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    p = stats.studentized_range.sf(abs(t) * math.sqrt(2), 3, df)
    pooled = math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1))
                       / (a.size + b.size - 2))
    g = (a.mean() - b.mean()) / pooled * (1 - 3 / (4 * (a.size + b.size) - 9))

    assert row.mean_diff == pytest.approx(a.mean() - b.mean())
    assert row.se == pytest.approx(se)
    assert row.statistic == pytest.approx(t)
    assert row.df == pytest.approx(df)
    assert row.p_value == pytest.approx(p, rel=1e-8)
    assert row.hedges_g == pytest.approx(g)
    # The studentized range already adjusts over the pairs of the outcome.
    assert (res.pairwise.p_adjusted == res.pairwise.p_value).all()

    welch = profile_archetypes(labels, outcomes, method="kmeans",
                               config=ProfileConfig(outcomes=("anxiety",), pairwise="welch",
                                                    correction="fdr_bh"))
    wrow = get_pair(welch.pairwise, "anxiety", 0, 1)
    assert wrow.test == "Welch t"
    assert wrow.p_value == pytest.approx(2 * stats.t.sf(abs(t), df))
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert wrow.p_value == pytest.approx(ref.pvalue)
    assert (welch.pairwise.correction == "fdr_bh").all()
    assert "Benjamini-Hochberg" in wrow.family


# --------------------------------------------------------------------------
# Descriptives
# --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["holm", "fdr_bh", "bonferroni"])
def test_corrections_equal_statsmodels_and_skip_missing_p_values(method):
    from statsmodels.stats.multitest import multipletests

    from segment.multitest import adjust_p_values

    rng = np.random.default_rng(4)
    for m in (1, 2, 7, 40):
        p = rng.uniform(0, 0.08, m) ** rng.uniform(0.5, 2)
        p[: m // 3] = p[0]  # ties
        rng.shuffle(p)
        adjusted, reject = adjust_p_values(p, 0.05, method)
        want_reject, want_adjusted = multipletests(p, alpha=0.05, method=method)[:2]
        np.testing.assert_array_equal(adjusted, want_adjusted)
        np.testing.assert_array_equal(reject, want_reject)
    adjusted, reject = adjust_p_values([0.01, np.nan, 0.04], 0.05, method)
    assert np.isnan(adjusted[1]) and not reject[1]
    np.testing.assert_array_equal(adjusted[[0, 2]], multipletests([0.01, 0.04], method=method)[1])


def test_descriptives_and_cutoffs():
    labels, outcomes = make_cohort(n_per=40, seed=5)
    res = profile_archetypes(labels, outcomes, method="gmm",
                             cutoffs={"anxiety": [(2, "mild"), (3.5, "moderate")]})
    v = outcomes.loc[labels.index[labels == 2], "anxiety"].to_numpy()
    p = res.profiles
    assert stat(p, 2, "anxiety", "n").value == 40
    assert stat(p, 2, "anxiety", "mean").value == pytest.approx(v.mean())
    assert stat(p, 2, "anxiety", "sd").value == pytest.approx(v.std(ddof=1))
    assert stat(p, 2, "anxiety", "median").value == pytest.approx(np.median(v))
    q1, q3 = np.percentile(v, [25, 75])
    assert stat(p, 2, "anxiety", "iqr").value == pytest.approx(q3 - q1)
    lo, hi = stats.t.interval(0.95, v.size - 1, loc=v.mean(), scale=stats.sem(v))
    assert stat(p, 2, "anxiety", "ci_low").value == pytest.approx(lo)
    assert stat(p, 2, "anxiety", "ci_high").value == pytest.approx(hi)
    share = stat(p, 2, "anxiety", "share_at_or_above_3_5")
    assert share.value == pytest.approx(np.mean(v >= 3.5))
    assert share.threshold == 3.5 and share.cutoff_label == "at or above 3.5 (moderate)"
    assert stat(p, 0, "anxiety", "share_at_or_above_2").value == pytest.approx(
        np.mean(outcomes.loc[labels.index[labels == 0], "anxiety"] >= 2))
    assert (p.group == "archetype").all()


def test_outcomes_are_aligned_by_index_and_missing_dropped_per_outcome():
    labels, outcomes = make_cohort(n_per=30, seed=2, shuffle=False)
    outcomes.iloc[:5, 0] = np.nan  # five anxiety values missing in archetype 0
    shuffled = outcomes.sample(frac=1.0, random_state=1)
    a = profile_archetypes(labels, outcomes, method="kmeans")
    b = profile_archetypes(labels, shuffled, method="kmeans")
    pd.testing.assert_frame_equal(a.tests, b.tests)
    assert stat(a.profiles, 0, "anxiety", "n").value == 25
    assert stat(a.profiles, 0, "depression", "n").value == 30
    assert get_test(a.tests, "anxiety", "one-way ANOVA").n == 85


def test_noise_is_reported_separately_and_left_out_of_tests_by_default():
    labels, outcomes = make_cohort(n_per=30, seed=4, shuffle=False)
    labels = labels.copy()
    labels.iloc[::10] = -1
    res = profile_archetypes(labels, outcomes, method="hdbscan")
    noise = res.profiles[res.profiles.archetype == -1]
    assert len(noise) and (noise.group == "noise").all()
    assert get_test(res.tests, "anxiety", "one-way ANOVA").k == 3
    assert -1 not in set(res.pairwise.archetype_a) | set(res.pairwise.archetype_b)
    assert res.archetypes.set_index("archetype").loc[-1, "group"] == "noise"
    assert res.archetypes.share.sum() == pytest.approx(1.0)
    with_noise = profile_archetypes(labels, outcomes, method="hdbscan",
                                    config=ProfileConfig(include_noise=True))
    assert get_test(with_noise.tests, "anxiety", "one-way ANOVA").k == 4
    assert -1 in set(with_noise.pairwise.archetype_a)


def test_core_members_sensitivity_rows():
    labels, outcomes = make_cohort(n_per=40, seed=6)
    core = pd.Series(np.arange(labels.size) % 3 != 0, index=labels.index)
    res = profile_archetypes(labels, outcomes, method="hdbscan", core=core, config=ONE)
    assert set(res.tests.subset) == {"all assigned", "core members"}
    core_row = get_test(res.tests, "anxiety", "one-way ANOVA", subset="core members")
    assert core_row.n == int(core.sum())
    sub = labels[core]
    values = [outcomes.loc[sub.index[sub == g], "anxiety"] for g in range(3)]
    assert core_row.statistic == pytest.approx(stats.f_oneway(*values).statistic)
    # Pairwise comparisons use all assigned respondents only.
    assert len(res.pairwise) == 3


# --------------------------------------------------------------------------
# Adjusted means
# --------------------------------------------------------------------------


def test_adjusted_means_without_covariates_equal_raw_means():
    labels, outcomes = make_cohort(n_per=50, seed=7)
    res = profile_archetypes(labels, outcomes, method="kmeans")
    adj = res.adjusted[res.adjusted.kind == "adjusted_mean"]
    for _, row in adj.iterrows():
        raw = stat(res.profiles, row.archetype, row.outcome, "mean").value
        assert row.estimate == pytest.approx(raw, rel=1e-10)
        assert row.ci_low < row.estimate < row.ci_high
    assert (res.adjusted.covariates == "none").all()
    assert (res.adjusted.se_type == "HC3").all()
    diff = res.adjusted[(res.adjusted.kind == "difference_vs_reference")
                        & (res.adjusted.outcome == "anxiety")].set_index("archetype")
    m = {g: stat(res.profiles, g, "anxiety", "mean").value for g in range(3)}
    assert diff.loc[2, "estimate"] == pytest.approx(m[2] - m[0])
    assert diff.loc[2, "reference_archetype"] == 0
    assert diff.loc[2, "p_value"] < 0.001


def test_adjusted_means_with_covariates_match_statsmodels_predict():
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(8)
    labels, outcomes = make_cohort(n_per=60, seed=8, shuffle=False)
    n = labels.size
    lab = labels.to_numpy()
    age = rng.normal(30 + 4 * lab, 6)              # confounded with archetype
    gender = rng.choice(["female", "male", "other"], n, p=[0.5, 0.4, 0.1])
    cov = pd.DataFrame({"age (years)": age, "gender": gender}, index=labels.index)
    outcomes = outcomes.assign(anxiety=outcomes.anxiety + 0.05 * age
                               + (gender == "male") * 0.4)
    res = profile_archetypes(labels, outcomes, method="gmm", covariates=cov, config=ONE)

    data = pd.DataFrame({"y": outcomes.anxiety.to_numpy(), "arch": lab, "age": age,
                         "gender": gender})
    fit = smf.ols("y ~ C(arch) + age + C(gender)", data).fit(cov_type="HC3", use_t=True)
    adj = res.adjusted[res.adjusted.kind == "adjusted_mean"].set_index("archetype")
    for g in range(3):
        cf = data.assign(arch=g)
        expected = fit.predict(cf).mean()
        # Mean design row of the counterfactual data, in the model's column order.
        row = {"Intercept": 1.0, "age": age.mean(),
               "C(gender)[T.male]": np.mean(gender == "male"),
               "C(gender)[T.other]": np.mean(gender == "other"),
               "C(arch)[T.1]": float(g == 1), "C(arch)[T.2]": float(g == 2)}
        grad = np.array([row[name] for name in fit.model.exog_names])
        assert grad @ fit.params.to_numpy() == pytest.approx(expected, rel=1e-10)
        se = math.sqrt(grad @ fit.cov_params().to_numpy() @ grad)
        assert adj.loc[g, "estimate"] == pytest.approx(expected, rel=1e-10)
        assert adj.loc[g, "se"] == pytest.approx(se, rel=1e-8)
    diff = res.adjusted[res.adjusted.kind == "difference_vs_reference"].set_index("archetype")
    for g in (1, 2):
        term = f"C(arch)[T.{g}]"
        assert diff.loc[g, "estimate"] == pytest.approx(fit.params[term], rel=1e-10)
        assert diff.loc[g, "se"] == pytest.approx(fit.bse[term], rel=1e-8)
        assert diff.loc[g, "p_value"] == pytest.approx(fit.pvalues[term], rel=1e-6)
        lo, hi = fit.conf_int().loc[term]
        assert diff.loc[g, "ci_low"] == pytest.approx(lo, rel=1e-8)
    assert (res.adjusted.covariates == "age (years), C(gender)").all()
    assert (res.adjusted.n == n).all()


# --------------------------------------------------------------------------
# Classification uncertainty
# --------------------------------------------------------------------------


def test_pseudo_class_draws_with_one_hot_posteriors_equal_plain_means():
    labels, outcomes = make_cohort(n_per=40, seed=9)
    post = np.eye(3)[labels.to_numpy()]
    res = profile_archetypes(labels, outcomes, method="gmm", posteriors=post)
    unc = res.uncertainty
    assert len(unc) == 3 * 3
    assert (unc.approach == "pseudo-class draws (m=20), Rubin's rules").all()
    assert (unc.m == 20).all()
    for _, row in unc.iterrows():
        raw = stat(res.profiles, row.archetype, row.outcome, "mean").value
        assert row.estimate == pytest.approx(raw, rel=1e-12)
        assert row.between_variance == pytest.approx(0.0, abs=1e-20)
        assert row.total_variance == pytest.approx(row.within_variance, rel=1e-12)
    # Within variance is the OLS variance of a class mean: pooled residual variance / n_j.
    y = outcomes.loc[labels.index, "anxiety"].to_numpy()
    lab = labels.to_numpy()
    resid = y - np.array([y[lab == g].mean() for g in range(3)])[lab]
    s2 = resid @ resid / (y.size - 3)
    row = unc[(unc.outcome == "anxiety") & (unc.archetype == 1)].iloc[0]
    assert row.within_variance == pytest.approx(s2 / 40)


def test_pseudo_class_draws_carry_classification_uncertainty():
    labels, outcomes = make_cohort(n_per=40, seed=10)
    post = 0.7 * np.eye(3)[labels.to_numpy()] + 0.1
    cfg = ProfileConfig(outcomes=("anxiety",), pseudo_class_draws=30)
    a = profile_archetypes(labels, outcomes, method="gmm", posteriors=post, config=cfg,
                           seed=1)
    b = profile_archetypes(labels, outcomes, method="gmm", posteriors=post, config=cfg,
                           seed=1)
    pd.testing.assert_frame_equal(a.uncertainty, b.uncertainty)
    unc = a.uncertainty
    assert (unc.between_variance > 0).all()
    np.testing.assert_allclose(unc.total_variance,
                               unc.within_variance + (1 + 1 / 30) * unc.between_variance)
    np.testing.assert_allclose(unc.se ** 2, unc.total_variance)
    assert (unc.m == 30).all()
    # Misclassification pulls the high-anxiety archetype's mean towards the others.
    plain = stat(a.profiles, 2, "anxiety", "mean").value
    assert unc.set_index("archetype").loc[2, "estimate"] < plain


def test_bad_posteriors_raise():
    labels, outcomes = make_cohort(n_per=10)
    with pytest.raises(SegmentError, match="shape"):
        profile_archetypes(labels, outcomes, method="gmm", posteriors=np.ones((5, 3)))
    with pytest.raises(SegmentError, match="sum to 1"):
        profile_archetypes(labels, outcomes, method="gmm",
                           posteriors=np.ones((labels.size, 3)))


# --------------------------------------------------------------------------
# Archetype descriptions and names
# --------------------------------------------------------------------------


def make_features(labels, seed=0):
    rng = np.random.default_rng(seed)
    cols = ["purposeless_use", "distraction", "daily_time", "comparison"]
    feats = pd.DataFrame(rng.normal(size=(labels.size, 4)), index=labels.index,
                         columns=cols)
    lab = labels.to_numpy()
    feats.loc[lab == 1, "distraction"] += 2.0
    feats.loc[lab == 1, "purposeless_use"] -= 1.0
    return feats


def test_draft_name_puts_planted_feature_first():
    labels, outcomes = make_cohort(n_per=60, seed=11)
    feats = make_features(labels)
    res = profile_archetypes(labels, outcomes, method="kmeans", features=feats)
    row = res.archetypes.set_index("archetype").loc[1]
    assert row["name"].startswith("high distraction · low purposeless use")
    assert row["name"] == row["draft_name"]
    assert row["top_features"].startswith("distraction +")
    assert row["top_features"].split("; ")[1].startswith("purposeless_use -")
    assert row["name"].count(" · ") == 2
    fr = res.features[(res.features.archetype == 1) & (res.features.feature == "distraction")]
    x = feats["distraction"].to_numpy()
    inside, rest = x[labels.to_numpy() == 1], x[labels.to_numpy() != 1]
    pooled = math.sqrt(((inside.size - 1) * inside.var(ddof=1)
                        + (rest.size - 1) * rest.var(ddof=1)) / (x.size - 2))
    assert fr.smd.iloc[0] == pytest.approx((inside.mean() - rest.mean()) / pooled)
    assert fr["rank"].iloc[0] == 1


def test_names_can_be_overridden_from_config():
    labels, outcomes = make_cohort(n_per=30, seed=12)
    feats = make_features(labels)
    cfg = ProfileConfig(names={"kmeans": {1: "Distracted scrollers", "2": "Two"},
                               "gmm": {0: "ignored for kmeans"}})
    res = profile_archetypes(labels, outcomes, method="kmeans", features=feats, config=cfg)
    names = res.archetypes.set_index("archetype")["name"]
    assert names[1] == "Distracted scrollers"
    assert names[2] == "Two"
    assert names[0] != "ignored for kmeans"
    bad = ProfileConfig(names={"kmeans": {7: "Nobody"}})
    with pytest.raises(SegmentError, match="archetype 7"):
        profile_archetypes(labels, outcomes, method="kmeans", config=bad)


# --------------------------------------------------------------------------
# Stability verdicts
# --------------------------------------------------------------------------


def test_dissolved_archetype_warns_not_to_read_as_findings():
    labels, outcomes = make_cohort(n_per=30, seed=13)
    stability = pd.DataFrame({"archetype": [0, 1, 2],
                              "verdict": ["stable", "stable", "dissolved"]})
    res = profile_archetypes(labels, outcomes, method="gmm", stability=stability)
    assert (res.tests.stability_verdict == "not all archetypes stable").all()
    text = res.tests.interpretation.iloc[0]
    assert "not to be read as findings" in text
    assert "slicing a continuum" in text and "archetype 2: dissolved" in text
    assert (res.pairwise.interpretation == text).all()
    assert get_pair(res.pairwise, "anxiety", 0, 2).stability_verdict == "dissolved"
    assert get_pair(res.pairwise, "anxiety", 0, 1).stability_verdict == "stable"
    verdicts = res.archetypes.set_index("archetype").stability_verdict
    assert verdicts[2] == "dissolved" and verdicts[0] == "stable"
    assert set(res.profiles[res.profiles.archetype == 2].stability_verdict) == {"dissolved"}
    for table in (res.profiles, res.tests, res.pairwise, res.adjusted, res.archetypes):
        assert "stability_verdict" in table.columns


def test_stability_all_stable_and_not_assessed():
    labels, outcomes = make_cohort(n_per=30, seed=14)
    stable = pd.DataFrame({"method": ["gmm"] * 3 + ["kmeans"],
                           "archetype": [0, 1, 2, 0],
                           "verdict": ["stable", "stable", "stable", "dissolved"]})
    res = profile_archetypes(labels, outcomes, method="gmm", stability=stable)
    assert (res.tests.stability_verdict == "all stable").all()
    assert (res.tests.interpretation == "archetypes stable under resampling").all()
    none = profile_archetypes(labels, outcomes, method="gmm")
    assert (none.tests.stability_verdict == "stability not assessed").all()
    assert (none.tests.interpretation == "stability not assessed").all()
    with pytest.raises(SegmentError, match="verdict"):
        profile_archetypes(labels, outcomes, method="gmm",
                           stability=pd.DataFrame({"archetype": [0], "verdict": ["great"]}))


# --------------------------------------------------------------------------
# Bad input and reported fallbacks
# --------------------------------------------------------------------------


def test_unknown_outcome_is_named_with_available_columns():
    labels, outcomes = make_cohort(n_per=10)
    cfg = ProfileConfig(outcomes=("anxiety", "loneliness"))
    with pytest.raises(SegmentError, match="loneliness") as err:
        profile_archetypes(labels, outcomes, method="gmm", config=cfg)
    assert "depression" in str(err.value) and "sleep" in str(err.value)


def test_outcome_without_variance_is_an_error():
    labels, outcomes = make_cohort(n_per=10)
    outcomes = outcomes.assign(sleep=4.0)
    with pytest.raises(SegmentError, match="'sleep' has no variance"):
        profile_archetypes(labels, outcomes, method="gmm")


def test_missing_respondents_are_an_error():
    labels, outcomes = make_cohort(n_per=10)
    with pytest.raises(SegmentError, match="outcomes"):
        profile_archetypes(labels, outcomes.iloc[3:], method="gmm")


def test_single_member_archetype_is_left_out_with_a_note():
    labels, outcomes = make_cohort(n_per=20, seed=15, shuffle=False)
    labels = labels.copy()
    labels.iloc[0] = 3  # archetype 3 has one member
    res = profile_archetypes(labels, outcomes, method="kmeans")
    assert any("archetype 3" in w and "single member" in w for w in res.warnings)
    assert (res.tests.k == 3).all()
    assert res.tests.note.str.contains("archetype 3").all()
    assert res.tests.note.str.contains("single member").all()
    assert 3 not in set(res.pairwise.archetype_a) | set(res.pairwise.archetype_b)
    assert len(res.pairwise) == 9
    assert math.isnan(stat(res.profiles, 3, "anxiety", "sd").value)
    assert stat(res.profiles, 3, "anxiety", "n").value == 1
    assert "single member" in stat(res.profiles, 3, "anxiety", "sd").note
    assert 3 not in set(res.adjusted.archetype)
    assert res.archetypes.set_index("archetype").loc[3, "n"] == 1


def test_fewer_than_two_archetypes_gives_empty_tests_with_warning():
    labels, outcomes = make_cohort(n_per=20, means=(2.0,), seed=16)
    res = profile_archetypes(labels, outcomes, method="hdbscan")
    assert res.tests.empty and res.pairwise.empty and res.adjusted.empty
    assert tuple(res.tests.columns) == TEST_COLUMNS
    assert any("fewer than two archetypes" in w for w in res.warnings)
    assert stat(res.profiles, 0, "anxiety", "n").value == 20
    assert "Omnibus tests" in res._repr_html_()


def test_constant_covariate_is_dropped_with_warning():
    labels, outcomes = make_cohort(n_per=30, seed=17)
    rng = np.random.default_rng(0)
    cov = pd.DataFrame({"age": rng.normal(30, 5, labels.size), "country": "UK",
                        "wave": 1.0}, index=labels.index)
    res = profile_archetypes(labels, outcomes, method="gmm", covariates=cov, config=ONE)
    assert (res.adjusted.covariates == "age").all()
    assert any("'country'" in w and "dropped" in w for w in res.warnings)
    assert any("'wave'" in w and "dropped" in w for w in res.warnings)


def test_unknown_covariate_is_an_error():
    labels, outcomes = make_cohort(n_per=10)
    cov = pd.DataFrame({"age": np.arange(labels.size, dtype=float)}, index=labels.index)
    cfg = ProfileConfig(covariates=("age", "income"))
    with pytest.raises(SegmentError, match="income"):
        profile_archetypes(labels, outcomes, method="gmm", covariates=cov, config=cfg)


def test_bad_config_values_are_errors():
    labels, outcomes = make_cohort(n_per=10)
    with pytest.raises(SegmentError, match="correction"):
        profile_archetypes(labels, outcomes, method="gmm",
                           config=ProfileConfig(correction="bonferonni"))
    with pytest.raises(SegmentError, match="pairwise"):
        profile_archetypes(labels, outcomes, method="gmm",
                           config=ProfileConfig(pairwise="tukey"))
    with pytest.raises(SegmentError, match="cutoffs"):
        profile_archetypes(labels, outcomes, method="gmm", cutoffs={"stress": [(5, "x")]})


# --------------------------------------------------------------------------
# Combining and display
# --------------------------------------------------------------------------


def test_concat_profiles_and_html():
    labels, outcomes = make_cohort(n_per=20, seed=18)
    a = profile_archetypes(labels, outcomes, method="gmm", config=ONE)
    b = profile_archetypes(labels, outcomes, method="kmeans", config=ONE)
    both = concat_profiles([a, b])
    assert set(both.tests.method) == {"gmm", "kmeans"}
    assert len(both.pairwise) == len(a.pairwise) + len(b.pairwise)
    assert both.uncertainty.empty
    assert tuple(both.adjusted.columns) == ADJUSTED_COLUMNS
    html = both._repr_html_()
    assert "<table" in html and "Kruskal-Wallis" in html


# --------------------------------------------------------------------------
# Correction families
# --------------------------------------------------------------------------


def test_welch_pairs_are_corrected_once_over_pairs_and_outcomes():
    from statsmodels.stats.multitest import multipletests

    labels, outcomes = make_cohort(n_per=40, seed=21)
    for correction in ("holm", "bonferroni"):
        res = profile_archetypes(labels, outcomes, method="kmeans",
                                 config=ProfileConfig(pairwise="welch", correction=correction))
        pw = res.pairwise
        expected = multipletests(pw.p_value.to_numpy(), method=correction)[1]
        np.testing.assert_allclose(pw.p_adjusted.to_numpy(), expected)
        assert (pw.correction == correction).all()
        assert pw.family.str.startswith("all 9 pairwise comparisons (3 pairs × 3 outcomes)").all()


def test_omnibus_tests_and_adjusted_differences_state_their_family():
    from statsmodels.stats.multitest import multipletests

    labels, outcomes = make_cohort(n_per=40, seed=22)
    res = profile_archetypes(labels, outcomes, method="kmeans")
    welch = res.tests[(res.tests.test == "Welch's ANOVA") & (res.tests.subset == "all assigned")]
    assert len(welch) == 3
    np.testing.assert_allclose(welch.p_adjusted, multipletests(welch.p_value, method="holm")[1])
    assert (welch.family == "Welch's ANOVA (all assigned) over 3 outcomes for kmeans, "
            "Holm correction").all()
    assert res.tests.p_adjusted.notna().all() and (res.tests.correction == "holm").all()
    diff = res.adjusted[res.adjusted.kind == "difference_vs_reference"]
    assert len(diff) == 6
    np.testing.assert_allclose(diff.p_adjusted, multipletests(diff.p_value, method="holm")[1])
    assert diff.family.str.startswith("all 6 adjusted differences").all()


def test_every_stability_verdict_is_accepted():
    labels, outcomes = make_cohort(n_per=20, seed=23)
    stab = pd.DataFrame({"archetype": [0, 1, 2],
                         "verdict": ["not resampled", "borderline", "stable"]})
    res = profile_archetypes(labels, outcomes, method="gmm", stability=stab, config=ONE)
    verdicts = res.archetypes.set_index("archetype").stability_verdict
    assert verdicts.to_dict() == {0: "not resampled", 1: "borderline", 2: "stable"}
    pair = get_pair(res.pairwise, "anxiety", 0, 1)
    assert pair.stability_verdict == "not resampled"


# --------------------------------------------------------------------------
# Noise, leverage, core members, effect sizes
# --------------------------------------------------------------------------


def test_noise_as_a_group_of_its_own_beside_the_noise_excluded_effect_sizes():
    labels, outcomes = make_cohort(n_per=30, seed=24, shuffle=False)
    labels = labels.copy()
    labels.iloc[::10] = -1
    res = profile_archetypes(labels, outcomes, method="hdbscan")
    main = get_test(res.tests, "anxiety", "one-way ANOVA")
    with_noise = get_test(res.tests, "anxiety", "one-way ANOVA", subset="noise as a group")
    assert (main.k, with_noise.k) == (3, 4)
    assert with_noise.n == labels.size
    values = [outcomes.loc[labels.index[labels == g], "anxiety"] for g in (-1, 0, 1, 2)]
    f = stats.f_oneway(*values)
    assert with_noise.statistic == pytest.approx(f.statistic)
    # pairwise comparisons stay on the archetypes
    assert -1 not in set(res.pairwise.archetype_a)


def test_leverage_one_respondent_keeps_hc3_with_zero_contribution():
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(25)
    labels, outcomes = make_cohort(n_per=30, seed=25, shuffle=False)
    age = rng.normal(40, 8, labels.size)
    group = np.array(["a", "b"] * (labels.size // 2), dtype=object)
    group[5] = "only"  # the only member of its level: leverage 1
    cov = pd.DataFrame({"age": age, "group": group}, index=labels.index)
    res = profile_archetypes(labels, outcomes, method="gmm", covariates=cov, config=ONE)
    diff = res.adjusted[res.adjusted.kind == "difference_vs_reference"].set_index("archetype")
    assert (res.adjusted.se_type == "HC3").all()
    assert "leverage 1" in diff.loc[1, "note"]
    # its HC3 contribution is zero: the same as the fit without it
    keep = np.arange(labels.size) != 5
    data = pd.DataFrame({"y": outcomes.anxiety.to_numpy(), "arch": labels.to_numpy(), "age": age,
                         "group": group})[keep]
    fit = smf.ols("y ~ C(arch) + age + C(group)", data).fit(cov_type="HC3")
    for g in (1, 2):
        assert diff.loc[g, "se"] == pytest.approx(fit.bse[f"C(arch)[T.{g}]"], rel=1e-8)
        assert diff.loc[g, "estimate"] == pytest.approx(fit.params[f"C(arch)[T.{g}]"], rel=1e-8)


def test_core_analysis_is_not_repeated_when_every_member_is_core():
    labels, outcomes = make_cohort(n_per=20, seed=26)
    core = pd.Series(True, index=labels.index)
    res = profile_archetypes(labels, outcomes, method="hdbscan", core=core, config=ONE)
    assert set(res.tests.subset) == {"all assigned"}
    assert any("every analysed respondent is a core member" in w for w in res.warnings)


# --------------------------------------------------------------------------
# Continuum check and near-circular features
# --------------------------------------------------------------------------


def test_continuum_check_flags_slices_of_a_continuum():
    rng = np.random.default_rng(27)
    n = 300
    x = rng.normal(size=n)
    ids = [f"id{i}" for i in range(n)]
    features = pd.DataFrame({"f1": x, "f2": x + rng.normal(scale=0.3, size=n),
                             "f3": rng.normal(size=n)}, index=ids)
    outcomes = pd.DataFrame({"anxiety": 2 * x + rng.normal(size=n)}, index=ids)
    labels = pd.Series(np.digitize(x, np.quantile(x, [1 / 3, 2 / 3])), index=ids)
    res = profile_archetypes(labels, outcomes, method="kmeans", features=features)
    row = res.continuum.iloc[0]
    assert tuple(res.continuum.columns) == CONTINUUM_COLUMNS
    assert row.k == 3 and row.n == n
    y = outcomes.anxiety.to_numpy()
    design = np.column_stack([np.ones(n), features.to_numpy()])
    resid = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    assert row.features_r_squared == pytest.approx(1 - resid @ resid / ((y - y.mean()) ** 2).sum())
    anova = get_test(res.tests, "anxiety", "one-way ANOVA")
    assert row.archetype_eta_squared == pytest.approx(anova.effect_size)
    assert row.continuum_as_good
    assert any("slices of a continuum" in w for w in res.warnings)


def test_continuum_check_does_not_flag_a_non_monotone_archetype_effect():
    rng = np.random.default_rng(28)
    sizes = (60, 120, 60)
    lab = np.repeat([0, 1, 2], sizes)
    x = np.array([-4.0, 0.0, 4.0])[lab] + rng.normal(size=lab.size)
    ids = [f"id{i}" for i in range(lab.size)]
    features = pd.DataFrame({"f1": x, "f2": rng.normal(size=lab.size)}, index=ids)
    outcomes = pd.DataFrame({"anxiety": np.array([0.0, 3.0, 0.0])[lab]
                             + rng.normal(size=lab.size)}, index=ids)
    res = profile_archetypes(pd.Series(lab, index=ids), outcomes, method="kmeans",
                             features=features)
    row = res.continuum.iloc[0]
    assert row.features_r_squared < 0.1
    assert row.pc1_slices_eta_squared < row.archetype_eta_squared
    assert not row.continuum_as_good


def test_near_circular_features_are_found_by_rank_correlation():
    rng = np.random.default_rng(29)
    n = 200
    ids = [f"id{i}" for i in range(n)]
    anxiety = rng.normal(size=n)
    features = pd.DataFrame({"worry": anxiety + rng.normal(scale=0.5, size=n),
                             "calm": -anxiety + rng.normal(scale=0.5, size=n),
                             "hobby": rng.normal(size=n)}, index=ids)
    outcomes = pd.DataFrame({"anxiety": anxiety}, index=ids)
    found = near_circular_features(features, outcomes)
    assert set(found.feature) == {"worry", "calm"}
    rho = stats.spearmanr(features.worry, anxiety)[0]
    assert found.set_index("feature").loc["worry", "spearman"] == pytest.approx(rho)
    assert (found.spearman.abs() >= 0.5).all()


def test_correction_names_are_checked_at_load_with_the_names_profiling_accepts():
    from segment.config import CORRECTIONS, config_from_dict
    from segment.errors import ConfigError

    labels, outcomes = make_cohort(n_per=10, seed=30)
    for name in CORRECTIONS:
        cfg = config_from_dict({"profile": {"correction": name, "pairwise": "welch"}})
        res = profile_archetypes(labels, outcomes, method="gmm",
                                 config=ProfileConfig(correction=cfg.profile.correction,
                                                      pairwise="welch"))
        assert (res.pairwise.correction == name).all()
    with pytest.raises(ConfigError, match="profile.correction"):
        config_from_dict({"profile": {"correction": "bonferonni"}})
