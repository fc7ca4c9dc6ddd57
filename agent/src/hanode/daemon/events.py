"""The agent's ordered event stream: every event numbered (`seq`), the last EVENT_HISTORY kept for
`hanode events`, streamed to `events --follow` clients, and handed to the sinks (FIFO, mail)."""

from __future__ import annotations

import asyncio
import collections
import time
from typing import AsyncIterator, Callable

EVENT_HISTORY = 1000
SUBSCRIBER_BACKLOG = 10_000  # events an `events --follow` client may fall behind before it is cut off


class _Subscriber:
    """One `events --follow` client: a queue of events; one that falls SUBSCRIBER_BACKLOG behind gets None."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict | None] = asyncio.Queue()
        self.last_seq = 0

    def put(self, event: dict) -> bool:
        """False when the subscriber is too far behind (it then gets None and must be dropped)."""
        if self.queue.qsize() >= SUBSCRIBER_BACKLOG:
            self.queue.put_nowait(None)
            return False
        self.queue.put_nowait(event)
        return True


class EventLog:
    def __init__(self, sink: Callable[[dict], None]):
        self.sink = sink
        self.history: collections.deque = collections.deque(maxlen=EVENT_HISTORY)
        self.seq = 0
        self.subscribers: list[_Subscriber] = []

    def publish(self, event: dict) -> dict:
        """Numbers the event (its own `seq` is ignored; its `ts` is kept, else now) and sends it on."""
        self.seq += 1
        record = {"seq": self.seq, "ts": event.get("ts", time.time())}
        record.update((key, value) for key, value in event.items() if key not in ("seq", "ts"))
        self.history.append(record)
        for subscriber in list(self.subscribers):
            if not subscriber.put(record):
                self.subscribers.remove(subscriber)
        self.sink(record)
        return record

    async def stream(self, since: int, follow: bool) -> AsyncIterator[dict]:
        """The kept events after `since`; with follow, then every new one until the client leaves."""
        subscriber = _Subscriber()
        self.subscribers.append(subscriber)
        try:
            for event in list(self.history):
                if event["seq"] > since:
                    yield event
            if not follow:
                return
            while True:
                event = await subscriber.queue.get()
                if event is None:
                    yield {"ok": False, "error": f"this client read events too slowly ({SUBSCRIBER_BACKLOG} behind): "
                                                 f"reconnect with since={subscriber.last_seq}"}
                    return
                subscriber.last_seq = event["seq"]
                yield event
        finally:
            if subscriber in self.subscribers:
                self.subscribers.remove(subscriber)
