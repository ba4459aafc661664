import AdminCore
import Foundation
import Hummingbird
import Logging
import TargetConfig

/// The web console and `/metrics`.
///
/// The daemon creates one and runs the application it makes, e.g.
///
/// ```swift
/// let web = AdminWebServer(backend: runtime, credentials: try WebCredentials.load(path: file), logger: logger)
/// let app = web.makeApplication(host: "127.0.0.1", port: 9860)
/// // either in a task group:   group.addTask { try await app.run() }
/// // or in a ServiceGroup:     ServiceGroup(services: [app, …], …)   (Application is a Service)
/// ```
///
/// The console has no TLS; keep it on a loopback address (the default) or put it behind a proxy.
public struct AdminWebServer: Sendable {
    public static let defaultHost = "127.0.0.1"
    public static let defaultPort = 9860
    static let cookieName = "swifttarget_session"
    static let loginCookieName = "swifttarget_login"
    static let maxBodySize = 1 << 20

    let backend: any AdminBackend
    let credentials: WebCredentials
    let logger: Logger
    let options: AdminWebOptions
    let sessions: WebSessionStore
    let history: StatisticsHistory

    public init(backend: any AdminBackend, credentials: WebCredentials, logger: Logger) {
        self.init(backend: backend, credentials: credentials, logger: logger, options: AdminWebOptions())
    }

    public init(backend: any AdminBackend, credentials: WebCredentials, logger: Logger, options: AdminWebOptions) {
        self.backend = backend
        self.credentials = credentials
        self.logger = logger
        self.options = options
        self.sessions = WebSessionStore(options: options)
        self.history = StatisticsHistory(interval: options.statisticsInterval, window: options.statisticsWindow,
                                         minimumGap: options.statisticsMinimumGap)
    }

    /// Samples the LUN statistics every `statisticsInterval` until cancelled: run it beside the
    /// application, so the statistics page has history to chart.
    public func runStatisticsSampling() async {
        while !Task.isCancelled {
            await history.record(await backend.statistics())
            try? await Task.sleep(nanoseconds: UInt64(options.statisticsInterval * 1_000_000_000))
        }
    }

    /// An HTTP/1.1 server for the console on `host:port`. Run it with `try await app.run()` (it
    /// serves until its task is cancelled) or as a Service in a ServiceGroup (graceful shutdown).
    /// `onServerRunning` is called with the bound port once it listens (useful with port 0).
    public func makeApplication(
        host: String = defaultHost, port: Int = defaultPort,
        onServerRunning: @escaping @Sendable (_ boundPort: Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let log = logger
        return Application(
            router: buildRouter(),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "swift-targetd"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                log.info("web console listening on http://\(host.contains(":") ? "[\(host)]" : host):\(bound)")
                await onServerRunning(bound)
            },
            logger: logger)
    }

    // MARK: - Routing

    typealias Context = BasicRequestContext

    /// What an authenticated handler gets.
    struct Page: Sendable {
        var session: WebSession
        var query: FormData
        var form: FormData
        var path = ""
        var csrf: String { session.csrfToken }
    }

