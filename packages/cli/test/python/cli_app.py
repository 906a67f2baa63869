"""The worker app of the CLI tests: the interoperability app (its tasks and configuration from the
environment, see packages/redis/test/interop/python/interop_app.py) plus a task slow enough to be
watched live.
"""
import time

from interop_app import app  # noqa: F401 - the worker's app, found by `-A cli_app`


@app.task(name="cli.steps", bind=True)
def steps(self, total, pause):
    """PROGRESS `total` times, `pause` seconds apart (a workload to watch, not a synchronization)."""
    for current in range(1, total + 1):
        self.update_state(state="PROGRESS", meta={"current": current, "total": total})
        time.sleep(pause)
    return {"done": total}
