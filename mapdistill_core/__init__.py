"""mapdistill core: vector maps, models, distillation and evaluation, with no ROS dependency."""

__version__ = "0.1.0"
