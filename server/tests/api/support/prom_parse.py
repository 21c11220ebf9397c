"""Parses a /metrics exposition read from standard input with the
Prometheus project's own Python parser and prints its samples as JSON.

Usage: prom_parse.py openmetrics|text < exposition
The OpenMetrics parser is strict (it refuses, for one, a missing `# EOF`
or a counter without `_total`); the classic text parser is Prometheus's.
"""
import json
import sys

if sys.argv[1] == "openmetrics":
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append(
            {"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value}
        )
json.dump(samples, sys.stdout)