    func buildRouter() -> Router<Context> {
        let router = Router(context: Context.self)
        router.get("/login") { request, _ in
            if await self.session(of: request) != nil { return redirect("/") }
            return self.loginResponse(message: nil, status: .ok)
        }
        router.post("/login") { request, context in try await self.login(request, context) }
        router.post("/logout") { request, context in
            try await self.authenticatedPost(request, context) { page in
                await self.sessions.remove(page.session.id)
                var r = redirect("/login")
                r.setCookie(self.cookie(value: "", maxAge: 0))
                return r
            }
        }
        router.get("/metrics") { _, _ in
            let text = await renderMetrics(
                statistics: self.backend.statistics(), statuses: self.backend.targetStatuses(),
                sessions: self.backend.sessions(), security: self.backend.securityCounters())
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            headers[.cacheControl] = "no-store"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }

        get(router, "/") { try await self.targetList($0, notice: Notice()) }
        post(router, "/targets/delete") { try await self.deleteTargets($0) }
        post(router, "/service") { try await self.service($0) }
        get(router, "/targets/new") { try await self.targetForm($0, name: nil, notice: Notice(), status: .ok) }
        post(router, "/targets/new") { try await self.saveTarget($0, existing: nil) }
        get(router, "/target") { page in
            try await self.targetForm(page, name: page.query.text("name"), notice: Notice(), status: .ok)
        }
        post(router, "/target") { page in try await self.saveTarget(page, existing: page.form.text("name")) }
        post(router, "/target/delete") { try await self.deleteTarget($0) }
        get(router, "/auth") { try await self.authPage($0, notice: Notice(), status: .ok) }
        post(router, "/auth") { try await self.saveAuth($0) }
        get(router, "/connection") { try await self.connectionPage($0, notice: Notice(), status: .ok) }
        post(router, "/connection") { try await self.saveConnection($0) }
        get(router, "/timeouts") { try await self.timeoutsPage($0, notice: Notice(), status: .ok) }
        post(router, "/timeouts") { try await self.saveTimeouts($0) }
        get(router, "/clients") { try await self.clientsPage($0, notice: Notice(), status: .ok) }
        get(router, "/clients/edit") { try await self.clientEditPage($0, notice: Notice(), status: .ok) }
        post(router, "/clients/save") { try await self.saveClientRule($0) }
        post(router, "/clients/action") { try await self.clientsAction($0) }
        get(router, "/lunmaps") { try await self.lunMapsPage($0, notice: Notice(), status: .ok) }
        post(router, "/lunmaps/add") { try await self.addLUNMap($0) }
        post(router, "/lunmaps/delete") { try await self.deleteLUNMaps($0) }
        get(router, "/servers") { try await self.serversPage($0, notice: Notice(), status: .ok) }
        post(router, "/servers") { try await self.saveServers($0) }
        post(router, "/portals") { try await self.savePortals($0) }
        get(router, "/sessions") { try await self.sessionsPage($0, notice: Notice()) }
        post(router, "/sessions/logout") { try await self.logoutSession($0) }
        get(router, "/statistics") { try await self.statisticsPage($0) }
        get(router, "/config") { try await self.configPage($0) }
        return router
    }

    private func get(_ router: Router<Context>, _ path: RouterPath, _ handler: @escaping @Sendable (Page) async throws -> Response) {
        router.get(path) { request, _ in
            guard let s = await self.session(of: request) else { return redirect("/login") }
            return try await handler(Page(session: s, query: FormData(urlEncoded: request.uri.query ?? ""), form: FormData(), path: request.uri.path))
        }
    }

    private func post(_ router: Router<Context>, _ path: RouterPath, _ handler: @escaping @Sendable (Page) async throws -> Response) {
        router.post(path) { request, context in try await self.authenticatedPost(request, context, handler) }
    }

    /// Session and CSRF check for every state-changing request: no session → login page;
    /// missing or wrong CSRF token → 403.
    private func authenticatedPost(
        _ request: Request, _ context: Context, _ handler: @Sendable (Page) async throws -> Response
    ) async throws -> Response {
        guard let s = await session(of: request) else { return redirect("/login") }
        var request = request
        let body = try await request.collectBody(upTo: Self.maxBodySize)
        let form = FormData(urlEncoded: String(buffer: body))
        guard let token = form["csrf"], constantTimeEqual(token, s.csrfToken) else {
            logger.warning("web: POST \(request.uri.path) rejected: missing or wrong CSRF token")
            return htmlResponse(layout(title: "Forbidden", csrf: nil, body: "<p>The form was rejected (missing or expired security token). Go back, reload the page and try again.</p>"), status: .forbidden)
        }
        return try await handler(Page(session: s, query: FormData(urlEncoded: request.uri.query ?? ""), form: form, path: request.uri.path))
    }

    func session(of request: Request) async -> WebSession? {
        guard let c = request.cookies[Self.cookieName]?.value, !c.isEmpty else { return nil }
        return await sessions.lookup(c)
    }

    func cookie(value: String, maxAge: Int) -> Cookie {
        Cookie(name: Self.cookieName, value: value, maxAge: maxAge, path: "/", secure: options.secureCookie,
               httpOnly: true, sameSite: .strict)
    }

    // MARK: - Login

