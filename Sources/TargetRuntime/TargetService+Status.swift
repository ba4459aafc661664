import AdminCore
import Backstores
import Foundation
import ISCSIFabric
import Logging
import NIOCore
import NIOPosix
import SCSIEngine
import TargetConfig

/// The AdminBackend's views of the running service (targets, sessions, statistics) and its
/// start/stop/restart controls.
extension TargetService {
    public func targetStatuses() async -> [TargetStatus] {
        config.targets.map { t in
            let key = t.name.lowercased()
            let r = running[key]
            var sizes: [Int: UInt64] = [:]
            for (id, s) in r?.stores ?? [:] { sizes[id] = s.byteCount }
            return TargetStatus(name: t.name, running: r != nil && !stopped.contains(key),
                                sessions: registry.sessions(ofTarget: t.name).count, lunSizes: sizes)
        }
    }

    public func sessions() async -> [SessionInfo] {
        registry.sessions.map { s in
            let p = s.parameters
            let hex = String(s.isid, radix: 16)
            var negotiated: [String: String] = [
                "MaxConnections": "\(p.maxConnections)", "InitialR2T": p.initialR2T ? "Yes" : "No",
                "ImmediateData": p.immediateData ? "Yes" : "No",
                "MaxRecvDataSegmentLength": "\(p.maxRecvDataSegmentLength)",
                "MaxXmitDataSegmentLength": "\(p.maxXmitDataSegmentLength)",
                "MaxBurstLength": "\(p.maxBurstLength)", "FirstBurstLength": "\(p.firstBurstLength)",
                "DefaultTime2Wait": "\(p.defaultTime2Wait)", "DefaultTime2Retain": "\(p.defaultTime2Retain)",
                "MaxOutstandingR2T": "\(p.maxOutstandingR2T)", "ErrorRecoveryLevel": "\(p.errorRecoveryLevel)",
            ]
            if let alias = p.initiatorAlias { negotiated["InitiatorAlias"] = alias }
            return SessionInfo(
                tsih: s.tsih, target: p.sessionType == .normal ? s.targetName : nil, initiator: s.initiatorName,
                isid: String(repeating: "0", count: max(0, 12 - hex.count)) + hex, remoteAddress: s.remoteAddress,
                localAddress: s.localAddress, authenticatedUser: s.authenticatedUser,
                headerDigest: p.headerDigest ? "CRC32C" : "None", dataDigest: p.dataDigest ? "CRC32C" : "None",
                negotiated: negotiated, commandsInFlight: s.commandsInFlight, connectedSince: s.connectedSince,
                commands: s.inFlight.commands, bytesRead: s.inFlight.bytesRead, bytesWritten: s.inFlight.bytesWritten,
                errors: s.inFlight.errors)
        }
    }

    public func logout(tsih: UInt16) async throws {
        guard registry.requestLogout(tsih: tsih, grace: options.logoutGrace) else {
            throw AdminError(.notFound, "no session with TSIH \(tsih)")
        }
    }

    public func control(_ action: ServiceAction, target: String?) async throws {
        await beginChange()
        defer { endChange() }
        let names: [String]
        if let target {
            guard let t = config.target(named: target) else { throw AdminError(.notFound, "no target named \(target)") }
            names = [t.name]
        } else {
            names = config.targets.map(\.name)
        }
        var failures: [String] = []
        for name in names {
            let key = name.lowercased()
            if action == .stop || action == .restart {
                stopped.insert(key)
                if let r = running.removeValue(forKey: key) {
                    publish()
                    await retire(name, r)
                }
            }
            if action == .start || action == .restart {
                stopped.remove(key)
                if running[key] == nil, let t = config.target(named: name) {
                    do { running[key] = try open(config.effective(t)) } catch {
                        stopped.insert(key)
                        failures.append("\(error)")
                    }
                }
                publish()
            }
        }
        if !failures.isEmpty { throw AdminError(.failed, failures.joined(separator: "\n")) }
    }

    public func statistics() async -> [LUNStatistics] {
        var out: [LUNStatistics] = []
        for t in config.targets {
            for lun in t.luns.sorted(by: { $0.id < $1.id }) {
                guard let r = recorders["\(t.name.lowercased())|\(lun.id)"] else { continue }
                let s = r.snapshot()
                out.append(LUNStatistics(
                    target: t.name, lun: lun.id, readCommands: s.readCommands, writeCommands: s.writeCommands,
                    otherCommands: s.otherCommands, bytesRead: s.bytesRead, bytesWritten: s.bytesWritten,
                    errors: s.errors, latencyBuckets: LUNStatisticsRecorder.bucketBounds,
                    latencyCounts: s.cumulativeBucketCounts, latencySumSeconds: s.latencySumSeconds))
            }
        }
        return out
    }

    public func securityCounters() async -> SecurityCounters {
        let c = environment.securityCounters
        var counters = SecurityCounters(chapFailures: c.chapFailures, aclDenials: c.aclDenials, nopTimeouts: c.nopTimeouts)
        let guards = environment.guards
        counters.loginsInProgress = guards.loginAdmission.inLogin
        counters.refusedConnections = guards.refusedConnections
        counters.delayedCHAPVerifications = guards.delayedVerifications
        counters.throttledPeers = guards.loginThrottle.throttledPeers()
        counters.bufferedWriteBytes = guards.bufferedWriteBytes
        counters.residentBytes = ProcessMemory.residentBytes()
        return counters
    }
}
