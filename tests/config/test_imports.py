"""One import direction in zoo/: every import of a zoo module, also one inside a function, goes to the same or a
lower layer, and no modules import each other round a cycle.

Read from the source with `ast` (nothing is imported): `import zoo.a`, `from zoo.a import b` (the module zoo.a.b
where that is one, else zoo.a), relative imports, and `importlib.import_module("zoo.a")` with a literal name.
Inside a function an import of a zoo module is refused unless its module is in FUNCTION_IMPORTS with a reason;
third-party imports inside functions (optional extras, heavy libraries) are not this test's business.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The layers, lowest first: a module imports only from its own layer or lower ones. A module belongs to the layer of
# the longest name listed for it (zoo.eval.cli is an entry point, the rest of zoo.eval is evaluation).
LAYERS = {
    "core": ["zoo.errors", "zoo.atomic", "zoo.names"],  # zoo.names: the closed name sets (enums) the schema types
    "config": [
        "zoo.config",
        "zoo.configs",  # the packages of the YAML files
        # Command-line value checks that the composed config also meets (zoo.config runs them): torch-free, they
        # read the dataset catalog and the registry's declared method names.
        "zoo.arguments",
        "zoo.catalog",
        "zoo.registry",  # name -> method class: the methods register themselves here, so it sits below them
    ],
    "maths_data": [
        "zoo.spectral",
        "zoo.losses",
        "zoo.backbones",
        "zoo.optim",
        # k-NN vote, spectrum, health metrics, embedding picture: functions of features that the online validation
        # (methods, callbacks) and the evaluations both compute.
        "zoo.metrics",
        "zoo.data",
        # EMA target, feature queue, early freezing: components a method composes (no Lightning); the whitening layer
        "zoo.nn",
        # auxiliary regularisers any method adds to its loss by configuration (LDReg, T-REGS): the registered terms and
        # the one place they join a method's loss; below the methods, which build them from their config
        "zoo.regularizers",
    ],
    "methods": ["zoo.methods"],
    # the harness (zoo.train.harness: the Lightning module around any method), the training step and what a run
    # writes around them (callbacks: validation metrics, checkpoints, pictures)
    "train": ["zoo.train", "zoo.build", "zoo.pretrain", "zoo.callbacks", "zoo.checkpoint", "zoo.loggers", "zoo.provenance"],
    "eval": ["zoo.eval"],
    "entry": [
        "zoo.eval.cli",
        "zoo.health",  # python -m zoo.health: the offline health metrics of a checkpoint (zoo.eval.health)
        "zoo.report",
        "zoo.tables",
        "zoo.export",
        "zoo.slurm",  # zoo.tables' SLURM submission
        "main_pretrain",
        "main_linear",
        "main_knn",
        "main_transfer",
    ],
}

# Modules whose functions may import zoo modules, each with its reason (say, a command that must fail in a second
# and so imports torch only after its checks; main_pretrain.py, main_linear.py and main_knn.py need none: they run
# their torch-free checks under `if __name__ == "__main__":` and only then import the run's module).
FUNCTION_IMPORTS = {
    # zoo.data.dali imports NVIDIA DALI (the optional `dali` extra) at its top: imported only when DALI loads.
    "zoo.data.loaders": "the DALI module needs the optional dali extra",
}

# Imports that break the rules today, each with the change of issue 33 that removes it. An entry stays only while
# its import exists (test_every_exception_is_still_needed).
KNOWN_EXCEPTIONS = {}


def module_name(path, root=ROOT):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module, layers=LAYERS):
    """The layer of the longest name listed for `module` (itself or a package above it), or None; the empty
    top package `zoo` is core."""
    if module == "zoo":
        return next(iter(layers))
    matches = [(len(name), layer) for layer, names in layers.items() for name in names
               if module == name or module.startswith(name + ".")]
    return max(matches)[1] if matches else None


class _Imports(ast.NodeVisitor):
    """(imported name, names taken from it, line, inside a function) of every import of one module."""

    def __init__(self, module, is_package):
        self.package = module if is_package else module.rpartition(".")[0]
        self.depth = 0
        self.found = []

    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node):
        for alias in node.names:
            self.found.append((alias.name, [], node.lineno, self.depth > 0))

    def visit_ImportFrom(self, node):
        base = node.module or ""
        if node.level:  # from . import x, from ..a import b
            package = self.package.split(".")
            anchor = ".".join(package[: len(package) - node.level + 1])
            base = f"{anchor}.{base}" if base and anchor else (anchor or base)
        self.found.append((base, [alias.name for alias in node.names], node.lineno, self.depth > 0))

    def visit_Call(self, node):
        function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if function in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            self.found.append((str(node.args[0].value), [], node.lineno, self.depth > 0))
        self.generic_visit(node)


def import_edges(files, root=ROOT):
    """[(importer, imported module, "file:line", inside a function)] between the modules of `files`."""
    modules = {module_name(path, root): path for path in files}
    edges = []
    for module, path in modules.items():
        visitor = _Imports(module, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(), str(path)))
        for base, names, line, in_function in visitor.found:
            targets = [f"{base}.{name}" for name in names if f"{base}.{name}" in modules]
            if len(targets) < len(names) or not names:  # names that are not modules come from `base` itself
                targets.append(base)
            for target in targets:
                while target and target not in modules:  # a name inside a module: that module
                    target = target.rpartition(".")[0]
                if target and target != module:
                    edges.append((module, target, f"{path.relative_to(root)}:{line}", in_function))
    return edges


def cycles(edges):
    """Every set of more than one module that import each other round a cycle (the strongly connected
    components, Tarjan's algorithm), each sorted, in sorted order."""
    graph = {}
    for source, target, *_ in edges:
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def cycle_errors(edges):
    """One message per cycle, naming its modules and the imports that close it."""
    messages = []
    for members in cycles(edges):
        inside = sorted(f"{a} -> {b} ({where}{', in a function' if in_function else ''})"
                  for a, b, where, in_function in edges if a in members and b in members)
        messages.append(f"import cycle {{{', '.join(members)}}}: " + "; ".join(inside))
    return messages


def upward_errors(edges, layers=LAYERS):
    order = list(layers)
    return [f"{a} (layer {layer_of(a, layers)}) imports {b} (layer {layer_of(b, layers)}), a higher layer, at {where}"
            for a, b, where, _ in edges
            if layer_of(a, layers) and layer_of(b, layers)
            and order.index(layer_of(b, layers)) > order.index(layer_of(a, layers))]


def function_import_errors(edges, allowed=FUNCTION_IMPORTS):
    return [f"{a} imports {b} inside a function at {where}: import it at the top of the module (or state the reason "
            "in tests/config/test_imports.py's FUNCTION_IMPORTS)"
            for a, b, where, in_function in edges if in_function and a not in allowed]


def project_files():
    return sorted((ROOT / "zoo").rglob("*.py")) + sorted(ROOT.glob("main_*.py"))


def project_edges():
    """The project's imports, less the known exceptions."""
    return [edge for edge in import_edges(project_files()) if edge[:2] not in KNOWN_EXCEPTIONS]


def test_every_module_has_a_layer():
    unplaced = [module_name(path) for path in project_files() if layer_of(module_name(path)) is None]
    assert not unplaced, f"add these modules to a layer of tests/config/test_imports.py's LAYERS: {unplaced}"


def test_no_import_cycle():
    errors = cycle_errors(project_edges())
    assert not errors, "\n".join(errors)


def test_no_import_goes_up_a_layer():
    errors = upward_errors(project_edges())
    assert not errors, "\n".join(errors)


def test_zoo_modules_are_imported_at_the_top_of_a_module():
    errors = function_import_errors(project_edges())
    assert not errors, "\n".join(errors)


def test_every_exception_is_still_needed():
    edges = import_edges(project_files())
    present = {edge[:2] for edge in edges}
    with_function_imports = {a for a, _, _, in_function in edges if in_function}
    assert not set(KNOWN_EXCEPTIONS) - present, f"remove from KNOWN_EXCEPTIONS: {set(KNOWN_EXCEPTIONS) - present}"
    assert not set(FUNCTION_IMPORTS) - with_function_imports, \
        f"remove from FUNCTION_IMPORTS: {set(FUNCTION_IMPORTS) - with_function_imports}"


# ---- the checks themselves, on a made-up package --------------------------------------------------------------
def test_the_cycle_finder_on_a_small_graph():
    edges = [(a, b, "", False) for a, b in
             [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "f"), ("f", "e"), ("g", "a")]]
    assert cycles(edges) == [["a", "b", "c"], ["e", "f"]]
    assert cycles([edge for edge in edges if edge[:2] not in {("c", "a"), ("f", "e")}]) == []
    assert cycle_errors([("x", "y", "x.py:3", True), ("y", "x", "y.py:1", False)]) == [
        "import cycle {x, y}: x -> y (x.py:3, in a function); y -> x (y.py:1)"]


