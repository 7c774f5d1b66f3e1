"""Summaries over seeded runs: mean and standard deviation, and a t-test between two methods.

The paper reports means over several runs and compares methods with t-tests; these helpers do the
same so that a table printed by a notebook says how many runs stand behind each number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "std", "n"}``; ``std`` is the sample standard deviation (ddof=1), 0 for one run."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise ValueError("mean_std: no values")
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std, "n": int(arr.size)}


def format_mean_std(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    """``"84.35 ± 1.20"`` (``scale=100`` turns fractions into percent)."""
    s = mean_std(values)
    return f"{s['mean'] * scale:.{digits}f} ± {s['std'] * scale:.{digits}f}"


def format_p(value) -> str:
    """A p-value to three significant digits; ``"n/a"`` where there is none (NaN or None)."""
    return "n/a" if value is None or value != value else f"{value:.3g}"


def compare(a: Sequence[float], b: Sequence[float], paired: bool = False) -> dict[str, float]:
    """Two-sided t-test of method ``a`` against method ``b``.

    ``paired=True`` (``scipy.stats.ttest_rel``) when run i of both methods shares its seed and data
    split, as in the kit's protocols; otherwise Welch's test (``ttest_ind(equal_var=False)``).
    Returns ``{"t", "p", "mean_diff", "n_a", "n_b"}``; with fewer than two runs per method ``t`` and ``p``
    are NaN.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired and a.shape != b.shape:
        raise ValueError(f"compare(paired=True): runs differ in number ({a.size} vs {b.size})")
    out = {"mean_diff": float(a.mean() - b.mean()), "n_a": int(a.size), "n_b": int(b.size)}
    if min(a.size, b.size) < 2:
        return {"t": float("nan"), "p": float("nan"), **out}
    result = stats.ttest_rel(a, b) if paired else stats.ttest_ind(a, b, equal_var=False)
    return {"t": float(result.statistic), "p": float(result.pvalue), **out}
