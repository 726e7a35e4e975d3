"""Prometheus text exposition without a client library: a few counters and one histogram.

The app runs on a single event loop per process, so plain integers need no locks.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def _sample(name: str, value: float, **labels: object) -> str:
    pairs = ",".join(f'{key}="{label}"' for key, label in labels.items())
    return f"{name}{'{' + pairs + '}' if pairs else ''} {value}"


class Metrics:
    """Request counts per route and status, prediction latency and predicted rows."""

    def __init__(self) -> None:
        """Start every series at zero."""
        self.requests: Counter[tuple[str, int]] = Counter()
        self.bucket_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.rows = 0

    def observe_request(self, route: str, status: int) -> None:
        """Count one finished request."""
        self.requests[route, status] += 1

    def observe_prediction(self, seconds: float, rows: int) -> None:
        """Record the latency and size of one successful prediction."""
        self.bucket_counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds
        self.rows += rows

    def render(self, ready: bool, in_flight: int) -> str:
        """The text format Prometheus scrapes."""
        lines = [
            "# HELP model_ready 1 once the ONNX session is loaded.",
            "# TYPE model_ready gauge",
            f"model_ready {int(ready)}",
            "# HELP predictions_in_flight Predictions received and not yet answered.",
            "# TYPE predictions_in_flight gauge",
            f"predictions_in_flight {in_flight}",
            "# HELP http_requests_total Requests by route and status code.",
            "# TYPE http_requests_total counter",
        ]
        lines += [
            _sample("http_requests_total", count, route=route, status=status)
            for (route, status), count in sorted(self.requests.items())
        ]
        lines += [
            "# HELP prediction_rows_total Rows predicted.",
            "# TYPE prediction_rows_total counter",
            f"prediction_rows_total {self.rows}",
            "# HELP prediction_seconds Time spent validating and predicting a batch.",
            "# TYPE prediction_seconds histogram",
        ]
        cumulative = 0
        for bound, count in zip((*LATENCY_BUCKETS, "+Inf"), self.bucket_counts, strict=True):
            cumulative += count
            lines.append(_sample("prediction_seconds_bucket", cumulative, le=bound))
        lines += [
            f"prediction_seconds_sum {self.latency_sum:.6f}",
            f"prediction_seconds_count {cumulative}",
        ]
        return "\n".join(lines) + "\n"
