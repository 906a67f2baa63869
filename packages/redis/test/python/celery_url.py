"""Parse result-backend URLs with the real Celery (5.2.6) and print what it made of them.

stdin: a JSON list of {"url": str, "options": {...}} (options use this package's UrlOptions names).
stdout: a JSON list, one entry per case:
  {"ok": true, "connparams": {key: [type, value]}, "uri": as_uri(), "warnings": [...]}
  {"ok": false, "error": type name, "message": str(exc)}
Values are tagged with their Python type so ints and floats can be told apart.
"""
import json
import logging
import sys

from celery import Celery
from celery.app.backends import by_url

SETTINGS = {
    "useSsl": "redis_backend_use_ssl",
    "host": "redis_host",
    "port": "redis_port",
    "db": "redis_db",
    "username": "redis_username",
    "password": "redis_password",
    "socketTimeout": "redis_socket_timeout",
    "socketConnectTimeout": "redis_socket_connect_timeout",
    "socketKeepalive": "redis_socket_keepalive",
    "retryOnTimeout": "redis_retry_on_timeout",
    "maxConnections": "redis_max_connections",
    "healthCheckInterval": "redis_backend_health_check_interval",
}


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def tag(value):
    if value is None:
        return ["None"]
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", int(value)]
    if isinstance(value, float):
        return ["float", repr(value)]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, (list, tuple)):
        return ["list", [str(v) for v in value]]
    if isinstance(value, type):
        return ["class", value.__name__]
    return ["other", repr(value)]


def run(case):
    capture = Capture()
    logger = logging.getLogger("celery.backends.redis")
    logger.addHandler(capture)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        app = Celery(set_as_current=False)
        for key, value in (case.get("options") or {}).items():
            app.conf[SETTINGS[key]] = value
        cls, url = by_url(case["url"], loader=app.loader)
        backend = cls(app=app, url=url)
        return {
            "ok": True,
            "backend": cls.__name__,
            "connparams": {k: tag(v) for k, v in backend.connparams.items()},
            "uri": backend.as_uri(),
            "warnings": capture.messages,
        }
    except BaseException as exc:  # noqa: BLE001 - report every failure as data
        return {"ok": False, "error": type(exc).__name__, "message": str(exc)}
    finally:
        logger.removeHandler(capture)


def main():
    cases = json.load(sys.stdin)
    json.dump([run(case) for case in cases], sys.stdout)


if __name__ == "__main__":
    main()
