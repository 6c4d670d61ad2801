"""The keyed digests (`_digests`): the entry check is keyed BLAKE2b and never changes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pmm_memo._digests import check_digest


@given(st.binary(max_size=2000))
def test_check_digest_is_keyed_blake2b_and_never_changes(material: bytes) -> None:
    import hashlib

    expected = hashlib.blake2b(material, digest_size=8, key=b"pmm_memo/check/v1").hexdigest()
    assert check_digest(material) == expected
    assert check_digest(b"pmm1|golden") == "7f39e020a59dd593"
