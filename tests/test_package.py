"""The repository is a valid ROS 2 package and keeps its layers (docs/design.md)."""

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MAP_ELEMENT_MSG = """uint8 DIVIDER=0
uint8 PED_CROSSING=1
uint8 BOUNDARY=2
uint8 class_id
float32 score
geometry_msgs/Point[] points
"""
MAP_ELEMENT_ARRAY_MSG = """std_msgs/Header header
MapElement[] elements
"""


def test_package_xml():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "mapdistill_ros"
    maintainer = root.find("maintainer")
    assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", maintainer.get("email"))
    assert root.find("export/build_type").text == "ament_cmake"
    assert root.findtext("member_of_group") == "rosidl_interface_packages"
    depends = {e.text for e in root if e.tag.endswith("depend")}
    assert {
        "ament_cmake",
        "rosidl_default_generators",
        "rosidl_default_runtime",
        "std_msgs",
        "geometry_msgs",
    } <= depends


def test_messages_match_the_design():
    assert (ROOT / "msg/MapElement.msg").read_text() == MAP_ELEMENT_MSG
    assert (ROOT / "msg/MapElementArray.msg").read_text() == MAP_ELEMENT_ARRAY_MSG


def test_cmakelists_generates_messages_and_installs_python():
    text = re.sub(r"#.*", "", (ROOT / "CMakeLists.txt").read_text())
    assert re.search(
        r'rosidl_generate_interfaces\(\$\{PROJECT_NAME\}\s+"msg/MapElement.msg"\s+'
        r'"msg/MapElementArray.msg"',
        text,
    )
    assert "ament_python_install_package(mapdistill_core)" in text
    # ros2/rosidl_python#141: installing the package of the same name next to the messages fails.
    assert "ament_python_install_package(${PROJECT_NAME})" not in text
    assert "DESTINATION ${PYTHON_INSTALL_DIR}/${PROJECT_NAME}" in text
    # the install keeps rosidl's __init__.py: the source one may hold only what the install does not
    # need, the __path__ extension that lets the source tree find the generated messages
    source_init = ast.parse((ROOT / "mapdistill_ros/__init__.py").read_text())
    code = [ast.unparse(node) for node in source_init.body if not isinstance(node, ast.Expr)]
    assert code == ["from pkgutil import extend_path", "__path__ = extend_path(__path__, __name__)"]


def test_core_never_imports_ros():
    pattern = re.compile(r"^\s*(import|from)\s+(rclpy|rosbags|rosidl\w*|mapdistill_ros)\b", re.MULTILINE)
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "mapdistill_core").rglob("*.py") if pattern.search(p.read_text())
    ]
    assert offenders == []


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    return found | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}


# layer -> the layers above it, which it must never import (imports point down the layers)
LAYERS = {
    "mapdistill_core.models": ("mapdistill_core.data", "mapdistill_core.training", "mapdistill_core.inference",
                               "mapdistill_core.distill", "mapdistill_core.experiment"),
    "mapdistill_core.data": ("mapdistill_core.models", "mapdistill_core.training", "mapdistill_core.inference",
                             "mapdistill_core.distill", "mapdistill_core.experiment"),
    "mapdistill_core.metrics": ("mapdistill_core.models", "mapdistill_core.data", "mapdistill_core.training",
                                "mapdistill_core.experiment", "torch"),
    "mapdistill_core.inference": ("mapdistill_core.training", "mapdistill_core.distill", "mapdistill_core.experiment"),
    "mapdistill_core.distill": ("mapdistill_core.training", "mapdistill_core.experiment"),
    "mapdistill_core.training": ("mapdistill_core.experiment",),
    "mapdistill_core.errors": ("mapdistill_core", "mapdistill_ros", "torch"),
    "mapdistill_core.checkpoint": ("mapdistill_core.data", "mapdistill_core.training", "mapdistill_core.inference",
                                   "mapdistill_core.distill", "mapdistill_core.experiment"),
    "mapdistill_core.plotting": ("mapdistill_core.models", "mapdistill_core.training", "mapdistill_core.inference",
                                 "mapdistill_core.distill", "mapdistill_core.experiment"),
}  # fmt: skip

BASE = ("map_elements", "polyline", "bev_grid", "config", "resources", "errors", "options", "output_paths",
        "interrupts", "atomic", "results", "profiling")  # fmt: skip
