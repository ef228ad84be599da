"""The knowledge-distillation benchmark: a plan of training runs, run resumably, side by side.

- ``plan``: the plan's schema (config/experiment_kd.yaml) and its expansion into runs;
- ``records``: what a finished run leaves (``RunRecord``, ``<records>/<name>.json``, committed) and
  the store that gives a record only while it still describes its run;
- ``runner``: one run trained under a lock and recorded; the plan as a whole (data, shipping, report);
- ``scheduler``: worker processes side by side, with progress bars;
- ``statistics`` and ``report``: the numbers of the report, and their rendering.

Each run trains on the train split and keeps the checkpoint with the best val mAP; the main runs,
ablations and unlabelled-drive runs are evaluated once on test. A plan started again, on this
machine or on a fresh clone, skips every run whose record matches its config and teacher, resumes an
interrupted run from its training state (``<out>/<name>/state.safetensors``), and trains the rest.
"""
