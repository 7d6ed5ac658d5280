#!/usr/bin/env python3
"""Writes dtfm-demo's report as the "Flagship demo" section of docs/benchmarks.md (between the
report:demo markers, replaced in place or appended)."""
import argparse
import json
import math
import re

RUNS = [("fast", "fast", "10 Gbit/s, 0.1 ms, uncompressed"),
        ("slow_uncompressed", "slow, uncompressed", "100 Mbit/s, 25 ms, uncompressed"),
        ("slow_dtfm", "slow, dtfm", "100 Mbit/s, 25 ms, planned + compressed")]


def section(report, command):
    runs = report["runs"]
    fast = runs["fast"]
    lines = ["<!-- report:demo:begin -->", "## Flagship demo (issue 8)", "",
             f"Command: `{command}` (`./scripts/run-example.sh` runs the same program). "
             f"{report['config']['stages']} stages × {report['config']['replicas']} replicas of the tiny GPT, "
             f"{report['config']['steps']} steps per run, {report['config']['micro_batches']} micro-batches of "
             f"{report['config']['micro_batch']} sequences, GPipe, transport {report['config']['transport']}.", "",
             "| run | links | tokens/s | slowdown vs fast | final eval loss | vs fast | MB sent |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for key, title, links in RUNS:
        r = runs[key]
        loss = r["final_eval_loss"]
        gap = 100.0 * (loss / fast["final_eval_loss"] - 1.0)
        lines.append(f"| {title} | {links} | {r['tokens_per_s']:.0f} | {fast['tokens_per_s'] / r['tokens_per_s']:.2f}x | "
                     f"{loss:.4f} | {gap:+.2f} % | {r['bytes_sent'] / 1e6:.1f} |")
    t = report["targets"]
    c = report["compute_to_communication"]
    floor = report.get("entropy_floor")
    lines += ["",
              f"Targets: slow-dtfm slowdown {t['slow_dtfm_slowdown']:.2f}x (target ≤ 1.3: "
              f"{'met' if t['slowdown_met'] else 'not met'}); slow-dtfm eval loss {100 * t['eval_loss_gap']:+.2f} % of fast "
              f"(target within 2 %: {'met' if t['eval_loss_met'] else 'not met'}).",
              "",
              f"Compute against communication (fast run): an iteration takes {1e3 * c['iteration_s']:.0f} ms; its bytes and "
              f"latencies take {1e3 * c['fast_links_communication_s']:.1f} ms on the fast links ({c['fast_ratio']:.0f}×) and "
              f"{1e3 * c['slow_links_communication_s']:.0f} ms on the slow links ({c['slow_ratio']:.1f}×), uncompressed "
              "(a lower bound: one link per rank, no contention).",
              "",
              f"Entropy floor of the corpus: {floor:.4f} nats/token; the uniform guess is {math.log(32):.4f}." if floor else "",
              "",
              "![eval loss against wall-clock time](img/demo.png)",
              "<!-- report:demo:end -->"]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--command", required=True)
    a = ap.parse_args()
    with open(a.report) as f:
        report = json.load(f)
    text = section(report, a.command)
    with open(a.markdown) as f:
        md = f.read()
    pattern = re.compile(r"<!-- report:demo:begin -->.*?<!-- report:demo:end -->\n", re.S)
    md = pattern.sub(lambda _: text, md) if pattern.search(md) else md.rstrip("\n") + "\n\n" + text
    with open(a.markdown, "w") as f:
        f.write(md)
    print(text)


if __name__ == "__main__":
    main()
