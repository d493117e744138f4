"""The request time limit: fixed by --timeout, or scaled to the speed the requests measured."""

from __future__ import annotations

from sandbox.deadline import FLOOR_S, MIN_SAMPLES, SLACK, START_S, WINDOW, Deadline


def test_a_fixed_limit_never_moves() -> None:
    deadline = Deadline(max_tokens=512, fixed_s=42.0)
    for _ in range(10):
        deadline.observe(100.0, 512)
    assert deadline.seconds() == 42.0


def test_before_measuring_the_limit_is_generous_and_grows_with_max_tokens() -> None:
    assert Deadline(max_tokens=64).seconds() == START_S
    assert Deadline(max_tokens=4096).seconds() == 2048.0


def test_after_a_few_requests_the_limit_follows_the_median_speed() -> None:
    deadline = Deadline(max_tokens=200)
    deadline.observe(10.0, 100)  # 0.1 s per token
    deadline.observe(20.0, 100)  # 0.2 s: the median
    assert deadline.seconds() == START_S  # not enough yet
    deadline.observe(90.0, 100)  # 0.9 s: an outlier moves the median less than the mean
    assert MIN_SAMPLES == 3
    assert deadline.seconds() == SLACK * 200 * 0.2


def test_a_fast_model_gets_the_floor_and_short_replies_are_not_measured() -> None:
    deadline = Deadline(max_tokens=32)
    for _ in range(5):
        deadline.observe(5.0, 2)  # 2 tokens: says nothing about speed
    assert deadline.seconds() == START_S
    for _ in range(5):
        deadline.observe(0.32, 32)
    assert deadline.seconds() == FLOOR_S


def test_a_machine_that_got_faster_is_followed_after_the_window() -> None:
    deadline = Deadline(max_tokens=100)
    for _ in range(WINDOW):
        deadline.observe(100.0, 100)  # 1 s per token while the machine was busy
    assert deadline.seconds() == SLACK * 100 * 1.0
    for _ in range(WINDOW):
        deadline.observe(10.0, 100)
    assert deadline.seconds() == SLACK * 100 * 0.1
