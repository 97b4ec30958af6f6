"""``hotline knowledge import FILE`` (JSON or CSV, by its ending: entries matched by title
are updated, the others added, all or nothing) and ``hotline knowledge export [--format
json|csv] [--output FILE]`` (standard output by default)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from knowledge import files
from knowledge.entries import KnowledgeError
from knowledge.service import KnowledgeService

ACTIONS = ("import", "export")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("file", nargs="?", default="", help="import: a .json or .csv file")
    parser.add_argument("--format", choices=files.FORMATS, default="json", help="export")
    parser.add_argument("--output", default="", help="export: a file instead of standard output")


async def knowledge_command(service: KnowledgeService, args: argparse.Namespace) -> int:
    try:
        if args.action == "import":
            if not args.file:
                print("knowledge import: name a .json or .csv file", file=sys.stderr)
                return 2
            path = Path(args.file)
            records = await asyncio.to_thread(files.read, path)
            report = await service.import_entries(records, actor="cli")
            print(f"{path}: {report.created} added, {report.updated} updated")
            return 0
        text = files.render(await service.export(), args.format)
        if args.output:
            await asyncio.to_thread(Path(args.output).write_text, text, "utf-8")
        else:
            sys.stdout.write(text)
        return 0
    except (KnowledgeError, OSError, UnicodeDecodeError) as exc:
        print(f"knowledge {args.action}: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
