import NIOConcurrencyHelpers
import SCSIEngine

/// A target as the fabric serves it: who may reach it (login side) and its SCSI device.
public struct ServedTarget: Sendable {
    public var access: TargetAccess
    public var device: SCSITarget

    public init(access: TargetAccess, device: SCSITarget) {
        self.access = access
        self.device = device
    }
}

/// The targets behind the portals. Replaced as a whole on configuration changes; logins
/// read a snapshot, so a change never disturbs a session already running.
public final class TargetCatalog: Sendable {
    private struct Snapshot {
        var targets: [ServedTarget]
        var discoveryAuthentication: AuthenticationPolicy
        var discoverySettings: TargetLoginSettings
    }

    private let state: NIOLockedValueBox<Snapshot>

    public init(targets: [ServedTarget], discoveryAuthentication: AuthenticationPolicy = .none,
                discoverySettings: TargetLoginSettings = TargetLoginSettings()) {
        state = NIOLockedValueBox(Snapshot(targets: targets, discoveryAuthentication: discoveryAuthentication,
                                           discoverySettings: discoverySettings))
    }

    public var targets: [ServedTarget] { state.withLockedValue { $0.targets } }

    public func replaceTargets(_ targets: [ServedTarget]) {
        state.withLockedValue { $0.targets = targets }
    }

    /// Replaces the targets and the discovery settings at once (a configuration change).
    public func replaceAll(targets: [ServedTarget], discoveryAuthentication: AuthenticationPolicy,
                           discoverySettings: TargetLoginSettings) {
        state.withLockedValue {
            $0 = Snapshot(targets: targets, discoveryAuthentication: discoveryAuthentication,
                          discoverySettings: discoverySettings)
        }
    }

    /// What a connection arriving on `localAddress` sees: only targets exposed there, and
    /// wildcard portals (0.0.0.0 / [::]) advertised as the local address itself.
    public func directory(forLocalAddress localAddress: String) -> TargetDirectory {
        var directory = self.directory
        let local = localAddress.contains(":") ? "[\(localAddress)]" : localAddress
        directory.targets = directory.targets.filter { $0.isExposed(localAddress) }.map { access in
            var access = access
            access.portals = access.portals.map { portal in
                for wildcard in ["0.0.0.0:", "[::]:"] where portal.hasPrefix(wildcard) {
                    return local + ":" + portal.dropFirst(wildcard.count)
                }
                return portal
            }
            return access
        }
        return directory
    }

    public func access(named name: String) -> TargetAccess? {
        state.withLockedValue { $0.targets.first { $0.access.name == name }?.access }
    }

    /// What the login state machine sees.
    public var directory: TargetDirectory {
        state.withLockedValue { snapshot in
            TargetDirectory(targets: snapshot.targets.map(\.access),
                            discoveryAuthentication: snapshot.discoveryAuthentication,
                            discoverySettings: snapshot.discoverySettings)
        }
    }

    public func device(named name: String) -> SCSITarget? {
        state.withLockedValue { $0.targets.first { $0.access.name == name }?.device }
    }
}