def write_package(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sorted(root.rglob("*.py"))


def test_every_form_of_import_is_read(tmp_path):
    files = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low.py": "import os\n",
        "pkg/sub/__init__.py": "from . import leaf\n",
        "pkg/sub/leaf.py": "from ..low import os\n",
        "pkg/high.py": ("import pkg.sub.leaf\nfrom pkg.sub import leaf, VALUE\n"
                        "def f():\n    from pkg import low\n    import importlib\n    importlib.import_module('pkg.sub')\n"),
    })
    assert sorted(import_edges(files, tmp_path)) == [
        ("pkg.high", "pkg.low", "pkg/high.py:4", True),
        ("pkg.high", "pkg.sub", "pkg/high.py:2", False),  # VALUE is a name of pkg.sub
        ("pkg.high", "pkg.sub", "pkg/high.py:6", True),
        ("pkg.high", "pkg.sub.leaf", "pkg/high.py:1", False),
        ("pkg.high", "pkg.sub.leaf", "pkg/high.py:2", False),
        ("pkg.sub", "pkg.sub.leaf", "pkg/sub/__init__.py:1", False),
        ("pkg.sub.leaf", "pkg.low", "pkg/sub/leaf.py:1", False),
    ]


def test_a_cycle_an_upward_import_and_a_function_import_are_refused(tmp_path):
    files = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low.py": "def f():\n    from pkg.high import g\n",
        "pkg/high.py": "from pkg.low import f\ndef g():\n    pass\n",
    })
    edges = import_edges(files, tmp_path)
    layers = {"bottom": ["pkg", "pkg.low"], "top": ["pkg.high"]}
    assert cycle_errors(edges) == [
        ("import cycle {pkg.high, pkg.low}: pkg.high -> pkg.low (pkg/high.py:1); "
         "pkg.low -> pkg.high (pkg/low.py:2, in a function)")]
    assert upward_errors(edges, layers) == [
        "pkg.low (layer bottom) imports pkg.high (layer top), a higher layer, at pkg/low.py:2"]
    assert len(function_import_errors(edges, allowed={})) == 1
    assert function_import_errors(edges, allowed={"pkg.low": "a stated reason"}) == []
