"""User code as a type checker sees it: checked by mypy --strict and pyright.

Not imported by the tests: `tests/test_typing.py` copies it outside the repository and
runs both checkers on it. `# R: T` says what `reveal_type` must print (module prefixes
dropped); a line ending in `# error` must be reported by both checkers, and no other line
may be. mypy runs twice: with `pmm_memo.mypy_plugin` it must match pyright exactly;
without it, lines marked `# mypy-binds` flip (see `pmm_memo/_typing.py`): plain mypy binds
the first parameter of a staticmethod or a method read through its class, so it reports
those correct calls and misses the wrong one.
"""

from __future__ import annotations

from typing import reveal_type

from pmm_memo import CacheInfo, cached, semantic_lookup


@cached(tenant="pmm_llm", ttl=60)
def complete(prompt: str, model: str = "m") -> str:
    return prompt


@cached
def bare(n: int) -> int:
    return n


@semantic_lookup(threshold=0.9)
async def ask(prompt: str, user_id: str | None = None) -> list[str]:
    return [prompt]


@semantic_lookup
def bare_semantic(prompt: str) -> float:
    return 1.0


class Repo:
    @cached(tenant="pmm_db")
    def get(self, key: str, limit: int = 1) -> dict[str, int]:
        return {key: limit}

    @cached(tenant="pmm_db")
    async def aget(self, key: str) -> bytes:
        return key.encode()

    @cached(tenant="pmm_db")
    @classmethod
    def build(cls, n: int) -> tuple[int, str]:
        return n, cls.__name__

    @cached(tenant="pmm_db")
    @staticmethod
    def pure(n: int) -> set[int]:
        return {n}

    @staticmethod
    @cached(tenant="pmm_db")
    def under_staticmethod(n: int) -> frozenset[int]:
        return frozenset({n})

    @staticmethod
    @semantic_lookup
    async def aunder_staticmethod(text: str) -> bytes:
        return text.encode()

    @semantic_lookup(0.9)
    @classmethod
    async def asearch(cls, text: str) -> str:
        return text

    def nested(self) -> int:
        @cached
        def inner(n: int) -> int:  # a function in a method: not a method itself
            return n

        reveal_type(inner(3))  # R: int
        inner("3")  # error
        return inner.cache_clear()

    @classmethod
    @cached(tenant="pmm_db")
    def under_classmethod(cls, n: int) -> int:
        return n


def functions() -> None:
    reveal_type(complete("p"))  # R: str
    reveal_type(complete("p", model="x"))  # R: str
    reveal_type(bare(1))  # R: int
    reveal_type(bare_semantic("p"))  # R: float
    reveal_type(complete.cache_key("p"))  # R: str
    reveal_type(complete.invalidate("p", model="x"))  # R: bool
    reveal_type(complete.cache_clear())  # R: int
    reveal_type(complete.cache_info())  # R: CacheInfo
    info: CacheInfo = bare.cache_info()
    reveal_type(info.hits)  # R: int
    complete(1)  # error
    complete("p", temperature=0)  # error
    bare("1")  # error
    complete.cache_key("p", 2)  # error
    bare.invalidate()  # error
    _x: int = complete("p")  # error


async def coroutines() -> None:
    reveal_type(await ask("q"))  # R: list[str]
    reveal_type(await ask("q", user_id="u"))  # R: list[str]
    reveal_type(ask.cache_key("q"))  # R: str
    await ask(3)  # error
    ask.invalidate("q", user="u")  # error
    _y: str = await ask("q")  # error


async def methods(repo: Repo) -> None:
    reveal_type(repo.get("k"))  # R: dict[str, int]
    reveal_type(Repo().get("k", limit=2))  # R: dict[str, int]
    reveal_type(repo.get.cache_key("k"))  # R: str
    reveal_type(repo.get.invalidate("k", 2))  # R: bool
    reveal_type(repo.get.cache_clear())  # R: int
    reveal_type(repo.get.cache_info())  # R: CacheInfo
    reveal_type(Repo.get(repo, "k"))  # R: dict[str, int]  # mypy-binds
    reveal_type(await repo.aget("k"))  # R: bytes
    reveal_type(repo.aget.cache_key("k"))  # R: str
    repo.get(1)  # error
    repo.get("k", "2")  # error
    repo.get.cache_key(1)  # error
    repo.get.invalidate("k", limit="x")  # error
    Repo.get("k")  # error  # mypy-binds
    await repo.aget(b"k")  # error
    repo.aget.invalidate(1)  # error


async def class_and_static_methods(repo: Repo) -> None:
    reveal_type(Repo.build(3))  # R: tuple[int, str]
    reveal_type(repo.build(3))  # R: tuple[int, str]
    reveal_type(Repo.build.cache_key(3))  # R: str
    reveal_type(Repo.build.invalidate(3))  # R: bool
    reveal_type(Repo.pure(3))  # R: set[int]  # mypy-binds
    reveal_type(repo.pure(3))  # R: set[int]  # mypy-binds
    reveal_type(Repo.pure.cache_key(3))  # R: str  # mypy-binds
    reveal_type(repo.pure.cache_info())  # R: CacheInfo
    reveal_type(await Repo.asearch("t"))  # R: str
    reveal_type(Repo.asearch.cache_key("t"))  # R: str
    reveal_type(Repo.under_classmethod(3))  # R: int
    reveal_type(Repo.under_staticmethod(3))  # R: frozenset[int]  # mypy-binds
    reveal_type(repo.under_staticmethod(3))  # R: frozenset[int]  # mypy-binds
    reveal_type(Repo.under_staticmethod.cache_key(3))  # R: str  # mypy-binds
    reveal_type(repo.under_staticmethod.invalidate(3))  # R: bool  # mypy-binds
    reveal_type(await repo.aunder_staticmethod("t"))  # R: bytes  # mypy-binds
    Repo.build("3")  # error
    Repo.build.cache_key(cls=Repo, n=3)  # error
    Repo.pure("3")  # error
    repo.pure.invalidate(3, 4)  # error
    await Repo.asearch(1)  # error
    Repo.under_classmethod("3")  # error
    Repo.under_staticmethod("3")  # error
    repo.under_staticmethod.cache_key(3, 4)  # error
    await Repo.aunder_staticmethod(b"t")  # error
