"""The bucket behind each short Limit: never more than count in a window, close to its rate."""

from __future__ import annotations

import math

import pytest

from apigetter.contract import Limit
from apigetter.http import bucket


@pytest.mark.parametrize("count", [1, 2, 5, 20, 49, 50, 99, 100, 250, 1000, 5000])
@pytest.mark.parametrize("per", [1.0, 2.0, 60.0])
def test_bucket_bounds_every_window_and_keeps_the_rate(count: int, per: float) -> None:
    limiter = bucket(Limit(count, per_seconds=per))
    size, rate = limiter.max_rate, limiter.max_rate / limiter.time_period
    # A full bucket, then one request per refill: the most any window of `per` can hold.
    assert size + math.floor(rate * per + 1e-9) <= count
    assert rate * per / count >= 0.95
