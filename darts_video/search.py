"""The supernet search, top to bottom: data halves, supernet, bilevel loop, then the selection.

Weights learn on the search-train half, α/β on the search-val half (never the evaluation set).
Every epoch logs α/β, the cell α ranks first with the gradients' support for each choice, and a
checkpoint; after the last epoch the selector (default: perturbation) derives the final cell,
each decision with its evidence. Re-running the same configuration on the same folder resumes.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.nn.parallel import DistributedDataParallel

from darts_video.backbones import create_backbone
from darts_video.backbones.base import VideoBackbone
from darts_video.data import save_split, stratified_split, write_label_map
from darts_video.derive import epoch_genotype, format_decisions, select_cell, selection_batches, selector_cell_file
from darts_video.diagram import genotype_to_text, write_diagram
from darts_video.engine import distributed, weight_step
from darts_video.engine.loop import EpochMeter, TrainingRun, resume_point
from darts_video.engine.optim import create_schedule, create_weight_optimizer, current_lr
from darts_video.errors import ConfigError
from darts_video.genotype import Genotype
from darts_video.options import AMP_DTYPES, build_dataset
from darts_video.search_config import WEIGHT_OPTIMIZERS, SearchConfig
from darts_video.shortlist import (Candidate, clip_scores, decide, describe, propose, proposal_count, round_plan, shortlist_model,
                                   survivors, train_briefly)
from darts_video.space import SearchSpace
from darts_video.supernet import Supernet
from darts_video.supernet.architect import Architect
from darts_video.supernet.diagnostics import collapse_diagnostics, parameter_free_ops
from darts_video.supernet.select import Batch, GradientEvidence, cells_effect


class _GeneratorState:
    """A ``torch.Generator`` as a checkpoint component."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def state_dict(self) -> dict:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["state"])


MAX_GRAD_NORM = 5.0  # the weight step's gradient clipping


@dataclass
class SearchParts:
    """What a search step needs, built alike by the search and by its planner (``darts_video.plan``)."""

    model: Supernet
    weight_optimizer: torch.optim.Optimizer
    architect: Architect
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None


def build_search_parts(config: SearchConfig, backbone: VideoBackbone, device: torch.device,
                       points: Sequence[str] | None = None) -> SearchParts:
    """The supernet of ``config`` around ``backbone`` (cells at ``points``, default the configured
    ones) on ``device``, the weights' optimiser, the architect and the fp16 gradient scaler."""
    model = Supernet(backbone, config.space(), points if points is not None else config.points, config.mode, config.partial_channels,
                     config.normalize_candidates, config.recompute, config.sink_scale, seed=config.seed).to(device)
    weight_optimizer = create_weight_optimizer(model.backbone, config.optimizer, config.lr, WEIGHT_OPTIMIZERS[config.optimizer][1])
    amp_dtype = AMP_DTYPES[config.amp]
    architect = Architect(model, weight_optimizer, lr=config.arch_lr, order=config.order, beta_decay_weight=config.beta_decay,
                          amp_dtype=amp_dtype)
    return SearchParts(model, weight_optimizer, architect, torch.amp.GradScaler(device.type, enabled=config.amp == "fp16"), amp_dtype)


