"""Command line: ``python -m explorer`` / ``gpt-explorer``.

    gpt-explorer [CHECKPOINT] [--corpus F] [--meta M]     open the GUI (the bundled model by default)
    gpt-explorer inspect --prompt TEXT [...]              trace a prompt, print tokens, top-k, LayerNorm stats
    gpt-explorer train --corpus FILE --out PATH [...]     train a model
    gpt-explorer export --prompt TEXT --out DIR [...]     write every figure headlessly

Each sub-command lives in ``explorer/cli/<name>_cmd.py`` with ``register(subparsers)``; importing
this module stays light (no torch, no Qt) so ``--help`` is instant.
"""
from __future__ import annotations

import argparse
import sys

SUBCOMMANDS = ("inspect", "train", "export")


def build_parser() -> argparse.ArgumentParser:
    from .cli import export_cmd, inspect_cmd, train_cmd

    parser = argparse.ArgumentParser(
        prog="gpt-explorer",
        description="GPT Explorer: see how a small character-level GPT works. "
                    "Without a sub-command, opens the desktop app.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{inspect,train,export}")
    inspect_cmd.register(sub)
    train_cmd.register(sub)
    export_cmd.register(sub)
    return parser


def build_gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpt-explorer",
        description="Open the GPT Explorer desktop app. Sub-commands: "
                    + ", ".join(SUBCOMMANDS) + " (see `gpt-explorer COMMAND --help`).",
    )
    parser.add_argument("checkpoint", nargs="?", help="checkpoint to open (default: the bundled model)")
    parser.add_argument("--corpus", help="training text of a lecture-format checkpoint (its vocabulary)")
    parser.add_argument("--meta", help="nanoGPT meta.pkl, if it is not beside the checkpoint")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    if argv and argv[0] in ("-h", "--help"):
        build_gui_parser().print_help()
        print()
        build_parser().print_help()
        return 0
    args = build_gui_parser().parse_args(argv)
    from .gui.app import main as gui_main

    return int(gui_main(checkpoint=args.checkpoint, corpus=args.corpus, meta=args.meta) or 0)


if __name__ == "__main__":
    sys.exit(main())
