"""The ROS 2 package's Python (see docs/design.md for its rooms).

In a sourced colcon workspace the generated messages (``mapdistill_ros.msg``) live only in the
installed copy of this package; extending ``__path__`` over every ``mapdistill_ros`` folder on
``sys.path`` lets code run from the source tree (the rclpy tests, from a checkout) import them. Without
ROS there is no other copy, and nothing changes.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
