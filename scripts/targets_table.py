"""The per-row targets table of docs/benchmarks.md from an `adapool bench --json` file.

    python3 scripts/targets_table.py bench.json

Prints, per matrix row, each method's ratio to torch avg_pool{d}d (forward /
forward+backward) with **x** where the issue-11 target is missed, then the
worst ratios of the matrix, and of issue 11's own rows (the global row is issue 13's).
"""
import json
import sys

from adapool_core.cli.bench import GLOBAL, TARGETS, row_label

METHODS = ("adapool", "edscwpool", "empool", "idwpool")


def main(path):
    cases = json.load(open(path))["cases"]
    rows = {}
    worst = {"forward": (0.0, ""), "forward+backward": (0.0, "")}
    worst_issue11 = dict(worst)
    for c in cases:
        method = next((m for m in METHODS if c["op"].startswith(m)), None)
        if method is None or c.get("ratio_to_avg_pool") is None:
            continue
        overlapping = c["stride"] < c["kernel"]
        limit = TARGETS[overlapping][c["direction"] != "forward"]
        r = c["ratio_to_avg_pool"]
        rows.setdefault(row_label(c), {"limits": TARGETS[overlapping]}).setdefault(method, {})[c["direction"]] = (
            f"{r:.2f}" + ("" if r <= limit else "**x**"))
        for table in (worst, worst_issue11) if c["kernel"] != GLOBAL else (worst,):
            if r > table[c["direction"]][0]:
                table[c["direction"]] = (r, f"`{c['op']}`, {row_label(c)}")
    print("| row | target fwd / fwd+bwd | " + " | ".join(METHODS) + " |")
    print("| --- | --- |" + " --- |" * len(METHODS))
    for label, row in rows.items():
        lf, lb = row["limits"]
        cells = [f"{row[m].get('forward', '')} / {row[m].get('forward+backward', '')}" if m in row else ""
                 for m in METHODS]
        print(f"| {label} | {lf:g}x / {lb:g}x | " + " | ".join(cells) + " |")
    for direction, (r, where) in worst.items():
        print(f"\nWorst {direction}: {r:.2f}x ({where})")
    for direction, (r, where) in worst_issue11.items():
        print(f"\nWorst {direction} of issue 11's rows: {r:.2f}x ({where})")


if __name__ == "__main__":
    main(sys.argv[1])
