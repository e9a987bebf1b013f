"""Command line: ``adapool demo``, ``adapool bench`` and ``adapool compile`` (also ``python -m adapool_core``).

Thin: parse, then call the module that does the work (``demo``, ``bench``).
"""
from __future__ import annotations

import argparse
import shlex
import sys


def _add_demo(sub) -> None:
    from .demo import METHODS, DemoConfig

    defaults = DemoConfig()
    demo = sub.add_parser(
        "demo", help="how much of an image each pooling keeps, and how much its weights bring back",
        description="Pool images with average, max, eM, eDSCW, IDW and adaPool (beta 0.5 and fitted per "
                    "location), reconstruct them by nearest upsampling and by unpooling with each method's "
                    "weights, and report PSNR/SSIM: a table here, JSON, CSV and PNG crops in --out.")
    demo.add_argument("--images", nargs="+", metavar="PATH",
                      help="your own image files (as grayscale); default: images shipped with scikit-image")
    demo.add_argument("--kernel", nargs="+", type=int, default=list(defaults.kernels), metavar="K",
                      help="kernel sizes, stride = kernel (default: %(default)s)")
    demo.add_argument("--scale", type=float, default=defaults.scale,
                      help="multiply the [0, 1] image by this before pooling (default: %(default)s)")
    demo.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(defaults.methods),
                      metavar="METHOD", help=f"some of: {', '.join(METHODS)} (default: all)")
    demo.add_argument("--out", default=defaults.out, help="output folder (default: %(default)s)")
    demo.add_argument("--fit-steps", type=int, default=defaults.fit_steps,
                      help="gradient steps of the per-location beta fit (default: %(default)s)")
    demo.add_argument("--no-clip", action="store_true", help="skip the 3-D case (a 16-frame synthetic clip)")
    demo.set_defaults(run=_run_demo, parser=demo)


def _run_demo(args) -> int:
    from .demo import DemoConfig, DemoError, MissingDependencyError, run

    config = DemoConfig(
        images=tuple(args.images) if args.images else None, kernels=tuple(args.kernel), scale=args.scale,
        methods=tuple(args.methods), out=args.out, fit_steps=args.fit_steps, clip=not args.no_clip)
    # Every setting spelled out, so results.json says exactly how to repeat the run.
    config.command = shlex.join(
        ["adapool", "demo"] + (["--images", *args.images] if args.images else [])
        + ["--kernel", *map(str, args.kernel), "--scale", f"{args.scale:g}", "--methods", *args.methods,
           "--fit-steps", str(args.fit_steps), "--out", args.out] + (["--no-clip"] if args.no_clip else []))
    try:
        run(config)
    except DemoError as err:
        args.parser.error(str(err))  # exits 2 with "adapool demo: error: ..."
    except MissingDependencyError as err:
        print(f"adapool demo: {err}", file=sys.stderr)
        return 1
    return 0


def _run_compile(args) -> int:
    from .._cpu.precompile import compile_all

    compile_all(log=lambda line: print(line, flush=True))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="adapool", description="adaPool family: demo and tools")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo(sub)
    from . import bench

    bench_parser = sub.add_parser("bench", help="time every method against PyTorch's pooling (docs/benchmarks.md)")
    bench.add_arguments(bench_parser)
    bench_parser.set_defaults(run=bench.run_from_args)
    compile_parser = sub.add_parser(
        "compile", help="compile every CPU kernel into Numba's disk cache now (first calls then load it)",
        description="Compile every CPU kernel (each dtype, method and direction) ahead of time into Numba's "
                    "disk cache (NUMBA_CACHE_DIR, else __pycache__ beside the package), with a line per kernel.")
    compile_parser.set_defaults(run=_run_compile)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
