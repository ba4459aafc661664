import Foundation
import ISCSITestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension RuntimeTests {
/// APTPL end to end: a registration and a reservation made over a real connection survive
/// kill -9 of swift-targetd and a restart (SPC-4 5.13.5).
@Suite(.serialized)
struct APTPLProcessTests {
    func serve(_ directory: String, port: Int) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: daemonPath)
        p.arguments = ["serve", "--target", "iqn.2026-12.org.example:aptpl", "--listen", "127.0.0.1:\(port)",
                       "--lun", "file:\(directory)/disk.img,size=1M", "--state-dir", "\(directory)/state",
                       "--log-level", "warning"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        for _ in 0..<100 {
            if (try? TestInitiator(port: port)) != nil { return p }
            usleep(50_000)
        }
        p.terminate()
        throw TestInitiator.Failure.connect(ECONNREFUSED)
    }

    func session(port: Int, initiator: String, isid: UInt64) throws -> TestInitiator {
        let i = try TestInitiator(port: port)
        i.isid = isid
        let r = try i.login(target: "iqn.2026-12.org.example:aptpl", initiator: initiator)
        #expect(r.header[36] == 0)
        _ = try i.run([0, 0, 0, 0, 0, 0])  // the power-on unit attention
        return i
    }

    static func prOut(_ action: UInt8, type: UInt8 = 0) -> [UInt8] { [0x5F, action, type, 0, 0, 0, 0, 0, 24, 0] }
    static func params(key: UInt64, sak: UInt64, aptpl: Bool) -> [UInt8] {
        (0..<8).map { UInt8(key >> (56 - 8 * UInt64($0)) & 0xFF) } + (0..<8).map { UInt8(sak >> (56 - 8 * UInt64($0)) & 0xFF) }
            + [0, 0, 0, 0, aptpl ? 1 : 0, 0, 0, 0]
    }

    @Test func registrationAndReservationSurviveKill9() throws {
        let directory = "/tmp/swtgt-aptpl-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = freePort()
        let holder = ("iqn.2026-12.org.test:holder", UInt64(0x23D0_0000_0001))
        let other = ("iqn.2026-12.org.test:other", UInt64(0x23D0_0000_0002))

        var daemon = try serve(directory, port: port)
        do {
            let a = try session(port: port, initiator: holder.0, isid: holder.1)
            #expect(try a.run(Self.prOut(0x00), write: Self.params(key: 0, sak: 0xAB12, aptpl: true)) == 0)
            #expect(try a.run(Self.prOut(0x01, type: 0x01), write: Self.params(key: 0xAB12, sak: 0, aptpl: false)) == 0)
        }
        // GOOD was answered: the state is on disk. Nothing gets to shut down cleanly.
        kill(daemon.processIdentifier, SIGKILL)
        daemon.waitUntilExit()

        daemon = try serve(directory, port: port)
        defer { daemon.terminate(); daemon.waitUntilExit() }
        let a = try session(port: port, initiator: holder.0, isid: holder.1)
        let keys = try a.run([0x5E, 0x00, 0, 0, 0, 0, 0, 0x04, 0x00, 0], read: 1024)
        #expect(keys.status == 0)
        #expect(Array(keys.data.prefix(16)) == [0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0xAB, 0x12])
        let reservation = try a.run([0x5E, 0x01, 0, 0, 0, 0, 0, 0x04, 0x00, 0], read: 1024)
        #expect(Array(reservation.data[8..<16]) == [0, 0, 0, 0, 0, 0, 0xAB, 0x12])
        #expect(reservation.data[21] == 0x01)  // WRITE EXCLUSIVE
        // The reservation still fences: another initiator's write conflicts, the holder's lands.
        let b = try session(port: port, initiator: other.0, isid: other.1)
        let write10: [UInt8] = [0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0]
        #expect(try b.run(write10, write: [UInt8](repeating: 0xBB, count: 512)) == 0x18)  // RESERVATION CONFLICT
        #expect(try a.run(write10, write: [UInt8](repeating: 0xAA, count: 512)) == 0)
    }
}
}
