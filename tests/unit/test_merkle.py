"""RFC 6962 trees and proofs: known answers from the RFC's reference test data, and properties against the tests'
own verifier (tests/rfc6962.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dobby.engine.audit import merkle
from tests import rfc6962

# The reference leaves and answers of the RFC 6962 implementations' shared test data (certificate-transparency,
# transparency-dev/merkle): eight leaf inputs, the root of every prefix, and proofs with their expected paths.
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                       "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
H = {
    "a": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "b": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "c": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    "d": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "e": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "f": "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "g": "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "h": "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "i": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "j": "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
}
INCLUSION = [  # (leaf index, tree size, proof)
    (0, 1, ""),
    (0, 8, "abc"),
    (5, 8, "def"),
    (2, 3, "g"),
    (1, 5, "hbd"),
]
CONSISTENCY = [  # (first size, second size, proof)
    (1, 1, ""),
    (1, 8, "abc"),
    (6, 8, "ief"),
    (2, 5, "bd"),
    (6, 7, "ijf"),
]


def stored(count: int) -> merkle.Nodes:
    return merkle.memory_nodes(merkle.leaf_hash(data) for data in LEAVES[:count])


def test_roots_of_every_prefix_are_the_reference_roots() -> None:
    for size, expected in enumerate(ROOTS):
        assert merkle.root(size, stored(8)).hex() == expected
        assert rfc6962.mth(LEAVES[:size]).hex() == expected


def test_inclusion_proofs_are_the_reference_paths_and_verify() -> None:
    for index, size, names in INCLUSION:
        proof = merkle.inclusion_proof(index, size, stored(8))
        assert [p.hex() for p in proof] == [H[name] for name in names]
        root = bytes.fromhex(ROOTS[size])
        assert rfc6962.verify_inclusion(index, size, merkle.leaf_hash(LEAVES[index]), proof, root)
        assert not rfc6962.verify_inclusion(index, size, merkle.leaf_hash(b"other"), proof, root)


def test_consistency_proofs_are_the_reference_paths_and_verify() -> None:
    for first, second, names in CONSISTENCY:
        proof = merkle.consistency_proof(first, second, stored(8))
        assert [p.hex() for p in proof] == [H[name] for name in names]
        roots = bytes.fromhex(ROOTS[first]), bytes.fromhex(ROOTS[second])
        assert rfc6962.verify_consistency(first, second, proof, *roots)
        if proof:
            assert not rfc6962.verify_consistency(first, second, proof[:-1], *roots)
            assert not rfc6962.verify_consistency(first, second, [bytes(32), *proof[1:]], *roots)


def test_the_verifier_refuses_the_reference_bad_inputs() -> None:
    root8 = bytes.fromhex(ROOTS[8])
    proof = merkle.inclusion_proof(0, 8, stored(8))
    leaf0 = merkle.leaf_hash(LEAVES[0])
    assert not rfc6962.verify_inclusion(1, 8, leaf0, proof, root8)  # another index
    assert not rfc6962.verify_inclusion(0, 16, leaf0, proof, root8)  # another size
    assert not rfc6962.verify_inclusion(0, 8, leaf0, [*proof, root8], root8)  # trailing garbage
    assert not rfc6962.verify_inclusion(0, 0, leaf0, [], merkle.EMPTY_ROOT)  # nothing is in an empty tree
    empty = merkle.EMPTY_ROOT
    assert not rfc6962.verify_consistency(0, 1, [empty], empty, empty)  # from an empty tree: useless
    assert not rfc6962.verify_consistency(2, 1, [], root8, root8)
    assert not rfc6962.verify_consistency(1, 1, [empty], empty, empty)


def test_appending_leaf_by_leaf_stores_the_perfect_subtrees_of_the_whole_tree() -> None:
    leaves = [merkle.leaf_hash(bytes([n])) for n in range(37)]
    nodes: dict[tuple[int, int], bytes] = {}
    frontier: dict[int, bytes] = {}
    for index, leaf in enumerate(leaves):
        nodes[(0, index)] = leaf
        nodes.update({(level, i): h for level, i, h in merkle.append(index, frontier, leaf)})
        assert sorted(frontier) == sorted(level for level, _ in merkle.frontier_ids(index + 1))
    whole = merkle.memory_nodes(leaves)
    assert all(whole(level, index) == h for (level, index), h in nodes.items())
    assert merkle.root(37, lambda level, index: nodes[(level, index)]) == rfc6962.mth([bytes([n]) for n in range(37)])


@settings(max_examples=150, deadline=None)
@given(st.data(), st.integers(min_value=1, max_value=300))
def test_proofs_for_random_trees_verify_independently(data: st.DataObject, size: int) -> None:
    inputs = [n.to_bytes(2, "big") for n in range(size)]
    nodes = merkle.memory_nodes(merkle.leaf_hash(item) for item in inputs)
    index = data.draw(st.integers(0, size - 1))
    first = data.draw(st.integers(1, size))
    smaller = data.draw(st.integers(1, size))
    root = merkle.root(size, nodes)
    assert root == rfc6962.mth(inputs)
    proof = merkle.inclusion_proof(index, size, nodes)
    assert rfc6962.verify_inclusion(index, size, merkle.leaf_hash(inputs[index]), proof, root)
    consistency = merkle.consistency_proof(first, size, nodes)
    assert rfc6962.verify_consistency(first, size, consistency, merkle.root(first, nodes), root)
    if smaller != first:
        assert not rfc6962.verify_consistency(smaller, size, consistency, merkle.root(smaller, nodes), root)
    asked = merkle.needed(lambda n: merkle.inclusion_proof(index, size, n))
    assert len(asked) <= 2 * size.bit_length()
