"""Measuring the assistant: ``metrics`` (every metric, defined once), ``errors`` (what a run does
when the model fails), ``suite`` (the eval suite and its gate: ``assistant eval``), ``squad``
(retrieval and answer benchmarks on SQuAD-format data: ``assistant bench squad``) and ``latency``
(speed and memory of answering: ``assistant bench latency``)."""
