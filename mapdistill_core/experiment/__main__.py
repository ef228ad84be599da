"""Worker entry point: ``python -m mapdistill_core.experiment PLAN RUN_NAME`` trains and records one run."""

import sys

from mapdistill_core.config import load_config
from mapdistill_core.experiment.plan import ExperimentPlan
from mapdistill_core.experiment.runner import Experiment


def main(argv: list[str]) -> int:
    plan_path, name = argv
    experiment = Experiment(load_config(ExperimentPlan, plan_path), plan_path)
    experiment.execute(experiment.plan.spec(name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
