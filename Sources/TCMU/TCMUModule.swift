// TCMU userspace handler: device discovery, ring processing, netlink events, LIO configfs export.
public enum TCMUModule {}
