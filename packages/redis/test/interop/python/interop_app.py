"""Celery app for the interoperability tests: run by a real worker and imported by client.py.

Configured only from the environment (set by test-support/Celery.ts), so one module serves every
worker configuration. Exceptions live here so that both the worker and the client resolve
``interop_app.PaymentError`` when reading a FAILURE meta.
"""
import os

from celery import Celery


def _flag(name, default):
    return os.environ.get(name, default) == "1"


app = Celery("interop_app")
app.conf.update(
    broker_url=os.environ["CELERY_TEST_BROKER_URL"],
    result_backend=os.environ["CELERY_TEST_RESULT_BACKEND"],
    task_track_started=_flag("CELERY_TEST_TRACK_STARTED", "1"),
    result_extended=_flag("CELERY_TEST_RESULT_EXTENDED", "0"),
    result_backend_transport_options={
        "result_chord_ordered": _flag("CELERY_TEST_CHORD_ORDERED", "1"),
        # Celery >= 5.3 (ignored by 5.2.6); unset means no prefix.
        **({"global_keyprefix": os.environ["CELERY_TEST_GLOBAL_KEYPREFIX"]}
           if os.environ.get("CELERY_TEST_GLOBAL_KEYPREFIX") else {}),
    },
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # One task at a time, no prefetch surprises: tests only rely on ids, never on timing.
    worker_prefetch_multiplier=1,
)


class PaymentError(Exception):
    """A custom exception with several args, as a real application would raise."""


class Outer:
    class InnerError(Exception):
        """A nested class: its ``exc_type`` is the qualname ``Outer.InnerError``."""


@app.task(name="interop.add")
def add(x, y):
    return x + y


def rich_value():
    """Nested, unicode, big-integer and float values (int/float distinction matters)."""
    return {
        "nested": {"list": [1, 2.5, 1.0, -0.0, 1e-07, 1e22, 0.1], "empty": {}, "none": None},
        "big": 2 ** 70,
        "neg_big": -(2 ** 65),
        "unicode": "caf\u00e9 \u2603 \U0001F600 \u2028 \"q\" \\ /",
        "bools": [True, False],
        "tuple": (1, "two"),
        "inf": [float("inf"), float("-inf")],
    }


@app.task(name="interop.rich")
def rich():
    return rich_value()


@app.task(name="interop.fail")
def fail(*args):
    raise PaymentError(*args)


@app.task(name="interop.fail_nested")
def fail_nested(message):
    raise Outer.InnerError(message)


@app.task(name="interop.flaky", bind=True)
def flaky(self, value):
    """RETRY once (with a custom exception as the reason), then SUCCESS."""
    if self.request.retries == 0:
        raise self.retry(exc=PaymentError("transient", self.request.retries), countdown=0, max_retries=3)
    return {"value": value, "retries": self.request.retries}


@app.task(name="interop.progress", bind=True)
def progress(self, total):
    for current in range(1, total + 1):
        self.update_state(state="PROGRESS", meta={"current": current, "total": total})
    return {"done": total}


@app.task(name="interop.tsum")
def tsum(values):
    return sum(values)
