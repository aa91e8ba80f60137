"""The statistics of the evidence and the report, against values computed by hand or from tables."""

import math

import pytest

from darts_video.stats import kendall_tau, mean_stderr, student_t_cdf, student_t_quantile, welch_interval


@pytest.mark.parametrize("dof,quantile", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281), (30, 2.0423), (1e6, 1.9600)])
def test_student_t_quantiles_match_the_tables(dof, quantile):
    assert student_t_quantile(0.975, dof) == pytest.approx(quantile, abs=1e-4)
    assert student_t_cdf(quantile, dof) == pytest.approx(0.975, abs=1e-5)
    assert student_t_quantile(0.025, dof) == pytest.approx(-quantile, abs=1e-4)


def test_welch_interval_by_hand():
    # a: mean 2, variance 1; b: mean 6, variance 4 -> se² = 1/3 + 4/3, dof = (5/3)² / ((1/3)²/2 + (4/3)²/2) = 50/17
    result = welch_interval([1, 2, 3], [4, 6, 8])
    assert result["difference"] == -4
    assert result["stderr"] == pytest.approx(math.sqrt(5 / 3))
    assert result["dof"] == pytest.approx(50 / 17)
    half = student_t_quantile(0.975, 50 / 17) * math.sqrt(5 / 3)
    assert (result["low"], result["high"]) == pytest.approx((-4 - half, -4 + half))
    assert 3.18 < half / math.sqrt(5 / 3) < 4.30  # t(0.975, 2.94) lies between the tables' 3.18 (3 dof) and 4.30 (2)


def test_welch_interval_of_constant_groups_and_too_few_values():
    assert welch_interval([5, 5], [3, 3]) == {"difference": 2, "low": 2, "high": 2, "stderr": 0.0, "dof": math.inf}
    with pytest.raises(ValueError, match="at least 2 values per group, got 1 and 3"):
        welch_interval([1], [1, 2, 3])


def test_kendall_tau_by_hand():
    assert kendall_tau([1, 2, 3, 4], [1, 2, 3, 4]) == 1
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # 5 concordant, 1 discordant pairs
    # ties: pairs (1,2) tie in x, (2,3) tie in y: 4 concordant, 0 discordant -> 4 / sqrt(5 * 5)
    assert kendall_tau([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="equal length"):
        kendall_tau([1, 2], [1])


def test_mean_stderr():
    assert mean_stderr([1, 2, 3, 4]) == pytest.approx((2.5, math.sqrt(5 / 3) / 2))
    assert mean_stderr([7]) == (7, 0.0)
