"""The end-of-run table of the hostile-upstream suite.

The contract suite's Scoreboard (tests/harness/report.py) lays out the outcome of each case per
gateway; this adds, to the right of each row, what each gateway's client got, and under the
table the declared differences the rows refer to.
"""

import textwrap
from dataclasses import dataclass, field

from tests.harness.report import Scoreboard


@dataclass
class CaseBoard:
    outcomes: Scoreboard = field(default_factory=Scoreboard)
    got: dict[tuple[int, str], str] = field(default_factory=dict)
    declared: dict[tuple[int, str], str] = field(default_factory=dict)

    def record(
        self,
        number: int,
        title: str,
        gateway: str,
        outcome: str,
        got: str | None = None,
        declared: str | None = None,
    ) -> None:
        self.outcomes.record(number, title, gateway, outcome)
        if got is not None:
            self.got[(number, gateway)] = got
        if declared is not None:
            self.declared[(number, gateway)] = declared

    def render(self, legend_width: int = 100) -> list[str]:
        lines = self.outcomes.render()
        if not lines:
            return []
        gateways = self.outcomes.gateways
        numbers = sorted(self.outcomes.titles)
        reasons: list[str] = []
        for key in sorted(self.declared):
            if self.declared[key] not in reasons:
                reasons.append(self.declared[key])

        def cell(number: int, gateway: str) -> str:
            text = self.got.get((number, gateway), "-")
            reason = self.declared.get((number, gateway))
            return text if reason is None else f"{text} [d{reasons.index(reason) + 1}]"

        extra = [[f"{g}: client got" for g in gateways]]
        extra += [[cell(n, g) for g in gateways] for n in numbers]
        widths = [max(len(row[i]) for row in extra) for i in range(len(gateways))]
        base = max(len(line) for line in lines)

        def joined(line: str, cells: list[str]) -> str:
            right = "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
            return f"{line.ljust(base)}  {right}".rstrip()

        out = [joined(lines[0], extra[0]), joined(lines[1], ["-" * w for w in widths])]
        out += [joined(line, cells) for line, cells in zip(lines[2:], extra[1:], strict=True)]
        if reasons:
            out += [
                "",
                "declared differences ([hostile_deviations]: an xfailed case fails as declared; "
                "a passed one checked what that gateway does instead):",
            ]
            for index, reason in enumerate(reasons, start=1):
                who = sorted({g for (n, g), r in self.declared.items() if r == reason})
                text = f"[d{index}] {', '.join(who)}: {reason}"
                out += textwrap.wrap(text, legend_width, subsequent_indent="     ")
        return out
