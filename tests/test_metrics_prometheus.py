"""PrometheusExporter against the real prometheus-client: scraped over HTTP and parsed."""

from __future__ import annotations

import gc
import threading
import urllib.request
from collections.abc import Iterator

import pytest
import trio
import trio.testing

import trine
import trine.metrics
from _extras import require
from trine import _created

prometheus_client = require("prometheus_client", extra="prometheus")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402


@pytest.fixture
def registry() -> prometheus_client.CollectorRegistry:
    return prometheus_client.CollectorRegistry()


@pytest.fixture
def exporter(registry: prometheus_client.CollectorRegistry) -> Iterator[trine.metrics.Exporter]:
    exporter = trine.metrics.PrometheusExporter(registry=registry)
    yield exporter
    exporter.close()


@pytest.fixture
def server(registry: prometheus_client.CollectorRegistry) -> Iterator[str]:
    """prometheus-client's own HTTP server on a free loopback port; its URL."""
    httpd, thread = prometheus_client.start_http_server(0, addr="127.0.0.1", registry=registry)
    yield f"http://127.0.0.1:{httpd.server_port}/metrics"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


async def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """GET *url* in a thread (the scrape reads trine in the Trio thread) and parse it."""

    def get() -> str:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode()

    text = await trio.to_thread.run_sync(get)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def key(sample: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return sample, frozenset(labels.items())


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures

    async def __call__(self) -> str:
        if self.failures:
            self.failures -= 1
            raise OSError("down")
        return "ok"


async def test_a_known_program_scraped_over_http(
    exporter: trine.metrics.Exporter, server: str, autojump_clock: trio.testing.MockClock
) -> None:
    """Every kind of object, made inside register_new, is scraped with exact figures."""

    async def fail() -> None:
        raise OSError("down")

    async def load_many(keys: list[int]) -> list[int]:
        return [k * 10 for k in keys]

    async def node(*results: object) -> int:
        await trio.sleep(1)
        return 1

    async def broken() -> int:
        raise ValueError("no")

    release = trio.Event()
    with exporter.register_new():
        breaker = trine.CircuitBreaker(name="api", failure_threshold=2, reset_timeout=30)
        retry = trine.Retry(3, backoff=trine.Backoff.constant(0.5), name="fetch")
        bulkhead = trine.Bulkhead(2)
        rate = trine.RateLimiter(1, per=1.0)
        graph = trine.TaskGraph()
        pipe = trine.Pipeline.source(range(5)).map(lambda x: x * 2, name="double")
        async with (
            trine.AsyncCache[str, int](10) as cache,
            trine.SingleFlight() as flights,
            trine.Batcher(load_many, max_size=10, max_wait=0.1) as batcher,
            trio.open_nursery() as nursery,
        ):
            exporter.register(bulkhead, name="db")
            exporter.register(pipe, name="etl")
            exporter.register(graph, name="build")
            exporter.register(cache, name="users")
            for _ in range(2):
                with pytest.raises(OSError, match="down"):
                    await breaker.call(fail)
            with pytest.raises(trine.CircuitOpenError):
                await breaker.call(fail)
            assert await retry.call(Flaky(2)) == "ok"

            async def hold() -> None:
                async with bulkhead.hold():
                    await release.wait()

            nursery.start_soon(hold)
            assert rate.try_acquire()
            assert not rate.try_acquire()
            first = graph.add(node, name="first")
            graph.add(broken, name="broken")
            graph.add(node, deps=[first], name="second")
            await graph.run()
            await pipe.run()
            await cache.get_or_load("a", trio.sleep, 0)  # a miss, then
            await cache.get_or_load("a", trio.sleep, 0)  # a hit
            async with trio.open_nursery() as calls:
                for _ in range(3):
                    calls.start_soon(flights.call, "k", trio.sleep, 1)
                for k in (1, 2, 3):
                    calls.start_soon(batcher.load, k)
            await trio.testing.wait_all_tasks_blocked()
            samples = await scrape(server)
            release.set()

    assert samples[key("trine_breaker_state", name="api", state="open")] == 1
    assert samples[key("trine_breaker_state", name="api", state="closed")] == 0
    assert samples[key("trine_breaker_calls_total", name="api", outcome="failure")] == 2
    assert samples[key("trine_breaker_calls_total", name="api", outcome="rejected")] == 1
    assert (
        samples[key("trine_breaker_transitions_total", name="api", to="open", **{"from": "closed"})]
        == 1
    )
    # A breaker's own rejections are in its statistics, not counted again from its hook.
    assert not any(name == "trine_guard_rejections_total" for name, _ in samples)
    assert samples[key("trine_retry_calls_total", name="fetch")] == 1
    assert samples[key("trine_retry_attempts_total", name="fetch")] == 3
    assert samples[key("trine_retry_retries_total", name="fetch")] == 2
    assert samples[key("trine_retry_give_ups_total", name="fetch")] == 0
    assert samples[key("trine_retry_delay_seconds_count", name="fetch")] == 2
    assert samples[key("trine_retry_delay_seconds_sum", name="fetch")] == 1.0
    assert samples[key("trine_retry_delay_seconds", name="fetch", quantile="0.99")] == 0.5
    assert samples[key("trine_limiter_in_use", name="db", type="Bulkhead")] == 1
    assert samples[key("trine_limiter_limit", name="db", type="Bulkhead")] == 2
    assert samples[key("trine_limiter_admitted_total", name="db", type="Bulkhead")] == 1
    assert samples[key("trine_rate_limiter_admitted_total", name="", type="RateLimiter")] == 1
    assert samples[key("trine_rate_limiter_rejected_total", name="", type="RateLimiter")] == 1
    # fail_fast=False: "second" ran after "first"; "broken" failed alone.
    for status, count in (("succeeded", 2), ("failed", 1), ("skipped", 0), ("pending", 0)):
        assert samples[key("trine_graph_nodes", name="build", status=status)] == count, status
    assert samples[key("trine_pipeline_stage_items_in_total", name="etl", stage="double")] == 5
    assert samples[key("trine_pipeline_stage_items_out_total", name="etl", stage="double")] == 5
    assert (
        samples[key("trine_pipeline_stage_duration_seconds_count", name="etl", stage="double")] == 5
    )
    assert samples[key("trine_pipeline_running", name="etl")] == 0
    assert samples[key("trine_cache_requests_total", name="users", result="hit")] == 1
    assert samples[key("trine_cache_requests_total", name="users", result="miss")] == 1
    assert samples[key("trine_cache_loads_total", name="users", outcome="success")] == 1
    assert samples[key("trine_cache_size", name="users")] == 1
    assert samples[key("trine_single_flight_runs_total", name="")] == 1
    assert samples[key("trine_single_flight_shared_total", name="")] == 2
    assert samples[key("trine_batcher_batches_total", name="")] == 1
    assert samples[key("trine_batcher_batch_size_count", name="")] == 1
    assert samples[key("trine_batcher_batch_size_sum", name="")] == 3
    assert samples[key("trine_batcher_batch_size", name="", quantile="0.5")] == 3


def value(
    registry: prometheus_client.CollectorRegistry, sample: str, **labels: str
) -> float | None:
    return registry.get_sample_value(sample, labels)


async def test_the_exposition_of_one_bulkhead(
    exporter: trine.metrics.Exporter, registry: prometheus_client.CollectorRegistry
) -> None:
    """The names, help, types and labels, exactly as a scrape shows them."""
    bulkhead = trine.Bulkhead(10, max_waiting=5)
    exporter.register(bulkhead, name="db")
    async with bulkhead.hold():
        text = prometheus_client.generate_latest(registry).decode()
    assert text == (
        "# HELP trine_limiter_in_use slots (or weight) held now\n"
        "# TYPE trine_limiter_in_use gauge\n"
        'trine_limiter_in_use{name="db",type="Bulkhead"} 1.0\n'
        "# HELP trine_limiter_limit the capacity now (an AdaptiveLimiter's current limit)\n"
        "# TYPE trine_limiter_limit gauge\n"
        'trine_limiter_limit{name="db",type="Bulkhead"} 10.0\n'
        "# HELP trine_limiter_waiting tasks queued for a slot\n"
        "# TYPE trine_limiter_waiting gauge\n"
        'trine_limiter_waiting{name="db",type="Bulkhead"} 0.0\n'
        "# HELP trine_limiter_admitted_total calls let in (Bulkhead)\n"
        "# TYPE trine_limiter_admitted_total counter\n"
        'trine_limiter_admitted_total{name="db",type="Bulkhead"} 1.0\n'
        "# HELP trine_limiter_rejected_total calls refused with BulkheadFull (Bulkhead)\n"
        "# TYPE trine_limiter_rejected_total counter\n"
        'trine_limiter_rejected_total{name="db",type="Bulkhead"} 0.0\n'
    )


async def test_register_holds_the_object_until_unregister(
    exporter: trine.metrics.Exporter, registry: prometheus_client.CollectorRegistry
) -> None:
    """A registered object is exported even if nothing else holds it, until unregistered."""
    exporter.register(trine.SingleFlight(), name="a")
    gc.collect()
    assert value(registry, "trine_single_flight_runs_total", name="a") == 0
    semaphore = trine.WeightedSemaphore(4)
    exporter.register(semaphore, name="w")
    exporter.register(semaphore, name="renamed")
    assert value(registry, "trine_limiter_limit", name="w", type="WeightedSemaphore") is None
    assert value(registry, "trine_limiter_limit", name="renamed", type="WeightedSemaphore") == 4
    exporter.unregister(semaphore)
    assert value(registry, "trine_limiter_limit", name="renamed", type="WeightedSemaphore") is None
    with pytest.raises(ValueError, match=r"^obj is not registered with this exporter: "):
        exporter.unregister(semaphore)


async def test_a_policy_registers_its_guards_under_its_name(
    registry: prometheus_client.CollectorRegistry, autojump_clock: trio.testing.MockClock
) -> None:
    """register(policy): unnamed guards take the Policy's name; its hook counts its events."""
    exporter = trine.metrics.PrometheusExporter(registry=registry)
    breaker = trine.CircuitBreaker(name="own")
    policy = trine.Policy(
        retry=trine.Retry(2, backoff=trine.Backoff.constant(1.0)),
        breaker=breaker,
        limiter=trine.Bulkhead(1),
        timeout=5,
        fallback=lambda error: "fallback",
        name="api",
        hooks=[exporter.hook],
    )
    exporter.register(policy)

    async def slow() -> str:
        await trio.sleep(10)
        return "late"

    assert await policy.call(slow) == "fallback"
    assert value(registry, "trine_retry_attempts_total", name="api") == 2
    assert value(registry, "trine_breaker_calls_total", name="own", outcome="failure") == 2
    assert value(registry, "trine_limiter_admitted_total", name="api", type="Bulkhead") == 2
    assert value(registry, "trine_guard_timeouts_total", name="api") == 2
    assert value(registry, "trine_guard_fallbacks_total", name="api") == 1
    exporter.unregister(policy)
    assert value(registry, "trine_retry_attempts_total", name="api") is None
    assert value(registry, "trine_guard_fallbacks_total", name="api") == 1  # events stay
    exporter.close()


async def test_a_policy_hook_counts_rejections_by_guard(
    exporter: trine.metrics.Exporter, registry: prometheus_client.CollectorRegistry
) -> None:
    """CallRejected from a Policy's bulkhead is counted under the Policy's name and the guard."""
    bulkhead = trine.Bulkhead(1)
    policy = trine.Policy(limiter=bulkhead, name="api", hooks=[exporter.hook])
    release = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(policy.call, release.wait)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trine.BulkheadFull):
            await policy.call(release.wait)
        release.set()
    assert value(registry, "trine_guard_rejections_total", name="api", guard="bulkhead") == 1


