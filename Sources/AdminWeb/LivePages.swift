import AdminCore
import Foundation
import Hummingbird
import TargetConfig

extension AdminWebServer {
    // MARK: - Sessions

    func sessionsPage(_ page: Page, notice: Notice, status: HTTPResponse.Status = .ok) async throws -> Response {
        let sessions = await backend.sessions().sorted { ($0.target ?? "", $0.tsih) < ($1.target ?? "", $1.tsih) }
        var b = notice.html
        b += "<p><a href=\"/sessions\">Refresh</a></p>"
        if sessions.isEmpty {
            b += "<p>No sessions are logged in.</p>"
        } else {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.dateFormat = "yyyy-MM-dd HH:mm:ss"
            b += "<form method=\"post\" action=\"/sessions/logout\">\(csrfField(page.csrf))"
            b += "<table id=\"sessions\"><tr><th>TSIH</th><th>Target</th><th>Initiator</th><th>ISID</th><th>Client address</th><th>Portal</th>"
            b += "<th>CHAP user</th><th>Header / data digest</th><th>Negotiated</th><th>Commands in flight</th><th>Since</th><th></th></tr>"
            for s in sessions {
                b += "<tr><td>\(s.tsih)</td><td>\(s.target.map(h) ?? "<em>discovery</em>")</td><td>\(h(s.initiator))</td>"
                b += "<td><code>\(h(s.isid))</code></td><td>\(h(s.remoteAddress))</td><td>\(h(s.localAddress))</td>"
                b += "<td>\(h(s.authenticatedUser ?? "–"))</td><td>\(h(s.headerDigest)) / \(h(s.dataDigest))</td><td>"
                b += s.negotiated.sorted { $0.key < $1.key }.map { "\(h($0.key))=\(h($0.value))" }.joined(separator: "<br>")
                b += "</td><td>\(s.commandsInFlight)</td><td>\(h(f.string(from: Date(timeIntervalSince1970: s.connectedSince))))</td>"
                b += "<td><button type=\"submit\" name=\"tsih\" value=\"\(s.tsih)\">Log out</button></td></tr>"
            }
            b += "</table></form>"
            b += "<p class=\"muted\">Log out sends the initiator an asynchronous logout request, then closes the connection. "
            b += "Most initiators log in again unless the target's rules or CHAP users were changed.</p>"
        }
        return htmlResponse(layout(title: "Sessions", csrf: page.csrf, body: b), status: status)
    }

    func logoutSession(_ page: Page) async throws -> Response {
        guard let tsih = UInt16(page.form.text("tsih")) else {
            return try await sessionsPage(page, notice: .error("No session selected."), status: .badRequest)
        }
        do {
            try await backend.logout(tsih: tsih)
            logger.notice("web: \(page.session.user) logged out session \(tsih)")
            return try await sessionsPage(page, notice: Notice(info: ["Session \(tsih) logged out."]))
        } catch {
            return try await sessionsPage(page, notice: Notice(errors: message(of: error)), status: status(for: error))
        }
    }

    // MARK: - Statistics

    func statisticsPage(_ page: Page) async throws -> Response {
        let rates = await sampler.sample(await backend.statistics())
        var b = "<p><a href=\"/statistics\">Refresh</a> — rates are computed between this view and the previous one "
        b += "(shown as – on the first view or after a daemon restart). Latency average and percentiles cover the same "
        b += "interval, estimated from the latency histogram. Prometheus can scrape <a href=\"/metrics\">/metrics</a>.</p>"
        if rates.isEmpty {
            b += "<p>No LUNs.</p>"
        } else {
            b += "<table id=\"statistics\"><tr><th>Target</th><th>LUN</th><th>Reads</th><th>Writes</th><th>Other</th><th>Read</th><th>Written</th>"
            b += "<th>Errors</th><th>Interval</th><th>IOPS</th><th>Read MB/s</th><th>Write MB/s</th><th>Avg latency</th><th>p50</th><th>p99</th><th>Avg latency since start</th></tr>"
            for r in rates {
                let s = r.current
                b += "<tr><td>\(h(r.target))</td><td>\(r.lun)</td><td>\(s.readCommands)</td><td>\(s.writeCommands)</td><td>\(s.otherCommands)</td>"
                b += "<td>\(formatBytes(s.bytesRead))</td><td>\(formatBytes(s.bytesWritten))</td><td>\(s.errors)</td>"
                b += "<td>\(r.interval.map { String(format: "%.1f s", $0) } ?? "–")</td><td>\(formatRate(r.iops))</td>"
                b += "<td>\(formatRate(r.readMBps, "%.2f"))</td><td>\(formatRate(r.writeMBps, "%.2f"))</td>"
                b += "<td>\(formatSeconds(r.averageLatency))</td><td>\(formatSeconds(r.p50))</td><td>\(formatSeconds(r.p99))</td><td>\(formatSeconds(r.averageLatencySinceStart))</td></tr>"
            }
            b += "</table>"
        }
        return htmlResponse(layout(title: "LUN Statistics", csrf: page.csrf, body: b))
    }

    // MARK: - Configuration (read-only, secrets redacted)

    func configPage(_ page: Page) async throws -> Response {
        let config = await backend.configuration().redactingSecrets()
        let json = (try? ConfigFile.encode(config)).flatMap { String(data: $0, encoding: .utf8) } ?? "(cannot encode)"
        var b = "<p>The configuration as saved, CHAP secrets replaced by ********. It is edited through the pages of this "
        b += "console or <code>swift-targetctl</code>; a raw editor is not offered because it would show the secrets.</p>"
        b += "<pre id=\"config\">\(h(json))</pre>"
        b += "<h2>When settings take effect</h2><table><tr><th>Setting</th><th>Field</th><th>Takes effect</th></tr>"
        for k in SettingKey.allCases { b += "<tr><td>\(k.rawValue)</td><td><code>\(h(k.field))</code></td><td>\(applyModeBadge(k))</td></tr>" }
        b += "</table>"
        return htmlResponse(layout(title: "Configuration", csrf: page.csrf, body: b))
    }
}
