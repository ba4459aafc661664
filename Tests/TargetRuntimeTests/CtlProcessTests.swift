import Foundation
import Synchronization
import ISCSITestSupport
import TargetConfig
import Testing

/// swift-targetctl as a process: the exit codes scripts rely on.
let ctlPath = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    .appendingPathComponent("swift-targetctl").path

/// swift-targetd, built beside swift-targetctl.
let daemonPath = URL(fileURLWithPath: ctlPath).deletingLastPathComponent().appendingPathComponent("swift-targetd").path

@discardableResult
func ctl(_ arguments: [String], socket: String, stdin: String? = nil) throws -> (status: Int32, output: String) {
    try runProcess(ctlPath, arguments + ["--socket", socket], stdin: stdin)
}

/// Runs a program to its end: exit status and everything it wrote (stdout and stderr).
func runProcess(_ path: String, _ arguments: [String], stdin: String? = nil) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    if let stdin {
        let input = Pipe()
        p.standardInput = input
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
    }
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

extension RuntimeTests {
@Suite(.serialized)
struct CtlProcessTests {
    @Test func exitCodes() async throws {
        // `swift build` puts swift-targetctl next to the test bundle (scripts/test.sh builds first);
        // a missing binary is a failure, not a skip.
        guard FileManager.default.isExecutableFile(atPath: ctlPath) else {
            Issue.record("swift-targetctl is not built at \(ctlPath); run `swift build` before `swift test`")
            return
        }
        let h = try await Harness()
        defer { Task { await h.stop() } }
        _ = try await h.startAPI()
        let s = h.socketPath
        #expect(try ctl(["list"], socket: s).status == 0)
        #expect(try ctl(["list", "--json"], socket: s).output.contains(targetA))
        #expect(try ctl(["show", "iqn.2026-11.org.example:none"], socket: s).status == 3)
        #expect(try ctl(["add-target", targetA], socket: s).status == 4)
        #expect(try ctl(["add-target", "Not A Name"], socket: s).status == 2)
        #expect(try ctl(["add-lun", targetB, "--backstore", "floppy", "--path", "/x"], socket: s).status == 2)
        #expect(try ctl(["list"], socket: s + ".missing").status == 69)
        let added = try ctl(["add-lun", targetB, "--backstore", "sparse", "--path", h.directory.path + "/b1.img", "--size", "1M"], socket: s)
        #expect(added.status == 0)
        #expect(added.output.contains("lunAdded [applies-now]"))
        let auth = try ctl(["set-auth", targetB, "--chap", "carol", "--secret-stdin"], socket: s, stdin: "carolsecret123\n")
        #expect(auth.status == 0, "\(auth.output)")
        #expect(await h.service.configuration().target(named: targetB)?.auth?.incomingUsers.first?.secret == "carolsecret123")
        #expect(try ctl(["allow-client", targetA, "192.0.2.0/24"], socket: s).status == 0)
        #expect(try ctl(["move-client", "up", targetA, "0"], socket: s).status == 2)
        #expect(try ctl(["remove-client", targetA, "5"], socket: s).status == 3)
        #expect(try ctl(["stop", targetA], socket: s).status == 0)
        #expect(try ctl(["start"], socket: s).status == 0)
        #expect(try ctl(["logout", "999"], socket: s).status == 3)
        #expect(try ctl(["set-settings", "--target", targetA, "--header-digest", "CRC32C,None", "--nop-interval", "5"], socket: s).status == 0)
        #expect(try ctl(["show-settings", "--target", targetA], socket: s).output.contains("CRC32C,None"))
        #expect(try ctl(["stats", "--json"], socket: s).status == 0)
    }
}
}

extension RuntimeTests.CtlProcessTests {
    /// `swift-targetd serve` with a bad --lun: EX_USAGE (64), and no file created for the good
    /// LUN given before it.
    @Test func serveRefusesBadLUNSpecsBeforeCreatingAnything() throws {
        guard FileManager.default.isExecutableFile(atPath: daemonPath) else {
            Issue.record("swift-targetd is not built at \(daemonPath); run `swift build` before `swift test`")
            return
        }
        let directory = "/tmp/swtgt-serve-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for bad in ["file:\(directory)/q.img,size=10Q", "floppy:\(directory)/x.img", "file:\(directory)/q.img,size=1M,colour=red",
                    "file:\(directory)/q.img,size=-5G"] {
            let (status, text) = try runProcess(daemonPath, ["serve", "--target", "iqn.2026-12.org.example:bad",
                                                            "--listen", "127.0.0.1:\(freePort())",
                                                            "--lun", "sparse:\(directory)/thin.img,size=1M", "--lun", bad])
            #expect(status == 64, "\(bad): \(text)")
            #expect(text.contains("--lun \(bad)"), "\(text)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/thin.img"), "a file was created before every spec was checked")
    }

