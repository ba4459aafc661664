import AdminCore
import Foundation
import Hummingbird
import Logging
import NIOCore
import TargetConfig

/// The local JSON API: HTTP/1.1 over a Unix domain socket. Access control is the socket
/// file's permissions (mode 0660, owner root and the `group` given, else root's group).
/// Routes: see docs/api.md.
public struct AdminAPIServer: Sendable {
    public var backend: any AdminBackend
    public var socketPath: String
    /// Group id that may use the API (nil: the daemon's own group).
    public var group: gid_t?
    public var logger: Logger

    public init(backend: any AdminBackend, socketPath: String = defaultAPISocketPath, group: gid_t? = nil,
                logger: Logger = Logger(label: "swift-targetd.api")) {
        self.backend = backend
        self.socketPath = socketPath
        self.group = group
        self.logger = logger
    }

    /// Looks up a group name (for `--api-group`).
    public static func groupID(named name: String) -> gid_t? {
        if let g = getgrnam(name) { return g.pointee.gr_gid }
        return gid_t(name)
    }

    /// Prepares the socket path: creates the directory, removes a stale socket, refuses to
    /// replace anything that is not a socket.
    public func prepareSocketPath() throws {
        let dir = (socketPath as NSString).deletingLastPathComponent
        if !dir.isEmpty && !FileManager.default.fileExists(atPath: dir) {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o755])
            } catch {
                throw AdminError(.failed, "cannot create \(dir) for the API socket: \(error.localizedDescription)")
            }
        }
        var st = stat()
        if lstat(socketPath, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else {
                throw AdminError(.failed, "\(socketPath) exists and is not a socket; not replacing it")
            }
            if Self.isAlive(socketPath) {
                throw AdminError(.failed, "\(socketPath) is in use by another running daemon")
            }
            unlink(socketPath)
        }
    }

    /// True when something accepts connections on the socket.
    static func isAlive(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { Foundation.close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return rc == 0
    }

    /// Serves until the task is cancelled. `onReady` runs once the socket accepts connections
    /// (after its mode was set).
    public func run(onReady: @escaping @Sendable () -> Void = {}) async throws {
        try prepareSocketPath()
        let path = socketPath
        let group = self.group
        let logger = self.logger
        // Hummingbird's own logger: its cancellation noise at shutdown is not an error for us.
        var quiet = logger
        quiet.logLevel = .critical
        let router = Router(context: BasicRequestContext.self)
        APIRoutes(backend: backend).register(on: router)
        let app = Application(
            router: router,
            configuration: .init(address: .unixDomainSocket(path: path), serverName: "swift-targetd"),
            onServerRunning: { _ in
                if chmod(path, 0o660) != 0 { logger.error("cannot chmod \(path): \(String(cString: strerror(errno)))") }
                if let group, chown(path, getuid(), group) != 0 {
                    logger.error("cannot chown \(path) to group \(group): \(String(cString: strerror(errno)))")
                }
                logger.info("API listening", metadata: ["socket": "\(path)"])
                onReady()
            },
            logger: quiet)
        defer { unlink(path) }
        try await app.run()
    }
}

/// The route table and handlers.
struct APIRoutes: Sendable {
    let backend: any AdminBackend

    typealias Context = BasicRequestContext

