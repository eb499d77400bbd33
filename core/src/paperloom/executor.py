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
from collections.abc import Callable, Iterable, Sequence
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
    indexed = list(enumerate(items))
    chunks = [indexed[i : i + max(1, chunksize)] for i in range(0, len(indexed), max(1, chunksize))]
    ticks = iter(progress(range(len(items)), total=len(items), description=description)) if progress else None

    def collect(done: list[tuple[int, bool, Any]]) -> None:
        for index, ok, value in done:
            if ok:
                results[index] = value
            else:
                failures[ids[index]] = value
            if ticks is not None:
                next(ticks, None)

    if backend == "ray":
        for done in _ray_chunks(fn, chunks, seed, workers, address):
            collect(done)
    elif backend != "local":
        raise UserError(f"--executor {backend!r} is not known; expected local or ray")
    elif workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            collect(_run_chunk(fn, chunk, seed))
    else:
        import multiprocessing as mp

        context = mp.get_context("fork" if os.name == "posix" else "spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=context) as pool:
            futures = [pool.submit(_run_chunk, fn, chunk, seed) for chunk in chunks]
            for future in as_completed(futures):
                collect(future.result())
    if failures:
        first = list(failures.items())[:3]
        shown = "; ".join(f"item {k!r}: {v}" for k, v in first)
        raise MapError(f"{len(failures)} of {len(items)} items failed ({shown}{' ...' if len(failures) > 3 else ''}); "
                       f"the other {len(items) - len(failures)} finished", results, failures)
    return results


def _ray_chunks(fn: Callable, chunks: list, seed: int, workers: int, address: str | None) -> Iterable:
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
    pending = [remote.remote(fn, chunk, seed) for chunk in chunks]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])