async def test_register_new_covers_the_block_and_the_tasks_started_in_it(
    exporter: trine.metrics.Exporter, registry: prometheus_client.CollectorRegistry
) -> None:
    """Objects made in the block's task or its children are registered; others are not."""
    made: list[object] = []

    async def make(started: trio.Event | None = None) -> None:
        if started is not None:
            await started.wait()
        made.append(trine.PriorityLimiter(1))

    go = trio.Event()
    original = trine.PriorityLimiter.__init__
    assert _created.watchers == 0
    async with trio.open_nursery() as outside:
        outside.start_soon(make, go)  # started before the block: not covered
        await trio.testing.wait_all_tasks_blocked()
        with exporter.register_new():
            assert _created.watchers == 1
            inside = trine.PriorityLimiter(1)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(make)
            go.set()
            await trio.testing.wait_all_tasks_blocked()
        after = trine.PriorityLimiter(1)
    # the constructors themselves are never replaced: they call the seam
    assert trine.PriorityLimiter.__init__ is original
    assert _created.watchers == 0
    # inside and the child's limiter: two unnamed limiters, added up.
    assert value(registry, "trine_limiter_limit", name="", type="PriorityLimiter") == 2
    made.clear()
    del inside, after
    gc.collect()
    assert value(registry, "trine_limiter_limit", name="", type="PriorityLimiter") is None


