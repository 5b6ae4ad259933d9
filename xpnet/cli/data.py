"""``xpnet data NAME``: download a dataset's files, verify them and say where they are."""

from __future__ import annotations

import argparse
import pathlib

from ..data.download import DOWNLOADS, cache_dir, download


def cmd_data(args: argparse.Namespace) -> int:
    """``xpnet data NAME``: download and verify a dataset's files, say where they are."""
    folder = download(args.name, args.dir, args.mirror, log=lambda line: print(f"{args.name}: {line}", flush=True))
    print(f"{args.name}: {len(DOWNLOADS[args.name]['files'])} files in {folder}")
    if args.dir is not None and pathlib.Path(args.dir).resolve() != cache_dir(args.name).resolve():
        print(f"use them with: xpnet train --dataset {args.name} --data-path {folder}")
    else:
        print(f"xpnet train --dataset {args.name} (and load_{args.name.replace('-', '_')}()) find them there")
    return 0
