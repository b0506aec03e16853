"""Dynamic batching: requests that arrive close together run as one batch, whatever their prompts.

The event loop never blocks: `submit` queues a request and awaits its future; one collector task
takes the first waiting request, gathers more for up to `max_wait_s` (or until one kind has
`max_batch`), groups them by kind (a score batch, a generate batch per decode-length rung), and
runs each group on one worker thread (one device: batches run one after another, while the loop
keeps accepting requests). A batch that fails fails only its own requests; requests are
validated before they are queued, so one bad request never reaches a batch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import Any, Callable, Hashable, Sequence

RunBatch = Callable[[Hashable, Sequence[Any]], Sequence[Any]]


class DynamicBatcher:
    """Runs `run_batch(key, items) -> results` (same order) on batches of queued items.

    Args:
      run_batch: computes a batch of items that share `key`.
      max_batch: the most items in one batch.
      max_wait_s: how long the first item of a batch waits for company.
    """

    def __init__(self, run_batch: RunBatch, max_batch: int = 32, max_wait_s: float = 0.005):
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait_s >= 0, got {max_batch}, "
                             f"{max_wait_s}.")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: "asyncio.Queue[tuple[Hashable, Any, asyncio.Future]]" = asyncio.Queue()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "batcher")
        self._task: "asyncio.Task | None" = None
        self.batches = 0  # how many batches ran (for /health and tests)
        self.items = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._collect_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    async def submit(self, key: Hashable, item: Any) -> Any:
        """The result of `item`, computed in a batch with others of the same `key`."""
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((key, item, future))
        return await future

    async def run_in_worker(self, fn: Callable[[], Any]) -> Any:
        """Runs `fn` on the batch worker thread, between batches (e.g. registering a prompt)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _collect_forever(self) -> None:
        while True:
            first = await self._queue.get()
            groups: dict[Hashable, list] = {first[0]: [first]}
            deadline = time.monotonic() + self.max_wait_s
            # Until one kind has a full batch or the first request waited long enough; kinds
            # batch separately, so a full batch of one kind is not cut short by another's.
            while max(len(g) for g in groups.values()) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0 and self._queue.empty():
                    break
                try:
                    entry = (self._queue.get_nowait() if left <= 0
                             else await asyncio.wait_for(self._queue.get(), left))
                except asyncio.TimeoutError:
                    break
                groups.setdefault(entry[0], []).append(entry)
            for key, entries in groups.items():
                await self._run(key, entries)

    async def _run(self, key: Hashable, entries: list) -> None:
        items = [item for _, item, _ in entries]
        try:
            results = await self.run_in_worker(lambda: self._run_batch(key, items))
        except Exception as error:  # pylint: disable=broad-except  # the batch's own requests
            for _, _, future in entries:
                if not future.done():
                    future.set_exception(error)
            return
        self.batches += 1
        self.items += len(items)
        for (_, _, future), result in zip(entries, results):
            if not future.done():  # a client that went away cancelled its future
                future.set_result(result)
