import argparse
import importlib
import subprocess
import sys

import pytest

from edenkit import cli
from edenkit.doctor import format_report, report


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "edenkit", "--help"], capture_output=True, text=True, check=True).stdout
    for name in cli.COMMANDS:
        assert name in out


def test_unknown_command_fails():
    proc = subprocess.run([sys.executable, "-m", "edenkit", "frobnicate"], capture_output=True, text=True)
    assert proc.returncode == 2 and "frobnicate" in proc.stderr


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_registered_command_has_a_parser(name):
    # In-process: importing each module in a fresh interpreter would cost a torch import per command.
    module_name, help_ = cli.COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"python -m edenkit {name}", description=help_)
    module.add_arguments(parser)
    assert "usage" in parser.format_help()
    assert callable(module.run)


def test_doctor_reports_versions_and_device(tmp_path):
    (tmp_path / "chestxray14").mkdir()
    info = report(tmp_path)
    assert info["device"] in ("cpu", "cuda")
    assert info["packages"]["torch"] != "missing"
    assert info["datasets_found"] == ["chestxray14"]
    assert "torch_threads" in format_report(info)
