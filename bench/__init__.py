"""Benchmarks for issue 5: `make bench` (python -m bench.run_all); figures in bench/RESULTS.md.

Nothing here is imported by the bot. The scripts reuse the test suite's fake Slack, SMTP server
and signed-request helpers (tests/), and cache generated practices and loaded databases under
bench/.cache/ (not in git).
"""
