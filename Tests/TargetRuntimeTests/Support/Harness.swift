import ISCSITestSupport
import AdminAPI
import AdminCore
import Foundation
import Logging
import TargetConfig
import Testing
@testable import TargetRuntime
#if canImport(Glibc)
import Glibc
#endif

/// A free TCP port on 127.0.0.1 (bound, read, released).
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

let targetA = "iqn.2026-11.org.example:a"
let targetB = "iqn.2026-11.org.example:b"

/// A TargetService on real files, a real port and (optionally) the API on a real Unix socket.
final class Harness: @unchecked Sendable {
    let directory: URL
    let port: Int
    let configPath: String
    let service: TargetService
    var apiTask: Task<Void, Never>?
    var socketPath: String { directory.appendingPathComponent("api.sock").path }

    init(configure: (inout Config, String) -> Void = { _, _ in }) async throws {
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("swtgt-rt-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = freePort()
        var config = Config(portals: [Portal(address: "127.0.0.1", port: port)])
        config.targets = [
            Target(name: targetA, luns: [LUN(id: 0, backstore: .sparse, path: directory.path + "/a0.img", size: 8 << 20)]),
            Target(name: targetB, luns: [LUN(id: 0, backstore: .file, path: directory.path + "/b0.img", size: 4 << 20)]),
        ]
        configure(&config, directory.path)
        configPath = directory.path + "/config.json"
        try ConfigStore(path: configPath).save(config)
        var options = TargetServiceOptions()
        options.ioThreads = 2
        options.logoutGrace = .milliseconds(300)
        var logger = Logger(label: "rt-test")
        logger.logLevel = ProcessInfo.processInfo.environment["SWTGT_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        options.logger = logger
        service = try TargetService(store: ConfigStore(path: configPath), options: options)
        try await service.start()
    }

    func startAPI() async throws -> AdminClient {
        var logger = Logger(label: "rt-api")
        logger.logLevel = .critical
        let api = AdminAPIServer(backend: service, socketPath: socketPath, logger: logger)
        let ready = AsyncStream<Void>.makeStream()
        apiTask = Task { try? await api.run(onReady: { ready.continuation.yield() }) }
        for await _ in ready.stream { break }
        return AdminClient(socketPath: socketPath, timeout: .seconds(20))
    }

    func stop() async {
        apiTask?.cancel()
        _ = await apiTask?.value
        await service.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Logs in to `target`; returns the initiator (login status checked by the caller via `status`).
    func login(_ target: String?, initiator: String = "iqn.2026-11.org.test:initiator", isid: UInt64 = 0x8000_1234_5678)
        throws -> (TestInitiator, status: UInt16) {
        let i = try TestInitiator(port: port)
        i.isid = isid
        let r = try i.login(target: target, initiator: initiator)
        return (i, UInt16(r.header[36]) << 8 | UInt16(r.header[37]))
    }
}

extension TestInitiator {
    /// Runs a command to its status: (SCSI status, data-in).
    func run(_ cdb: [UInt8], read: Int = 0, lun: UInt8 = 0) throws -> (status: UInt8, data: [UInt8]) {
        let tag = try command(cdb: cdb, lun: lun, read: read)
        var data: [UInt8] = []
        while true {
            let r = try receive()
            guard r.u32(16) == tag else { continue }
            if r.opcode == 0x25 {
                data += r.data
                if r.flags & 0x01 != 0 { return (r.header[3], data) }
            } else if r.opcode == 0x21 {
                return (r.header[3], data)
            }
        }
    }

    /// Runs a command whose data-out (at most FirstBurstLength) goes as immediate data.
    func run(_ cdb: [UInt8], write data: [UInt8], lun: UInt8 = 0) throws -> UInt8 {
        let tag = try command(cdb: cdb, lun: lun, write: data.count, immediate: data)
        while true {
            let r = try receive()
            if r.u32(16) == tag && r.opcode == 0x21 { return r.header[3] }
        }
    }

    /// Runs a command, retrying once when a unit attention answers first.
    func runGood(_ cdb: [UInt8], read: Int = 0, lun: UInt8 = 0) throws -> (status: UInt8, data: [UInt8]) {
        var result = try run(cdb, read: read, lun: lun)
        var tries = 0
        while result.status == 0x02 && tries < 3 {
            result = try run(cdb, read: read, lun: lun)
            tries += 1
        }
        return result
    }

    func reportLUNs() throws -> [Int] {
        let r = try runGood([0xA0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], read: 4096)
        guard r.data.count >= 8 else { return [] }
        let length = Int(r.data[0]) << 24 | Int(r.data[1]) << 16 | Int(r.data[2]) << 8 | Int(r.data[3])
        return stride(from: 8, to: min(8 + length, r.data.count), by: 8).map { Int(r.data[$0] & 0x3F) << 8 | Int(r.data[$0 + 1]) }
    }

    /// READ(10) of `blocks` 512-byte blocks at LBA 0.
    func read10(blocks: UInt8 = 8) throws -> UInt8 {
        try runGood([0x28, 0, 0, 0, 0, 0, 0, 0, blocks, 0], read: Int(blocks) * 512).status
    }

    func capacityBytes() throws -> UInt64 {
        let r = try runGood([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], read: 8)
        let last = UInt64(r.data[0]) << 24 | UInt64(r.data[1]) << 16 | UInt64(r.data[2]) << 8 | UInt64(r.data[3])
        let bs = UInt64(r.data[4]) << 24 | UInt64(r.data[5]) << 16 | UInt64(r.data[6]) << 8 | UInt64(r.data[7])
        return (last + 1) * bs
    }
}

extension TestInitiator {
    /// SendTargets=All in a discovery session: target name → addresses.
    func sendTargets() throws -> [String: [String]] {
        var header = [UInt8](repeating: 0, count: 48)
        header[0] = 0x04
        header[1] = 0x80
        let tag = nextTag()
        Self.put(tag, &header, at: 16)
        Self.put(0xFFFF_FFFF, &header, at: 20)
        Self.put(cmdSN, &header, at: 24)
        cmdSN &+= 1
        Self.put(expStatSN, &header, at: 28)
        try send(header: header, data: Self.text([("SendTargets", "All")]))
        var result: [String: [String]] = [:]
        var current: String?
        while true {
            let r = try receive()
            guard r.opcode == 0x24 else { continue }
            for pair in r.data.split(separator: 0) {
                let s = String(decoding: pair, as: UTF8.self)
                guard let eq = s.firstIndex(of: "=") else { continue }
                let key = String(s[..<eq]), value = String(s[s.index(after: eq)...])
                if key == "TargetName" { current = value; result[value] = [] }
                if key == "TargetAddress", let c = current { result[c, default: []].append(value) }
            }
            if r.flags & 0x80 != 0 { return result }
        }
    }
}

/// Every runtime test runs one after another: images are flock'ed, and a child process spawned
/// by one test (swift-targetctl) would otherwise inherit another test's image descriptors.
@Suite(.serialized) struct RuntimeTests {}
