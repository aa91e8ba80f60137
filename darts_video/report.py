"""The experiment's report: the arms (mean ± std of top-1, long-range classes, cost), each difference
of the main arm with its 95 % interval, the proxy's Kendall τ, the searches' decisions and their
stability, collapse diagnostics per search epoch, tests that collapsed, the verdict, and two plots."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from darts_video.data.synthetic import CLASSES, PAIRS
from darts_video.shortlist import format_margin
from darts_video.stats import kendall_tau, welch_interval
from darts_video.utils.files import atomic_write_text

BASELINE_GROUPS = ("bare", "nonlocal", "non_local cell", "random")
COLLAPSE_POINTS = 10.0  # a test this far below the run's last validation is flagged as collapsed
SOFTMAX_DOT = "dot_"  # with "_softmax": the operations of the non-local kind


def write_report(root: Path, config, searches: dict[str, dict], runs: list[dict], proxy: dict[str, dict[str, float]]) -> dict[str, Any]:
    """report.json, report.md, accuracy.png and alpha.png in ``root``; returns the report."""
    columns = long_range_columns(config.data, config.long_range_classes)
    arms = [_arm(group, [r for r in runs if r["group"] == group], columns, searches) for group in _groups(runs)]
    by_group = {arm["group"]: arm for arm in arms}
    main = f"searched ({config.search_mode})"
    report = {
        "machine": machine(config.resolved_device()),
        "config": dataclasses.asdict(config),
        "arms": arms,
        "differences": differences(by_group, main),
        "proxy": proxy_ranking(proxy, runs),
        "stability": stability([s for s in searches.values() if s["mode"] == config.search_mode]),
        "collapsed": collapsed(runs),
        "searches": {name: _search_summary(search) for name, search in searches.items()},
        "runs": [{k: v for k, v in run.items() if k != "cost"} | {"parameters": run["cost"]["parameters"],
                                                                   "flops_per_clip": run["cost"]["flops_per_clip"]} for run in runs],
    }
    report["verdict"] = verdict(by_group, main, report)
    atomic_write_text(root / "report.json", json.dumps(report, indent=2) + "\n")
    markdown = to_markdown(report, columns)
    atomic_write_text(root / "report.md", markdown)
    plot_accuracy(arms, root / "accuracy.png")
    plot_alpha(searches, root / "alpha.png")
    print(markdown)
    return report


def long_range_columns(data: str, classes: list[str] | None) -> dict[str, list[str]]:
    """Column label -> the classes it averages: the built-in dataset's pairs, or the classes asked for."""
    if classes:
        return {name: [name] for name in classes}
    if data == "synthetic":
        return {f"{pair} pair": [CLASSES[i] for i in members] for pair, members in PAIRS.items()}
    return {}


def _groups(runs: list[dict]) -> list[str]:
    seen = list(dict.fromkeys(run["group"] for run in runs))
    return [g for g in BASELINE_GROUPS if g in seen] + [g for g in seen if g not in BASELINE_GROUPS]


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _arm(group: str, runs: list[dict], columns: dict[str, list[str]], searches: dict[str, dict]) -> dict[str, Any]:
    top1 = [run["test"]["video/top1"] for run in runs]
    mean, std = mean_std(top1)
    long_range = {}
    for label, classes in columns.items():
        values = [statistics.fmean(run["test"]["per_class"][c] for c in classes) for run in runs
                  if all(c in run["test"]["per_class"] for c in classes)]
        if values:
            long_range[label] = statistics.fmean(values)
    seconds = [searches[run["search"]]["seconds"] for run in runs if "search" in run]
    return {
        "group": group, "runs": len(runs), "top1": top1, "top1_mean": mean, "top1_std": std, "long_range": long_range,
        "parameters": statistics.fmean(run["cost"]["parameters"] for run in runs),
        "gflops": statistics.fmean(run["cost"]["flops_per_clip"] for run in runs) / 1e9,
        "search_seconds": statistics.fmean(seconds) if seconds else None,
    }


def differences(arms: dict[str, dict], main: str) -> dict[str, dict[str, float]]:
    """main − each reference arm, with Welch's 95 % interval (where both have two runs or more)."""
    if main not in arms or arms[main]["runs"] < 2:
        return {}
    return {other: welch_interval(arms[main]["top1"], arms[other]["top1"])
            for other in ("nonlocal", "non_local cell", "random", "bare") if other in arms and arms[other]["runs"] >= 2}


