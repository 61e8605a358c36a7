"""Rules on the shape of the code that a refactor must keep (issue 20)."""
import ast
from pathlib import Path

import pil_kmq

PACKAGE = Path(pil_kmq.__file__).parent
BENCHMARKS = Path(__file__).parent.parent / "benchmarks"
MAX_POSITIONAL = 5


def positional_parameters(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[str]:
    """The parameters a caller may pass by position, self/cls aside
    (options belong after a `*`, where a call must name them)."""
    names = [argument.arg for argument in function.args.posonlyargs + function.args.args]
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def too_long(source: str) -> list[tuple[int, str, int]]:
    return [(node.lineno, getattr(node, "name", "lambda"), len(positional_parameters(node)))
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            and len(positional_parameters(node)) > MAX_POSITIONAL]


def test_no_function_takes_more_than_five_positional_parameters():
    """Over the package and the benchmarks beside it (absent from a wheel)."""
    paths = sorted(PACKAGE.rglob("*.py")) + sorted(BENCHMARKS.glob("*.py"))
    offenders = [f"{path}:{line} {name} ({count})" for path in paths for line, name, count in too_long(path.read_text())]
    assert offenders == []


def test_the_rule_counts_what_a_caller_can_pass_by_position():
    assert too_long("def f(a, b, c, d, e, g): pass") == [(1, "f", 6)]
    assert too_long("def f(a, b, c, d, e, /, g): pass") == [(1, "f", 6)]
    assert too_long("class C:\n    def m(self, a, b, c, d, e): pass") == []
    assert too_long("def f(a, b, c, d, e, *, g, h=1): pass") == []
    assert too_long("f = lambda a, b, c, d, e, g: a") == [(1, "lambda", 6)]