async def test_register_new_keeps_the_hooks_it_was_given(
    exporter: trine.metrics.Exporter, registry: prometheus_client.CollectorRegistry
) -> None:
    """A user's hooks stay, in order, before the exporter's."""
    seen: list[object] = []
    with exporter.register_new():
        breaker = trine.CircuitBreaker(name="b", failure_threshold=1, hooks=[seen.append])
        with pytest.raises(TypeError, match=r"^hooks must be a sequence of callables"):
            trine.CircuitBreaker(hooks=1)  # type: ignore[arg-type]
    assert breaker.name == "b"

    async def fail() -> None:
        raise OSError("down")

    with pytest.raises(OSError, match="down"):
        await breaker.call(fail)
    assert seen == [trine.CircuitStateChanged("b", "closed", "open")]
    assert (
        value(
            registry,
            "trine_breaker_transitions_total",
            **{"name": "b", "from": "closed", "to": "open"},
        )
        == 1
    )


async def test_nested_blocks_of_two_exporters_each_register(
    exporter: trine.metrics.Exporter, registry: prometheus_client.CollectorRegistry
) -> None:
    """Blocks nest; each exporter sees what was made inside its own block."""
    other_registry = prometheus_client.CollectorRegistry()
    other = trine.metrics.PrometheusExporter(registry=other_registry)
    original = trine.Bulkhead.__init__
    with exporter.register_new():
        first = trine.Bulkhead(1)
        with other.register_new():
            assert _created.watchers == 2
            both = trine.Bulkhead(2)
        assert _created.watchers == 1
    assert _created.watchers == 0
    assert trine.Bulkhead.__init__ is original
    assert value(registry, "trine_limiter_limit", name="", type="Bulkhead") == 3
    assert value(other_registry, "trine_limiter_limit", name="", type="Bulkhead") == 2
    assert first is not both
    other.close()


