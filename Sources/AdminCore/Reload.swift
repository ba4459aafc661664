import Foundation
import TargetConfig

/// A reload re-reads the configuration file and applies the difference live, as any other
/// change. What the file holds is refused whole when it does not validate (the running
/// configuration stays), and the file is adopted only once its contents are in force.
public struct ReloadSource: Sendable {
    public var config: Config
    /// The bytes read: the save that applies them must find them still there.
    public var data: Data
    public var warnings: [String]

    public init(_ store: ConfigStore) throws(AdminError) {
        do {
            let (loaded, data) = try store.read()
            config = loaded.config
            self.data = data
            warnings = loaded.warnings.map(\.description)
        } catch let e as ConfigError {
            throw AdminError(.invalid, e.errors.map(\.description).joined(separator: "\n"))
        } catch {
            throw AdminError(.failed, "cannot reload: \(error)")
        }
    }
}

extension ConfigStore {
    /// `checkUnchangedOnDisk` as the admin faces report it (409, exit 4).
    public func refuseIfEditedOnDisk() throws(AdminError) {
        do { try checkUnchangedOnDisk() } catch { throw AdminError(.conflict, error.description) }
    }
}
