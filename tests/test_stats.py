"""Mean/std and the t-test helper against hand-computed values."""

import math

import pytest

from edenkit.stats import compare, format_mean_std, mean_std


def test_mean_std_sample_deviation():
    s = mean_std([1.0, 2.0, 3.0, 4.0])
    assert s["mean"] == 2.5 and s["n"] == 4
    assert s["std"] == pytest.approx(math.sqrt(5 / 3))  # sum of squares 5, ddof=1
    assert mean_std([0.7])["std"] == 0.0
    with pytest.raises(ValueError):
        mean_std([])


def test_format_mean_std_in_percent():
    assert format_mean_std([0.5, 0.7], scale=100) == "60.00 ± 14.14"


def test_paired_t_test_by_hand():
    a, b = [0.80, 0.82, 0.85], [0.70, 0.75, 0.74]
    d = [x - y for x, y in zip(a, b)]  # 0.10, 0.07, 0.11
    mean_d = sum(d) / 3
    sd_d = math.sqrt(sum((x - mean_d) ** 2 for x in d) / 2)
    r = compare(a, b, paired=True)
    assert r["t"] == pytest.approx(mean_d / (sd_d / math.sqrt(3)))
    assert 0 < r["p"] < 0.05 and r["mean_diff"] == pytest.approx(mean_d)


def test_welch_and_too_few_runs():
    r = compare([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert r["t"] == pytest.approx(0.0) and r["p"] == pytest.approx(1.0)
    assert math.isnan(compare([1.0], [2.0, 3.0])["p"])
    with pytest.raises(ValueError, match="differ"):
        compare([1.0, 2.0], [1.0], paired=True)
