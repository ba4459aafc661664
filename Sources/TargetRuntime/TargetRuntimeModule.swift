// The daemon runtime: builds served targets from the configuration and applies changes live.
public enum TargetRuntimeModule {}
