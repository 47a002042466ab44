"""The suite's report: medians per (scenario, case, server), ratios against the best peer,
target checks, a Markdown page and PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from load_tests.suite import Run

HUB = "hub"
# The hub spoken to through the Hocuspocus protocol (a variant row: never a peer).
HUB_HOCUSPOCUS = "hub-hocuspocus"


def is_hub(server: str) -> bool:
    """The hub with default settings ("hub") or a variant row of it ("hub-memory"); never a peer."""
    return server == HUB or server.startswith(HUB + "-")


HIGH, LOW = "high", "low"


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    fmt: str
    better: str | None = None  # "high" or "low": gets a ratio against the best peer
    ratio: bool = False


COLUMNS: dict[str, list[Column]] = {
    "fanout": [
        Column("delivered_per_s", "deliv/s", "{:.0f}", HIGH, True),
        Column("delivered_pct", "deliv%", "{:.1f}", HIGH),
        Column("p50_ms", "p50 ms", "{:.1f}", LOW),
        Column("p99_ms", "p99 ms", "{:.1f}", LOW, True),
        Column("max_ms", "max ms", "{:.0f}", LOW),
        Column("cpu_us_per_delivery", "CPU µs/deliv", "{:.1f}", LOW, True),
        Column("server_cores", "srv cores", "{:.2f}", LOW),
        Column("rss_peak_mb", "RSS MB", "{:.0f}", LOW),
        Column("loadgen_cores", "loadgen cores", "{:.2f}"),
    ],
    "idle": [
        Column("open", "open", "{:.0f}", HIGH),
        Column("kb_per_connection", "KB/conn", "{:.1f}", LOW, True),
        Column("rss_at_hold_mb", "RSS MB", "{:.0f}", LOW),
        Column("join_s", "join s", "{:.1f}", LOW),
    ],
    "join-storm": [
        Column("synced", "synced", "{:.0f}", HIGH),
        Column("all_synced_s", "all synced s", "{:.1f}", LOW, True),
        Column("sync_p50_s", "p50 sync s", "{:.1f}", LOW),
        Column("storm_peak_rss_mb", "peak RSS MB", "{:.0f}", LOW, True),
        Column("rss_after_seed_mb", "RSS seeded MB", "{:.0f}", LOW),
        Column("storm_cpu_s", "srv CPU s", "{:.1f}", LOW),
        Column("seed_s", "seed s", "{:.1f}", LOW),
    ],
    "presence": [
        Column("presence_within_1s_pct", "presence ≤1s %", "{:.1f}", HIGH),
        Column("presence_p50_ms", "presence p50 ms", "{:.0f}", LOW),
        Column("presence_p99_ms", "presence p99 ms", "{:.0f}", LOW),
        Column("delivered_pct", "doc deliv%", "{:.1f}", HIGH),
        Column("p99_ms", "doc p99 ms", "{:.1f}", LOW, True),
        Column("server_cores", "srv cores", "{:.2f}", LOW, True),
        Column("rss_peak_mb", "RSS MB", "{:.0f}", LOW),
        Column("loadgen_cores", "loadgen cores", "{:.2f}"),
    ],
    "full-speed": [
        Column("sent_per_s", "updates/s", "{:.0f}", HIGH, True),
        Column("delivered_per_s", "deliv/s", "{:.0f}", HIGH),
        Column("p50_ms", "p50 ms", "{:.1f}", LOW),
        Column("p99_ms", "p99 ms", "{:.1f}", LOW, True),
        Column("cpu_us_per_delivery", "CPU µs/deliv", "{:.1f}", LOW),
        Column("server_cores", "srv cores", "{:.2f}", LOW),
        Column("loadgen_cores", "loadgen cores", "{:.2f}"),
    ],
    "multi-node": [
        Column("delivered_per_s", "deliv/s", "{:.0f}"),
        Column("delivered_pct", "deliv%", "{:.1f}"),
        Column("p50_ms", "p50 ms", "{:.1f}"),
        Column("p99_ms", "p99 ms", "{:.1f}"),
        Column("cross_p50_ms", "cross-node p50 ms", "{:.1f}"),
        Column("cross_p99_ms", "cross-node p99 ms", "{:.1f}"),
        Column("cpu_us_per_delivery_by_node", "CPU µs/deliv per node", "{:.1f}"),
        Column("cores_by_node", "cores per node", "{:.2f}"),
        Column("redis_commands_per_update", "Redis cmds/update", "{:.1f}"),
        Column("loadgen_cores", "loadgen cores", "{:.2f}"),
    ],
}
COLUMNS["many-docs"] = COLUMNS["fanout"]
COLUMNS["multi-node-weak"] = COLUMNS["multi-node"]
ORDER = (
    "fanout",
    "many-docs",
    "idle",
    "join-storm",
    "presence",
    "full-speed",
    "multi-node",
    "multi-node-weak",
)

SCENARIO_TITLES = {
    "fanout": "Fan-out: one document, N clients, 10 writers (an insert every 50 ms each)",
    "many-docs": "Many documents: 200 documents x 5 clients, one writer per document (an insert every 500 ms)",
    "idle": "Idle connections in one document (server RSS per connection)",
    "join-storm": "Join storm: clients joining a large document at once",
    "presence": "Presence storm: every client sends awareness at 1 Hz, plus one writer (50 ms)",
    "full-speed": "One writer at full speed (at most 64 updates not yet seen by the first reader)",
    "multi-node": "Multi-node: the hub on 1-3 nodes sharing PostgreSQL + Redis, clients spread evenly",
    "multi-node-weak": "Multi-node, weak scaling: the same clients on every node (33 per node), same writers",
}


def _median(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return None
    if isinstance(present[0], list):
        width = max(len(v) for v in present)
        return [_median([v[i] if i < len(v) else None for v in present]) for i in range(width)]
    return statistics.median(present)


def summarize(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per (scenario, case, server): medians over successful runs, failures, ratios."""
    rows: list[dict[str, Any]] = []
    seen: list[tuple[str, str, str]] = []
    for r in runs:
        if (r.scenario, r.key, r.server) not in seen:
            seen.append((r.scenario, r.key, r.server))
    for scenario, key, server in seen:
        group = [r for r in runs if (r.scenario, r.key, r.server) == (scenario, key, server)]
        ok = [r for r in group if r.error is None]
        row: dict[str, Any] = {
            "scenario": scenario,
            "case": key,
            "server": server,
            "runs": len(group),
            "ok": len(ok),
            "errors": [r.error for r in group if r.error],
        }
        names = {k for r in ok for k in r.figures}
        for name in sorted(names):
            row[name] = _median([r.figures.get(name) for r in ok])
        rows.append(row)
    for row in rows:
        if not is_hub(row["server"]):
            continue
        peers = [
            p
            for p in rows
            if (p["scenario"], p["case"]) == (row["scenario"], row["case"]) and not is_hub(p["server"])
        ]
        for col in COLUMNS.get(row["scenario"], []):
            if not col.ratio or col.better is None or row.get(col.key) is None:
                continue
            values = [(p.get(col.key), p["server"]) for p in peers if p.get(col.key) is not None]
            if not values:
                continue
            best, best_server = (max if col.better == HIGH else min)(values)
            row[f"{col.key}_best_peer"] = best_server
            row[f"{col.key}_ratio"] = row[col.key] / best if best else None
    return rows


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, list):
        return " / ".join(_cell(v, fmt) for v in value)
    return fmt.format(value)


