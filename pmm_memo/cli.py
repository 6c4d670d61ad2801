"""`pmm-memo` / `python -m pmm_memo`: look inside a cache, clear it, search it, time it.

Configuration comes from the CACHE_* environment variables (or `--redis-url`).
Exit codes: 0 success; 1 the operation failed or found the cache unhealthy (or a
clear was not confirmed); 2 bad usage (argparse) or a bad configuration value.
Every command takes `--json` for scripts; tables are for people.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._config import CacheConfig
from ._errors import ConfigError, PmmMemoError
from ._manager import CacheManager
from ._progress import Progress

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _cell(value: Any) -> str:
    """A table cell as text that cannot steer the terminal: stored texts and user names
    are anyone's input, so control, format and separator characters (escape
    sequences, newlines, bidi overrides) are shown escaped (`\\x1b`), not sent."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode()
        for c in text
    )


def _table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [[_cell(c) for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _strict_json(value: Any) -> Any:
    """`value` with every float that is not finite as None: JSON has no NaN or Infinity,
    and `jq` and other strict parsers refuse Python's `NaN` (a similarity computed
    against a damaged vector, a rate of nothing)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(v) for v in value]
    return value


def _redis_trouble(exc: Exception) -> str:
    """What a redis-py error says about the server, in words: only a connection that
    failed is "cannot reach" (a refused password or an error reply is an answer)."""
    import redis

    if isinstance(exc, redis.AuthenticationError | redis.exceptions.NoPermissionError):
        return "the server refused the credentials of"
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return "cannot reach"
    return "the server answered with an error at"


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    if args.json:
        print(json.dumps(_strict_json(payload), indent=2, default=str, allow_nan=False))
    else:
        print(text)


def cmd_health(args: argparse.Namespace, manager: CacheManager) -> int:
    report = manager.health_check()
    if report["backend"] == "memory":
        report["note"] = EMBEDDED_NOTE.removeprefix("pmm-memo: ")
    ok = bool(report["healthy"]) and (report["backend"] == "memory" or report["redis_connected"])
    _emit(args, report, _table([[k, v] for k, v in report.items()], ["check", "value"]))
    return EXIT_OK if ok else EXIT_FAILED


def cmd_stats(args: argparse.Namespace, manager: CacheManager) -> int:
    stats = manager.get_cache_stats(args.tenant)
    if stats["backend"] == "memory":
        stats["note"] = EMBEDDED_NOTE.removeprefix("pmm-memo: ")
    fields = ["entries", "hits", "misses", "semantic_hits", "errors", "corrupt", "uncacheable"]
    rows = [[t, *(r.get(f, 0) for f in fields)] for t, r in sorted(stats["tenants"].items())]
    text = _table(rows, ["tenant", *fields]) if rows else "(no entries)"
    if stats["memory_used_bytes"] is not None:
        text += f"\nserver memory used: {stats['memory_used_bytes'] / 1e6:.1f} MB"
    _emit(args, stats, f"backend: {stats['backend']}\n{text}")
    return EXIT_OK


def cmd_clear(args: argparse.Namespace, manager: CacheManager) -> int:
    count = manager.count_entries(args.tenant)
    if not args.yes:
        if not sys.stdin.isatty():
            print(
                f"refusing to clear {count} entries of tenant {args.tenant!r} without "
                f"--yes (no terminal to ask)",
                file=sys.stderr,
            )
            return EXIT_FAILED
        answer = input(f"Remove {count} entries of tenant {args.tenant!r}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed", file=sys.stderr)
            return EXIT_FAILED
    bar = Progress(count, f"clearing {args.tenant}")
    removed = manager.clear_tenant_cache(args.tenant, progress=bar.update)
    bar.finish()
    _emit(
        args,
        {"tenant": args.tenant, "removed": removed},
        f"removed {removed} entries of tenant {args.tenant!r}",
    )
    return EXIT_OK


def cmd_search(args: argparse.Namespace, manager: CacheManager) -> int:
    hits = manager.search_text(args.tenant, args.text, k=args.k, user=args.user)
    rows = [[f"{h['similarity']:.4f}", h["user"], (h["text"] or "")[:60], h["key"]] for h in hits]
    _emit(
        args,
        hits,
        _table(rows, ["similarity", "user", "text", "key"])
        if rows
        else "(no entries with embeddings in this tenant)",
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, manager: CacheManager) -> int:
    """A live check that exact and semantic caching work on the configured backend."""
    from ._decorators import cached, semantic_lookup

    cache = manager.cache
    tenant = "pmm_memo_demo"

    @cached(tenant=tenant, ttl=60, cache=cache)
    def slow_square(x: int) -> int:
        time.sleep(0.2)
        return x * x

    @semantic_lookup(threshold=0.9, tenant=tenant, ttl=60, cache=cache)
    def slow_answer(prompt: str) -> str:
        time.sleep(0.2)
        return f"an answer to {prompt!r}"

    steps = []
    plan: list[tuple[str, Callable[[Any], Any], Any]] = [
        ("exact: first call", slow_square, 12),
        ("exact: second call", slow_square, 12),
        ("semantic: first call", slow_answer, "How do I reset my password?"),
        ("semantic: reworded", slow_answer, "how do i reset my password"),
    ]
    for label, fn, arg in plan:
        start = time.perf_counter()
        result = fn(arg)
        steps.append(
            {"step": label, "ms": round((time.perf_counter() - start) * 1000, 3), "result": result}
        )
    slow_square.cache_clear()
    slow_answer.cache_clear()
    fast = steps[1]["ms"] < 100 and steps[3]["ms"] < 100
    _emit(
        args,
        {"backend": cache.backend.name, "steps": steps, "caching_works": fast},
        f"backend: {cache.describe_backend()}\n"
        + _table(
            [[s["step"], f"{s['ms']:.3f}", s["result"]] for s in steps], ["step", "ms", "result"]
        )
        + f"\ncaching works: {fast}",
    )
    return EXIT_OK if fast else EXIT_FAILED


def cmd_bench(args: argparse.Namespace, manager: CacheManager) -> int:
    """Exact-hit latency on the configured backend beside its raw baseline."""
    from ._decorators import cached
    from ._timing import per_call_samples, percentile
    from .backends.redis import _READ_FIELDS

    cache = manager.cache

    payload = "x" * int(args.payload_bytes)

    @cached(tenant="pmm_memo_bench", ttl=300, cache=cache)
    def target(prompt: str, model: str = "m", temperature: float = 0.0) -> str:
        return payload

    target("bench", "m", 0.0)
    if cache.backend.name == "redis":
        client = cache.backend.client  # type: ignore[attr-defined]
        key = target.cache_key("bench", "m", 0.0)

        def baseline() -> Any:
            return client.hmget(key, _READ_FIELDS)

        base_name = "raw HMGET of the same entry"
    else:
        import functools

        @functools.lru_cache(maxsize=16)
        def lru() -> str:
            return "x"

        def baseline() -> Any:
            return lru()

        base_name = "functools.lru_cache"
    rounds = 10
    ours: list[float] = []
    base: list[float] = []
    bar = Progress(rounds, "bench")
    per_round = max(10, args.calls // rounds)
    for r in range(rounds):
        ours += per_call_samples(lambda: target("bench", "m", 0.0), per_round, 10)
        base += per_call_samples(baseline, per_round, 10)
        bar.update(r + 1)
    bar.finish()
    target.cache_clear()
    result = {
        "backend": cache.backend.name,
        "pmm_memo_median_us": statistics.median(ours) * 1e6,
        "pmm_memo_p99_us": percentile(ours, 0.99) * 1e6,
        "baseline": base_name,
        "baseline_median_us": statistics.median(base) * 1e6,
        "baseline_p99_us": percentile(base, 0.99) * 1e6,
    }
    _emit(
        args,
        result,
        _table(
            [
                [
                    "pmm_memo exact hit",
                    f"{result['pmm_memo_median_us']:.2f}",
                    f"{result['pmm_memo_p99_us']:.2f}",
                ],
                [
                    base_name,
                    f"{result['baseline_median_us']:.2f}",
                    f"{result['baseline_p99_us']:.2f}",
                ],
            ],
            ["", "median us", "p99 us"],
        ),
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    # Global options are accepted before or after the sub-command (`pmm-memo --json health`
    # and `pmm-memo health --json`): the sub-parsers repeat them with SUPPRESS defaults, so
    # an option given before the sub-command is not reset by the sub-parser.
    def global_options(p: argparse.ArgumentParser, *, top: bool) -> None:
        p.add_argument(
            "--redis-url",
            default=None if top else argparse.SUPPRESS,
            help="overrides CACHE_REDIS_URL",
        )
        p.add_argument(
            "--json",
            action="store_true",
            default=False if top else argparse.SUPPRESS,
            help="machine-readable output",
        )

    parser = argparse.ArgumentParser(
        prog="pmm-memo", description="Inspect and manage a pmm_memo cache."
    )
    global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        global_options(p, top=False)
        return p

    add("health", "connection, search module, index, latency (exit 1 if unhealthy)")
    add("stats", "entries and counters per tenant").add_argument("--tenant")
    p = add("clear", "remove every entry of a tenant")
    p.add_argument("--tenant", required=True)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p = add("search", "nearest stored entries to a text")
    p.add_argument("text")
    p.add_argument("--tenant", required=True)
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--user")
    add("demo", "check that exact and semantic caching work on this backend")
    p = add("bench", "exact-hit latency beside a raw baseline")
    p.add_argument("--calls", type=int, default=20000)
    p.add_argument("--payload-bytes", type=int, default=1000)
    return parser


EMBEDDED_NOTE = (
    "pmm-memo: CACHE_REDIS_URL is not set, so this is the embedded backend, which lives "
    "inside each process: this command sees only its own, empty cache and cannot see an "
    "application's. Set CACHE_REDIS_URL (or --redis-url) to inspect a shared Redis cache."
)
_INSPECTS = ("health", "stats", "clear", "search")

COMMANDS = {
    "health": cmd_health,
    "stats": cmd_stats,
    "clear": cmd_clear,
    "search": cmd_search,
    "demo": cmd_demo,
    "bench": cmd_bench,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # --redis-url stands in for CACHE_REDIS_URL before it is read: a malformed value
        # left in the environment no longer refuses the URL given to fix it.
        environ = dict(os.environ)
        if args.redis_url:
            environ["CACHE_REDIS_URL"] = args.redis_url
        config = CacheConfig.from_env(environ)
    except ConfigError as exc:
        print(f"pmm-memo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if config.redis_url is None and args.command in _INSPECTS:
        # Say it before any table: an empty, "healthy" embedded cache here says nothing
        # about an application's cache, which lives inside the application's process.
        print(EMBEDDED_NOTE, file=sys.stderr)
    manager = CacheManager(config)
    try:
        return COMMANDS[args.command](args, manager)
    except ConfigError as exc:
        print(f"pmm-memo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (PmmMemoError, OSError) as exc:
        print(f"pmm-memo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        import redis

        if isinstance(exc, redis.RedisError):
            print(
                f"pmm-memo: {_redis_trouble(exc)} {config.masked_redis_url}: {exc}", file=sys.stderr
            )
            return EXIT_FAILED
        raise
    finally:
        manager.close()


if __name__ == "__main__":
    sys.exit(main())
