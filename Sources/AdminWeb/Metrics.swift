import AdminCore
import Foundation
import TargetConfig

/// Prometheus text exposition (format 0.0.4) of the daemon's counters.
///
/// Metrics (all prefixed `swifttarget_`):
/// - `lun_commands_total{target,lun,kind="read"|"write"|"other"}` counter
/// - `lun_read_bytes_total{target,lun}`, `lun_written_bytes_total{target,lun}` counters
/// - `lun_errors_total{target,lun}` counter
/// - `lun_latency_seconds{target,lun}` histogram (`_bucket{le=…}` cumulative, `_sum`, `_count`)
/// - `chap_failures_total`, `acl_denials_total`, `nop_timeouts_total` counters
/// - `targets_running` gauge, `target_running{target}` gauge (0/1), `target_sessions{target}` gauge
/// - `sessions` gauge (all sessions, discovery included)
/// - `session_commands_in_flight{target,initiator,isid}` gauge and the per-session counters, labelled
///   by the initiator port (name and ISID), not the TSIH, so a reconnect continues its series
/// - `lun_capacity_bytes{target,lun}` gauge
/// - `build_info{version}` gauge, always 1
/// - `session_commands_total`, `session_read_bytes_total`, `session_written_bytes_total`,
///   `session_errors_total` counters with the same labels
///
/// Histogram `_count`: when the last bucket bound is `+Inf`, its count; otherwise the larger of
/// the last bucket's count and the LUN's total commands (read + write + other), and a
/// `le="+Inf"` bucket with that count is added.
func renderMetrics(statistics: [LUNStatistics], statuses: [TargetStatus], sessions: [SessionInfo],
                   security: SecurityCounters) -> String {
    var out = ""
    func family(_ name: String, _ type: String, _ help: String) {
        out += "# HELP swifttarget_\(name) \(help)\n# TYPE swifttarget_\(name) \(type)\n"
    }
    func line(_ name: String, _ labels: [(String, String)], _ value: String) {
        out += "swifttarget_\(name)"
        if !labels.isEmpty {
            out += "{" + labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
        }
        out += " \(value)\n"
    }
    family("build_info", "gauge", "The running release; always 1.")
    line("build_info", [("version", ProductVersion.current)], "1")
    let stats = statistics.sorted { ($0.target, $0.lun) < ($1.target, $1.lun) }
    func lunLabels(_ s: LUNStatistics) -> [(String, String)] { [("target", s.target), ("lun", String(s.lun))] }

    family("lun_commands_total", "counter", "SCSI commands completed per LUN, by kind.")
    for s in stats {
        line("lun_commands_total", lunLabels(s) + [("kind", "read")], String(s.readCommands))
        line("lun_commands_total", lunLabels(s) + [("kind", "write")], String(s.writeCommands))
        line("lun_commands_total", lunLabels(s) + [("kind", "other")], String(s.otherCommands))
    }
    family("lun_read_bytes_total", "counter", "Bytes read from the LUN by initiators.")
    for s in stats { line("lun_read_bytes_total", lunLabels(s), String(s.bytesRead)) }
    family("lun_written_bytes_total", "counter", "Bytes written to the LUN by initiators.")
    for s in stats { line("lun_written_bytes_total", lunLabels(s), String(s.bytesWritten)) }
    family("lun_errors_total", "counter", "Commands that completed with an error status.")
    for s in stats { line("lun_errors_total", lunLabels(s), String(s.errors)) }
    family("lun_latency_seconds", "histogram", "Command latency from receipt to completion.")
    for s in stats {
        let n = min(s.latencyBuckets.count, s.latencyCounts.count)
        var hasInf = false
        for i in 0..<n {
            let bound = s.latencyBuckets[i]
            if bound.isInfinite { hasInf = true }
            line("lun_latency_seconds_bucket", lunLabels(s) + [("le", formatFloat(bound))], String(s.latencyCounts[i]))
        }
        let count = histogramCount(s)
        if !hasInf { line("lun_latency_seconds_bucket", lunLabels(s) + [("le", "+Inf")], String(count)) }
        line("lun_latency_seconds_sum", lunLabels(s), formatFloat(s.latencySumSeconds))
        line("lun_latency_seconds_count", lunLabels(s), String(count))
    }
    family("chap_failures_total", "counter", "Failed CHAP authentications.")
    line("chap_failures_total", [], String(security.chapFailures))
    family("acl_denials_total", "counter", "Logins refused by the allowed-client rules.")
    line("acl_denials_total", [], String(security.aclDenials))
    family("nop_timeouts_total", "counter", "Connections dropped because a NOP-In ping was not answered.")
    line("nop_timeouts_total", [], String(security.nopTimeouts))
    family("logins_in_progress", "gauge", "Connections that have not finished login.")
    line("logins_in_progress", [], String(security.loginsInProgress))
    family("refused_connections_total", "counter", "Connections closed at once: too many in login from that address or in all.")
    line("refused_connections_total", [], String(security.refusedConnections))
    family("chap_delayed_verifications_total", "counter", "CHAP responses that waited their turn (guessing throttle).")
    line("chap_delayed_verifications_total", [], String(security.delayedCHAPVerifications))
    family("chap_throttled_peers", "gauge", "Initiator names and addresses whose CHAP attempts are being delayed.")
    line("chap_throttled_peers", [], String(security.throttledPeers))
    family("buffered_write_bytes", "gauge", "Data-Out bytes held for writes still receiving data.")
    line("buffered_write_bytes", [], String(security.bufferedWriteBytes))
    family("resident_memory_bytes", "gauge", "Resident memory of the daemon.")
    line("resident_memory_bytes", [], String(security.residentBytes))

    let st = statuses.sorted { $0.name < $1.name }
    family("targets_running", "gauge", "Targets currently running.")
    line("targets_running", [], String(st.filter(\.running).count))
    family("target_running", "gauge", "1 when the target is running.")
    for t in st { line("target_running", [("target", t.name)], t.running ? "1" : "0") }
    family("target_sessions", "gauge", "Sessions logged in to the target.")
    for t in st { line("target_sessions", [("target", t.name)], String(t.sessions)) }
    family("lun_capacity_bytes", "gauge", "The capacity the LUN serves.")
    for t in st {
        for (lun, bytes) in t.lunSizes.sorted(by: { $0.key < $1.key }) {
            line("lun_capacity_bytes", [("target", t.name), ("lun", String(lun))], String(bytes))
        }
    }
    family("sessions", "gauge", "All iSCSI sessions, discovery sessions included.")
    line("sessions", [], String(sessions.count))
    family("session_commands_in_flight", "gauge", "Commands received and not yet completed, per session.")
    // The initiator port, stable across reconnects (the TSIH is new for every session).
    func sessionLabels(_ s: SessionInfo) -> [(String, String)] {
        [("target", s.target ?? ""), ("initiator", s.initiator), ("isid", s.isid)]
    }
    let bySession = sessions.sorted { ($0.target ?? "", $0.initiator, $0.isid) < ($1.target ?? "", $1.initiator, $1.isid) }
    for s in bySession { line("session_commands_in_flight", sessionLabels(s), String(s.commandsInFlight)) }
    let perSession: [(String, String, String, (SessionInfo) -> UInt64)] = [
        ("session_commands_total", "counter", "Commands answered in the session.", { $0.commands }),
        ("session_read_bytes_total", "counter", "Bytes read by the session's initiator.", { $0.bytesRead }),
        ("session_written_bytes_total", "counter", "Bytes written by the session's initiator.", { $0.bytesWritten }),
        ("session_errors_total", "counter", "Commands of the session answered with a status other than GOOD.", { $0.errors }),
    ]
    for (name, type, help, value) in perSession {
        family(name, type, help)
        for s in bySession { line(name, sessionLabels(s), String(value(s))) }
    }
    return out
}

/// Total observations of a LUN's latency histogram (see `renderMetrics`).
func histogramCount(_ s: LUNStatistics) -> UInt64 {
    let n = min(s.latencyBuckets.count, s.latencyCounts.count)
    if n > 0, s.latencyBuckets[n - 1].isInfinite { return s.latencyCounts[n - 1] }
    let last = n > 0 ? s.latencyCounts[n - 1] : 0
    return max(last, s.readCommands &+ s.writeCommands &+ s.otherCommands)
}

func escapeLabel(_ s: String) -> String {
    var o = ""
    for c in s {
        switch c {
        case "\\": o += "\\\\"
        case "\"": o += "\\\""
        case "\n": o += "\\n"
        default: o.append(c)
        }
    }
    return o
}

/// Prometheus float: `+Inf`, `-Inf`, `NaN`, integers without a fraction (`1`), else Swift's shortest form.
func formatFloat(_ v: Double) -> String {
    if v.isNaN { return "NaN" }
    if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
    if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
    return "\(v)"
}