"""The base layer (docs/design.md): modules that import no other layer of mapdistill_core."""


def test_the_base_layer_imports_only_the_base():
    allowed = {f"mapdistill_core.{m}" for m in BASE}
    offenders = []
    for name in BASE:
        path = ROOT / "mapdistill_core" / f"{name}.py"
        assert path.exists(), name
        offenders += [
            f"{name} imports {m}"
            for m in imported_modules(path)
            if m.startswith("mapdistill_core") and m not in allowed
        ]
    assert offenders == []


def upward_imports(package: str, layers: dict[str, tuple[str, ...]]) -> list[str]:
    """Every import in ``package`` of a layer above the importing module's own (``layers``: layer ->
    the layers above it), as "module imports name"."""
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for layer, above in layers.items():
            if module == layer or module.startswith(layer + "."):
                offenders += [
                    f"{module} imports {name}"
                    for name in imported_modules(path)
                    if any(name == a or name.startswith(a + ".") for a in above)
                ]
    return offenders


def test_imports_point_down_the_layers():
    assert upward_imports("mapdistill_core", LAYERS) == []


def test_no_node_imports_the_offline_replay():
    nodes = [
        ROOT / "mapdistill_ros" / "nodes" / "online_map_node.py",
        ROOT / "mapdistill_ros" / "nodes" / "evaluator_node.py",
    ]
    assert [str(p.name) for p in nodes if "mapdistill_ros.bags.replay" in imported_modules(p)] == []


# mapdistill_ros's rooms (docs/design.md): online < bags < nodes; the package root holds the shared
# vocabulary (topics, messages) and the command line.
ROS_ROOMS = {
    "mapdistill_ros.online": ("mapdistill_ros.bags", "mapdistill_ros.nodes", "mapdistill_ros.cli"),
    "mapdistill_ros.bags": ("mapdistill_ros.nodes", "mapdistill_ros.cli"),
    "mapdistill_ros.nodes": ("mapdistill_ros.cli", "mapdistill_ros.bags.replay"),
    "mapdistill_ros.topics": ("mapdistill_ros.online", "mapdistill_ros.bags", "mapdistill_ros.nodes"),
    "mapdistill_ros.messages": ("mapdistill_ros.online", "mapdistill_ros.bags", "mapdistill_ros.nodes"),
}


def test_the_ros_package_rooms_point_down():
    assert upward_imports("mapdistill_ros", ROS_ROOMS) == []
    assert {p.name for p in (ROOT / "mapdistill_ros").glob("*.py")} == {
        "__init__.py",
        "cli.py",
        "topics.py",
        "messages.py",
    }


def defined_names(path: Path) -> set[str]:
    """Top-level names a module defines or imports (what ``from it import name`` can take)."""
    body = ast.parse(path.read_text()).body if path.exists() else []
    names = {n.name for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    names |= {t.id for n in body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    names |= {n.target.id for n in body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    return names | {a.asname or a.name for n in body if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}


def test_every_internal_import_names_a_module_and_a_name_that_exist():
    """Checked from the source, so that the rclpy nodes (not importable without ROS) are covered too:
    ``from mapdistill_ros.X import Y`` needs mapdistill_ros/X.py (or a package) defining Y."""
    problems = []
    scripts = [ROOT / "scripts" / "online_map_node", ROOT / "scripts" / "map_evaluator"]
    sources = [*(ROOT / "mapdistill_ros").rglob("*.py"), *(ROOT / "launch").glob("*.py"), *scripts]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("mapdistill_"):
                continue
            if node.module == "mapdistill_ros.msg":  # generated by rosidl
                continue
            target = ROOT.joinpath(*node.module.split("."))
            if target.is_dir():
                names = {p.stem for p in target.glob("*.py")} | {p.name for p in target.iterdir() if p.is_dir()}
                names |= defined_names(target / "__init__.py") | ({"msg"} if node.module == "mapdistill_ros" else set())
            elif target.with_suffix(".py").exists():
                names = defined_names(target.with_suffix(".py"))
            else:
                problems.append(f"{path.relative_to(ROOT)}: no module {node.module}")
                continue
            problems += [
                f"{path.relative_to(ROOT)}: {node.module} has no {a.name}" for a in node.names if a.name not in names
            ]
    assert problems == []
