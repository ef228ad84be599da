# The two commands: `make demo` and `make test`. Each creates .venv with the pinned dependencies if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := build/demo

.PHONY: demo test lint bench launch-test clean

$(BIN)/.installed: requirements.txt requirements-dev.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

demo: $(BIN)/.installed
	rm -rf $(DEMO_DIR)
	$(BIN)/mapdistill synthetic2bag --config config/synthetic_train_world.yaml --split test --scenes 2 --samples 10 --out $(DEMO_DIR)/bag
	$(BIN)/mapdistill replay $(DEMO_DIR)/bag --weights checkpoints/synthetic_student.safetensors --out $(DEMO_DIR)/replay
	@echo
	@echo "Pictures: $(DEMO_DIR)/replay/bev/ (a PNG per frame, scene00.gif, scene01.gif); metrics: $(DEMO_DIR)/replay/metrics.json"
	@echo "The distillation benchmark (teacher, students, distilled students; writes results/kd.md):"
	@echo "  $(BIN)/mapdistill experiment --config config/experiment_kd.yaml"
	@echo "Run it in ROS 2 (see README): colcon build, then"
	@echo "  ros2 launch mapdistill_ros online_map.launch.py use_sim_time:=true"
	@echo "  ros2 bag play $(DEMO_DIR)/bag --clock"

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

# In a sourced ROS 2 workspace where mapdistill_ros is built (README, ROS 2 section); not part of `make test`.
# launch_test runs under $(PYTHON), the Python that has requirements.txt installed (the test builds its bag
# and weights with this package), whatever interpreter launch_test's own first line names.
launch-test:
	$(PYTHON) "$$(command -v launch_test)" tests/test_online_node_launch.py

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf build .pytest_cache .hypothesis
