import math

import pytest

from paperloom.stats import mean_se, paired_difference


def test_mean_se_by_hand():
    mean, se = mean_se([1.0, 2.0, 4.0])  # sample variance ((4/3)^2 + (1/3)^2 + (5/3)^2) / 2 = 7/3
    assert mean == pytest.approx(7 / 3) and se == pytest.approx(math.sqrt(7 / 3) / math.sqrt(3))
    assert mean_se([5.0]) == (5.0, 0.0)


def test_paired_difference_removes_the_shared_part():
    a, b = [10.0, 20.0, 30.0], [9.0, 19.5, 28.5]  # differences 1, 0.5, 1.5: mean 1, sample std 0.5
    mean, se = paired_difference(a, b)
    assert mean == pytest.approx(1.0) and se == pytest.approx(0.5 / math.sqrt(3))
    with pytest.raises(ValueError):
        paired_difference([1.0], [1.0, 2.0])
