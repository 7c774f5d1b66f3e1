"""``python -m edenkit <command> ...``: one CLI for every entry point of the kit, behind one error boundary.

Each command lives in its own module, which defines ``add_arguments(parser)`` and ``run(args) -> int``.
Modules are imported only when their command is used, so ``--help`` and ``doctor`` stay fast.

The error boundary (:func:`guarded`, also used by the ``data_download/*.py`` scripts): the kit's own
errors and the expected OS and data errors (a missing or unreadable file, a full disk, an image that
does not decode, a value out of range) end the command with one line ``error: ...`` on stderr and
exit code 2. ``--debug`` or ``EDENKIT_DEBUG=1`` prints the traceback as well. Anything else is a bug
and keeps Python's traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import re
import sys
import traceback
from collections.abc import Callable

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("edenkit.doctor", "versions, device, threads, data folders, GPU usability"),
    "notebooks": ("edenkit.notebooks", "run the tutorial notebooks headless with papermill"),
    "phantom": ("edenkit.phantom.cli", "generate, export or benchmark the procedural chest-radiograph phantom"),
    "pretrain": ("edenkit.pretrain", "Adam / MoCo-v2 pretraining with the coarse-to-fine curriculum"),
    "finetune": ("edenkit.transfer.finetune", "fine-tune a pretrained encoder for segmentation or classification"),
    "fewshot": ("edenkit.transfer.fewshot", "the few-shot segmentation protocol (3, 6, 12, 24 labelled images)"),
    "locality": ("edenkit.analysis.locality", "landmark embeddings: t-SNE, kNN accuracy, silhouette"),
    "compositionality": ("edenkit.analysis.compositionality", "cosine between E(whole) and the sum of E(parts)"),
    "seeds": ("edenkit.seed_study", "repeat pretraining with other seeds: how far notebooks 05-07's scores move"),
    "cache": ("edenkit.data.cache", "decode a real dataset once into a uint8 memmap cache"),
}

# The kit's own error types, by module: looked up in sys.modules when an error arrives, so this file
# imports none of them (an error of a module that was never imported cannot have been raised).
KIT_ERRORS: dict[str, tuple[str, ...]] = {
    "edenkit.config": ("ConfigError",),
    "edenkit.checkpoint": ("CheckpointError",),
    "edenkit.data.formats": ("DatasetError",),
    "edenkit.data.cache": ("CacheError",),
    "edenkit.data.download": ("DownloadError", "ManualStepRequired"),
    "edenkit.engine": ("NonFiniteLossError",),
    "PIL": ("UnidentifiedImageError",),  # a file that is not an image
    "tarfile": ("TarError",),  # includes FilterError (a refused archive member)
    "zipfile": ("BadZipFile",),
}
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# Raised by the OS or by the kit about a path the user gave: always a bad input, never a bug.
FILE_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)
_DATALOADER_WRAP = re.compile(r"Caught \w+ in DataLoader worker process \d+\.\s*Original Traceback", re.S)
_QUALIFIED_TYPE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Required): ")


def debug_requested(flag: bool = False) -> bool:
    """``--debug`` given, or ``EDENKIT_DEBUG`` set to anything but empty/0/false/no."""
    return flag or os.environ.get("EDENKIT_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def _kit_error_types() -> tuple[type[BaseException], ...]:
    found = []
    for module_name, names in KIT_ERRORS.items():
        module = sys.modules.get(module_name)
        found += [getattr(module, n) for n in names if module is not None and hasattr(module, n)]
    return tuple(found)


def _chain(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)


def _one_line(message: str) -> str:
    """The message on one line; for an error re-raised by a DataLoader worker, the original error's line."""
    if _DATALOADER_WRAP.search(message):
        lines = [line for line in message.splitlines() if line.strip()]
        message = _QUALIFIED_TYPE.sub("", lines[-1].strip()) if lines else message
    return " ".join(message.split())


def _os_message(error: OSError) -> str:
    """``[Errno 2] No such file or directory: 'x'`` -> ``No such file or directory: x``."""
    if error.strerror and error.filename is not None:
        return f"{error.strerror}: {error.filename}" + (f" -> {error.filename2}" if error.filename2 else "")
    return re.sub(r"^\[Errno \d+\] ", "", str(error))


def error_line(error: BaseException) -> str | None:
    """The one line to print for an expected error, or None for one that is a bug (keep the traceback)."""
    kit = _kit_error_types()
    for link in _chain(error):
        if isinstance(link, OSError) and link.errno in DISK_FULL:  # a full disk, however deep in the chain
            where = f" writing {link.filename}" if link.filename else ""
            return f"no space left on device{where}; free some space and rerun ({_one_line(str(error))})"
    if isinstance(error, kit) or isinstance(error, ValueError):
        return _one_line(str(error)) or type(error).__name__
    if isinstance(error, FILE_ERRORS) or (isinstance(error, OSError) and error.errno is not None):
        return _one_line(_os_message(error))
    return None


def guarded(run: Callable[[], int | None], debug: bool = False) -> int:
    """``run()``'s exit code, or 2 with one ``error: ...`` line on stderr for an expected error."""
    try:
        return int(run() or 0)
    except Exception as e:
        line = error_line(e)
        if line is None:
            raise
        if debug_requested(debug):
            traceback.print_exc()
        print(f"error: {line}", file=sys.stderr)
        return 2


def _top_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<17} {help_}" for name, (_, help_) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="python -m edenkit",
        description="edenkit: anatomy-aware self-supervised learning (Adam/Eve) for chest X-rays.",
        epilog=f"commands:\n{lines}\n\n`python -m edenkit <command> --help` for a command's options.\n"
               "Errors are one line; --debug (or EDENKIT_DEBUG=1) also prints the traceback.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error, not only its line")
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="command")
    parser.add_argument("--version", action="version", version=_version())
    return parser


def _version() -> str:
    from edenkit import __version__

    return f"edenkit {__version__}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = False
    while argv and argv[0] == "--debug":
        debug, argv = True, argv[1:]
    top = _top_parser()
    if not argv or argv[0] not in COMMANDS:
        top.parse_args(argv[:1] or ["--help"])  # prints help / error and exits
        return 2
    command, rest = argv[0], argv[1:]
    module_name, help_ = COMMANDS[command]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            print(f"edenkit: the command {command!r} is not available in this version", file=sys.stderr)
            return 2
        raise
    parser = argparse.ArgumentParser(prog=f"python -m edenkit {command}", description=help_)
    module.add_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error, not only its line")
    args = parser.parse_args(rest)
    return guarded(lambda: module.run(args), debug or args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
