import AdminCore
import Foundation
import Hummingbird
import HummingbirdTesting
import TargetConfig
import Testing

@testable import AdminWeb

@Suite struct MetricsFormat {
    let known = LUNStatistics(target: "iqn.2026-01.com.example:disk1", lun: 0, readCommands: 10, writeCommands: 5,
                              otherCommands: 2, bytesRead: 40960, bytesWritten: 20480, errors: 1,
                              latencyBuckets: [0.0005, 0.001, 0.01], latencyCounts: [3, 12, 17], latencySumSeconds: 0.0425)

    @Test func exactLinesForAKnownLUN() {
        let text = renderMetrics(
            statistics: [known],
            statuses: [TargetStatus(name: "iqn.2026-01.com.example:disk1", running: true, sessions: 2, lunSizes: [0: 1024]),
                       TargetStatus(name: "iqn.2026-01.com.example:disk2", running: false, sessions: 0, lunSizes: [:])],
            sessions: [SessionInfo(tsih: 3, target: "iqn.2026-01.com.example:disk1", initiator: "iqn.1993-08.org.debian:01:a",
                                   isid: "400001370000", remoteAddress: "127.0.0.1", localAddress: "127.0.0.1",
                                   authenticatedUser: nil, headerDigest: "None", dataDigest: "None", negotiated: [:],
                                   commandsInFlight: 4, connectedSince: 0, commands: 21, bytesRead: 8192,
                                   bytesWritten: 4096, errors: 2)],
            security: SecurityCounters(chapFailures: 4, aclDenials: 5, nopTimeouts: 6))
        let lines = Set(text.split(separator: "\n").map(String.init))
        let l = "target=\"iqn.2026-01.com.example:disk1\",lun=\"0\""
        for expected in [
            "# TYPE swifttarget_lun_commands_total counter",
            "swifttarget_lun_commands_total{\(l),kind=\"read\"} 10",
            "swifttarget_lun_commands_total{\(l),kind=\"write\"} 5",
            "swifttarget_lun_commands_total{\(l),kind=\"other\"} 2",
            "swifttarget_lun_read_bytes_total{\(l)} 40960",
            "swifttarget_lun_written_bytes_total{\(l)} 20480",
            "swifttarget_lun_errors_total{\(l)} 1",
            "# TYPE swifttarget_lun_latency_seconds histogram",
            "swifttarget_lun_latency_seconds_bucket{\(l),le=\"0.0005\"} 3",
            "swifttarget_lun_latency_seconds_bucket{\(l),le=\"0.001\"} 12",
            "swifttarget_lun_latency_seconds_bucket{\(l),le=\"0.01\"} 17",
            "swifttarget_lun_latency_seconds_bucket{\(l),le=\"+Inf\"} 17",
            "swifttarget_lun_latency_seconds_sum{\(l)} 0.0425",
            "swifttarget_lun_latency_seconds_count{\(l)} 17",
            "swifttarget_chap_failures_total 4",
            "swifttarget_acl_denials_total 5",
            "swifttarget_nop_timeouts_total 6",
            "swifttarget_targets_running 1",
            "swifttarget_target_running{target=\"iqn.2026-01.com.example:disk1\"} 1",
            "swifttarget_target_running{target=\"iqn.2026-01.com.example:disk2\"} 0",
            "swifttarget_target_sessions{target=\"iqn.2026-01.com.example:disk1\"} 2",
            "swifttarget_sessions 1",
            "swifttarget_build_info{version=\"\(ProductVersion.current)\"} 1",
            "swifttarget_lun_capacity_bytes{target=\"iqn.2026-01.com.example:disk1\",lun=\"0\"} 1024",
            "swifttarget_session_commands_in_flight{target=\"iqn.2026-01.com.example:disk1\",initiator=\"iqn.1993-08.org.debian:01:a\",isid=\"400001370000\"} 4",
            "swifttarget_session_commands_total{target=\"iqn.2026-01.com.example:disk1\",initiator=\"iqn.1993-08.org.debian:01:a\",isid=\"400001370000\"} 21",
            "swifttarget_session_read_bytes_total{target=\"iqn.2026-01.com.example:disk1\",initiator=\"iqn.1993-08.org.debian:01:a\",isid=\"400001370000\"} 8192",
            "swifttarget_session_written_bytes_total{target=\"iqn.2026-01.com.example:disk1\",initiator=\"iqn.1993-08.org.debian:01:a\",isid=\"400001370000\"} 4096",
            "swifttarget_session_errors_total{target=\"iqn.2026-01.com.example:disk1\",initiator=\"iqn.1993-08.org.debian:01:a\",isid=\"400001370000\"} 2",
        ] {
            #expect(lines.contains(expected), "missing: \(expected)")
        }
        // Every sample line belongs to a declared family, and each family is declared once.
        let types = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
        #expect(Set(types).count == types.count)
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let name = String(line.prefix { $0 != "{" && $0 != " " })
            let family = ["_bucket", "_sum", "_count"].reduce(name) { n, s in n.hasSuffix(s) && n.hasPrefix("swifttarget_lun_latency") ? String(n.dropLast(s.count)) : n }
            #expect(types.contains(Substring(family)), "\(name) has no TYPE")
        }
        #expect(text.hasSuffix("\n"))
    }

    @Test func infBucketIsNotDuplicatedAndLabelsAreEscaped() {
        var s = known
        s.latencyBuckets = [0.001, .infinity]
        s.latencyCounts = [7, 9]
        let text = renderMetrics(statistics: [s], statuses: [], sessions: [], security: SecurityCounters())
        #expect(text.components(separatedBy: "le=\"+Inf\"").count == 2)
        #expect(text.contains("swifttarget_lun_latency_seconds_count{target=\"iqn.2026-01.com.example:disk1\",lun=\"0\"} 9"))
        #expect(escapeLabel("a\"b\\c\nd") == "a\\\"b\\\\c\\nd")
        #expect(formatFloat(1) == "1" && formatFloat(0.25) == "0.25" && formatFloat(-.infinity) == "-Inf")
    }

    @Test func metricsEndpointNeedsNoLogin() async throws {
        let backend = FakeBackend()
        await backend.set(stats: [known])
        try await withServer(backend) { client in
            let r = try await client.execute(uri: "/metrics", method: .get)
            #expect(r.status == .ok)
            #expect(r.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            #expect(String(buffer: r.body).contains("swifttarget_lun_errors_total"))
        }
    }
}

