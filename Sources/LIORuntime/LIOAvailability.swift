import Foundation

/// Whether this host can run the LIO-backed mode: LIO's configfs tree and the
/// target_core_user module (which owns the TCM-USER netlink family and the uio rings).
public enum LIOAvailability: Sendable, Equatable {
    case available
    case unavailable(reason: String)

    public static func probe(configfsRoot: String = "/sys/kernel/config/target",
                             userModule: String = "/sys/module/target_core_user") -> LIOAvailability {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: configfsRoot, isDirectory: &isDir), isDir.boolValue else {
            return .unavailable(reason: "\(configfsRoot) is missing (no configfs, or target_core_mod is not loaded)")
        }
        guard FileManager.default.fileExists(atPath: userModule) else {
            return .unavailable(reason: "target_core_user is not loaded (modprobe target_core_user)")
        }
        return .available
    }
}
