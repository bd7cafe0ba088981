"""Bad input to the new commands: one readable line and exit 2."""

from __future__ import annotations

import pytest

from node.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["features", "--region", "r"], "--redis-url (or EDGERANK_REDIS_URL) is required"),
        (["features", "--redis-url", "http://x", "--nats-url", "nats://h:1"], "--redis-url: must be a redis:// URL"),
        (["bench", "freshness", "--events", "3"], "--events must be at least 10"),
        (["bench", "freshness", "--nats-url", "redis://h:1"], "--nats-url: must be a nats:// URL"),
        (["train", "--from-exposures"], "--from-exposures needs --nats-url"),
        (["train", "--student-gate", "1"], "--student-gate must be in [0, 1), got 1.0"),
        (["train", "--pool-size", "5"], "--pool-size must be at least 10, got 5"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("EDGERANK_REDIS_URL", "EDGERANK_NATS_URL"):
        monkeypatch.delenv(var, raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("edgerank: error: ") and message in err


def test_the_default_student_gate_is_the_pipelines() -> None:
    from trainer.cli.train import STUDENT_GATE
    from trainer.pipeline import TrainConfig

    assert TrainConfig().student_gate == STUDENT_GATE
