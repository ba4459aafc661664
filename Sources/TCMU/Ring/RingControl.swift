/// The configfs `action/` knobs of one TCMU device that the ring server drives
/// (`block_dev`, `reset_ring`); simulated in the tests.
public protocol RingControl: Sendable {
    /// `action/block_dev`: while blocked the kernel fails new commands with BUSY.
    func setBlocked(_ blocked: Bool) throws
    /// `action/reset_ring` = 1: the kernel completes every in-flight command with BUSY
    /// (retryable) and sets head = tail = 0.
    func resetRing() throws
}
