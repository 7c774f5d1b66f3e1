import subprocess
import sys

from edenkit import cli
from edenkit.doctor import format_report, report


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "edenkit", "--help"], capture_output=True, text=True, check=True).stdout
    for name in cli.COMMANDS:
        assert name in out


def test_unknown_command_fails():
    proc = subprocess.run([sys.executable, "-m", "edenkit", "frobnicate"], capture_output=True, text=True)
    assert proc.returncode == 2 and "frobnicate" in proc.stderr


def test_every_registered_command_has_a_parser():
    for name in cli.COMMANDS:
        proc = subprocess.run([sys.executable, "-m", "edenkit", name, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
        assert "usage" in proc.stdout


def test_doctor_reports_versions_and_device(tmp_path):
    (tmp_path / "chestxray14").mkdir()
    info = report(tmp_path)
    assert info["device"] in ("cpu", "cuda")
    assert info["packages"]["torch"] != "missing"
    assert info["datasets_found"] == ["chestxray14"]
    assert "torch_threads" in format_report(info)
