import AdminCore
import Foundation
import Hummingbird
import TargetConfig

extension AdminWebServer {
    // MARK: - Sessions

    /// The page reloads itself every `autoRefresh` seconds unless `?refresh=off` (or after a
    /// form was posted, whose address must not be loaded again).
    func refreshControl(_ page: Page, path: String, posted: Bool) -> (html: String, seconds: Int?) {
        let off = page.query.text("refresh") == "off" || options.autoRefresh <= 0
        if posted || off {
            var b = "<p class=\"refresh\"><a href=\"\(path)?refresh=off\">Refresh</a>"
            if options.autoRefresh > 0 { b += " · <a href=\"\(path)\" id=\"auto-refresh-on\">refresh every \(options.autoRefresh) s</a>" }
            return (b + "</p>", nil)
        }
        return ("<p class=\"refresh\">This page refreshes every \(options.autoRefresh) s · <a href=\"\(path)?refresh=off\" id=\"auto-refresh-off\">stop</a></p>",
                options.autoRefresh)
    }

    func sessionsPage(_ page: Page, notice: Notice, status: HTTPResponse.Status = .ok, posted: Bool = false) async throws -> Response {
        let sessions = await backend.sessions().sorted { ($0.target ?? "", $0.tsih) < ($1.target ?? "", $1.tsih) }
        var b = notice.html
        let refresh = refreshControl(page, path: "/sessions", posted: posted)
        b += refresh.html
        if sessions.isEmpty {
            b += "<p>No sessions are logged in.</p>"
        } else {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.dateFormat = "yyyy-MM-dd HH:mm:ss"
            b += "<form method=\"post\" action=\"/sessions/logout\">\(csrfField(page.csrf))"
            b += "<table id=\"sessions\"><tr><th>TSIH</th><th>Target</th><th>Initiator</th><th>ISID</th><th>Client → portal</th>"
            b += "<th>CHAP user</th><th>Digests (header / data), negotiated</th><th>In flight</th><th>Since</th><th></th></tr>"
            for s in sessions {
                b += "<tr><td>\(s.tsih)</td><td class=\"iqn\">\(s.target.map(h) ?? "<em>discovery</em>")</td><td class=\"iqn\">\(h(s.initiator))</td>"
                b += "<td><code>\(h(s.isid))</code></td><td>\(h(s.remoteAddress)) → \(h(s.localAddress))</td>"
                b += "<td>\(h(s.authenticatedUser ?? "–"))</td>"
                // Folded: a dozen keys per row would push the table past a 1280-pixel screen.
                b += "<td><details><summary>\(h(s.headerDigest)) / \(h(s.dataDigest)), \(s.negotiated.count) keys</summary><small>"
                b += s.negotiated.sorted { $0.key < $1.key }.map { "\(h($0.key))=\(h($0.value))" }.joined(separator: "<br>")
                b += "</small></details></td><td>\(s.commandsInFlight)</td><td>\(h(f.string(from: Date(timeIntervalSince1970: s.connectedSince))))</td>"
                b += "<td><button type=\"submit\" name=\"tsih\" value=\"\(s.tsih)\">Log out</button></td></tr>"
            }
            b += "</table></form>"
            b += "<p class=\"muted\">Log out sends the initiator an asynchronous logout request, then closes the connection. "
            b += "Most initiators log in again unless the target's rules or CHAP users were changed.</p>"
        }
        return htmlResponse(layout(title: "Sessions", csrf: page.csrf, body: b, refresh: refresh.seconds), status: status)
    }

    func logoutSession(_ page: Page) async throws -> Response {
        guard let tsih = UInt16(page.form.text("tsih")) else {
            return try await sessionsPage(page, notice: .error("No session selected."), status: .badRequest, posted: true)
        }
        do {
            try await backend.logout(tsih: tsih)
            logger.notice("web: \(page.session.user) logged out session \(tsih)")
            return try await sessionsPage(page, notice: Notice(info: ["Session \(tsih) logged out."]), posted: true)
        } catch {
            return try await sessionsPage(page, notice: Notice(errors: message(of: error)), status: status(for: error), posted: true)
        }
    }

