"""Every bad input ends a command with one line ``error: ...`` and exit code 2 (issue 15).

A table of probes, each run through the real entry (``edenkit.cli.main``, or a ``data_download``
script's ``main``) in this process: the exit code, the words the line must hold, and that stderr is
that one line, without a traceback. ``--debug`` / ``EDENKIT_DEBUG=1`` add the traceback.
"""

from __future__ import annotations

import errno
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from edenkit.checkpoint import CheckpointError, load_checkpoint
from edenkit.cli import main

ROOT = Path(__file__).parents[1]


class RunsCode:  # a pickle that would call os.system when loaded
    def __reduce__(self):
        return (os.system, ("echo this should never run",))


def _png(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (24, 24), dtype=np.uint8)).save(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Small broken inputs: PNGs that are not images, a truncated PNG, a listed file that is missing, ..."""
    root = tmp_path_factory.mktemp("bad_inputs")
    for i in range(1, 41):  # Shenzhen layout; none of the files is an image
        path = root / "not_images" / "shenzhen" / "CXR_png" / f"CHNCXR_{i:04d}_{i % 2}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"this is not a png")
        _png(root / "truncated" / "shenzhen" / "CXR_png" / path.name, i)
    whole = (root / "truncated" / "shenzhen" / "CXR_png" / "CHNCXR_0003_1.png").read_bytes()
    (root / "truncated" / "shenzhen" / "CXR_png" / "CHNCXR_0003_1.png").write_bytes(whole[: len(whole) // 2])
    xray14 = root / "missing" / "chestxray14"  # the lists name an image that is not on disk
    names = [f"{p:08d}_000.png" for p in range(1, 9)]
    for n, name in enumerate(names):
        _png(xray14 / "images" / name, n)
    (xray14 / "images" / names[1]).unlink()
    rows = [f"{n},No Finding,0,{int(n[:8])}" for n in names]
    (xray14 / "Data_Entry_2017_v2020.csv").write_text("\n".join(["Image Index,Finding Labels,Follow-up #,Patient ID",
                                                                  *rows]) + "\n")
    (xray14 / "train_val_list.txt").write_text("\n".join(names[:-2]) + "\n")
    (xray14 / "test_list.txt").write_text("\n".join(names[-2:]) + "\n")
    torch.save({"state_dict": RunsCode()}, root / "runs_code.pt")
    with tarfile.open(root / "symlink.tar", "w") as t:  # a member that links outside the target folder
        link = tarfile.TarInfo("images/JPCLN001.IMG")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
    return root


# (probe name, argv with {d} for the data folder, exit code, words the line holds, words it must not hold)
PROBES = [
    ("cache: truncated PNG", "cache --dataset shenzhen --data-root {d}/truncated --size 16 --workers 1",
     2, ["CHNCXR_0003_1.png", "truncated"], []),
    ("cache: missing file", "cache --dataset chestxray14 --data-root {d}/missing --size 16 --workers 1",
     2, ["missing", "00000002_000.png"], []),
    ("cache: no dataset folder", "cache --dataset shenzhen --data-root {d}/nowhere --size 16",
     2, ["CXR_png", "not found"], []),
    ("finetune: non-image PNG read in a DataLoader worker",
     "finetune --task shenzhen --data-root {d}/not_images --encoder random --out {d}/ft.json --seeds 0 "
     "--max-steps 1 --size 32 --batch-size 2 --num-workers 1",
     2, ["cannot read", "not_images/shenzhen/CXR_png/CHNCXR_", ".png"], ["DataLoader worker"]),
    ("finetune: checkpoint not found",
     "finetune --task phantom_findings --encoder x={d}/no_such.pt --out {d}/ft.json --seeds 0 --max-steps 1 "
     "--phantom-counts 2 2 2",
     2, ["checkpoint not found", "no_such.pt"], []),
    ("locality --encoder: refused checkpoint", "locality --encoder bad={d}/runs_code.pt --out {d}/loc.json --n 4",
     2, ["refused", "unsafe", "runs_code.pt"], ["weights_only", "will likely succeed"]),
    ("locality: landmark file not found", "locality --encoder random --landmarks {d}/no_such.csv --out {d}/loc.json",
     2, ["landmark file not found", "no_such.csv"], []),
]


def run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    code = main(argv)
    return code, capsys.readouterr().err.splitlines()


def check_one_line(code: int, lines: list[str], expected_code: int, words, absent=()) -> None:
    assert code == expected_code, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    for word in absent:
        assert word not in lines[0], (word, lines[0])


@pytest.mark.parametrize("name, argv, expected_code, words, absent", PROBES, ids=[p[0] for p in PROBES])
def test_bad_input_gives_one_line(name, argv, expected_code, words, absent, data, capsys, monkeypatch):
    monkeypatch.delenv("EDENKIT_DEBUG", raising=False)
    code, lines = run_cli(argv.format(d=data).split(), capsys)
    check_one_line(code, lines, expected_code, words, absent)


def _script(name: str, monkeypatch):
    scripts = ROOT / "data_download"
    monkeypatch.syspath_prepend(str(scripts))
    spec = importlib.util.spec_from_file_location(f"download_{name}", scripts / f"{name}.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


SCRIPT_PROBES = [
    ("--from not found", "jsrt", "--from {d}/no_such.zip", ["--from", "no_such.zip", "not found"]),
    ("--from an archive with a symlink member", "jsrt", "--from {d}/symlink.tar",
     ["symlink.tar", "refusing the member", "images/JPCLN001.IMG"]),
]


@pytest.mark.parametrize("name, script, argv, words", SCRIPT_PROBES, ids=[p[0] for p in SCRIPT_PROBES])
def test_download_scripts_give_one_line(name, script, argv, words, data, tmp_path, capsys, monkeypatch):
    module = _script(script, monkeypatch)
    monkeypatch.setattr(sys, "argv", [f"{script}.py", "--data-root", str(tmp_path), *argv.format(d=data).split()])
    code = module.main(module.steps, module.__doc__)
    check_one_line(code, capsys.readouterr().err.splitlines(), 2, words)


def test_debug_flag_and_variable_add_the_traceback(data, capsys, monkeypatch):
    argv = f"locality --encoder bad={data}/runs_code.pt --out {data}/loc.json --n 4".split()
    for how in ("flag", "variable"):
        if how == "variable":
            monkeypatch.setenv("EDENKIT_DEBUG", "1")
        code, lines = run_cli(["--debug", *argv] if how == "flag" else argv, capsys)
        assert code == 2 and lines[0].startswith("Traceback") and lines[-1].startswith("error: refused")
        assert "CheckpointError" in "\n".join(lines)


def test_python_m_edenkit_exits_2_with_one_line(data):
    proc = subprocess.run([sys.executable, "-m", "edenkit", "cache", "--dataset", "shenzhen", "--data-root",
                           str(data / "nowhere"), "--size", "16"], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "EDENKIT_DEBUG": ""})
    check_one_line(proc.returncode, proc.stderr.splitlines(), 2, ["CXR_png", "not found"])


def test_a_bug_keeps_its_traceback(capsys):
    def broken():
        raise KeyError("a bug, not a bad input")

    from edenkit.cli import guarded  # here, not at the top: the probes above also run against older code

    with pytest.raises(KeyError):
        guarded(broken)


def test_a_full_disk_is_named_however_deep_in_the_chain():
    from edenkit.cli import error_line  # here, not at the top: the probes above also run against older code

    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/runs/x/checkpoints/.last.pt.abc.tmp")
        except OSError as e:
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 1676416 vs 1676312") from e
    except RuntimeError as e:
        line = error_line(e)
    assert line.startswith("no space left on device writing /runs/x/checkpoints/.last.pt.abc.tmp")


def test_unsafe_checkpoint_is_refused_without_suggesting_weights_only_false(data):
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(data / "runs_code.pt")
    message = str(raised.value)
    assert "refused" in message and "unsafe" in message and "runs_code.pt" in message
    assert "weights_only" not in message and "likely succeed" not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # torch's advice is not chained
    torch.save({"w": torch.zeros(2)}, data / "plain.pt")
    broken = io.BytesIO((data / "plain.pt").read_bytes()[:40])
    (data / "truncated.pt").write_bytes(broken.getvalue())
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*truncated.pt"):
        load_checkpoint(data / "truncated.pt")
