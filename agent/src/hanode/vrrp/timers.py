"""RFC 3768 / RFC 5798 timers in integer microseconds (FRR's names, kept verbatim)."""

from __future__ import annotations

US_PER_CS = 10_000
US_PER_S = 1_000_000


def advert_interval_us(advert_int_cs: int) -> int:
    return advert_int_cs * US_PER_CS


def skew_time_us(priority: int, master_adver_int_cs: int, version: int) -> int:
    """v2: (256 - priority) / 256 s.  v3: ((256 - priority) * Master_Adver_Interval) / 256."""
    if version == 2:
        return (256 - priority) * US_PER_S // 256
    return (256 - priority) * master_adver_int_cs * US_PER_CS // 256


def master_down_interval_us(priority: int, master_adver_int_cs: int, version: int, down_timer_adverts: int = 3) -> int:
    """3 * Master_Adver_Interval + Skew_Time (keepalived's down_timer_adverts replaces the RFC's 3)."""
    adverts_us = down_timer_adverts * advert_interval_us(master_adver_int_cs)
    return adverts_us + skew_time_us(priority, master_adver_int_cs, version)
