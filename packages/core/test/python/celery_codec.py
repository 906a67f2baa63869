"""Test oracle: real Celery 5.2 / kombu code producing and reading the bytes the TS codec must match.

Reads one JSON request per stdin line, writes one JSON reply per stdout line (same order).
Values cross the pipe in a tagged form so Python sees the exact types (int vs float, tuples,
exceptions, results):
  null / true / "str"       as is
  {"i": "123"}              int            {"f": "0.1"} float (also "nan", "inf", "-0")
  {"l": [...]}              list           {"t": [...]} tuple
  {"d": [[k, v], ...]}      dict, in order
  {"exc": {"type", "module", "args"}}      an exception instance (classes made on the fly)
  {"res": [id, parent]}     AsyncResult    {"grp": [id, [members], parent]} GroupResult
  {"dt": "<isoformat>"}     datetime
Ops: meta, chord, group, dumps, loads, decode_meta, chord_unpack.
Run with /usr/bin/python3 (the system python that has celery); exits 3 when celery is missing.
"""
import builtins
import datetime as dt
import json
import sys

try:
    import celery
    import celery.backends.base as base
    from celery import Celery
    from celery.app.task import Context
    from celery.exceptions import ChordError
    from celery.result import AsyncResult, GroupResult
    from kombu.utils.json import dumps as kombu_dumps
    from kombu.utils.json import loads as kombu_loads
except ImportError as e:  # pragma: no cover - CI must install python3-celery
    sys.stderr.write(f"celery_codec.py: the system python lacks celery/kombu: {e}\n")
    sys.exit(3)


class _FixedDatetime(dt.datetime):
    """Replaces `datetime` in celery.backends.base so `utcnow()` is the instant under test."""

    now_value = None

    @classmethod
    def utcnow(cls):
        return cls.now_value


base.datetime = _FixedDatetime

APPS = {}
# Result objects only need `as_tuple()`; bound to the Redis backend they would try to SUBSCRIBE.
REFS_APP = Celery("oracle-refs", set_as_current=False)


def app_for(extended):
    if extended not in APPS:
        app = Celery("oracle", backend="redis://127.0.0.1:1/0", set_as_current=False)
        app.conf.result_extended = extended
        APPS[extended] = app
    return APPS[extended]


_classes = {}


def exc_class(module, qualname):
    if module == "builtins":
        return getattr(builtins, qualname)
    key = (module, qualname)
    if key not in _classes:
        name = qualname.split(".")[-1]
        _classes[key] = type(name, (Exception,), {"__module__": module, "__qualname__": qualname})
    return _classes[key]


def from_tagged(v, app):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, dict):
        if "i" in v:
            return int(v["i"])
        if "f" in v:
            return float(v["f"])
        if "l" in v:
            return [from_tagged(x, app) for x in v["l"]]
        if "t" in v:
            return tuple(from_tagged(x, app) for x in v["t"])
        if "d" in v:
            return {k: from_tagged(x, app) for k, x in v["d"]}
        if "exc" in v:
            e = v["exc"]
            return exc_class(e["module"], e["type"])(*[from_tagged(a, app) for a in e["args"]])
        if "res" in v:
            rid, parent = v["res"]
            return AsyncResult(rid, parent=from_tagged(parent, app), app=REFS_APP)
        if "grp" in v:
            gid, members, parent = v["grp"]
            return GroupResult(gid, [from_tagged(m, app) for m in members], parent=from_tagged(parent, app),
                               app=REFS_APP)
        if "dt" in v:
            return dt.datetime.fromisoformat(v["dt"])
    raise ValueError(f"bad tagged value {v!r}")


def to_tagged(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return {"i": str(v)}
    if isinstance(v, float):
        return {"f": repr(v)}
    if isinstance(v, list):
        return {"l": [to_tagged(x) for x in v]}
    if isinstance(v, tuple):
        return {"t": [to_tagged(x) for x in v]}
    if isinstance(v, dict):
        return {"d": [[k, to_tagged(x)] for k, x in v.items()]}
    if isinstance(v, BaseException):
        return {"exc": {"type": type(v).__qualname__, "module": type(v).__module__,
                        "args": [to_tagged(a) for a in v.args]}}
    return {"repr": repr(v)}


def instant(ms):
    naive = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ms)
    return naive, naive.replace(tzinfo=dt.timezone.utc)


