"""The README's example runs exactly as written, and the README's commands are the CI's."""

import contextlib
import io
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_custom_neuron_example_runs():
    blocks = [b for b in _python_blocks((ROOT / "README.md").read_text()) if "class " in b]
    assert len(blocks) == 1
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], "README.md", "exec"), {"__name__": "readme"})
    printed = out.getvalue()
    assert "TraceStructure(QuadraticIF" in printed and "factored" in printed
    assert float(printed.strip().splitlines()[-1]) < 1e-4


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e '.[test]' && pytest" in readme
    assert "pip install -q -e '.[test]'" in ci and "pytest" in ci
