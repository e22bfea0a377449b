"""`python tests/browser/serve.py run <appliance flags>`: the appliance as `appliance run` starts it,
with the browser tests' fake chat backends (ui_backends.py) registered beside the built-in ones."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uvicorn  # noqa: E402

from appliance.app import create_app  # noqa: E402
from appliance.cli import build_parser, settings_from_args  # noqa: E402
from appliance.logs import configure_logging  # noqa: E402
from inference.backends.registry import BackendRegistry  # noqa: E402
from ui_backends import browser_backends  # noqa: E402


def main() -> None:
    settings = settings_from_args(build_parser().parse_args(sys.argv[1:]))
    configure_logging(settings.log_level)
    app = create_app(settings, registry=BackendRegistry(browser_backends()))
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False, server_header=False)


if __name__ == "__main__":
    main()
