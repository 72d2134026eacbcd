"""One page with all the evidence on every gateway: `python -m scorecard` (`make report`).

It reads the latest result of the contract suite, the hostile suite, the load comparison and
the benchmark under results/, and writes results/report/index.html (self-contained: no network
needed to view it); `--readme` rewrites the README's marked result tables from the same results.
"""