    func register(on router: Router<Context>) {
        let v1 = router.group("v1")
        v1.get("targets") { _, _ in await respond { try await listTargets() } }
        v1.get("targets/:name") { _, c in await respond { try await showTarget(try name(c)) } }
        v1.post("targets") { r, _ in
            await respond {
                let body = try await decode(NewTargetRequest.self, r)
                return try await addTarget(body)
            }
        }
        v1.delete("targets/:name") { _, c in
            await respond {
                let n = try name(c)
                return try await backend.update { config in
                    guard let i = config.targetIndex(named: n) else { throw AdminError(.notFound, "no target named \(n)") }
                    config.targets.remove(at: i)
                }
            }
        }
        registerLUNs(on: v1)
        v1.patch("targets/:name") { r, c in
            await respond {
                let n = try name(c)
                let body = try await decode(NewTargetRequest.self, r)
                return try await backend.update { config in
                    guard let i = config.targetIndex(named: n) else { throw AdminError(.notFound, "no target named \(n)") }
                    config.targets[i].alias = body.alias
                }
            }
        }

        // Authentication.
        v1.put("targets/:name/auth") { r, c in
            await respond {
                let n = try name(c)
                let auth = try await decode(AuthSettings.self, r)
                return try await editTarget(n) { $0.auth = auth }
            }
        }
        v1.delete("targets/:name/auth") { _, c in
            await respond { try await editTarget(try name(c)) { $0.auth = nil } }
        }
        v1.put("auth") { r, _ in
            await respond {
                let auth = try await decode(AuthSettings.self, r)
                return try await backend.update { $0.defaults.auth = auth }
            }
        }
        v1.get("auth") { _, _ in await respond { redact(await backend.configuration().defaults.auth ?? .noAuth) } }
        v1.put("discovery-auth") { r, _ in
            await respond {
                let auth = try await decode(AuthSettings.self, r)
                return try await backend.update { $0.discoveryAuth = auth }
            }
        }
        v1.get("discovery-auth") { _, _ in await respond { redact(await backend.configuration().discoveryAuth) } }

        registerLUNMaps(on: v1)
        registerConfig(on: v1)

        // Allowed clients (ordered rules) and allowed server addresses, per target and global.
        for scope in ["targets/:name/", ""] {
            v1.get(RouterPath(scope + "allowed-clients")) { _, c in
                await respond { try await rules(scope: try self.scope(c)) }
            }
            v1.put(RouterPath(scope + "allowed-clients")) { r, c in
                await respond {
                    let list = try await decode([AccessRule].self, r)
                    return try await editRules(scope: try self.scope(c)) { $0 = list }
                }
            }
            v1.post(RouterPath(scope + "allowed-clients")) { r, c in
                await respond {
                    let body = try await decode(NewAccessRuleRequest.self, r)
                    return try await editRules(scope: try self.scope(c)) { list in
                        let at = body.position ?? list.count
                        guard (0...list.count).contains(at) else {
                            throw AdminError(.invalid, "position \(at) is out of range 0...\(list.count)")
                        }
                        list.insert(body.rule, at: at)
                    }
                }
            }
            v1.delete(RouterPath(scope + "allowed-clients/:index")) { _, c in
                await respond {
                    let index = try self.index(c)
                    return try await editRules(scope: try self.scope(c)) { list in
                        guard list.indices.contains(index) else { throw AdminError(.notFound, "no rule at position \(index)") }
                        list.remove(at: index)
                    }
                }
            }
            v1.post(RouterPath(scope + "allowed-clients/:index/move")) { r, c in
                await respond {
                    let index = try self.index(c)
                    let body = try await decode(MoveRequest.self, r)
                    return try await editRules(scope: try self.scope(c)) { list in
                        guard list.indices.contains(index) else { throw AdminError(.notFound, "no rule at position \(index)") }
                        let to: Int
                        switch body.direction {
                        case "up": to = index - 1
                        case "down": to = index + 1
                        default: throw AdminError(.invalid, "direction must be up or down")
                        }
                        guard list.indices.contains(to) else { throw AdminError(.invalid, "rule \(index) cannot move \(body.direction)") }
                        list.swapAt(index, to)
                    }
                }
            }
            v1.get(RouterPath(scope + "allowed-server-addresses")) { _, c in
                await respond { try await serverAddresses(scope: try self.scope(c)) }
            }
            v1.put(RouterPath(scope + "allowed-server-addresses")) { r, c in
                await respond {
                    let list = try await decode([String].self, r)
                    var networks: [IPNetwork] = []
                    for text in list {
                        guard let n = IPNetwork(text) else { throw AdminError(.invalid, "\"\(text)\" is not an address or CIDR network") }
                        networks.append(n)
                    }
                    let s = try self.scope(c)
                    let chosen = networks
                    return try await backend.update { config in
                        if let t = s {
                            guard let i = config.targetIndex(named: t) else { throw AdminError(.notFound, "no target named \(t)") }
                            config.targets[i].allowedServerAddresses = chosen
                        } else {
                            config.defaults.allowedServerAddresses = chosen
                        }
                    }
                }
            }
            // Settings.
            v1.get(RouterPath(scope + "settings/connection")) { _, c in
                await respond { try await connectionView(scope: try self.scope(c)) }
            }
            v1.put(RouterPath(scope + "settings/connection")) { r, c in
                await respond {
                    let body = try await decode(ConnectionSettings.self, r)
                    let replace = r.uri.queryParameters.get("replace") == "true"
                    let s = try self.scope(c)
                    return try await backend.update { config in
                        if let t = s {
                            guard let i = config.targetIndex(named: t) else { throw AdminError(.notFound, "no target named \(t)") }
                            let merged = replace ? body : (config.targets[i].connection ?? ConnectionSettings()).merging(body)
                            config.targets[i].connection = merged.isEmpty ? nil : merged
                        } else {
                            let merged = replace ? body : (config.defaults.connection ?? ConnectionSettings()).merging(body)
                            config.defaults.connection = merged.isEmpty ? nil : merged
                        }
                    }
                }
            }
            v1.get(RouterPath(scope + "settings/timeouts")) { _, c in
                await respond { try await timeoutsView(scope: try self.scope(c)) }
            }
            v1.put(RouterPath(scope + "settings/timeouts")) { r, c in
                await respond {
                    let body = try await decode(TimeoutSettings.self, r)
                    let replace = r.uri.queryParameters.get("replace") == "true"
                    let s = try self.scope(c)
                    return try await backend.update { config in
                        if let t = s {
                            guard let i = config.targetIndex(named: t) else { throw AdminError(.notFound, "no target named \(t)") }
                            let merged = replace ? body : (config.targets[i].timeouts ?? TimeoutSettings()).merging(body)
                            config.targets[i].timeouts = merged.isEmpty ? nil : merged
                        } else {
                            let merged = replace ? body : (config.defaults.timeouts ?? TimeoutSettings()).merging(body)
                            config.defaults.timeouts = merged.isEmpty ? nil : merged
                        }
                    }
                }
            }
        }

        // Limits against guessing and exhaustion (the next logins use new values).
        v1.get("limits") { _, _ in await respond { LimitsView(configured: await backend.configuration().limits ?? LimitSettings()) } }
        v1.put("limits") { r, _ in
            await respond {
                let body = try await decode(LimitSettings.self, r)
                let replace = r.uri.queryParameters.get("replace") == "true"
                return try await backend.update { config in
                    let merged = replace ? body : (config.limits ?? LimitSettings()).overridden(by: body)
                    config.limits = merged.isEmpty ? nil : merged
                }
            }
        }

        // Portals.
        v1.get("portals") { _, _ in await respond { await backend.configuration().portals.map(\.description) } }
        v1.put("portals") { r, _ in
            await respond {
                let list = try await decode([String].self, r)
                var portals: [Portal] = []
                for text in list {
                    guard let p = Portal(text) else { throw AdminError(.invalid, "\"\(text)\" is not a portal (address:port)") }
                    portals.append(p)
                }
                let chosen = portals
                return try await backend.update { $0.portals = chosen }
            }
        }

        // Service control, sessions, statistics, configuration.
        v1.post("service/:action") { r, c in
            await respond { () async throws -> [String: String] in
                guard let a = c.parameters.get("action").flatMap(ServiceAction.init(rawValue:)) else {
                    throw AdminError(.notFound, "action must be start, stop or restart")
                }
                let target: String? = r.uri.queryParameters.get("target").map { String($0) }
                try await backend.control(a, target: target)
                return ["result": "ok"]
            }
        }
        v1.get("status") { _, _ in await respond { await backend.targetStatuses() } }
        v1.get("sessions") { _, _ in await respond { await backend.sessions() } }
        v1.delete("sessions/:tsih") { _, c in
            await respond { () async throws -> [String: String] in
                guard let tsih = c.parameters.get("tsih").flatMap(UInt16.init) else {
                    throw AdminError(.invalid, "TSIH must be a number 1...65535")
                }
                try await backend.logout(tsih: tsih)
                return ["result": "logout requested"]
            }
        }
        v1.get("statistics") { _, _ in
            await respond { StatisticsView(luns: await backend.statistics(), security: await backend.securityCounters()) }
        }
        v1.get("config") { _, _ in await respond { await backend.configuration().redactingSecrets() } }
        v1.get("settings/keys") { _, _ in
            await respond { SettingKey.allCases.map { ["setting": $0.rawValue, "field": $0.field, "applyMode": $0.applyMode.rawValue] } }
        }
    }

