"""The page: every result's text escaped, reasons on hover and below, links relative."""

from html.parser import HTMLParser
from pathlib import Path

from scorecard.collect import Collector
from scorecard.page import render
from scorecard.tests import results


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    parser.close()
    return parser


def hostile_suite(root: Path) -> None:
    results.suite(
        root,
        "hostile",
        gateways=["gateway", results.HOSTILE_NAME],
        cases=[
            {
                "id": f"tests/hostile/test_x.py::test_{results.HOSTILE_NAME}",
                "group": f"1. {results.HOSTILE_NAME}",
                "results": {
                    "gateway": results.cell("pass"),
                    results.HOSTILE_NAME: results.cell("deviation", results.HOSTILE_REASON),
                },
            }
        ],
        machine={**results.MACHINE, "summary": results.HOSTILE_NAME},
    )


def test_markup_in_a_result_stays_text(tmp_path: Path) -> None:
    hostile_suite(tmp_path)
    page = parsed(render(Collector(tmp_path).collect(), tmp_path / "report", "now"))
    tags = [tag for tag, _ in page.tags]
    assert "script" not in tags
    assert "img" not in tags  # no chart in these results, and none injected
    assert all("onerror" not in attrs for _, attrs in page.tags)
    text = "".join(page.text)
    assert results.HOSTILE_NAME in text  # shown as written
    assert results.HOSTILE_REASON in text
    titles = [attrs.get("title") for tag, attrs in page.tags if tag == "td"]
    assert results.HOSTILE_REASON in titles  # the reason on hover, intact


def test_deviations_show_their_reason_on_hover_and_below(tmp_path: Path) -> None:
    results.suite(tmp_path, "contract")
    html = render(Collector(tmp_path).collect(), tmp_path / "report", "now")
    page = parsed(html)
    cells = {attrs.get("title"): attrs.get("class") for tag, attrs in page.tags if tag == "td"}
    assert cells["nginx: no /status counters"] == "deviation"
    assert cells["AssertionError: 502 != 400"] == "fail"
    assert cells["needs root"] == "skip"
    notes = [attrs.get("id") for tag, attrs in page.tags if tag == "li"]
    assert notes == ["contract-note-1", "contract-note-2", "contract-note-3"]
    assert "Declared deviations" in html
    assert "make loadtest" in html  # what produces the missing ones
    assert "exit status 1 (some failed)" in html
    assert (
        '<th>5. recovery (s)</th><td class="num">0.62 (no traffic)</td><td class="num">-</td>'
        in html
    )


def test_links_to_raw_results_are_relative(tmp_path: Path) -> None:
    results.suite(tmp_path, "contract")
    results.bench(tmp_path)
    results.loadtest(tmp_path)
    page = parsed(render(Collector(tmp_path).collect(), tmp_path / "report", "now"))
    links = [attrs["href"] for tag, attrs in page.tags if tag == "a" and attrs.get("href")]
    files = [link for link in links if link and not link.startswith("#")]
    assert "../contract/20261204T080000Z/results.json" in files
    assert "../bench/20261204T064600Z/results.md" in files
    assert "../loadtest/20261126T090000Z/summary.md" in files
    assert all(link and link.startswith("../") for link in files)
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert images
    assert all(src and src.startswith("data:image/png;base64,") for src in images)