async def test_objects_sharing_a_name_add_up(
    exporter: trine.metrics.Exporter, registry: prometheus_client.CollectorRegistry
) -> None:
    """Counts sum, a summary keeps count and sum only, a gauge that cannot add up is left out."""
    a, b = trine.Bulkhead(1), trine.Bulkhead(2)
    exporter.register(a, name="pool")
    exporter.register(b, name="pool")
    assert value(registry, "trine_limiter_limit", name="pool", type="Bulkhead") == 3

    async def fail() -> None:
        raise OSError("down")

    breakers = [trine.CircuitBreaker(failure_rate=0.9, minimum_calls=2) for _ in range(2)]
    for breaker in breakers:
        exporter.register(breaker, name="svc")
        await breaker.call(trio.sleep, 0)
        with pytest.raises(OSError, match="down"):
            await breaker.call(fail)
    assert value(registry, "trine_breaker_calls_total", name="svc", outcome="failure") == 2
    exporter.register(breakers[0], name="alone")
    assert value(registry, "trine_breaker_failure_rate", name="alone") == 0.5
    exporter.register(breakers[1], name="alone")
    assert value(registry, "trine_breaker_failure_rate", name="alone") is None

    async def double(x: int) -> int:
        return 2 * x

    pipes = [trine.Pipeline.source(range(n)).map(double, name="d") for n in (1, 2)]
    for pipe in pipes:
        exporter.register(pipe, name="p")
        await pipe.run()
    assert value(registry, "trine_pipeline_stage_duration_seconds_count", name="p", stage="d") == 3
    assert (
        value(
            registry, "trine_pipeline_stage_duration_seconds", name="p", stage="d", quantile="0.5"
        )
        is None
    )


