"""A bounded history of items plus live readers of the new ones: the shape of the log lines (logs.py) and
of the console's request activity (gateway/activity.py). `publish` may be called from any thread; a reader
too far behind loses items, and never slows the publisher."""
from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Fanout(Generic[T]):
    def __init__(self, keep: int, reader_queue: int):
        self.items: deque[T] = deque(maxlen=keep)
        self.reader_queue = reader_queue
        self._lock = threading.RLock()  # subclasses build an item (a sequence number) under it too
        self._readers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue, Callable]] = []

    def publish(self, item: T) -> None:
        with self._lock:
            self.items.append(item)
            readers = list(self._readers)
        if not readers:
            return
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:  # another thread (launcher's own log lines)
            here = None
        for loop, queue, shape in readers:
            if loop is here:
                _offer(queue, shape(item))  # on the readers' loop already: no wake-up through its self-pipe
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_offer, queue, shape(item))

    def history(self) -> list[T]:
        with self._lock:
            return list(self.items)

    @contextlib.contextmanager
    def follow(self, queue: asyncio.Queue | None = None, shape: Callable = lambda item: item) -> Iterator[asyncio.Queue]:
        """A queue of the items published from now on (as `shape(item)`; several fan-outs may feed one queue)."""
        entry = (asyncio.get_running_loop(), queue or asyncio.Queue(self.reader_queue), shape)
        with self._lock:
            self._readers.append(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._readers.remove(entry)


def _offer(queue: asyncio.Queue, item) -> None:
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(item)
