"""A long-lived Celery client for the interoperability tests (test-support/Celery.ts drives it).

Protocol, one JSON object per line:
  stdin:  {"id": n, "op": "<name>", "params": {...}}
  stdout: {"id": n, "event": "<name>", "data": ...}            zero or more, while the op runs
          {"id": n, "ok": true, "value": ...}                  or
          {"id": n, "ok": false, "error": "<repr>", "traceback": "..."}
The first line is {"ready": true, ...versions}. Requests run one at a time, in order. EOF on stdin
ends the process.

Python values go back as ``repr`` strings (so ints, floats, tuples and exceptions stay exact) and
come in as Python expressions evaluated in this module's namespace (``*_py`` params): the tests are
the only callers.
"""
import json
import sys
import traceback

import celery
import kombu
import redis
from celery import group, chord
from celery.app.task import Context
from celery.canvas import Signature
from celery.exceptions import ChordError, TaskRevokedError  # noqa: F401 (eval namespace)
from celery.result import AsyncResult, GroupResult

import interop_app
from interop_app import app

backend = app.backend

NAMESPACE = {name: getattr(interop_app, name) for name in dir(interop_app) if not name.startswith("__")}
NAMESPACE.update(
    ChordError=ChordError,
    TaskRevokedError=TaskRevokedError,
    R=lambda task_id: AsyncResult(task_id, app=app),
    # What a value becomes after a trip through the json serializer (tuples → lists).
    roundtrip=lambda value: json.loads(json.dumps(value)),
)


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def py(expr):
    return eval(expr, dict(NAMESPACE))  # noqa: S307 - test-only input from the test itself


def describe_exception(exc):
    return {
        "exc_type": type(exc).__qualname__,
        "exc_module": type(exc).__module__,
        "args_repr": repr(exc.args),
        "repr": repr(exc),
        "str": str(exc),
    }


def describe(value):
    if isinstance(value, BaseException):
        return {"exception": describe_exception(value)}
    return {"repr": repr(value)}


def sig(spec):
    s = app.signature(spec["task"], args=tuple(spec.get("args", ())), kwargs=spec.get("kwargs", {}))
    if "task_id" in spec:
        s = s.set(task_id=spec["task_id"])
    return s


def forget_subscription(task_id):
    # send_task SUBSCRIBEs for the client; nobody reads that here, so do not leave it behind.
    backend.result_consumer.cancel_for(task_id)


# --------------------------------------------------------------------------------------------
# Operations


def op_ping(_req, _params):
    return {"celery": celery.__version__, "kombu": kombu.__version__, "redis": redis.__version__}


def op_repr(_req, params):
    """repr() of a Python expression: the expected side of a comparison."""
    return repr(py(params["expr"]))


def op_send(_req, params):
    options = {}
    if "expires_in" in params:
        options["expires"] = params["expires_in"]
    if "countdown" in params:
        options["countdown"] = params["countdown"]
    args = py(params["args_py"]) if "args_py" in params else params.get("args", [])
    res = app.send_task(params["task"], args=args, kwargs=params.get("kwargs", {}),
                        task_id=params.get("task_id"), **options)
    forget_subscription(res.id)
    return {"task_id": res.id}


def op_revoke(_req, params):
    replies = app.control.revoke(params["task_id"], reply=True, limit=1, timeout=10)
    if not replies:
        raise RuntimeError("no worker acknowledged the revoke")
    return {"replies": replies}


def op_group(_req, params):
    res = group([sig(m) for m in params["members"]]).apply_async(task_id=params["gid"])
    for child in res.children:
        forget_subscription(child.id)
    if params.get("save", True):
        res.save()
    return {"id": res.id, "children": [c.id for c in res.children]}


def op_chord(_req, params):
    c = chord([sig(m) for m in params["members"]], sig(params["body"]))
    # chord() unwraps a group header (losing its options); put back a group carrying the id.
    c.kwargs["header"] = group([sig(m) for m in params["members"]]).set(task_id=params["gid"])
    res = c.apply_async(task_id=params["body"]["task_id"])
    forget_subscription(res.id)
    return {"id": res.id, "parent": res.parent.id if res.parent is not None else None,
            "children": [c.id for c in res.parent.children] if res.parent is not None else []}


def op_get(req, params):
    """AsyncResult.get(); with announce, emit "draining" once it blocks on Pub/Sub."""
    task_id = params["task_id"]
    result = AsyncResult(task_id, app=app)
    consumer = backend.result_consumer
    original = consumer.drain_events
    announced = []

    def drain_events(timeout=None):
        if params.get("announce") and not announced:
            announced.append(True)
            out({"id": req, "event": "draining", "data": {"subscribed": sorted(
                k.decode() for k in consumer.subscribed_to)}})
        return original(timeout=timeout)

    consumer.drain_events = drain_events
    try:
        value = result.get(timeout=params.get("timeout", 10), propagate=params.get("propagate", True))
        return {"state": result.state, **describe(value), "waited": bool(announced)}
    except Exception as exc:  # the test asserts on what was raised
        return {"raised": describe_exception(exc), "waited": bool(announced)}
    finally:
        consumer.drain_events = original


