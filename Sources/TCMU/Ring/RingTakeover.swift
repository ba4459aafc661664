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
///
/// A handler that stopped cleanly is different: it answered every command it had read, so
/// `cmd_tail` is where its reading stopped and every entry after it is an untouched request.
/// It notes that tail on the way out (`TCMUDevice.close(handover:)`); when the ring still
/// shows that tail, the next handler runs the pending commands instead.
public enum RingTakeover {
    public enum Outcome: Sendable, Equatable {
        /// Nothing was left on the ring.
        case clean
        /// The previous handler stopped cleanly at this tail: pending commands are run.
        case handedOver
        /// Commands were left (or a reset was asked for): the kernel answered them BUSY.
        case reset
        /// The reset failed: the entries left are run again (safe only if the previous
        /// process answered in ring order).
        case resetFailed(String)
    }

    /// Call before a `RingServer` starts on the ring. `always`: reset even when the ring
    /// looks empty. `handedOverAt`: the tail a cleanly stopped handler noted, if any.
    public static func prepare(ring: MappedRing, signalFD: Int32, control: any RingControl,
                               always: Bool = false, handedOverAt: UInt32? = nil,
                               name: String, logger: Logger) -> Outcome {
        // Completions published but never announced (the process died between the tail
        // store and the uio write) reach the kernel now, with their real status.
        let rc = ctcmu_uio_kick(signalFD)
        if rc < 0 && rc != -EAGAIN { logger.warning("\(name): kicking the kernel failed: errno \(-rc)") }
        let tail = ring.tail, head = ring.head
        if !always, let handedOverAt, handedOverAt == tail {
            if tail != head {
                logger.info("\(name): picking up the commands a cleanly stopped handler left (tail \(tail), head \(head))")
            }
            return .handedOver
        }
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
