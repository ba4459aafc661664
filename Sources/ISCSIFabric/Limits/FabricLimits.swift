import NIOCore

/// What one peer may cost the target before it is slowed down or refused: the policy against
/// password guessing and resource exhaustion. Every value is configurable (`serve` flags, the
/// configuration file's `limits`); the defaults suit a target on a shared network.
public struct FabricLimits: Sendable, Equatable {
    /// CHAP failures an initiator name or a remote address may have before every further
    /// attempt from it waits (a mistyped secret costs nothing the first times).
    public var chapFreeFailures = 3
    /// The wait before the first delayed attempt; it doubles with each further failure.
    public var chapBaseDelay: TimeAmount = .seconds(1)
    /// The wait never grows beyond this.
    public var chapMaxDelay: TimeAmount = .seconds(30)
    /// A name or address without a failure for this long starts afresh.
    public var chapForgetAfter: TimeAmount = .seconds(600)
    /// Names and addresses remembered at once (oldest forgotten first).
    public var chapTrackedPeers = 4096
    /// Connections that have not finished login, per remote address and in all; a
    /// connection over either is closed at once.
    public var maxLoginsPerAddress = 32
    public var maxLoginsTotal = 1024
    /// Bytes a session may hold for writes still receiving Data-Out; a write over it is
    /// answered TASK SET FULL (the initiator retries) unless the session holds none.
    public var maxBufferedWriteBytesPerSession = 64 << 20
    /// Failed logins logged per minute; the rest are counted in one summary line.
    public var failedLoginLogLinesPerMinute = 30

    public init() {}
}
