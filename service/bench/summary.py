"""Print the README's condensed tables from a `make bench` JSON (default build/bench/latest.json).

    .venv/bin/python service/bench/summary.py [build/bench/latest.json]

One table per load: every contender's req/s and p50/p99 for each model, then the targets as judged in
that run. The full per-cell table (rows/s, errors, RSS, CPU per request, ratios) is what `make bench`
prints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TITLES = {
    "ours": "**model-server** (batching on, the default)",
    "ours-nobatch": "model-server, batching off",
    "ours-nodrift": "model-server, batching on, drift monitor off",
    "mlserver": "MLServer 1.7.1",
    "mlserver-batch": "MLServer 1.7.1, adaptive batching",
    "tutorial": "FastAPI tutorial server",
    "ceiling": "constant answer, same stack (ceiling)",
    "ours-grpc": "**model-server over gRPC** (batching on)",
    "mlserver-grpc": "MLServer 1.7.1 over gRPC",
    "mlserver-batch-grpc": "MLServer 1.7.1 over gRPC, adaptive batching",
    "grpc-ceiling": "constant answer, grpc.aio (gRPC ceiling)",
}


def cell(results: list[dict[str, Any]], model: str, contender: str, load: str) -> dict[str, Any] | None:
    for r in results:
        if (
            r.get("contender") == contender
            and r.get("load") == load
            and "rps" in r
            and (r["model"] == model or contender in ("ceiling", "grpc-ceiling"))
        ):
            return r
    return None


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "bench" / "latest.json"
    report = json.loads(path.read_text())
    res, models = report["results"], list(report["models"])
    for load, title in report["loads"].items():
        print(f"**{title}** (req/s, p50 / p99 ms)\n")
        print("| contender | " + " | ".join(models) + " |")
        print("| --- |" + " ---: |" * len(models))
        for key, name in TITLES.items():
            cells = [cell(res, m, key, load) for m in models]
            if not any(cells):
                continue
            shown = [f"{c['rps']:,.0f} ({c['p50_ms']:.1f} / {c['p99_ms']:.1f})" if c else "-" for c in cells]
            print(f"| {name} | " + " | ".join(shown) + " |")
        print()
    floors = report["floor_s"]
    print(
        "In-process `predict`, 1 row (the floor): "
        + ", ".join(f"{m} {min(f['array_1'], f['frame_1']) * 1e3:.2f} ms" for m, f in floors.items())
        + "\n"
    )
    print("| target | holds | measured in this run |")
    print("| --- | --- | --- |")
    for t in report["targets"]:
        print(f"| {t['target']} | {'yes' if t['holds'] else '**no**'} | {t['detail']} |")
    meta = report["meta"]
    print(
        f"\n{meta['time']}, commit {meta['commit']}, {meta['cpu']} ({meta['cores']} cores), "
        f"{report['settings']['duration_s']:g} s per cell, load average before the run "
        f"{meta['loadavg_before'][0]:.1f}, {meta['wall_s']:.0f} s in all."
    )


if __name__ == "__main__":
    main()
