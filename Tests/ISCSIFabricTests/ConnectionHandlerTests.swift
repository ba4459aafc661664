import Backstores
import Logging
import NIOCore
import NIOEmbedded
import SCSIEngine
import Testing
@testable import ISCSIFabric

/// Tier 2: the channel handler on an EmbeddedChannel (decoder + handler, no socket).
@Suite(.serialized) struct ConnectionHandlerTests {
    static let targetName = "iqn.2026-12.org.swifttarget:embedded"

    static func environment(pool: IOWorkerPool, limits: FabricLimits = FabricLimits()) -> ConnectionEnvironment {
        let device = SCSITarget(name: targetName, transport: ISCSITransport())
        let access = TargetAccess(name: targetName, portals: ["127.0.0.1:3260,1"])
        let catalog = TargetCatalog(targets: [ServedTarget(access: access, device: device)])
        var logger = Logger(label: "embedded")
        logger.logLevel = .critical
        var environment = ConnectionEnvironment(catalog: catalog, sessions: SessionRegistry(), ioPool: pool, logger: logger)
        environment.nopInInterval = nil
        environment.guards = FabricGuards(limits: limits)
        return environment
    }

    static func channel(_ environment: ConnectionEnvironment) throws -> (EmbeddedChannel, ConnectionHandler) {
        let box = DigestSettingsBox()
        let handler = ConnectionHandler(environment: environment, digestBox: box)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(PDUDecoder(settings: box)))
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 3260)).wait()
        return (channel, handler)
    }

    static func loginBytes(csg: UInt8, nsg: UInt8, _ keys: [(String, String)]) -> ByteBuffer {
        var text: [UInt8] = []
        for (key, value) in keys { text += Array("\(key)=\(value)".utf8) + [0] }
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(0x43))
        buffer.writeInteger(UInt8(0x80 | csg << 2 | nsg))
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt8(text.count >> 16))
        buffer.writeInteger(UInt16(text.count & 0xFFFF))
        buffer.writeBytes([0x00, 0x02, 0x3D, 0, 0, 1, 0, 0])  // ISID, TSIH 0
        buffer.writeRepeatingByte(0, count: 32)
        buffer.writeBytes(text)
        buffer.writeRepeatingByte(0, count: (4 - text.count % 4) % 4)
        return buffer
    }

    /// Every outbound buffer written so far, joined.
    static func written(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var out: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out += buffer.readableBytesView }
        return out
    }

    @Test func aClosedSessionLetsItsHandlerGo() throws {
        let pool = IOWorkerPool(threads: 1)
        defer { pool.shutdown() }
        weak var released: ConnectionHandler?
        do {
            let (channel, handler) = try Self.channel(Self.environment(pool: pool))
            released = handler
            try Self.logIn(channel)
            try channel.close().wait()
            channel.embeddedEventLoop.run()
        }
        #expect(released == nil, "a handler that reached full feature phase outlived its connection")
    }

    /// Login (AuthMethod=None) to full feature phase; returns the final response's bytes.
    @discardableResult
    static func logIn(_ channel: EmbeddedChannel) throws -> [UInt8] {
        try channel.writeInbound(Self.loginBytes(csg: 0, nsg: 1, [("InitiatorName", "iqn.2026-12.org.test:i"),
                                                                 ("TargetName", Self.targetName), ("AuthMethod", "None")]))
        _ = try Self.written(channel)
        try channel.writeInbound(Self.loginBytes(csg: 1, nsg: 3, [
            ("HeaderDigest", "None"), ("DataDigest", "None"), ("ImmediateData", "Yes"), ("InitialR2T", "Yes"),
            ("MaxRecvDataSegmentLength", "8192"), ("MaxBurstLength", "262144"), ("FirstBurstLength", "65536"),
        ]))
        var out = try Self.written(channel)
        var rounds = 0
        while out.count >= 48, out[1] & 0x80 == 0, rounds < 3 {
            try channel.writeInbound(Self.loginBytes(csg: 1, nsg: 3, [("MaxOutstandingR2T", "8")]))
            out = try Self.written(channel)
            rounds += 1
        }
        return out
    }

    @Test func loginThenAMalformedAHSIsRejectedOnTheWire() throws {
        let pool = IOWorkerPool(threads: 1)
        defer { pool.shutdown() }
        let (channel, _) = try Self.channel(Self.environment(pool: pool))
        try channel.writeInbound(Self.loginBytes(csg: 0, nsg: 1, [("InitiatorName", "iqn.2026-12.org.test:i"),
                                                                 ("TargetName", Self.targetName), ("AuthMethod", "None")]))
        var out = try Self.written(channel)
        #expect(out.first == 0x23 && out[36] == 0 && out[37] == 0, "login response, success")
        try channel.writeInbound(Self.loginBytes(csg: 1, nsg: 3, [
            ("HeaderDigest", "None"), ("DataDigest", "None"), ("ImmediateData", "Yes"), ("InitialR2T", "Yes"),
            ("MaxRecvDataSegmentLength", "8192"), ("MaxBurstLength", "262144"), ("FirstBurstLength", "65536"),
        ]))
        out = try Self.written(channel)
        #expect(channel.isActive, "closed after the operational request")
        // The target may offer keys first; answer and go on until it transits.
        var rounds = 0
        while out.count >= 48, out[1] & 0x80 == 0, rounds < 3 {
            try channel.writeInbound(Self.loginBytes(csg: 1, nsg: 3, [("MaxOutstandingR2T", "8")]))
            out = try Self.written(channel)
            rounds += 1
        }
        #expect(out.count >= 48 && out[1] == 0x87 && out[14...15] != [0, 0],
                "final login response with a TSIH: \(out.prefix(48)) \(String(decoding: out.dropFirst(48), as: UTF8.self))")
        // SCSI Command, TotalAHSLength 1, AHS 00 00 01 00.
        var command = ByteBuffer(repeating: 0, count: 48)
        command.setInteger(UInt8(0x01), at: 0)
        command.setInteger(UInt8(0x81), at: 1)
        command.setInteger(UInt8(1), at: 4)
        command.setInteger(UInt32(0x42), at: 16)
        command.writeBytes([0, 0, 1, 0])
        try channel.writeInbound(command)
        out = try Self.written(channel)
        #expect(out.count == 96 && out[0] == 0x3F && out[2] == 0x09, "Reject, Invalid PDU Field, quoting the header")
        #expect(Array(out[48..<96]) == Array(command.readableBytesView.prefix(48)))
        #expect(channel.isActive)
        _ = try? channel.finish()
    }

    /// The decoder passes a data digest failure up as an event (not a frame): the session
    /// answers it with a Reject quoting the header (§7.8.1) and the connection stays up.
    @Test func aDataDigestErrorIsRejectedAndTheConnectionStays() throws {
        let pool = IOWorkerPool(threads: 1)
        defer { pool.shutdown() }
        let (channel, _) = try Self.channel(Self.environment(pool: pool))
        try channel.writeInbound(Self.loginBytes(csg: 0, nsg: 1, [("InitiatorName", "iqn.2026-12.org.test:i"),
                                                                 ("TargetName", Self.targetName), ("AuthMethod", "None")]))
        _ = try Self.written(channel)
        try channel.writeInbound(Self.loginBytes(csg: 1, nsg: 3, [
            ("HeaderDigest", "None"), ("DataDigest", "CRC32C"), ("ImmediateData", "Yes"), ("InitialR2T", "Yes"),
            ("MaxRecvDataSegmentLength", "8192"), ("MaxBurstLength", "262144"), ("FirstBurstLength", "65536"),
        ]))
        var out = try Self.written(channel)
        var answered = String(decoding: out.dropFirst(48), as: UTF8.self)
        var rounds = 0
        while out.count >= 48, out[1] & 0x80 == 0, rounds < 3 {
            try channel.writeInbound(Self.loginBytes(csg: 1, nsg: 3, [("MaxOutstandingR2T", "8")]))
            out = try Self.written(channel)
            answered += String(decoding: out.dropFirst(48), as: UTF8.self)
            rounds += 1
        }
        #expect(out.count >= 48 && out[1] == 0x87, "logged in")
        #expect(answered.contains("DataDigest=CRC32C"), "\(answered)")
        // NOP-Out (immediate) with 4 data bytes and a data digest that does not match them.
        var nop = ByteBuffer(repeating: 0, count: 48)
        nop.setInteger(UInt8(0x40), at: 0)
        nop.setInteger(UInt8(0x80), at: 1)
        nop.setInteger(UInt16(4), at: 6)
        nop.setInteger(UInt32(0x1234), at: 16)
        nop.setInteger(UInt32(0xFFFF_FFFF), at: 20)
        nop.writeBytes(Array("abcd".utf8))
        nop.writeInteger(UInt32(0xDEAD_BEEF), endianness: .little)
        try channel.writeInbound(nop)
        out = try Self.written(channel)
        #expect(out.count == 48 + 48 + 4, "Reject + the quoted header + its own data digest")
        #expect(out.first == 0x3F && out[2] == 0x02, "Reject, reason Data (payload) Digest Error")
        #expect(Array(out[48..<96]) == Array(nop.readableBytesView.prefix(48)))
        #expect(channel.isActive)
        _ = try? channel.finish()
    }

    @Test func aClosedConnectionLetsItsHandlerGo() throws {
        let pool = IOWorkerPool(threads: 1)
        defer { pool.shutdown() }
        weak var released: ConnectionHandler?
        do {
            let (channel, handler) = try Self.channel(Self.environment(pool: pool))
            released = handler
            try channel.writeInbound(Self.loginBytes(csg: 0, nsg: 1, [("InitiatorName", "iqn.2026-12.org.test:i")]).getSlice(at: 0, length: 30)!)
            try channel.close().wait()
            channel.embeddedEventLoop.run()  // the pipeline's teardown runs on the loop
            #expect(!channel.isActive)
        }
        #expect(released == nil, "the handler (and its context, its login state) outlived the connection")
    }

    @Test func connectionsOverTheLoginLimitAreClosedAtOnce() throws {
        let pool = IOWorkerPool(threads: 1)
        defer { pool.shutdown() }
        var limits = FabricLimits()
        limits.maxLoginsPerAddress = 2
        let environment = Self.environment(pool: pool, limits: limits)
        let first = try Self.channel(environment).0
        let second = try Self.channel(environment).0
        let third = try Self.channel(environment).0
        #expect(first.isActive && second.isActive && !third.isActive)
        #expect(environment.guards.refusedConnections == 1 && environment.guards.loginAdmission.inLogin == 2)
        try first.close().wait()
        #expect(environment.guards.loginAdmission.inLogin == 1)
        let fourth = try Self.channel(environment).0
        #expect(fourth.isActive)
        for c in [first, second, third, fourth] { _ = try? c.finish() }
    }
}
