"""``python -m edenkit <command> ...``: one CLI for every entry point of the kit.

Each command lives in its own module, which defines ``add_arguments(parser)`` and ``run(args) -> int``.
Modules are imported only when their command is used, so ``--help`` and ``doctor`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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
    "cache": ("edenkit.data.cache", "decode a real dataset once into a uint8 memmap cache"),
}


def _top_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<17} {help_}" for name, (_, help_) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="python -m edenkit",
        description="edenkit: anatomy-aware self-supervised learning (Adam/Eve) for chest X-rays.",
        epilog=f"commands:\n{lines}\n\n`python -m edenkit <command> --help` for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="command")
    parser.add_argument("--version", action="version", version=_version())
    return parser


def _version() -> str:
    from edenkit import __version__

    return f"edenkit {__version__}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
    args = parser.parse_args(rest)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
