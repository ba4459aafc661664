// The web console and /metrics, server-rendered HTML on Hummingbird.
public enum AdminWebModule {}
