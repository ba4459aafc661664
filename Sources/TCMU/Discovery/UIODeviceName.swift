import Backstores

/// The name the kernel gives a TCMU device's uio node:
/// `tcm-user/<hba_id>/<device>/<subtype>/<cfgstring>` (`/sys/class/uio/uioN/name`).
/// The configfs directory is `core/user_<hba_id>/<device>`.
public struct UIODeviceName: Sendable, Equatable {
    public var hbaID: String
    public var device: String
    /// Which handler serves it (tcmu-runner's handler name; ours is `swifttarget`).
    public var subtype: String
    /// Everything after `<subtype>/`, slashes included.
    public var cfgstring: String

    public init(hbaID: String, device: String, subtype: String, cfgstring: String) {
        self.hbaID = hbaID
        self.device = device
        self.subtype = subtype
        self.cfgstring = cfgstring
    }

    /// Parses a uio name; nil when it is not a TCMU device.
    public init?(parsing text: String) {
        let trimmed = text.hasSuffix("\n") ? String(text.dropLast()) : text
        let parts = trimmed.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[0] == TCMUProtocol.uioNamePrefix, !parts[1].isEmpty, !parts[2].isEmpty else {
            return nil
        }
        hbaID = String(parts[1])
        device = String(parts[2])
        let config = parts.count == 4 ? parts[3] : ""
        if let slash = config.firstIndex(of: "/") {
            subtype = String(config[..<slash])
            cfgstring = String(config[config.index(after: slash)...])
        } else {
            subtype = String(config)
            cfgstring = ""
        }
    }

    /// `core/user_<hba>/<device>` under the configfs target root.
    public func configfsPath(core: String = TCMUProtocol.configfsCore) -> String {
        "\(core)/user_\(hbaID)/\(device)"
    }
}

/// Our cfgstring grammar: a backstore spec as on the command line, with `;` instead of
/// `,` between options, because configfs `control` splits its input on commas:
///
///     dev_config=swifttarget/file:/srv/disk.img
///     dev_config=swifttarget/sparse:/srv/thin.img;size=10G
///     dev_config=swifttarget/raw:/dev/vdb;direct
///
/// Two more options carry the LU's identity (the daemon sets them from its configuration,
/// so a LUN answers INQUIRY alike under LIO and the embedded target): `serial=<text>`
/// (VPD 0x80) and `naa=<16 hex digits>` (the 64-bit value of the NAA-6 designator, VPD 0x83).
public enum TCMUConfigString {
    /// The handler subtype this daemon serves.
    public static let subtype = "swifttarget"

    public struct Identity: Sendable, Equatable {
        public var serial: String?
        public var uniqueID: UInt64?
    }

    public static func backstoreSpec(_ cfgstring: String) throws -> BackstoreSpec {
        try BackstoreSpec.parse(split(cfgstring).backstore.replacingSemicolons())
    }

    public static func identity(_ cfgstring: String) -> Identity {
        split(cfgstring).identity
    }

    /// The backstore part and the identity options of a cfgstring.
    static func split(_ cfgstring: String) -> (backstore: String, identity: Identity) {
        var identity = Identity()
        var kept: [Substring] = []
        for (i, part) in cfgstring.split(separator: ";", omittingEmptySubsequences: false).enumerated() {
            if i > 0, part.hasPrefix("serial=") {
                identity.serial = String(part.dropFirst("serial=".count))
            } else if i > 0, part.hasPrefix("naa="), let v = UInt64(part.dropFirst("naa=".count), radix: 16) {
                identity.uniqueID = v
            } else {
                kept.append(part)
            }
        }
        return (kept.joined(separator: ";"), identity)
    }

    /// The identity options for a cfgstring (empty serials and ones LIO's control file
    /// cannot carry are left out).
    public static func identityOptions(serial: String, uniqueID: UInt64) -> String {
        let hex = String(uniqueID, radix: 16)
        var s = ""
        if !serial.isEmpty, !serial.contains(where: { ";,= \n\t".contains($0) }) { s += ";serial=\(serial)" }
        return s + ";naa=" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

extension String {
    fileprivate func replacingSemicolons() -> String {
        String(map { $0 == ";" ? "," : $0 })
    }
}
