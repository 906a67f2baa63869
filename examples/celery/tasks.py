"""The Python side of examples/celery.ts: a Celery app whose worker reports progress.

Broker and result backend come from CELERY_BROKER_URL and CELERY_RESULT_BACKEND (both default to
the local Redis, database 0), so the TypeScript side reads the same result backend.
"""
import os
import time

from celery import Celery

app = Celery("tasks")
app.conf.update(
    broker_url=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
    result_backend=os.environ.get("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/0"),
    task_track_started=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
)


@app.task(bind=True)
def slow_add(self, x, y, steps=3):
    """Adds x and y, reporting PROGRESS after each step (the TypeScript watcher prints them)."""
    for step in range(1, steps + 1):
        time.sleep(0.2)
        self.update_state(state="PROGRESS", meta={"step": step, "of": steps})
    return x + y


@app.task
def fail(message):
    raise ValueError(message)
