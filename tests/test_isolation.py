"""Property: no result ever comes from another tenant, user, function or scope.

Random tenants and users (glob, tag and query specials included), prompts drawn from
groups of near-duplicates (so semantic hits happen constantly), two functions, two
scopes. Every result names who computed it; it must be the caller's own identity.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmm_memo import Cache, semantic_lookup
from tests.conftest import make_cache, url_for
from tests.support.servers import ValkeyCluster, ValkeyServer

NAMES = ["a", "A", "a*", "a:b", "[a]", "x}|@t:{*", "t{x}", "a,b", "a b", "ü", "-1", "a|b", "(x)"]
PROMPTS = [
    "How do I reset my password?",
    "how do i reset my password",
    "HOW DO I RESET MY PASSWORD",
    "What is the capital of France?",
    "what is the capital of france",
    "Write a song about love",
    "write a song about love!",
]

ops = st.lists(
    st.tuples(
        st.sampled_from(NAMES),
        st.sampled_from([*NAMES, ""]),
        st.sampled_from(PROMPTS),
        st.sampled_from(["m1", "m2"]),
        st.booleans(),
    ),
    min_size=1,
    max_size=25,
)


def check(cache: Cache, operations: list[tuple[str, str, str, str, bool]]) -> None:
    funcs: dict[tuple[str, bool], Any] = {}
    for tenant, user, prompt, model, second in operations:
        fn = funcs.get((tenant, second))
        if fn is None:
            fn = funcs[(tenant, second)] = _make(cache, tenant, "second" if second else "first")
        out = fn(prompt, model=model, user_id=user)
        assert out[:4] == ("second" if second else "first", tenant, user, model), (
            f"{(tenant, user, model)} got {out}"
        )


def _make(cache: Cache, tenant: str, name: str) -> Any:
    @semantic_lookup(threshold=0.8, tenant=tenant, cache=cache)
    def first(prompt: str, model: str = "m1", user_id: str = "") -> tuple[str, ...]:
        return ("first", tenant, user_id, model, prompt)

    @semantic_lookup(threshold=0.8, tenant=tenant, cache=cache)
    def second(prompt: str, model: str = "m1", user_id: str = "") -> tuple[str, ...]:
        return ("second", tenant, user_id, model, prompt)

    return first if name == "first" else second


def _flush(server: ValkeyServer | ValkeyCluster) -> None:
    if isinstance(server, ValkeyCluster):
        server.flush()  # every primary
    else:
        with server.client() as c:
            c.flushall()


# Examples per backend: the servers cost a round trip per call, the cluster several.
EXAMPLES = {"memory": 150, "redis": 40, "cluster": 15}


@pytest.mark.parametrize("kind", ["memory", "redis", "cluster"])
def test_isolation(kind: str, request: pytest.FixtureRequest) -> None:
    url = url_for(kind, request)
    server = {"redis": "search_server", "cluster": "cluster_server"}.get(kind)

    @settings(max_examples=EXAMPLES[kind], deadline=None)
    @given(ops)
    def isolated(operations: list[tuple[str, str, str, str, bool]]) -> None:
        if server is not None:  # each example starts empty
            _flush(request.getfixturevalue(server))
        cache = make_cache(kind, url)
        check(cache, operations)
        cache.close()

    isolated()
