from __future__ import annotations

from pathlib import Path

import pytest

from node.settings import Settings, SettingsError


def test_defaults() -> None:
    s = Settings.load(env={})
    assert s.port == 50051 and s.host == "127.0.0.1" and s.bundle_dir == Path("bundles")
    assert s.budget_ms == 50 and s.default_pool_size == 500 and s.max_num_results == 1000
    assert (s.quota_ann, s.quota_session, s.quota_trending, s.quota_fresh) == (
        0.7,
        0.1,
        0.1,
        0.1,
    )


def test_flag_beats_env_beats_default() -> None:
    env = {"EDGERANK_PORT": "6000", "EDGERANK_WORKERS": "3", "EDGERANK_EPSILON": "0.25"}
    s = Settings.load({"port": "7000", "workers": None}, env=env)
    assert s.port == 7000  # flag
    assert s.workers == 3  # env (a None flag means "not given")
    assert s.epsilon == 0.25
    assert s.max_per_genre == 3  # default


@pytest.mark.parametrize(("name", "default"), [("lock_bundle", True), ("lock_code", False)])
def test_the_locks_are_booleans(name: str, default: bool) -> None:
    env = f"EDGERANK_{name.upper()}"
    assert getattr(Settings.load(env={}), name) is default
    assert getattr(Settings.load({name: str(not default)}, env={}), name) is not default
    assert getattr(Settings.load(env={env: "1" if not default else "0"}), name) is not default
    with pytest.raises(SettingsError, match=f"{env}: not a boolean"):
        Settings.load(env={env: "sometimes"})


def test_log_level_is_normalised() -> None:
    assert Settings.load(env={"EDGERANK_LOG_LEVEL": "debug"}).log_level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EDGERANK_PORT": "abc"}, "EDGERANK_PORT: not an integer: 'abc'"),
        ({"EDGERANK_BUDGET_MS": "fast"}, "EDGERANK_BUDGET_MS: not a number: 'fast'"),
        ({"EDGERANK_EPSILON": "nan"}, "EDGERANK_EPSILON: not a finite number"),
        ({"EDGERANK_PORT": "70000"}, "EDGERANK_PORT: must be in [0, 65535]"),
        ({"EDGERANK_EPSILON": "1.5"}, "EDGERANK_EPSILON: must be in [0, 1]"),
        ({"EDGERANK_WORKERS": "0"}, "EDGERANK_WORKERS: must be at least 1"),
        (
            {"EDGERANK_MAX_NUM_RESULTS": "6000"},
            "EDGERANK_MAX_NUM_RESULTS: must not exceed max_pool_size",
        ),
        ({"EDGERANK_LOG_LEVEL": "loud"}, "EDGERANK_LOG_LEVEL: must be one of"),
        (
            {"EDGERANK_DEFAULT_POOL_SIZE": "9000"},
            "EDGERANK_DEFAULT_POOL_SIZE: must not exceed max_pool_size",
        ),
    ],
)
def test_bad_env_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as e:
        Settings.load(env=env)
    assert str(e.value).startswith(message)


def test_bad_flag_names_the_flag() -> None:
    with pytest.raises(SettingsError, match=r"^--max-per-genre: not an integer: 'x'$"):
        Settings.load({"max_per_genre": "x"}, env={})
    with pytest.raises(SettingsError, match=r"^--port: must be in"):
        Settings.load({"port": -1}, env={})


def test_unknown_override_is_refused() -> None:
    with pytest.raises(SettingsError, match="unknown settings: colour"):
        Settings.load({"colour": "blue"}, env={})


def test_settings_are_frozen() -> None:
    s = Settings.load(env={})
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]
