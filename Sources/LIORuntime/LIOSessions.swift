import TCMU

/// The sessions LIO reports for one TPG: node ACLs' `info` files (named initiators) and
/// `dynamic_sessions` (demo mode, names only).
struct LIOSessions {
    struct Session: Equatable {
        var initiator: String
        var tsih: UInt16
        var isid: String
        var remoteAddress: String
    }

    static func read(tpg: String) -> [Session] {
        var out: [Session] = []
        for acl in SysfsFiles.list(tpg + "/acls") {
            if let text = SysfsFiles.read(tpg + "/acls/" + acl + "/info", limit: 65536) { out += parseInfo(text) }
        }
        if let text = SysfsFiles.read(tpg + "/dynamic_sessions", limit: 65536) {
            for line in text.split(whereSeparator: \.isNewline) where !line.isEmpty {
                out.append(Session(initiator: String(line), tsih: 0, isid: "", remoteAddress: ""))
            }
        }
        return out
    }

    /// Parses a node ACL `info` file (drivers/target/iscsi/iscsi_target_configfs.c,
    /// lio_target_nacl_info_show): one "InitiatorName:" header, then per session a line
    /// with "ISID: 0x… TSIH: n" and connection lines "Address <ip> TCP".
    static func parseInfo(_ text: String) -> [Session] {
        var initiator = ""
        var out: [Session] = []
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingPrefixSpaces()
            let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if line.hasPrefix("InitiatorName:"), words.count >= 2 {
                initiator = words[1]
            } else if let i = words.firstIndex(of: "ISID:"), i + 1 < words.count {
                var s = Session(initiator: initiator, tsih: 0, isid: String(words[i + 1].dropFirst(2)), remoteAddress: "")
                if let j = words.firstIndex(of: "TSIH:"), j + 1 < words.count { s.tsih = UInt16(words[j + 1]) ?? 0 }
                out.append(s)
            } else if words.first == "Address", words.count >= 2, !out.isEmpty, out[out.count - 1].remoteAddress.isEmpty {
                out[out.count - 1].remoteAddress = words[1]
            }
        }
        return out
    }
}

extension Substring {
    fileprivate func trimmingPrefixSpaces() -> String { String(drop(while: { $0 == " " || $0 == "\t" })) }
}
