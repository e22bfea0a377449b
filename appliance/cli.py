"""The `appliance` command: thin wrappers that turn flags into Settings and call the library.

`appliance run` serves; `appliance models list` prints the catalog; `appliance models install`,
`available` and `remove` work on the models path directly (see `appliance.gallery.cli`). Every setting has a flag built
from the Settings table, so flags, env names and defaults in `--help` always match the code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from appliance import __version__
from appliance.config import Settings, env_names, flag_names


def _help(field: str) -> str:
    info = Settings.model_fields[field]
    default = info.get_default(call_default_factory=True)
    if default in (None, [], ""):
        shown = "none"
    elif isinstance(default, bool):
        shown = str(default).lower()
    else:
        shown = str(default)
    text = f"{info.description} [env: {', '.join(env_names(field))}] (default: {shown})"
    return text.replace("%", "%%")


def _settings_arguments() -> argparse.ArgumentParser:
    """A parent parser holding one flag per setting; unset flags stay out of the namespace."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("settings (flag > environment > default)")
    for field, info in Settings.model_fields.items():
        kwargs: dict[str, Any] = {"dest": field, "default": argparse.SUPPRESS, "help": _help(field)}
        if info.annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = field.upper()
        group.add_argument(*flag_names(field), **kwargs)
    return parent


def build_parser() -> argparse.ArgumentParser:
    settings_args = _settings_arguments()
    parser = argparse.ArgumentParser(
        prog="appliance",
        description="A local AI server: OpenAI-compatible API, durable vector stores, web UI.",
    )
    parser.add_argument("--version", action="version", version=f"appliance {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", parents=[settings_args], help="serve the API and the web UI")
    models = commands.add_parser("models", help="inspect the model catalog, install and remove models")
    models_commands = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = models_commands.add_parser("list", parents=[settings_args], help="print every model the server offers")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    install = models_commands.add_parser(
        "install",
        parents=[settings_args],
        help="install gallery models (gallery@name or name) or model files by URL into the models path",
    )
    install.add_argument("targets", nargs="+", metavar="NAME|URL", help="a gallery model id, or a URL of a model file or config")
    install.add_argument("--name", help="the model name to install as (default: the gallery's or the config's)")
    available = models_commands.add_parser(
        "available", parents=[settings_args], help="list the models the configured galleries offer"
    )
    available.add_argument("--json", action="store_true", help="print JSON instead of a list")
    remove = models_commands.add_parser(
        "remove", parents=[settings_args], help="delete an installed model's config and the files only it uses"
    )
    remove.add_argument("names", nargs="+", metavar="NAME", help="installed model names")
    return parser


def settings_from_args(namespace: argparse.Namespace) -> Settings:
    """Flags override the environment, which overrides defaults (init values win in pydantic-settings)."""
    given = {field: value for field, value in vars(namespace).items() if field in Settings.model_fields}
    return Settings(**given)


def describe_settings_error(exc: ValidationError) -> str:
    lines = []
    aliases = {name: field for field in Settings.model_fields for name in env_names(field)}
    for err in exc.errors():
        key = str(err["loc"][0]) if err["loc"] else ""
        field = key if key in Settings.model_fields else aliases.get(key, aliases.get(key.upper(), key))
        where = f"{flag_names(field)[0]} ({env_names(field)[0]})" if field in Settings.model_fields else key
        message = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"invalid setting {where}: {message}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        print(f"appliance: {describe_settings_error(exc)}", file=sys.stderr)
        return 2
    if args.command == "run":
        return _run(settings)
    if args.models_command in ("install", "available", "remove"):
        from appliance.gallery.cli import run_models_command

        return run_models_command(settings, args)
    return _models_list(settings, as_json=args.json)


def _run(settings: Settings) -> int:
    import uvicorn  # the server only where one is started: `import appliance.cli` stays cheap

    from appliance.app import create_app
    from appliance.logs import configure_logging

    configure_logging(settings.log_level)
    try:
        app = create_app(settings)
    except ValueError as exc:
        print(f"appliance: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    return 0


def _models_list(settings: Settings, *, as_json: bool) -> int:
    from appliance.app import build_services

    catalog = build_services(settings).catalog
    entries = catalog.list()
    for problem in catalog.errors:
        print(f"skipped: {problem}", file=sys.stderr)
    if as_json:
        rows = [
            {
                "name": e.name,
                "backend": e.backend,
                "usecases": sorted(e.usecases),
                "source": e.source,
                "path": str(e.path) if e.path else None,
            }
            for e in entries
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not entries:
        print(f"no models in {settings.models_path}")
        return 0
    table = [("NAME", "BACKEND", "USECASES", "SOURCE")] + [
        (e.name, e.backend or "?", ",".join(sorted(e.usecases)), e.source) for e in entries
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0
