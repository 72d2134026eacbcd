"""Tables as text: markdown for summary files, aligned plain text for a terminal."""

from collections.abc import Collection, Iterable, Sequence


def _check(header: Sequence[str], rows: list[Sequence[str]]) -> None:
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} cells, the header {len(header)}: {row!r}")


def _markdown_row(cells: Sequence[str]) -> str:
    # An empty cell is one space wide: `| |`, as a table's blank corner is usually written.
    return "|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|"


def markdown_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], *, right: Collection[int] = ()
) -> list[str]:
    """The lines of a markdown table; columns whose index is in `right` are right-aligned."""
    body = list(rows)
    _check(header, body)
    rule = "|" + "".join("---:|" if i in right else "---|" for i in range(len(header)))
    return [_markdown_row(header), rule, *(_markdown_row(row) for row in body)]


def plain_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a table for a terminal: columns padded to align, dashes under the header."""
    body = list(rows)
    _check(header, body)
    every = [list(header), *body]
    widths = [max(len(row[i]) for row in every) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in every
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines
