from dataclasses import dataclass, field

import pytest

from edenkit.config import ConfigError, load_config, parse_overrides


@dataclass
class Optim:
    lr: float = 0.03
    momentum: float = 0.9


@dataclass
class Demo:
    arch: str = "resnet18"
    epochs: int = 2
    stages: list[int] = field(default_factory=lambda: [0, 2, 4])
    pruner: bool = True
    threshold: float | None = 0.8
    optim: Optim = field(default_factory=Optim)


def test_overrides_are_parsed_as_yaml_and_nested():
    assert parse_overrides(["optim.lr=0.1", "stages=[0, 2]", "arch=resnet50", "threshold=null"]) == {
        "optim": {"lr": 0.1},
        "stages": [0, 2],
        "arch": "resnet50",
        "threshold": None,
    }


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 5\noptim:\n  lr: 0.5\n")
    cfg = load_config(Demo, path, ["optim.momentum=0.8", "stages=[4]"])
    assert cfg.epochs == 5 and cfg.optim.lr == 0.5 and cfg.optim.momentum == 0.8 and cfg.stages == [4]
    assert isinstance(cfg.optim.lr, float)


def test_int_is_accepted_for_float():
    assert load_config(Demo, None, ["optim.lr=1"]).optim.lr == 1.0


@pytest.mark.parametrize(
    "override, names",
    [
        ("optim.lrr=0.1", "optim.lrr"),
        ("epoch=3", "epoch"),
        ("epochs=three", "epochs"),
        ("pruner=1", "pruner"),
        ("stages=[0, x]", "stages[1]"),
        ("optim=3", "optim"),
    ],
)
def test_bad_keys_and_types_are_named(override, names):
    with pytest.raises(ConfigError, match=names.replace("[", r"\[").replace("]", r"\]")):
        load_config(Demo, None, [override])


def test_missing_file_and_bad_override_are_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(Demo, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not_a_packaged_config"):
        load_config(Demo, "not_a_packaged_config")
    with pytest.raises(ConfigError, match="key=value"):
        load_config(Demo, None, ["epochs"])
