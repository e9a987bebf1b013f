"""Command line: ``adapool demo`` (also ``python -m adapool_core``)."""
from __future__ import annotations

import argparse
import sys

import numpy as np


def _demo_table(args) -> int:
    """Pool a small example with every method and print the results side by side."""
    import adapool_core as ap

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 4, 4)).astype(np.float32)
    rows = [
        ("average", x.reshape(1, 1, 2, 2, 2, 2).mean(axis=(3, 5))),
        ("max", x.reshape(1, 1, 2, 2, 2, 2).max(axis=(3, 5))),
        ("eM (SoftPool)", ap.empool2d(x, 2)),
        ("eDSCW", ap.edscwpool2d(x, 2)),
        ("IDW", ap.idwpool2d(x, 2)),
        ("adaPool beta=0.5", ap.adapool2d(x, 0.5, 2)),
    ]
    print("input 4x4:")
    for row in x[0, 0]:
        print("  " + " ".join(f"{v:+.3f}" for v in row))
    print("\n2x2 pooling, kernel 2, stride 2:")
    print(f"{'method':<18} {'y[0,0]':>8} {'y[0,1]':>8} {'y[1,0]':>8} {'y[1,1]':>8}")
    for name, y in rows:
        print(f"{name:<18} " + " ".join(f"{v:+8.4f}" for v in np.asarray(y).reshape(-1)))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="adapool", description="adaPool family: demo and tools")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="pool an example with every method and report")
    demo.set_defaults(run=_demo_table)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
