"""`artlens serve --store DIR [--host 127.0.0.1] [--port 8765]`: the web explorer over a store (a map, search,
a painting's page, probe results) and its JSON API (README.md). Binds to the loopback address unless told
otherwise, and then warns that the explorer is reachable from the network; read-only but for a table's map,
computed once and kept in the store."""
from __future__ import annotations

import argparse
import sys

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True, help="the store folder (or URL) to explore")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only; any other address makes "
                        "the explorer reachable from the network)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (default: 8765)")


def serve_run(a: argparse.Namespace) -> int:
    import uvicorn

    from artlens.errors import UserError
    from artlens.explorer.app import create_app

    if not 0 < a.port < 65536:
        raise UserError(f"port must be between 1 and 65535, got {a.port}", argument="port")
    app = create_app(a.store)
    if a.host not in LOOPBACK:
        print(f"artlens serve: warning: listening on {a.host}: the explorer is reachable from the network",
              file=sys.stderr)
    host = f"[{a.host}]" if ":" in a.host else a.host
    print(f"artlens serve: explorer of {a.store} at http://{host}:{a.port}/ (Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning")
    return 0