def table(scenario: str, rows: list[dict[str, Any]]) -> str:
    cols = COLUMNS[scenario]
    ratio_cols = [c for c in cols if c.ratio]
    header = (
        ["case", "server", "ok/runs"]
        + [c.header for c in cols]
        + [f"{c.header} ÷ best peer" for c in ratio_cols]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [
            row["case"],
            f"**{row['server']}**" if is_hub(row["server"]) else row["server"],
            f"{row['ok']}/{row['runs']}",
        ]
        cells += [_cell(row.get(c.key), c.fmt) for c in cols]
        for c in ratio_cols:
            ratio = row.get(f"{c.key}_ratio")
            cells.append(f"{ratio:.2f} ({row[f'{c.key}_best_peer']})" if ratio is not None else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _get(
    rows: list[dict[str, Any]], scenario: str, server: str, case: str | None = None
) -> list[dict[str, Any]]:
    return [
        r
        for r in rows
        if r["scenario"] == scenario and r["server"] == server and (case is None or r["case"] == case)
    ]


def _fmt(v: Any, fmt: str = "{:.3g}") -> str:
    return "–" if v is None else fmt.format(v)


def protocol_ratios(summary: list[dict[str, Any]]) -> list[str]:
    """Fan-out through the hub's Hocuspocus protocol, as ratios to the hub's y-websocket path
    and to Hocuspocus itself measured in the same run (the machine is shared: compare ratios)."""
    lines: list[str] = []
    keys = (
        ("delivered_pct", "{:.2f}"),
        ("p50_ms", "{:.2f}"),
        ("p99_ms", "{:.2f}"),
        ("cpu_us_per_delivery", "{:.2f}"),
    )
    for row in _get(summary, "fanout", HUB_HOCUSPOCUS):
        for other in (HUB, "hocuspocus"):
            base = _get(summary, "fanout", other, row["case"])
            if not base:
                continue
            cells = [
                _fmt(row[k] / base[0][k], fmt) if row.get(k) is not None and base[0].get(k) else "–"
                for k, fmt in keys
            ]
            lines.append(f"| {row['case']} | ÷ {other} | " + " | ".join(cells) + " |")
    if not lines:
        return []
    header = "| case | hub-hocuspocus | deliv% | p50 ms | p99 ms | CPU µs/deliv |"
    return ["## The hub through the Hocuspocus protocol", "", header, "|---|---|---|---|---|---|", *lines, ""]


def targets(summary: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for each of issue 16's targets that this run measured, per hub row."""
    out: list[tuple[str, str, str]] = []

    def verdict(ok: bool | None) -> str:
        return "–" if ok is None else ("met" if ok else "**missed**")

    hub_rows = [r for r in summary if is_hub(r["server"])]
    for row in hub_rows:
        who, scenario, case = row["server"], row["scenario"], row["case"]
        if scenario == "fanout" and case in ("N=10", "N=100"):
            lat, cpu = row.get("p99_ms_ratio"), row.get("cpu_us_per_delivery_ratio")
            out.append(
                (
                    f"{who} fan-out {case}: p99 and CPU per delivery at or below the best peer's",
                    f"p99 {_fmt(row.get('p99_ms'))} ms = {_fmt(lat, '{:.2f}')}× {row.get('p99_ms_best_peer', '–')}; "
                    f"{_fmt(row.get('cpu_us_per_delivery'), '{:.1f}')} µs = {_fmt(cpu, '{:.2f}')}× "
                    f"{row.get('cpu_us_per_delivery_best_peer', '–')}",
                    verdict(None if lat is None or cpu is None else lat <= 1 and cpu <= 1),
                )
            )
        elif scenario == "fanout" and case in ("N=1000", "N=2000"):
            pct, p99, cpu = row.get("delivered_pct"), row.get("p99_ms"), row.get("cpu_us_per_delivery")
            out.append(
                (
                    f"{who} fan-out {case}: every update delivered, p99 < 250 ms, < 4 µs CPU per delivery",
                    f"{_fmt(pct, '{:.1f}')}% delivered, p99 {_fmt(p99)} ms, {_fmt(cpu, '{:.1f}')} µs",
                    verdict(None if None in (pct, p99, cpu) else pct >= 100 and p99 < 250 and cpu < 4),
                )
            )
        elif scenario == "many-docs":
            cores_peer = [
                p.get("server_cores")
                for p in summary
                if (p["scenario"], p["case"]) == (scenario, case) and not is_hub(p["server"])
            ]
            best_cores = min((c for c in cores_peer if c is not None), default=None)
            cores, lat = row.get("server_cores"), row.get("p99_ms_ratio")
            out.append(
                (
                    f"{who} many documents {case}: server CPU ≤ the best peer's, p99 within 1.5×",
                    f"{_fmt(cores, '{:.2f}')} cores vs {_fmt(best_cores, '{:.2f}')}; p99 {_fmt(lat, '{:.2f}')}×",
                    verdict(
                        None if None in (cores, best_cores, lat) else cores <= best_cores and lat <= 1.5  # type: ignore[operator]
                    ),
                )
            )
        elif scenario == "idle":
            kb, opened, idle_mb = row.get("kb_per_connection"), row.get("open"), row.get("rss_before_mb")
            wanted = int(case.split("=")[1]) if "=" in case else None
            out.append(
                (
                    f"{who} idle {case}: every socket accepted, < 10 KB RSS per connection",
                    f"{_fmt(opened, '{:.0f}')} open, {_fmt(kb, '{:.1f}')} KB",
                    verdict(None if kb is None or opened is None else opened == wanted and kb < 10),
                )
            )
            out.append(
                (
                    f"{who}: idle hub (before any client) < 100 MB RSS",
                    f"{_fmt(idle_mb, '{:.0f}')} MB",
                    verdict(None if idle_mb is None else idle_mb < 100),
                )
            )
        elif scenario == "join-storm":
            t, rss = row.get("all_synced_s"), row.get("storm_peak_rss_mb")
            out.append(
                (
                    f"{who} join storm {case}: all synced < 10 s, peak RSS < 1 GB",
                    f"{_fmt(row.get('synced'), '{:.0f}')} synced, all in {_fmt(t, '{:.1f}')} s, "
                    f"peak {_fmt(rss, '{:.0f}')} MB",
                    verdict(None if rss is None else t is not None and t < 10 and rss < 1024),
                )
            )
        elif scenario == "presence":
            pct, p99, cores = row.get("delivered_pct"), row.get("p99_ms"), row.get("server_cores")
            out.append(
                (
                    f"{who} presence storm {case}: every document update delivered, p99 < 100 ms, < 1 core",
                    f"{_fmt(pct, '{:.1f}')}% delivered, doc p99 {_fmt(p99)} ms, {_fmt(cores, '{:.2f}')} cores",
                    verdict(None if None in (pct, p99, cores) else pct >= 100 and p99 < 100 and cores < 1),
                )
            )
    for scenario in ("multi-node", "multi-node-weak"):
        out += _multi_node_targets(scenario, _get(summary, scenario, HUB))
    return out


def _multi_node_targets(scenario: str, multi: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    single = next((r for r in multi if r["case"] == "1 node"), None)
    for row in multi:
        if single is None or row is single:
            continue
        per_node = [v for v in (row.get("cpu_us_per_delivery_by_node") or []) if v is not None]
        base_cpu = single.get("cpu_us_per_delivery")
        out.append(
            (
                f"{scenario} {row['case']}: CPU per delivered update per node within 1.2× of one node",
                f"{' / '.join(f'{v:.1f}' for v in per_node)} µs vs {_fmt(base_cpu, '{:.1f}')} µs on 1 node",
                "–" if not per_node or base_cpu is None else
                ("met" if max(per_node) <= base_cpu * 1.2 else "**missed**"),
            )
        )  # fmt: skip
    return out


def capacity_projection(rows: list[dict[str, Any]]) -> list[str]:
    """Deliveries per second of N nodes with a core each, from the CPU per delivery per node
    (the busiest node sets the pace): N × 10^6 / µs; lines of text, empty without figures."""
    projected: list[tuple[int, float]] = []
    for row in rows:
        per_node = [v for v in (row.get("cpu_us_per_delivery_by_node") or []) if v]
        if per_node:
            nodes = int(str(row["case"]).split()[0])
            projected.append((nodes, nodes * 1e6 / max(per_node)))
    if not projected:
        return []
    one = next((value for nodes, value in projected if nodes == 1), None)
    parts = [
        f"{nodes} node{'s' if nodes > 1 else ''} {value / 1000:.0f}k/s"
        + (f" ({value / one:.2f}× one node)" if one and nodes > 1 else "")
        for nodes, value in projected
    ]
    return [
        "Projected capacity with one core per node (N × 10^6 / CPU µs per delivery of the busiest node): "
        + ", ".join(parts)
        + ".",
        "",
    ]


def render(
    meta: dict[str, Any], summary: list[dict[str, Any]], runs: list[dict[str, Any]], plots: list[str]
) -> str:
    m = meta["machine"]
    v = meta["versions"]
    lines = [
        f"# Load-test suite: Nova Collab hub against its peers ({meta['started'][:10]})",
        "",
        f"Command: `{meta['command']}` — started {meta['started']}, took {meta['elapsed_s']} s, "
        f"{meta['repeats']} run(s) per server and case, servers interleaved run by run "
        f"({', '.join(meta['servers'])}).",
        "",
        "## Machine and versions",
        "",
        f"- nproc {m['nproc']} ({m['cpu_model'] or 'unknown CPU'}), memory {m['memory_gb']} GB, {m['os']}, "
        f"load average at start {m['load_average_at_start']}",
        "- The load generator (one node process, raw `ws` clients, yjs encoding) shares the cores with the "
        "server; its own CPU is in the `loadgen cores` columns.",
        f"- hub: nova-collab {v.get('nova-collab')} at commit {v.get('git_commit')} (tree {v.get('hub_tree', '?')}), "
        f"Python {v.get('python')}, pycrdt {v.get('pycrdt')}, uvicorn {v.get('uvicorn')}; `hub` runs with "
        "its default settings (SQLite store in the run's directory, strict durability, search on, default "
        "limits); `hub-memory` adds `--store memory` (nothing persisted, as the peers run here); "
        "`hub-hocuspocus` is the default hub spoken to with the Hocuspocus protocol"
        + (
            f"; `hub-base` is the default hub from commit {v['base_commit']} (the code before the change)"
            if v.get("base_commit")
            else ""
        ),
        f"- @hocuspocus/server {v.get('@hocuspocus/server')} (`servers/hocuspocus.mjs`, no extensions), "
        f"@y/websocket-server {v.get('@y/websocket-server')}, pycrdt-websocket {v.get('pycrdt-websocket')} "
        f"under uvicorn {v.get('uvicorn')}; node {v.get('node')}, yjs {v.get('yjs')}, ws {v.get('ws')}",
        "",
        "Figures are medians over the successful runs; `÷ best peer` divides the hub's median by the best "
        "peer's (lower is better for latency, CPU and memory; higher for throughput). Latency is send-to-receive "
        "inside the load generator, so it includes the generator's own event-loop delay.",
        "",
    ]
    checks = targets(summary)
    if checks:
        lines += ["## Targets (issue 16)", "", "| target | measured | verdict |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in checks]
        lines.append("")
    lines += protocol_ratios(summary)
    for scenario in ORDER:
        rows = [r for r in summary if r["scenario"] == scenario]
        if not rows:
            continue
        lines += [f"## {SCENARIO_TITLES[scenario]}", "", table(scenario, rows), ""]
        if scenario == "join-storm" and meta.get("join_document"):
            d = meta["join_document"]
            lines += [
                f"The document: the automerge-paper editing trace replayed keystroke by keystroke into a Y.Doc "
                f"{d.get('copies')} times, each copy appended after the previous one "
                f"({d.get('chars')} characters, {d.get('state_bytes')} bytes encoded), seeded by one client in "
                f"chunks of at most 4 MB; then all clients join at once with an empty state vector. "
                "`all synced s` is empty when some client was not synced before the storm timeout.",
                "",
            ]
        if scenario in ("multi-node", "multi-node-weak"):
            lines += [
                "Every node uses PostgreSQL (strict durability: relayed after it is stored) and Redis, so 1 node "
                "here is not the in-memory single-node case above. `cross-node` latencies count only deliveries "
                "whose writer is connected to another node. Redis commands are counted with `INFO commandstats` "
                "over the measure window and divided by the updates sent in it.",
                "",
                *capacity_projection(rows),
            ]
    for name in plots:
        lines += [f"![{name}]({name})", ""]
    failures = [r for r in runs if r.get("error")]
    if failures:
        lines += ["## Failures", "", "| scenario | case | server | run | reason |", "|---|---|---|---|---|"]
        for r in failures:
            reason = str(r["error"]).replace("|", "\\|")
            lines.append(f"| {r['scenario']} | {r['key']} | {r['server']} | {r['repeat'] + 1} | {reason} |")
        lines.append("")
    lines += [
        "## Data attribution",
        "",
        "The join-storm document is built from the automerge-paper editing trace of the editing-traces "
        "collection by Joseph Gentle and contributors (prepared by Martin Kleppmann from the automerge-perf "
        "repository), used under the Creative Commons Attribution 4.0 licence (CC BY 4.0).",
        "",
    ]
    return "\n".join(lines)


# ---- plots ---------------------------------------------------------------------------------


def plot(summary: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """Write PNG plots next to the report; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[str] = []
    servers = list(dict.fromkeys(r["server"] for r in summary))
    colors = {s: f"C{i}" for i, s in enumerate(servers)}

    def n_of(case: str) -> int:
        return int(case.split("=")[1])

    fan = [r for r in summary if r["scenario"] == "fanout"]
    if fan:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        for server in servers:
            rows = sorted((r for r in fan if r["server"] == server), key=lambda r: n_of(r["case"]))
            ns = [n_of(r["case"]) for r in rows]
            for key, style, ax in (("p50_ms", "--", axes[0]), ("p99_ms", "-", axes[0])):
                pts = [(n, r.get(key)) for n, r in zip(ns, rows, strict=True) if r.get(key) is not None]
                if pts:
                    ax.plot(
                        *zip(*pts, strict=True),
                        style,
                        marker="o",
                        color=colors[server],
                        label=f"{server} {key[:3]}",
                    )
            for key, ax in (("delivered_per_s", axes[1]), ("cpu_us_per_delivery", axes[2])):
                pts = [(n, r.get(key)) for n, r in zip(ns, rows, strict=True) if r.get(key) is not None]
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker="o", color=colors[server], label=server)
        axes[0].set(
            xscale="log",
            yscale="log",
            xlabel="clients in the document",
            ylabel="latency ms",
            title="fan-out latency (p50 dashed, p99 solid)",
        )
        axes[1].set(
            xscale="log",
            xlabel="clients in the document",
            ylabel="deliveries/s",
            title="delivered updates per second",
        )
        axes[2].set(
            xscale="log",
            yscale="log",
            xlabel="clients in the document",
            ylabel="µs",
            title="server CPU per delivered update",
        )
        for ax in axes:
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / "fanout.png", dpi=110)
        plt.close(fig)
        written.append("fanout.png")

    panels: list[tuple[str, str, str]] = [
        ("idle", "kb_per_connection", "idle: RSS KB per connection"),
        ("join-storm", "all_synced_s", "join storm: s until all synced (none: not all)"),
        ("join-storm", "storm_peak_rss_mb", "join storm: peak RSS MB"),
        ("presence", "presence_within_1s_pct", "presence storm: % presence within 1 s"),
        ("presence", "p99_ms", "presence storm: document p99 ms"),
        ("full-speed", "sent_per_s", "one writer at full speed: updates/s"),
        ("many-docs", "p99_ms", "200 docs x 5: p99 ms"),
        ("presence", "server_cores", "presence storm: server cores"),
    ]
    present = [p for p in panels if any(r["scenario"] == p[0] for r in summary)]
    if present:
        cols = 4
        rows_n = (len(present) + cols - 1) // cols
        fig, axes_grid = plt.subplots(rows_n, cols, figsize=(16, 3.8 * rows_n), squeeze=False)
        flat = [ax for row in axes_grid for ax in row]
        for ax, (scenario, key, title) in zip(flat, present, strict=False):
            rows = [r for r in summary if r["scenario"] == scenario]
            names = [r["server"] for r in rows]
            values = [r.get(key) or 0 for r in rows]
            ax.bar(names, values, color=[colors[n] for n in names])
            for i, r in enumerate(rows):
                if r.get(key) is None:
                    ax.text(i, 0, "n/a" if r["ok"] else "failed", ha="center", va="bottom", fontsize=8)
            ax.set_title(f"{title}\n({rows[0]['case']})" if rows else title, fontsize=9)
            ax.tick_params(axis="x", labelsize=8, rotation=20)
            ax.grid(True, axis="y", alpha=0.3)
        for ax in flat[len(present) :]:
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(out_dir / "scenarios.png", dpi=110)
        plt.close(fig)
        written.append("scenarios.png")

    multi = [r for r in summary if r["scenario"] == "multi-node"]
    if multi:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        nodes = [int(r["case"].split()[0]) for r in multi]
        for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("cross_p99_ms", "cross-node p99")):
            pts = [(n, r.get(key)) for n, r in zip(nodes, multi, strict=True) if r.get(key) is not None]
            if pts:
                axes[0].plot(*zip(*pts, strict=True), marker="o", label=label)
        axes[0].set(xlabel="hub nodes", ylabel="ms", title="multi-node latency", xticks=nodes)
        for n, r in zip(nodes, multi, strict=True):
            per_node = r.get("cpu_us_per_delivery_by_node") or []
            axes[1].scatter([n] * len(per_node), [v or 0 for v in per_node], color="C0")
        axes[1].set(
            xlabel="hub nodes", ylabel="µs", title="CPU per delivered update, each node", xticks=nodes
        )
        for ax in axes:
            ax.grid(True, alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "multinode.png", dpi=110)
        plt.close(fig)
        written.append("multinode.png")
    return written


def main() -> int:
    """Re-render report.md and the plots from a results.json: ``python load_tests/report.py DIR``."""
    import json
    import sys

    out_dir = Path(sys.argv[1])
    data = json.loads((out_dir / "results.json").read_text())
    plots = plot(data["summary"], out_dir)
    (out_dir / "report.md").write_text(render(data["meta"], data["summary"], data["runs"], plots))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
