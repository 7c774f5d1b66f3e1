"""Shared plumbing of the ``data_download/*.py`` scripts (the download logic is edenkit.data.download).

Each script: ``python data_download/<dataset>.py --data-root DATA [--from PATH]``. Automatic sources
are fetched, verified and extracted; manual ones print the exact steps and, given ``--from`` (the
archive or folder you downloaded), unpack or link it into the standard layout. Every script ends by
opening the dataset with the kit's loader and printing what it found.

Errors go through the kit's error boundary (:func:`edenkit.cli.guarded`): one line ``error: ...`` and
exit code 2, the traceback only with ``--debug`` or ``EDENKIT_DEBUG=1``. A step a person must do
prints its instructions and exits with 2 as well.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from edenkit.cli import guarded
from edenkit.data.datasets import DatasetError, open_dataset
from edenkit.data.download import (
    ChecksumStore,
    DownloadError,
    ManualStepRequired,
    RemoteFile,
    download,
    extract,
)

# Set by main() from --trust-unverified: accept (and record) a download whose length nothing could check.
TRUST_UNVERIFIED = False


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data-root", default=os.environ.get("EDENKIT_DATA", "datasets"),
                   help="where datasets live (default: $EDENKIT_DATA or ./datasets)")
    p.add_argument("--from", dest="source", default=None,
                   help="an archive or folder you downloaded by hand, to unpack/link into the layout")
    p.add_argument("--keep-archives", action="store_true", help="keep downloaded archives after extraction")
    p.add_argument("--trust-unverified", action="store_true",
                   help="accept a download that has no published checksum or size and came without a length")
    p.add_argument("--debug", action="store_true", help="print the traceback of an error, not only its line")
    return p


def fetch(candidates: Sequence[RemoteFile], folder: Path, checksums: ChecksumStore) -> Path:
    """Download the first candidate URL that answers (mirrors of one file), verified."""
    errors = []
    for remote in candidates:
        try:
            return download(remote, folder, checksums=checksums, trust_unverified=TRUST_UNVERIFIED)
        except (DownloadError, ManualStepRequired) as e:
            if isinstance(e, DownloadError) and "does not match" in str(e):
                raise  # a checksum mismatch is never "try the next mirror"
            errors.append(f"  {remote.url}: {e}")
    raise DownloadError(f"no source answered for {candidates[0].name}:\n" + "\n".join(errors))


def unpack(archive: Path, target: Path, keep: bool) -> None:
    extract(archive, target)
    if not keep:
        archive.unlink()


def arrange(source: str | Path, target: Path, folders: dict[str, str | None], files: Sequence[str] = ()) -> None:
    """Put a hand-downloaded archive or folder into the standard layout under ``target``.

    ``folders`` maps each wanted folder name to a file pattern used when no folder of that name
    exists (e.g. ``{"images": "*.IMG"}``); ``files`` are single files found by name. An archive is
    extracted and its parts moved into place; a folder is left where it is and its parts are
    symlinked, so hundreds of gigabytes are never copied.
    """
    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise FileNotFoundError(f"--from {source}: not found")
    target.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        base, put = source, _link
    else:
        base, put = target / ".unpacked", shutil.move
        extract(source, base)
    for name, pattern in folders.items():
        if (target / name).exists():
            continue
        found = _find_folder(base, name, pattern)
        if found is None:
            raise DatasetError(f"{source}: found no folder {name!r}" + (f" nor files {pattern}" if pattern else ""))
        put(str(found), str(target / name))
    for name in files:
        if not (target / name).exists():
            found = next(iter(sorted(base.rglob(name))), None)
            if found is None:
                raise DatasetError(f"{source}: found no file {name!r}")
            put(str(found), str(target / name))
    if base == target / ".unpacked":
        shutil.rmtree(base)
    print(f"arranged {source.name} into {target}")


def _find_folder(base: Path, name: str, pattern: str | None) -> Path | None:
    named = [p for p in [base, *sorted(base.rglob(name))] if p.is_dir() and p.name == name]
    if named:
        return named[0]
    if pattern:
        match = next(iter(sorted(base.rglob(pattern))), None)
        return match.parent if match else None
    return None


def _link(found: str, destination: str) -> None:
    Path(destination).symlink_to(Path(found), target_is_directory=Path(found).is_dir())


def check(name: str, root: Path, splits: Sequence[str], **options) -> None:
    """Open each split with the kit's loader and print the counts (the layout's acceptance test)."""
    for split in splits:
        dataset = open_dataset(name, root, split, size=None, on_error="skip", **options)
        extra = f", {len(dataset.skipped)} missing" if dataset.skipped else ""
        print(f"{name} {split}: {len(dataset)} images{extra}")


def manual_steps(name: str, instructions: str, folders: dict[str, str | None], files: Sequence[str] = (), *,
                 splits: Sequence[str], script: str, **options) -> Callable[[argparse.Namespace, Path], None]:
    """The ``steps`` of a dataset that a person must download: arrange ``--from``, else say how.

    ``folders`` and ``files`` are the standard layout under ``<data root>/<name>`` (see
    :func:`arrange`: folder name -> file pattern to find it by when it has another name; single
    files by name). When the layout is incomplete after arranging, :class:`ManualStepRequired`
    carries ``instructions`` with ``{target}`` and ``{script}`` filled in; when it is complete,
    :func:`check` opens ``splits`` with the kit's loader (``options`` go to it).
    """
    def steps(args: argparse.Namespace, root: Path) -> None:
        target = root / name
        if args.source:
            arrange(args.source, target, folders, files)
        if not all((target / part).exists() for part in [*folders, *files]):
            raise ManualStepRequired(instructions.format(target=target, script=script))
        check(name, root, splits, **options)

    return steps


def main(steps: Callable[[argparse.Namespace, Path], None], description: str,
         configure: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    """Run a script's steps behind the kit's error boundary; a manual step prints its instructions."""
    global TRUST_UNVERIFIED
    p = parser(description)
    if configure:
        configure(p)
    args = p.parse_args()
    TRUST_UNVERIFIED = args.trust_unverified

    def run() -> int:
        root = Path(args.data_root).expanduser()
        root.mkdir(parents=True, exist_ok=True)
        try:
            steps(args, root)
        except ManualStepRequired as e:  # instructions over several lines, not an error
            print(f"\nMANUAL STEP NEEDED\n{e}", file=sys.stderr)
            return 2
        return 0

    return guarded(run, args.debug)
