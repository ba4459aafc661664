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
public enum TCMUConfigString {
    /// The handler subtype this daemon serves.
    public static let subtype = "swifttarget"

    public static func backstoreSpec(_ cfgstring: String) throws -> BackstoreSpec {
        try BackstoreSpec.parse(cfgstring.replacingSemicolons())
    }
}

extension String {
    fileprivate func replacingSemicolons() -> String {
        String(map { $0 == ";" ? "," : $0 })
    }
}