def run_search(config: SearchConfig) -> Genotype:
    """Search, or resume the search in ``config.out``; returns the final genotype (RUN/genotype.json).

    Under ``torchrun`` every process trains on its shard of each half with DDP; all ranks keep the
    same α/β (their gradients are averaged), draw the same GDAS cells and end with the same
    genotype; rank 0 writes.
    """
    run = TrainingRun(config.out, config.seed, config.resolved_device(), config.checkpoint_every)
    dataset, classes, transform = build_dataset(config, "train")
    train_indices, val_indices = stratified_split(dataset.labels, 0.5, config.seed)
    per_process = min(len(train_indices), len(val_indices)) // run.world_size
    if config.batch_size > per_process:
        raise ConfigError(f"--batch-size {config.batch_size} is larger than a search half ({per_process} clips per process)")
    space = config.space()
    backbone = create_backbone(config.backbone, num_classes=len(classes), pretrained=config.pretrained,
                               pretrained_config=config.pretrained_config)
    config.resolve_statistics(backbone.input_statistics)  # the mean / std its weights expect, unless --mean / --std
    transform = transform.with_statistics(config.mean, config.std)
    parts = build_search_parts(config, backbone, run.device)
    model, weight_optimizer, architect, scaler, amp_dtype = parts.model, parts.weight_optimizer, parts.architect, parts.scaler, parts.amp_dtype
    directory = run.open(config, len(dataset.labels), config.max_bad_videos)  # every option checked: now the folder
    if run.is_writer:
        save_split(directory.path / "split.json", train_indices, val_indices, config.seed)
        write_label_map(classes, directory.path / "classes.txt")
    trained = DistributedDataParallel(model, find_unused_parameters=config.mode == "gdas") if run.world_size > 1 else model
    train_loader = distributed.shard_loader(dataset, config.batch_size, config.workers, config.seed, True, run.device, train_indices)
    val_loader = distributed.shard_loader(dataset, config.batch_size, config.workers, config.seed, True, run.device, val_indices)
    steps_per_epoch = len(train_loader)
    schedule = create_schedule(weight_optimizer, config.epochs * steps_per_epoch, lr_min=config.lr / 50)
    gradients, meter, val_meter = GradientEvidence(space.num_nodes, len(space.ops)), EpochMeter(), EpochMeter()
    components = {"model": model, "weight_optimizer": weight_optimizer, "arch_optimizer": architect.optimizer, "scaler": scaler,
                  "gdas_generator": _GeneratorState(model.generator), "alpha_gradients": gradients, "meter": meter, "val_meter": val_meter,
                  "bad_videos": run.bad_videos}

    start_epoch, step, under_way = resume_point(run.resume(components))

    parameter_free = parameter_free_ops(space)
    selection = selection_batches(config, classes, val_indices, run.device)  # the cells' effect per epoch, then the final selection
    for epoch in range(start_epoch, config.epochs):
        model.temperature = config.tau_max - (config.tau_max - config.tau_min) * epoch / max(1, config.epochs - 1)
        search_arch = epoch >= config.warmup_epochs
        if not (under_way and epoch == start_epoch):  # else the checkpoint's meters and evidence, as far as the epoch got
            meter, val_meter, gradients = EpochMeter(), EpochMeter(), GradientEvidence(space.num_nodes, len(space.ops))
            components.update(meter=meter, val_meter=val_meter, alpha_gradients=gradients)
        train_loader.sampler.set_epoch(epoch, start=meter.batches * train_loader.batch_size)
        val_batches = _endless(run, val_loader, transform, epoch, val_meter)
        model.train()
        for clips, labels in run.batches(train_loader, transform, meter, f"epoch {epoch + 1}/{config.epochs}"):
            if search_arch:
                val_clips, val_labels = next(val_batches)
                arch_loss, alpha_grad = architect.step((clips, labels), (val_clips, val_labels), current_lr(weight_optimizer))
                gradients.add(alpha_grad)
                meter.add(arch_loss=arch_loss, arch_steps=1)
            schedule.step_update(step)
            where = f"step {step} (epoch {epoch + 1}); the last good checkpoint is {directory.latest_checkpoint}"
            logits, loss_value = weight_step(trained, clips, labels, weight_optimizer, scaler, amp_dtype, where, max_grad_norm=MAX_GRAD_NORM)
            step += 1
            meter.add(loss=loss_value * len(labels), correct=(logits.argmax(1) == labels).sum().item(), seen=len(labels))
            run.checkpoint_inside_epoch(components, meter, epoch=epoch, step=step, input_statistics={"mean": config.mean, "std": config.std})
        totals = meter.reduced(run.device)

        genotype = epoch_genotype(model, config.provenance(epoch + 1), gradients)
        if run.is_writer:
            genotype.save(directory.path / "genotypes" / f"epoch_{epoch + 1:03d}.json")
        record = {"step": step, "epoch": epoch + 1, "loss/train": totals["loss"] / max(1, totals["seen"]),
                  "accuracy/train": 100 * totals["correct"] / max(1, totals["seen"]), "lr": current_lr(weight_optimizer),
                  "time/data_s": totals["time/data_s"], "time/compute_s": totals["time/compute_s"], "gdas/temperature": model.temperature}
        if totals.get("arch_steps"):
            record["loss/arch_val"] = totals["arch_loss"] / totals["arch_steps"]
        record.update(_probabilities(model, space))
        record.update(collapse_diagnostics(model.arch.op_probabilities(), model.arch.input_probabilities(), parameter_free))
        record["decisions/supported"] = sum(d.supported for d in genotype.evidence if d.kind == "op")
        effect = cells_effect(model, selection[0])
        record.update({"cells_effect/points": effect.points, "cells_effect/stderr": effect.stderr})
        run.log(record)
        if run.is_writer:
            directory.tensorboard.add_image("alpha/probabilities", _heatmap(model.arch.op_probabilities().detach()), step)
        run.checkpoint(components, epoch=epoch, step=step, input_statistics={"mean": config.mean, "std": config.std})
        run.say(f"epoch {epoch + 1}/{config.epochs}: train loss {record['loss/train']:.3f}, accuracy {record['accuracy/train']:.1f} %"
                + (f", arch val loss {record['loss/arch_val']:.3f}" if "loss/arch_val" in record else " (warm-up: α frozen)")
                + f", op entropy {record['collapse/op_entropy/mean_relative']:.2f} of uniform, parameter-free {record['collapse/parameter_free/mean']:.2f}"
                + f", cells' effect {effect.points:+.1f} ± {effect.stderr:.1f} points" + ("" if effect.supported else " (not yet beyond noise)")
                + f"\n{genotype_to_text(genotype)}\n  α's choices (supported: the last epoch's architecture gradients favour them beyond noise):\n"
                + format_decisions(genotype))

    final = _select(config, run, model, classes, val_indices, gradients, step, selection, train_loader, transform)
    run.close()
    return final


