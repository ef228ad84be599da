"""The rclpy nodes and their ROS-only helpers: parameters, conversions, lifecycle launch actions,
spinning until shutdown."""
