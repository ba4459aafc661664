import Foundation

/// Fully resolved session settings: target override, else `defaults`, else built-in default.
public struct EffectiveConnectionSettings: Sendable, Hashable {
    public var maxSessions: Int
    public var maxConnections: Int
    public var initialR2T: Bool
    public var immediateData: Bool
    public var maxRecvDataSegmentLength: Int
    public var maxXmitDataSegmentLength: Int
    public var maxBurstLength: Int
    public var firstBurstLength: Int
    public var maxOutstandingR2T: Int
    public var defaultTime2Wait: Int
    public var defaultTime2Retain: Int
    public var headerDigest: [DigestKind]
    public var dataDigest: [DigestKind]

    /// RFC 7143 §13 defaults (MaxXmitDataSegmentLength as in IET); MaxSessions 0 = unlimited.
    public static let builtIn = EffectiveConnectionSettings(
        maxSessions: 0, maxConnections: 1, initialR2T: true, immediateData: true,
        maxRecvDataSegmentLength: 8192, maxXmitDataSegmentLength: 8192, maxBurstLength: 262_144,
        firstBurstLength: 65_536, maxOutstandingR2T: 1, defaultTime2Wait: 2, defaultTime2Retain: 20,
        headerDigest: [.none], dataDigest: [.none])

    /// Applies the non-nil fields of `o` on top of `self`.
    public func overridden(by o: ConnectionSettings?) -> EffectiveConnectionSettings {
        guard let o else { return self }
        var r = self
        if let v = o.maxSessions { r.maxSessions = v }
        if let v = o.maxConnections { r.maxConnections = v }
        if let v = o.initialR2T { r.initialR2T = v }
        if let v = o.immediateData { r.immediateData = v }
        if let v = o.maxRecvDataSegmentLength { r.maxRecvDataSegmentLength = v }
        if let v = o.maxXmitDataSegmentLength { r.maxXmitDataSegmentLength = v }
        if let v = o.maxBurstLength { r.maxBurstLength = v }
        if let v = o.firstBurstLength { r.firstBurstLength = v }
        if let v = o.maxOutstandingR2T { r.maxOutstandingR2T = v }
        if let v = o.defaultTime2Wait { r.defaultTime2Wait = v }
        if let v = o.defaultTime2Retain { r.defaultTime2Retain = v }
        if let v = o.headerDigest { r.headerDigest = v }
        if let v = o.dataDigest { r.dataDigest = v }
        return r
    }
}

public struct EffectiveTimeoutSettings: Sendable, Hashable {
    public var nopInInterval: Int
    public var nopInTimeout: Int
    public var loginTimeout: Int

    /// Ping idle connections every 15 s, drop after 30 s without answer; 15 s to log in.
    public static let builtIn = EffectiveTimeoutSettings(nopInInterval: 15, nopInTimeout: 30, loginTimeout: 15)

    public func overridden(by o: TimeoutSettings?) -> EffectiveTimeoutSettings {
        guard let o else { return self }
        var r = self
        if let v = o.nopInInterval { r.nopInInterval = v }
        if let v = o.nopInTimeout { r.nopInTimeout = v }
        if let v = o.loginTimeout { r.loginTimeout = v }
        return r
    }
}

/// What a target actually runs with after inheritance. Everything the daemon needs per target.
public struct EffectiveTarget: Sendable, Hashable {
    public var name: String
    public var alias: String?
    public var luns: [LUN]
    public var auth: AuthSettings
    /// First match wins; empty = allow everyone.
    public var allowedClients: [AccessRule]
    /// Empty = reachable on every portal.
    public var allowedServerAddresses: [IPNetwork]
    public var connection: EffectiveConnectionSettings
    public var timeouts: EffectiveTimeoutSettings
    /// Per-initiator LUN maps (not inherited); empty = every initiator sees every LUN.
    public var lunMaps: [LUNMapping] = []
    /// Which of `auth`, `allowedClients`, `allowedServerAddresses` came from `defaults`.
    public var inherited: Set<String>

