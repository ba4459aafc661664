import ISCSITestSupport
import Backstores
import Foundation
import Logging
import NIOCore
import NIOPosix
import SCSIEngine
import Testing
@testable import ISCSIFabric

/// The whole target on a real TCP socket with a real file, driven by `TestInitiator`.
final class RunningTarget: @unchecked Sendable {
    static let targetName = "iqn.2026-11.org.swifttarget:e2e"
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let pool = IOWorkerPool(threads: 2)
    let server: ISCSIServer
    let port: Int
    let directory: URL
    let store: any BlockStore

    init(authentication: AuthenticationPolicy = .none, settings: TargetLoginSettings = TargetLoginSettings(),
         nopInInterval: TimeAmount? = nil, nopInTimeout: TimeAmount = .seconds(30)) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("swtgt-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        store = try openBackstore(BackstoreSpec(kind: .file, path: directory.appendingPathComponent("disk.img").path,
                                                size: 16 << 20))
        let device = SCSITarget(name: Self.targetName, transport: ISCSITransport())
        try device.addLogicalUnit(0, store: store, configuration: LogicalUnitConfiguration(serialNumber: "e2e0001", uniqueID: 0x1234))
        let access = TargetAccess(name: Self.targetName, authentication: authentication, settings: settings,
                                  portals: ["127.0.0.1:3260,1"])
        let catalog = TargetCatalog(targets: [ServedTarget(access: access, device: device)])
        var logger = Logger(label: "e2e")
        logger.logLevel = ProcessInfo.processInfo.environment["SWTGT_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        var environment = ConnectionEnvironment(catalog: catalog, sessions: SessionRegistry(), ioPool: pool, logger: logger)
        environment.nopInInterval = nopInInterval
        environment.nopInTimeout = nopInTimeout
        server = ISCSIServer(environment: environment, group: group)
        port = try await server.listen(host: "127.0.0.1", port: 0).port!
    }

    func stop() async {
        await server.shutdown(grace: .milliseconds(200))
        pool.shutdown()
        store.close()
        try? await group.shutdownGracefully()
        try? FileManager.default.removeItem(at: directory)
    }
}

@Suite(.serialized) struct EndToEndTests {
    @Test func loginThenInquiry() async throws {
        let target = try await RunningTarget()
        defer { Task { await target.stop() } }
        let initiator = try TestInitiator(port: target.port)
        let login = try initiator.login(target: RunningTarget.targetName)
        #expect(login.opcode == 0x23)
        #expect(login.header[36] == 0 && login.header[37] == 0, "\(login.text)")
        #expect(login.flags == 0x80 | 1 << 2 | 3, "\(login.text)")  // T, CSG=operational, NSG=full feature
        #expect(login.u16(14) != 0)  // TSIH assigned

        let tag = try initiator.command(cdb: [0x12, 0, 0, 0, 36, 0], read: 36)
        let dataIn = try initiator.receive()
        #expect(dataIn.opcode == 0x25)
        #expect(dataIn.flags & 0x81 == 0x81)  // F and S: status collapsed into the Data-In
        #expect(dataIn.header[3] == 0)  // GOOD
        #expect(dataIn.u32(16) == tag)
        #expect(dataIn.u32(40) == 0)  // buffer offset
        #expect(dataIn.data.count == 36)
        #expect(String(decoding: dataIn.data[8..<16], as: UTF8.self) == "SWIFTTGT")
    }