    // MARK: Handlers

    func listTargets() async throws -> [TargetView] {
        let config = await backend.configuration()
        let statuses = await backend.targetStatuses()
        return config.targets.map { view($0, config: config, status: nil) }
            .map { v in
                var v = v
                if let s = statuses.first(where: { $0.name.lowercased() == v.name.lowercased() }) {
                    v.running = s.running
                    v.sessions = s.sessions
                    for i in v.luns.indices { if let size = s.lunSizes[v.luns[i].id] { v.luns[i].size = size } }
                }
                return v
            }
    }

    func showTarget(_ name: String) async throws -> TargetView {
        guard let v = try await listTargets().first(where: { $0.name.lowercased() == name.lowercased() }) else {
            throw AdminError(.notFound, "no target named \(name)")
        }
        return v
    }

    func view(_ t: Target, config: Config, status: TargetStatus?) -> TargetView {
        let e = config.effective(t)
        return TargetView(
            name: t.name, alias: t.alias, running: false, sessions: 0,
            luns: e.luns.map { LUNView(id: $0.id, backstore: $0.backstore.rawValue, path: $0.path, size: $0.size,
                                       readOnly: $0.readOnly, writeCache: $0.writeCache.rawValue, serial: $0.serial,
                                       naaId: $0.naaId) },
            auth: redact(e.auth), authInherited: e.inherited.contains("auth"), allowedClients: e.allowedClients,
            allowedClientsInherited: e.inherited.contains("allowedClients"),
            allowedServerAddresses: e.allowedServerAddresses.map(\.description), connection: t.connection,
            timeouts: t.timeouts)
    }