    private func login(_ request: Request, _ context: Context) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 64 * 1024)
        let form = FormData(urlEncoded: String(buffer: body))
        // Login CSRF: the form's token must match the SameSite=Strict cookie set with the form.
        guard let cookieToken = request.cookies[Self.loginCookieName]?.value, !cookieToken.isEmpty,
              let formToken = form["login_token"], constantTimeEqual(cookieToken, formToken)
        else {
            return loginResponse(message: "The login form expired. Please try again.", status: .forbidden)
        }
        if let left = await sessions.lockoutRemaining() {
            return loginResponse(message: "Too many failed logins. Try again in \(left) s.", status: .tooManyRequests)
        }
        let user = form.text("user")
        let ok = credentials.verify(user: user, password: form["password"] ?? "")
        guard ok else {
            await sessions.recordFailure()
            logger.warning("web: failed login for user \(user)")
            if options.failedLoginDelay > 0 { try await Task.sleep(for: .milliseconds(Int(options.failedLoginDelay * 1000))) }
            return loginResponse(message: "Wrong user name or password.", status: .unauthorized)
        }
        await sessions.recordSuccess()
        let s = await sessions.create(user: user)
        logger.info("web: \(user) logged in")
        var r = redirect("/")
        r.setCookie(cookie(value: s.id, maxAge: Int(options.sessionLifetime)))
        r.setCookie(Cookie(name: Self.loginCookieName, value: "", maxAge: 0, path: "/login", secure: options.secureCookie,
                           httpOnly: true, sameSite: .strict))
        return r
    }

    /// The login page with a fresh login token (hidden field + SameSite=Strict cookie, 1 hour).
    func loginResponse(message: String?, status: HTTPResponse.Status) -> Response {
        let token = randomToken()
        var r = htmlResponse(loginPage(message: message, token: token), status: status)
        r.setCookie(Cookie(name: Self.loginCookieName, value: token, maxAge: 3600, path: "/login", secure: options.secureCookie,
                           httpOnly: true, sameSite: .strict))
        return r
    }

    func loginPage(message: String?, token: String) -> String {
        var b = ""
        if let message { b += "<div class=\"err\" role=\"alert\">\(h(message))</div>" }
        b += """
            <form method="post" action="/login"><input type="hidden" name="login_token" value="\(h(token))">
            <p><label for="user">User</label><input type="text" name="user" id="user" value="" autocomplete="username"></p>
            <p><label for="password">Password</label><input type="password" name="password" id="password" value="" autocomplete="current-password"></p>
            <p><button type="submit" id="login">Log in</button></p></form>
            """
        return layout(title: "Log in", csrf: nil, body: b)
    }
}

// MARK: - Responses

func htmlResponse(_ html: String, status: HTTPResponse.Status = .ok) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "text/html; charset=utf-8"
    headers[.cacheControl] = "no-store"
    headers[.contentSecurityPolicy] =
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    headers[.xContentTypeOptions] = "nosniff"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
}

func redirect(_ location: String) -> Response {
    var headers = HTTPFields()
    headers[.location] = location
    headers[.cacheControl] = "no-store"
    return Response(status: .seeOther, headers: headers)
}

func status(for error: any Error) -> HTTPResponse.Status {
    guard let a = error as? AdminError else { return .badRequest }
    switch a.kind {
    case .invalid: return .badRequest
    case .notFound: return .notFound
    case .conflict: return .conflict
    case .failed: return .internalServerError
    }
}

/// Logs every configuration change made through the console (who, what, outcome) for the audit trail.
struct AuditedBackend: Sendable {
    let backend: any AdminBackend
    let user: String
    let path: String
    let logger: Logger

    func update(_ change: @Sendable (inout Config) throws -> Void) async throws -> ApplyReport {
        do {
            let report = try await backend.update(change)
            let changed = report.effects.map { e in [e.setting, e.target, e.lun.map(String.init)].compactMap { $0 }.joined(separator: " ") }
            logger.notice("web: \(user) changed the configuration (\(path)): \(changed.isEmpty ? "no change" : changed.joined(separator: "; "))")
            return report
        } catch {
            logger.info("web: \(user) change refused (\(path)): \(message(of: error).joined(separator: "; "))")
            throw error
        }
    }
}

extension AdminWebServer {
    func audited(_ page: Page) -> AuditedBackend {
        AuditedBackend(backend: backend, user: page.session.user, path: page.path, logger: logger)
    }
}
