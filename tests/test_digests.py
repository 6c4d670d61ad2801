"""The keyed digests (`_digests`): the entry check is keyed BLAKE2b and never changes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pmm_memo._digests import check_digest


@given(st.binary(max_size=2000))
def test_check_digest_is_keyed_blake2b_and_never_changes(material: bytes) -> None:
    import hashlib

    expected = hashlib.blake2b(material, digest_size=8, key=b"pmm_memo/check/v1").hexdigest()
    assert check_digest(material) == expected
    assert check_digest(b"pmm1|golden") == "7f39e020a59dd593"


def test_partition_tags_are_exact_and_keyed_by_the_secret() -> None:
    from pmm_memo._digests import Digests, Partitions

    parts = Partitions()
    # Components never run together, whatever characters they hold.
    assert parts.call("ab", "c", "f", "s") != parts.call("a", "bc", "f", "s")
    assert parts.call("t", "", "f", None) != parts.call("t", "", "f", "")
    assert parts.user("t", "u") != parts.call("t", "u", None, None)
    assert parts.tenant("T") != parts.tenant("t")  # no case folding
    call, user, tenant = parts.tags("t,x", "u", "f", "s").split(",")
    assert (call, user, tenant) == (
        parts.call("t,x", "u", "f", "s"),
        parts.user("t,x", "u"),
        parts.tenant("t,x"),
    )
    assert all(len(t) == 24 and t.isalnum() for t in (call, user, tenant))  # TAG-safe hex
    unkeyed = Partitions(Digests(None).part_key)
    assert unkeyed.call("t", "u", "f", "s") == parts.call("t", "u", "f", "s")
    one, two = (Partitions(Digests(s).part_key) for s in ("secret-one", "secret-two"))
    assert len({p.call("t", "u", "f", "s") for p in (parts, one, two)}) == 3
    assert len({p.tenant("t") for p in (parts, one, two)}) == 3


def test_kept_call_tags_are_the_digests_and_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from pmm_memo._digests import Partitions

    monkeypatch.setattr(Partitions, "CALLS_KEPT", 8)  # a small bound, to cross it
    parts, fresh = Partitions(), Partitions()
    names = [("t", f"u{i}", "f", None if i % 2 else f"s{i}") for i in range(20)]
    names += [("a:b", "c", "f", "s"), ("a", "b:c", "f", "s"), ("ab", "c", "f", "s")]
    first = [parts.call(*n) for n in names]
    again = [parts.call(*n) for n in reversed(names)][::-1]  # some kept, some recomputed
    assert first == again
    assert first == [fresh._digest("p", *n) for n in names]
    assert len(set(first)) == len(names)
    assert len(parts._calls) <= 8


@given(st.binary(max_size=2000), st.sampled_from([None, "", "secret-one", "sécret"]))
def test_scope_tags_are_the_keyed_scope_digest(material: bytes, secret: str | None) -> None:
    """`Digests.scope` copies a keyed state: the same digest as keying one per call."""
    from pmm_memo._digests import _SCOPE_KEY, Digests, scope_digest

    digests = Digests(secret)
    key = digests._scope if secret else _SCOPE_KEY
    assert digests.scope(material) == scope_digest(material, key)
    assert digests.scope(material) == digests.scope(material)  # the state is not consumed


def test_kept_scope_tags_are_the_digests_and_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from pmm_memo._digests import Digests, scope_digest

    monkeypatch.setattr(Digests, "SCOPES_KEPT", 8)  # a small bound, to cross it
    digests = Digests("secret-one")
    short = b"pmm1|f|scope|s2:ab"
    assert digests.scope(short) is digests.scope(short)  # kept
    materials = [b"m%d" % i for i in range(20)] + [b"a" * (Digests.SCOPE_KEPT_BYTES + 1)]
    first = [digests.scope(m) for m in materials]
    again = [digests.scope(m) for m in reversed(materials)][::-1]
    assert first == again == [scope_digest(m, digests._scope) for m in materials]
    assert len(digests._scopes) <= 8
    assert materials[-1] not in digests._scopes  # long materials are not kept
    assert Digests("secret-two").scope(short) != digests.scope(short) != Digests(None).scope(short)
