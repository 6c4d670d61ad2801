"""Load under faults: several processes, fixed durations, loopback only.

    python3 benchmarks/load.py [--processes 4] [--steady 20] [--cycle 30]

Scenarios (each against a fresh Valkey started from the PyPI packages):
  concurrency  500 threads, then 2,000 asyncio tasks on one loop, over 300 cold keys, with
           the default pool (CACHE_MAX_CONNECTIONS=50) and timeouts: errors counted,
           breaker state, misses vs distinct keys (run with --scenarios concurrency);
  prefork  4 workers forked from a parent that already used the cache (as gunicorn
           --preload does) make 100 calls each: the shared statistics must equal the
           calls made (run with --scenarios prefork);
  steady   no faults;
  freeze   the server is SIGSTOPped for 5 s in every --cycle seconds;
  kill     the server is SIGKILLed every 10 s and restarted on the same port.
Every worker calls a @cached function over 500 keys as fast as it can and checks each
result against the function. Reported: throughput, p50/p99, failed calls (exceptions
reaching the caller), wrong results, and writes acknowledged by Redis but missing at the
end (a kill loses them: the server runs without persistence, as in the tests); during
freezes: p99 of calls before the breaker opened and after it opened.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

KEYS = 500
TIMEOUT = 0.1  # the socket timeout the workers use


def truth(k: int) -> str:
    return f"value-{k * 31 % 997}"


def worker(url: str, seconds: float, seed: int) -> None:
    """Runs in a child process; prints one JSON line."""
    from pmm_memo import Cache, CacheConfig, cached
    from pmm_memo._stats import Counters
    from pmm_memo.backends._base import Entry

    acked: set[str] = set()

    class Recording(Cache):
        def write(self, entry: Entry, ttl_ms: int, counters: Counters) -> bool:
            ok = super().write(entry, ttl_ms, counters)
            if ok:
                acked.add(entry.key)
            return ok

    cache = Recording(
        CacheConfig(
            redis_url=url,
            embedder="offline",
            socket_timeout=TIMEOUT,
            connect_timeout=TIMEOUT,
            breaker_interval=1.0,
        )
    )

    @cached(tenant="load", ttl=600, cache=cache)
    def f(k: int) -> str:
        return truth(k)

    rng = random.Random(seed)
    samples: list[tuple[float, float]] = []  # (start time, latency)
    failed = wrong = 0
    end = time.time() + seconds
    while time.time() < end:
        k = rng.randrange(KEYS)
        start = time.time()
        t0 = time.perf_counter()
        try:
            got = f(k)
        except Exception:  # the number that must stay 0
            failed += 1
            continue
        samples.append((start, time.perf_counter() - t0))
        wrong += got != truth(k)
    print(
        json.dumps(
            {
                "samples": samples,
                "failed": failed,
                "wrong": wrong,
                "acked": sorted(acked),
                "errors": f.cache_info().errors,
            }
        )
    )


def scenario(name: str, processes: int, seconds: float, cycle: float) -> dict[str, Any]:
    from tests.support.servers import ValkeyServer

    tmp = Path(tempfile.mkdtemp())
    server = ValkeyServer(search=False, log_dir=tmp).start()
    windows: list[tuple[float, float]] = []
    kills: list[float] = []
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", server.url, str(seconds), str(i)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        for i in range(processes)
    ]
    start = time.time()
    next_fault = start + 10.0  # first fault 10 s in; then every cycle (freeze) or 10 s (kill)
    try:
        while time.time() < start + seconds:
            if time.time() >= next_fault and name == "freeze":
                frozen_at = time.time()
                server.freeze()
                time.sleep(max(0.0, min(5.0, start + seconds - time.time())))
                server.thaw()
                windows.append((frozen_at, time.time()))
                next_fault += cycle
            elif time.time() >= next_fault and name == "kill":
                kills.append(time.time())
                server.kill()
                server.start()
                next_fault += 10.0
            time.sleep(0.05)
        results = [json.loads(p.communicate(timeout=seconds + 60)[0]) for p in procs]
        present = {k.decode() for k in server.client().scan_iter(match="cache:load:*")}
    finally:
        server.stop()
    samples = [s for r in results for s in r["samples"]]
    lat = [s[1] for s in samples]
    acked = {k for r in results for k in r["acked"]}
    out: dict[str, Any] = {
        "scenario": name,
        "calls": len(samples),
        "throughput": len(samples) / seconds,
        "p50_ms": statistics.median(lat) * 1e3,
        "p99_ms": sorted(lat)[int(0.99 * len(lat))] * 1e3,
        "failed": sum(r["failed"] for r in results),
        "wrong": sum(r["wrong"] for r in results),
        "cache_errors": sum(r["errors"] for r in results),
        "acked_writes": len(acked),
        "lost_writes": len(acked - present),
    }
    if windows:
        in_freeze = [(s, lt) for s, lt in samples if any(a <= s < b for a, b in windows)]
        later = [lt for s, lt in in_freeze if any(a + TIMEOUT + 0.05 <= s < b for a, b in windows)]
        out["freeze_worst_ms"] = max(lt for _, lt in in_freeze) * 1e3 if in_freeze else None
        out["freeze_slow_calls"] = sum(lt > 0.010 for _, lt in in_freeze)
        out["freeze_p99_breaker_open_ms"] = (
            sorted(later)[int(0.99 * len(later))] * 1e3 if later else None
        )
        out["freeze_calls"] = len(in_freeze)
    return out


def _concurrent_row(url: str, kind: str, callers: int, per: int) -> str:
    import asyncio
    import threading

    from pmm_memo import Cache, CacheConfig, cached

    cache = Cache(CacheConfig(redis_url=url, embedder="offline"))
    calls: list[int] = []
    if kind == "threads":

        @cached(tenant="conc", cache=cache)
        def f(k: int) -> int:
            calls.append(k)
            return k

        def body(i: int) -> None:
            for j in range(per):
                f((i + j * 50) % 300)

        threads = [threading.Thread(target=body, args=(i,)) for i in range(callers)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        info = f.cache_info()
    else:

        @cached(tenant="conc", cache=cache)
        async def g(k: int) -> int:
            calls.append(k)
            return k

        async def one(i: int) -> None:
            for j in range(per):
                await g((i + j * 100) % 300)

        async def run_all() -> None:
            await asyncio.gather(*(one(i) for i in range(callers)))
            await cache.aclose()

        t0 = time.perf_counter()
        asyncio.run(run_all())
        info = g.cache_info()
    elapsed = time.perf_counter() - t0
    cache.close()
    return (
        f"{kind:<8} {callers} x {per} calls over 300 cold keys in {elapsed:.2f} s: "
        f"errors {info.errors}, breaker {'open' if cache.breaker.is_open else 'closed'}, "
        f"misses {info.misses} (distinct keys 300), function calls {len(calls)}"
    )


def concurrency() -> list[str]:
    """500 threads and 2,000 tasks on cold keys against a healthy server."""
    from tests.support.servers import ValkeyServer

    server = ValkeyServer(search=False, log_dir=Path(tempfile.mkdtemp())).start()
    lines = []
    try:
        for kind, callers, per in (("threads", 500, 6), ("tasks", 2000, 3)):
            server.client().flushall()
            lines.append(_concurrent_row(server.url, kind, callers, per))
    finally:
        server.stop()
    return lines


def _prefork_worker(f: Any, seed: int) -> None:
    for i in range(100):
        f((seed * 7 + i) % 30)
    time.sleep(2.0)  # one flush interval: counts reach Redis while the worker runs


def prefork() -> list[str]:
    import multiprocessing

    from pmm_memo import Cache, CacheConfig, cached
    from tests.support.servers import ValkeyServer

    server = ValkeyServer(search=False, log_dir=Path(tempfile.mkdtemp())).start()
    try:
        cache = Cache(CacheConfig(redis_url=server.url, embedder="offline"))

        @cached(tenant="prefork", cache=cache)
        def f(k: int) -> int:
            return k

        for i in range(30):
            f(i)
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_prefork_worker, args=(f, w)) for w in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        cache.stats.flush()
        row = (cache.stats.shared("prefork") or {})["prefork"]
        cache.close()
    finally:
        server.stop()
    counted = row["hits"] + row["misses"]
    return [
        f"prefork  parent 30 calls + 4 forked workers x 100 calls = 430; shared statistics "
        f"count {counted} (hits {row['hits']}, misses {row['misses']}, errors {row['errors']})"
    ]


def main(argv: list[str] | None = None) -> None:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in and args_in[0] == "--worker":
        worker(args_in[1], float(args_in[2]), int(args_in[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--steady", type=float, default=20.0)
    parser.add_argument("--cycle", type=float, default=30.0)
    parser.add_argument("--scenarios", default="steady,freeze,kill")
    args = parser.parse_args(args_in)
    print(
        f"{args.processes} processes, socket timeout {TIMEOUT * 1000:.0f} ms, "
        f"breaker interval 1 s, {KEYS} keys\n"
    )
    durations = {"steady": args.steady, "freeze": args.cycle, "kill": args.cycle}
    for name in args.scenarios.split(","):
        if name in ("concurrency", "prefork"):
            print("\n".join(concurrency() if name == "concurrency" else prefork()))
            continue
        seconds = durations[name]
        r = scenario(name, args.processes, seconds, args.cycle)
        line = (
            f"{name:<7} {r['calls']:>8} calls {r['throughput']:>9,.0f}/s  p50 "
            f"{r['p50_ms']:6.3f} ms  p99 {r['p99_ms']:7.3f} ms  failed {r['failed']}  "
            f"wrong {r['wrong']}  acked writes {r['acked_writes']} lost "
            f"{r['lost_writes']}  cache errors {r['cache_errors']}"
        )
        print(line)
        if "freeze_calls" in r:
            print(
                f"        during freezes: {r['freeze_calls']} calls; worst call "
                f"{r['freeze_worst_ms']:.1f} ms (socket timeout {TIMEOUT * 1000:.0f} ms); "
                f"{r['freeze_slow_calls']} calls over 10 ms; p99 with the breaker open "
                f"{r['freeze_p99_breaker_open_ms']:.3f} ms"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
