"""Pictures of a cell: a text rendering for terminals and logs, Graphviz DOT, PNG and SVG.

DOT needs no Python package. PNG/SVG come from Graphviz's ``dot`` program when it is installed
(``apt-get install graphviz`` / ``brew install graphviz`` / ``conda install graphviz``), else
from matplotlib, which lays the few nodes of a cell out by depth, left to right: every user
sees the cell, with or without Graphviz.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

from matplotlib import rc_context
from matplotlib.figure import Figure

from darts_video.genotype import Genotype
from darts_video.utils.files import atomic_write_bytes, atomic_write_text

_FILL = {"dot": "#cfe2f3", "map": "#fff2cc", "identity": "#eeeeee"}


def _state_name(index: int) -> str:
    return "input" if index == 0 else f"node {index}"


def genotype_to_text(genotype: Genotype) -> str:
    """One line per node, then the sink, e.g. ``node 2 = dot_temporal_softmax(node 1)``."""
    config = genotype.op_config
    lines = [f"cell: {genotype.num_nodes} node(s), reduction {config.reduction}, heads {config.heads}"]
    lines += [f"  node {i} = {node.op.name}({_state_name(node.input)})" for i, node in enumerate(genotype.nodes, start=1)]
    concat = ", ".join(_state_name(i) for i in genotype.sink)
    lines.append(f"  output = input + norm(conv1x1x1(concat[{concat}]))   # norm scale starts at 0")
    return "\n".join(lines)


def genotype_to_dot(genotype: Genotype, title: str = "cell") -> str:
    """Graphviz source: input -> operation nodes -> sink -> output, with the residual edge."""
    lines = [
        "digraph cell {",
        "  rankdir=LR;",
        f'  label="{title}"; labelloc=t; fontname="Helvetica";',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fillcolor="#ffffff"];',
        '  s0 [label="input x\\n(N, C, T, H, W)", shape=ellipse];',
    ]
    for number, node in enumerate(genotype.nodes, start=1):
        label = "\\n".join(_node_label(genotype, number))
        lines.append(f'  s{number} [label="{label}", fillcolor="{_FILL.get(node.op.type, "#ffffff")}"];')
        lines.append(f"  s{node.input} -> s{number};")
    sink_label = "\\n".join(_SINK_LABEL)
    lines.append(f'  sink [label="{sink_label}", fillcolor="#d9ead3"];')
    lines += [f"  s{number} -> sink;" for number in genotype.sink]
    lines.append('  out [label="x + cell(x)", shape=ellipse];')
    lines.append("  sink -> out;")
    lines.append('  s0 -> out [style=dashed, label="residual"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_diagram(genotype: Genotype, stem: str | Path, formats: tuple[str, ...] = ("png", "svg"), title: str = "cell") -> list[Path]:
    """Write ``stem.dot`` and ``stem.<format>`` for each format: with Graphviz's ``dot`` when it is
    installed, else with matplotlib. Returns the files written."""
    stem = Path(stem)
    dot_file = atomic_write_text(stem.with_suffix(".dot"), genotype_to_dot(genotype, title))
    written = [dot_file]
    dot_program = shutil.which("dot")
    for fmt in formats:
        image = stem.with_suffix(f".{fmt}")
        if dot_program is None:
            draw_with_matplotlib(genotype, image, title)
        else:
            subprocess.run([dot_program, f"-T{fmt}", str(dot_file), "-o", str(image)], check=True, capture_output=True)
        written.append(image)
    return written


def draw_with_matplotlib(genotype: Genotype, path: str | Path, title: str = "cell") -> Path:
    """The cell as ``genotype_to_dot`` draws it, with matplotlib: a column per depth (input, the
    nodes by their distance from it, sink, output), the residual edge dashed. The format follows
    the suffix (png, svg; SVG keeps its labels as text)."""
    path = Path(path)
    depth = [0]
    for node in genotype.nodes:
        depth.append(depth[node.input] + 1)
    sink_column = max(depth) + 1
    columns: dict[int, list[int]] = {}
    for state, column in enumerate(depth):
        columns.setdefault(column, []).append(state)
    tallest = max(len(states) for states in columns.values())
    figure = Figure(figsize=(1.9 * (sink_column + 2), 1.6 + 1.25 * tallest), dpi=120)
    axes = figure.add_axes((0, 0, 1, 0.9))
    axes.set_axis_off()
    axes.set_xlim(-0.6, sink_column + 1.6)
    axes.set_ylim(-0.75 * tallest - 0.9, 0.75 * tallest + 0.4)
    figure.suptitle(title, fontsize=11)

    def box(x: float, y: float, lines: list[str], colour: str, shape: str = "round,pad=0.4"):
        return axes.text(x, y, "\n".join(lines), ha="center", va="center", fontsize=8, family="sans-serif",
                         bbox={"boxstyle": shape, "facecolor": colour, "edgecolor": "#444444"})

    def arrow(start, end, **style) -> None:
        axes.annotate("", xy=(0.5, 0.5), xytext=(0.5, 0.5), xycoords=end, textcoords=start,  # centre to centre,
                      arrowprops={"arrowstyle": "-|>", "color": "#444444", "patchA": start.get_bbox_patch(),  # clipped at the boxes
                                  "patchB": end.get_bbox_patch(), "shrinkA": 2, "shrinkB": 2, **style})

    boxes = {0: box(0, 0, ["input x", "(N, C, T, H, W)"], "#ffffff", "round4,pad=0.4")}
    for column, states in columns.items():
        for row, state in enumerate(states):
            if state:
                y = 1.4 * ((len(states) - 1) / 2 - row)
                boxes[state] = box(column, y, _node_label(genotype, state), _FILL.get(genotype.nodes[state - 1].op.type, "#ffffff"))
    sink = box(sink_column, 0, _SINK_LABEL, "#d9ead3")
    out = box(sink_column + 1, 0, ["x + cell(x)"], "#ffffff", "round4,pad=0.4")
    def bend(start: int, end_column: int) -> dict:
        """Edges that skip a column curve around the boxes between: outwards, away from the middle row."""
        if end_column - depth[start] <= 1:
            return {}
        return {"connectionstyle": f"arc3,rad={-0.25 if boxes[start].get_position()[1] > 0 else 0.25}"}

    for number, node in enumerate(genotype.nodes, start=1):
        arrow(boxes[node.input], boxes[number], **bend(node.input, depth[number]))
    for number in genotype.sink:
        arrow(boxes[number], sink, **bend(number, sink_column))
    arrow(sink, out)
    low = -0.7 * tallest - 0.35  # the residual runs below every box: down, across, up into the output
    axes.plot([0, 0, sink_column + 1], [-0.3, low, low], color="#444444", linestyle="--", linewidth=1)
    axes.annotate("", xy=(0.5, 0.0), xycoords=out, xytext=(sink_column + 1, low), textcoords="data",
                  arrowprops={"arrowstyle": "-|>", "color": "#444444", "linestyle": "--", "shrinkA": 0, "shrinkB": 2})
    axes.text((sink_column + 1) / 2, low - 0.25, "residual", ha="center", fontsize=7, color="#444444")
    buffer = io.BytesIO()
    with rc_context({"svg.fonttype": "none"}):  # SVG text stays text: searchable, selectable
        figure.savefig(buffer, format=path.suffix.lstrip("."))
    return atomic_write_bytes(path, buffer.getvalue())


_SINK_LABEL = ["concat", "1x1x1 conv", "norm (scale 0 at init)"]


def _node_label(genotype: Genotype, number: int) -> list[str]:
    op = genotype.nodes[number - 1].op
    return [f"{number}: {op.type}", *([op.dim, op.activation] if op.dim else [])]
