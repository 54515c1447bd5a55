"""Actor-level end to end: 50 identifiers over 3 domains through the whole system (S4–S6).

Fetches yield like network calls (a gevent sleep) and overlap; time is a FakeClock that the
test moves in small steps, waiting each time until the system is quiet, so the mock's own
per-domain counters (in-flight and start times) are exact and prove the limits were kept.
"""

from actors.fakes import MockSyncContext

DOMAINS = ("one.example", "two.example", "three.example")
MAX_CONCURRENT, MAX_PER_WINDOW, WINDOW = 2, 4, 0.25


def _ctx(clock):
    ctx = MockSyncContext(clock=clock.now).with_fetch_delay(0.005)
    for i in range(50):
        identifier = f"repo{i:02d}"
        # Every identifier lists all three domains; its objects live on one of them, and
        # every fifth one needs objects split across two servers.
        urls = [f"https://{d}/{identifier}.git" for d in DOMAINS]
        ctx.with_urls(urls, identifier=identifier)
        ctx.with_needed_oids([f"{identifier}-a", f"{identifier}-b"], identifier=identifier)
        ctx.url_provides(urls[i % 3], [f"{identifier}-a", f"{identifier}-b"])
        if i % 5 == 0:
            ctx.url_provides(urls[(i + 1) % 3], [f"{identifier}-b"])
    return ctx


def test_fifty_identifiers_over_three_domains_all_complete_within_limits(start_system, fake_clock):
    ctx = _ctx(fake_clock)
    h = start_system(
        ctx,
        clock=fake_clock,
        max_concurrent=MAX_CONCURRENT,
        max_per_minute=MAX_PER_WINDOW,
        rate_window=WINDOW,
    )
    for i in range(50):
        h.system.enqueue_sync(f"repo{i:02d}", "synced")  # 0.5 s (S4.2)
    h.settle()
    for _ in range(2000):
        if not ctx.pending_identifiers():
            break
        h.advance(0.05)
    assert ctx.pending_identifiers() == []
    assert ctx.released == {f"repo{i:02d}" for i in range(50)}
    for domain in DOMAINS:
        assert 0 < ctx.max_in_flight[domain] <= MAX_CONCURRENT, domain
        assert ctx.max_requests_in_window(domain, WINDOW) <= MAX_PER_WINDOW, domain
    assert max(ctx.max_in_flight.values()) == MAX_CONCURRENT  # the limit was actually reached
