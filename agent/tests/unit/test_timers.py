"""hanode.vrrp.timers: RFC 3768 / RFC 5798 Skew_Time and Master_Down_Interval in integer microseconds."""

from __future__ import annotations

from fractions import Fraction

import pytest

from hanode.vrrp.timers import advert_interval_us, master_down_interval_us, skew_time_us


# the worked numbers of shared/reference/vrrp.md
def test_v2_priority_100_one_second():
    assert skew_time_us(100, 100, 2) == 609_375            # 156/256 s = 0.609375 s
    assert master_down_interval_us(100, 100, 2) == 3_609_375


def test_v3_priority_200_ten_centiseconds():
    assert skew_time_us(200, 10, 3) == 21_875              # 56 * 100 ms / 256
    assert master_down_interval_us(200, 10, 3) == 321_875  # ~321.9 ms
    assert round(master_down_interval_us(200, 10, 3) / 1000, 1) == 321.9


@pytest.mark.parametrize("priority, advert_int_cs, version, skew_us, down_us", [
    (255, 100, 2, 3_906, 3_003_906),       # the owner: 1/256 s
    (254, 100, 2, 7_812, 3_007_812),
    (1, 100, 2, 996_093, 3_996_093),
    (100, 300, 2, 609_375, 9_609_375),     # v2: skew does not scale with the interval
    (100, 100, 3, 609_375, 3_609_375),     # v3 at 1 s equals v2
    (100, 300, 3, 1_828_125, 10_828_125),  # v3: skew scales with Master_Adver_Interval
    (254, 1, 3, 78, 30_078),               # smallest v3 interval (10 ms)
    (1, 4095, 3, 40_790_039, 163_640_039),  # largest v3 interval (40.95 s)
])
def test_table(priority, advert_int_cs, version, skew_us, down_us):
    assert skew_time_us(priority, advert_int_cs, version) == skew_us
    assert master_down_interval_us(priority, advert_int_cs, version) == down_us


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("advert_int_cs", [1, 7, 10, 100, 123, 4095])
@pytest.mark.parametrize("priority", [1, 2, 99, 100, 150, 200, 254, 255])
def test_sub_millisecond_exact(priority, advert_int_cs, version):
    """Integer microseconds never differ from the exact rational formula by a whole microsecond."""
    interval_s = Fraction(advert_int_cs, 100)
    exact_skew = Fraction(256 - priority, 256) * (1 if version == 2 else interval_s)
    exact_down = 3 * interval_s + exact_skew
    skew_us = skew_time_us(priority, advert_int_cs, version)
    down_us = master_down_interval_us(priority, advert_int_cs, version)
    assert isinstance(skew_us, int) and isinstance(down_us, int)
    assert 0 <= exact_skew * 1_000_000 - skew_us < 1
    assert 0 <= exact_down * 1_000_000 - down_us < 1


def test_advert_interval_in_microseconds():
    assert advert_interval_us(1) == 10_000
    assert advert_interval_us(100) == 1_000_000
    assert advert_interval_us(4095) == 40_950_000


@pytest.mark.parametrize("version", [2, 3])
def test_higher_priority_always_times_out_first(version):
    downs = [master_down_interval_us(p, 100, version) for p in range(1, 256)]
    assert downs == sorted(downs, reverse=True)
    assert len(set(downs)) == len(downs)
