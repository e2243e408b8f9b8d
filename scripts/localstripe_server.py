"""Run localstripe (a fake Stripe, GPL-3.0) as its own process, with its store in a file of our
choosing. localstripe always pickles its store to /tmp/localstripe.pickle, so the dev console and
parallel test runs would read and overwrite each other's customers and cards.

    python scripts/localstripe_server.py --port 8420 --state-file .data/localstripe.pickle [--from-scratch]
"""

from __future__ import annotations

import argparse
import builtins
import sys
from pathlib import Path

HARD_CODED_STORE = "/tmp/localstripe.pickle"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state-file", type=Path, required=True)
    parser.add_argument("--from-scratch", action="store_true", help="ignore a saved store")
    args = parser.parse_args()
    args.state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file = str(args.state_file)
    real_open = builtins.open

    def redirected_open(file, *rest, **kwargs):
        # localstripe's Store.try_load_from_disk/dump_to_disk open this literal path; it has no
        # option for another one. Redirect exactly that path and leave every other open alone.
        return real_open(state_file if file == HARD_CODED_STORE else file, *rest, **kwargs)

    builtins.open = redirected_open
    from localstripe import server

    sys.argv = [sys.argv[0], "--port", str(args.port)] + (["--from-scratch"] if args.from_scratch else [])
    server.start()


if __name__ == "__main__":
    main()
