"""What /metrics says, rendered by prometheus_client from what the hub recorded."""

from __future__ import annotations

from council.server.metrics import Histogram, Metrics
from council.server.openai_api import _usage


def test_a_histogram_counts_cumulatively_up_to_inf() -> None:
    histogram = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 7.0):
        histogram.observe(value)
    assert histogram.cumulative() == [("0.1", 2.0), ("1.0", 3.0), ("+Inf", 4.0)]
    assert histogram.total == 7.65


def test_the_exposition_names_requests_tokens_devices_and_seats() -> None:
    metrics = Metrics(
        seats=lambda: [
            {"name": "demo-1", "kind": "local", "state": "healthy"},
            {"name": "big", "kind": "local", "state": "failed"},
            {"name": "cloud", "kind": "remote", "state": "ready"},
        ],
        devices=lambda: [("dev1", 'Ann\'s "phone"')],
        open_streams=lambda: {"dev1": 2},
    )
    metrics.request(
        "lan", "/v1/chat/completions", method="POST", status=200, seconds=0.2, device="dev1"
    )
    metrics.first_token("demo-1", 0.003)
    metrics.usage("demo-1", "dev1", prompt=12, completion=30)
    text, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    lines = text.decode().splitlines()
    assert (
        'council_http_requests_total{listener="lan",method="POST",'
        'route="/v1/chat/completions",status="200"} 1.0'
    ) in lines
    assert (
        'council_http_request_duration_seconds_bucket{le="0.25",listener="lan",'
        'route="/v1/chat/completions"} 1.0'
    ) in lines
    assert 'council_v1_first_byte_seconds_bucket{le="0.0025",model="demo-1"} 0.0' in lines
    assert 'council_v1_first_byte_seconds_bucket{le="0.005",model="demo-1"} 1.0' in lines
    assert 'council_tokens_total{kind="prompt",model="demo-1"} 12.0' in lines
    assert 'council_device_tokens_total{device="dev1",kind="completion"} 30.0' in lines
    assert 'council_device_requests_total{device="dev1"} 1.0' in lines
    assert 'council_device_open_streams{device="dev1"} 2.0' in lines
    assert 'council_device_info{device="dev1",name="Ann\'s \\"phone\\""} 1.0' in lines
    assert 'council_seat_up{kind="local",seat="big",state="failed"} 0.0' in lines
    assert 'council_seat_up{kind="local",seat="demo-1",state="healthy"} 1.0' in lines
    assert 'council_seat_up{kind="remote",seat="cloud",state="ready"} 1.0' in lines


def test_token_counts_come_from_the_end_of_an_answer_streamed_or_not() -> None:
    streamed = (
        b'data: {"choices":[{"delta":{"content":"\\"prompt_tokens\\": 99"}}]}\n\n'
        b'data: {"choices":[],"timings":{"prompt_n":5,"predicted_n":17}}\n\n'
        b"data: [DONE]\n\n"
    )
    assert _usage(streamed) == (5, 17)
    whole = b'{"choices":[],"usage":{"completion_tokens":8,"prompt_tokens":3,"total_tokens":11}}'
    assert _usage(whole) == (3, 8)
    assert _usage(b'{"error":{"code":500}}') == (0, 0)