    /// Client ACL decision for a login (CHAP is checked separately with `auth`).
    public func allowsLogin(initiatorName: String, address: String) -> Bool {
        AccessRule.evaluate(allowedClients, initiatorName: initiatorName, address: address).action == .allow
    }

    /// Whether the target may be reached through (and advertised for) a connection whose local
    /// (server-side) address is `localAddress`.
    public func isExposed(onLocalAddress localAddress: String) -> Bool {
        if allowedServerAddresses.isEmpty { return true }
        guard let a = IPAddress(localAddress) else { return false }
        return allowedServerAddresses.contains { $0.contains(a) }
    }

    /// Portals on which SendTargets should advertise this target. Wildcard portals are
    /// kept (the daemon substitutes the connection's local address and checks `isExposed`).
    public func advertisedPortals(of portals: [Portal]) -> [Portal] {
        portals.filter { p in
            if p.isWildcard || allowedServerAddresses.isEmpty { return true }
            guard let a = p.ipAddress else { return false }
            return allowedServerAddresses.contains { $0.contains(a) }
        }
    }
}

extension Config {
    /// Connection settings every target inherits (built-in defaults overridden by `defaults.connection`).
    public var defaultConnection: EffectiveConnectionSettings {
        EffectiveConnectionSettings.builtIn.overridden(by: defaults.connection)
    }
    public var defaultTimeouts: EffectiveTimeoutSettings {
        EffectiveTimeoutSettings.builtIn.overridden(by: defaults.timeouts)
    }

    /// Resolves inheritance for one target: target value, else `defaults`, else built-in.
    public func effective(_ target: Target) -> EffectiveTarget {
        var inherited = Set<String>()
        if target.auth == nil { inherited.insert("auth") }
        if target.allowedClients == nil { inherited.insert("allowedClients") }
        if target.allowedServerAddresses == nil { inherited.insert("allowedServerAddresses") }
        return EffectiveTarget(
            name: target.name,
            alias: target.alias,
            luns: target.luns.sorted { $0.id < $1.id },
            auth: target.auth ?? defaults.auth ?? .noAuth,
            allowedClients: target.allowedClients ?? defaults.allowedClients ?? [],
            allowedServerAddresses: target.allowedServerAddresses ?? defaults.allowedServerAddresses ?? [],
            connection: defaultConnection.overridden(by: target.connection),
            timeouts: defaultTimeouts.overridden(by: target.timeouts),
            lunMaps: target.lunMaps ?? [],
            inherited: inherited)
    }

    /// The effective settings of the named target, or nil if there is no such target.
    public func effectiveSettings(forTarget name: String) -> EffectiveTarget? {
        target(named: name).map(effective)
    }

    /// Effective settings of all targets, in file order.
    public var effectiveTargets: [EffectiveTarget] { targets.map(effective) }
}

extension Config {
    /// Targets a SendTargets request should list for this initiator: ACL allows it and the
    /// target is exposed on the local address the discovery connection arrived on.
    public func discoverableTargets(initiatorName: String, address: String, localAddress: String) -> [EffectiveTarget] {
        effectiveTargets.filter {
            $0.allowsLogin(initiatorName: initiatorName, address: address) && $0.isExposed(onLocalAddress: localAddress)
        }
    }

    /// A copy with every CHAP secret replaced by `********`, for display in the CLI, API and
    /// console. Never save it.
    public func redactingSecrets() -> Config {
        func r(_ a: AuthSettings) -> AuthSettings {
            var a = a
            a.incomingUsers = a.incomingUsers.map { CHAPCredential(user: $0.user, secret: "********") }
            a.outgoingUser = a.outgoingUser.map { CHAPCredential(user: $0.user, secret: "********") }
            return a
        }
        var c = self
        c.discoveryAuth = r(c.discoveryAuth)
        c.defaults.auth = c.defaults.auth.map(r)
        for i in c.targets.indices { c.targets[i].auth = c.targets[i].auth.map(r) }
        return c
    }
}
