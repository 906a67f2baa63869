"""Reference vectors for RetryPolicy.test.ts, produced by the REAL kombu/celery code.

Run with the system python (/usr/bin/python3), where Celery 5.2.6 and kombu 5.2.4 are installed.
Any import failure exits non-zero, so the TypeScript test fails instead of skipping.

For each policy it runs `kombu.utils.functional.retry_over_time` exactly as
`RedisBackend.ensure` does (errback = Celery's own `on_connection_error`, whose log lines are
captured), with a function that always raises a connection error, `time.sleep` patched to record
the sleeps (and advance a fake clock) and `time.time` patched to read that fake clock (t0 = 0.0).
Policies that would retry forever stop with an uncaught exception after `cap` attempts.
It also prints the first `fxrange` values and `humanize_seconds` results. Output: JSON on stdout.
"""
import json
import logging
import random
import sys
from itertools import islice

import kombu.utils.functional as kf
import redis
from celery.backends import redis as celery_redis
from celery.utils.time import humanize_seconds

FXRANGE_COUNT = 40
DEFAULT_CAP = 60


class StopDraw(Exception):
    """Not a connection error: escapes retry_over_time once we have drawn enough attempts."""


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append([record.levelname, record.getMessage()])


capture = Capture()
celery_logger = logging.getLogger(celery_redis.__name__)
celery_logger.addHandler(capture)
celery_logger.setLevel(logging.DEBUG)
celery_logger.propagate = False


def run_policy(policy, cap):
    clock = {"now": 0.0}
    sleeps = []  # one list of sleep() calls per retry
    tts_seen = []
    attempts = {"n": 0}

    def fake_time():
        return clock["now"]

    def fake_sleep(secs):
        sleeps[-1].append(secs)
        clock["now"] += secs

    def fun():
        attempts["n"] += 1
        if attempts["n"] >= cap:
            raise StopDraw()
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6398. Connection refused.")

    max_retries = policy["max_retries"]

    def errback(exc, intervals, retries):
        # Celery's own errback (self is unused by it): pulls the interval and logs E_LOST.
        tts = celery_redis.RedisBackend.on_connection_error(None, max_retries, exc, intervals, retries)
        tts_seen.append(tts)
        sleeps.append([])
        return tts

    kwargs = {k: v for k, v in policy.items() if v is not None or k == "max_retries"}
    capture.lines = []
    checks = []  # elapsed - end at each timeout check, to reject near-ties for random policies
    saved = (kf.time, kf.sleep)
    kf.time, kf.sleep = fake_time, fake_sleep
    try:
        outcome = None
        try:
            kf.retry_over_time(fun, (redis.ConnectionError,), (), {}, errback, **kwargs)
        except redis.ConnectionError:
            outcome = "exhausted"
        except StopDraw:
            outcome = "capped"
    finally:
        kf.time, kf.sleep = saved
    retries = attempts["n"] - 1
    reason = None
    if outcome == "exhausted":
        reason = "MaxRetries" if (max_retries is not None and retries >= max_retries) else "Timeout"
    # Reconstruct the clock at each failure to detect ties with the deadline.
    timeout = policy.get("timeout")
    near_tie = False
    if timeout:
        elapsed = 0.0
        for i in range(attempts["n"]):
            if abs(elapsed - timeout) < 1e-6 and elapsed != timeout:
                near_tie = True
            if i < len(sleeps):
                for s in sleeps[i]:
                    elapsed += s
    totals = []
    for calls in sleeps:
        total = 0.0
        for s in calls:
            total += s
        totals.append(total)
    return {
        "policy": policy,
        "cap": cap,
        "attempts": attempts["n"],
        "outcome": outcome,
        "reason": reason,
        "tts": tts_seen,
        "sleepCallCounts": [len(calls) for calls in sleeps],
        "sleeps": totals,
        "logs": capture.lines,
        "fxrange": list(islice(kf.fxrange(policy["interval_start"],
                                          policy["interval_max"] + policy["interval_start"],
                                          policy["interval_step"], repeatlast=True), FXRANGE_COUNT)),
        "nearTie": near_tie,
    }


def P(max_retries=20, interval_start=0, interval_step=1, interval_max=1, timeout=None):
    return {"max_retries": max_retries, "interval_start": interval_start, "interval_step": interval_step,
            "interval_max": interval_max, "timeout": timeout}