def _select(config: SearchConfig, run: TrainingRun, model: Supernet, classes: list[str], val_indices: list[int],
            gradients: GradientEvidence, step: int, selection: tuple[list[Batch], list[str]], train_loader, transform) -> Genotype:
    """The selector's cell (with ``--shortlist``: the best of the shortlist), written with its
    diagram and summary by rank 0 (every rank derives the same: same weights, same α, same clips)."""
    run.say(f"selecting the cell ({config.selector}, {config.selection_clips} search-val clips)")
    genotype, failures = select_cell(config, model, classes, val_indices, config.provenance(config.epochs), gradients,
                                     on_decision=lambda d: run.say(f"  decided node {d.node} {d.kind}: {d.chosen}"), selection=selection)
    run.bad_videos.record(failures)  # the same clips on every rank: the same failures
    path = run.directory.path / "genotype.json"
    if config.shortlist:
        if run.is_writer:
            genotype.save(selector_cell_file(run.directory.path, config.selector))  # the selector's own cell
        genotype = _shortlisted(config, run, model, genotype, selection[0], classes, val_indices, train_loader, transform)
    if run.is_writer:
        genotype.save(path)
        diagram = write_diagram(genotype, run.directory.path / "cell", title=f"searched cell ({config.data}, {config.mode}, {config.selector})")
        unsupported = [f"node {d.node} {d.kind}" for d in genotype.unsupported()]
        effect = genotype.provenance["cells_effect"]
        shortlist = genotype.provenance.get("shortlist")
        if shortlist and not shortlist["supported"]:
            unsupported.append("the shortlist's choice")
        summary = {"genotype": str(path), "diagram": [str(p) for p in diagram], "steps": step, "selector": config.selector,
                   "selection_seconds": genotype.provenance["selection_seconds"], "cells_effect": effect,
                   "decisions": [d.to_dict() for d in genotype.evidence], "shortlist": shortlist,
                   "unsupported": unsupported, "converged": effect["supported"] and not unsupported}
        if run.bad_videos.failures:
            summary["bad_videos"] = str(run.bad_videos.write(run.directory.path / "bad_videos.txt"))
            run.say(f"{len(run.bad_videos.failures)} videos failed to decode and were skipped: {summary['bad_videos']}")
        run.directory.write_json("summary.json", summary)
        run.say(f"final cell ({genotype.selector}, {genotype.provenance['selection_seconds']:.0f} s):\n{genotype_to_text(genotype)}\n"
                + format_decisions(genotype)
                + ("\n  every decision is supported" if not unsupported else
                   f"\n  not supported beyond noise: {', '.join(unsupported)} (a longer search, or more --selection-clips, may decide them)")
                + ("" if effect["supported"] else "\n  the supernet does not use its cells yet: this search has not converged "
                   "(train longer: --epochs, --num-clips)"))
    return genotype


