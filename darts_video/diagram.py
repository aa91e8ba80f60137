"""Pictures of a cell: a text rendering for terminals and logs, Graphviz DOT for diagrams.

DOT needs no Python package; turning it into PNG/SVG needs the ``dot`` program
(``apt-get install graphviz`` / ``brew install graphviz`` / ``conda install graphviz``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from darts_video.genotype import Genotype
from darts_video.utils.files import atomic_write_text

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
        op = node.op
        label = f"{number}: {op.type}" + (f"\\n{op.dim}\\n{op.activation}" if op.dim else "")
        lines.append(f'  s{number} [label="{label}", fillcolor="{_FILL.get(op.type, "#ffffff")}"];')
        lines.append(f"  s{node.input} -> s{number};")
    lines.append('  sink [label="concat\\n1x1x1 conv\\nnorm (scale 0 at init)", fillcolor="#d9ead3"];')
    lines += [f"  s{number} -> sink;" for number in genotype.sink]
    lines.append('  out [label="x + cell(x)", shape=ellipse];')
    lines.append("  sink -> out;")
    lines.append('  s0 -> out [style=dashed, label="residual"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_diagram(genotype: Genotype, stem: str | Path, formats: tuple[str, ...] = ("png", "svg"), title: str = "cell") -> list[Path]:
    """Write ``stem.dot`` and, when Graphviz's ``dot`` is installed, ``stem.<format>`` for each format.

    Returns the files written, so a caller can tell whether images were produced.
    """
    stem = Path(stem)
    dot_file = atomic_write_text(stem.with_suffix(".dot"), genotype_to_dot(genotype, title))
    written = [dot_file]
    dot_program = shutil.which("dot")
    if dot_program is None:
        return written
    for fmt in formats:
        image = stem.with_suffix(f".{fmt}")
        subprocess.run([dot_program, f"-T{fmt}", str(dot_file), "-o", str(image)], check=True, capture_output=True)
        written.append(image)
    return written