    func addTarget(_ body: NewTargetRequest) async throws -> ApplyReport {
        try await backend.update { config in
            if config.targetIndex(named: body.name) != nil {
                throw AdminError(.conflict, "target \(body.name) already exists")
            }
            if let problem = ISCSIName.problem(body.name) { throw AdminError(.invalid, "\(body.name): \(problem)") }
            config.targets.append(Target(name: body.name, alias: body.alias))
        }
    }

    func editTarget(_ name: String, _ edit: @escaping @Sendable (inout Target) throws -> Void) async throws -> ApplyReport {
        try await backend.update { config in
            guard let i = config.targetIndex(named: name) else { throw AdminError(.notFound, "no target named \(name)") }
            try edit(&config.targets[i])
        }
    }

    func rules(scope: String?) async throws -> [AccessRule] {
        let config = await backend.configuration()
        if let t = scope {
            guard let target = config.target(named: t) else { throw AdminError(.notFound, "no target named \(t)") }
            return config.effective(target).allowedClients
        }
        return config.defaults.allowedClients ?? []
    }

    /// Edits a target's own rule list (starting from the inherited one when it has none) or the global one.
    func editRules(scope: String?, _ edit: @escaping @Sendable (inout [AccessRule]) throws -> Void) async throws -> ApplyReport {
        try await backend.update { config in
            if let t = scope {
                guard let i = config.targetIndex(named: t) else { throw AdminError(.notFound, "no target named \(t)") }
                var list = config.targets[i].allowedClients ?? config.defaults.allowedClients ?? []
                try edit(&list)
                config.targets[i].allowedClients = list
            } else {
                var list = config.defaults.allowedClients ?? []
                try edit(&list)
                config.defaults.allowedClients = list.isEmpty ? nil : list
            }
        }
    }