def make_request(r, app):
    if r is None:
        return None
    fields = {}
    for key in ("group", "parent_id", "task", "hostname", "retries", "group_index"):
        if key in r:
            fields[key] = r[key]
    if "args" in r:
        fields["args"] = from_tagged(r["args"], app)
    if "kwargs" in r:
        fields["kwargs"] = from_tagged(r["kwargs"], app)
    if "routing_key" in r:
        fields["delivery_info"] = {"routing_key": r["routing_key"]}
    ctx = Context(**fields)
    if "children" in r:
        ctx.children.extend(from_tagged(c, app) for c in r["children"])
    return ctx


def op_meta(req):
    # BaseKeyValueStoreBackend._store_result, minus the GET guard and the write.
    app = app_for(bool(req.get("extended")))
    backend = app.backend
    naive, aware = instant(req["now_ms"])
    _FixedDatetime.now_value = naive
    state = req["state"]
    result = backend.encode_result(from_tagged(req["result"], app), state)
    meta = backend._get_result_meta(result=result, state=state, traceback=req.get("traceback"),
                                    request=make_request(req.get("request"), app))
    meta["task_id"] = req["task_id"]
    return {"bytes": backend.encode(meta), "naive": naive.isoformat(), "offset": aware.isoformat()}


def op_chord(req):
    # RedisBackend.on_chord_part_return: encode_result then encode([1, tid, state, result]).
    backend = app_for(False).backend
    state = req["state"]
    result = backend.encode_result(from_tagged(req["result"], backend.app), state)
    return {"bytes": backend.encode([1, req["task_id"], state, result])}


def op_group(req):
    backend = app_for(False).backend
    group = from_tagged(req["group"], backend.app)
    return {"bytes": backend.encode({"result": group.as_tuple()})}


def op_dumps(req):
    value = from_tagged(req["value"], None)
    try:
        return {"bytes": kombu_dumps(value), "repr": repr(value)}
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}


def integral_floats_as_ints(v):
    """What the TS decoder keeps of a value: `5.0` reads as 5 (but -0.0 stays a float)."""
    if isinstance(v, float) and v == v and v not in (float("inf"), float("-inf")) and v.is_integer() \
            and not (v == 0 and str(v).startswith("-")):
        return int(v)
    if isinstance(v, list):
        return [integral_floats_as_ints(x) for x in v]
    if isinstance(v, dict):
        return {k: integral_floats_as_ints(x) for k, x in v.items()}
    return v


def op_loads(req):
    try:
        value = kombu_loads(req["text"])
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}
    return {"value": to_tagged(value), "norm_repr": repr(integral_floats_as_ints(value))}


def op_decode_meta(req):
    backend = app_for(False).backend
    try:
        meta = backend.decode_result(req["text"])
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}
    result = meta.get("result")
    return {"status": meta.get("status"), "result": to_tagged(result), "repr": repr(result),
            "keys": list(meta.keys())}


def op_chord_unpack(req):
    backend = app_for(False).backend
    try:
        value = backend._unpack_chord_result(req["text"], backend.decode)
    except ChordError as e:
        return {"chord_error": str(e)}
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}
    return {"value": to_tagged(value), "repr": repr(value)}


OPS = {"meta": op_meta, "chord": op_chord, "group": op_group, "dumps": op_dumps, "loads": op_loads,
       "decode_meta": op_decode_meta, "chord_unpack": op_chord_unpack}


def main():
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            reply = OPS[req["op"]](req)
        except Exception as e:  # noqa: BLE001 - report, do not hide which request broke
            reply = {"oracle_error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")
    out.flush()


if __name__ == "__main__":
    sys.stderr.write(f"celery {celery.__version__}\n") if "-v" in sys.argv else None
    main()