@Suite struct Helpers {
    @Test func credentialsRoundTripAndFormat() throws {
        let text = try WebCredentials.make(password: "s3cret pass", user: "root")
        #expect(!text.contains("s3cret"))
        let line = try #require(text.split(separator: "\n").first { !$0.hasPrefix("#") })
        #expect(line.hasPrefix("root:pbkdf2-sha256$210000$"))
        let c = try WebCredentials(fileText: text)
        #expect(c.verify(user: "root", password: "s3cret pass"))
        #expect(!c.verify(user: "root", password: "s3cret pasS"))
        #expect(!c.verify(user: "admin", password: "s3cret pass"))
        #expect(throws: WebCredentials.FormatError.self) { try WebCredentials(fileText: "admin:pbkdf2-sha256$1000$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==") }
        #expect(throws: WebCredentials.FormatError.self) { try WebCredentials(fileText: "# nothing\n") }
        #expect(throws: WebCredentials.FormatError.self) { try WebCredentials.make(password: "") }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("webcred-\(UUID().uuidString)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try WebCredentials.load(path: path) == c)
    }

    /// Written by scripts/browser-test.py's make_credentials (Python hashlib) for "py-made pässword".
    @Test func credentialsWrittenByThePythonHelperVerify() throws {
        let text = """
            # swift-targetd web console credentials (PBKDF2-HMAC-SHA256); keep this file mode 0600
            admin:pbkdf2-sha256$210000$0zJGLluTk4pUTrzydBha9g==$18EwL80j1zKFREA984Ta4/hXq8C23ff6KBVXdkQWDRo=
            """
        let c = try WebCredentials(fileText: text)
        #expect(c.verify(user: "admin", password: "py-made pässword"))
        #expect(!c.verify(user: "admin", password: "py-made password"))
    }

    @Test func sizes() {
        #expect(parseSize("64M") == 64 << 20)
        #expect(parseSize("64MiB") == 64 << 20)
        #expect(parseSize("1g") == 1 << 30)
        #expect(parseSize("4096") == 4096)
        #expect(parseSize("2T") == 2 << 40)
        #expect(parseSize("0") == nil)
        #expect(parseSize("lots") == nil)
        #expect(parseSize("99999999999999T") == nil)
        #expect(formatBytes(64 << 20) == "64.0 MiB")
        #expect(formatBytes(512) == "512 B")
    }

