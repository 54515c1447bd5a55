"""The peers part of the store contract (S17.1, S17.4): run on both engines like the rest.

A mixin (not collected by itself): ``tests/store/test_sqlite.py`` and ``test_postgres.py`` add
it to their contract classes, which provide ``new_store``.
"""

from __future__ import annotations

from grasp.store.peers import PeerRow


class PeerStoreContract:
    def test_s17_1_a_saved_peer_is_loaded_back(self, new_store) -> None:
        with new_store() as store:
            assert store.load_peers() == []
            row = PeerRow("wss://a.example", "announcement", 1000.0)
            store.save_peer(row)
            assert store.load_peers() == [row]

    def test_s17_4_health_updates_keep_the_discovery_time(self, new_store) -> None:
        with new_store() as store:
            store.save_peer(PeerRow("wss://a.example", "announcement", 1000.0))
            store.save_peer(PeerRow("wss://b.example", "bootstrap", 1001.0))
            later = PeerRow(
                "wss://a.example",
                "announcement",
                2000.0,
                last_error="dns: name does not resolve",
                failures=3,
                next_attempt_at=2040.5,
                naughty_until=45000.0,
                events_received=12,
                last_reconciled_at=1999.0,
            )
            store.save_peer(later)
            loaded = store.load_peers()
            assert [p.url for p in loaded] == ["wss://a.example", "wss://b.example"]
            assert loaded[0].discovered_at == 1000.0  # the first insert's
            assert loaded[0].last_error == "dns: name does not resolve"
            assert (loaded[0].failures, loaded[0].events_received) == (3, 12)
            assert (loaded[0].next_attempt_at, loaded[0].naughty_until) == (2040.5, 45000.0)
            assert loaded[0].last_reconciled_at == 1999.0

    def test_s17_1_peers_survive_reopening(self, new_store) -> None:
        with new_store() as store:
            store.save_peer(PeerRow("ws://127.0.0.1:9/", "bootstrap", 5.0, failures=1))
            assert store.load_peers()[0].failures == 1
