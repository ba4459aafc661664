import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The daemon under systemd: the notify protocol spoken to a real datagram socket, and the
/// unit install-service writes, checked by systemd itself.
extension RuntimeTests {
@Suite(.serialized) struct SystemdTests {
    /// A bound AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET.
    final class NotifySocket {
        let path: String
        let fd: Int32
        init(path: String) throws {
            self.path = path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard rc == 0 else { throw POSIXError(.EADDRINUSE) }
            var timeout = timeval(tv_sec: 20, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        /// The next message (nil after 20 s without one).
        func next() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buffer, buffer.count, 0)
            return n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : nil
        }
        deinit { close(fd); unlink(path) }
    }

    @Test func readyReloadingAndStoppingReachSystemd() throws {
        let directory = "/tmp/swtgt-notify-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = """
            {"version": 1, "portals": ["127.0.0.1:\(freePort())"],
             "targets": [{"name": "iqn.2026-12.org.example:notify",
                          "luns": [{"id": 0, "backstore": "sparse", "path": "\(directory)/n.img", "size": 1048576}]}]}
            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: directory + "/config.json"))
        chmod(directory + "/config.json", 0o600)
        let notify = try NotifySocket(path: directory + "/notify.sock")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: daemonPath)
        p.arguments = ["run", "--config", directory + "/config.json", "--api-socket", directory + "/api.sock"]
        p.environment = ProcessInfo.processInfo.environment.merging(["NOTIFY_SOCKET": notify.path]) { $1 }
        p.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        p.standardError = errors
        try p.run()
        defer { if p.isRunning { p.terminate(); p.waitUntilExit() } }

        let ready = notify.next() ?? ""
        #expect(ready.hasPrefix("READY=1\nSTATUS=serving 1 target(s)"), "\(ready)")
        // The API answers once READY=1 is sent.
        #expect(FileManager.default.fileExists(atPath: directory + "/api.sock"))

        kill(p.processIdentifier, SIGHUP)
        let reloading = notify.next() ?? ""
        #expect(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="), "\(reloading)")
        #expect(notify.next()?.hasPrefix("READY=1") == true)

        p.terminate()
        #expect(notify.next() == "STOPPING=1")
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        // A clean stop: exit 0 (under the sanitizers, no report either) and no error logged.
        #expect(p.terminationStatus == 0, "\(log.suffix(3000))")
        #expect(!log.contains(" error ") && !log.contains(" critical "), "\(log.suffix(3000))")
    }

    /// `systemd-analyze verify` accepts the unit (Type=notify, ExecReload, the hardening).
    @Test func theInstalledUnitVerifies() throws {
        let directory = "/tmp/swtgt-unit-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (status, output) = try runProcess(ctlPath, ["install-service", "--daemon", daemonPath, "--unit-directory", directory,
                                                        "--config", "/home/admin/st/config.json", "--no-enable",
                                                        "--man-directory", directory + "/man8", "--completion-prefix", directory + "/share"])
        #expect(status == 0, "\(output)")
        // Manual pages of both programs, from their own help, that man(1) reads without a warning.
        for name in ["swift-targetd", "swift-targetctl"] {
            let page = try String(contentsOfFile: "\(directory)/man8/\(name).8", encoding: .utf8)
            #expect(page.hasPrefix(".TH \"\(name.uppercased())\" 8 "))
            #expect(page.contains(".SH COMMANDS") && page.contains(".SH EXIT STATUS") && page.contains(".SH FILES"))
            // (groff's complaints go to stderr; the page itself is thrown away)
            let warnings = try runProcess("/bin/sh", ["-c", "man --warnings -l \(directory)/man8/\(name).8 2>&1 >/dev/null"])
            #expect(warnings.status == 0 && warnings.output.isEmpty, "\(warnings.output.prefix(500))")
            // Completions for bash, zsh and fish; the bash one parses.
            for file in ["share/bash-completion/completions/\(name)", "share/zsh/site-functions/_\(name)",
                         "share/fish/vendor_completions.d/\(name).fish"] {
                #expect(FileManager.default.fileExists(atPath: "\(directory)/\(file)"), "\(file)")
            }
            #expect(try runProcess("/bin/bash", ["-n", "\(directory)/share/bash-completion/completions/\(name)"]).status == 0)
        }
        let ctlPage = try String(contentsOfFile: directory + "/man8/swift-targetctl.8", encoding: .utf8)
        #expect(ctlPage.contains(".SS swift\\-targetctl save\\-config") && ctlPage.contains("\\fB\\-\\-backups\\fR"))
        let unit = try String(contentsOfFile: directory + "/swift-targetd.service", encoding: .utf8)
        for line in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes", "ProtectSystem=full",
                     "ProtectHome=read-only", "ReadWritePaths=-/home/admin/st", "UMask=0077"] {
            #expect(unit.contains("\n" + line + "\n"), "missing \(line)")
        }
        #expect(unit.contains("\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_ADMIN "))
        let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first(where: FileManager.default.isExecutableFile)
        try #require(analyze != nil, "systemd-analyze is missing (apt-get install systemd; scripts/install-deps.sh)")
        let verified = try runProcess(analyze!, ["verify", directory + "/swift-targetd.service"])
        #expect(verified.status == 0 && verified.output.isEmpty, "\(verified.output)")
    }
}
}