def test_a_scrape_after_the_run_reads_what_can_be_read() -> None:
    """Collected outside Trio after the run: a pipeline's figures; a breaker's need the clock."""
    registry = prometheus_client.CollectorRegistry()
    holder: list[object] = []

    async def main() -> None:
        exporter = trine.metrics.PrometheusExporter(registry=registry)
        pipe = trine.Pipeline.source(range(3)).map(lambda x: x, name="id")
        exporter.register(pipe, name="p")
        breaker = trine.CircuitBreaker(failure_threshold=1)
        exporter.register(breaker, name="b")
        await pipe.run()
        with pytest.raises(OSError, match="down"):
            await breaker.call(Flaky(1))  # now open: reading it needs the run's clock
        holder.append(exporter)

    trio.run(main)
    assert value(registry, "trine_pipeline_stage_items_out_total", name="p", stage="id") == 3
    assert value(registry, "trine_breaker_calls_total", name="b", outcome="success") is None


def test_an_event_in_a_later_run_switches_the_scrape_to_that_run(
    registry: prometheus_client.CollectorRegistry, server: str
) -> None:
    """A hook event in a second trio.run makes a scrape over HTTP read in that run (it kept
    the first, finished run and read outside Trio, leaving the open breaker out)."""
    exporter = trine.metrics.PrometheusExporter(registry=registry)
    breaker = trine.CircuitBreaker(name="api", failure_threshold=1, hooks=[exporter.hook])

    async def first() -> None:
        exporter.register(breaker)  # remembers this run

    async def second() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        with pytest.raises(OSError, match="down"):
            await breaker.call(Flaky(1))  # CircuitStateChanged reaches the hook in this run
        return await scrape(server)

    trio.run(first)
    samples = trio.run(second)
    exporter.close()
    assert samples[key("trine_breaker_state", name="api", state="open")] == 1
    assert samples[key("trine_breaker_calls_total", name="api", outcome="failure")] == 1


async def test_a_scrape_from_another_thread_reads_in_the_trio_thread(
    exporter: trine.metrics.Exporter, registry: prometheus_client.CollectorRegistry
) -> None:
    """statistics() are read in the Trio thread, even when the scrape runs in another."""
    threads: list[threading.Thread] = []

    class Spy(trine.Bulkhead):  # type: ignore[misc]  # Bulkhead is final to users, not to a test
        def statistics(self) -> trine.BulkheadStatistics:
            threads.append(threading.current_thread())
            return super().statistics()

    exporter.register(Spy(1), name="spy")
    text = await trio.to_thread.run_sync(prometheus_client.generate_latest, registry)
    assert b'trine_limiter_limit{name="spy",type="Spy"} 1.0' in text
    assert threads
    assert threads == [threading.main_thread()] * len(threads)


