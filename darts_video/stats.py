"""The few statistics the search's evidence and the experiment's report need, without SciPy.

- :func:`mean_stderr`: a mean and its standard error (paired differences, per-clip effects);
- :func:`welch_interval`: the 95 % interval of a difference of two means with unequal variances
  (Welch–Satterthwaite degrees of freedom, Student-t quantile);
- :func:`kendall_tau`: Kendall's τ-b between two rankings (ties counted as neither order).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (0 for fewer than two values)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, statistics.stdev(values) / math.sqrt(len(values))


def student_t_cdf(t: float, dof: float) -> float:
    """P(T <= t) for Student's t with ``dof`` degrees of freedom, through the regularised
    incomplete beta function I_x(dof/2, 1/2) with x = dof / (dof + t²)."""
    x = dof / (dof + t * t)
    tail = 0.5 * _incomplete_beta(x, dof / 2, 0.5)
    return 1 - tail if t > 0 else tail


def student_t_quantile(probability: float, dof: float) -> float:
    """The t with P(T <= t) = ``probability`` (bisection on the CDF; |error| < 1e-10)."""
    if not 0 < probability < 1:
        raise ValueError(f"probability must lie in (0, 1), got {probability}")
    low, high = -1e3, 1e3
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if student_t_cdf(middle, dof) < probability else (low, middle)
    return (low + high) / 2


def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """mean(a) − mean(b) with its ``confidence`` interval (Welch's t). Each group needs two
    values or more; if both are constant the interval is the difference itself."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Welch's interval needs at least 2 values per group, got {len(a)} and {len(b)}")
    difference = statistics.fmean(a) - statistics.fmean(b)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    stderr = math.sqrt(va + vb)
    if stderr == 0:
        return {"difference": difference, "low": difference, "high": difference, "stderr": 0.0, "dof": math.inf}
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = student_t_quantile(0.5 + confidence / 2, dof) * stderr
    return {"difference": difference, "low": difference - half, "high": difference + half, "stderr": stderr, "dof": dof}


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's τ-b: (concordant − discordant) / √((n0 − ties_x)(n0 − ties_y)) over all pairs."""
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"Kendall's tau needs two sequences of equal length >= 2, got {len(x)} and {len(y)}")
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denominator if denominator else 0.0


def _incomplete_beta(x: float, a: float, b: float) -> float:
    """Regularised incomplete beta I_x(a, b) by its continued fraction (Numerical Recipes' form)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _incomplete_beta(1 - x, b, a)
    # Lentz's algorithm for the continued fraction
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)), -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return front * result / a
