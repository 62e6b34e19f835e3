from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from agents.schema import ConfigError, explain_unknown_key, from_dict, to_dict


@dataclass
class Inner:
    rate: float = 0.1
    mode: Literal["a", "b"] = "a"

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError(f"rate: must be >= 0, got {self.rate}")


@dataclass
class Outer:
    count: int = 1
    name: str | None = None
    flags: list[int] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)
    on: bool = False


def test_round_trip() -> None:
    obj = from_dict(Outer, {"count": 3, "inner": {"rate": 1, "mode": "b"}, "flags": [1, 2], "on": True})
    assert obj == Outer(count=3, flags=[1, 2], inner=Inner(rate=1.0, mode="b"), on=True)
    assert isinstance(obj.inner.rate, float)
    assert from_dict(Outer, to_dict(obj)) == obj


def test_whole_float_accepted_as_int() -> None:
    assert from_dict(Outer, {"count": 1e5}).count == 100000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cnt": 1}, "cnt: unknown key in the config (allowed: count, flags, inner, name, on)"),
        ({"inner": {"speed": 1}}, "inner.speed: unknown key in 'inner' (allowed: mode, rate)"),
        ({"count": "x"}, "count: expected an integer, got 'x'"),
        ({"count": True}, "count: expected an integer, got True"),
        ({"count": 1.5}, "count: expected an integer, got 1.5"),
        ({"on": "yes"}, "on: expected true or false, got 'yes'"),
        ({"name": 3}, "name: expected str | null, got 3"),
        ({"flags": [1, "a"]}, "flags[1]: expected an integer, got 'a'"),
        ({"inner": {"mode": "c"}}, "inner.mode: 'c' is not allowed (choose from 'a' | 'b')"),
        ({"inner": {"rate": -1}}, "inner.rate: must be >= 0, got -1.0"),
        ({"inner": 3}, "inner: expected a mapping, got 3"),
    ],
)
def test_errors_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, data)
    assert str(err.value) == message


def test_explain_unknown_key() -> None:
    assert explain_unknown_key(Outer, "inner.x: unknown key") == (
        "inner.x: unknown key in 'inner' (allowed: mode, rate)"
    )
    assert explain_unknown_key(Outer, "something else") == "something else"