    @Test func formParsing() {
        let f = FormData(urlEncoded: "a=1&b=x+y%26z&a=2&empty=&flag")
        #expect(f["a"] == "1")
        #expect(f.all("a") == ["1", "2"])
        #expect(f["b"] == "x y&z")
        #expect(f.has("flag") && f["empty"] == "")
        #expect(h("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
    }

    @Test func quantilesAndRates() {
        // 10 observations ≤ 1 ms, 10 more ≤ 10 ms.
        #expect(histogramQuantile(0.5, bounds: [0.001, 0.01], cumulative: [10, 20], total: 20) == 0.001)
        let p75 = histogramQuantile(0.75, bounds: [0.001, 0.01], cumulative: [10, 20], total: 20)!
        #expect(abs(p75 - 0.0055) < 1e-12)
        #expect(histogramQuantile(0.5, bounds: [0.001], cumulative: [0], total: 0) == nil)

        let a = LUNStatistics(target: "t", lun: 1, readCommands: 100, writeCommands: 50, bytesRead: 10_000_000, bytesWritten: 0,
                              latencyBuckets: [0.001, 0.01], latencyCounts: [100, 150], latencySumSeconds: 0.2)
        var b = a
        b.readCommands = 300
        b.writeCommands = 150
        b.bytesRead = 30_000_000
        b.bytesWritten = 4_000_000
        b.latencyCounts = [200, 450]
        b.latencySumSeconds = 1.7
        let first = computeRates(previous: nil, current: a, now: 10)
        #expect(first.iops == nil && first.interval == nil)
        #expect(first.averageLatency.map { abs($0 - 0.2 / 150) < 1e-12 } == true)
        let r = computeRates(previous: (10, a), current: b, now: 12)
        #expect(r.interval == 2)
        #expect(r.iops == 150)          // 300 commands in 2 s
        #expect(r.readMBps == 10)       // 20 MB in 2 s
        #expect(r.writeMBps == 2)
        #expect(r.averageLatency.map { abs($0 - 1.5 / 300) < 1e-12 } == true)
        #expect(r.averageLatencySinceStart.map { abs($0 - 1.7 / 450) < 1e-12 } == true)
        // Interval histogram: 100 ≤ 1 ms, 200 more ≤ 10 ms → median in the second bucket.
        #expect(r.p50.map { abs($0 - (0.001 + 0.009 * 50 / 200)) < 1e-12 } == true)
        // Counters going backwards (daemon restart) → no rates.
        #expect(computeRates(previous: (10, b), current: a, now: 12).iops == nil)
    }

