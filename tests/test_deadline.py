"""The request time limit: fixed by --timeout, or scaled to the speed the requests measured."""

from __future__ import annotations

import pytest

from sandbox.deadline import CHARS_PER_TOKEN, FLOOR_S, SLACK, START_S, WINDOW, Deadline, fit


def test_a_fixed_limit_never_moves() -> None:
    deadline = Deadline(max_tokens=512, fixed_s=42.0)
    for _ in range(10):
        deadline.observe(100.0, 3000, 512)
    assert deadline.seconds(100_000) == 42.0


def test_before_measuring_the_limit_is_generous_and_grows_with_max_tokens() -> None:
    assert Deadline(max_tokens=64).seconds(100) == START_S
    assert Deadline(max_tokens=4096).seconds(100) == 2048.0


def test_the_fit_separates_prompt_processing_from_generation() -> None:
    # 5 ms per prompt token, 40 ms per generated token, as a small model on two cores.
    samples = [(p, g, 0.005 * p + 0.04 * g) for p, g in [(300, 128), (3000, 30), (900, 90)]]
    a, b = fit(samples)
    assert a == pytest.approx(0.005) and b == pytest.approx(0.04)


def test_a_long_prompt_gets_more_time_than_a_short_one() -> None:
    deadline = Deadline(max_tokens=128)
    for p, g in [(300, 128), (3000, 30), (900, 90)]:
        deadline.observe(0.005 * p + 0.04 * g, p, g)
    short, long = deadline.seconds(1_000), deadline.seconds(12_000)
    assert short == max(FLOOR_S, SLACK * (0.005 * 1_000 / CHARS_PER_TOKEN + 0.04 * 128))
    assert long == pytest.approx(SLACK * (0.005 * 12_000 / CHARS_PER_TOKEN + 0.04 * 128))
    assert long > short


def test_samples_that_cannot_tell_the_two_apart_give_each_rate_all_the_time() -> None:
    a, b = fit([(100, 100, 2.0), (200, 200, 4.0), (300, 300, 6.0)])  # collinear
    assert a == pytest.approx(0.02) and b == pytest.approx(0.02)
    samples = [(100, 10, 1.0), (100, 100, 0.5), (200, 50, 1.5)]  # longer replies, less time?
    a, b = fit(samples)
    assert a > 0 and b > 0
    # Each alone carries all the time, so together they predict more than was measured.
    assert sum(a * p + b * g for p, g, _ in samples) > 1.5 * sum(t for _, _, t in samples)


def test_a_machine_that_got_faster_is_followed_after_the_window() -> None:
    deadline = Deadline(max_tokens=200)
    for _ in range(WINDOW):
        deadline.observe(200.0, 0, 200)  # 1 s per token while the machine was busy
    assert deadline.seconds(0) == SLACK * 200 * 1.0
    for _ in range(WINDOW):
        deadline.observe(20.0, 0, 200)
    assert deadline.seconds(0) == pytest.approx(SLACK * 200 * 0.1)


def test_a_server_that_reports_no_usage_is_not_measured() -> None:
    deadline = Deadline(max_tokens=64)
    for _ in range(5):
        deadline.observe(0.01, 0, 0)
    assert deadline.seconds(100) == START_S
