"""Prometheus metrics, served at `/metrics` on the localhost listener only.

Recording happens on every request, so it is a few dict operations in plain Python; the
`prometheus_client` package (tens of milliseconds to import) is loaded only when something
scrapes, and renders what was recorded through a custom collector, so start-up does not pay for
it. Label values are bounded: routes are the app's route templates, models are seat names and
devices are paired-device ids and model files are catalog files' digests (the URL's 16 hex
characters), never anything taken verbatim from a request.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from council.deliberation.registry import TAKES_PROMPTS

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)
FIRST_BYTE_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
LOCAL = "local"  # the device label of requests from the laptop itself


@dataclass(slots=True)
class Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        running, out = 0, []
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class Metrics:
    """What the hub has served: requests, latency, tokens, and each device's share."""

    def __init__(
        self,
        seats: Callable[[], list[dict[str, object]]] = list,
        devices: Callable[[], list[tuple[str, str]]] = list,
        open_streams: Callable[[], dict[str, int]] = dict,
    ) -> None:
        self.seats, self.devices, self.open_streams = seats, devices, open_streams
        self.requests: Counter[tuple[str, str, str, str]] = Counter()
        self.durations: dict[tuple[str, str], Histogram] = {}
        self.first_byte: dict[str, Histogram] = {}
        self.tokens: Counter[tuple[str, str]] = Counter()
        self.device_requests: Counter[str] = Counter()
        self.device_tokens: Counter[tuple[str, str]] = Counter()
        self.model_bytes: Counter[str] = Counter()

    def request(
        self, listener: str, route: str, *, method: str, status: int, seconds: float, device: str
    ) -> None:
        self.requests[(listener, route, method, str(status))] += 1
        key = (listener, route)
        if (histogram := self.durations.get(key)) is None:
            histogram = self.durations[key] = Histogram(LATENCY_BUCKETS)
        histogram.observe(seconds)
        self.device_requests[device] += 1

    def first_token(self, model: str, seconds: float) -> None:
        if (histogram := self.first_byte.get(model)) is None:
            histogram = self.first_byte[model] = Histogram(FIRST_BYTE_BUCKETS)
        histogram.observe(seconds)

    def usage(self, model: str, device: str, prompt: int, completion: int) -> None:
        for kind, count in (("prompt", prompt), ("completion", completion)):
            if count:
                self.tokens[(model, kind)] += count
                self.device_tokens[(device, kind)] += count

    def model_bytes_sent(self, file: str, count: int) -> None:
        """`count` bytes of the model file with digest `file` went out under /models/…."""
        self.model_bytes[file] += count

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self))
        return generate_latest(registry), CONTENT_TYPE_LATEST


class _Collector:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        m = self.metrics
        requests = CounterMetricFamily(
            "council_http_requests",
            "HTTP requests served.",
            labels=["listener", "route", "method", "status"],
        )
        for request, count in sorted(m.requests.items()):
            requests.add_metric(list(request), count)
        yield requests
        durations = HistogramMetricFamily(
            "council_http_request_duration_seconds",
            "Time from request to the end of the response.",
            labels=["listener", "route"],
        )
        for (listener, route), histogram in sorted(m.durations.items()):
            durations.add_metric([listener, route], histogram.cumulative(), histogram.total)
        yield durations
        first = HistogramMetricFamily(
            "council_v1_first_byte_seconds",
            "Time from a /v1 request to the first byte of its answer.",
            labels=["model"],
        )
        for model, histogram in sorted(m.first_byte.items()):
            first.add_metric([model], histogram.cumulative(), histogram.total)
        yield first
        tokens = CounterMetricFamily(
            "council_tokens", "Tokens processed through /v1, by model.", labels=["model", "kind"]
        )
        for pair, count in sorted(m.tokens.items()):
            tokens.add_metric(list(pair), count)
        yield tokens
        device_requests = CounterMetricFamily(
            "council_device_requests",
            "Requests per paired device ('local': this laptop).",
            labels=["device"],
        )
        for device, count in sorted(m.device_requests.items()):
            device_requests.add_metric([device], count)
        yield device_requests
        device_tokens = CounterMetricFamily(
            "council_device_tokens", "Tokens per paired device.", labels=["device", "kind"]
        )
        for pair, count in sorted(m.device_tokens.items()):
            device_tokens.add_metric(list(pair), count)
        yield device_tokens
        model_bytes = CounterMetricFamily(
            "council_model_bytes_sent",
            "Bytes of model files sent under /models, by digest.",
            labels=["file"],
        )
        for file, count in sorted(m.model_bytes.items()):
            model_bytes.add_metric([file], count)
        yield model_bytes
        streams = GaugeMetricFamily(
            "council_device_open_streams", "Requests a device has open now.", labels=["device"]
        )
        for device, count in sorted(m.open_streams().items()):
            streams.add_metric([device], count)
        yield streams
        info = GaugeMetricFamily(
            "council_device_info", "Paired devices and their names.", labels=["device", "name"]
        )
        for device, name in m.devices():
            info.add_metric([device, name], 1)
        yield info
        seats = GaugeMetricFamily(
            "council_seat_up",
            "1 when a seat takes prompts now: a healthy engine, an enabled remote, a joined tab.",
            labels=["seat", "kind", "state"],
        )
        for seat in m.seats():
            state = str(seat.get("state"))
            up = 1 if state in TAKES_PROMPTS else 0
            seats.add_metric([str(seat.get("name")), str(seat.get("kind")), state], up)
        yield seats


class MetricsMiddleware:
    """Pure ASGI: times each request and records it once its response has ended."""

    def __init__(self, app: ASGIApp, metrics: Metrics, listener: str) -> None:
        self.app, self.metrics, self.listener = app, metrics, listener

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.request(
                self.listener,
                route_label(scope),
                method=scope["method"],
                status=status,
                seconds=seconds,
                device=device_label(scope),
            )


def route_label(scope: Scope) -> str:
    """The matched route's template (`/api/conversations/{id}`), never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "unmatched"


def device_label(scope: Scope) -> str:
    device: Any = (scope.get("state") or {}).get("device")
    return str(device.id) if device is not None else LOCAL
