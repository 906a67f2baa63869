"""Python Celery 5.2.6 RedisBackend figures for bench/run.ts (run with the system /usr/bin/python3).

Usage: celery_bench.py <figure> <redis_url> <n>
Prints one JSON object on the last stdout line. Figures mirror ../shared/spec/perf-baselines.md.
"""
import json
import os
import resource
import subprocess
import sys
import time
import uuid

from celery import Celery


def app_for(url):
    app = Celery("bench", broker="memory://", backend=url)
    app.conf.result_expires = 86400
    return app


def ops_per_sec(n, seconds):
    return n / seconds if seconds > 0 else float("inf")


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def warm_up(n):
    """Untimed operations before a throughput figure, as bench/util.ts's warmUp: as many as timed."""
    return n


def fig_store(url, n):
    b = app_for(url).backend
    for i in range(warm_up(n)):
        b.store_result(str(uuid.uuid4()), {"x": i}, "SUCCESS")
    ids = [str(uuid.uuid4()) for _ in range(n)]
    t = time.perf_counter()
    for i, tid in enumerate(ids):
        b.store_result(tid, {"x": i}, "SUCCESS")
    return {"ops": ops_per_sec(n, time.perf_counter() - t)}


def fig_get(url, n):
    b = app_for(url).backend
    ids = [str(uuid.uuid4()) for _ in range(n)]
    for i, tid in enumerate(ids):
        b.store_result(tid, {"x": i}, "SUCCESS")
    warm = app_for(url).backend  # its own backend: the timed one starts with an empty cache
    for tid in ids[: warm_up(n)]:
        warm.get_task_meta(tid)
    b = app_for(url).backend  # fresh backend: no cache
    t = time.perf_counter()
    for tid in ids:
        b.get_task_meta(tid)
    return {"ops": ops_per_sec(n, time.perf_counter() - t)}


def fig_getmany(url, n):
    """n calls of get_many over the same 1,000 ready ids, taking the 1,000 results (no trailing sleep)."""
    b = app_for(url).backend
    ids = [str(uuid.uuid4()) for _ in range(1000)]
    for i, tid in enumerate(ids):
        b.store_result(tid, {"x": i}, "SUCCESS")

    def take_all():
        got = 0
        for _tid, _meta in b.get_many(ids, interval=0.5):
            got += 1
            if got == len(ids):
                break

    for _ in range(20):  # as GETMANY_WARM_UP in bench/util.ts
        take_all()
    t = time.perf_counter()
    for _ in range(n):
        got = 0
        for _tid, _meta in b.get_many(ids, interval=0.5):
            got += 1
            if got == len(ids):
                break
    per = (time.perf_counter() - t) / n
    # One drained call (list()) shows the trailing sleep Celery always takes.
    t = time.perf_counter()
    list(b.get_many(ids, interval=0.5))
    # One way to read them all: the same figure stands in the getMany row.
    return {"ops": 1 / per, "stream_ops": 1 / per, "wall_ms": per * 1000, "drained_ms": (time.perf_counter() - t) * 1000}


def fig_wakeup(url, n):
    """Consumer side: waits with AsyncResult.get(); a producer process stores after 5 ms."""
    app = app_for(url)
    b = app.backend
    producer = subprocess.Popen(
        [sys.executable, __file__, "wakeup_producer", url, str(n)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
    )
    lat = []
    for i in range(n + 10):
        tid = str(uuid.uuid4())
        r = app.AsyncResult(tid)
        b.on_task_call(None, tid)  # SUBSCRIBE before the store, as send_task does
        producer.stdin.write(tid + "\n")
        producer.stdin.flush()
        v = r.get(timeout=10)
        woke = time.monotonic()
        if i >= 10:
            lat.append((woke - v["t0"]) * 1000)
    producer.stdin.close()
    producer.wait()
    lat.sort()
    return {"p50": lat[len(lat) // 2], "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))]}


def wakeup_producer(url, _n):
    b = app_for(url).backend
    for line in sys.stdin:
        tid = line.strip()
        time.sleep(0.005)
        b.store_result(tid, {"t0": time.monotonic()}, "SUCCESS")


def fig_fanin(url, n):
    """n pending AsyncResults (one SUBSCRIBE each), results written by another process, pipelined."""
    import redis as redispy
    app = app_for(url)
    b = app.backend
    r = redispy.Redis.from_url(url)
    rss0 = rss_bytes()
    ids = [str(uuid.uuid4()) for _ in range(n)]
    results = []
    t = time.perf_counter()
    for tid in ids:
        res = app.AsyncResult(tid)
        b.add_pending_result(res)
        results.append(res)
    # Wait until the server has every subscription (the SUBSCRIBEs are sent without waiting).
    while r.execute_command("PUBSUB", "NUMSUB", b.get_key_for_task(ids[-1]))[1] < 1:
        time.sleep(0.0005)
    sub_s = time.perf_counter() - t
    rss1 = rss_bytes()
    writer = subprocess.Popen([sys.executable, __file__, "fanin_writer", url, str(n)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    writer.stdin.write("\n".join(ids) + "\n")
    writer.stdin.close()
    for res in results:
        res.get(timeout=120)
    done = time.monotonic()
    out = json.loads(writer.stdout.read().strip().splitlines()[-1])
    writer.wait()
    # Then as many new pending tasks: the rate of a process that has subscribed before.
    second = [str(uuid.uuid4()) for _ in range(n)]
    t2 = time.perf_counter()
    for tid in second:
        b.add_pending_result(app.AsyncResult(tid))
    while r.execute_command("PUBSUB", "NUMSUB", b.get_key_for_task(second[-1]))[1] < 1:
        time.sleep(0.0005)
    second_s = time.perf_counter() - t2
    return {
        "subscribe_per_s": n / sub_s,
        "subscribe_second_per_s": n / second_s,
        "rss_per_task": (rss1 - rss0) / n,
        "after_last_write_s": done - out["end"],
        "total_s": done - out["start"],
    }


def fanin_writer(url, n):
    import redis as redispy
    ids = [l.strip() for l in sys.stdin if l.strip()]
    b = app_for(url).backend
    r = redispy.Redis.from_url(url)
    start = time.monotonic()
    p = r.pipeline(transaction=False)
    for i, tid in enumerate(ids):
        key = b.get_key_for_task(tid)
        value = json.dumps({"status": "SUCCESS", "result": i, "traceback": None, "children": [],
                            "date_done": "2026-11-22T00:00:00", "task_id": tid})
        p.setex(key, 86400, value)
        p.publish(key, value)
        if i % 1000 == 999:
            p.execute()
    p.execute()
    print(json.dumps({"start": start, "end": time.monotonic()}))


FIGS = {
    "store": fig_store, "get": fig_get, "getmany": fig_getmany, "wakeup": fig_wakeup, "fanin": fig_fanin,
    "wakeup_producer": wakeup_producer, "fanin_writer": fanin_writer,
}

if __name__ == "__main__":
    fig, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    out = FIGS[fig](url, n)
    if out is not None:
        print(json.dumps(out))
