import NIOConcurrencyHelpers
import NIOCore
import SCSIEngine

/// What an administrator sees of a live session.
public struct SessionSummary: Sendable {
    public var tsih: UInt16
    public var initiatorName: String
    public var isid: UInt64
    public var targetName: String
    public var remoteAddress: String
    public var parameters: NegotiatedParameters
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
    func register(_ parameters: NegotiatedParameters, remoteAddress: String, channel: any Channel,
                  nexus: NexusID?) -> (tsih: UInt16, replaced: (any Channel)?) {
        let key = Key(initiatorName: parameters.initiatorName, isid: parameters.isid, targetName: parameters.targetName)
        return state.withLockedValue { state in
            var replaced: (any Channel)?
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
                                         parameters: parameters)
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
