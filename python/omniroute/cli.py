"""The ``omniroute`` command."""

from __future__ import annotations

import argparse
import sys

from omniroute import demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="omniroute", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="push synthetic multi-channel traffic through the engine")
    d.add_argument("--hours", type=float, default=2.0, help="simulated hours (default 2)")
    d.add_argument("--agents", type=int, default=30, help="agents on shift (default 30)")
    d.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.hours <= 0 or args.agents <= 0:
            parser.error("--hours and --agents must be positive")
        report = demo.run(hours=args.hours, agents=args.agents, seed=args.seed)
        sys.stdout.write(demo.describe(report, args.hours) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
