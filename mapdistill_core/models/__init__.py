"""Networks: image backbone and neck, BEV view transforms, LiDAR branch, fuser, map decoder."""
