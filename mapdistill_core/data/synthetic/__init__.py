"""A procedural driving world: roads, terrain, vehicles, six cameras, a LiDAR and vector ground truth."""
