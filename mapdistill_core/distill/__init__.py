"""MapDistill's distillation: cross-modal relation, dual-level feature and map-head losses."""