    // MARK: - Statistics

    func statisticsPage(_ page: Page) async throws -> Response {
        let current = await backend.statistics().sorted { ($0.target, $0.lun) < ($1.target, $1.lun) }
        await history.record(current)
        let latest = await history.latest()
        let refresh = refreshControl(page, path: "/statistics", posted: false)
        var b = refresh.html
        b += "<p>Rates are computed between the console's samples of the counters (every \(Int(options.statisticsInterval)) s, "
        b += "and at each view), the same for every viewer; – until there are two. Latency average and percentiles cover the same "
        b += "interval, estimated from the latency histogram. Prometheus can scrape <a href=\"/metrics\">/metrics</a>.</p>"
        if current.isEmpty {
            b += "<p>No LUNs.</p>"
        } else {
            b += "<table id=\"statistics\"><tr><th>Target</th><th>LUN</th><th>Reads</th><th>Writes</th><th>Other</th><th>Read</th><th>Written</th>"
            b += "<th>Errors</th><th>Interval</th><th>IOPS</th><th>Read MB/s</th><th>Write MB/s</th><th>Avg latency</th><th>p50</th><th>p99</th><th>Avg latency since start</th></tr>"
            for s in current {
                let r = latest[.init(target: s.target, lun: s.lun)] ?? computeRates(previous: nil, current: s, now: 0)
                b += "<tr><td class=\"iqn\">\(h(s.target))</td><td>\(s.lun)</td><td>\(s.readCommands)</td><td>\(s.writeCommands)</td><td>\(s.otherCommands)</td>"
                b += "<td>\(formatBytes(s.bytesRead))</td><td>\(formatBytes(s.bytesWritten))</td><td>\(s.errors)</td>"
                b += "<td>\(r.interval.map { String(format: "%.1f s", $0) } ?? "–")</td><td>\(formatRate(r.iops))</td>"
                b += "<td>\(formatRate(r.readMBps, "%.2f"))</td><td>\(formatRate(r.writeMBps, "%.2f"))</td>"
                b += "<td>\(formatSeconds(r.averageLatency))</td><td>\(formatSeconds(r.p50))</td><td>\(formatSeconds(r.p99))</td><td>\(formatSeconds(r.averageLatencySinceStart))</td></tr>"
            }
            b += "</table>"
            b += try await statisticsCharts()
        }
        return htmlResponse(layout(title: "LUN Statistics", csrf: page.csrf, body: b, refresh: refresh.seconds))
    }

    /// Per LUN: IOPS, throughput (read and write) and p99 latency over the kept history.
    func statisticsCharts() async throws -> String {
        let window = options.statisticsWindow
        var b = "<h2>The last \(Int(window / 60)) minutes</h2>"
        for (key, points) in await history.series() {
            let times = points.map(\.time)
            let rates = points.map(\.rates)
            b += "<div class=\"charts\" id=\"charts-\(h(key.target))-\(key.lun)\"><h3><span class=\"iqn\">\(h(key.target))</span> LUN \(key.lun)</h3>"
            if points.isEmpty {
                b += "<p class=\"muted\">No interval sampled yet.</p></div>"
                continue
            }
            b += LineChart(title: "IOPS", unit: "commands/s", times: times,
                           series: [.init(name: "iops", color: "#1f5fa8", values: rates.map(\.iops))], span: window).svg
            b += LineChart(title: "Throughput", unit: "MB/s", times: times,
                           series: [.init(name: "read", color: "#1f5fa8", values: rates.map(\.readMBps)),
                                    .init(name: "write", color: "#c25e00", values: rates.map(\.writeMBps))],
                           format: { String(format: "%.2f", $0) }, span: window).svg
            b += LineChart(title: "p99 latency", unit: "ms", times: times,
                           series: [.init(name: "p99", color: "#8a1f8a", values: rates.map { $0.p99.map { $0 * 1000 } })],
                           format: { String(format: "%.2f", $0) }, span: window).svg
            b += "<p class=\"muted legend\">Throughput: <span style=\"color:#1f5fa8\">read</span>, <span style=\"color:#c25e00\">write</span>.</p></div>"
        }
        return b
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
