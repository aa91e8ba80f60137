"""Text, Graphviz and matplotlib renderings of a cell, and the describe command that prints and draws them."""

import random
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ScriptResult, run_script
from darts_video.diagram import genotype_to_dot, genotype_to_text, write_diagram
from darts_video.genotype import get_genotype
from darts_video.space import SearchSpace

REPO = Path(__file__).resolve().parents[1]


def test_text_rendering_lists_each_node_with_its_input_and_the_sink():
    text = genotype_to_text(get_genotype("divided_space_time"))
    assert "node 1 = dot_spatial_softmax(input)" in text
    assert "node 2 = dot_temporal_softmax(node 1)" in text
    assert "concat[node 2]" in text


@pytest.mark.parametrize("seed", range(5))
def test_dot_source_has_one_edge_per_connection(seed):
    genotype = SearchSpace(num_nodes=4).sample(random.Random(seed))
    source = genotype_to_dot(genotype)
    edges = set(re.findall(r"^\s*(\w+) -> (\w+)", source, re.MULTILINE))
    expected = {(f"s{n.input}", f"s{i}") for i, n in enumerate(genotype.nodes, start=1)}
    expected |= {(f"s{i}", "sink") for i in genotype.sink} | {("sink", "out"), ("s0", "out")}
    assert edges == expected
    assert source.count("{") == source.count("}")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_graphviz_renders_png_and_svg(tmp_path):
    written = write_diagram(get_genotype("divided_space_time"), tmp_path / "cell")
    assert [p.suffix for p in written] == [".dot", ".png", ".svg"]
    assert (tmp_path / "cell.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "cell.svg").read_text()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"  # a PNG, its header chunk first
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("nodes, seed", [(2, 0), (4, 1), (4, 3)])
def test_without_graphviz_matplotlib_draws_the_png_and_svg(tmp_path, monkeypatch, nodes, seed):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    genotype = SearchSpace(num_nodes=nodes).sample(random.Random(seed))
    written = write_diagram(genotype, tmp_path / "cell", title="searched cell")
    assert written == [tmp_path / "cell.dot", tmp_path / "cell.png", tmp_path / "cell.svg"]
    width, height = png_size(tmp_path / "cell.png")
    assert 600 <= width <= 2000 and 250 <= height <= 1200 and width > height  # laid out left to right
    svg = (tmp_path / "cell.svg").read_text()
    texts = " ".join(re.findall(r"<text[^>]*>(.*?)</text>", svg, re.DOTALL))  # labels stay text (svg.fonttype none)
    for number, node in enumerate(genotype.nodes, start=1):
        assert f"{number}: {node.op.type}" in texts and (node.op.dim is None or node.op.dim in texts)
    assert "searched cell" in texts and "x + cell(x)" in texts and "norm (scale 0 at init)" in texts
    assert svg.count("<path") >= 2 * len(genotype.nodes) + 2  # boxes and edges are drawn, not just the labels


def run_describe(*args: str) -> ScriptResult:
    return run_script(REPO / "scripts" / "describe.py", *args)


def test_describe_space_prints_the_restricted_space():
    result = run_describe("space", "--ops", "dot_temporal_*", "identity", "--nodes", "2")
    assert result.returncode == 0, result.stderr
    assert "2 nodes, dense connections, 4 candidate operations" in result.stdout


def test_describe_genotype_prints_and_draws(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "describe.py"), "genotype", "divided_space_time", "--out", str(tmp_path / "cell")],
                            capture_output=True, text=True)  # the real command, once
    assert result.returncode == 0, result.stderr
    assert "node 2 = dot_temporal_softmax(node 1)" in result.stdout
    assert (tmp_path / "cell.dot").exists() and (tmp_path / "cell.png").exists() and (tmp_path / "cell.svg").exists()


def test_describe_rejects_a_bad_genotype_before_anything_else(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "darts_video.genotype", "version": 7}')
    result = run_describe("genotype", str(bad))
    assert result.returncode == 2
    assert f"{bad}: field 'version' = 7" in result.stderr
    result = run_describe("genotype", "non_local", "--space", "--nodes", "3")
    assert result.returncode == 2 and "this search space has 3 nodes" in result.stderr
