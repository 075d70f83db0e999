"""Two and three `serve` nodes on one PostgreSQL store, phones alternating between them on
shared AoRs (the same Call-ID going to each node in turn), the leading node SIGKILLed
halfway: no 200 misses a binding acknowledged before it (no lost update), the shared view
holds every acknowledged binding within a second of the last 200, another node leads
(keeper, notifier) within a few seconds, one SUBSCRIBE dialog, and each node PUBLISHes
only what it decided. The full run, with the throughput of two nodes against one, is
`python3 bench/multi_node.py`.
"""

from __future__ import annotations

import pytest

from bench.multi_node import cluster

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("nodes", [2, 3])
def test_nodes_share_the_aors_and_survive_the_leader_s_death(nodes):
    result = cluster(nodes, seconds=3)
    assert result["lost_updates"].answers > 100
    assert result["lost_updates"].problems == []
    assert result["lost"] == [] and result["behind"] == []
    assert result["converged"] < 1.0
    assert result["takeover"] < 5.0
    assert {uri: len(ids) for uri, ids in result["dialogs"].items()} == {
        "sip:remote@example.com": 1}
    survivors = {name for name in result["published"] if name != result["killed"]}
    for name in survivors:  # all it decided, nothing another node decided
        assert result["published"][name] == result["decided"].get(name, 0)
    assert result["published"][result["killed"]] <= result["decided"][result["killed"]]
    assert result["tracebacks"] == 0