def test_one_exporter_per_registry(registry: prometheus_client.CollectorRegistry) -> None:
    """A second exporter on a registry is refused by prometheus-client (duplicate names)."""
    first = trine.metrics.PrometheusExporter(registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        trine.metrics.PrometheusExporter(registry=registry)
    first.close()
    first.close()
    trine.metrics.PrometheusExporter(registry=registry).close()


def test_the_default_registry_is_prometheus_clients() -> None:
    """PrometheusExporter() joins prometheus_client.REGISTRY, as the client's own metrics do."""
    exporter = trine.metrics.PrometheusExporter()
    try:
        exporter.register(trine.Bulkhead(3), name="default")
        assert (
            value(
                prometheus_client.REGISTRY, "trine_limiter_limit", name="default", type="Bulkhead"
            )
            == 3
        )
    finally:
        exporter.close()
    assert (
        value(prometheus_client.REGISTRY, "trine_limiter_limit", name="default", type="Bulkhead")
        is None
    )


def test_bad_arguments_are_refused_by_name(exporter: trine.metrics.Exporter) -> None:
    """Type errors name the argument and say what is taken."""
    with pytest.raises(
        TypeError, match=r"^registry must be a prometheus_client.CollectorRegistry, got 1$"
    ):
        trine.metrics.PrometheusExporter(registry=1)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^obj must be a trine object with metrics \(CircuitBreaker, "
    ):
        exporter.register(object())
    with pytest.raises(TypeError, match=r"^name must be a str or None, got 1$"):
        exporter.register(trine.Bulkhead(1), name=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^obj must be an object register\(\) takes, got 1$"):
        exporter.unregister(1)


def test_without_prometheus_client_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ImportError names the extra."""
    monkeypatch.setitem(__import__("sys").modules, "prometheus_client", None)
    with pytest.raises(
        ImportError,
        match=r"^PrometheusExporter needs prometheus-client: pip install 'trine\[prometheus\]'$",
    ):
        trine.metrics.PrometheusExporter()


async def test_the_new_figures_in_a_real_scrape(
    exporter: trine.metrics.Exporter, server: str, autojump_clock: trio.testing.MockClock
) -> None:
    """A scrape shows rate-limiter waits and give-ups by reason, with the names given."""
    limiter = trine.SlidingWindowLimiter(1, 2.0, name="search")
    retry = trine.Retry(1, on=OSError, name="lookup", hooks=[exporter.hook])
    exporter.register(limiter)
    exporter.register(retry)
    await limiter.acquire()
    await limiter.acquire()  # waits 2 s

    async def wrong() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        await retry.call(wrong)
    samples = await scrape(server)
    labels = {"name": "search", "type": "SlidingWindowLimiter"}
    assert samples[key("trine_rate_limiter_waited_total", **labels)] == 1
    assert samples[key("trine_rate_limiter_wait_time_seconds_total", **labels)] == 2.0
    assert samples[key("trine_retry_gave_up_total", name="lookup", reason="not_retryable")] == 1


async def test_a_resource_pool_scraped_over_http(
    exporter: trine.metrics.Exporter, server: str, autojump_clock: trio.testing.MockClock
) -> None:
    """A pool's figures: resources by state, what was created and failed, acquire's duration."""
    attempts = 0

    async def connect() -> object:
        nonlocal attempts
        attempts += 1
        await trio.sleep(0.5)
        if attempts == 1:
            raise ConnectionError("refused")
        return object()

    async with trine.ResourcePool(connect, max_size=2, name="db") as pool:
        exporter.register(pool)
        with pytest.raises(ConnectionError):
            async with pool.acquire():
                pass
        async with pool.acquire():
            samples = await scrape(server)
            assert samples[key("trine_pool_in_use", name="db")] == 1
        samples = await scrape(server)
    assert samples[key("trine_pool_idle", name="db")] == 1
    assert samples[key("trine_pool_in_use", name="db")] == 0
    assert samples[key("trine_pool_created_total", name="db")] == 1
    assert samples[key("trine_pool_failures_total", name="db", call="connect")] == 1
    assert samples[key("trine_pool_failures_total", name="db", call="close")] == 0
    assert samples[key("trine_pool_acquire_duration_seconds_count", name="db")] == 1
    assert samples[key("trine_pool_acquire_duration_seconds_sum", name="db")] == 0.5
