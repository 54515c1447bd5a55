"""Waiting in tests without sleep-and-hope: poll a condition until a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import gevent

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.01,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Return the first truthy value of ``condition()``; fail the test after ``timeout`` s.

    Polls cooperatively (``gevent.sleep``), so actors and servers in this process keep
    running while the test waits.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {text}")
        gevent.sleep(interval)