    @Test func writeThroughR2TThenReadBackByteExact() async throws {
        let target = try await RunningTarget()
        defer { Task { await target.stop() } }
        let initiator = try TestInitiator(port: target.port)
        _ = try initiator.login(target: RunningTarget.targetName)

        // The first command of a new I_T nexus reports POWER ON OCCURRED (06/29/00).
        let tur = try initiator.command(cdb: [0, 0, 0, 0, 0, 0])
        let attention = try initiator.receive()
        #expect(attention.opcode == 0x21)
        #expect(attention.u32(16) == tur)
        #expect(attention.header[3] == 0x02)  // CHECK CONDITION
        #expect(attention.data.count == 2 + 18)  // SenseLength + fixed-format sense
        #expect(attention.data[2] == 0x70)
        #expect(attention.data[2 + 2] & 0x0F == 0x06)  // UNIT ATTENTION
        #expect(attention.data[2 + 12] == 0x29 && attention.data[2 + 13] == 0x00)

        let length = 128 * 1024
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let lba: UInt32 = 100
        let blocks = UInt16(length / 512)
        let write10: [UInt8] = [0x2A, 0, UInt8(lba >> 24), UInt8(lba >> 16 & 0xFF), UInt8(lba >> 8 & 0xFF), UInt8(lba & 0xFF),
                                0, UInt8(blocks >> 8), UInt8(blocks & 0xFF), 0]
        let tag = try initiator.command(cdb: write10, write: length, immediate: Array(payload[0..<8192]))
        let r2t = try initiator.receive()
        #expect(r2t.opcode == 0x31)
        #expect(r2t.u32(16) == tag)
        #expect(r2t.u32(36) == 0)  // R2TSN
        #expect(r2t.u32(40) == 8192)  // buffer offset
        #expect(r2t.u32(44) == UInt32(length - 8192))  // desired length
        let ttt = r2t.u32(20)
        var offset = 8192
        var dataSN: UInt32 = 0
        while offset < length {
            let chunk = min(65536, length - offset)
            try initiator.dataOut(tag: tag, ttt: ttt, dataSN: dataSN, offset: offset,
                                  data: Array(payload[offset..<offset + chunk]), final: offset + chunk == length)
            offset += chunk
            dataSN += 1
        }
        let response = try initiator.receive()
        #expect(response.opcode == 0x21)
        #expect(response.header[2] == 0 && response.header[3] == 0)
        #expect(response.u32(16) == tag)
        #expect(response.u32(44) == 0)  // no residual

        let read10: [UInt8] = [0x28] + write10[1...]
        let readTag = try initiator.command(cdb: read10, read: length)
        var received: [UInt8] = []
        var expectedDataSN: UInt32 = 0
        while true {
            let pdu = try initiator.receive()
            guard pdu.opcode == 0x25 else {
                Issue.record("expected Data-In, got opcode \(pdu.opcode) status \(pdu.header[3])")
                break
            }
            #expect(pdu.u32(16) == readTag)
            #expect(pdu.u32(36) == expectedDataSN)
            #expect(Int(pdu.u32(40)) == received.count)
            #expect(pdu.data.count <= 65536)  // our MaxRecvDataSegmentLength
            expectedDataSN += 1
            received += pdu.data
            if pdu.flags & 0x01 != 0 {
                #expect(pdu.header[3] == 0)
                break
            }
        }
        #expect(received == payload)

        // The session's counters saw exactly this: TUR (answered with the attention), write, read.
        let session = try #require(target.server.environment.sessions.sessions.first)
        #expect(session.inFlight.commands == 3)
        #expect(session.inFlight.errors == 1)
        #expect(session.inFlight.bytesWritten == UInt64(length))
        #expect(session.inFlight.bytesRead == UInt64(length))
        #expect(session.commandsInFlight == 0)
    }