FIXED = [
    P(),                                             # Celery defaults: 0, 1, 1, … 21 attempts
    P(max_retries=3),
    P(max_retries=0),                                # no retry at all; log would show Inf
    P(max_retries=1),
    P(max_retries=None),                             # forever (capped)
    P(max_retries=None, timeout=5),                  # forever until the timeout
    P(max_retries=20, timeout=3),                    # exact tie at elapsed == 3 (strict >)
    P(max_retries=20, timeout=2.5),
    P(max_retries=20, timeout=-1),                   # already past the deadline at the first failure
    P(max_retries=5, timeout=0),                     # 0 is "no timeout"
    P(interval_start=2, interval_step=2, interval_max=30, max_retries=25),  # kombu defaults: cap is 32
    P(interval_start=0, interval_step=1, interval_max=0, max_retries=12),   # stop 0 is falsy: 0,1,2,3,…
    P(interval_start=0, interval_step=0.5, interval_max=0, max_retries=12),
    P(interval_start=0, interval_step=0, interval_max=0, max_retries=5),    # all zero: no sleeps
    P(interval_start=1, interval_step=0, interval_max=1, max_retries=5),
    P(interval_start=0.1, interval_step=0.1, interval_max=1, max_retries=30),  # float accumulation
    P(interval_start=0.3, interval_step=0.7, interval_max=2.2, max_retries=15),
    P(interval_start=0, interval_step=0.2, interval_max=0.5, max_retries=10),  # only fractions: "now"
    P(interval_start=1.5, interval_step=2.25, interval_max=10, max_retries=10),
    P(interval_start=5, interval_step=10, interval_max=100, max_retries=14),   # minutes in the log
    P(interval_start=30, interval_step=90, interval_max=3600, max_retries=8),
    P(interval_start=3000, interval_step=50000, interval_max=100000, max_retries=4),  # hours and days
    P(interval_start=0, interval_step=7.5, interval_max=100, max_retries=20),  # 67.5 s = 1.125 minutes (tie)
    P(interval_start=0.125, interval_step=0.25, interval_max=2, max_retries=12),  # .2f ties
    P(interval_start=-1.5, interval_step=1, interval_max=4, max_retries=8),     # negative intervals
    P(interval_start=2, interval_step=-0.75, interval_max=1, max_retries=10),   # negative step
    P(interval_start=1, interval_step=1, interval_max=-1, max_retries=6),       # stop 0 via cancellation
    P(interval_start=0.1, interval_step=0.2, interval_max=-0.1, max_retries=6),  # tiny non-zero stop
    P(interval_start=0, interval_step=1, interval_max=1, max_retries=None, timeout=7.25),
    P(interval_start=0.5, interval_step=0.5, interval_max=3, max_retries=None, timeout=12),
]


def random_policies(rng, n):
    out = []
    while len(out) < n:
        kind = rng.random()
        if kind < 0.4:
            start, step, imax = rng.randint(0, 5), rng.randint(0, 5), rng.randint(0, 30)
        elif kind < 0.75:
            start = round(rng.uniform(0, 3), rng.choice([1, 2, 3]))
            step = round(rng.uniform(0, 3), rng.choice([1, 2, 3]))
            imax = round(rng.uniform(0, 20), rng.choice([0, 1, 2]))
        elif kind < 0.9:
            start, step, imax = rng.uniform(0, 2), rng.uniform(0, 2), rng.uniform(0, 10)
        else:
            start, step, imax = 0, rng.choice([0, 1, 2, 0.5, 0.25]), 0  # start=max=0: unbounded
        max_retries = rng.choice([0, 1, 2, 5, 20, 20, None, rng.randint(0, 40)])
        timeout = None
        if rng.random() < 0.3:
            timeout = rng.choice([rng.randint(1, 40), round(rng.uniform(0.1, 40), 2), rng.uniform(0, 30)])
        policy = P(max_retries, start, step, imax, timeout)
        vector = run_policy(policy, DEFAULT_CAP)
        if vector["nearTie"]:
            continue  # float seconds vs integer-millisecond clocks may disagree on such a deadline
        out.append(vector)
    return out


HUMANIZE = [0, 0.004, 0.005, 0.006, 0.5, 0.99, 0.994, 0.995, 0.996, 1, 1.0, 1.004, 1.005, 1.125, 1.375,
            2, 2.5, 9.999, 10, 10.005, 59.99, 59.995, 59.996, 60, 67.5, 89.99, 90, 119.7, 120, 3599.99,
            3600, 3600.5, 5400, 7200, 86399.999, 86400, 90000, 129600, 172800, 1e7, 1e15, 1e22,
            -0.0, -0.001, -1, -5.5, -3600, 0.125, 0.375, 0.625, 0.875, 2.675, 1.115, 0.045,
            float("inf"), float("-inf"), float("nan")]


def main():
    rng = random.Random(20260522)
    vectors = [run_policy(p, DEFAULT_CAP) for p in FIXED] + random_policies(rng, 220)
    humanize = []
    for v in HUMANIZE:
        humanize.append([repr(float(v)), "", humanize_seconds(v)])
        humanize.append([repr(float(v)), "in ", humanize_seconds(v, "in ")])
        humanize.append([repr(float(v)), "micro", humanize_seconds(v, "in ", " ", "right now", True)])
    fixed2 = [[repr(x), format(x, ".2f")] for x in [float(v) for v in HUMANIZE] +
              [rng.uniform(-1000, 1000) for _ in range(300)] + [i / 8 for i in range(-40, 41)] +
              [i / 200 for i in range(-300, 301)]]
    lost = []
    for retries, max_retries, tts in [(0, 20, 0.0), (1, 20, 1.0), (5, 0, 1.0), (3, None, 10.0), (2, 3, 0.5),
                                      (7, 1, 61.0), (0, 2, 7200.0), (4, 100, 1.125), (9, 12, -3.0)]:
        lost.append([retries, max_retries, tts,
                     celery_redis.E_LOST.strip() % (retries, max_retries or "Inf", humanize_seconds(tts, "in "))])
    json.dump({
        "versions": {"python": sys.version.split()[0]},
        "E_RETRY_LIMIT_EXCEEDED": celery_redis.E_RETRY_LIMIT_EXCEEDED,
        "vectors": vectors,
        "humanize": humanize,
        "lost": lost,
        "fixed2": fixed2,
    }, sys.stdout)


if __name__ == "__main__":
    main()