def proxy_ranking(proxy: dict[str, dict[str, float]], runs: list[dict]) -> dict[str, Any]:
    """Kendall's τ between each search's score of the random cells and their retrained top-1."""
    retrained = {r["name"].removeprefix("random-"): r["test"]["video/top1"] for r in runs if r["group"] == "random"}
    result = {}
    for search, scores in proxy.items():
        cells = [c for c in scores if c in retrained]
        if len(cells) >= 2:
            result[search] = {"tau": kendall_tau([scores[c] for c in cells], [retrained[c] for c in cells]), "cells": len(cells),
                              "scores": scores}
    if result:
        result["mean_tau"] = statistics.fmean(v["tau"] for v in result.values())
    return result


def stability(searches: list[dict]) -> dict[str, Any]:
    """Per node: each seed's operation and whether it was supported; whether node 1 is supported in
    every seed; for the nodes supported in every seed, whether most seeds chose one operation; and
    each search's re-derivation on another subset of its search-val clips (which supported
    decisions it kept, lost or added)."""
    ops = [{d["node"]: d for d in s["decisions"] if d["kind"] == "op"} for s in searches]
    nodes = sorted(ops[0]) if ops else []
    per_node = {}
    for node in nodes:
        chosen = [seed[node]["chosen"] for seed in ops]
        supported = [seed[node]["supported"] for seed in ops]
        common, count = Counter(chosen).most_common(1)[0]
        per_node[f"node {node}"] = {"chosen": chosen, "supported": supported, "most_common": common, "agreeing": count}
    always = [name for name, n in per_node.items() if all(n["supported"])]
    majority = len(searches) // 2 + 1
    return {
        "nodes": per_node,
        "cells_effect": [s.get("cells_effect") for s in searches],
        "rederivation": [s.get("rederivation") for s in searches],  # on another search-val subset; None: not re-derived
        "shortlist": [s.get("shortlist") for s in searches],  # the final choice among briefly trained cells; None: no shortlist
        "node1_supported_in_every_seed": bool(per_node) and all(per_node["node 1"]["supported"]),
        "supported_in_every_seed": always,
        "agree_where_supported": bool(always) and all(per_node[name]["agreeing"] >= majority for name in always),
    }


def collapsed(runs: list[dict]) -> list[dict[str, Any]]:
    """Runs whose final test lies more than COLLAPSE_POINTS below their last validation: the test
    measured something training did not learn (e.g. views unlike the training crops)."""
    return [{"name": r["name"], "test_top1": r["test"]["video/top1"], "last_val_top1": r["last_val_top1"]}
            for r in runs if r["test"]["video/top1"] < r["last_val_top1"] - COLLAPSE_POINTS]


def _holds_softmax_dot(genotype: dict | None) -> bool:
    return bool(genotype) and any(n["op"]["name"].startswith(SOFTMAX_DOT) and n["op"]["name"].endswith("_softmax") for n in genotype["nodes"])


def verdict(arms: dict[str, dict], main: str, report: dict[str, Any]) -> dict[str, Any]:
    """The bars of the main searched arm, each with the numbers it compares (empty without the arms)."""
    if main not in arms or not {"bare", "nonlocal", "random"} <= arms.keys():
        return {}
    searched, bare, nonlocal_, random_ = (arms[g] for g in (main, "bare", "nonlocal", "random"))
    checks = {
        "beats_bare_by_20": {"passed": searched["top1_mean"] - bare["top1_mean"] >= 20, "margin": searched["top1_mean"] - bare["top1_mean"] - 20},
        "beats_nonlocal_by_1": {"passed": searched["top1_mean"] - nonlocal_["top1_mean"] >= 1,
                                "margin": searched["top1_mean"] - nonlocal_["top1_mean"] - 1},
        "beats_random_by_1_std": {"passed": searched["top1_mean"] > random_["top1_mean"] + random_["top1_std"],
                                  "margin": searched["top1_mean"] - random_["top1_mean"] - random_["top1_std"]},
    }
    interval = report["differences"].get("nonlocal")
    if interval:
        checks["interval_above_nonlocal"] = {"passed": interval["low"] > 0, "margin": interval["low"]}
    if "non_local cell" in arms:
        gap = arms["non_local cell"]["top1_mean"] - nonlocal_["top1_mean"]
        checks["non_local_cell_within_1.5_of_block"] = {"passed": abs(gap) <= 1.5, "margin": 1.5 - abs(gap)}
    softmax_runs = [r for r in report["runs"] if _holds_softmax_dot(r["genotype"])]
    if softmax_runs:
        lowest = min(r["test"]["video/top1"] for r in softmax_runs)
        checks["softmax_cells_clear_bare_by_3"] = {"passed": lowest > bare["top1_mean"] + 3, "margin": lowest - bare["top1_mean"] - 3}
    stable = report["stability"]
    if stable["nodes"]:
        checks["node1_supported_in_every_seed"] = {"passed": stable["node1_supported_in_every_seed"], "margin": None}
        checks["seeds_agree_where_supported"] = {"passed": stable["agree_where_supported"], "margin": None}
    rederived = [r for r in stable.get("rederivation", []) if r is not None]
    if rederived:
        checks["supported_decisions_stay_on_another_subset"] = {"passed": all(r["stable"] for r in rederived), "margin": None}
    checks["no_collapsed_test"] = {"passed": not report["collapsed"], "margin": None}
    return checks


