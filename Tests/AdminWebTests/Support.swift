import AdminCore
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import TargetConfig
import Testing

@testable import AdminWeb

/// In-memory `AdminBackend`: validates like the daemon and records what the console asked for.
actor FakeBackend: AdminBackend {
    var config: Config
    var statuses: [TargetStatus] = []
    var sessionList: [SessionInfo] = []
    var stats: [LUNStatistics] = []
    var security = SecurityCounters()
    private(set) var updateCount = 0
    private(set) var controls: [String] = []
    private(set) var loggedOut: [UInt16] = []
    var failControl: AdminError?

    init(config: Config = Config(portals: [Portal(address: "127.0.0.1", port: 3260)])) { self.config = config }

    func configuration() -> Config { config }

    func reload() throws -> ApplyReport { ApplyReport(effects: [], warnings: []) }

    func update(_ change: @Sendable (inout Config) throws -> Void) throws -> ApplyReport {
        var c = config
        try change(&c)
        let diags = c.validate()
        let errors = diags.filter { $0.severity == .error }
        if !errors.isEmpty { throw AdminError(.invalid, errors.map(\.description).joined(separator: "\n")) }
        let effects = ConfigDiff.between(config, c).effects.map {
            AppliedEffect(setting: $0.setting.rawValue, target: $0.target, lun: $0.lun, applyMode: $0.applyMode.rawValue,
                          outcome: $0.applyMode == .immediate ? "applied" : "applies to new logins")
        }
        config = c
        updateCount += 1
        return ApplyReport(effects: effects, warnings: diags.filter { $0.severity == .warning }.map(\.description))
    }

    /// When set, statuses are derived from the configuration (every target running).
    var autoStatus = false
    func setAutoStatus() { autoStatus = true }

    func targetStatuses() -> [TargetStatus] {
        guard autoStatus else { return statuses }
        return config.targets.map { t in
            TargetStatus(name: t.name, running: true, sessions: 0,
                         lunSizes: Dictionary(t.luns.map { ($0.id, $0.size ?? 0) }, uniquingKeysWith: { a, _ in a }))
        }
    }
    func sessions() -> [SessionInfo] { sessionList }
    func logout(tsih: UInt16) throws {
        guard sessionList.contains(where: { $0.tsih == tsih }) else { throw AdminError(.notFound, "no session \(tsih)") }
        loggedOut.append(tsih)
        sessionList.removeAll { $0.tsih == tsih }
    }
    func control(_ action: ServiceAction, target: String?) throws {
        if let failControl { throw failControl }
        controls.append("\(action.rawValue) \(target ?? "ALL")")
    }
    func statistics() -> [LUNStatistics] { stats }
    func securityCounters() -> SecurityCounters { security }

    func set(config: Config) { self.config = config }
    func set(statuses: [TargetStatus]) { self.statuses = statuses }
    func set(sessions: [SessionInfo]) { self.sessionList = sessions }
    func set(stats: [LUNStatistics]) { self.stats = stats }
    func set(security: SecurityCounters) { self.security = security }
}

let testPassword = "correct horse battery"

/// One credentials file for all tests (PBKDF2 at full strength is slow-ish to create).
let testCredentials: WebCredentials = {
    // swiftlint:disable:next force_try
    try! WebCredentials(fileText: WebCredentials.make(password: testPassword))
}()

func testOptions() -> AdminWebOptions {
    var o = AdminWebOptions()
    o.failedLoginDelay = 0
    o.maxLoginFailures = 3
    o.blockDevices = { [BlockDevice(path: "/dev/sdz", sizeBytes: 8 << 30, isPartition: false),
                        BlockDevice(path: "/dev/sdz1", sizeBytes: 4 << 30, isPartition: true)] }
    o.hostName = { "node1.Example.com" }
    o.statisticsMinimumGap = 0
    return o
}

func makeServer(_ backend: FakeBackend, options: AdminWebOptions = testOptions()) -> AdminWebServer {
    AdminWebServer(backend: backend, credentials: testCredentials, logger: Logger(label: "test"), options: options)
}

extension TestResponse {
    var text: String { String(buffer: body) }
}

/// A logged-in browser for the router test client.
struct Browser {
    let client: any TestClientProtocol
    var cookie = ""
    var csrf = ""

    init(_ client: any TestClientProtocol) { self.client = client }

    /// Loads the login form (its token and cookie) and submits it.
    func login(user: String = "admin", password: String) async throws -> TestResponse {
        let form = try await get("/login")
        let token = loginToken(in: form.text) ?? ""
        let cookie = (form.headers[values: .setCookie].first { $0.hasPrefix("swifttarget_login=") } ?? "").split(separator: ";").first.map(String.init) ?? ""
        var h = HTTPFields()
        h[.cookie] = cookie
        h[.contentType] = "application/x-www-form-urlencoded"
        let body = "login_token=\(formEncode(token))&user=\(formEncode(user))&password=\(formEncode(password))"
        return try await client.execute(uri: "/login", method: .post, headers: h, body: ByteBuffer(string: body))
    }

    static func loggedIn(_ client: any TestClientProtocol) async throws -> Browser {
        var b = Browser(client)
        let r = try await b.login(password: testPassword)
        #expect(r.status == .seeOther)
        let setCookie = r.headers[values: .setCookie].first ?? ""
        b.cookie = String(setCookie.split(separator: ";")[0])
        let home = try await b.get("/")
        b.csrf = csrfToken(in: home.text) ?? ""
        #expect(!b.csrf.isEmpty)
        return b
    }

    func headers(form: Bool = false) -> HTTPFields {
        var h = HTTPFields()
        if !cookie.isEmpty { h[.cookie] = cookie }
        if form { h[.contentType] = "application/x-www-form-urlencoded" }
        return h
    }

    func get(_ uri: String) async throws -> TestResponse {
        try await client.execute(uri: uri, method: .get, headers: headers())
    }

    /// POST without adding the CSRF token.
    func postRaw(_ uri: String, _ fields: KeyValuePairs<String, String>) async throws -> TestResponse {
        try await postPairs(uri, fields.map { ($0.key, $0.value) })
    }

    func postPairs(_ uri: String, _ pairs: [(String, String)]) async throws -> TestResponse {
        let body = pairs.map { "\(formEncode($0.0))=\(formEncode($0.1))" }.joined(separator: "&")
        return try await client.execute(uri: uri, method: .post, headers: headers(form: true), body: ByteBuffer(string: body))
    }

    /// POST with the session's CSRF token.
    func post(_ uri: String, _ pairs: [(String, String)]) async throws -> TestResponse {
        try await postPairs(uri, [("csrf", csrf)] + pairs)
    }
}

func formEncode(_ s: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
}

func loginToken(in html: String) -> String? {
    guard let r = html.range(of: "name=\"login_token\" value=\"") else { return nil }
    let rest = html[r.upperBound...]
    return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
}

func csrfToken(in html: String) -> String? {
    guard let r = html.range(of: "name=\"csrf\" value=\"") else { return nil }
    let rest = html[r.upperBound...]
    return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
}

func withServer<T: Sendable>(
    _ backend: FakeBackend, options: AdminWebOptions = testOptions(),
    _ body: @Sendable @escaping (any TestClientProtocol) async throws -> T
) async throws -> T {
    let app = makeServer(backend, options: options).makeApplication(host: "127.0.0.1", port: 0)
    return try await app.test(.router, body)
}
