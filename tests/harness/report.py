"""The end-of-run table: each scenario's result for each gateway, side by side."""

from collections import defaultdict
from dataclasses import dataclass, field

import pytest

from toolkit.tables import plain_table


@dataclass
class Scoreboard:
    titles: dict[int, str] = field(default_factory=dict)
    outcomes: dict[tuple[int, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    measurements: dict[tuple[str, str], str] = field(default_factory=dict)
    gateways: list[str] = field(default_factory=list)

    def record(self, scenario: int, title: str, gateway: str, outcome: str) -> None:
        """One test's final outcome: passed, failed, error, skipped, xfailed or xpassed."""
        self.titles[scenario] = title
        self.outcomes[(scenario, gateway)].append(outcome)
        if gateway not in self.gateways:
            self.gateways.append(gateway)

    def measure(self, gateway: str, name: str, value: str) -> None:
        self.measurements[(name, gateway)] = value
        if gateway not in self.gateways:
            self.gateways.append(gateway)

    def render(self) -> list[str]:
        if not self.titles:
            return []
        rows = []
        for number in sorted(self.titles):
            cells = [summarize(self.outcomes.get((number, g), [])) for g in self.gateways]
            rows.append([f"{number:>2}. {self.titles[number]}", *cells])
        names = sorted({name for name, _ in self.measurements})
        for name in names:
            rows.append(
                [f"    {name}", *(self.measurements.get((name, g), "-") for g in self.gateways)]
            )
        return plain_table(["scenario", *self.gateways], rows)


def summarize(outcomes: list[str]) -> str:
    """'passed 3' when all passed; otherwise each outcome with its count, worst first."""
    if not outcomes:
        return "-"
    order = ["failed", "error", "xpassed", "xfailed", "skipped", "passed"]
    counts = {o: outcomes.count(o) for o in order if o in outcomes}
    text = ", ".join(f"{o} {n}" for o, n in counts.items())
    return text.upper() if "failed" in counts or "error" in counts else text


SCOREBOARD = pytest.StashKey[Scoreboard]()
