"""The arithmetic of choosing a backend: bucket ids, rendezvous hashing, smooth weighted round robin."""

import random
from collections import Counter

from controller.ids import MAX_BACKENDS, MAX_WEIGHT, backend_of_bucket
from controller.pool import bucket_ids
from controller.selection import SmoothWeightedRoundRobin, rendezvous_pick


def connection_keys(n: int) -> list[bytes]:
    """Random-looking 5-tuple keys, the same every run."""
    rng = random.Random(0)
    return [rng.randbytes(12) for _ in range(n)]


def test_a_weight_becomes_that_many_buckets_that_name_their_backend():
    buckets = bucket_ids({0: 1, 3: 2})
    assert len(buckets) == 3 and len(set(buckets)) == 3
    assert Counter(backend_of_bucket(b) for b in buckets) == {0: 1, 3: 2}


def test_every_backend_at_the_largest_weight_keeps_buckets_of_its_own():
    """A full pool at the maximum weight: no two replicas share a bucket id, and each names its backend."""
    buckets = bucket_ids(dict.fromkeys(range(MAX_BACKENDS), MAX_WEIGHT))
    assert len(buckets) == len(set(buckets)) == MAX_BACKENDS * MAX_WEIGHT
    assert Counter(backend_of_bucket(b) for b in buckets) == dict.fromkeys(range(MAX_BACKENDS), MAX_WEIGHT)


def test_a_heavy_backend_wins_its_share_of_the_flows():
    """Weights beyond a handful still give w/sum(w) of the flows (here 100 : 1 : 19)."""
    buckets = bucket_ids({0: MAX_WEIGHT, 1: 1, 2: 19})
    counts = Counter(backend_of_bucket(rendezvous_pick(k, buckets)) for k in connection_keys(12000))
    assert abs(counts[0] / 12000 - 100 / 120) < 0.02 and abs(counts[2] / 12000 - 19 / 120) < 0.02, counts


def test_removing_one_of_five_backends_moves_only_its_connections():
    keys = connection_keys(20000)
    five = bucket_ids(dict.fromkeys(range(5), 1))
    four = bucket_ids(dict.fromkeys(range(4), 1))
    before = {k: backend_of_bucket(rendezvous_pick(k, five)) for k in keys}
    after = {k: backend_of_bucket(rendezvous_pick(k, four)) for k in keys}
    others = [k for k in keys if before[k] != 4]
    stayed = sum(before[k] == after[k] for k in others)
    assert stayed >= 0.95 * len(others)
    assert stayed == len(others)  # rendezvous: exactly the removed backend's share moves


def test_replicated_buckets_give_shares_close_to_the_weights():
    weights = {0: 1, 1: 2, 2: 3}
    buckets = bucket_ids(weights)
    counts = Counter(backend_of_bucket(rendezvous_pick(k, buckets)) for k in connection_keys(30000))
    for index, weight in weights.items():
        assert abs(counts[index] / 30000 - weight / 6) < 0.02, counts


def test_smooth_weighted_round_robin_is_exact_and_interleaved():
    rr = SmoothWeightedRoundRobin()
    picks = [rr.pick({0: 5, 1: 1, 2: 1}) for _ in range(7)]
    assert Counter(picks) == {0: 5, 1: 1, 2: 1}
    assert picks != sorted(picks)  # nginx's property: not five 0s in a row
    assert max(len(run) for run in "".join(map(str, picks)).split("1")) < 5


def test_smooth_weighted_round_robin_gives_nginx_sequence():
    """nginx's worked example: weights a=5, b=1, c=1 give a a b a c a a, and then the cycle repeats."""
    rr = SmoothWeightedRoundRobin()
    assert [rr.pick({0: 5, 1: 1, 2: 1}) for _ in range(14)] == [0, 0, 1, 0, 2, 0, 0] * 2


def test_round_robin_follows_the_pool_as_it_changes():
    rr = SmoothWeightedRoundRobin()
    assert rr.pick({}) is None
    assert {rr.pick({0: 1, 1: 1}) for _ in range(4)} == {0, 1}
    assert {rr.pick({1: 1}) for _ in range(3)} == {1}


def test_the_lab_tests_bound_catches_a_hash_that_is_not_rendezvous():
    """tests/lab's consistent-hashing check (95 % stay) fails against modulo selection."""
    from tests.lab.helpers import stayed_share

    keys = connection_keys(2000)
    modulo = {k: f"backend{int.from_bytes(k, 'big') % 5 + 1}" for k in keys}
    after = {k: f"backend{int.from_bytes(k, 'big') % 4 + 1}" for k in keys}
    assert stayed_share(modulo, after, "backend5") < 0.5
    five, four = bucket_ids(dict.fromkeys(range(5), 1)), bucket_ids(dict.fromkeys(range(4), 1))
    rendezvous = {k: backend_of_bucket(rendezvous_pick(k, five)) for k in keys}
    kept = {k: backend_of_bucket(rendezvous_pick(k, four)) for k in keys}
    assert stayed_share(rendezvous, kept, 4) == 1.0
