"""Evaluation as PySlowFast reports it: every view scored alone (clip level), and the softmax
scores of a video's views averaged (video level, the multi-view test); top-1 / top-5 and
accuracy per class. Under DDP each rank scores its shard and the sums are all-reduced.

Evaluation shards are uneven (nothing is padded, so every video is scored once), and a rank may
skip a batch whose videos all failed: no collective can run per batch. The failures are therefore
gathered once, at the end, and every rank applies the bad-video limit to the same global list."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from darts_video.data import BadVideoLog, ClipTransform
from darts_video.engine import distributed


def evaluate(model: nn.Module, loader: DataLoader, transform: ClipTransform, classes: list[str], num_videos: int,
             device: torch.device, amp_dtype: torch.dtype | None = None, bad_videos: BadVideoLog | None = None) -> dict:
    """Metrics over ``loader``'s views; its samples carry the video ``index`` they come from.

    ``bad_videos``: the log of this set of videos (its size and limit), into which every rank's
    failures are recorded on every rank once the loader is done; it raises on all ranks alike."""
    was_training = model.training
    model.eval()
    num_classes, top = len(classes), min(5, len(classes))
    scores = torch.zeros(num_videos, num_classes, device=device)  # Σ softmax over the views of a video
    labels = torch.full((num_videos,), -1, dtype=torch.long, device=device)
    clip_counts = torch.zeros(3, device=device)  # views, top-1 hits, top-k hits
    failures: list[str] = []  # this rank's
    with torch.no_grad():
        for batch in loader:
            failures += batch["failures"]
            if batch["video"] is None:
                continue
            clips = transform.normalize(batch["video"].to(device, non_blocking=True))
            target, index = batch["label"].to(device, non_blocking=True), batch["index"].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                probabilities = model(clips).float().softmax(dim=1)  # (B, num_classes)
            best = probabilities.topk(top, dim=1).indices
            clip_counts += torch.stack([torch.tensor(float(len(target)), device=device), (best[:, 0] == target).sum(),
                                        (best == target[:, None]).any(dim=1).sum()])
            scores.index_add_(0, index, probabilities)
            labels[index] = target
    model.train(was_training)
    if distributed.is_distributed():
        for tensor in (scores, clip_counts):
            torch.distributed.all_reduce(tensor)
        torch.distributed.all_reduce(labels, op=torch.distributed.ReduceOp.MAX)
        failures = [failure for rank_failures in distributed.gather_objects(failures) for failure in rank_failures]
    if bad_videos is not None:
        bad_videos.record(failures)  # the same list on every rank: all stop or none
    seen = labels >= 0
    videos, video_labels = scores[seen], labels[seen]
    ranked = videos.topk(top, dim=1).indices
    correct = ranked[:, 0] == video_labels
    per_class = {}
    for number, name in enumerate(classes):
        of_class = video_labels == number
        if of_class.any():
            per_class[name] = 100 * correct[of_class].float().mean().item()
    views = max(1.0, clip_counts[0].item())
    return {
        "clip/top1": 100 * clip_counts[1].item() / views,
        f"clip/top{top}": 100 * clip_counts[2].item() / views,
        "video/top1": 100 * correct.float().mean().item() if len(correct) else 0.0,
        f"video/top{top}": 100 * (ranked == video_labels[:, None]).any(dim=1).float().mean().item() if len(correct) else 0.0,
        "views": int(views),
        "videos": int(seen.sum().item()),
        "per_class": per_class,
    }


def format_evaluation(metrics: dict, title: str) -> str:
    """A Markdown report: clip- and video-level accuracy, then the per-class table (video level)."""
    top = next(k for k in metrics if k.startswith("clip/top") and k != "clip/top1").removeprefix("clip/")
    lines = [
        f"## {title}", "",
        f"| level | top-1 | {top} | count |", "| --- | --- | --- | --- |",
        f"| clip (each view alone) | {metrics['clip/top1']:.2f} | {metrics[f'clip/{top}']:.2f} | {metrics['views']} views |",
        f"| video (views averaged) | {metrics['video/top1']:.2f} | {metrics[f'video/{top}']:.2f} | {metrics['videos']} videos |",
        "", "| class | video top-1 |", "| --- | --- |",
    ]
    lines += [f"| {name} | {accuracy:.1f} |" for name, accuracy in metrics["per_class"].items()]
    return "\n".join(lines) + "\n"
