import pytest

from toolkit.tables import markdown_table, plain_table


class TestMarkdown:
    def test_header_rule_and_rows(self) -> None:
        lines = markdown_table(["gateway", "requests"], [["ours", "10"], ["nginx", "12"]])

        assert lines == [
            "| gateway | requests |",
            "|---|---|",
            "| ours | 10 |",
            "| nginx | 12 |",
        ]

    def test_a_blank_corner_and_right_aligned_figures(self) -> None:
        lines = markdown_table(["", "ours", "nginx"], [["p50", "1 ms", "2 ms"]], right=[1, 2])

        assert lines == ["| | ours | nginx |", "|---|---:|---:|", "| p50 | 1 ms | 2 ms |"]

    def test_a_row_of_the_wrong_width_is_refused(self) -> None:
        with pytest.raises(ValueError, match="a row has 1 cells, the header 2"):
            markdown_table(["a", "b"], [["x"]])


class TestPlain:
    def test_columns_align_and_a_rule_follows_the_header(self) -> None:
        lines = plain_table(["scenario", "ours"], [["1. balance", "passed 3"], ["2. x", "-"]])

        assert lines == [
            "scenario    ours",
            "----------  --------",
            "1. balance  passed 3",
            "2. x        -",
        ]