    func serverAddresses(scope: String?) async throws -> [String] {
        let config = await backend.configuration()
        if let t = scope {
            guard let target = config.target(named: t) else { throw AdminError(.notFound, "no target named \(t)") }
            return config.effective(target).allowedServerAddresses.map(\.description)
        }
        return (config.defaults.allowedServerAddresses ?? []).map(\.description)
    }

    func connectionView(scope: String?) async throws -> ConnectionSettingsView {
        let config = await backend.configuration()
        if let t = scope {
            guard let target = config.target(named: t) else { throw AdminError(.notFound, "no target named \(t)") }
            return ConnectionSettingsView(configured: target.connection ?? ConnectionSettings(),
                                          effective: ConnectionSettings(config.effective(target).connection))
        }
        return ConnectionSettingsView(configured: config.defaults.connection ?? ConnectionSettings(),
                                      effective: ConnectionSettings(config.defaultConnection))
    }

    func timeoutsView(scope: String?) async throws -> TimeoutSettingsView {
        let config = await backend.configuration()
        if let t = scope {
            guard let target = config.target(named: t) else { throw AdminError(.notFound, "no target named \(t)") }
            return TimeoutSettingsView(configured: target.timeouts ?? TimeoutSettings(),
                                       effective: TimeoutSettings(config.effective(target).timeouts))
        }
        return TimeoutSettingsView(configured: config.defaults.timeouts ?? TimeoutSettings(),
                                   effective: TimeoutSettings(config.defaultTimeouts))
    }

    // MARK: Helpers

    func name(_ c: Context) throws -> String {
        guard let n = c.parameters.get("name"), !n.isEmpty else { throw AdminError(.invalid, "missing target name") }
        return n.removingPercentEncoding ?? n
    }

    /// nil for the global scope.
    func scope(_ c: Context) throws -> String? {
        c.parameters.get("name") == nil ? nil : try name(c)
    }

    func index(_ c: Context) throws -> Int {
        guard let i = c.parameters.get("index").flatMap(Int.init) else { throw AdminError(.invalid, "rule index must be a number") }
        return i
    }

    func redact(_ a: AuthSettings) -> AuthSettings {
        var a = a
        a.incomingUsers = a.incomingUsers.map { CHAPCredential(user: $0.user, secret: "********") }
        a.outgoingUser = a.outgoingUser.map { CHAPCredential(user: $0.user, secret: "********") }
        return a
    }

    func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        let data = Data(buffer.readableBytesView)
        do {
            return try StrictJSON.decode(type, from: data)
        } catch {
            throw AdminError(.invalid, "request body: \(error)")
        }
    }
}

/// Runs a handler and turns its value or error into a JSON response.
func respond<T: Encodable>(_ body: () async throws -> T) async -> Response {
    do {
        let value = try await body()
        return json(status: 200, try JSON.encode(value))
    } catch let e as AdminError {
        return errorResponse(e)
    } catch {
        return errorResponse(AdminError(.failed, "\(error)"))
    }
}

func errorResponse(_ e: AdminError) -> Response {
    let body = (try? JSON.encode(APIErrorBody(error: e.kind.rawValue, message: e.message))) ?? Data()
    return json(status: e.kind.httpStatus, body)
}

func json(status: Int, _ data: Data) -> Response {
    var bytes = ByteBuffer(bytes: data)
    bytes.writeString("\n")
    return Response(status: .init(code: status), headers: [.contentType: "application/json"],
                    body: ResponseBody(byteBuffer: bytes))
}