def read_meta(result):
    meta = {"state": result.state, **describe(result.result), "traceback": result.traceback}
    done = result.date_done
    meta["date_done"] = done.isoformat() if done is not None else None
    for field in ("name", "args", "kwargs", "worker", "retries", "queue"):
        meta[field] = repr(getattr(result, field, None))
    return meta


def op_read(_req, params):
    """AsyncResult(id).state/.result (no waiting), plus .get() when the task is ready."""
    result = AsyncResult(params["task_id"], app=app)
    meta = read_meta(result)
    if result.ready():
        try:
            meta["get"] = describe(result.get(timeout=1, propagate=True))
        except Exception as exc:
            meta["get"] = {"raised": describe_exception(exc)}
    return meta


def op_read_raw(_req, params):
    """Decode whatever is stored at an arbitrary key, as the backend would."""
    raw = backend.client.get(params["key"])
    if raw is None:
        return None
    meta = backend.meta_from_decoded(backend.decode_result(raw))
    return {"state": meta["status"], **describe(meta["result"]), "task_id": meta.get("task_id")}


def op_keys(_req, params):
    """The keys this Celery computes for a task and a group (global_keyprefix applied)."""
    def text(key):
        return key.decode() if isinstance(key, bytes) else key
    gid = params["gid"]
    return {
        "task": text(backend.get_key_for_task(params["task_id"])),
        "group": text(backend.get_key_for_group(gid)),
        "chord_join": text(backend.get_key_for_group(gid, ".j")),
        "chord_counter": text(backend.get_key_for_group(gid, ".t")),
        "chord_size": text(backend.get_key_for_group(gid, ".s")),
    }


def op_forget(_req, params):
    AsyncResult(params["task_id"], app=app).forget()
    return None


def op_restore_group(_req, params):
    res = GroupResult.restore(params["gid"], app=app)
    if res is None:
        return None
    value = {"id": res.id, "children": [c.id for c in res.results]}
    if params.get("join"):
        value["join"] = repr(res.join_native(timeout=params.get("timeout", 10), propagate=False))
    return value


def op_store(_req, params):
    """backend.store_result with a Python value and, optionally, a fake request."""
    request = Context(**py(params["request_py"])) if "request_py" in params else None
    previous = app.conf.result_extended
    app.conf.result_extended = params.get("extended", False)
    try:
        backend.store_result(params["task_id"], py(params["result_py"]), params["state"],
                             traceback=params.get("traceback"), request=request)
    finally:
        app.conf.result_extended = previous
    return None


def op_save_group(_req, params):
    res = GroupResult(params["gid"], [AsyncResult(t, app=app) for t in params["children"]], app=app)
    res.save()
    return None


def op_set_chord_size(_req, params):
    backend.set_chord_size(params["gid"], params["size"])
    return None


def op_chord_part(_req, params):
    """on_chord_part_return with a fake request; the body's delay is recorded, not sent."""
    fired = []
    chord_errors = []
    original_delay = Signature.delay
    original_error = backend.chord_error_from_stack
    original_zset = backend._chord_zset

    def delay(self, *args, **kwargs):
        fired.append({"task": self.task, "args_repr": repr(args), "results_repr": repr(args[0])})

    def chord_error_from_stack(callback, exc=None):
        chord_errors.append(repr(exc))
        return original_error(callback, exc)

    Signature.delay = delay
    backend.chord_error_from_stack = chord_error_from_stack
    backend._chord_zset = params.get("ordered", True)
    try:
        body = sig(params["body"])
        request = Context(id=params["task_id"], group=params["gid"], group_index=params.get("group_index"),
                          chord=dict(body))
        backend.on_chord_part_return(request, params["state"], py(params["result_py"]))
    finally:
        Signature.delay = original_delay
        backend.chord_error_from_stack = original_error
        backend._chord_zset = original_zset
    return {"fired": fired, "chord_errors": chord_errors}


OPS = {name[3:]: fn for name, fn in dict(globals()).items() if name.startswith("op_")}


def main():
    out({"ready": True, **op_ping(None, None)})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = None
        try:
            msg = json.loads(line)
            req = msg["id"]
            value = OPS[msg["op"]](req, msg.get("params") or {})
            out({"id": req, "ok": True, "value": value})
        except Exception as exc:  # reported to the test, never swallowed
            out({"id": req, "ok": False, "error": repr(exc), "traceback": traceback.format_exc()})


if __name__ == "__main__":
    main()
