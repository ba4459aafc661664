// Configuration model: targets, LUNs, auth, ACLs, portals, settings; validation; atomic persistence.
public enum TargetConfigModule {}
