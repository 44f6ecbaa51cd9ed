"""Merkle trees as RFC 6962 defines them, and inclusion proofs."""

from __future__ import annotations

import hashlib

import pytest

from marketplace.audit.merkle import (
    inclusion_path,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_inclusion,
)


def _rfc_root(leaves: list[bytes]) -> bytes:
    """MTH as RFC 6962 §2.1 writes it: split at the largest power of two below n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(_rfc_root(leaves[:k]), _rfc_root(leaves[k:]))


def _leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(str(i).encode()).digest() for i in range(n)]


@pytest.mark.parametrize("n", range(0, 40))
def test_the_root_is_rfc_6962s(n: int) -> None:
    assert merkle_root(_leaves(n)) == _rfc_root(_leaves(n))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 9, 16, 17, 33])
def test_every_leaf_has_a_proof_that_verifies(n: int) -> None:
    leaves = _leaves(n)
    root = merkle_root(leaves)
    for i, leaf in enumerate(leaves):
        path = inclusion_path(i, leaves)
        assert verify_inclusion(leaf, i, n, path, root)
        # The same path proves nothing for another leaf, index, size or root.
        assert not verify_inclusion(b"\x01" * 32, i, n, path, root)
        assert not verify_inclusion(leaf, i, n, path, hashlib.sha256(b"x").digest())
        if n > 1:
            assert not verify_inclusion(leaf, (i + 1) % n, n, path, root)


def test_a_proof_outside_the_tree_is_refused() -> None:
    leaves = _leaves(4)
    assert not verify_inclusion(leaves[0], 4, 4, inclusion_path(0, leaves), merkle_root(leaves))
    with pytest.raises(IndexError):
        inclusion_path(4, leaves)
