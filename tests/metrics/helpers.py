"""Reading /metrics as Prometheus does: the text parsed by prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from config.env_secrets import Secret

#: A METRICS_TOKEN as settings would accept it (long, varied).
TOKEN = "m3tr1cs-T0ken-for-the-tests-0123456789abcdef"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition: (sample name, its labels) -> value. Fails on text Prometheus
    could not parse."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, frozenset(sample.labels.items())] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when the series is absent (a counter never incremented)."""
    return found.get((name, frozenset(labels.items())), 0.0)


def scrape(client, settings) -> Samples:
    """GET /metrics with the token, as Prometheus' bearer_token would."""
    settings.METRICS_TOKEN = Secret(TOKEN)
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    return samples(response.content.decode())