def _search_summary(search: dict) -> dict[str, Any]:
    metrics = search["metrics"]
    diagnostics = [{k: m[k] for k in ("epoch", "accuracy/train", "loss/arch_val", "collapse/op_entropy/mean_relative",
                                      "collapse/parameter_free/mean") if k in m} for m in metrics]
    return {"mode": search["mode"], "seed": search["seed"], "seconds": search["seconds"], "path": search["path"],
            "genotype": search["genotype"], "diagnostics": diagnostics, "decisions": search["decisions"]}


def machine(device: str) -> dict[str, Any]:
    """Where the numbers were measured: CPU model and cores (or the GPU), torch's threads and version."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    gpu = torch.cuda.get_device_name() if device.startswith("cuda") else None
    return {"device": device, "gpu": gpu, "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}


def _cell(genotype: dict | None) -> str:
    return ", ".join(f"{n['op']['name']}({n['input']})" for n in genotype["nodes"]) if genotype else "–"


def to_markdown(report: dict[str, Any], columns: dict[str, list[str]]) -> str:
    m = report["machine"]
    where = m["gpu"] or f"{m['cpu']}, {m['torch_threads']} threads"
    lines = ["# Experiment: searched cells against bare, non-local and random cells", "",
             f"Machine: {m['device']} ({where}); torch {m['torch']}.", "",
             "| arm | runs | top-1 (mean ± std) | " + " | ".join(columns) + " | params (M) | GFLOPs | search time |",
             "|---|---|---|" + "---|" * len(columns) + "---|---|---|"]
    for arm in report["arms"]:
        cells = [f"{arm['long_range'][c]:.1f}" if c in arm["long_range"] else "–" for c in columns]
        search = f"{arm['search_seconds'] / 60:.1f} min" if arm["search_seconds"] is not None else "–"
        lines.append(f"| {arm['group']} | {arm['runs']} | {arm['top1_mean']:.1f} ± {arm['top1_std']:.1f} | " + " | ".join(cells)
                     + f" | {arm['parameters'] / 1e6:.3f} | {arm['gflops']:.3f} | {search} |")
    lines += ["", "Top-1: video level on the test set. Long-range columns: accuracy on those classes (mean over runs).",
              "Search time: data + compute summed over the search's epochs, plus the selection, per search.", ""]
    if report["differences"]:
        lines += ["## Differences of the main arm (95 % Welch interval)", "", "| main − | difference | 95 % interval |", "|---|---|---|"]
        for other, d in report["differences"].items():
            lines.append(f"| {other} | {d['difference']:+.1f} | [{d['low']:+.1f}, {d['high']:+.1f}] |")
        lines.append("")
    if report["verdict"]:
        lines += ["## Verdict (main searched arm)", ""]
        for name, check in report["verdict"].items():
            margin = f" (margin {check['margin']:+.1f} points)" if check["margin"] is not None else ""
            lines.append(f"- {name.replace('_', ' ')}: {'yes' if check['passed'] else 'no'}{margin}")
        lines.append("")
    if report["collapsed"]:
        lines += ["## Tests that collapsed", "", f"These runs' test lies more than {COLLAPSE_POINTS:.0f} points below their last "
                  "validation; their test numbers do not measure what training learnt:", ""]
        lines += [f"- {c['name']}: test {c['test_top1']:.1f}, last validation {c['last_val_top1']:.1f}" for c in report["collapsed"]]
        lines.append("")
    if report["proxy"]:
        lines += ["## Does the search's score rank cells as retraining does?", "",
                  "Kendall's τ between each main search's score of the random cells (its supernet's search-val accuracy with "
                  "only that cell's path) and their retrained top-1.", ""]
        lines += [f"- {name}: τ = {v['tau']:+.2f} over {v['cells']} cells ({v['cells'] * (v['cells'] - 1) // 2} pairs)"
                  for name, v in report["proxy"].items() if name != "mean_tau"]
        lines += [f"- mean: τ = {report['proxy']['mean_tau']:+.2f}", ""]
    stable = report["stability"]
    if stable["nodes"]:
        lines += ["## The main searches' decisions", "", "| node | the selector's operation per seed (✓ supported beyond noise) |", "|---|---|"]
        effects = [(f"{e['points']:+.1f} ± {e['stderr']:.1f} {'✓' if e['supported'] else '?'}" if e else "–")
                   for e in stable.get("cells_effect", [])]
        lines.append("| cells' effect (points) | " + ", ".join(effects) + " |")
        if any(stable.get("shortlist", [])):
            lines.append("| shortlist's choice: margin over the runner-up | " + ", ".join(
                (f"{format_margin(r)} {'✓' if r['supported'] else '?'}" if r and r["margin"] is not None else "–")
                for r in stable["shortlist"]) + " |")
        if any(stable.get("rederivation", [])):
            lines.append("| supported decisions re-derived on another subset | " + ", ".join(
                (f"{len(r['kept'])} kept, {len(r['lost'])} lost, {len(r['new'])} new" if r else "–") for r in stable["rederivation"]) + " |")
        for name, node in stable["nodes"].items():
            lines.append(f"| {name} | " + ", ".join(f"{op} {'✓' if ok else '?'}" for op, ok in zip(node["chosen"], node["supported"])) + " |")
        lines.append("")
        unstable = [(seed, r) for seed, r in enumerate(stable.get("rederivation", [])) if r and not r["stable"]]
        lines += [f"- search {seed + 1}, re-derived on another subset: " + "; ".join(
            f"{kind} {', '.join(r[kind])}" for kind in ("lost", "new") if r[kind]) for seed, r in unstable]
        if unstable:
            lines.append("")
    lines += ["## Runs", "", "| run | group | seed | top-1 | last val | cell |", "|---|---|---|---|---|---|"]
    for run in report["runs"]:
        lines.append(f"| {run['name']} | {run['group']} | {run['seed']} | {run['test']['video/top1']:.1f} | {run['last_val_top1']:.1f} "
                     f"| {_cell(run['genotype'])} |")
    lines += ["", "## Collapse diagnostics per search epoch", "",
              "Relative op entropy: mean over nodes of the entropy of α's distribution / log(number of ops) (1 = uniform, 0 = decided). "
              "Parameter-free: mean probability on parameter-free operations.", ""]
    for name, search in report["searches"].items():
        lines += [f"### {name} ({search['seconds'] / 60:.1f} min)", "", "| epoch | train acc | arch val loss | relative op entropy | parameter-free |",
                  "|---|---|---|---|---|"]
        for d in search["diagnostics"]:
            arch_loss = f"{d['loss/arch_val']:.3f}" if "loss/arch_val" in d else "warm-up"
            lines.append(f"| {d['epoch']} | {d['accuracy/train']:.1f} | {arch_loss} | {d['collapse/op_entropy/mean_relative']:.3f} "
                         f"| {d['collapse/parameter_free/mean']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def plot_accuracy(arms: list[dict], path: Path) -> None:
    """Bars: mean top-1 per arm with its standard deviation; dots: the single runs."""
    figure = Figure(figsize=(1.2 * len(arms) + 2, 4))
    axis = figure.subplots()
    positions = range(len(arms))
    axis.bar(positions, [a["top1_mean"] for a in arms], yerr=[a["top1_std"] for a in arms], capsize=4, color="#9ecae1")
    for x, arm in zip(positions, arms):
        axis.scatter([x] * len(arm["top1"]), arm["top1"], color="#08519c", s=12, zorder=3)
    axis.set_xticks(list(positions), [a["group"] for a in arms], rotation=30, ha="right")
    axis.set_ylabel("test top-1 (%)")
    axis.set_title("Top-1 per arm (mean ± std; dots: runs)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def plot_alpha(searches: dict[str, dict], path: Path, top: int = 3) -> None:
    """One row per search, one panel per node: every operation's probability over the epochs,
    the ``top`` most probable at the end named in the legend."""
    nodes = max(int(k.split("/")[1][4:]) for s in searches.values() for k in s["metrics"][0] if k.startswith("alpha/"))
    figure = Figure(figsize=(4 * nodes, 2.6 * len(searches)))
    axes = figure.subplots(len(searches), nodes, squeeze=False)
    for row, (name, search) in zip(axes, searches.items()):
        epochs = [m["epoch"] for m in search["metrics"]]
        for number, axis in enumerate(row, start=1):
            prefix = f"alpha/node{number}/"
            ops = [k[len(prefix):] for k in search["metrics"][-1] if k.startswith(prefix)]
            final = sorted(ops, key=lambda op: -search["metrics"][-1][prefix + op])
            for op in ops:
                named = op in final[:top]
                axis.plot(epochs, [m[prefix + op] for m in search["metrics"]], linewidth=1.5 if named else 0.6,
                          color=None if named else "#bbbbbb", label=op if named else None)
            axis.set_title(f"{name}: node {number}", fontsize=9)
            axis.set_ylim(0, max(1.0 / max(1, len(ops)) * 2, max(search["metrics"][-1][prefix + op] for op in ops) * 1.1))
            axis.legend(fontsize=6, loc="upper left")
            axis.set_xlabel("epoch", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
