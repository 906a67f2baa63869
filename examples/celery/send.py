"""Sends tasks to the worker and prints their ids, one a line (for examples/celery.ts)."""
import sys

from tasks import fail, slow_add

count = int(sys.argv[1]) if len(sys.argv) > 1 else 2
for i in range(count):
    print(slow_add.delay(i, 40).id)
print(fail.delay("no such invoice").id)
