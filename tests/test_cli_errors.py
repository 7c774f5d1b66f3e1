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

import edenkit
from edenkit.checkpoint import CheckpointError, load_checkpoint
from edenkit.cli import main


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
    (root / "a_file").write_text("an --out below this cannot be created")
    with tarfile.open(root / "symlink.tar", "w") as t:  # a member that links outside the target folder
        link = tarfile.TarInfo("images/JPCLN001.IMG")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
    return root


# A pretraining run of seconds: one stage, two epochs of two steps on 8 phantoms of 32 px
TINY = ("data.phantom_train=8 data.phantom_val=8 batch_size=4 model.queue_size=16 curriculum.stages=[0] "
        "curriculum.epochs=[2] data.image_size=32 data.view_size=16")
REAL = "data.dataset=shenzhen batch_size=4 model.bn_splits=1 curriculum.stages=[0] curriculum.epochs=[1]"

# (probe name, argv with {d} for the data folder and {t} for a fresh folder, exit code, words the line
# holds, words it must not hold)
PROBES = [
    ("pretrain: optim.lr=-1", "pretrain --config ci --out {t}/run optim.lr=-1", 2, ["optim.lr", "-1", "> 0"], []),
    ("pretrain: model.momentum=-5", "pretrain --config ci --out {t}/run model.momentum=-5",
     2, ["model.momentum", "-5", "[0, 1)"], []),
    ("pretrain: model.temperature=0", "pretrain --config ci --out {t}/run model.temperature=0",
     2, ["model.temperature", "> 0"], []),
    ("pretrain: one image per BN chunk", "pretrain --config ci --out {t}/run batch_size=2 model.bn_splits=2",
     2, ["model.bn_splits", "1 image per BatchNorm chunk", ">= 2"], []),
    ("pretrain: optim.momentum=1", "pretrain --config ci --out {t}/run optim.momentum=1",
     2, ["optim.momentum", "[0, 1)"], []),
    ("pretrain: optim.weight_decay<0", "pretrain --config ci --out {t}/run optim.weight_decay=-0.1",
     2, ["optim.weight_decay", ">= 0"], []),
    ("pretrain: model.queue_size=0", "pretrain --config ci --out {t}/run model.queue_size=0",
     2, ["model.queue_size", "positive multiple", "16"], []),
    ("pretrain: prune_threshold=-1", "pretrain --config ci --out {t}/run prune_threshold=-1",
     2, ["prune_threshold", "(-1, 1]"], []),
    ("pretrain: curriculum.epochs=[0,1,1]", "pretrain --config ci --out {t}/run curriculum.epochs=[0,1,1]",
     2, ["curriculum.epochs", "positive"], []),
    ("pretrain: data.view_size=4", "pretrain --config ci --out {t}/run data.view_size=4",
     2, ["data.view_size", ">= 8"], []),
    ("pretrain: data.image_size too small for n=4", "pretrain --config ci --out {t}/run data.image_size=3",
     2, ["data.image_size", "4 x 4 parts"], []),
    ("pretrain: --out cannot be created", "pretrain --config ci --out {d}/a_file/run",
     2, ["--out", "a_file/run", "cannot create"], []),
    ("pretrain: non-image PNG read in a DataLoader worker",
     "pretrain --config ci --out {t}/run --data-root {d}/not_images data.num_workers=1 " + REAL,
     2, ["cannot read", "not_images/shenzhen/CXR_png/CHNCXR_", ".png"], ["DataLoader worker"]),
    ("pretrain: truncated PNG", "pretrain --config ci --out {t}/run --data-root {d}/truncated " + REAL
     + " data.image_size=32 data.view_size=16", 2, ["CHNCXR_0003_1.png", "truncated"], []),
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
def test_bad_input_gives_one_line(name, argv, expected_code, words, absent, data, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("EDENKIT_DEBUG", raising=False)
    code, lines = run_cli(argv.format(d=data, t=tmp_path).split(), capsys)
    check_one_line(code, lines, expected_code, words, absent)


def _script(name: str, monkeypatch):
    scripts = Path(edenkit.__file__).parents[1] / "data_download"  # beside the edenkit under test
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


# -- pretraining: --out checked first, a full disk, a torn log line, stale temporary files ---------------

def _no_set_up(monkeypatch):
    import edenkit.pretrain

    def refuse(*args, **kwargs):
        raise KeyError("data set-up started before --out was checked")  # a bug: not caught by the boundary

    monkeypatch.setattr(edenkit.pretrain, "open_images", refuse)


def test_out_is_checked_before_any_set_up(data, tmp_path, capsys, monkeypatch):
    import shutil
    import tempfile
    from collections import namedtuple

    _no_set_up(monkeypatch)
    code, lines = run_cli(f"pretrain --config ci --out {data}/a_file/run".split(), capsys)
    check_one_line(code, lines, 2, ["--out", "cannot create the folder"])

    real_mkstemp = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if "checkpoints" in str(dir):
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    with monkeypatch.context() as m:  # as root, a chmod would not stop the write: fake the refusal
        m.setattr(tempfile, "mkstemp", read_only)
        code, lines = run_cli(f"pretrain --config ci --out {tmp_path}/read_only".split(), capsys)
    check_one_line(code, lines, 2, ["--out", "read_only", "not writable", "Permission denied"])

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(2**30, 2**30 - 2**20, 2**20))
    code, lines = run_cli(f"pretrain --config ci --out {tmp_path}/full".split(), capsys)
    check_one_line(code, lines, 2, ["--out", "1.0 MiB free", "checkpoints need about", "MiB"])


def _pretrain(out, capsys, *extra):
    return run_cli(["pretrain", "--config", "ci", "--out", str(out), *extra, *TINY.split()], capsys)


def test_a_full_disk_while_writing_last_pt_keeps_the_previous_one(tmp_path, capsys, monkeypatch):
    real_save = torch.save
    calls = []

    def save_on_a_full_disk(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and "optimizer" in obj:  # a last.pt (its temporary file has no name here)
            calls.append(obj["epoch"])
            if len(calls) == 2:  # the second epoch's last.pt: part of it is written, then the disk is full
                f.write(b"\0" * 1000)
                try:
                    raise OSError(errno.ENOSPC, "No space left on device")
                except OSError as e:
                    raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 1676416 "
                                       "vs 1676312") from e
        return real_save(obj, f, *args, **kwargs)

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(torch, "save", save_on_a_full_disk)
        code, lines = _pretrain(out, capsys)
    check_one_line(code, lines, 2, ["no space left on device", "last.pt", "is intact", "--resume auto"])
    assert load_checkpoint(out / "checkpoints" / "last.pt")["epoch"] == 1  # the last good checkpoint
    assert [p.name for p in (out / "checkpoints").iterdir() if p.name.endswith(".tmp")] == []
    code, lines = _pretrain(out, capsys, "--resume", "auto")
    assert code == 0 and load_checkpoint(out / "checkpoints" / "last.pt")["epoch"] == 2


def test_resume_drops_a_torn_log_line_and_removes_stale_temporary_files(tmp_path, capsys):
    from edenkit.run_folder import read_log

    out = tmp_path / "run"
    assert _pretrain(out, capsys)[0] == 0
    records = read_log(out)
    with (out / "log.jsonl").open("a") as f:
        f.write('{"split": "train", "stage": 0, "n": 0, "ep')  # a kill in the middle of an append
    stale = [out / "checkpoints" / ".last.pt.k1ll3d.tmp", out / ".summary.json.k1ll3d.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    code, lines = _pretrain(out, capsys, "--resume", "auto")
    assert code == 0, lines
    assert sum("torn last line" in line for line in lines) == 1 and not any("Traceback" in line for line in lines)
    assert any("removed 2 temporary file(s)" in line for line in lines)
    assert not any(path.exists() for path in stale)
    assert read_log(out) == records  # the torn line is gone from the file, the whole records stay