    @Test func nopOutIsEchoedAndUnknownOpcodeRejected() async throws {
        let target = try await RunningTarget()
        defer { Task { await target.stop() } }
        let initiator = try TestInitiator(port: target.port)
        _ = try initiator.login(target: RunningTarget.targetName)

        var nop = [UInt8](repeating: 0, count: 48)
        nop[0] = 0x40  // immediate NOP-Out
        nop[1] = 0x80
        TestInitiator.put(0xABCD, &nop, at: 16)
        TestInitiator.put(0xFFFF_FFFF, &nop, at: 20)
        TestInitiator.put(initiator.cmdSN, &nop, at: 24)
        try initiator.send(header: nop, data: Array("ping".utf8))
        let nopIn = try initiator.receive()
        #expect(nopIn.opcode == 0x20)
        #expect(nopIn.u32(16) == 0xABCD)
        #expect(nopIn.u32(20) == 0xFFFF_FFFF)
        #expect(nopIn.data == Array("ping".utf8))

        var bogus = [UInt8](repeating: 0, count: 48)
        bogus[0] = 0x1C  // no such initiator opcode
        bogus[1] = 0x80
        TestInitiator.put(0x77, &bogus, at: 16)
        try initiator.send(header: bogus)
        let reject = try initiator.receive()
        #expect(reject.opcode == 0x3F)
        #expect(reject.header[2] == 0x05)  // command not supported
        #expect(reject.u32(16) == 0xFFFF_FFFF)
        #expect(reject.data.count == 48)
        #expect(reject.data[0] == 0x1C)
        #expect(Array(reject.data[16..<20]) == [0, 0, 0, 0x77])
    }

    @Test func unknownTargetIsRefusedWithNotFound() async throws {
        let target = try await RunningTarget()
        defer { Task { await target.stop() } }
        let initiator = try TestInitiator(port: target.port)
        let response = try initiator.login(target: "iqn.2026-11.org.swifttarget:nope")
        #expect(response.opcode == 0x23)
        #expect(response.header[36] == 0x02)
        #expect(response.header[37] == 0x03)
        #expect(throws: TestInitiator.Failure.closed) { try initiator.receive() }
    }

    @Test func logoutAnswersThenCloses() async throws {
        let target = try await RunningTarget()
        defer { Task { await target.stop() } }
        let initiator = try TestInitiator(port: target.port)
        _ = try initiator.login(target: RunningTarget.targetName)
        var logout = [UInt8](repeating: 0, count: 48)
        logout[0] = 0x46  // immediate Logout Request
        logout[1] = 0x80  // close the session
        TestInitiator.put(0x99, &logout, at: 16)
        TestInitiator.put(initiator.cmdSN, &logout, at: 24)
        try initiator.send(header: logout)
        let response = try initiator.receive()
        #expect(response.opcode == 0x26)
        #expect(response.header[2] == 0)
        #expect(response.u32(16) == 0x99)
        #expect(throws: TestInitiator.Failure.closed) { try initiator.receive() }
    }

    @Test func discoveryListsTheTarget() async throws {
        let target = try await RunningTarget()
        defer { Task { await target.stop() } }
        let initiator = try TestInitiator(port: target.port)
        let login = try initiator.login(target: nil)
        #expect(login.header[36] == 0)
        var text = [UInt8](repeating: 0, count: 48)
        text[0] = 0x44  // immediate Text Request
        text[1] = 0x80
        TestInitiator.put(0x55, &text, at: 16)
        TestInitiator.put(0xFFFF_FFFF, &text, at: 20)
        TestInitiator.put(initiator.cmdSN, &text, at: 24)
        try initiator.send(header: text, data: TestInitiator.text([("SendTargets", "All")]))
        let response = try initiator.receive()
        #expect(response.opcode == 0x24)
        #expect(response.flags & 0x80 != 0)
        #expect(response.text["TargetName"] == RunningTarget.targetName)
        #expect(response.text["TargetAddress"] == "127.0.0.1:3260,1")
    }

    @Test func shutdownAsksInitiatorsToLogOut() async throws {
        let target = try await RunningTarget()
        let initiator = try TestInitiator(port: target.port)
        _ = try initiator.login(target: RunningTarget.targetName)
        let stopping = Task { await target.stop() }
        let message = try initiator.receive()
        #expect(message.opcode == 0x32)  // Async Message
        #expect(message.header[36] == 1)  // AsyncEvent: target requests logout
        #expect(message.u32(16) == 0xFFFF_FFFF)
        #expect(message.u16(42) >= 1)  // Parameter3: seconds to log out in
        await stopping.value
    }

