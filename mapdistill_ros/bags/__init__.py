"""rosbag2 tools: writing and reading bags, converting nuScenes and the synthetic world, offline
replay through the online path, scoring and pictures of a drive."""
