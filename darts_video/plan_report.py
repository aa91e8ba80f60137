"""The planner's command line (the search's options plus its own) and its printed report."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from darts_video.plan import GIB, Plan, PlanOptions, plan_search
from darts_video.search_config import SearchConfig, build_parser, config_from_args
from darts_video.utils.files import atomic_write_text

MIB = 2**20
PLAN_ARGUMENTS = {"plan_steps": "steps", "memory_limit": "memory_limit_gib", "plan_max_batch": "max_batch",
                  "plan_processes": "processes", "plan_without_data": "without_data", "plan_classes": "classes"}


def build_plan_parser(search: bool = False) -> argparse.ArgumentParser:
    """``search_supernet.py``'s parser with a ``plan`` group: the planner takes the search's options.
    ``search=True``: the search's own command line, where ``--plan`` plans instead of searching."""
    parser = build_parser()
    defaults = PlanOptions()
    plan = parser.add_argument_group("plan" + (" (with --plan)" if search else ""))
    if search:
        plan.add_argument("--plan", action="store_true", help="print the plan of this search (scripts/plan_search.py) instead of running it")
    else:
        parser.description = ("Plan a search before running it: build the configured supernet on the device, run a few steps on clips "
                              "of the real shape and print peak memory, time per step, the largest batch that fits and the projected "
                              "wall time. Takes every option of search_supernet.py.")
    plan.add_argument("--plan-steps", type=int, default=defaults.steps, help="timed steps per measurement (after one warm-up step)")
    plan.add_argument("--memory-limit", type=float, metavar="GIB",
                      help="memory per device the largest batch must fit in, GiB (default: a CUDA device's memory; on CPU the "
                      "memory available when the plan starts)")
    plan.add_argument("--plan-max-batch", type=int, default=defaults.max_batch, help="largest batch the batch search tries")
    plan.add_argument("--plan-processes", type=int, default=defaults.processes,
                      help="processes of the planned torchrun run (steps per epoch divide by it; all-reduces are not timed)")
    plan.add_argument("--plan-without-data", action="store_true",
                      help="read no data: random clips of --num-frames x --crop-size², --num-clips videos, --plan-classes classes "
                      "(no data time)")
    plan.add_argument("--plan-classes", type=int, default=defaults.classes, help="classes with --plan-without-data")
    plan.add_argument("--plan-out", metavar="FILE", help="also write the plan as JSON (default: print only)")
    return parser


def options_from_args(args: argparse.Namespace) -> tuple[SearchConfig, PlanOptions, str | None]:
    """The search's configuration, the plan's options and ``--plan-out``, from one command line."""
    values = vars(args).copy()
    plan = PlanOptions(**{field: values.pop(name) for name, field in PLAN_ARGUMENTS.items()})
    out = values.pop("plan_out")
    values.pop("plan", None)  # search_supernet.py --plan
    return config_from_args(argparse.Namespace(**values)), plan, out


