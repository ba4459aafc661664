import TargetConfig

/// A change an admin face asked for, applied to a copy of the configuration and validated:
/// what every runtime does before touching anything.
public struct ProposedChange: Sendable {
    public var config: Config
    public var warnings: [String]
    public var diff: ConfigDiff

    /// Runs `change` on a copy of `current`; a throwing change or a configuration that does
    /// not validate is refused as `.invalid` with every error, one per line.
    public init(from current: Config, _ change: @Sendable (inout Config) throws -> Void) throws {
        var new = current
        do {
            try change(&new)
        } catch let e as AdminError {
            throw e
        } catch let e as ConfigError {
            throw AdminError(.invalid, e.errors.map(\.description).joined(separator: "\n"))
        } catch {
            throw AdminError(.invalid, "\(error)")
        }
        let diagnostics = new.validate()
        let errors = diagnostics.filter { $0.severity == .error }
        if !errors.isEmpty { throw AdminError(.invalid, errors.map(\.description).joined(separator: "\n")) }
        config = new
        warnings = diagnostics.filter { $0.severity == .warning }.map(\.description)
        diff = ConfigDiff.between(current, new)
    }
}
