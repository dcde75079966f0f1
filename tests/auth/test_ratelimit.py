"""Rate limits per IP class with a sliding window: bursts across a window boundary still count."""

from __future__ import annotations

from mox.ratelimit import ConnectionLimiter, RateLimiter, ip_classes


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_classes() -> None:
    assert ip_classes("192.0.2.77") == ("192.0.2.77/32", "192.0.2.64/26", "192.0.0.0/21")
    assert ip_classes("2001:db8::1") == ("2001:db8::/64", "2001:db8::/48", "2001:db8::/32")
    assert ip_classes("::ffff:192.0.2.1")[0] == "192.0.2.1/32"


def test_burst_straddling_a_window_boundary_is_limited() -> None:
    clock = Clock(59.0)
    rl = RateLimiter(60, (4, 12, 36), clock)
    rl.count("192.0.2.1", 2)  # two failures just before the boundary
    clock.t = 61.0
    rl.count("192.0.2.1", 2)  # two just after
    assert not rl.can_add("192.0.2.1")  # 4 within the last minute: at the limit
    assert rl.can_add("192.0.2.200")  # another /32 in the same /26 is still allowed
    clock.t = 119.5  # the old window has almost slid out; 2 recent + ~0 old
    assert rl.can_add("192.0.2.1")
    clock.t = 500.0  # long after: everything forgotten
    assert rl.add("192.0.2.1", 4)
    assert not rl.add("192.0.2.1")


def test_connection_limits() -> None:
    cl = ConnectionLimiter(concurrent=(2, 3, 4), per_minute=(100, 100, 100), clock=Clock(0))
    assert cl.open("198.51.100.1")
    assert cl.open("198.51.100.1")
    assert not cl.open("198.51.100.1")  # /32 concurrency
    assert cl.open("198.51.100.2")  # same /26, third connection
    assert not cl.open("198.51.100.3")  # /26 full
    cl.close("198.51.100.1")
    assert cl.open("198.51.100.1")
