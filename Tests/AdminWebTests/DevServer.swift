import AdminCore
import Foundation
import Hummingbird
import Logging
import TargetConfig
import Testing

@testable import AdminWeb

/// Not a test: serves the console with an in-memory backend for manual checks and for running
/// the browser part of scripts/browser-test.py without a daemon:
///
///     ADMINWEB_DEV_SERVE=9861 swift test --filter AdminWebTests.DevServer
///     python3 scripts/browser-test.py --web-url http://127.0.0.1:9861 --password 'correct horse battery' --skip-iscsi
///
/// `ADMINWEB_DEV_SECONDS` (default 600) bounds how long it serves.
@Suite struct DevServer {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["ADMINWEB_DEV_SERVE"] != nil))
    func serve() async throws {
        let env = ProcessInfo.processInfo.environment
        // A port, or host:port (the browser script's {web} placeholder).
        let port = (env["ADMINWEB_DEV_SERVE"]?.split(separator: ":").last).flatMap { Int($0) } ?? 9861
        let seconds = Int(env["ADMINWEB_DEV_SECONDS"] ?? "") ?? 600
        let backend = FakeBackend(config: Config(portals: [Portal(address: "127.0.0.1", port: 3260), Portal(address: "127.0.0.2", port: 3260)]))
        await backend.setAutoStatus()
        await backend.set(stats: [LUNStatistics(target: "iqn.2026-01.com.example:demo", lun: 0, readCommands: 1200, writeCommands: 800,
                                                otherCommands: 12, bytesRead: 9_830_400, bytesWritten: 3_276_800, errors: 1,
                                                latencyBuckets: [0.0005, 0.001, 0.005, 0.01, 0.1], latencyCounts: [900, 1500, 1900, 1990, 2012],
                                                latencySumSeconds: 2.4)])
        var options = AdminWebOptions()
        options.failedLoginDelay = 0.2
        let app = makeServer(backend, options: options).makeApplication(host: "127.0.0.1", port: port)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            try await Task.sleep(for: .seconds(seconds))
            group.cancelAll()
        }
    }
}
