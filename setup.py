"""pip project: the ROS-free core (train, distil, evaluate, export, convert) and the `mapdistill` command.

The same tree is also the ROS 2 package `mapdistill_ros` (package.xml, CMakeLists.txt), built by colcon.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
# Installed beside the code (mapdistill_core.resources finds them): configs, message definitions, weights.
SHIPPED = {
    kind: sorted(str(p.relative_to(HERE)) for p in (HERE / kind).iterdir() if p.is_file())
    for kind in ("config", "msg", "checkpoints")
}

setup(
    name="mapdistill",
    version="0.1.0",
    description="MapDistill: camera+LiDAR to camera-only distillation for online vectorized HD maps",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["mapdistill_core", "mapdistill_core.*", "mapdistill_ros", "mapdistill_ros.*"]),
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "shapely>=2.0",
        "pyyaml>=6.0",
        "tqdm>=4.60",
        "matplotlib>=3.6",
        "safetensors>=0.4",
        "torch>=2.1",
        "opencv-python-headless>=4.5",
        "nuscenes-devkit>=1.1.11",
        "pyquaternion>=0.9.5",
        "rosbags>=0.10",
        "onnx>=1.16",
        "onnxscript>=0.1",
        "onnxruntime>=1.17",
    ],
    data_files=[(f"share/mapdistill/{kind}", files) for kind, files in SHIPPED.items()],
    entry_points={"console_scripts": ["mapdistill = mapdistill_ros.cli:main"]},
)
