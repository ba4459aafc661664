// The local JSON API (HTTP over a Unix socket) that swift-targetctl speaks.
public enum AdminAPIModule {}
