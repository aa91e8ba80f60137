"""How well a short training ranks cells: the experiment's random cells, briefly trained, against their retraining.

    python benchmarks/shortlist_ranking.py runs/experiment_open                    # every main search, every start (about 70 min on 2 cores)
    python benchmarks/shortlist_ranking.py runs/experiment_open --starts open --searches darts-1st-seed0

The shortlist (``darts_video.shortlist``) is only as good as its short trainings' ranking. This
script trains each random cell of a finished experiment the way the shortlist does
(``shortlist_model`` + ``train_briefly``, ``--shortlist-epochs`` of the search, on its search-train
half, scored on its ``--shortlist-clips`` search-val clips), once per start:

- ``closed``: the shortlist's default start and the retraining's (sink scale 0, the cell the identity);
- ``open``: every sink's scale 1 (the shortlist's default before 2026-12-08, with 4 epochs);
- ``inherit``: closed, inside the search's trained supernet backbone (its weights outside the cells);
- ``inherit-open``: open, inside that backbone;
- ``small``: every sink's scale at ``--small-scale`` (0.1: a small residual branch, as LayerScale starts one).

and prints, for each score the shortlist can choose by (search-val accuracy, cross-entropy), Kendall's
τ between those scores and the cells' retrained top-1 from the experiment's report.json, and where
the best retrained cell lands. The numbers of docs/selection.md ("Open cells in the short
trainings", "Choosing by cross-entropy instead of accuracy") come from this script.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from torch import nn

from timing import markdown_table

from darts_video.data import BadVideoLog, load_split
from darts_video.derive import TrainedSearch, load_search, selection_batches
from darts_video.engine import distributed
from darts_video.engine.loop import TrainingRun
from darts_video.genotype import Genotype
from darts_video.options import build_dataset
from darts_video.shortlist import SHORTLIST_SCORES, clip_scores, shortlist_model, train_briefly
from darts_video.stats import kendall_tau

STARTS = ("closed", "inherit", "open", "inherit-open", "small")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", type=Path, help="a finished run_experiment.py folder (report.json, random_cells/, searches/)")
    parser.add_argument("--starts", nargs="+", choices=STARTS, default=list(STARTS))
    parser.add_argument("--searches", nargs="+", help="search folders under EXPERIMENT/searches (default: the main mode's)")
    parser.add_argument("--epochs", type=int, help="short-training epochs (default: each search's --shortlist-epochs)")
    parser.add_argument("--small-scale", type=float, default=0.1, help="the sinks' scale of the small start")
    parser.add_argument("--device", help="where to train (default: each search's --device)")
    args = parser.parse_args()
    report = json.loads((args.experiment / "report.json").read_text())
    retrained = {r["name"].removeprefix("random-"): r["test"]["video/top1"] for r in report["runs"] if r["group"] == "random"}
    if len(retrained) < 2:
        raise SystemExit(f"{args.experiment / 'report.json'} has {len(retrained)} retrained random cells; Kendall's τ needs 2")
    main_mode = report["config"]["search_mode"]
    searches = args.searches or sorted(p.name for p in (args.experiment / "searches").iterdir() if p.name.rsplit("-seed", 1)[0] == main_mode)
    cells = sorted(retrained)
    genotypes = {cell: Genotype.load(args.experiment / "random_cells" / f"{cell}.json") for cell in cells}
    best = max(cells, key=retrained.get)
    rows = []
    for name in searches:
        short = ShortTraining(args.experiment / "searches" / name, args.epochs, args.device, args.small_scale)
        for start in args.starts:
            trained = {cell: short.score(genotypes[cell], start) for cell in cells}
            for score in SHORTLIST_SCORES:  # the same trainings, each score the shortlist can choose by
                gains = {cell: trained[cell][score] for cell in cells}  # higher is better
                tau = kendall_tau([gains[c] for c in cells], [retrained[c] for c in cells])
                runner_up = max(gains[c] for c in cells if c != best)
                digits = ".4g" if score == "accuracy" else ".6f"  # cross-entropies of cells that learnt little differ in the 5th decimal
                rows.append([name, start, f"{short.epochs}", score, f"{tau:+.2f}", f"{_rank(gains, best)} ({gains[best] - runner_up:+{digits}})",
                             " ".join(f"{abs(gains[c]):{digits}}" for c in cells)])
                print(f"{name}, {start}, by {score}: τ = {tau:+.2f}", flush=True)
    print(f"\nretrained top-1 of {', '.join(cells)}: " + " ".join(f"{retrained[c]:.1f}" for c in cells)
          + f"; the best retrained: {best}")
    print(markdown_table(["search", "start", "epochs", "score", "Kendall's τ", f"{best}'s rank (margin)",
                          "after the short training: search-val % or cross-entropy"], rows))


class ShortTraining:
    """The shortlist's short training and scoring on one finished search's halves and clips."""

    def __init__(self, search: Path, epochs: int | None, device: str | None, small_scale: float = 0.1) -> None:
        self.search, self.trained, self.small_scale = search, load_search(search / "checkpoints" / "latest.pt"), small_scale
        config = self.trained.config
        self.epochs = epochs or config.shortlist_epochs
        dataset, _, transform = build_dataset(config, "train")
        self.transform = transform.with_statistics(config.mean, config.std)  # as the search: the statistics its config.json resolved
        train_indices, _ = load_split(search / "split.json")
        self.run = TrainingRun(str(search), config.seed, device or config.resolved_device())  # never opened: writes nothing there
        self.run.bad_videos = BadVideoLog(len(dataset.labels), config.max_bad_videos)  # the search's tolerance of undecodable videos
        self.loader = distributed.shard_loader(dataset, config.batch_size, config.workers, config.seed, True, self.run.device, train_indices)
        self.batches, _ = selection_batches(dataclasses.replace(config, selection_clips=config.shortlist_clips), self.trained.classes,
                                            self.trained.val_indices, self.run.device)

    def score(self, genotype: Genotype, start: str) -> dict[str, float]:
        """``genotype``'s search-val accuracy (%) and negated cross-entropy on the shortlist's clips
        after a short training from ``start``: each score the shortlist can choose by, higher better."""
        config = self.trained.config
        scale = {"closed": 0.0, "inherit": 0.0, "small": self.small_scale}.get(start, 1.0)  # the open starts: 1
        model = shortlist_model(genotype, config.backbone, len(self.trained.classes), config.points, config.seed, config.pretrained,
                                config.pretrained_config, sink_scale=scale)
        if start.startswith("inherit"):
            inherit_backbone(model, self.trained)
        model = train_briefly(model, self.loader, self.transform, self.run, self.epochs, f"{self.search.name}, {start}")
        correct, losses = clip_scores(model, self.batches)
        return {"accuracy": 100 * correct.mean().item(), "loss": -losses.mean().item()}


def _rank(scores: dict[str, float], cell: str) -> str:
    """``cell``'s rank by score, best first: "2", or "2-3" where it ties with another."""
    first = 1 + sum(score > scores[cell] for score in scores.values())
    last = first + sum(score == scores[cell] for name, score in scores.items() if name != cell)
    return f"{first}" if last == first else f"{first}-{last}"


def inherit_backbone(model: nn.Module, trained: TrainedSearch) -> None:
    """``model``'s weights outside its cells from the trained supernet's backbone."""
    outside = {k: v for k, v in trained.model.backbone.state_dict().items()
               if not any(k.startswith(f"{point}.attention.") for point in trained.model.points)}
    missing, unexpected = model.load_state_dict(outside, strict=False)
    if unexpected or not all(".attention." in key for key in missing):
        raise RuntimeError(f"the supernet's backbone does not match the cell's network: missing {missing}, unexpected {unexpected}")


if __name__ == "__main__":
    main()
