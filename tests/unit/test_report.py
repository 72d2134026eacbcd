"""The end-of-run table puts each scenario's outcomes for each gateway side by side."""

from tests.harness.report import Scoreboard, summarize


class TestSummarize:
    def test_all_passed_is_a_count(self) -> None:
        assert summarize(["passed", "passed"]) == "passed 2"

    def test_failures_come_first_and_shout(self) -> None:
        assert summarize(["passed", "failed", "xfailed"]) == "FAILED 1, XFAILED 1, PASSED 1"

    def test_nothing_ran_is_a_dash(self) -> None:
        assert summarize([]) == "-"


class TestScoreboard:
    def test_rows_are_scenarios_and_columns_gateways_in_first_seen_order(self) -> None:
        board = Scoreboard()
        board.record(2, "killed", "gateway", "passed")
        board.record(1, "balance", "nginx", "failed")
        board.record(1, "balance", "gateway", "passed")
        board.measure("nginx", "recovery (s)", "4.0")

        lines = board.render()

        assert lines[0].split() == ["scenario", "gateway", "nginx"]
        assert lines[2].split() == ["1.", "balance", "passed", "1", "FAILED", "1"]
        assert lines[3].split() == ["2.", "killed", "passed", "1", "-"]
        assert lines[4].split() == ["recovery", "(s)", "-", "4.0"]

    def test_empty_board_renders_nothing(self) -> None:
        assert Scoreboard().render() == []
