import NIOConcurrencyHelpers
import NIOCore
import SCSIEngine
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Per-session counters read by admins and /metrics: commands in flight, and cumulative
/// commands, bytes and errors. Relaxed atomics: one writer (the connection), any readers.
public final class SessionCounters: Sendable {
    private let value = Atomic<Int>(0)
    private let completed = Atomic<UInt64>(0)
    private let read = Atomic<UInt64>(0)
    private let written = Atomic<UInt64>(0)
    private let failed = Atomic<UInt64>(0)
    public init() {}
    public var current: Int { value.load(ordering: .relaxed) }
    public var commands: UInt64 { completed.load(ordering: .relaxed) }
    public var bytesRead: UInt64 { read.load(ordering: .relaxed) }
    public var bytesWritten: UInt64 { written.load(ordering: .relaxed) }
    /// Commands answered with a status other than GOOD.
    public var errors: UInt64 { failed.load(ordering: .relaxed) }
    func increment() { value.add(1, ordering: .relaxed) }
    func decrement() { value.subtract(1, ordering: .relaxed) }
    func completed(read bytesIn: Int, written bytesOut: Int, good: Bool) {
        completed.add(1, ordering: .relaxed)
        if bytesIn > 0 { read.add(UInt64(bytesIn), ordering: .relaxed) }
        if bytesOut > 0 { written.add(UInt64(bytesOut), ordering: .relaxed) }
        if !good { failed.add(1, ordering: .relaxed) }
    }
}

/// What an administrator sees of a live session.
public struct SessionSummary: Sendable {
    public var tsih: UInt16
    public var initiatorName: String
    public var isid: UInt64
    public var targetName: String
    public var remoteAddress: String
    public var parameters: NegotiatedParameters
    /// Server-side address the connection arrived on.
    public var localAddress: String = "?"
    /// Server-side port the connection arrived on.
    public var localPort: Int = 0
    /// Seconds since 1970 when the session reached full feature phase.
    public var connectedSince: Double = 0
    public var authenticatedUser: String? { parameters.authenticatedUser }
    public var inFlight: SessionCounters = SessionCounters()
    public var commandsInFlight: Int { inFlight.current }
}

/// Wall-clock seconds since 1970 (no Foundation in the fabric).
func wallClockSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// All sessions of the server, by TSIH (RFC 7143 §4.4.3). Also where session
/// reinstatement finds the session a new login with the same ISID replaces (§6.3.5).
public final class SessionRegistry: Sendable {
    struct Key: Hashable {
        var initiatorName: String
        var isid: UInt64
        var targetName: String
    }

    private struct Entry {
        var key: Key
        var summary: SessionSummary
        var channel: any Channel
        var nexus: NexusID?
    }

    private let state = NIOLockedValueBox<(nextTSIH: UInt16, entries: [UInt16: Entry])>((1, [:]))

    public init() {}

    /// Registers a new session; returns its TSIH and the channel of the session it
    /// reinstates, which the caller closes.
    /// `maxSessions` > 0 refuses (returns nil) a new normal session once the target has that
    /// many (a reinstatement replaces one and is always admitted).
    func register(_ parameters: NegotiatedParameters, remoteAddress: String, channel: any Channel,
                  nexus: NexusID?, localAddress: String = "?", localPort: Int = 0, maxSessions: Int = 0,
                  inFlight: SessionCounters = SessionCounters()) -> (tsih: UInt16, replaced: (any Channel)?)? {
        let key = Key(initiatorName: parameters.initiatorName, isid: parameters.isid, targetName: parameters.targetName)
        return state.withLockedValue { state -> (tsih: UInt16, replaced: (any Channel)?)? in
            var replaced: (any Channel)?
            if parameters.sessionType == .normal, maxSessions > 0,
               !state.entries.values.contains(where: { $0.key == key }),
               state.entries.values.filter({ $0.summary.parameters.sessionType == .normal && $0.key.targetName == key.targetName }).count >= maxSessions {
                return nil
            }
            if parameters.sessionType == .normal,
               let old = state.entries.first(where: { $0.value.key == key }) {
                replaced = old.value.channel
                state.entries.removeValue(forKey: old.key)
            }
            var tsih = state.nextTSIH
            while tsih == 0 || state.entries[tsih] != nil { tsih &+= 1 }
            state.nextTSIH = tsih &+ 1
            let summary = SessionSummary(tsih: tsih, initiatorName: parameters.initiatorName, isid: parameters.isid,
                                         targetName: parameters.targetName, remoteAddress: remoteAddress,
                                         parameters: parameters, localAddress: localAddress, localPort: localPort,
                                         connectedSince: wallClockSeconds(), inFlight: inFlight)
            state.entries[tsih] = Entry(key: key, summary: summary, channel: channel, nexus: nexus)
            return (tsih, replaced)
        }
    }

    /// Forgets a session when its connection closes (only if the entry is still that channel's).
    /// Returns false when the session was already replaced by a reinstatement.
    @discardableResult
    func remove(tsih: UInt16, channel: any Channel) -> Bool {
        state.withLockedValue { state in
            guard let entry = state.entries[tsih], entry.channel === channel else { return false }
            state.entries.removeValue(forKey: tsih)
            return true
        }
    }

    public var sessions: [SessionSummary] {
        state.withLockedValue { $0.entries.values.map(\.summary).sorted { $0.tsih < $1.tsih } }
    }

    func setNexus(_ nexus: NexusID?, tsih: UInt16) {
        state.withLockedValue { $0.entries[tsih]?.nexus = nexus }
    }

    /// Normal sessions of one target.
    public func sessions(ofTarget target: String) -> [SessionSummary] {
        sessions.filter { $0.parameters.sessionType == .normal && $0.targetName == target }
    }

    /// Asks the session to log out (Async Message, logout requested) and closes its connection
    /// after `grace` if it is still there. Returns false when there is no such session.
    @discardableResult
    public func requestLogout(tsih: UInt16, grace: TimeAmount = .seconds(5)) -> Bool {
        guard let channel = state.withLockedValue({ $0.entries[tsih]?.channel }) else { return false }
        let seconds = UInt16(clamping: max(1, grace.nanoseconds / 1_000_000_000))
        channel.pipeline.fireUserInboundEventTriggered(RequestLogoutEvent(seconds: seconds))
        channel.eventLoop.scheduleTask(in: grace) { channel.close(promise: nil) }
        return true
    }

    /// Closes a session's connection at once.
    public func close(tsih: UInt16) {
        state.withLockedValue { $0.entries[tsih]?.channel }?.close(promise: nil)
    }

    /// Connections of the given nexuses on a target (for PREEMPT AND ABORT).
    func channels(of nexuses: [NexusID], target: String) -> [any Channel] {
        state.withLockedValue { state in
            state.entries.values.filter { entry in
                entry.key.targetName == target && entry.nexus.map(nexuses.contains) == true
            }.map(\.channel)
        }
    }

    var channels: [any Channel] {
        state.withLockedValue { $0.entries.values.map(\.channel) }
    }
}
