"""Map-style jobs: ``ctx.map(fn, items)`` over a local process pool (``--workers N``) or a Ray cluster
(``--executor ray [--address HOST:PORT]``, the ``paperloom-core[ray]`` extra), results in item order.

Every item runs with RNGs seeded from (run seed, item index), so results do not depend on how items are
spread over workers; a failing item is reported with its id and error after every other item finished,
and the finished results stay available on the error (`MapError.results`). `fn` must be picklable (a
module-level function; use functools.partial for arguments).
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from .errors import UserError


class MapError(UserError):
    """Some items failed; `results` holds every finished item's result (None where it failed)."""

    def __init__(self, message: str, results: list, failures: dict[Any, str]) -> None:
        super().__init__(message)
        self.results, self.failures = results, failures


def item_seed(seed: int, index: int) -> int:
    return (seed * 1_000_003 + index) % 2**32


def _seed_all(seed: int) -> None:
    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed)
    if "torch" in sys.modules:  # seed torch only where the work already uses it (no import for plain jobs)
        sys.modules["torch"].manual_seed(seed)


def _one_thread_per_worker() -> None:
    """A forked worker of a process that already ran torch ops on several threads must not start OpenMP again:
    GNU OpenMP is not fork-safe, and its first parallel region in the child waits forever (seen: clip's filter
    scoring hung under OMP_NUM_THREADS=2). One torch thread per worker also keeps workers x threads <= cores."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _run_chunk(fn: Callable, chunk: list[tuple[int, Any]], seed: int) -> list[tuple[int, bool, Any]]:
    out = []
    for index, item in chunk:
        _seed_all(item_seed(seed, index))
        try:
            out.append((index, True, fn(item)))
        except Exception as exc:  # reported with the item's id once the rest is done
            out.append((index, False, f"{type(exc).__name__}: {exc}"))
    return out


def map_items(fn: Callable[[Any], Any], items: Iterable, *, workers: int = 1, seed: int = 0, chunksize: int = 1,
              ids: Sequence | None = None, progress: Callable | None = None, description: str = "map",
              backend: str = "local", address: str | None = None) -> list:
    """[fn(item) for item in items], in order, over `workers` local processes (1 = in this process) or, with
    backend "ray", over a Ray cluster (`address` of a running one, else a local one with `workers` CPUs)."""
    items = list(items)
    ids = list(ids) if ids is not None else list(range(len(items)))
    if len(ids) != len(items):
        raise ValueError("ids must name every item")
    results: list = [None] * len(items)
    failures: dict[Any, str] = {}
    ticks = iter(progress(range(len(items)), total=len(items), description=description)) if progress else None
    n_chunks = -(-len(items) // max(1, chunksize))
    workers = min(workers, n_chunks) if n_chunks > 1 else 1  # one chunk: no pool to start
    for done in _completed(fn, enumerate(items), seed, chunksize, workers, backend, address, window=None):
        for index, ok, value in done:
            if ok:
                results[index] = value
            else:
                failures[ids[index]] = value
            if ticks is not None:
                next(ticks, None)
    _raise_failures(failures, len(items), results)
    return results


def imap_items(fn: Callable[[Any], Any], items: Iterable, *, workers: int = 1, seed: int = 0, chunksize: int = 8,
               total: int | None = None, progress: Callable | None = None, description: str = "map",
               backend: str = "local", address: str | None = None, window: int = 64) -> Iterator:
    """Like `map_items`, as a generator for long or lazy item streams: results come in item order while at most
    `window` chunks are in flight, so memory stays flat however many items there are. Item ids are their
    positions; failures are raised (`MapError`, results not kept) after the last item."""
    failures: dict[Any, str] = {}
    pending: dict[int, tuple[bool, Any]] = {}
    ticks = iter(progress(range(total or 0), total=total, description=description)) if progress and total else None
    nxt, count = 0, 0
    for done in _completed(fn, enumerate(items), seed, chunksize, workers, backend, address, window=max(1, window)):
        for index, ok, value in done:
            pending[index] = (ok, value)
            count += 1
        while nxt in pending:  # release in order; the out-of-order rest waits (bounded by the window)
            ok, value = pending.pop(nxt)
            if ok:
                yield value
            else:
                failures[nxt] = value
            if ticks is not None:
                next(ticks, None)
            nxt += 1
    _raise_failures(failures, count, None)


def _raise_failures(failures: dict, n: int, results: list | None) -> None:
    if failures:
        first = list(failures.items())[:3]
        shown = "; ".join(f"item {k!r}: {v}" for k, v in first)
        raise MapError(f"{len(failures)} of {n} items failed ({shown}{' ...' if len(failures) > 3 else ''}); "
                       f"the other {n - len(failures)} finished", results or [], failures)


def _chunks(indexed: Iterable[tuple[int, Any]], size: int) -> Iterator[list[tuple[int, Any]]]:
    chunk: list = []
    for pair in indexed:
        chunk.append(pair)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _completed(fn: Callable, indexed: Iterable[tuple[int, Any]], seed: int, chunksize: int, workers: int,
               backend: str, address: str | None, window: int | None) -> Iterator[list[tuple[int, bool, Any]]]:
    """Finished chunks [(index, ok, value)], as they finish; at most `window` chunks in flight (None: all)."""
    chunks = _chunks(indexed, max(1, chunksize))
    if backend == "ray":
        yield from _ray_chunks(fn, chunks, seed, workers, address, window)
        return
    if backend != "local":
        raise UserError(f"--executor {backend!r} is not known; expected local or ray")
    if workers <= 1:
        for chunk in chunks:
            yield _run_chunk(fn, chunk, seed)
        return
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, wait

    context = mp.get_context("fork" if os.name == "posix" else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_one_thread_per_worker) as pool:
        running: set = set()
        for chunk in chunks:
            running.add(pool.submit(_run_chunk, fn, chunk, seed))
            if window is not None and len(running) >= window:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        for future in as_completed(running):
            yield future.result()


def _ray_chunks(fn: Callable, chunks: Iterable, seed: int, workers: int, address: str | None,
                window: int | None = None) -> Iterable:
    """Chunks as Ray tasks, yielded as they finish (connects to `address`, or starts a local cluster)."""
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'paperloom-core[ray]'") from None
    if not ray.is_initialized():
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                # a local cluster stays on loopback: nothing listens on the machine's other addresses
                ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False,
                         _node_ip_address="127.0.0.1")
        except Exception as exc:
            raise UserError(f"could not start or reach a Ray cluster ({exc}); check --address") from None
    remote = ray.remote(_run_chunk)
    pending: list = []
    for chunk in chunks:
        pending.append(remote.remote(fn, chunk, seed))
        if window is not None and len(pending) >= window:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])
