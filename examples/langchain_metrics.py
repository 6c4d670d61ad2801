"""LangChain on pmm_memo, with OpenTelemetry metrics: offline, no API key.

    pip install -e '.[langchain,opentelemetry]' opentelemetry-sdk
    python3 examples/langchain_metrics.py

langchain-core's own fake chat model stands in for a real one (the cache does not care
which model answers). Metrics go to OpenTelemetry's in-memory reader here; in production
you would hand `enable_metrics` your MeterProvider with an OTLP or Prometheus exporter.
"""

from __future__ import annotations

import time

from langchain_core.globals import set_llm_cache
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from pmm_memo.integrations.langchain import PmmMemoCache
from pmm_memo.integrations.opentelemetry import disable_metrics, enable_metrics

reader = InMemoryMetricReader()
provider = MeterProvider(metric_readers=[reader])
enable_metrics(provider)

# Semantic mode: a reworded prompt for the same model gets the stored answer.
cache = PmmMemoCache(tenant="pmm_llm", ttl=3600, semantic_threshold=0.9)
set_llm_cache(cache)
chat = FakeListChatModel(responses=["Use the 'Forgot password' link.", "Paris."], sleep=0.2)
other_model = FakeListChatModel(responses=["(another model's answer)"], sleep=0.2)

for label, model, prompt in [
    ("first question (miss)", chat, "How do I reset my password?"),
    ("same question (exact hit)", chat, "How do I reset my password?"),
    ("reworded (semantic hit)", chat, "how do i reset my password"),
    ("other model (never shared)", other_model, "How do I reset my password?"),
    ("unrelated (miss)", chat, "What is the capital of France?"),
]:
    start = time.perf_counter()
    answer = model.invoke(prompt).content
    print(f"{label:<30} {1000 * (time.perf_counter() - start):8.1f} ms  -> {answer}")

print("\ncache_info:", cache.cache_info()[:4])
data = reader.get_metrics_data()
assert data is not None
print("\nOpenTelemetry metrics (attributes: tenant and function, never text or users):")
for rm in data.resource_metrics:
    for sm in rm.scope_metrics:
        for metric in sm.metrics:
            for point in metric.data.data_points:
                shown = getattr(point, "value", None)
                if shown is None:
                    shown = f"count={point.count} sum={point.sum:.6f}"
                lookup = point.attributes.get("pmm_memo.lookup", "")
                print(f"  {metric.name:<32} {lookup:<9} {shown}")
disable_metrics()
provider.shutdown()