def format_plan(plan: Plan) -> str:
    d = plan.description
    shape = "x".join(map(str, plan.clip_shape))
    lines = [f"plan: {d['mode']} search (order {d['order']}), {d['backbone']} with cells at {', '.join(d['points'])}, "
             f"{d['candidates']} candidates x K = {d['nodes']}, batch {plan.batch_size} of {shape} clips, {d['device']}, "
             f"amp {d['amp']}, recompute {'on' if d['recompute'] else 'off'}", ""]
    bare = plan.backbone
    rows = [["the backbone alone (training step)", _mib(bare.peak_bytes), "–", _ms(bare.weight_s), "–", "–", "–"]]
    for point, cost in plan.points.items():
        rows.append([f"cell at {point} alone", _mib(cost.peak_bytes), _mib(_minus(cost.peak_bytes, bare.peak_bytes)),
                     _ms(cost.weight_s), f"{(cost.weight_s - bare.weight_s) * 1e3:+.0f}", _ms(cost.arch_s), "–"])
    total = plan.total
    data = "–" if plan.data_batch_s is None else f"{plan.data_step_s['search'] * 1e3:.0f} ({plan.data_step_s['warmup'] * 1e3:.0f} in warm-up)"
    rows.append(["supernet, every point", _mib(total.peak_bytes), _mib(_minus(total.peak_bytes, bare.peak_bytes)), _ms(total.weight_s),
                 f"{(total.weight_s - bare.weight_s) * 1e3:+.0f}", _ms(total.arch_s), data])
    header = ["part", "peak MiB", "over the backbone MiB", "weight step ms", "over the backbone ms", "arch step ms", "data wait ms/step"]
    lines += [_table(header, rows), ""]
    if len(plan.points) > 1 and bare.peak_bytes is not None and total.peak_bytes is not None:
        parts = sum(c.peak_bytes - bare.peak_bytes for c in plan.points.values() if c.peak_bytes is not None)
        lines.append(f"the points' increments sum to {parts / MIB:.0f} MiB; together they add {(total.peak_bytes - bare.peak_bytes) / MIB:.0f} MiB")
    if plan.per_clip_bytes is not None and plan.backbone_per_clip_bytes:
        lines.append(f"memory per clip: the search step {plan.per_clip_bytes / MIB:.1f} MiB, the bare backbone's training step "
                     f"{plan.backbone_per_clip_bytes / MIB:.1f} MiB: {plan.per_clip_bytes / plan.backbone_per_clip_bytes:.2f}x")
    probes = ", ".join(f"{p.batch}: {_gib(p.peak_bytes)}" + {"measured": "", "predicted": " predicted, not run",
                                                            "out of memory": "out of memory"}[p.how] for p in plan.probes)
    lines.append(f"largest batch per device: {plan.largest_batch} (limit {plan.memory_limit_bytes / GIB:.2f} GiB, "
                 f"{plan.memory_limit_source}; search-step peaks: {probes})")
    if plan.largest_batch < plan.batch_size:
        lines.append(f"WARNING: --batch-size {plan.batch_size} does not fit under the limit; at most {plan.largest_batch} does")
    p, s = plan.projection, plan.selection
    lines.append(f"data: {_ms(plan.data_batch_s)} ms per loader batch" if plan.data_batch_s is not None else "data: none read (--plan-without-data)")
    lines.append(f"projected wall time: {p['total_s']:.0f} s = {p['total_s'] / 60:.1f} min ({p['total_s'] / 3600:.2f} h)")
    lines.append(f"  setup {p['setup_s']:.1f} s (the process's start and imports included)")
    lines.append(f"  {d['warmup_epochs']} warm-up epochs x {plan.steps_per_epoch} steps x "
                 f"{(total.weight_s + plan.data_step_s['warmup']):.3f} s = {p['warmup_epochs_s']:.0f} s")
    lines.append(f"  {d['epochs'] - d['warmup_epochs']} search epochs x {plan.steps_per_epoch} steps x "
                 f"{(total.weight_s + (total.arch_s or 0) + plan.data_step_s['search']):.3f} s = {p['search_epochs_s']:.0f} s")
    lines.append(f"  checkpoints {d['epochs']} x {plan.checkpoint_s:.2f} s = {p['checkpoints_s']:.1f} s")
    if s["evaluations"]:
        lines.append(f"  selection ({d['selector']}): {s['evaluations']} evaluations of {s['clip_forwards'] // s['evaluations']} clips, "
                     f"{s['seconds']:.0f} s (data {s['data_s']:.1f} s)")
    else:
        lines.append(f"  selection ({d['selector']}): no evaluation")
    shortlist = plan.shortlist
    if shortlist["cells"]:
        lines.append(f"  shortlist: {shortlist['path_scores']} path scores, {shortlist['cells']} cells trained briefly "
                     f"({shortlist['train_step_s']:.3f} s per step), {p['shortlist_s']:.0f} s"
                     + (f"; up to {shortlist['racing_s']:.0f} s more if its choice is not beyond noise (later rounds)"
                        if shortlist["racing_s"] else ""))
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _minus(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a - b


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / MIB:.0f}"


def _gib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / GIB:.2f} GiB"


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1e3:.0f}"


def run_plan(args: argparse.Namespace, startup_s: float = 0.0) -> Plan:
    """Plan the search ``args`` describe, print the plan and write it as JSON with ``--plan-out``;
    ``startup_s``: the command's start and imports (``process_startup_seconds``), projected too."""
    config, options, out = options_from_args(args)
    options = dataclasses.replace(options, startup_s=startup_s)
    plan = plan_search(config, options)
    print(format_plan(plan))
    if out:
        atomic_write_text(Path(out), json.dumps(plan.to_dict(), indent=2) + "\n")
        print(f"plan written to {out}")
    return plan