    /// A target initiators are logged in to goes only with --force.
    @Test func removeTargetWithLiveSessionsNeedsForce() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        _ = try await h.startAPI()
        let (session, status) = try h.login(targetA)
        #expect(status == 0)
        let refused = try ctl(["remove-target", targetA], socket: h.socketPath)
        #expect(refused.status == 4, "\(refused.output)")
        #expect(refused.output.contains("1 live session(s)") && refused.output.contains("--force"), "\(refused.output)")
        #expect(await h.service.configuration().target(named: targetA) != nil)
        #expect(try session.read10() == 0, "the session goes on")
        #expect(try ctl(["remove-target", targetB], socket: h.socketPath).status == 0, "no sessions: no --force needed")
        let forced = try ctl(["remove-target", targetA, "--force"], socket: h.socketPath)
        #expect(forced.status == 0, "\(forced.output)")
        #expect(await h.service.configuration().targets.isEmpty)
    }

    /// `stats --watch`: rates between samples, in human units, `--count` samples then exit.
    @Test func statsWatchPrintsRatesPerInterval() async throws {
        let h = try await Harness()
        defer { Task { await h.stop() } }
        _ = try await h.startAPI()
        let (session, _) = try h.login(targetA)
        _ = try session.runGood([0, 0, 0, 0, 0, 0])
        // Reads keep going on another thread while the samples are taken.
        final class Reader: @unchecked Sendable {
            let session: TestInitiator
            let stopped = Mutex(false)
            init(_ s: TestInitiator) { session = s }
        }
        let reader = Reader(session)
        let thread = Thread {
            while !reader.stopped.withLock({ $0 }) { _ = try? reader.session.read10(blocks: 8) }
        }
        thread.start()
        let watched = try ctl(["stats", "--watch", "--interval", "0.3", "--count", "2"], socket: h.socketPath)
        reader.stopped.withLock { $0 = true }
        #expect(watched.status == 0, "\(watched.output)")
        let lines = watched.output.split(separator: "\n")
        #expect(lines.filter { $0.contains("read IOPS") }.count == 2, "\(watched.output)")
        let row = lines.last { $0.contains("\(targetA) 0") }.map(String.init) ?? ""
        let readIOPS = row.split(separator: " ").dropFirst(2).first.flatMap { Double($0) } ?? 0
        #expect(readIOPS > 0, "no reads counted: \(row)")
        #expect(row.contains("KiB") || row.contains("MiB"), "throughput in human units: \(row)")
        #expect(try ctl(["stats", "--watch", "--interval", "0"], socket: h.socketPath).status == 2)
        let plain = try ctl(["stats"], socket: h.socketPath)
        #expect(plain.output.contains("KiB") || plain.output.contains("MiB"), "\(plain.output)")
    }

    /// `--log-format json`: every line one JSON object with time, level, label, message, metadata.
    @Test func jsonLogLines() throws {
        let directory = "/tmp/swtgt-json-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = freePort()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: daemonPath)
        p.arguments = ["serve", "--target", "iqn.2026-12.org.example:json", "--listen", "127.0.0.1:\(port)",
                       "--lun", "sparse:\(directory)/j.img,size=1M", "--log-format", "json"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        var text = Data()
        while !text.contains(0x0A) {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text.append(chunk)
        }
        p.terminate()
        p.waitUntilExit()
        let line = String(decoding: text, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        #expect(object?["message"] as? String == "listening", "\(line)")
        #expect(object?["level"] as? String == "info" && object?["label"] as? String == "swift-targetd")
        #expect((object?["metadata"] as? [String: Any])?["portal"] as? String == "127.0.0.1:\(port)")
        #expect((object?["time"] as? String)?.hasSuffix("Z") == true)
    }

    /// Both binaries say which release they are.
    @Test func bothBinariesReportTheirVersion() throws {
        for binary in [ctlPath, daemonPath] {
            let (status, text) = try runProcess(binary, ["--version"])
            #expect(status == 0, "\(binary): \(text)")
            #expect(text.trimmingCharacters(in: .whitespacesAndNewlines) == ProductVersion.current, "\(binary): \(text)")
        }
    }
}
