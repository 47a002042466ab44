"""Browser viewer speed: page load → synced document for a large text, and edit-to-screen latency.

    python3 load_tests/bench_viewer.py [--size-mb 1.2] [--loads 5] [--edits 300] [--interval-ms 25]

Starts a hub (SQLite store in a temp dir) on a free loopback port and Debian's chromium
(tests/browser/driver.mjs), writes a document of --size-mb MiB of code-like text from a
Python client, then:

* load → synced: opens the document page --loads times in fresh tabs; the page records
  ``performance.now()`` (ms since navigation start) at the first animation frame after the
  editor is mounted on the synced text (``window.nova.metrics.loadToSyncedMs``).
* edit → screen: a Python client inserts --edits small markers at the top of the large
  document, each carrying its send time (wall clock, same machine); the page records, in
  the first animation frame after CodeMirror applied the change and the marker is in the
  editor's DOM, ``now - sent``. p50/p99 over all edits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collab_server.client import YClient  # noqa: E402
from tests.browser.driver import Browser, Page, browser_available  # noqa: E402
from tests.support.hub import HubProcess  # noqa: E402

# Installed in the page: records when each marker ⟦id:sent_ms⟧ is on screen.
PROBE = r"""
(() => {
  const samples = window.__novaLatency = []
  const pattern = /\u27e6(\d+):(\d+(?:\.\d+)?)\u27e7/g
  window.nova.onUpdate((update) => {
    const found = []
    update.changes.iterChanges((_a, _b, _from, _to, inserted) => {
      for (const match of inserted.toString().matchAll(pattern)) found.push(match)
    })
    if (found.length === 0) return
    requestAnimationFrame(() => {
      const now = performance.timeOrigin + performance.now()
      const dom = document.querySelector('.cm-content').textContent
      for (const match of found) {
        samples.push({ id: Number(match[1]), ms: now - Number(match[2]), onScreen: dom.includes(match[0]) })
      }
    })
  })
  return true
})()
"""


def code_like_text(size: int) -> str:
    lines = []
    total = 0
    number = 0
    while total < size:
        number += 1
        line = (
            f"def handler_{number}(request, limit={number % 97}):\n"
            f"    '''Handle request {number}: bounded by limit.'''\n"
            f"    values = [x * {number % 13} for x in range(limit)]\n"
            f"    return sum(values) + {number}\n\n"
        )
        lines.append(line)
        total += len(line)
    return "".join(lines)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def measure_loads(browser: Browser, url: str, loads: int) -> list[dict[str, float]]:
    results = []
    for _ in range(loads):
        page = await browser.open(url)
        await page.wait("document.body.dataset.synced === 'true'", timeout=60)
        metrics: dict[str, Any] = await page.eval("window.nova.metrics")
        length = await page.eval("window.nova.editorText().length")
        results.append({**metrics, "length": length})
        await page.close()
    return results


async def measure_latency(
    hub: HubProcess, document: str, page: Page, edits: int, interval: float
) -> list[dict[str, Any]]:
    await page.eval(PROBE)
    # A comment line in the document's language: the edit keeps the text valid code.
    comment = "# " if document.endswith(".py") else "// " if document.endswith((".ts", ".js")) else ""
    async with YClient(hub.url(document) + "?actor=bench") as writer:
        await writer.wait_synced(timeout=60)
        for number in range(edits):
            marker = f"{comment}\u27e6{number}:{time.time() * 1000:.3f}\u27e7\n"
            writer.text.insert(0, marker)
            await asyncio.sleep(interval)
        await page.wait(f"window.__novaLatency.length >= {edits}", timeout=30)
    samples: list[dict[str, Any]] = await page.eval("window.__novaLatency")
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=float, default=1.2)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--edits", type=int, default=300)
    parser.add_argument("--interval-ms", type=float, default=25.0)
    parser.add_argument("--settle-ms", type=float, default=2000.0, help="idle time after load, before edits")
    parser.add_argument(
        "--warmup", type=int, default=10, help="first edits left out of p50/p99 (reported apart)"
    )
    parser.add_argument(
        "--document",
        default="bench/large.py",
        help="its extension picks the syntax mode (.py, .ts, .md, .txt)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    reason = browser_available()
    if reason is not None:
        raise SystemExit(f"bench_viewer: {reason}")

    document: str = args.document
    with tempfile.TemporaryDirectory(prefix="nova-bench-viewer-") as tmp:
        workdir = Path(tmp)
        hub = HubProcess(workdir).start()
        try:
            text = code_like_text(int(args.size_mb * 1024 * 1024))
            async with YClient(hub.url(document) + "?actor=loader") as loader:
                await loader.wait_synced()
                loader.text += text
                deadline = time.monotonic() + 60
                while len(hub.text(document)) != len(text):
                    if time.monotonic() > deadline:
                        raise TimeoutError("the hub never held the whole document")
                    await asyncio.sleep(0.05)
            url = f"{hub.http}/d/{document}"
            async with Browser(workdir / "chromium-profile") as browser:
                loads = await measure_loads(browser, url, args.loads)
                page = await browser.open(url)
                await page.wait("document.body.dataset.synced === 'true'", timeout=60)
                await asyncio.sleep(args.settle_ms / 1000)  # a watcher's page, not one still loading
                samples = await measure_latency(
                    hub, document, page, args.warmup + args.edits, args.interval_ms / 1000
                )
                chromium = browser.version
        finally:
            hub.stop()

    synced = [load["loadToSyncedMs"] for load in loads]
    warmup = [sample["ms"] for sample in samples if sample["id"] < args.warmup]
    measured = [sample for sample in samples if sample["id"] >= args.warmup]
    latencies = [sample["ms"] for sample in measured]
    load_summary = {
        "runs": [round(value, 1) for value in synced],
        "median": round(statistics.median(synced), 1),
        "first": round(synced[0], 1),
    }
    lat: dict[str, Any] = {
        "edits": len(latencies),
        "interval_ms": args.interval_ms,
        "p50": round(percentile(latencies, 50), 2),
        "p99": round(percentile(latencies, 99), 2),
        "max": round(max(latencies), 2),
        "on_screen": sum(1 for sample in measured if sample["onScreen"]),
        "warmup_edits": len(warmup),
        "warmup_max": round(max(warmup), 2) if warmup else None,
    }
    report = {
        "document": document,
        "document_bytes": len(text.encode()),
        "document_chars": len(text),
        "chromium": chromium,
        "load_to_synced_ms": load_summary,
        "edit_to_screen_ms": lat,
    }
    print(
        f"document {document}: {len(text.encode()) / 1024 / 1024:.2f} MiB, "
        f"{len(text.splitlines())} lines, chromium {chromium}"
    )
    print(
        f"load → synced (ms since navigation start, {args.loads} fresh tabs): "
        f"median {load_summary['median']}, runs {load_summary['runs']}"
    )
    print(
        f"edit → screen over {lat['edits']} edits ({args.interval_ms} ms apart): "
        f"p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms "
        f"({lat['on_screen']} of {lat['edits']} markers found in the editor DOM)"
    )
    if warmup:
        print(
            f"  (left out: the first {len(warmup)} edits, max {lat['warmup_max']} ms: "
            "first-time code paths in the page)"
        )
    slow = sorted(measured, key=lambda sample: -sample["ms"])[:8]
    print("slowest edits (id: ms):", ", ".join(f"{sample['id']}: {sample['ms']:.0f}" for sample in slow))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
