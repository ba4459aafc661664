import CTCMU
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// What a handler does with a ring before serving it: a previous process (a crashed or
/// killed daemon) may have left commands on it.
///
/// Those commands cannot simply be run again. With `CAP_OOOC` a finished command is
/// answered in whatever slot is at the tail, so the entries between `cmd_tail` and
/// `cmd_head` can include commands the dead process already answered in earlier slots.
/// Answering one of them a second time makes the kernel mark the ring broken ("cmd_id N
/// not found", every later command then times out), or, if the id was reused meanwhile,
/// completes a newer command with the old one's status. Nothing on the ring tells which
/// entries those are. So the kernel first retires what was published (one uio write), then
/// completes everything still in flight BUSY (`reset_ring`), which initiators retry.
public enum RingTakeover {
    public enum Outcome: Sendable, Equatable {
        /// Nothing was left on the ring.
        case clean
        /// Commands were left (or a reset was asked for): the kernel answered them BUSY.
        case reset
        /// The reset failed: the entries left are run again (safe only if the previous
        /// process answered in ring order).
        case resetFailed(String)
    }

    /// Call before a `RingServer` starts on the ring. `always`: reset even when the ring
    /// looks empty.
    public static func prepare(ring: MappedRing, signalFD: Int32, control: any RingControl,
                               always: Bool = false, name: String, logger: Logger) -> Outcome {
        // Completions published but never announced (the process died between the tail
        // store and the uio write) reach the kernel now, with their real status.
        let rc = ctcmu_uio_kick(signalFD)
        if rc < 0 && rc != -EAGAIN { logger.warning("\(name): kicking the kernel failed: errno \(-rc)") }
        let tail = ring.tail, head = ring.head
        guard always || tail != head else { return .clean }
        if tail != head {
            logger.notice("\(name): commands left on the ring by a previous handler (tail \(tail), head \(head)): the kernel answers them BUSY for the initiators to retry")
        }
        do {
            try control.setBlocked(true)
            defer { try? control.setBlocked(false) }
            try control.resetRing()
            return .reset
        } catch {
            logger.error("\(name): ring reset failed (\(error)); the commands left are run again")
            return .resetFailed("\(error)")
        }
    }
}
