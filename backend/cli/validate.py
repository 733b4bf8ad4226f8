"""``envdeck validate FILE…``: the check ``create -f`` makes, without writing or downloading an
image: bases composed, keys honoured or ignored (one warning line each), the image chosen."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envdeck.backend.cli.output import console, err_console, error, print_json
from envdeck.backend.errors import EnvdeckError

if TYPE_CHECKING:
    from envdeck.backend.config import Checked


def register(sub: argparse._SubParsersAction) -> None:
    """Add the validate command."""
    p = sub.add_parser(
        "validate", help="check instance YAML files (Lima templates too) without creating"
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--name", help="instance name for {{.Name}}/{{.Dir}} (default: file name)")
    p.add_argument("--json", action="store_true", help="machine-readable result per file")
    p.set_defaults(func=cmd_validate)


def report(checked: Checked) -> dict[str, Any]:
    """What validate says about one file that would run."""
    cfg = checked.config
    image = checked.image
    return {
        "ok": True,
        "arch": cfg.arch,
        "image": (
            {"location": image.location, "arch": image.arch, "digest": image.digest}
            if image
            else None
        ),
        "template": cfg.template,
        "honoured": list(checked.honoured),
        "warnings": list(checked.warnings),
    }


def cmd_validate(args: argparse.Namespace) -> int:
    from envdeck.backend.config import ConfigError, check_file

    results: dict[str, Any] = {}
    failed = False
    for path in args.files:
        try:
            results[str(path)] = report(check_file(path, name=args.name))
        except ConfigError as exc:
            failed = True
            results[str(path)] = {
                "ok": False,
                "error": {"where": exc.where, "message": exc.message, "hint": exc.hint},
            }
            if not args.json:
                error(exc)
        except EnvdeckError as exc:  # not the file's fault alone (e.g. a base that is unreachable)
            failed = True
            results[str(path)] = {"ok": False, "error": {"message": exc.message, "hint": exc.hint}}
            if not args.json:
                error(exc)
    if args.json:
        print_json(results)
    else:
        for path, result in results.items():
            if result["ok"]:
                _show(path, result)
    return 2 if failed else 0


def _show(path: str, result: dict[str, Any]) -> None:
    image = result["image"]
    runs = (
        f"cloud image {image['location']} ({image['arch']})"
        if image
        else f"the built-in {result['template']} guest"
        if result["template"]
        else "its own kernel"
    )
    console.print(f"{path}: ok — {result['arch']} guest, {runs}", markup=False)
    for line in result["honoured"]:
        console.print(f"  honoured: {line}", markup=False)
    for line in result["warnings"]:
        err_console.print(f"warning: {line}", markup=False, soft_wrap=True)