    @Test func historyGivesEveryViewerTheSameRatesAndASeriesPerLUN() async {
        let history = StatisticsHistory(interval: 5, window: 20, minimumGap: 1)
        func stats(_ reads: UInt64, _ other: UInt64 = 0) -> [LUNStatistics] {
            [LUNStatistics(target: "t", lun: 0, readCommands: reads, bytesRead: reads * 4096),
             LUNStatistics(target: "t", lun: 1, otherCommands: other)]
        }
        await history.record(stats(10), now: 100)
        #expect(await history.latest()[.init(target: "t", lun: 0)]?.iops == nil)  // one sample: no rate yet
        await history.record(stats(30), now: 102)
        await history.record(stats(99), now: 102.5)  // within the minimum gap: not a sample
        await history.record(stats(70, 5), now: 107)
        // The rates are those of the last interval however often the page is viewed.
        for _ in 0..<3 { #expect(await history.latest()[.init(target: "t", lun: 0)]?.iops == 8) }
        let series = await history.series()
        #expect(series.map(\.key) == [.init(target: "t", lun: 0), .init(target: "t", lun: 1)])
        #expect(series[0].points.map(\.time) == [102, 107])
        #expect(series[0].points.map(\.rates.iops) == [10, 8])
        #expect(series[1].points.map(\.rates.iops) == [0, 1])
        // Older than the window (plus the one sample before it) is dropped.
        await history.record(stats(80), now: 130)
        #expect(await history.series()[0].points.map(\.time) == [130])
    }

    @Test func lineChartDrawsEachSeriesWithGapsForMissingSamples() {
        let chart = LineChart(title: "IOPS", unit: "commands/s", times: [0, 10, 20, 30],
                              series: [.init(name: "iops", color: "#000", values: [10, nil, 20, 40])], width: 100, height: 50, span: 30)
        let svg = chart.svg
        #expect(svg.hasPrefix("<svg class=\"chart\"") && svg.hasSuffix("</svg>"))
        #expect(svg.contains("data-points=\"4\""))
        #expect(svg.contains("max 40.0"))
        // Two runs: the sample without a value breaks the line.
        #expect(svg.components(separatedBy: "<polyline class=\"series-iops\"").count == 3)
        // The newest point is at the right edge, the largest value near the top.
        #expect(svg.contains("98.0,"))
    }

    @Test func blockDeviceScanReadsSysfsLayout() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("sysblock-\(UUID().uuidString)").path
        let fm = FileManager.default
        defer { try? fm.removeItem(atPath: root) }
        try fm.createDirectory(atPath: root + "/vda/vda1", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/loop0", withIntermediateDirectories: true)
        try "2048\n".write(toFile: root + "/vda/size", atomically: true, encoding: .utf8)
        try "1024\n".write(toFile: root + "/vda/vda1/size", atomically: true, encoding: .utf8)
        try "1\n".write(toFile: root + "/vda/vda1/partition", atomically: true, encoding: .utf8)
        try "0\n".write(toFile: root + "/loop0/size", atomically: true, encoding: .utf8)
        try fm.createDirectory(atPath: root + "/dm-0/dm", withIntermediateDirectories: true)
        try "4096\n".write(toFile: root + "/dm-0/size", atomically: true, encoding: .utf8)
        try "vg0-lv1\n".write(toFile: root + "/dm-0/dm/name", atomically: true, encoding: .utf8)
        let devs = BlockDevice.scan(sysBlock: root)
        #expect(devs == [BlockDevice(path: "/dev/mapper/vg0-lv1", sizeBytes: 2 << 20, isPartition: false),
                         BlockDevice(path: "/dev/vda", sizeBytes: 1 << 20, isPartition: false),
                         BlockDevice(path: "/dev/vda1", sizeBytes: 512 << 10, isPartition: true)])
        #expect(devs.map(\.kindLabel) == ["LVM / device-mapper", "disk", "partition"])
    }

    @Test func defaultPrefixUsesExistingTargetsElseReversedHostName() async throws {
        let server = makeServer(FakeBackend())
        let p = server.defaultPrefix(Config())
        #expect(p.hasPrefix("iqn.20") && p.hasSuffix(".com.example.node1"))
        #expect(ISCSIName.problem(p + ":x") == nil)
        var c = Config()
        c.targets = [Target(name: "iqn.2001-04.com.example:a"), Target(name: "iqn.2001-04.com.example:b"), Target(name: "iqn.2020-01.org.x:c")]
        #expect(server.defaultPrefix(c) == "iqn.2001-04.com.example")
    }
}

@Suite struct LiveServer {
    @Test func servesOverTCPWithMakeApplication() async throws {
        let backend = FakeBackend(config: sampleConfig())
        let bound = PortBox()
        let app = makeServer(backend).makeApplication(host: "127.0.0.1", port: 0) { await bound.set($0) }
        try await app.test(.live) { client in
            #expect(client.port != nil)
            #expect(await bound.port == client.port)
            let m = try await client.execute(uri: "/metrics", method: .get)
            #expect(m.status == .ok)
            #expect(String(buffer: m.body).contains("swifttarget_sessions 0"))
            let b = try await Browser.loggedIn(client)
            let home = try await b.get("/")
            #expect(home.status == .ok)
            #expect(home.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
            #expect(home.text.contains(tName))
        }
    }

    @Test func idleSessionsExpire() async throws {
        var o = AdminWebOptions()
        o.idleTimeout = 10
        o.sessionLifetime = 100
        let store = WebSessionStore(options: o)
        let t0 = Date(timeIntervalSince1970: 1000)
        let s = await store.create(user: "admin", now: t0)
        #expect(await store.lookup(s.id, now: t0.addingTimeInterval(9)) != nil)
        #expect(await store.lookup(s.id, now: t0.addingTimeInterval(18)) != nil)   // refreshed at +9
        #expect(await store.lookup(s.id, now: t0.addingTimeInterval(29)) == nil)   // idle 11 s
        let s2 = await store.create(user: "admin", now: t0)
        for i in 1...12 { _ = await store.lookup(s2.id, now: t0.addingTimeInterval(Double(i * 9))) }
        #expect(await store.lookup(s2.id, now: t0.addingTimeInterval(117)) == nil) // past the lifetime
        #expect(s.id != s2.id && s.csrfToken != s2.csrfToken && s.id.count == 43)
    }
}

actor PortBox {
    var port: Int?
    func set(_ p: Int) { port = p }
}