    @Test func unansweredPingsDropTheConnection() async throws {
        let target = try await RunningTarget(nopInInterval: .milliseconds(100), nopInTimeout: .milliseconds(250))
        defer { Task { await target.stop() } }
        let initiator = try TestInitiator(port: target.port)
        _ = try initiator.login(target: RunningTarget.targetName)
        let ping = try initiator.receive()
        #expect(ping.opcode == 0x20)  // NOP-In
        #expect(ping.u32(16) == 0xFFFF_FFFF)  // target-initiated: no ITT
        #expect(ping.u32(20) != 0xFFFF_FFFF)  // a TTT to answer with
        // Not answering: the target gives up on the connection.
        #expect(throws: TestInitiator.Failure.closed) { try initiator.receive() }
    }

    @Test func answeredPingsKeepTheConnection() async throws {
        let target = try await RunningTarget(nopInInterval: .milliseconds(100), nopInTimeout: .milliseconds(250))
        defer { Task { await target.stop() } }
        let initiator = try TestInitiator(port: target.port)
        _ = try initiator.login(target: RunningTarget.targetName)
        for _ in 0..<5 {
            let ping = try initiator.receive()
            #expect(ping.opcode == 0x20)
            var pong = [UInt8](repeating: 0, count: 48)
            pong[0] = 0x40
            pong[1] = 0x80
            TestInitiator.put(0xFFFF_FFFF, &pong, at: 16)
            TestInitiator.put(ping.u32(20), &pong, at: 20)
            TestInitiator.put(initiator.cmdSN, &pong, at: 24)
            try initiator.send(header: pong)
        }
        // Still alive: a command gets its answer.
        let tag = try initiator.command(cdb: [0x12, 0, 0, 0, 36, 0], read: 36)
        var answer = try initiator.receive()
        while answer.opcode == 0x20 { answer = try initiator.receive() }
        #expect(answer.opcode == 0x25)
        #expect(answer.u32(16) == tag)
    }

    @Test func chapLoginWithTheRightSecretOnlyAndIdenticalFailures() async throws {
        let target = try await RunningTarget(authentication: AuthenticationPolicy(incomingUsers: ["alice": "correct-horse-12"]))
        defer { Task { await target.stop() } }
        func attempt(user: String, secret: String) throws -> TestInitiator.Received {
            let initiator = try TestInitiator(port: target.port)
            let first = try initiator.loginRequest(csg: 0, nsg: 1, transit: false, keys: [
                ("InitiatorName", "iqn.2026-11.org.test:initiator"), ("SessionType", "Normal"),
                ("TargetName", RunningTarget.targetName), ("AuthMethod", "CHAP,None")])
            #expect(first.text["AuthMethod"] == "CHAP")
            let challenge = try initiator.loginRequest(csg: 0, nsg: 1, transit: false, keys: [("CHAP_A", "5")])
            let id = UInt8(challenge.text["CHAP_I"] ?? "0") ?? 0
            let c = TestCHAP.bytes(hex: challenge.text["CHAP_C"] ?? "")
            let r = TestCHAP.md5([id] + Array(secret.utf8) + c)
            return try initiator.loginRequest(csg: 0, nsg: 1, transit: true, keys: [
                ("CHAP_N", user), ("CHAP_R", "0x" + r.map { String(format: "%02x", $0) }.joined())])
        }
        let good = try attempt(user: "alice", secret: "correct-horse-12")
        #expect(good.header[36] == 0)
        let wrongSecret = try attempt(user: "alice", secret: "wrong-horse-123")
        let unknownUser = try attempt(user: "mallory", secret: "correct-horse-12")
        #expect(wrongSecret.header[36] == 0x02 && wrongSecret.header[37] == 0x01)
        // The same answer whether the user exists or not: nothing to probe names with.
        #expect(unknownUser.header[36...37] == wrongSecret.header[36...37])
        #expect(unknownUser.data == wrongSecret.data)
    }
}
