"""Make learner copies of the lessons: every ``solution`` cell becomes a stub to fill in.

    python -m tutorial_project.course.learner_copies [--force] [notebooks/NN_*.ipynb ...]

A copy keeps every cell of its lesson, with outputs and execution counts cleared; each
answer cell (tagged ``solution``) is replaced by a comment and one ``name = ...`` line per
name the solution defines. The check cell after it then receives ``...`` and says
"not solved yet" instead of failing, so "Run All" still runs the copy to the end. The
reference answer follows the check, folded in a markdown cell: there when a learner is
stuck, out of sight until clicked, and never run.

Copies go to ``notebooks/learner/`` (ignored by git): next to the lessons, so they show up
in JupyterLab's file browser (hidden folders do not), and one level down so the lesson
targets (``notebooks/NN_*.ipynb``) never pick them up. An existing copy holds the learner's
work, so it is kept unless ``--force`` (``make exercises FORCE=1``) is given.
"""

import argparse
import ast
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_markdown_cell

REPO = Path(__file__).resolve().parents[2]
LESSONS_DIR = REPO / "notebooks"
COPIES_DIR = LESSONS_DIR / "learner"
SOLUTION_TAG = "solution"
STUB_COMMENT = "# Exercise: write your code here, then run the check cell below."
ANSWER_SUMMARY = "Stuck? Click to see the reference answer (try the exercise first)."
ANSWER_TAG = "reference-answer"


def defined_names(source):
    """The names a cell's top-level code binds, in order: functions, classes, assignments.

    IPython syntax (magics, ``!shell``) is translated first, so any cell that runs in
    the kernel can be read. Imports are left out: they are tools, not the answer.
    """
    tree = ast.parse(as_python(source))
    names = []
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(statement.name)
        elif isinstance(statement, ast.Assign):
            for target in statement.targets:
                names.extend(_target_names(target))
        elif isinstance(statement, ast.AnnAssign | ast.AugAssign):
            names.extend(_target_names(statement.target))
    return list(dict.fromkeys(names))  # unique, first definition first


def _target_names(target):
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [name for element in target.elts for name in _target_names(element)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []  # attribute or subscript assignment: changes an object, binds no name


def as_python(source):
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # plain Python cells need no translation
        return source
    return TransformerManager().transform_cell(source)


def stub_source(solution_source):
    """The learner's starting point for one solution cell."""
    lines = [STUB_COMMENT]
    lines += [f"{name} = ..." for name in defined_names(solution_source)]
    return "\n".join(lines)


def is_solution(cell):
    return cell.cell_type == "code" and SOLUTION_TAG in cell.metadata.get("tags", [])


def answer_cell(solution_source):
    """A folded markdown cell holding the reference answer: one click away, never run.

    It follows the check cell, so "Run All" shows the learner's verdict first and the
    answer stays folded until asked for.
    """
    return new_markdown_cell(
        f"<details><summary>{ANSWER_SUMMARY}</summary>\n\n"
        f"```python\n{solution_source.strip()}\n```\n\n</details>",
        metadata={"tags": [ANSWER_TAG]},
    )


def learner_copy(notebook):
    """A new notebook: ``notebook`` with solutions stubbed and every output cleared.

    Each solution's reference answer follows its check cell, folded (``answer_cell``).
    """
    copy = nbformat.from_dict(notebook)  # a deep copy; the lesson stays as it was
    cells, pending_answer = [], None
    for cell in copy.cells:
        cells.append(cell)
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        cell.execution_count = None
        if pending_answer is not None:  # this is the check cell after a solution
            cells.append(answer_cell(pending_answer))
            pending_answer = None
        if is_solution(cell):
            pending_answer = cell.source
            cell.source = stub_source(cell.source)
            # Lessons fold their solutions away; the learner's stub must be in view.
            cell.metadata.get("jupyter", {}).pop("source_hidden", None)
            if cell.metadata.get("jupyter") == {}:
                del cell.metadata["jupyter"]
    if pending_answer is not None:
        cells.append(answer_cell(pending_answer))
    copy.cells = cells
    return copy


def stub_problems(notebook):
    """Cells that would fail in the learner copy because they use a stubbed name.

    The stubs hold ``...``: only the last expression of the check cell right after a
    solution may use them (the check turns ``...`` into "not solved yet"). Any other use
    would stop "Run All" in the copy. A cell that binds the name again ends the stub.
    """
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    stubbed, problems = set(), []
    for index, cell in enumerate(cells):
        if is_solution(cell):
            stubbed |= set(defined_names(cell.source))
            continue
        statements = ast.parse(as_python(cell.source)).body
        if index and is_solution(cells[index - 1]):
            statements = statements[:-1]  # the check call itself receives the stubs
        loaded, bound = _loaded_and_bound(statements)
        used = (loaded & stubbed) - bound
        if used:
            problems.append(
                f"code cell {index + 1} uses {sorted(used)}, which the learner copy sets to "
                "`...`: pass the answer only to the check, or give later cells their own names"
            )
        stubbed -= bound | set(defined_names(cell.source))
    return problems


def _loaded_and_bound(statements):
    tree = ast.Module(body=list(statements), type_ignores=[])
    loaded = {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
    bound = set(defined_names(ast.unparse(tree)))
    for statement in tree.body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            bound |= {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
    return loaded, bound


def lesson_paths():
    return sorted(LESSONS_DIR.glob("[0-9][0-9]_*.ipynb"))


def write_copies(lessons, destination=COPIES_DIR, *, force=False):
    """Write a learner copy of each lesson; returns ``[(path, "written" | "kept")]``."""
    destination.mkdir(parents=True, exist_ok=True)
    results = []
    for lesson in lessons:
        target = destination / Path(lesson).name
        if target.exists() and not force:
            results.append((target, "kept"))
            continue
        notebook = nbformat.read(lesson, as_version=4)
        for problem in stub_problems(notebook):
            print(f"warning: {Path(lesson).name}: {problem}", file=sys.stderr)
        copy = learner_copy(notebook)
        nbformat.validate(copy)
        nbformat.write(copy, target)
        results.append((target, "written"))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="*", type=Path, help="default: every lesson")
    parser.add_argument("--force", action="store_true", help="overwrite existing copies")
    parser.add_argument("--to", type=Path, default=COPIES_DIR, help="destination folder")
    args = parser.parse_args(argv)
    results = write_copies(args.lessons or lesson_paths(), args.to, force=args.force)
    for path, outcome in results:
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        note = "" if outcome == "written" else " (has your work; FORCE=1 overwrites it)"
        print(f"{outcome:>8} {shown}{note}")
    print("Open these copies in JupyterLab and fill in the exercises.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