def _shortlisted(config: SearchConfig, run: TrainingRun, model: Supernet, selected: Genotype, selection: list[Batch], classes: list[str],
                 val_indices: list[int], train_loader, transform) -> Genotype:
    """The best of the shortlist (``darts_video.shortlist``), raced by successive halving, or
    explored further, while its choice is not beyond noise; its evidence in the provenance, the
    selector's own evidence kept where its cell wins."""
    started = time.perf_counter()
    explore = config.shortlist_later == "explore"
    proposed = proposal_count(config.shortlist, config.shortlist_rounds, config.shortlist_later)
    proposals, pool = propose(model, selection, selected, proposed, config.shortlist_pool, config.seed, draw_from=config.shortlist_pool_from)
    run.say(f"  shortlist proposals: the selector's cell and the best paths of {pool['drawn']} cells drawn from "
            + ("the whole space" if pool["from"] == "space" else f"the {pool['cells']:,} cells the selection's evidence does not rule out")
            + (" (the selection has no founded evidence: the supernet does not use its cells, or its selector measures no effects)"
               if pool["from"] != config.shortlist_pool_from else ""))
    plan = round_plan(config.shortlist, config.shortlist_epochs, config.shortlist_rounds, config.shortlist_later, len(proposals))
    scored_on, failures = selection_batches(dataclasses.replace(config, selection_clips=config.shortlist_clips), classes, val_indices, run.device)
    run.bad_videos.record(failures)
    candidates: list[Candidate] = []  # the cells trained so far
    nets: dict[int, torch.nn.Module] = {}  # the racing cells' networks, on the CPU between rounds
    rounds = []
    for number, (cells, epochs) in enumerate(plan, start=1):
        if number == 1 or explore:  # the next proposals, from their starting weights
            training = list(range(len(candidates), len(candidates) + cells))
            candidates += proposals[len(candidates): len(candidates) + cells]
        else:  # racing: the better half of the last round trains on
            training = survivors(evidence, cells)
        nets = {i: nets[i] for i in training if i in nets}  # the dropped cells' networks go
        for place, i in enumerate(training, start=1):
            start = nets.get(i)
            if start is None:
                start = shortlist_model(candidates[i].genotype, config.backbone, len(classes), config.points, config.seed, config.pretrained,
                                        config.pretrained_config, sink_scale=config.shortlist_sink_scale)
            desc = f"shortlist {place}/{len(training)}" + (f" (round {number})" if number > 1 else "")
            net = train_briefly(start, train_loader, transform, run, epochs, desc, first_epoch=candidates[i].epochs)
            scores, losses = clip_scores(net, scored_on)
            candidates[i] = dataclasses.replace(candidates[i], scores=scores, losses=losses, epochs=candidates[i].epochs + epochs)
            if not explore:  # only a race trains a cell on
                nets[i] = net.cpu()
        # rank 0's decision on every rank: a close race could otherwise go either way on ranks whose kernels round differently
        among = range(len(candidates)) if explore else training
        chosen, evidence = distributed.gather_objects(decide(candidates, config.shortlist_score, among))[0]
        rounds.append({key: evidence[key] for key in ("order", "chosen", "runner_up", "margin", "margin_stderr", "supported")}
                      | {"epochs": candidates[chosen].epochs})
        run.say(describe(evidence | {"rounds": rounds}))
        if evidence["supported"]:
            break
    evidence |= {"pool": pool, "later": config.shortlist_later, "sink_scale": config.shortlist_sink_scale, "rounds": rounds, "seconds": round(time.perf_counter() - started, 1)}
    provenance = {**selected.provenance, "shortlist": evidence}
    if chosen == 0:
        return dataclasses.replace(selected, provenance=provenance)
    winner = candidates[chosen].genotype
    return Genotype(winner.nodes, winner.sink, winner.op_config, provenance, selector="shortlist")


def _endless(run: TrainingRun, loader, transform, epoch: int, meter: EpochMeter) -> Iterator:
    """The search-val half's batches for the architecture steps: epoch ``epoch``'s order, then
    (should the half run out first) the orders of later epoch numbers, one iterator at a time;
    after the ``meter.batches`` an interrupted epoch had already drawn."""
    loader.sampler.set_epoch(epoch)
    repeat, drawn = divmod(meter.batches, len(loader))  # len: batches per pass (the sampler starts at 0)
    for repeat in itertools.count(repeat):
        loader.sampler.set_epoch(epoch + repeat * 100_000, start=drawn * loader.batch_size)
        drawn = 0
        yield from run.batches(loader, transform, meter, "search-val", progress=False)


def _heatmap(probabilities: torch.Tensor, cell: int = 12) -> torch.Tensor:
    """(K, num_ops) probabilities -> a grey (1, K·cell, num_ops·cell) image: one row per node,
    one column per candidate in ``space.ops`` order, brightest where the probability is highest."""
    image = probabilities / probabilities.max().clamp_min(1e-12)
    return image.repeat_interleave(cell, dim=0).repeat_interleave(cell, dim=1).unsqueeze(0).float().cpu()


def _probabilities(model: Supernet, space: SearchSpace) -> dict[str, float]:
    """Every decision's probabilities as scalars: ``alpha/node1/dot_temporal_softmax``, ``beta/node2/input0``."""
    scalars = {}
    for number, row in enumerate(model.arch.op_probabilities().tolist(), start=1):
        scalars.update({f"alpha/node{number}/{spec.name}": p for spec, p in zip(space.ops, row)})
    for number, row in enumerate(model.arch.input_probabilities(), start=1):
        scalars.update({f"beta/node{number}/input{j}": p for j, p in zip(space.candidate_inputs(number), row.tolist())})
    return scalars
