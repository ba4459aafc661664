import NIOConcurrencyHelpers
import NIOCore

/// At most `perMinute` lines of one kind a minute; the lines held back are counted and
/// reported with the next line let through, so a flood of failed logins cannot fill the disk.
public final class LogBudget: Sendable {
    public enum Decision: Equatable {
        /// Log it; `suppressed` lines were held back since the last one logged.
        case log(suppressed: Int)
        case suppress
    }

    private struct Window {
        var perMinute: Int
        var start: NIODeadline
        var logged = 0
        var suppressed = 0
    }

    private let window: NIOLockedValueBox<Window>

    public init(perMinute: Int, now: NIODeadline = .now()) {
        window = NIOLockedValueBox(Window(perMinute: max(1, perMinute), start: now))
    }

    /// A new budget from the current minute on.
    public func update(perMinute: Int) {
        window.withLockedValue { $0.perMinute = max(1, perMinute) }
    }

    public func decide(now: NIODeadline = .now()) -> Decision {
        window.withLockedValue { w in
            if now - w.start >= .seconds(60) {
                w.start = now
                w.logged = 0
            }
            guard w.logged < w.perMinute else {
                w.suppressed += 1
                return .suppress
            }
            w.logged += 1
            defer { w.suppressed = 0 }
            return .log(suppressed: w.suppressed)
        }
    }
}
