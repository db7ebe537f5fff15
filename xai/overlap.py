"""CPU-side work overlapped with the device's: a producer thread that prepares the next batches while the caller
runs the current one.

Threads, not processes: the producer's heavy steps (numpy's element-wise ops, torch's kernels, scikit-image's
quickshift) release the GIL, so a thread runs them on a spare core while the caller's model waits on its own
kernels, and nothing is pickled. The items come out in the order they were produced, each exactly what the
producer made, so a pipelined loop computes what the plain loop computes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")

_DONE = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(items: Iterable[Item], depth: int = 2) -> Iterator[Item]:
    """``items``, produced by a background thread up to ``depth`` ahead of the consumer.

    An exception raised while producing is raised here, at the item it would have been; a consumer that stops
    early (``break``, an exception) stops the producer at its next item."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            put(_Failed(error))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            value = buffer.get()
            if value is _DONE:
                return
            if isinstance(value, _Failed):
                raise value.error
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
